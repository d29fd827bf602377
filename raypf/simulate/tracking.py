"""Inner-detector tracks: which charged particles are reconstructed, and how well.

Efficiency, momentum and angular resolution follow CALORIMETER.md; a small
fraction of tracks loses its truth link (hadronic interactions in the tracker),
as in real MLTree files, so that downstream code must handle it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from raypf.simulate.propagation import wrap_phi


@dataclass(frozen=True)
class TrackModel:
    pt_min: float = 0.5  # GeV
    eta_max: float = 2.5
    efficiency_barrel: float = 0.93  # plateau for |eta| < 1.5
    efficiency_endcap: float = 0.87
    lost_truth_fraction: float = 0.02
    curvature_term: float = 0.0005  # sigma(pT)/pT = a * pT (+) b
    constant_term: float = 0.01


@dataclass(frozen=True)
class Tracks:
    """Reconstructed tracks, flat over a batch of events."""

    event: np.ndarray  # int32
    particle: np.ndarray  # int64, index of the generating particle in the batch
    truth_lost: np.ndarray  # bool, the truth link was lost
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    charge: np.ndarray
    d0: np.ndarray
    z0: np.ndarray
    chi2: np.ndarray
    ndof: np.ndarray  # int32
    n_pixel: np.ndarray  # int32
    n_sct: np.ndarray  # int32


def efficiency(pt: np.ndarray, eta: np.ndarray, model: TrackModel) -> np.ndarray:
    plateau = np.where(np.abs(eta) < 1.5, model.efficiency_barrel, model.efficiency_endcap)
    turn_on = 1.0 - 0.25 * np.exp(-(pt - model.pt_min) / 0.3)
    ok = (pt > model.pt_min) & (np.abs(eta) < model.eta_max)
    return np.where(ok, plateau * turn_on, 0.0)


def reconstruct(
    event: np.ndarray,
    pt: np.ndarray,
    eta: np.ndarray,
    phi: np.ndarray,
    charge: np.ndarray,
    vertex_z: np.ndarray,
    rng: np.random.Generator,
    model: TrackModel = TrackModel(),
) -> Tracks:
    """Select and smear charged particles into tracks; ``vertex_z`` is per particle (mm)."""
    charged = charge != 0
    found = charged & (rng.random(len(pt)) < efficiency(pt, eta, model))
    idx = np.nonzero(found)[0]
    n = len(idx)
    t_pt, t_eta, t_phi, q = pt[idx], eta[idx], phi[idx], charge[idx]
    rel = np.hypot(model.curvature_term * t_pt, model.constant_term)
    inv = (q / t_pt) * (1.0 + rel * rng.standard_normal(n))  # smear q/pT, the measured quantity
    q_meas = np.sign(inv)
    pt_meas = 1.0 / np.maximum(np.abs(inv), 1e-6)
    ang = np.hypot(3e-4, 2e-3 / t_pt)  # multiple scattering dominates at low pT
    eta_meas = t_eta + ang * rng.standard_normal(n)
    phi_meas = wrap_phi(t_phi + ang * rng.standard_normal(n))
    d0 = np.hypot(0.01, 0.1 / t_pt) * rng.standard_normal(n)
    z0 = vertex_z[idx] + np.hypot(0.05, 0.1 / t_pt) * np.cosh(t_eta) * rng.standard_normal(n)
    n_pix = np.maximum(rng.binomial(4, 0.97, n), 1).astype(np.int32)
    n_sct = rng.binomial(8, 0.97, n).astype(np.int32)
    n_trt = np.where(np.abs(t_eta) < 2.0, rng.poisson(30, n), 0)
    ndof = (2 * n_pix + n_sct + n_trt - 5).astype(np.int32)
    chi2 = (1.1 * rng.chisquare(np.maximum(ndof, 1))).astype(np.float64)
    return Tracks(
        event=event[idx].astype(np.int32),
        particle=idx.astype(np.int64),
        truth_lost=rng.random(n) < model.lost_truth_fraction,
        pt=pt_meas,
        eta=eta_meas,
        phi=phi_meas,
        charge=q_meas,
        d0=d0,
        z0=z0,
        chi2=chi2,
        ndof=ndof,
        n_pixel=n_pix,
        n_sct=n_sct,
    )
