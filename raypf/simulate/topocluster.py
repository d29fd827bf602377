"""ATLAS 4-2-0 topological clustering, for a batch of events at once.

Cells are global ids ``event * n_cells + cell``; the geometry's neighbour graph
is reused for every event by offsetting, so a batch of events is one
block-diagonal graph. Only cells above the growing threshold are passed in, and
clusters grow breadth-first from the seeds, so the thousands of isolated noise
cells above the growing threshold that never touch a seed cost one table write
each, not a neighbour search. ``topo_cluster`` is the same algorithm for one
event given every cell's energy.

Thresholds apply to |E|/sigma, so negative noise fluctuations seed and grow
clusters as in ATLAS. A cluster is a connected component of the neighbour graph
restricted to growing cells (|E|/sigma > grow) that holds a seed (> seed), plus
its boundary: neighbours of its growing cells above the boundary threshold; a
boundary cell touching several clusters joins the most significant. Clusters
are not split at local maxima (no ATLAS cluster splitter).
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components

from raypf.simulate.scratch import Scratch

# Per-process tables over the batch's ids: growing-cell positions (later boundary labels), and
# de-duplication stamps (always written before they are read, so never reset).
_POSITION = Scratch(np.int32, -1)
_STAMP = Scratch(np.int32, None)


def ranges(start: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenated aranges [start_i, start_i + counts_i), without a Python loop."""
    return np.arange(int(counts.sum())) + np.repeat(start - (np.cumsum(counts) - counts), counts)


def _neighbours_of(cells: np.ndarray, graph: csr_matrix, n_cells: int) -> tuple[np.ndarray, np.ndarray]:
    """(source position, neighbour global id) for every neighbour of ``cells``, via CSR row ranges."""
    local = cells % n_cells
    start = graph.indptr[local]
    deg = graph.indptr[local + 1] - start
    src = np.repeat(np.arange(len(cells)), deg)
    return src, graph.indices[ranges(start, deg)] + (cells - local)[src]


def _dedupe(values: np.ndarray, stamp: np.ndarray) -> np.ndarray:
    """Distinct values using a scratch table instead of sorting (stamps are written before read)."""
    idx = np.arange(len(values), dtype=np.int32)
    stamp[values] = idx
    return values[stamp[values] == idx]


