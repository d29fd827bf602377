"""Pythia8 event generation: guns decay as they should, dijet slices and pile-up behave."""

from __future__ import annotations

import numpy as np

from raypf.simulate.generators import DijetGenerator, GunGenerator


def test_rho_gun_decays_to_a_charged_pion_and_two_photons():
    parts, weights = GunGenerator("rho", seed=11, pt_range=(5.0, 50.0), eta_max=2.5).generate(200)
    assert parts.n_events == 200 and np.all(weights == 1)
    per_event = np.bincount(parts.event, minlength=200)
    charged = np.bincount(parts.event, weights=np.abs(parts.charge), minlength=200)
    assert np.mean(charged == 1) > 0.95  # rho+- -> pi+- pi0 (-> gamma gamma)
    assert np.mean(per_event == 3) > 0.9
    # momentum is conserved by the decay: the visible pT sums back to the gun's flat 5-50 GeV
    px = np.bincount(parts.event, weights=parts.px, minlength=200)
    py = np.bincount(parts.event, weights=parts.py, minlength=200)
    pt = np.hypot(px, py)
    assert pt.min() > 4.9 and pt.max() < 50.1
    assert 0.3 < np.mean(pt < 27.5) < 0.7
    eta_of_sum = np.arcsinh(np.bincount(parts.event, weights=parts.pz, minlength=200) / pt)
    assert np.abs(eta_of_sum).max() < 2.5


def test_delta_gun_gives_a_nucleon_and_a_pion():
    parts, _ = GunGenerator("delta", seed=12, pt_range=(2.0, 100.0), eta_max=2.5).generate(200)
    apdg = np.abs(parts.pdg)
    has_nucleon = np.bincount(parts.event, weights=np.isin(apdg, [2212, 2112]), minlength=200)
    assert np.mean(has_nucleon == 1) > 0.95
    assert set(np.unique(np.sign(parts.pdg[np.isin(apdg, [2212, 2112])]))) == {-1, 1}  # Deltas and anti-Deltas


def test_dijet_slices_grow_harder_and_pileup_adds_particles():
    jz1, _ = DijetGenerator("JZ1", seed=13).generate(20)
    jz4, _ = DijetGenerator("JZ4", seed=13).generate(20)
    lead = lambda p: np.array([p.pt[p.event == e].max() for e in range(p.n_events)])
    assert np.median(lead(jz4)) > 3 * np.median(lead(jz1))
    assert np.all(np.isin(np.unique(np.abs(jz4.pdg)), [12, 14, 16], invert=True))  # no neutrinos
    quiet, _ = DijetGenerator("JZ2", seed=14).generate(20)
    busy, _ = DijetGenerator("JZ2", seed=14, pileup_mu=5.0).generate(20)
    assert busy.n_events == 20 and busy.event.max() == 19
    assert len(busy) > len(quiet) + 20 * 5 * 20  # ~5 soft interactions of dozens of particles each
