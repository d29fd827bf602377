"""The rule-based particle flow on hand-built events whose subtraction is worked out by hand.

Unless a test says otherwise: the template gives E/p = 0.5 +- 0.1 everywhere, so a track of momentum p expects
E_dep = p / 2 with sigma = p / 10; cells sit in EMB2 (layer 1) with pitch 0.1, so a cell at distance d from the
track lies in ring floor(d / 0.1); tracks are extrapolated to EMB2 at their reference position.
"""

from __future__ import annotations

import numpy as np
import pytest

from raypf.data.cone import cumsum0
from raypf.evaluate.events import EventBatch
from raypf.evaluate.particle_flow import PFOptions, cluster_widths, subtract
from raypf.evaluate.template import EpTemplate

TEMPLATE = EpTemplate(p_edges=(0, 1e4), eta_edges=(0, 5), mean=[[0.5]], std=[[0.1]], count=[[100]])
N_LAYERS = 19
EMB1, EMB2 = 0, 1


def track(pt: float, eta: float = 0.0, phi: float = 0.0, p: float | None = None, layers=None, selected: bool = True):
    """A track at reference (eta, phi); ``layers`` maps layer index -> (eta, phi) (default: EMB2 at the reference)."""
    return {"pt": pt, "p": pt if p is None else p, "eta": eta, "phi": phi, "selected": selected,
            "layers": {EMB2: (eta, phi)} if layers is None else layers}  # fmt: skip


def cluster(cells, eta: float = 0.0, phi: float = 0.0):
    """Cells as (energy, eta, phi[, layer[, pitch]]); (eta, phi) is the cluster position used for matching."""
    return {"eta": eta, "phi": phi, "cells": [tuple(c) + (EMB2, 0.1)[len(c) - 3 :] for c in cells]}


def make_batch(events: list[tuple[list[dict], list[dict]]]) -> EventBatch:
    """An EventBatch of events given as (tracks, clusters)."""
    tracks = [t for ts, _ in events for t in ts]
    clusters = [c for _, cs in events for c in cs]
    cells = [cell for c in clusters for cell in c["cells"]]
    layer_eta = np.full((len(tracks), N_LAYERS), np.nan, dtype=np.float32)
    layer_phi = np.full((len(tracks), N_LAYERS), np.nan, dtype=np.float32)
    for i, t in enumerate(tracks):  # test fixture construction, a handful of tracks
        for ly, (eta, phi) in t["layers"].items():
            layer_eta[i, ly], layer_phi[i, ly] = eta, phi
    sel = np.array([t["selected"] for t in tracks], dtype=bool)
    col = np.array(cells, dtype=np.float64).reshape(-1, 5)
    f32 = np.float32
    return EventBatch(
        entry=np.arange(len(events), dtype=np.int64),
        track_offsets=cumsum0(np.array([len(ts) for ts, _ in events])),
        track_pt=np.array([t["pt"] for t in tracks], dtype=f32),
        track_p=np.array([t["p"] for t in tracks], dtype=f32),
        layer_eta=layer_eta,
        layer_phi=layer_phi,
        ref_eta=np.where(sel, [t["eta"] for t in tracks], np.nan).astype(f32),
        ref_phi=np.where(sel, [t["phi"] for t in tracks], np.nan).astype(f32),
        selected=sel,
        cluster_offsets=cumsum0(np.array([len(cs) for _, cs in events])),
        cluster_e=np.array([sum(c[0] for c in cl["cells"]) for cl in clusters], dtype=f32),
        cluster_eta=np.array([c["eta"] for c in clusters], dtype=f32),
        cluster_phi=np.array([c["phi"] for c in clusters], dtype=f32),
        cell_offsets=cumsum0(np.array([len(c["cells"]) for c in clusters])),
        cell_id=np.arange(len(cells), dtype=np.uint64),
        cell_e=col[:, 0].astype(f32),
        cell_eta=col[:, 1].astype(f32),
        cell_phi=col[:, 2].astype(f32),
        cell_layer=col[:, 3].astype(np.int64),
        cell_pitch=col[:, 4].astype(f32),
    )


