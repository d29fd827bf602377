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
