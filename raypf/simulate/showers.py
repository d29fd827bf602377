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

import functools
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
_PROFILES32 = np.array([LATERAL_EM, LATERAL_HAD_EM, LATERAL_HAD, LATERAL_MIP], dtype=np.float32)
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
    spot_energy: float = 0.20  # GeV per lateral spot
    max_spots: int = 32


@dataclass(frozen=True)
class Deposits:
    """Energy spots that landed in a cell: one row per spot."""

    particle: np.ndarray  # int64 index into the batch's particle arrays
    cell: np.ndarray  # int64 cell index in the geometry
    energy: np.ndarray  # float64 GeV, visible (EM scale)
    em: np.ndarray  # bool, deposited by electromagnetic processes


@functools.lru_cache(maxsize=4)
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


def _profile_fraction(shape: np.ndarray, x_start: np.ndarray, x_end: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Share of a Gamma(shape) profile between x_start and x_end, for pairs ordered along each path.

    A layer's start is usually the previous layer's end, so its CDF is reused instead of
    evaluated again; ``first`` marks the first pair of each particle.
    """
    cdf_end = gammainc(shape, x_end)
    if len(cdf_end) == 0:
        return cdf_end
    reuse = ~first
    reuse[1:] &= np.abs(x_start[1:] - x_end[:-1]) < 1e-9
    reuse[0] = False
    cdf_start = np.empty_like(cdf_end)
    idx = np.nonzero(reuse)[0]
    cdf_start[idx] = cdf_end[idx - 1]
    fresh = ~reuse
    cdf_start[fresh] = gammainc(shape[fresh], x_start[fresh])
    return cdf_end - cdf_start


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
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Visible energy per (particle, crossed layer) and deposit kind.

    Works on the flat list of (particle, layer) pairs a particle actually crosses,
    ordered along its path. Returns ``(particle, layer, visible)`` with ``visible``
    of shape (pairs, 4) in GeV for the kinds EM, HAD_EM, HAD, MIP.
    """
    tab = _layer_table(layer_names)
    n = len(pdg)
    abs_eta_all = np.abs(inter.eta)
    active = inter.crossed & (abs_eta_all >= tab["act_lo"]) & (abs_eta_all < tab["act_hi"])
    p, lay = np.nonzero(active)
    if len(p) == 0:
        return p, lay, np.zeros((0, 4))
    # order pairs along each particle's path (particles stay grouped: p is the major key; paths < 1e6 mm)
    order = np.argsort(p * 1e6 + inter.path[p, lay])
    p, lay = p[order], lay[order]
    abs_eta = abs_eta_all[p, lay]
    pf = np.where(barrel[lay], np.minimum(np.cosh(abs_eta), 3.0), 1.0 / np.tanh(np.maximum(abs_eta, 0.1)))
    x0, lam, hadronic = pf * tab["x0"][lay], pf * tab["lam"][lay], tab["hadronic"][lay]

    first = np.ones(len(p), dtype=bool)
    first[1:] = p[1:] != p[:-1]
    seg_start = np.nonzero(first)[0]
    seg = np.cumsum(first) - 1  # segment (particle) id per pair

    def exclusive_cumsum(x: np.ndarray) -> np.ndarray:
        c = np.cumsum(x) - x
        return c - c[seg_start][seg]

    cryo = exclusive_cumsum(hadronic.astype(np.int64)) + hadronic > 0  # at or after the first hadronic layer
    front_pf = pf[seg_start][seg]
    x0_start = FRONT_DEAD_X0 * front_pf + exclusive_cumsum(x0) + CRYOSTAT_X0 * cryo
    lam_start = FRONT_DEAD_LAMBDA * front_pf + exclusive_cumsum(lam) + CRYOSTAT_LAMBDA * cryo
    x0_end, lam_end = x0_start + x0, lam_start + lam

    apdg = np.abs(pdg)
    is_em = (apdg == 11) | (apdg == 22)
    is_mu = apdg == 13
    is_had = ~is_em & ~is_mu
    out = np.zeros((len(p), 4))

    # --- electromagnetic particles
    tmax = np.log(np.maximum(energy, 2 * CRITICAL_ENERGY) / CRITICAL_ENERGY) + np.where(apdg == 22, 0.5, -0.5)
    tmax = np.maximum(tmax * (1.0 + 0.08 * rng.standard_normal(n)), 0.3)
    a_em = 1.0 + EM_B * tmax
    samp = np.maximum(1.0 + _quadrature(energy, model.em_stochastic, model.em_constant) * rng.standard_normal(n), 0.0)
    em = is_em[p]
    pe = p[em]
    frac = _profile_fraction(a_em[pe], EM_B * x0_start[em], EM_B * x0_end[em], first[em])
    out[em, EM] = frac * (energy * samp)[pe]

    # --- muons and the ionisation of charged hadrons before their first interaction
    mip = pf * tab["mip"][lay]
    depth = rng.exponential(1.0, size=n)  # first interaction, in lambda from the calorimeter front
    traversed = np.clip((depth[p] - lam_start) / np.maximum(lam, 1e-12), 0.0, 1.0)
    out[:, MIP] = mip * np.where(is_mu[p], 1.0, np.where((is_had & (charge != 0))[p], traversed, 0.0))

    # --- hadronic showers from the first interaction on
    baryon = (apdg > 1000) & (apdg < 10000)
    e_sh = np.where(baryon & (pdg > 0), energy - mass, np.where(baryon, energy + mass, energy))
    e_sh = np.maximum(e_sh - np.bincount(p, weights=out[:, MIP], minlength=n), 0.0)
    f_mean = np.where(e_sh > 1.0, 1.0 - np.power(np.maximum(e_sh, 1.0), -0.18), 0.0)
    f_em = np.clip(f_mean + model.pi0_fraction_sigma * rng.standard_normal(n) * (e_sh > 1.0), 0.0, 0.95)
    # the layer where the interaction happens: the first crossed layer ending beyond it
    beyond = lam_end > depth[p]
    k = np.full(n, -1, dtype=np.int64)
    hit_pairs = np.nonzero(beyond)[0]
    k[p[hit_pairs][::-1]] = hit_pairs[::-1]  # first such pair per particle wins
    contained = k >= 0
    kk = np.maximum(k, 0)
    into = np.clip(depth - lam_start[kk], 0.0, None)
    t0 = x0_start[kk] + into * x0[kk] / np.maximum(lam[kk], 1e-12)  # interaction depth in X0 for the pi0 part
    tmax_h = np.maximum(np.log(np.maximum(f_em * e_sh, 2 * CRITICAL_ENERGY) / CRITICAL_ENERGY) - 0.5, 0.3)
    a_h_em = 1.0 + EM_B * tmax_h
    shape = 1.5 + 0.15 * np.log(np.maximum(e_sh, 1.0))
    theta = 0.75
    samp_h = np.maximum(1.0 + _quadrature(e_sh, model.had_stochastic, model.had_constant) * rng.standard_normal(n), 0.0)
    sh = (is_had & contained)[p]
    ps = p[sh]
    first_sh = first[sh]
    frac_em = _profile_fraction(
        a_h_em[ps], EM_B * np.maximum(x0_start[sh] - t0[ps], 0.0), EM_B * np.maximum(x0_end[sh] - t0[ps], 0.0), first_sh
    )
    frac_had = _profile_fraction(
        shape[ps], np.maximum(lam_start[sh] - depth[ps], 0.0) / theta, np.maximum(lam_end[sh] - depth[ps], 0.0) / theta, first_sh
    )
    out[sh, HAD_EM] = frac_em * (e_sh * f_em * samp_h)[ps]
    out[sh, HAD] = frac_had * (e_sh * (1.0 - f_em) * model.h_over_e * samp_h)[ps]
    return p, lay, out


def spread(
    particle: np.ndarray,
    layer: np.ndarray,
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
    pair, kind = np.nonzero(visible > threshold)
    e_dep = visible[pair, kind]
    p_idx, l_idx = particle[pair], layer[pair]
    n_spots = np.where(kind == MIP, 1, np.clip(np.ceil(e_dep / model.spot_energy), 1, model.max_spots)).astype(np.int64)
    rep = np.repeat(np.arange(len(e_dep)), n_spots)
    spot_e = (e_dep / n_spots)[rep]
    # lateral offsets in float32: millimetre-scale spreads need no more precision
    n = len(rep)
    prof = _PROFILES32[kind[rep]]
    halo = rng.random(n, dtype=np.float32) < prof[:, 2]
    sigma_mm = np.where(halo, prof[:, 1], prof[:, 0])
    r = sigma_mm * np.sqrt(np.float32(2.0) * rng.standard_exponential(n, dtype=np.float32))  # 2-D Gaussian radius
    alpha = rng.random(n, dtype=np.float32) * np.float32(2.0 * np.pi)
    p_rep, l_rep = p_idx[rep], l_idx[rep]
    scale = (r / inter.rperp[p_rep, l_rep]).astype(np.float32)
    eta = inter.eta[p_rep, l_rep] + scale * np.cos(alpha)
    phi = inter.phi[p_rep, l_rep] + scale * np.sin(alpha)
    cell = np.full(len(rep), -1, dtype=np.int64)
    by_layer = np.argsort(l_rep.astype(np.uint8), kind="stable")  # radix sort, then contiguous slices per layer
    bounds = np.searchsorted(l_rep[by_layer], np.arange(inter.eta.shape[1] + 1))
    for lay in range(inter.eta.shape[1]):  # loop over the 19 layers, not over spots
        sel = by_layer[bounds[lay] : bounds[lay + 1]]
        if len(sel):
            cell[sel] = find_cells(lay, eta[sel], phi[sel])
    hit = cell >= 0
    em = (kind[rep] == EM) | (kind[rep] == HAD_EM)
    return Deposits(particle=p_rep[hit], cell=cell[hit], energy=spot_e[hit], em=em[hit])
