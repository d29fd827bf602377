"""Straight lines and helices from the beam line to every calorimeter layer.

A charged particle bends in the solenoid (uniform field inside r < R_s, none
outside), then flies straight; layers are cylinders (barrel, radius r) or
disks (end-cap, |z|). Everything is a closed-form expression broadcast over
(particles x layers), so one call extrapolates a whole batch of events.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: GeV / (T * mm): a track of pT [GeV] in field B [T] has radius pT / (B * C_LIGHT) mm.
C_LIGHT = 0.299792458e-3


def wrap_phi(phi: np.ndarray) -> np.ndarray:
    """Map angles to [-pi, pi)."""
    return np.mod(phi + np.pi, 2.0 * np.pi) - np.pi


@dataclass(frozen=True)
class LayerSurfaces:
    """Where the layers are: barrel flag, radius or |z| (mm), and |eta| acceptance."""

    barrel: np.ndarray  # bool (L,)
    position: np.ndarray  # float (L,) r for barrel, |z| for end-cap, mm
    abs_eta_min: np.ndarray  # float (L,)
    abs_eta_max: np.ndarray  # float (L,)

    def __len__(self) -> int:
        return len(self.barrel)


@dataclass(frozen=True)
class Intersections:
    """Per particle and layer: (eta, phi) of the crossing point, its r_perp, 3D path length; NaN where not crossed."""

    eta: np.ndarray  # (N, L)
    phi: np.ndarray
    rperp: np.ndarray
    path: np.ndarray
    crossed: np.ndarray  # bool (N, L)


def extrapolate(
    pt: np.ndarray,
    eta: np.ndarray,
    phi: np.ndarray,
    charge: np.ndarray,
    z0: np.ndarray,
    surfaces: LayerSurfaces,
    field_t: float = 2.0,
    solenoid_radius: float = 1150.0,
) -> Intersections:
    """Intersect particles (momentum at the vertex, origin on the beam line at z0) with every layer surface.

    Computed in float32: positions of metres to micrometres and angles to 1e-7 rad are ample.
    """
    f32 = np.float32
    pt = np.asarray(pt, dtype=f32)[:, None]
    lam = np.sinh(np.asarray(eta, dtype=f32))[:, None]  # cot(theta) = pz / pT
    phi0 = np.asarray(phi, dtype=f32)[:, None]
    q = np.asarray(charge, dtype=f32)[:, None]
    z0 = np.asarray(z0, dtype=f32)[:, None]
    rs = f32(solenoid_radius)
    field_t = f32(field_t)

    charged = q != 0
    # helix radius (mm); neutral particles get an infinite radius, i.e. straight lines
    radius = np.where(charged, pt / (field_t * f32(C_LIGHT) * np.maximum(np.abs(q), f32(1e-12))), f32(np.inf))
    h = -np.sign(q)  # positive charges turn clockwise in a +z field
    leaves = 2.0 * radius >= rs  # loopers never leave the solenoid radially
    with np.errstate(invalid="ignore", divide="ignore"):
        s_exit = np.where(charged, 2.0 * radius * np.arcsin(np.clip(rs / (2.0 * radius), 0.0, 1.0)), rs)
        half = np.where(charged, s_exit / (2.0 * radius), 0.0)
    phi_exit = phi0 + h * half  # azimuth of the exit point
    psi = phi0 + 2.0 * h * half  # direction after the solenoid
    ex, ey = rs * np.cos(phi_exit), rs * np.sin(phi_exit)
    dx, dy = np.cos(psi), np.sin(psi)

    barrel = surfaces.barrel
    n, n_layers = len(pt), len(surfaces)
    rperp = np.full((n, n_layers), np.nan, dtype=f32)
    z = np.full((n, n_layers), np.nan, dtype=f32)
    s = np.full((n, n_layers), np.nan, dtype=f32)
    phi_out = np.full((n, n_layers), np.nan, dtype=f32)
    ok = np.zeros((n, n_layers), dtype=bool)

    # --- barrel cylinders at radius L (all outside the solenoid)
    L = surfaces.position[barrel][None, :].astype(f32)
    pd = rs * np.cos(half)
    t = -pd + np.sqrt(np.maximum(pd * pd - rs * rs + L * L, 0.0))
    rperp[:, barrel] = L
    s[:, barrel] = s_exit + t
    z[:, barrel] = z0 + lam * (s_exit + t)
    phi_out[:, barrel] = np.arctan2(ey + t * dy, ex + t * dx)
    ok[:, barrel] = leaves

    # --- end-cap disks at z = side * L
    endcap = ~barrel
    L = surfaces.position[endcap][None, :].astype(f32)
    side = np.where(lam >= 0, f32(1.0), f32(-1.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        s_end = (side * L - z0) / lam
        inside = (~leaves) | (s_end <= s_exit)
        arg = np.where(charged, s_end / (2.0 * radius), 0.0)
        r_helix = np.where(charged, 2.0 * radius * np.abs(np.sin(arg)), s_end)
    t2 = s_end - s_exit
    sx, sy = ex + t2 * dx, ey + t2 * dy
    e_rperp = np.where(inside, r_helix, np.hypot(sx, sy))
    rperp[:, endcap] = e_rperp
    phi_out[:, endcap] = np.where(inside, phi0 + h * arg, np.arctan2(sy, sx))
    z[:, endcap] = side * L
    s[:, endcap] = s_end
    ok[:, endcap] = np.isfinite(s_end) & (s_end > 0) & (e_rperp > 1.0)

    out_phi = wrap_phi(phi_out)
    with np.errstate(divide="ignore", invalid="ignore"):
        out_eta = np.arcsinh(z / rperp)
    ok &= np.isfinite(out_eta)
    abs_eta = np.abs(out_eta)
    crossed = ok & (abs_eta >= surfaces.abs_eta_min[None, :]) & (abs_eta <= surfaces.abs_eta_max[None, :])
    path = s * np.sqrt(1.0 + lam * lam)
    nan = np.nan
    return Intersections(
        eta=np.where(crossed, out_eta, nan),
        phi=np.where(crossed, out_phi, nan),
        rperp=np.where(crossed, rperp, nan),
        path=np.where(crossed, path, nan),
        crossed=crossed,
    )