def fractions(events: EventBatch, opts: PFOptions | None = None) -> dict[tuple[int, int], float]:
    t, c, f = subtract(events, TEMPLATE, opts or PFOptions())
    return {(int(a), int(b)): float(x) for a, b, x in zip(t, c, f)}


def assert_fractions(got: dict, want: dict) -> None:
    assert set(got) == set(want), (got, want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-9), (key, got, want)


# one track at the origin and one cluster; rings 0, 1 (3.5 GeV), 2 (2), 3 (3)
SINGLE = (
    [track(10.0)],  # E_dep = 5, sigma = 1
    [cluster([(2.0, 0.05, 0.0), (-0.5, 0.0, 0.05), (1.5, 0.15, 0.0), (0.5, -0.15, 0.0), (2.0, 0.25, 0.0),
              (3.0, 0.35, 0.0)], eta=0.1)],
)  # fmt: skip


def test_single_track_subtracts_whole_rings_then_the_crossing_ring_in_proportion():
    # ring 0: 2 GeV (the -0.5 GeV cell weighs nothing but goes with its ring), ring 1: 1.5 + 0.5 -> cumulative 4;
    # ring 2 (2 GeV) crosses E_dep = 5: (5 - 4) / 2 = 0.5 of it; ring 3 untouched; 1 + 3 = 4 GeV left > 1.5 sigma
    assert_fractions(fractions(make_batch([SINGLE])), {(0, 0): 1.0, (0, 1): 1.0, (0, 2): 1.0, (0, 3): 1.0, (0, 4): 0.5})


@pytest.mark.parametrize(("last", "want"), [(0.4, {(0, 0): 1.0, (0, 1): 1.0, (0, 2): 1.0}),
                                            (0.6, {(0, 0): 1.0, (0, 1): 0.5})])  # fmt: skip
def test_remnant_below_one_and_a_half_sigma_is_removed_and_kept_above(last, want):
    # E_dep = 5: ring 0 (4) whole, ring 1 (2) half; left 1 + last: 1.4 < 1.5 sigma -> all of it, 1.6 -> kept
    events = make_batch([([track(10.0)], [cluster([(4.0, 0.05, 0.0), (2.0, 0.15, 0.0), (last, 0.25, 0.0)], eta=0.09)])])
    assert_fractions(fractions(events), want)


# two tracks at the origin sharing one cluster; the softer one is listed first
SHARED = (
    [track(5.0), track(20.0)],
    [cluster([(6.0, 0.05, 0.0), (6.0, 0.15, 0.0), (4.0, 0.25, 0.0), (4.0, 0.35, 0.0)], eta=0.15)],
)


def test_higher_pt_track_subtracts_first_and_the_next_gets_what_remains():
    # track 1 (pT 20, E_dep 10, sigma 2): ring 0 (6) whole, ring 1 (6) crosses: 4/6; 10 GeV left > 3
    # track 0 (pT 5, E_dep 2.5, sigma 0.5): ring 1 holds 2 GeV -> its remaining third whole; ring 2 (4): 0.5/4
    got = fractions(make_batch([SHARED]))
    assert_fractions(got, {(1, 0): 1.0, (1, 1): 2 / 3, (0, 1): 1 / 3, (0, 2): 0.125})
    assert got[(1, 1)] + got[(0, 1)] == pytest.approx(1.0)