def topo_cluster_sparse(
    cells: np.ndarray,
    significance: np.ndarray,
    neighbours: csr_matrix,
    n_cells: int,
    seed: float = 4.0,
    grow: float = 2.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """4-2-0 clustering given every cell with |E|/sigma > grow.

    ``cells`` are unique global ids and ``significance`` their E/sigma (cells not
    listed are taken to be at or below ``grow``); ``neighbours`` is the
    geometry's (n_cells x n_cells) adjacency. Returns ``(cluster_cells, labels, is_boundary)``:
    clustered cells (including boundary cells, which may be cells not in
    ``cells``), their label -- ordered by event, then by descending seed
    significance -- and whether each is a boundary cell. A boundary cell touching
    several clusters joins the most significant. The caller applies any boundary
    threshold above zero, since it alone knows the quiet cells' values.
    """
    sig = np.abs(significance)
    growing = sig > grow
    g_cells, g_sig = cells[growing], sig[growing]
    n = len(g_cells)
    empty = np.empty(0, dtype=np.int64)
    if n == 0 or not (g_sig > seed).any():
        return empty, empty.astype(np.int32), empty.astype(bool)
    size = (int(g_cells.max()) // n_cells + 1) * n_cells  # whole events, so batches of one size reuse the tables
    position = _POSITION.take(size)
    stamp = _STAMP.take(size)
    touched = [g_cells]
    try:
        position[g_cells] = np.arange(n, dtype=np.int32)
        # Breadth-first growth from all seeds at once. Each growing cell takes the label of the
        # seed whose front reached it first; where two fronts meet, a (seed, seed) merge is noted,
        # so connected components are needed only on the small graph of seeds.
        seeds = np.nonzero(g_sig > seed)[0]
        lab = np.full(n, -1, dtype=np.int64)
        lab[seeds] = np.arange(len(seeds))
        frontier = seeds
        merge_a, merge_b, b_cell, b_lab = [], [], [], []
        while len(frontier):
            src, tgt = _neighbours_of(g_cells[frontier], neighbours, n_cells)
            j = position[tgt]
            is_growing = j >= 0
            src_lab = lab[frontier][src]
            b_cell.append(tgt[~is_growing])
            b_lab.append(src_lab[~is_growing])
            jg, lg = j[is_growing], src_lab[is_growing]
            known = lab[jg]
            reached = known >= 0
            meet = reached & (known != lg)
            merge_a.append(known[meet])
            merge_b.append(lg[meet])
            new, new_lab = jg[~reached], lg[~reached]
            lab[new] = new_lab  # several fronts may claim a cell in one step: one wins, the rest merge
            winner = lab[new]
            lost = winner != new_lab
            merge_a.append(winner[lost])
            merge_b.append(new_lab[lost])
            frontier = _dedupe(new, stamp)

        n_seeds = len(seeds)
        ma, mb = np.concatenate(merge_a), np.concatenate(merge_b)
        graph = coo_matrix((np.ones(len(ma), dtype=np.int8), (ma, mb)), shape=(n_seeds, n_seeds))
        n_comp, seed_comp = connected_components(graph, directed=False)
        peak = np.zeros(n_comp)
        np.maximum.at(peak, seed_comp, g_sig[seeds])
        comp_event = np.zeros(n_comp, dtype=np.int64)
        comp_event[seed_comp] = g_cells[seeds] // n_cells
        rank = np.empty(n_comp, dtype=np.int64)
        rank[np.lexsort((-peak, comp_event))] = np.arange(n_comp)
        seed_label = rank[seed_comp]
        members = np.nonzero(lab >= 0)[0]
        member_label = seed_label[lab[members]]
        m = len(members)

        # boundary: neighbours of clustered growing cells that are not growing. Their position slots
        # hold -1; writing label - big there with a minimum leaves the best (lowest) label.
        bc = np.concatenate(b_cell)
        bl = seed_label[np.concatenate(b_lab)]
        big = n_comp + 2
        np.minimum.at(position, bc, (bl - big).astype(np.int32))
        touched.append(bc)
        bc = _dedupe(bc, stamp)
        bl = position[bc].astype(np.int64) + big
    finally:
        _POSITION.give_back(*touched)
        _STAMP.give_back()

    out_cells = np.concatenate([g_cells[members], bc])
    out_labels = np.concatenate([member_label, bl]).astype(np.int32)
    boundary = np.concatenate([np.zeros(m, dtype=bool), np.ones(len(bc), dtype=bool)])
    return out_cells, out_labels, boundary


def topo_cluster(
    energy: np.ndarray,
    sigma: np.ndarray,
    neighbours: csr_matrix,
    seed: float = 4.0,
    grow: float = 2.0,
    boundary: float = 0.0,
) -> np.ndarray:
    """Cluster label per cell of one event (int32, -1 = not clustered).

    Labels 0..k-1 run by descending seed significance; ties go to the cluster with
    the lowest cell index. The boundary test is strict: with the default 0 a cell of
    exactly zero energy is not added. ``sigma`` must be positive (0/0 never clusters).
    """
    if not seed >= grow >= boundary:
        raise ValueError(f"need seed >= grow >= boundary, got {seed}, {grow}, {boundary}")
    neighbours = csr_matrix(neighbours)
    energy = np.asarray(energy)
    n = len(energy)
    if neighbours.shape != (n, n) or np.shape(sigma) != (n,):
        raise ValueError(f"energy {energy.shape}, sigma {np.shape(sigma)} and neighbours {neighbours.shape} disagree")
    with np.errstate(divide="ignore", invalid="ignore"):
        sig = np.abs(energy) / sigma
    cells = np.flatnonzero(sig > grow)
    out, labels, is_boundary = topo_cluster_sparse(cells, sig[cells], neighbours, n, seed, grow)
    keep = ~is_boundary | (sig[out] > boundary)
    result = np.full(n, -1, dtype=np.int32)
    result[out[keep]] = labels[keep]
    return result
