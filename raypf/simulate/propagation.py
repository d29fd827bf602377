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
    """Intersect particles (momentum at the vertex, origin on the beam line at z0) with every layer surface."""
    pt = np.asarray(pt, dtype=np.float64)[:, None]
    lam = np.sinh(np.asarray(eta, dtype=np.float64))[:, None]  # cot(theta) = pz / pT
    phi0 = np.asarray(phi, dtype=np.float64)[:, None]
    q = np.asarray(charge, dtype=np.float64)[:, None]
    z0 = np.asarray(z0, dtype=np.float64)[:, None]
    rs = solenoid_radius

    charged = q != 0
    # helix radius (mm); neutral particles get an infinite radius, i.e. straight lines
    radius = np.where(charged, pt / (field_t * C_LIGHT * np.maximum(np.abs(q), 1e-12)), np.inf)
    h = -np.sign(q)  # positive charges turn clockwise in a +z field
    leaves = 2.0 * radius >= rs  # loopers never leave the solenoid radially
    with np.errstate(invalid="ignore", divide="ignore"):
        s_exit = np.where(charged, 2.0 * radius * np.arcsin(np.clip(rs / (2.0 * radius), 0.0, 1.0)), rs)
        half = np.where(charged, s_exit / (2.0 * radius), 0.0)
    phi_exit = phi0 + h * half  # azimuth of the exit point
    psi = phi0 + 2.0 * h * half  # direction after the solenoid
    ex, ey = rs * np.cos(phi_exit), rs * np.sin(phi_exit)
    dx, dy = np.cos(psi), np.sin(psi)

    L = surfaces.position[None, :]
    # --- barrel cylinders at radius L (all outside the solenoid)
    pd = rs * np.cos(half)
    t = -pd + np.sqrt(np.maximum(pd * pd - rs * rs + L * L, 0.0))
    s_barrel = s_exit + t
    bx, by = ex + t * dx, ey + t * dy
    b_phi = np.arctan2(by, bx)
    b_z = z0 + lam * s_barrel
    b_rperp = np.broadcast_to(L, b_z.shape)
    b_ok = np.broadcast_to(leaves, b_z.shape)

    # --- end-cap disks at z = side * L
    side = np.where(lam >= 0, 1.0, -1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        s_end = (side * L - z0) / lam
    inside = (~leaves) | (s_end <= s_exit)
    with np.errstate(invalid="ignore"):
        arg = np.where(charged, s_end / (2.0 * radius), 0.0)
        r_helix = np.where(charged, 2.0 * radius * np.abs(np.sin(arg)), s_end)
    phi_helix = phi0 + h * arg
    t2 = s_end - s_exit
    sx, sy = ex + t2 * dx, ey + t2 * dy
    e_rperp = np.where(inside, r_helix, np.hypot(sx, sy))
    e_phi = np.where(inside, phi_helix, np.arctan2(sy, sx))
    e_z = side * L
    e_ok = np.isfinite(s_end) & (s_end > 0) & (e_rperp > 1.0)

    barrel = surfaces.barrel[None, :]
    rperp = np.where(barrel, b_rperp, e_rperp)
    z = np.where(barrel, b_z, e_z)
    s = np.where(barrel, s_barrel, s_end)
    out_phi = np.angle(np.exp(1j * np.where(barrel, b_phi, e_phi)))  # wrap to (-pi, pi]
    with np.errstate(divide="ignore", invalid="ignore"):
        out_eta = np.arcsinh(z / rperp)
    ok = np.where(barrel, b_ok, e_ok) & np.isfinite(out_eta)
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