def test_a_cluster_emptied_by_a_harder_track_is_no_longer_a_match():
    # track 1 (pT 20, p 10, E_dep 5) takes all of cluster 0 (3 GeV at the origin); cluster 1 (dR 0.25 > add_dr,
    # sigma_eta 0.2 -> dR' 1.25) is not added. Track 0 (pT 5, p 4, E_dep 2, sigma 0.4) then matches cluster 1
    # (cluster 0 now holds nothing): its ring 0 (2.5 GeV) gives 2 / 2.5; 3 GeV left > 0.6.
    wide = cluster([(2.5, 0.05, 0.0), (2.5, 0.45, 0.0)], eta=0.25)
    events = make_batch([([track(5.0, p=4.0), track(20.0, p=10.0)], [cluster([(3.0, 0.0, 0.0)]), wide])])
    assert_fractions(fractions(events), {(1, 0): 1.0, (0, 1): 0.8})


@pytest.mark.parametrize(("energy", "taken"), [(0.9, False), (1.1, True)])
def test_clusters_below_the_ep_threshold_are_not_matched(energy, taken):
    # p = 10: E/p = 0.09 < 0.1 -> no match, 0.11 -> matched and (E < E_dep) taken whole
    got = fractions(make_batch([([track(10.0)], [cluster([(energy, 0.0, 0.0)])])]))
    assert_fractions(got, {(0, 0): 1.0} if taken else {})


def test_the_closest_eligible_cluster_is_matched_past_an_ineligible_one():
    # cluster 0 at the track, E/p 0.09: skipped; cluster 1 at delta eta 0.03 (dR' = 1.2 with floored widths)
    # matched: 5.5 >= E_dep (no split shower), ring 0 gives 5/5.5, the 0.5 GeV left < 1.5 goes as remnant
    events = make_batch([([track(10.0)], [cluster([(0.9, 0.0, 0.0)]), cluster([(5.5, 0.03, 0.0)], eta=0.03)])])
    assert_fractions(fractions(events), {(0, 1): 1.0})


@pytest.mark.parametrize(
    ("deta", "dphi", "taken"),
    [(0.04, 0.0, True), (0.045, 0.0, False), (0.0, 0.04, True), (0.0, 0.045, False), (0.028, 0.028, True),
     (0.03, 0.03, False)],
)  # fmt: skip
def test_no_match_beyond_the_dr_prime_limit(deta, dphi, taken):
    # one-cell cluster: widths floored at 0.025, so dR' = hypot(deta, dphi) / 0.025: 1.6 (matched), 1.8 (> 1.64),
    # 1.58 and 1.70 on the diagonal
    got = fractions(make_batch([([track(10.0)], [cluster([(3.0, deta, dphi)], eta=deta, phi=dphi)])]))
    assert_fractions(got, {(0, 0): 1.0} if taken else {})


@pytest.mark.parametrize(("track_phi", "taken"), [(-np.pi + 0.15, True), (-np.pi + 0.17, False)])
def test_cluster_widths_come_from_the_cells_with_phi_wrapped(track_phi, taken):
    # two 1 GeV cells at phi = +-(pi - 0.1), a cluster at phi = pi: sigma_phi = 0.1 across the wrap,
    # sigma_eta floored; a track 0.15 (0.17) beyond the wrap is at dR' = 1.5 (1.7)
    cl = cluster([(1.0, 0.0, np.pi - 0.1), (1.0, 0.0, -np.pi + 0.1)], phi=np.pi)
    events = make_batch([([track(10.0, phi=track_phi)], [cl])])
    sig_eta, sig_phi = cluster_widths(events, 0.025)
    assert sig_eta == pytest.approx([0.025]) and sig_phi == pytest.approx([0.1], rel=1e-5)
    assert_fractions(fractions(events), {(0, 0): 1.0, (0, 1): 1.0} if taken else {})


