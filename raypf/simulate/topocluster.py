"""ATLAS-style 4-2-0 topological clustering of one event's cells, as sparse-graph operations.

Clusters are connected components of the neighbour graph restricted to cells above the
growing threshold that contain a seed; one ``connected_components`` call finds them all,
so there is no per-cluster Python loop. Only the rows of cells above the growing
threshold (a few percent of the detector in a noise-only event) are ever read from the
neighbour matrix, which keeps a full-detector event at a few milliseconds.

This is the dense per-event interface (an energy for every cell); the detector's batched
path over cells above threshold only is ``raypf.simulate.topo_sparse``.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy.sparse import csr_matrix, issparse
from scipy.sparse.csgraph import connected_components

log = logging.getLogger(__name__)


def _rows(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions in ``indices`` of all entries of ``rows`` (concatenated), and each row's entry count.

    Index arithmetic on the CSR row pointers: no sparse slicing, which would validate and
    copy far more than these few thousand rows.
    """
    start = indptr[rows]
    count = indptr[rows + 1] - start
    total = int(count.sum())
    shift = np.repeat(start - (np.cumsum(count) - count), count)
    return np.arange(total, dtype=shift.dtype) + shift, count


def topo_cluster(
    energy: np.ndarray,
    sigma: np.ndarray,
    neighbours: csr_matrix,
    seed: float = 4.0,
    grow: float = 2.0,
    boundary: float = 0.0,
) -> np.ndarray:
    """Cluster label per cell (int32, -1 = not clustered), labels 0..k-1 ordered by descending seed
    significance |E|/sigma of the cluster's most significant cell.

    Thresholds apply to the absolute significance |E|/sigma, so negative noise fluctuations
    seed and grow clusters as in ATLAS (which keeps the noise symmetric). A cell is:

    * a seed if |E|/sigma > ``seed``;
    * a growing cell if |E|/sigma > ``grow``: a cluster is a connected component of the
      neighbour graph restricted to growing cells that holds at least one seed, so two seeds
      joined by growing cells end up in one cluster (seeds must exceed ``grow`` too);
    * a boundary cell if it is not in a cluster, neighbours a cluster's growing cell and has
      |E|/sigma > ``boundary`` (strictly: with the default 0, a cell of exactly zero energy
      is not added). A boundary cell touching several clusters joins the most significant
      one (the lowest label).

    Clusters are not split at local maxima (no ATLAS cluster splitter), so nearby showers
    that touch through growing cells stay one cluster. Ties in peak significance are broken
    by the lowest cell index. ``sigma`` must be positive; cells with 0/0 significance are
    never clustered. ``neighbours`` is the symmetric (n, n) adjacency, e.g.
    ``CaloGeometry.neighbours``.
    """
    if not seed >= grow >= boundary:
        raise ValueError(f"need seed >= grow >= boundary, got {seed}, {grow}, {boundary}")
    if not (issparse(neighbours) and neighbours.format == "csr"):
        neighbours = csr_matrix(neighbours)
    energy = np.asarray(energy)
    n = len(energy)
    if neighbours.shape != (n, n) or np.shape(sigma) != (n,):
        raise ValueError(f"energy {energy.shape}, sigma {np.shape(sigma)} and neighbours {neighbours.shape} disagree")
    with np.errstate(divide="ignore", invalid="ignore"):
        sig = np.abs(energy) / sigma
    labels = np.full(n, -1, dtype=np.int32)

    g_cells = np.flatnonzero(sig > grow)  # ascending, so component ids follow the lowest cell index
    g_sig = sig[g_cells]
    seeds = np.flatnonzero(g_sig > seed)
    if len(seeds) == 0:
        return labels
    n_g = len(g_cells)

    # the subgraph on growing cells, straight from the rows of the growing cells
    compact = np.full(n, -1, dtype=np.int32)  # cell -> position among growing cells
    compact[g_cells] = np.arange(n_g, dtype=np.int32)
    pos, count = _rows(neighbours.indptr, g_cells)
    target = compact[neighbours.indices[pos]]
    keep = target >= 0
    kept_before = np.concatenate([[0], np.cumsum(keep)])
    row_start = np.concatenate([[0], np.cumsum(count)])
    sub = csr_matrix((np.ones(int(keep.sum()), dtype=np.int8), target[keep], kept_before[row_start]), shape=(n_g, n_g))
    n_comp, comp = connected_components(sub, directed=True, connection="weak")

    # clusters: components holding a seed, ranked by their most significant seed
    peak = np.full(n_comp, -np.inf)
    np.maximum.at(peak, comp[seeds], g_sig[seeds])
    clustered = np.flatnonzero(np.isfinite(peak))
    order = clustered[np.argsort(-peak[clustered], kind="stable")]
    label_of_comp = np.full(n_comp, -1, dtype=np.int32)
    label_of_comp[order] = np.arange(len(order), dtype=np.int32)
    g_label = label_of_comp[comp]
    members = np.flatnonzero(g_label >= 0)
    labels[g_cells[members]] = g_label[members]

    # boundary: non-growing neighbours of clustered cells above the boundary threshold; the
    # lowest label wins, by sorting the (cell, label) pairs and keeping each cell's first
    pos, count = _rows(neighbours.indptr, g_cells[members])
    cell = neighbours.indices[pos]
    label = np.repeat(g_label[members], count)
    ok = (labels[cell] < 0) & (sig[cell] > boundary)
    cell, label = cell[ok], label[ok]
    if len(cell):
        by = np.lexsort((label, cell))
        cell, label = cell[by], label[by]
        first = np.concatenate([[True], cell[1:] != cell[:-1]])
        labels[cell[first]] = label[first]
    log.debug("topo_cluster: %d growing cells, %d clusters", n_g, len(order))
    return labels
