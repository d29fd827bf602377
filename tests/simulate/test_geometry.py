"""The calorimeter geometry: cell count, IDs, point-to-cell lookup and the neighbour graph."""

from __future__ import annotations

import numpy as np
import pytest

from raypf.data.mltree_schema import LAYERS
from raypf.simulate.geometry import LAYERS as CALO_LAYERS
from raypf.simulate.geometry import build_geometry


@pytest.fixture(scope="module")
def geo():
    return build_geometry()


def test_layers_and_cell_count(geo):
    assert tuple(ly.name for ly in CALO_LAYERS) == LAYERS
    assert 1.5e5 <= geo.n_cells <= 2.0e5
    assert set(np.unique(geo.sampling)) == {1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}
    emb2 = geo.layer == LAYERS.index("EMB2")
    assert np.allclose(geo.deta[emb2], 0.025) and np.allclose(geo.dphi[emb2], 2 * np.pi / 256, rtol=1e-6)
    assert np.all(geo.volume > 0)
    assert np.all(geo.rperp[geo.layer == LAYERS.index("EMB2")] == 1724.0)
    assert 300 < geo.rperp.min() < 400  # the end-cap edge at eta 3.2: z / sinh(eta)


def test_cell_ids_unique_and_unsigned(geo):
    assert geo.cell_id.dtype == np.uint64
    assert len(np.unique(geo.cell_id)) == geo.n_cells
    lar = np.isin(geo.layer, [LAYERS.index(n) for n in LAYERS if not n.startswith("Tile")])
    assert np.all(geo.cell_id[lar] >= np.uint64(2**63))
    assert np.all(geo.cell_id[~lar] < np.uint64(2**63))


def test_find_cells_contains_the_point(geo):
    rng = np.random.default_rng(0)
    for layer, ly in enumerate(CALO_LAYERS):
        lo = min(r[0] for r in ly.regions)
        hi = max(r[1] for r in ly.regions)
        eta = rng.uniform(lo, hi, 2000) * rng.choice([-1, 1], 2000)
        phi = rng.uniform(-np.pi, np.pi, 2000)
        cells = geo.find_cells(layer, eta, phi)
        assert np.all(cells >= 0), ly.name
        assert np.all(geo.layer[cells] == layer)
        assert np.all(np.abs(eta - geo.eta[cells]) <= geo.deta[cells] / 2 + 1e-5)
        dphi = np.mod(phi - geo.phi[cells] + np.pi, 2 * np.pi) - np.pi
        assert np.all(np.abs(dphi) <= geo.dphi[cells] / 2 + 1e-5)
    # outside acceptance
    assert np.all(geo.find_cells(LAYERS.index("EMB2"), np.array([1.6, -2.0]), np.zeros(2)) == -1)
    assert np.all(geo.find_cells(LAYERS.index("EME2"), np.array([0.5, 3.3]), np.zeros(2)) == -1)


def test_phi_wraps(geo):
    emb2 = LAYERS.index("EMB2")
    last, first, wrapped = geo.find_cells(emb2, np.full(3, 0.3), np.array([np.pi - 1e-9, -np.pi + 1e-9, np.pi + 0.01]))
    assert geo.phi[last] > np.pi - 0.03 and geo.phi[first] < -np.pi + 0.03
    assert wrapped == geo.find_cells(emb2, np.array([0.3]), np.array([-np.pi + 0.01]))[0]


def test_neighbours(geo):
    nb = geo.neighbours
    assert (nb != nb.T).nnz == 0
    assert nb.diagonal().sum() == 0
    emb2 = LAYERS.index("EMB2")
    cell = geo.find_cells(emb2, np.array([0.51]), np.array([0.3]))[0]
    near = nb.indices[nb.indptr[cell] : nb.indptr[cell + 1]]
    layers = geo.layer[near]
    assert np.sum(layers == emb2) == 8
    assert np.any(layers == LAYERS.index("EMB1")) and np.any(layers == LAYERS.index("EMB3"))
    # same-layer neighbours are adjacent cells
    same = near[layers == emb2]
    assert np.all(np.abs(geo.eta[same] - geo.eta[cell]) < 0.026)
    # across eta = 0 and across the phi wrap
    c0 = geo.find_cells(emb2, np.array([0.001]), np.array([np.pi - 0.001]))[0]
    near0 = nb.indices[nb.indptr[c0] : nb.indptr[c0 + 1]]
    assert np.any((geo.layer[near0] == emb2) & (geo.eta[near0] < 0))
    assert np.any((geo.layer[near0] == emb2) & (geo.phi[near0] < -3.0))


