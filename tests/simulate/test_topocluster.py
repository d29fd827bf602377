"""4-2-0 topo-clustering on hand-built graphs with known answers."""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix

from raypf.simulate.topo_sparse import topo_cluster_sparse


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


def test_seed_grows_through_cells_above_two_sigma_and_adds_boundary():
    sig = np.array([0, 0, 1, 3, 5, 2.5, 1, 0, 0, 0.0])
    labels, boundary = cluster(sig)
    assert labels.tolist() == [-1, -1, 0, 0, 0, 0, 0, -1, -1, -1]
    assert boundary[2] and boundary[6] and not boundary[4] and not boundary[3]


def test_two_seeds_joined_by_a_growing_cell_merge():
    sig = np.array([0, 5, 3, 6, 0, 0, 0.0])
    labels, _ = cluster(sig)
    assert labels.tolist() == [0, 0, 0, 0, 0, -1, -1]


def test_separate_seeds_are_labelled_by_significance():
    sig = np.array([0, 5, 0, 0, 0, 9, 0, 0.0])
    labels, _ = cluster(sig)
    assert labels[5] == 0 and labels[1] == 1
    assert labels[0] == 1 and labels[2] == 1 and labels[4] == 0 and labels[6] == 0
    assert labels[3] == -1 and labels[7] == -1


def test_boundary_cell_between_two_clusters_joins_the_more_significant():
    sig = np.array([0, 5, 0, 9, 0.0])  # cell 2 touches both seeds
    labels, boundary = cluster(sig)
    assert labels[1] == 1 and labels[3] == 0
    assert labels[2] == 0 and boundary[2]


def test_negative_fluctuations_seed_and_grow():
    sig = np.array([0, 0, -5, -3, 0, 0.0])
    labels, _ = cluster(sig)
    assert labels.tolist() == [-1, 0, 0, 0, 0, -1]


def test_growing_cells_without_a_seed_are_not_clustered():
    sig = np.array([0, 3, 3, 0, 0, 5, 0.0])
    labels, _ = cluster(sig)
    assert labels.tolist() == [-1, -1, -1, -1, 0, 0, 0]


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


def test_grid_with_diagonals():
    """A 5x5 grid with 8-neighbours: a central seed takes its ring of 8 as boundary."""
    g = np.arange(25).reshape(5, 5)
    src, dst = [], []
    for di, dj in [(0, 1), (1, 0), (1, 1), (1, -1)]:
        a = g[max(0, -di) : 5 - max(0, di), max(0, -dj) : 5 - max(0, dj)]
        b = g[max(0, di) :, max(0, dj) :][: a.shape[0], : a.shape[1]] if dj >= 0 else g[di:, : 5 + dj][: a.shape[0]]
        src.append(a.ravel())
        dst.append(b.ravel())
    s, d = np.concatenate(src), np.concatenate(dst)
    m = coo_matrix((np.ones(2 * len(s)), (np.r_[s, d], np.r_[d, s])), shape=(25, 25)).tocsr()
    sig = np.zeros(25)
    sig[12] = 6.0
    cells = np.array([12])
    out, labels, boundary = topo_cluster_sparse(cells, sig[cells], m, 25)
    assert sorted(out.tolist()) == [6, 7, 8, 11, 12, 13, 16, 17, 18]
    assert boundary.sum() == 8 and np.all(labels == 0)