@pytest.mark.parametrize(("matched_e", "want"), [(3.0, {(0, 0): 1.0, (0, 1): 1.0}), (4.5, {(0, 0): 1.0})])
def test_split_shower_adds_the_clusters_within_add_dr(matched_e, want):
    # E_dep = 5, sigma = 1. Matched 3 GeV: (3 - 5) / 1 = -2 < -1 -> add cluster 1 (dR 0.15, 2 GeV), not
    # cluster 2 (dR 0.25) nor cluster 3 (dR 0.12 but E <= 0); rings 0 (3) and 1 (2) sum to 5: both whole.
    # (Had clusters 2 or 3 been added, their cell would go too: ring 1 for cluster 3, the remnant for cluster 2.)
    # Matched 4.5 GeV: -0.5 -> no split; ring 0 whole, nothing of cluster 1.
    clusters = [cluster([(matched_e, 0.0, 0.0)]), cluster([(2.0, 0.15, 0.0)], eta=0.15),
                cluster([(1.0, 0.25, 0.0)], eta=0.25), cluster([(-0.5, 0.0, 0.12)], phi=0.12)]  # fmt: skip
    assert_fractions(fractions(make_batch([([track(10.0)], clusters)])), want)


@pytest.mark.parametrize(
    ("emb1_pitch", "want"),
    [(0.1, {(0, 4): 1.0, (0, 0): 0.5}), (0.05, {(0, 0): 1.0, (0, 1): 1.0, (0, 2): 1.0, (0, 3): 0.5})],
)
def test_the_densest_layer_is_emptied_first(emb1_pitch, want):
    # EMB1: 4 x 1 GeV in separate rings, EMB2: 3 GeV in one cell (pitch 0.1); E_dep = 3.5, sigma 0.7.
    # EMB1 pitch 0.1: 4 GeV / 0.04 < 3 GeV / 0.01 -> EMB2 whole (3), then EMB1's first ring half; 3.5 GeV left.
    # EMB1 pitch 0.05: 4 GeV / 0.01 is denser -> EMB1's rings 0, 2, 4 whole and ring 6 half; EMB2 untouched.
    t = track(7.0, layers={EMB1: (0.0, 0.0), EMB2: (0.0, 0.0)})
    cells = [(1.0, eta, 0.0, EMB1, emb1_pitch) for eta in (0.03, 0.13, 0.23, 0.33)] + [(3.0, 0.05, 0.0, EMB2)]
    assert_fractions(fractions(make_batch([([t], [cluster(cells, eta=0.12)])])), want)


def test_rings_are_centred_on_the_extrapolation_in_the_cell_layer_else_the_reference():
    # E_dep = 1 (p = 2), two 2 GeV EMB1 cells at eta 0.05 and 0.35: the first ring takes half of one cell.
    # event 0: EMB1 extrapolation at eta 0.3 -> the cell at 0.35 is in ring 0;
    # event 1: no EMB1 extrapolation, event 2: cells in no layer -> the reference (eta 0): the cell at 0.05
    def event(layers, layer):
        cells = [(2.0, 0.05, 0.0, layer), (2.0, 0.35, 0.0, layer)]
        return [track(2.0, layers=layers)], [cluster(cells, eta=0.2)]

    at_03 = {EMB1: (0.3, 0.0), EMB2: (0.0, 0.0)}
    events = make_batch([event(at_03, EMB1), event({EMB2: (0.0, 0.0)}, EMB1), event(at_03, -1)])
    assert_fractions(fractions(events), {(0, 1): 0.5, (1, 2): 0.5, (2, 4): 0.5})


def test_rings_wrap_in_phi():
    # E_dep = 1 (p = 2) at phi = -pi + 0.02; the 2 GeV cell at phi = pi - 0.03 is 0.05 away across the wrap
    # (ring 0) and gives half, the one at -pi + 0.17 (ring 1) nothing
    cells = [(2.0, 0.0, np.pi - 0.03), (2.0, 0.0, -np.pi + 0.17)]
    events = make_batch([([track(2.0, phi=-np.pi + 0.02)], [cluster(cells, phi=-np.pi + 0.07)])])
    assert_fractions(fractions(events), {(0, 0): 0.5})