def test_noise_is_deterministic(geo):
    again = build_geometry.__wrapped__(12345)
    assert np.array_equal(again.sigma, geo.sigma)
    other = build_geometry.__wrapped__(1)
    assert not np.array_equal(other.sigma, geo.sigma)
    emb2 = geo.layer == LAYERS.index("EMB2")
    assert 0.02 < np.median(geo.sigma[emb2]) < 0.03


def test_layer_names_and_cell_order(geo):
    from raypf.simulate.geometry import LAYER_NAMES

    assert LAYER_NAMES == LAYERS and len(LAYER_NAMES) == 19
    assert np.all(np.diff(geo.layer) >= 0)  # ordered by layer, so find_cells is offset arithmetic
    assert geo.layer.dtype == np.int16 and geo.sampling.dtype == np.int32
    for name in ("eta", "phi", "deta", "dphi", "rperp", "volume", "sigma"):
        assert getattr(geo, name).dtype == np.float32, name


def test_every_cell_centre_maps_back_to_its_cell(geo):
    for layer in range(len(CALO_LAYERS)):
        idx = np.flatnonzero(geo.layer == layer)
        assert np.array_equal(geo.find_cells(layer, geo.eta[idx], geo.phi[idx]), idx), CALO_LAYERS[layer].name


def test_find_cells_region_edges_and_odd_input(geo):
    eme1 = LAYERS.index("EME1")
    below, above, fine_end, mid = geo.find_cells(eme1, np.array([1.4999, 1.5, 1.7999, 1.8001]), np.zeros(4))
    assert np.isclose(geo.deta[below], 0.025) and np.isclose(geo.deta[above], 0.003125)
    assert geo.eta[above] - geo.deta[above] / 2 == pytest.approx(1.5, abs=1e-6)
    assert np.isclose(geo.deta[fine_end], 0.003125) and np.isclose(geo.deta[mid], 0.025 / 6)
    hec0 = LAYERS.index("HEC0")
    inner, outer = geo.find_cells(hec0, np.array([-2.49, -2.51]), np.zeros(2))
    assert np.isclose(geo.deta[inner], 0.1) and np.isclose(geo.deta[outer], 0.175) and geo.eta[outer] < 0
    assert np.isclose(geo.dphi[outer], 2 * np.pi / 32)
    # scalars, a shape that is kept, non-finite input
    assert geo.find_cells(eme1, 2.0, 0.1).shape == ()
    assert geo.find_cells(eme1, np.full((3, 2), 2.0), np.zeros((3, 2))).shape == (3, 2)
    assert np.all(geo.find_cells(eme1, np.array([np.nan, 2.0, 2.0]), np.array([0.0, np.nan, np.inf])) == -1)
    # the gap scintillators: only their single eta bin
    gap1 = LAYERS.index("TileGap1")
    assert np.all(geo.find_cells(gap1, np.array([0.84, 0.96, -0.84]), np.zeros(3)) == -1)
    assert np.all(geo.find_cells(gap1, np.array([0.86, -0.94]), np.zeros(2)) >= 0)


# Longitudinal neighbours as the brief states them; the third entry is a layer whose coverage
# blocks the link (EME2 touches HEC0 only where EME3 is absent).
ADJACENT = [
    ("EMB1", "EMB2"), ("EMB2", "EMB3"), ("EMB3", "TileBar0"), ("TileBar0", "TileBar1"), ("TileBar1", "TileBar2"),
    ("EMB3", "TileExt0"), ("TileExt0", "TileExt1"), ("TileExt1", "TileExt2"),
    ("EME1", "EME2"), ("EME2", "EME3"), ("EME3", "HEC0"), ("HEC0", "HEC1"), ("HEC1", "HEC2"), ("HEC2", "HEC3"),
    ("EME2", "HEC0", "EME3"), ("TileGap3", "TileExt0"), ("TileBar1", "TileGap1"), ("TileBar2", "TileGap2"),
]  # fmt: skip


