"""Topo-clustering of a batch of events on the cells above threshold only.

Cells are global ids ``event * n_cells + cell``; the neighbour graph of the
geometry is reused for every event by offsetting, so a batch of events is one
block-diagonal graph and one call to ``connected_components``.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components


def neighbour_pairs(cells: np.ndarray, neighbours: csr_matrix, n_cells: int) -> tuple[np.ndarray, np.ndarray]:
    """All (source position in ``cells``, neighbour global id) pairs, vectorised over the CSR rows."""
    local = cells % n_cells
    base = cells - local
    start = neighbours.indptr[local]
    counts = neighbours.indptr[local + 1] - start
    src = np.repeat(np.arange(len(cells)), counts)
    offset_in_row = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    tgt = neighbours.indices[np.repeat(start, counts) + offset_in_row].astype(np.int64) + base[src]
    return src, tgt


def topo_cluster_sparse(
    cells: np.ndarray,
    significance: np.ndarray,
    neighbours: csr_matrix,
    n_cells: int,
    seed: float = 4.0,
    grow: float = 2.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """4-2-0 clustering given every cell with |E|/sigma > grow.

    ``cells`` are sorted unique global ids, ``significance`` their |E|/sigma (cells
    not listed are taken to be at or below ``grow``). Returns ``(cluster_cells,
    labels, is_boundary)``: clustered cells (including boundary cells, which may be
    cells not in ``cells``), their cluster label ordered by descending seed
    significance, and whether each is a boundary cell. A boundary cell touching
    several clusters joins the most significant. The caller applies any boundary
    threshold above zero, since it alone knows the quiet cells' values.
    """
    sig = np.abs(significance)
    growing = sig > grow
    g_cells, g_sig = cells[growing], sig[growing]
    n = len(g_cells)
    if n == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty.astype(np.int32), empty.astype(bool)
    src, tgt = neighbour_pairs(g_cells, neighbours, n_cells)
    j = np.searchsorted(g_cells, tgt)
    j_clip = np.minimum(j, n - 1)
    inside = g_cells[j_clip] == tgt
    graph = coo_matrix((np.ones(inside.sum(), dtype=np.int8), (src[inside], j_clip[inside])), shape=(n, n))
    n_comp, comp = connected_components(graph, directed=False)

    peak = np.zeros(n_comp)
    np.maximum.at(peak, comp, g_sig)
    seeded = np.nonzero(peak > seed)[0]
    rank = np.full(n_comp, -1, dtype=np.int64)
    rank[seeded[np.argsort(-peak[seeded], kind="stable")]] = np.arange(len(seeded))
    g_label = rank[comp]
    in_cluster = g_label >= 0

    # boundary: neighbours of clustered growing cells that are not growing themselves
    b_edge = in_cluster[src] & ~inside
    b_cell, b_label = tgt[b_edge], g_label[src[b_edge]]
    order = np.lexsort((b_label, b_cell))
    b_cell, b_label = b_cell[order], b_label[order]
    first = np.ones(len(b_cell), dtype=bool)
    first[1:] = b_cell[1:] != b_cell[:-1]
    b_cell, b_label = b_cell[first], b_label[first]

    out_cells = np.concatenate([g_cells[in_cluster], b_cell])
    out_labels = np.concatenate([g_label[in_cluster], b_label]).astype(np.int32)
    boundary = np.concatenate([np.zeros(in_cluster.sum(), bool), np.ones(len(b_cell), bool)])
    return out_cells, out_labels, boundary
