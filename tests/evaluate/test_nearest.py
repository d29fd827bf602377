"""The nearest-track baseline on hand-built events: per-layer extrapolations, fallback, ties, wrap, events apart."""

from __future__ import annotations

import numpy as np

from raypf.evaluate.nearest import nearest_track, pair_chunks
from tests.evaluate.test_particle_flow import EMB1, EMB2, cluster, make_batch, random_batch, track


def test_hand_built_events():
    # event 0: track 0 at eta 0 (no EMB1 extrapolation), track 1 not selected but sitting on cell 1,
    # track 2 at eta 0.5 with its EMB1 extrapolation at eta 0.1 (and one in TileExt2 at eta 0.12, which a cell in
    # no layer must not pick up as layer -1, nor EMB1's)
    t0 = track(5.0, 0.0, 0.0)
    t1 = track(9.0, 0.4, 0.0, layers={EMB2: (0.4, 0.0), EMB1: (0.15, 0.0)}, selected=False)
    t2 = track(7.0, 0.5, 0.0, layers={EMB2: (0.5, 0.0), EMB1: (0.1, 0.0), 18: (0.12, 0.0)})
    cells0 = [
        (1.0, 0.1, 0.0, EMB2),  # 0: EMB2, 0.1 from track 0, 0.4 from track 2 -> 0
        (1.0, 0.4, 0.0, EMB2),  # 1: 0.1 from track 2 -> 2 (the unselected track 1 is on it)
        (1.0, 0.15, 0.0, EMB1),  # 2: EMB1: track 2 there at 0.1 (0.05 away), track 0 falls back to 0 (0.15) -> 2
        (1.0, -0.05, 0.0, EMB1),  # 3: track 0 (reference, 0.05) beats track 2 in EMB1 (0.15) -> 0
        (1.0, 0.12, 0.0, -1),  # 4: no layer -> references: 0.12 vs 0.38 -> 0
        (1.0, 0.25, 0.0, EMB2),  # 5: 0.25 from both -> the lower row, 0
        (1.0, 0.45, 0.3, EMB2),  # 6: phi counts too: hypot(0.45, 0.3) vs hypot(0.05, 0.3) -> 2
    ]
    # event 1: only an unselected track -> -1
    # event 2: tracks 4 (phi 3.0), 5 (phi -3.13) and 6 on cell 0 of event 0 (not to be mixed up). Cell 8 at phi 3.13
    # is 0.13 from track 4 and 2 pi - 6.26 = 0.023 from track 5 across the wrap; cell 9 at phi 2.95: 0.05 from
    # track 4, 0.20 across the wrap from track 5
    ev2_tracks = [track(3.0, 0.0, 3.0), track(4.0, 0.0, -3.13), track(5.0, 0.1, 0.0)]
    batch = make_batch([
        ([t0, t1, t2], [cluster(cells0[:4]), cluster(cells0[4:])]),
        ([track(6.0, selected=False)], [cluster([(1.0, 0.0, 0.0)])]),
        (ev2_tracks, [cluster([(1.0, 0.0, 3.13), (1.0, 0.0, 2.95), (1.0, 0.1, 0.0)])]),
    ])  # fmt: skip
    want = [0, 2, 2, 0, 0, 0, 2, -1, 5, 4, 6]
    np.testing.assert_array_equal(nearest_track(batch), want)
    np.testing.assert_array_equal(nearest_track(batch, max_pairs=1), want)


def test_event_without_tracks_or_cells():
    batch = make_batch([([], [cluster([(1.0, 0.0, 0.0)])]), ([track(5.0)], []), ([track(5.0)], [cluster([])])])
    np.testing.assert_array_equal(nearest_track(batch), [-1])
    assert len(nearest_track(make_batch([([track(5.0)], [])]))) == 0


def test_chunked_pairs_match_a_brute_force_over_all_pairs():
    batch = random_batch(np.random.default_rng(5), n_events=3, n_tracks=9, n_clusters=5, n_cells=60)
    # brute force: every cell against every track, other events' and unselected tracks masked out
    cell_event = batch.cluster_event()[batch.cell_cluster()]
    lay = np.maximum(batch.cell_layer, 0)
    t_eta = batch.layer_eta[:, lay].T  # (cells, tracks)
    t_phi = batch.layer_phi[:, lay].T
    fall = (batch.cell_layer[:, None] < 0) | ~np.isfinite(t_eta)
    t_eta = np.where(fall, batch.ref_eta[None, :], t_eta).astype(np.float64)
    t_phi = np.where(fall, batch.ref_phi[None, :], t_phi).astype(np.float64)
    dphi = np.mod(batch.cell_phi[:, None] - t_phi + np.pi, 2 * np.pi) - np.pi
    d2 = (batch.cell_eta[:, None] - t_eta) ** 2 + dphi**2
    ok = (cell_event[:, None] == batch.track_event()[None, :]) & batch.selected[None, :]
    want = np.where(ok.any(axis=1), np.argmin(np.where(ok, d2, np.inf), axis=1), -1)
    assert len(np.unique(want)) > 10
    for max_pairs in (1, 7, 100, 4_000_000):
        np.testing.assert_array_equal(nearest_track(batch, max_pairs=max_pairs), want)
    # only some cells asked for (repeated, unordered): those get the same answer, the others -1
    asked = np.array([40, 3, 3, 17, 59, 0])
    for max_pairs in (1, 4_000_000):
        got = nearest_track(batch, max_pairs=max_pairs, cells=asked)
        np.testing.assert_array_equal(got[asked], want[asked])
        assert (np.delete(got, asked) == -1).all()


def test_pair_chunks_stay_within_the_bound():
    # greedy: 3 + 3 + 0 | 5 | 2 (2 + 9 > 6) | 9 alone (over the bound) | 1
    np.testing.assert_array_equal(pair_chunks(np.array([3, 3, 0, 5, 2, 9, 1]), 6), [0, 3, 4, 5, 6, 7])
    np.testing.assert_array_equal(pair_chunks(np.array([1, 1, 1]), 100), [0, 3])
    np.testing.assert_array_equal(pair_chunks(np.zeros(0, dtype=np.int64), 100), [0])