@pytest.mark.parametrize(("max_pt", "want"), [(None, {(1, 0): 1.0, (1, 1): 2 / 3, (0, 1): 1 / 3, (0, 2): 0.125}),
                                              (20.0, {(1, 0): 1.0, (1, 1): 2 / 3, (0, 1): 1 / 3, (0, 2): 0.125}),
                                              (10.0, {(0, 0): 2.5 / 6})])  # fmt: skip
def test_tracks_above_max_pt_are_not_subtracted(max_pt, want):
    # max_pt 10: the pT-20 track is left out, the pT-5 one (E_dep 2.5) takes 2.5/6 of ring 0; 17.5 GeV left
    assert_fractions(fractions(make_batch([SHARED]), PFOptions(max_pt=max_pt)), want)


def test_unselected_tracks_and_events_without_clusters_or_cells_subtract_nothing():
    assert fractions(make_batch([([track(10.0, selected=False)], SINGLE[1])])) == {}
    for events in ([([], SINGLE[1]), ([], [])], [([track(10.0)], [])], [([track(10.0)], [cluster([])])]):
        t, c, f = subtract(make_batch(events), TEMPLATE)
        assert len(t) == len(c) == len(f) == 0


SPLIT = ([track(10.0)], [cluster([(3.0, 0.0, 0.0)]), cluster([(2.0, 0.15, 0.0)], eta=0.15)])


def _shifted(events: list, batch: EventBatch) -> dict:
    """Each event subtracted alone, its rows shifted to where they sit in ``batch``."""
    out = {}
    for e, ev in enumerate(events):  # a few events of a test
        for (t, c), f in fractions(make_batch([ev])).items():
            out[(t + int(batch.track_offsets[e]), c + int(batch.cell_offsets[batch.cluster_offsets[e]]))] = f
    return out


def test_events_processed_together_match_each_event_alone():
    events = [SINGLE, SHARED, SPLIT]
    batch = make_batch(events)
    got = fractions(batch)
    assert len(got) == 5 + 4 + 2
    assert got == _shifted(events, batch)