def _overlaps(geo, c: int, others: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eta and phi overlap lengths (negative: gap) of cell ``c``'s rectangle with ``others``'."""
    eta, deta = geo.eta.astype(float), geo.deta.astype(float)
    phi, dphi = geo.phi.astype(float), geo.dphi.astype(float)
    d_eta = (deta[c] + deta[others]) / 2 - np.abs(eta[others] - eta[c])
    d_phi = (dphi[c] + dphi[others]) / 2 - np.abs(np.angle(np.exp(1j * (phi[others] - phi[c]))))
    return d_eta, d_phi


def _expected_neighbours(geo, c: int) -> set[int]:
    """Neighbours of ``c`` by brute force from the rectangles: touching in the layer, overlapping across layers."""
    tol = 1e-5
    layer = int(geo.layer[c])
    same = np.flatnonzero(geo.layer == layer)
    d_eta, d_phi = _overlaps(geo, c, same)
    out = set(same[(d_eta > -tol) & (d_phi > -tol)].tolist()) - {c}
    name = LAYERS[layer]
    for a, b, *blocked_by in ADJACENT:
        if name not in (a, b):
            continue
        other = np.flatnonzero(geo.layer == LAYERS.index(b if name == a else a))
        d_eta, d_phi = _overlaps(geo, c, other)
        ok = (d_eta > tol) & (d_phi > tol)
        if blocked_by:
            lo_edge = np.maximum(geo.eta[c] - geo.deta[c] / 2, geo.eta[other] - geo.deta[other] / 2)
            mid = np.abs(lo_edge + d_eta / 2)
            ok &= (mid < 1.5) | (mid > 2.5)
        out |= set(other[ok].tolist())
    return out


def test_neighbours_match_brute_force_rectangles(geo):
    rng = np.random.default_rng(3)
    picks = [rng.choice(np.flatnonzero(geo.layer == layer), 6, replace=False) for layer in range(len(LAYERS))]
    # cells at region edges, at eta = 0 and at the phi wrap
    edges = [
        ("EME1", [1.49, 1.51, 1.79, 1.81, 1.99, 2.01, 2.39, 2.41, 2.49, 2.51, -1.51]),
        ("EME2", [2.49, 2.51, -2.49, 1.49]),
        ("HEC1", [2.49, 2.51, 1.55, 3.15]),
        ("EMB2", [0.001, -0.001, 1.47]),
        ("EMB1", [0.0001, -0.0001]),
        ("TileBar2", [0.05, 0.95]),
        ("TileExt0", [0.85, 1.65]),
        ("TileGap3", [1.05]),
    ]
    for name, etas in edges:
        for phi in (-np.pi + 1e-6, 0.3, np.pi - 1e-6):
            picks.append(geo.find_cells(LAYERS.index(name), np.array(etas), np.full(len(etas), phi)))
    nb = geo.neighbours
    for c in np.concatenate(picks):
        got = set(nb.indices[nb.indptr[c] : nb.indptr[c + 1]].tolist())
        assert got == _expected_neighbours(geo, int(c)), (LAYERS[geo.layer[c]], float(geo.eta[c]), float(geo.phi[c]))


def test_eme2_reaches_hec0_only_beyond_eme3(geo):
    nb = geo.neighbours
    eme2, eme3, hec0 = (LAYERS.index(n) for n in ("EME2", "EME3", "HEC0"))
    inner, outer = geo.find_cells(eme2, np.array([2.0, 2.8]), np.array([0.3, 0.3]))
    near_inner = geo.layer[nb.indices[nb.indptr[inner] : nb.indptr[inner + 1]]]
    near_outer = geo.layer[nb.indices[nb.indptr[outer] : nb.indptr[outer + 1]]]
    assert np.any(near_inner == eme3) and not np.any(near_inner == hec0)
    assert np.any(near_outer == hec0) and not np.any(near_outer == eme3)


def test_volumes_add_up(geo):
    """Each layer's cells fill its shell: barrel 2 * 2pi r depth * z-extent, end-cap 2 * pi (r_out^2 - r_in^2) depth."""
    for ly in CALO_LAYERS:
        total = geo.volume[geo.layer == ly.index].astype(float).sum()
        if ly.barrel:
            z = sum(ly.position * (np.sinh(hi) - np.sinh(lo)) for lo, hi, *_ in ly.regions)
            expected = 2 * 2 * np.pi * ly.position * ly.depth_mm * z
        else:
            lo, hi = min(r[0] for r in ly.regions), max(r[1] for r in ly.regions)
            expected = 2 * np.pi * ((ly.position / np.sinh(lo)) ** 2 - (ly.position / np.sinh(hi)) ** 2) * ly.depth_mm
        assert total == pytest.approx(expected, rel=1e-4), ly.name
