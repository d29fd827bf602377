"""Parametrised showers: which cells each particle's energy reaches, and how much is seen.

Longitudinally, energy is shared between the layers a particle crosses in the
order it crosses them: electromagnetic showers follow a Gamma profile in
radiation lengths (shower maximum at ln(E/E_c) +- 0.5), hadrons travel an
exponential depth in interaction lengths, ionise like a MIP until then, and
split into a fluctuating pi0 (EM) part and a hadronic part seen at h/e < 1
with a longer Gamma profile in interaction lengths. Laterally, each layer's
deposit is scattered as equal-energy "spots" drawn from a core+halo profile
(GFlash-style), so lateral fluctuations and granularity come for free and the
whole batch is a handful of array operations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammainc

from raypf.simulate.propagation import Intersections

# Per layer, in MLTree order: thickness at normal incidence in radiation lengths
# and in interaction lengths, MIP energy at normal incidence (GeV, as seen at the
# EM scale), the |eta| range where it is the active layer for showers, and
# whether it is hadronic (after the cryostat).
_MATERIAL = {
    #            X0     lambda  MIP    |eta| active     hadronic
    "EMB1":     (4.3,   0.21,   0.050, (0.0, 1.425),   False),
    "EMB2":     (16.0,  0.78,   0.200, (0.0, 1.425),   False),
    "EMB3":     (2.0,   0.10,   0.030, (0.0, 1.35),    False),
    "EME1":     (4.0,   0.20,   0.050, (1.425, 3.2),   False),
    "EME2":     (18.0,  0.88,   0.220, (1.425, 3.2),   False),
    "EME3":     (2.0,   0.10,   0.030, (1.5, 2.5),     False),
    "HEC0":     (14.4,  1.5,    0.45,  (1.5, 3.2),     True),
    "HEC1":     (24.0,  2.5,    0.75,  (1.5, 3.2),     True),
    "HEC2":     (28.8,  3.0,    0.90,  (1.5, 3.2),     True),
    "HEC3":     (28.8,  3.0,    0.90,  (1.5, 3.2),     True),
    "TileBar0": (14.2,  1.5,    0.50,  (0.0, 0.9),     True),
    "TileBar1": (38.9,  4.1,    1.40,  (0.0, 0.9),     True),
    "TileBar2": (17.1,  1.8,    0.60,  (0.0, 0.9),     True),
    "TileGap1": (9.5,   1.0,    0.30,  (0.85, 0.95),   True),
    "TileGap2": (9.5,   1.0,    0.30,  (0.8, 1.0),     True),
    "TileGap3": (2.8,   0.3,    0.10,  (1.0, 1.6),     True),
    "TileExt0": (14.2,  1.5,    0.50,  (0.9, 1.7),     True),
    "TileExt1": (38.9,  4.1,    1.40,  (0.9, 1.7),     True),
    "TileExt2": (17.1,  1.8,    0.60,  (0.9, 1.7),     True),
}  # fmt: skip

FRONT_DEAD_X0, FRONT_DEAD_LAMBDA = 2.0, 0.10  # inner detector, solenoid and cryostat wall
CRYOSTAT_X0, CRYOSTAT_LAMBDA = 4.0, 0.40  # between the LAr EM calorimeter and the hadronic one
CRITICAL_ENERGY = 0.010  # GeV, lead
EM_B = 0.5  # Gamma-profile slope in 1/X0

# Lateral profiles: (core sigma mm, halo sigma mm, halo energy fraction)
LATERAL_EM = (18.0, 60.0, 0.08)
LATERAL_HAD_EM = (40.0, 100.0, 0.15)  # pi0 part of a hadronic shower, spread by the hadronic cascade
LATERAL_HAD = (60.0, 180.0, 0.30)
LATERAL_MIP = (2.0, 2.0, 0.0)
_PROFILES = np.array([LATERAL_EM, LATERAL_HAD_EM, LATERAL_HAD, LATERAL_MIP])
EM, HAD_EM, HAD, MIP = range(4)


@dataclass(frozen=True)
class ShowerModel:
    """Response parameters; defaults follow CALORIMETER.md."""

    em_stochastic: float = 0.10  # sigma/E = a/sqrt(E) (+) b
    em_constant: float = 0.007
    had_stochastic: float = 0.40  # sampling part; pi0-fraction fluctuations add the rest of ~50%/sqrt(E)
    had_constant: float = 0.03
    h_over_e: float = 0.55  # visible fraction of the non-EM part of hadronic showers
    pi0_fraction_sigma: float = 0.07
    spot_energy: float = 0.10  # GeV per lateral spot
    max_spots: int = 48


@dataclass(frozen=True)
class Deposits:
    """Energy spots that landed in a cell: one row per spot."""

    particle: np.ndarray  # int64 index into the batch's particle arrays
    cell: np.ndarray  # int64 cell index in the geometry
    energy: np.ndarray  # float64 GeV, visible (EM scale)
    em: np.ndarray  # bool, deposited by electromagnetic processes


def _layer_table(layer_names: tuple[str, ...]) -> dict[str, np.ndarray]:
    rows = [_MATERIAL[n] for n in layer_names]
    return {
        "x0": np.array([r[0] for r in rows]),
        "lam": np.array([r[1] for r in rows]),
        "mip": np.array([r[2] for r in rows]),
        "act_lo": np.array([r[3][0] for r in rows]),
        "act_hi": np.array([r[3][1] for r in rows]),
        "hadronic": np.array([r[4] for r in rows]),
    }


def _quadrature(e: np.ndarray, a: float, b: float) -> np.ndarray:
    return np.hypot(a / np.sqrt(np.maximum(e, 1e-3)), b)


def longitudinal(
    pdg: np.ndarray,
    energy: np.ndarray,
    charge: np.ndarray,
    mass: np.ndarray,
    inter: Intersections,
    layer_names: tuple[str, ...],
    barrel: np.ndarray,
    rng: np.random.Generator,
    model: ShowerModel = ShowerModel(),
) -> np.ndarray:
    """Visible energy per particle, layer and deposit kind: array (N, L, 4) in GeV (kinds EM, HAD_EM, HAD, MIP)."""
    tab = _layer_table(layer_names)
    n, n_layers = inter.eta.shape
    out = np.zeros((n, n_layers, 4))
    if n == 0:
        return out
    abs_eta = np.abs(inter.eta)
    active = inter.crossed & (abs_eta >= tab["act_lo"]) & (abs_eta < tab["act_hi"])
    with np.errstate(invalid="ignore"):
        pf = np.where(barrel[None, :], np.minimum(np.cosh(abs_eta), 3.0), 1.0 / np.tanh(np.maximum(abs_eta, 0.1)))
    pf = np.where(active, pf, 0.0)

    # order layers along each particle's path, accumulate depth (with dead material) in X0 and lambda
    order = np.argsort(np.where(active, inter.path, np.inf), axis=1)
    take = lambda a: np.take_along_axis(a, order, axis=1)  # noqa: E731
    act_s = take(active)
    x0_s = take(pf * tab["x0"][None, :])
    lam_s = take(pf * tab["lam"][None, :])
    had_s = take(np.broadcast_to(tab["hadronic"][None, :], active.shape) & active)
    front_pf = np.where(act_s[:, :1], take(pf)[:, :1], 1.0)
    cryo = np.cumsum(had_s, axis=1) > 0
    x0_start = FRONT_DEAD_X0 * front_pf + np.cumsum(x0_s, axis=1) - x0_s + CRYOSTAT_X0 * cryo
    lam_start = FRONT_DEAD_LAMBDA * front_pf + np.cumsum(lam_s, axis=1) - lam_s + CRYOSTAT_LAMBDA * cryo
    x0_end, lam_end = x0_start + x0_s, lam_start + lam_s

    apdg = np.abs(pdg)
    is_em = (apdg == 11) | (apdg == 22)
    is_mu = apdg == 13
    is_had = ~is_em & ~is_mu
    sorted_out = np.zeros((n, n_layers, 4))

    # --- electromagnetic particles
    e = energy
    tmax = np.log(np.maximum(e, 2 * CRITICAL_ENERGY) / CRITICAL_ENERGY) + np.where(apdg == 22, 0.5, -0.5)
    tmax = np.maximum(tmax * (1.0 + 0.08 * rng.standard_normal(n)), 0.3)
    a_em = 1.0 + EM_B * tmax
    samp = 1.0 + _quadrature(e, model.em_stochastic, model.em_constant) * rng.standard_normal(n)
    r, c = np.nonzero(is_em[:, None] & act_s)  # profiles are evaluated on crossed layers only
    frac = gammainc(a_em[r], EM_B * x0_end[r, c]) - gammainc(a_em[r], EM_B * x0_start[r, c])
    sorted_out[r, c, EM] = frac * (e * np.maximum(samp, 0.0))[r]

    # --- muons and the ionisation of charged hadrons before their first interaction
    mip_s = take(pf * tab["mip"][None, :])
    depth = rng.exponential(1.0, size=n)  # first interaction, in lambda from the calorimeter front
    traversed = np.clip((depth[:, None] - lam_start) / np.maximum(lam_s, 1e-12), 0.0, 1.0)
    mip_frac = np.where(is_mu[:, None], 1.0, np.where((is_had & (charge != 0))[:, None], traversed, 0.0))
    sorted_out[:, :, MIP] = np.where(act_s, mip_s * mip_frac, 0.0)

    # --- hadronic showers from the first interaction on
    baryon = (apdg > 1000) & (apdg < 10000)
    e_sh = np.where(baryon & (pdg > 0), energy - mass, np.where(baryon, energy + mass, energy))
    e_sh = np.maximum(e_sh - sorted_out[:, :, MIP].sum(axis=1), 0.0)
    f_mean = np.where(e_sh > 1.0, 1.0 - np.power(np.maximum(e_sh, 1.0), -0.18), 0.0)
    f_em = np.clip(f_mean + model.pi0_fraction_sigma * rng.standard_normal(n) * (e_sh > 1.0), 0.0, 0.95)
    # map the interaction depth (lambda) to radiation lengths for the pi0 part
    k = np.argmax((lam_end > depth[:, None]) & act_s, axis=1)
    rows = np.arange(n)
    contained = ((lam_end > depth[:, None]) & act_s).any(axis=1)
    lam_k = np.maximum(lam_s[rows, k], 1e-12)
    into = np.clip(depth - lam_start[rows, k], 0.0, None)
    t0 = x0_start[rows, k] + into * x0_s[rows, k] / lam_k
    tmax_h = np.maximum(np.log(np.maximum(f_em * e_sh, 2 * CRITICAL_ENERGY) / CRITICAL_ENERGY) - 0.5, 0.3)
    a_h_em = 1.0 + EM_B * tmax_h
    shape = 1.5 + 0.15 * np.log(np.maximum(e_sh, 1.0))
    theta = 0.75
    samp_h = 1.0 + _quadrature(e_sh, model.had_stochastic, model.had_constant) * rng.standard_normal(n)
    samp_h = np.maximum(samp_h, 0.0)
    r, c = np.nonzero((is_had & contained)[:, None] & act_s)
    frac_em = gammainc(a_h_em[r], EM_B * np.maximum(x0_end[r, c] - t0[r], 0.0)) - gammainc(
        a_h_em[r], EM_B * np.maximum(x0_start[r, c] - t0[r], 0.0)
    )
    frac_had = gammainc(shape[r], np.maximum(lam_end[r, c] - depth[r], 0.0) / theta) - gammainc(
        shape[r], np.maximum(lam_start[r, c] - depth[r], 0.0) / theta
    )
    sorted_out[r, c, HAD_EM] = frac_em * (e_sh * f_em * samp_h)[r]
    had_vis = e_sh * (1.0 - f_em) * model.h_over_e * samp_h
    sorted_out[r, c, HAD] = frac_had * had_vis[r]

    np.put_along_axis(out, order[:, :, None], sorted_out, axis=1)
    return out


def spread(
    visible: np.ndarray,
    inter: Intersections,
    find_cells,
    rng: np.random.Generator,
    model: ShowerModel = ShowerModel(),
    threshold: float = 1e-4,
) -> Deposits:
    """Scatter each (particle, layer, kind) deposit over cells as lateral spots.

    ``find_cells(layer, eta, phi) -> cell index or -1`` maps points to cells; spots
    that miss the layer (cracks, edges) are lost, as energy in dead material is.
    """
    p_idx, l_idx, kind = np.nonzero(visible > threshold)
    e_dep = visible[p_idx, l_idx, kind]
    n_spots = np.where(kind == MIP, 1, np.clip(np.ceil(e_dep / model.spot_energy), 1, model.max_spots)).astype(np.int64)
    rep = np.repeat(np.arange(len(e_dep)), n_spots)
    spot_e = (e_dep / n_spots)[rep]
    prof = _PROFILES[kind[rep]]
    halo = rng.random(len(rep)) < prof[:, 2]
    sigma_mm = np.where(halo, prof[:, 1], prof[:, 0])
    r = sigma_mm * np.sqrt(-2.0 * np.log1p(-rng.random(len(rep))))
    alpha = rng.uniform(0.0, 2.0 * np.pi, len(rep))
    p_rep, l_rep = p_idx[rep], l_idx[rep]
    scale = inter.rperp[p_rep, l_rep]
    eta = inter.eta[p_rep, l_rep] + r * np.cos(alpha) / scale
    phi = inter.phi[p_rep, l_rep] + r * np.sin(alpha) / scale
    cell = np.full(len(rep), -1, dtype=np.int64)
    for layer in np.unique(l_rep):  # loop over the 19 layers, not over spots
        sel = np.nonzero(l_rep == layer)[0]
        cell[sel] = find_cells(int(layer), eta[sel], phi[sel])
    hit = cell >= 0
    em = (kind[rep] == EM) | (kind[rep] == HAD_EM)
    return Deposits(particle=p_rep[hit], cell=cell[hit], energy=spot_e[hit], em=em[hit])
