"""4-2-0 topo-clustering on hand-built graphs with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse import coo_matrix, csr_matrix

from raypf.simulate.topocluster import topo_cluster, topo_cluster_sparse


def chain_table(n: int):
    """A 1-D chain 0 - 1 - ... - n-1 as a CSR adjacency."""
    i = np.arange(n - 1)
    return coo_matrix((np.ones(2 * (n - 1)), (np.r_[i, i + 1], np.r_[i + 1, i])), shape=(n, n)).tocsr()


def cluster(sig: np.ndarray, n_cells: int | None = None, table=None):
    """Run the sparse clustering the way the detector does: pass only cells above the growing threshold."""
    n = len(sig)
    table = chain_table(n_cells or n) if table is None else table
    cells = np.nonzero(np.abs(sig) > 2.0)[0]
    out_cells, labels, boundary = topo_cluster_sparse(cells, sig[cells], table, n_cells or n)
    result = np.full(n, -1)
    result[out_cells] = labels
    return result, dict(zip(out_cells.tolist(), boundary.tolist()))


def test_events_of_a_batch_are_independent_and_ordered():
    """Two copies of a 6-cell chain as events 0 and 1: no links across events; labels by event first."""
    n = 6
    table = chain_table(n)
    e0 = np.array([0, 0, 5, 0, 0, 3.0])  # cell 5 (growing, event 0) must not join cell 0 of event 1
    e1 = np.array([3, 0, 0, 0, 9, 0.0])
    sig = np.concatenate([e0, e1])
    labels, _ = cluster(sig, n_cells=n, table=table)
    assert labels[:n].tolist() == [-1, 0, 0, 0, -1, -1]
    assert labels[n:].tolist() == [-1, -1, -1, 1, 1, 1]



def grid_table(n: int) -> csr_matrix:
    """An n x n grid with 8-neighbours (cell = row * n + col), no wrap-around."""
    r, c = np.divmod(np.arange(n * n), n)
    close = (np.abs(r[:, None] - r[None, :]) <= 1) & (np.abs(c[:, None] - c[None, :]) <= 1)
    np.fill_diagonal(close, False)
    return csr_matrix(close)


def dense(sig, table=None, **thresholds):
    sig = np.asarray(sig, dtype=float)
    table = chain_table(len(sig)) if table is None else table
    return topo_cluster(sig, np.ones(len(sig)), table, **thresholds).tolist()


def test_dense_seed_grows_and_adds_boundary_cells():
    # cell 4 seeds, 3 and 5 grow, 2 and 6 are boundary; 1 and 7 touch only boundary cells
    assert dense([0.5, 0.5, 1, 3, 5, 2.5, 1, 0.5, 0.5, 0.5]) == [-1, -1, 0, 0, 0, 0, 0, -1, -1, -1]


def test_dense_two_seeds_joined_by_a_growing_cell_merge():
    assert dense([0.1, 5, 3, 6, 0.1, 0.1, 0.1]) == [0, 0, 0, 0, 0, -1, -1]


def test_dense_separate_seeds_are_labelled_by_significance():
    labels = dense([0.1, 5, 0.1, 0.1, 0.1, 9, 0.1, 0.1])
    assert labels == [1, 1, 1, -1, 0, 0, 0, -1]


def test_dense_boundary_cell_between_two_clusters_joins_the_more_significant():
    # the weaker cluster has the lower cell index, so a "first come" rule would get this wrong
    assert dense([0.1, 5, 1.0, 9, 0.1]) == [1, 1, 0, 0, 0]
    # ... also when the cell is reached through growing cells on both sides
    assert dense([0.1, 5, 3, 1.0, 3, 9, 0.1]) == [1, 1, 1, 0, 0, 0, 0]


def test_dense_negative_fluctuation_seeds_and_grows():
    assert dense([0.1, 0.1, -5, -3, 0.1, 0.1]) == [-1, 0, 0, 0, 0, -1]
    # a negative seed outranks a weaker positive one
    assert dense([4.5, 0.1, 0.1, 0.1, -7]) == [1, 1, -1, 0, 0]


def test_dense_growing_cells_without_a_seed_and_far_cells_stay_unclustered():
    assert dense([0.1, 3, 3, 0.1, 0.1, 5, 0.1]) == [-1, -1, -1, -1, 0, 0, 0]
    assert dense([1.9, 1.9, 1.9, 1.9]) == [-1, -1, -1, -1]


def test_dense_boundary_threshold_is_strict():
    # exactly-zero neighbours are not added at the default boundary of 0; below-threshold ones never
    assert dense([0.1, 0.0, 5, 0.3, 0.1]) == [-1, -1, 0, 0, -1]
    assert dense([0.1, 0.8, 5, 0.3, 0.1], boundary=0.5) == [-1, 0, 0, -1, -1]
    assert dense([0.1, 3.5, 5, 2.5, 0.1], seed=6, grow=3) == [-1, -1, -1, -1, -1]


def test_dense_grid_with_diagonals():
    """5x5 grid, 8-neighbours: a central seed takes its ring of 8 as boundary, a grow cell extends it."""
    sig = np.full(25, 0.5)
    sig[12] = 6.0
    labels = np.array(dense(sig, grid_table(5)))
    assert np.flatnonzero(labels == 0).tolist() == [6, 7, 8, 11, 12, 13, 16, 17, 18]
    sig[18] = 2.5  # diagonal growing cell: its neighbours 19, 23, 24 join as boundary
    labels = np.array(dense(sig, grid_table(5)))
    assert np.flatnonzero(labels == 0).tolist() == [6, 7, 8, 11, 12, 13, 14, 16, 17, 18, 19, 22, 23, 24]
    assert np.all(labels[labels != 0] == -1)


def test_dense_rejects_inconsistent_thresholds():
    with pytest.raises(ValueError):
        dense([5.0, 1.0], seed=2.0, grow=3.0)


def reference_topo(sig: np.ndarray, adjacency, seed: float, grow: float, boundary: float) -> list[int]:
    """Plain-Python 4-2-0 clustering, written from the definition, to check the vectorised one."""
    s = np.abs(sig)
    n = len(s)
    comp = [-1] * n
    comps: list[list[int]] = []
    for start in range(n):
        if s[start] > seed and comp[start] < 0:
            comp[start], todo, members = len(comps), [start], []
            while todo:
                c = todo.pop()
                members.append(c)
                for nb in adjacency[c]:
                    if s[nb] > grow and comp[nb] < 0:
                        comp[nb] = len(comps)
                        todo.append(nb)
            comps.append(members)
    order = sorted(range(len(comps)), key=lambda k: (-max(s[c] for c in comps[k]), min(comps[k])))
    labels = [-1] * n
    for lab, k in enumerate(order):
        for c in comps[k]:
            labels[c] = lab
    growing_labels = list(labels)
    for lab, k in enumerate(order):  # lowest label first, so it wins contested boundary cells
        for c in comps[k]:
            for nb in adjacency[c]:
                if growing_labels[nb] < 0 and labels[nb] < 0 and s[nb] > boundary:
                    labels[nb] = lab
    return labels


@pytest.mark.parametrize("trial", range(40))
def test_dense_matches_reference_on_random_graphs(trial):
    rng = np.random.default_rng(trial)
    n = int(rng.integers(20, 120))
    upper = np.triu(rng.random((n, n)) < rng.uniform(0.01, 0.08), 1)
    table = csr_matrix(upper | upper.T)
    adjacency = [table.indices[table.indptr[i] : table.indptr[i + 1]].tolist() for i in range(n)]
    sigma = rng.uniform(0.5, 2.0, n)
    energy = sigma * rng.standard_normal(n) * rng.choice([1.0, 2.5], n)
    energy[rng.random(n) < 0.1] = 0.0
    thresholds = {"seed": 4.0, "grow": 2.0, "boundary": float(rng.choice([0.0, 0.5, 1.0]))}
    got = topo_cluster(energy, sigma, table, **thresholds)
    assert got.dtype == np.int32
    assert got.tolist() == reference_topo(energy / sigma, adjacency, **thresholds)


def test_full_detector_event_matches_reference():
    """A full 1.8e5-cell noise event plus signal, through the per-event API, against the plain-Python reference."""
    from raypf.simulate.geometry import build_geometry

    geo = build_geometry()
    rng = np.random.default_rng(7)
    n = geo.n_cells
    energy = geo.sigma * rng.standard_normal(n).astype(np.float32)
    hot = rng.choice(n, 300, replace=False)
    energy[hot] += rng.exponential(2.0, 300).astype(np.float32)
    labels = topo_cluster(energy, geo.sigma, geo.neighbours)
    assert labels.max() + 1 > 50

    class Rows:  # adjacency lists read from the CSR graph on demand
        def __getitem__(self, i):
            return geo.neighbours.indices[geo.neighbours.indptr[i] : geo.neighbours.indptr[i + 1]]

    expected = reference_topo(energy / geo.sigma, Rows(), seed=4.0, grow=2.0, boundary=0.0)
    assert labels.tolist() == expected
