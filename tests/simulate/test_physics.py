"""Physics sanity of the fast calorimeter on single particles (no files, no Ray)."""

from __future__ import annotations

import numpy as np
import pytest

from raypf.data.mltree_schema import LAYERS
from raypf.simulate.config import DetectorConfig
from raypf.simulate.detector import Detector
from raypf.simulate.generators import Particles
from raypf.simulate.geometry import build_geometry
from raypf.simulate.tracking import reconstruct

EM_LAYERS = [i for i, name in enumerate(LAYERS) if name.startswith(("EMB", "EME"))]


@pytest.fixture(scope="module")
def detector():
    return Detector(DetectorConfig(), build_geometry())


def single_particles(pdg: int, charge: float, mass: float, energy: np.ndarray, eta: np.ndarray, phi: np.ndarray) -> Particles:
    n = len(energy)
    p = np.sqrt(np.maximum(energy**2 - mass**2, 0.0))
    pt = p / np.cosh(eta)
    return Particles(
        event=np.arange(n, dtype=np.int32),
        pdg=np.full(n, pdg, np.int32),
        status=np.ones(n, np.int32),
        px=pt * np.cos(phi),
        py=pt * np.sin(phi),
        pz=pt * np.sinh(eta),
        e=energy,
        m=np.full(n, mass),
        charge=np.full(n, charge, np.float32),
        n_events=n,
    )


def deposits(detector: Detector, parts: Particles, seed: int = 1):
    """Noise-free visible energy per particle, per layer, and the per-cell truth."""
    truth = detector.calorimeter(parts, np.zeros(parts.n_events), np.random.default_rng(seed))
    local = truth.cell % detector.geo.n_cells
    total = np.bincount(truth.particle, weights=truth.energy, minlength=len(parts))
    layer = detector.geo.layer[local]
    in_em = np.bincount(truth.particle, weights=truth.energy * np.isin(layer, EM_LAYERS), minlength=len(parts))
    return truth, local, total, in_em


def test_photons_are_contained_in_em_layers_with_unit_response(detector):
    rng = np.random.default_rng(3)
    n = 300
    energy = rng.uniform(10.0, 100.0, n)
    eta = np.concatenate([rng.uniform(-1.3, 1.3, n // 2), rng.choice([-1, 1], n - n // 2) * rng.uniform(1.6, 2.4, n - n // 2)])
    parts = single_particles(22, 0.0, 0.0, energy, eta, rng.uniform(-np.pi, np.pi, n))
    _, _, total, in_em = deposits(detector, parts)
    em_share = in_em / total
    assert np.mean(em_share) > 0.95
    assert np.quantile(em_share, 0.1) >= 0.9
    response = total / energy
    assert 0.9 < np.median(response) < 1.02
    assert np.std(response) / np.mean(response) < 0.06


def test_pions_respond_lower_and_broader_than_photons(detector):
    rng = np.random.default_rng(4)
    n = 400
    energy = rng.uniform(10.0, 50.0, n)
    eta, phi = rng.uniform(-1.2, 1.2, n), rng.uniform(-np.pi, np.pi, n)
    pions = single_particles(211, 1.0, 0.13957, energy, eta, phi)
    photons = single_particles(22, 0.0, 0.0, energy, eta, phi)
    r_pi = deposits(detector, pions)[2] / energy
    r_gamma = deposits(detector, photons)[2] / energy
    assert 0.5 < np.mean(r_pi) < 0.85, np.mean(r_pi)
    assert np.mean(r_gamma) - np.mean(r_pi) > 0.15
    assert np.std(r_pi) / np.mean(r_pi) > 2.0 * np.std(r_gamma) / np.mean(r_gamma)
    # hadrons do not stay in the EM layers: a good share reaches Tile
    _, _, total, in_em = deposits(detector, pions)
    assert 0.15 < np.mean(in_em / total) < 0.8


def test_pion_energy_lies_within_cone_of_its_emb2_extrapolation(detector):
    rng = np.random.default_rng(5)
    n = 300
    energy = rng.uniform(10.0, 50.0, n)
    eta, phi = rng.uniform(-1.2, 1.2, n), rng.uniform(-np.pi, np.pi, n)
    charge = rng.choice([-1.0, 1.0], n)
    parts = single_particles(211, 1.0, 0.13957, energy, eta, phi)
    parts = Particles(**{**parts.__dict__, "charge": charge.astype(np.float32), "pdg": (211 * charge).astype(np.int32)})
    truth, local, total, _ = deposits(detector, parts)
    # reconstructed tracks, extrapolated with their measured parameters, as preprocessing will see them
    tracks = reconstruct(parts.event, parts.pt, parts.eta, parts.phi, parts.charge, np.zeros(n), np.random.default_rng(9))
    assert len(tracks.particle) > 0.8 * n
    inter = detector._extrapolate(tracks.pt, tracks.eta, tracks.phi, tracks.charge, tracks.z0)
    emb2 = LAYERS.index("EMB2")
    assert inter.crossed[:, emb2].all()
    track_of = np.full(n, -1)
    track_of[tracks.particle] = np.arange(len(tracks.particle))
    has_track = track_of[truth.particle] >= 0
    geo = detector.geo
    t = track_of[truth.particle[has_track]]
    d_eta = geo.eta[local[has_track]] - inter.eta[t, emb2]
    d_phi = np.angle(np.exp(1j * (geo.phi[local[has_track]] - inter.phi[t, emb2])))
    inside = np.hypot(d_eta, d_phi) < 0.2
    share = np.bincount(truth.particle[has_track], weights=truth.energy[has_track] * inside, minlength=n)[tracks.particle]
    share = share / total[tracks.particle]
    assert np.median(share) > 0.85
    assert np.mean(share > 0.5) > 0.95
    # the cone must matter: the low-pT bending is visible, the extrapolation is not the vertex direction
    low = single_particles(211, 1.0, 0.13957, np.full(5, 2.0), np.zeros(5), np.zeros(5))
    bent = detector._extrapolate(low.pt, low.eta, low.phi, low.charge, np.zeros(5))
    assert np.all(np.abs(bent.phi[:, emb2]) > 0.1)


def test_muons_leave_mip_deposits(detector):
    parts = single_particles(13, -1.0, 0.10566, np.full(200, 50.0), np.random.default_rng(6).uniform(-0.8, 0.8, 200), np.zeros(200))
    _, _, total, in_em = deposits(detector, parts)
    assert np.all(total < 5.0)
    assert 1.5 < np.median(total) < 4.5
    assert 0.15 < np.median(in_em) < 0.6