def random_batch(rng: np.random.Generator, n_events: int, n_tracks: int, n_clusters: int, n_cells: int) -> EventBatch:
    """Roughly jet-like synthetic events: cells scattered around cluster centres in a few layers, tracks pointing at
    clusters (some not selected, some layers not reached), noise cells of either sign."""
    per_cluster = max(n_cells // n_clusters, 1)
    T, C = n_events * n_tracks, n_events * n_clusters
    N = C * per_cluster
    c_eta, c_phi = rng.uniform(-1.3, 1.3, C), rng.uniform(-np.pi, np.pi, C)
    cc = np.repeat(np.arange(C), per_cluster)
    layers = np.array([0, 1, 2, 10, 11, 12])
    pitch = np.array([0.025, 0.025, 0.05, 0.1, 0.1, 0.2])
    li = rng.integers(0, len(layers), N)
    cell_eta = c_eta[cc] + rng.normal(0, 0.06, N)
    cell_phi = np.mod(c_phi[cc] + rng.normal(0, 0.06, N) + np.pi, 2 * np.pi) - np.pi
    cell_e = rng.exponential(0.2, N) * rng.choice([1.0, 1.0, 1.0, -0.3], N)
    c_e = np.bincount(cc, weights=cell_e, minlength=C)
    # each track points (with some smearing) at a random cluster of its event
    t_event = np.repeat(np.arange(n_events), n_tracks)
    target = t_event * n_clusters + rng.integers(0, n_clusters, T)
    ref_eta = c_eta[target] + rng.normal(0, 0.03, T)
    ref_phi = np.mod(c_phi[target] + rng.normal(0, 0.03, T) + np.pi, 2 * np.pi) - np.pi
    p = np.maximum(c_e[target], 0.5) * rng.uniform(0.3, 1.5, T)
    layer_eta = ref_eta[:, None] + rng.normal(0, 0.01, (T, N_LAYERS))
    layer_phi = ref_phi[:, None] + rng.normal(0, 0.01, (T, N_LAYERS))
    missing = rng.random((T, N_LAYERS)) < 0.2
    layer_eta[missing] = np.nan
    layer_phi[missing] = np.nan
    sel = rng.random(T) < 0.9
    f32 = np.float32
    return EventBatch(
        entry=np.arange(n_events, dtype=np.int64),
        track_offsets=cumsum0(np.full(n_events, n_tracks)),
        track_pt=(p * rng.uniform(0.5, 1.0, T)).astype(f32),
        track_p=p.astype(f32),
        layer_eta=layer_eta.astype(f32),
        layer_phi=layer_phi.astype(f32),
        ref_eta=np.where(sel, ref_eta, np.nan).astype(f32),
        ref_phi=np.where(sel, ref_phi, np.nan).astype(f32),
        selected=sel,
        cluster_offsets=cumsum0(np.full(n_events, n_clusters)),
        cluster_e=c_e.astype(f32),
        cluster_eta=c_eta.astype(f32),
        cluster_phi=c_phi.astype(f32),
        cell_offsets=cumsum0(np.full(C, per_cluster)),
        cell_id=np.arange(N, dtype=np.uint64),
        cell_e=cell_e.astype(f32),
        cell_eta=cell_eta.astype(f32),
        cell_phi=cell_phi.astype(f32),
        cell_layer=np.where(rng.random(N) < 0.05, -1, layers[li]),
        cell_pitch=pitch[li].astype(f32),
    )


def _event_slice(b: EventBatch, e: int) -> EventBatch:
    t0, t1 = b.track_offsets[e], b.track_offsets[e + 1]
    c0, c1 = b.cluster_offsets[e], b.cluster_offsets[e + 1]
    n0, n1 = b.cell_offsets[c0], b.cell_offsets[c1]
    tracks = {k: getattr(b, k)[t0:t1] for k in ("track_pt", "track_p", "layer_eta", "layer_phi", "ref_eta",
                                                "ref_phi", "selected")}  # fmt: skip
    clusters = {k: getattr(b, k)[c0:c1] for k in ("cluster_e", "cluster_eta", "cluster_phi")}
    cells = {k: getattr(b, k)[n0:n1] for k in ("cell_id", "cell_e", "cell_eta", "cell_phi", "cell_layer", "cell_pitch")}
    return EventBatch(entry=b.entry[e : e + 1], track_offsets=np.array([0, t1 - t0]),
                      cluster_offsets=np.array([0, c1 - c0]), cell_offsets=b.cell_offsets[c0 : c1 + 1] - n0,
                      **tracks, **clusters, **cells)  # fmt: skip


def test_random_events_fractions_bounded_and_independent_of_batching():
    batch = random_batch(np.random.default_rng(3), n_events=4, n_tracks=12, n_clusters=8, n_cells=400)
    t, c, f = subtract(batch, TEMPLATE)
    assert len(t) > 100 and ((f > 0) & (f <= 1 + 1e-12)).all()
    assert np.bincount(c, weights=f).max() <= 1 + 1e-12
    assert len(np.unique(t * len(batch.cell_e) + c)) == len(t)
    cell_event = batch.cluster_event()[batch.cell_cluster()]
    assert (batch.track_event()[t] == cell_event[c]).all() and batch.selected[t].all()
    # the tracks subtracted some cells whole, some in part, and the per-rank state carried over: several tracks
    # took from one cell
    assert (f == 1).any() and (f < 1).any() and (np.bincount(c) > 1).any()
    for e in range(batch.n_events):  # each event alone gives the same entries
        te, ce, fe = subtract(_event_slice(batch, e), TEMPLATE)
        mine = batch.track_event()[t] == e
        np.testing.assert_array_equal(te + batch.track_offsets[e], t[mine])
        np.testing.assert_array_equal(ce + batch.cell_offsets[batch.cluster_offsets[e]], c[mine])
        np.testing.assert_allclose(fe, f[mine], rtol=1e-12)
