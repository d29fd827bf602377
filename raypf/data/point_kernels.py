"""Compiled kernels for the two steps of sample building that touch every point.

The cone test and the assembly of the output columns run over every
(track, cell) candidate and every output point. Written with numpy they take
two dozen passes over arrays of millions of entries (gathers, ``np.where``,
scatters, a sort for the feature statistics), and a preprocessing worker
spends most of its build time moving memory: with two workers on two cores
sharing one memory channel, each pass also slows the other worker down. Here
each step is one pass that reads its inputs once and writes its outputs
sequentially. Everything else in ``samples.build_samples`` stays in numpy:
those steps are per track or per event, or are single passes already.

Arithmetic follows the numpy code it replaced operation for operation (float64
for angles, float32 for the distance to the focal track, float64 truth sums
in file order), so the samples are bit-for-bit the same.
"""

from __future__ import annotations

import numba
import numpy as np

#: Per-point features whose moments are accumulated, in this order (``samples.STAT_FEATURES``).
STAT_ORDER = ("x", "y", "z", "delta_r", "dist_focal", "energy", "sigma", "chi2_ndof", "layer", "track")


@numba.njit(cache=True, nogil=True)
def cone_cells(
    query: np.ndarray,
    start: np.ndarray,
    count: np.ndarray,
    eta: np.ndarray,
    phi: np.ndarray,
    ref_eta: np.ndarray,
    ref_phi: np.ndarray,
    radius: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query, point, delta R) of every point in the ranges [start, start + count) within ``radius`` of its query.

    Ranges come grouped by query (``cone.cone_ranges``), so the output is too.
    """
    total = 0
    for i in range(len(count)):
        total += count[i]
    out_q = np.empty(total, dtype=np.int64)
    out_p = np.empty(total, dtype=np.int64)
    out_dr = np.empty(total, dtype=np.float64)
    r2 = radius * radius
    n = 0
    for i in range(len(count)):
        q = query[i]
        e0 = np.float64(ref_eta[q])
        f0 = np.float64(ref_phi[q])
        for j in range(start[i], start[i] + count[i]):
            d_eta = np.float64(eta[j]) - e0
            d_phi = np.float64(phi[j]) - f0
            if d_phi > np.pi:
                d_phi -= 2 * np.pi
            elif d_phi < -np.pi:
                d_phi += 2 * np.pi
            dr2 = d_eta * d_eta + d_phi * d_phi
            if dr2 <= r2:
                out_q[n] = q
                out_p[n] = j
                out_dr[n] = np.sqrt(dr2)
                n += 1
    return out_q[:n], out_p[:n], out_dr[:n]


@numba.njit(cache=True, nogil=True)
def _accumulate(moments: np.ndarray, ptype: int, feature: int, value) -> None:
    v = np.float64(value)
    m = moments[ptype, feature]
    m[0] += 1.0
    m[1] += v
    m[2] += v * v
    m[3] = min(m[3], v)
    m[4] = max(m[4], v)


@numba.njit(cache=True, nogil=True)
def assemble(
    order, offsets, n_train,
    f_first, f_p, f_dr,
    c_first, c_u, c_dr,
    o_first, o_p, o_dr,
    p_x, p_y, p_z, p_trk, p_sampling, trk_pt, trk_chi2, trk_local,
    u_g, unique, geo_x, geo_y, geo_z, geo_sigma, geo_sampling,
    raw_e, raw_id, raw_cluster,
    e_total, e_tracked, focal_part, contrib_off, contrib_part, contrib_e,
    x, y, z, delta_r, dist_focal, energy, sigma, chi2_ndof, point_type, track, layer, cell_id, cluster,
    truth_focal, truth_other_tracked, truth_untracked, truth_total,
    moments,
):  # fmt: skip
    """Write every point of every output sample: focal-track points, then cells, then other tracks' points.

    Output sample ``i`` is built sample ``order[i]``; its points go to ``offsets[i]:offsets[i + 1]``.
    ``*_first`` are per built sample offsets into the focal (``f_*``), cell (``c_*``) and
    other-track (``o_*``) point lists. The outputs must be zeroed. Samples ``i < n_train``
    add their points to ``moments`` (point type x ``STAT_ORDER`` x [n, sum, sum2, min, max]).
    Returns the number of cell points whose truth energy is mostly the focal particle's.
    """
    mostly_focal = 0
    for i in range(len(order)):
        s = order[i]
        pos = offsets[i]
        stats = i < n_train
        f0, f1 = f_first[s], f_first[s + 1]
        for j in range(f0, f1):
            _track_point(pos, f_p[j], f_dr[j], 1, p_x, p_y, p_z, p_trk, p_sampling, trk_pt, trk_chi2, trk_local,
                         x, y, z, delta_r, energy, chi2_ndof, point_type, track, layer, cluster)  # fmt: skip
            if stats:
                _point_moments(moments, 1, pos, x, y, z, delta_r, dist_focal, energy, sigma, chi2_ndof, layer, track)
            pos += 1
        for j in range(c_first[s], c_first[s + 1]):
            u = c_u[j]
            g = u_g[u]
            raw = unique[u]
            x[pos], y[pos], z[pos] = geo_x[g], geo_y[g], geo_z[g]
            delta_r[pos] = c_dr[j]
            dist_focal[pos] = _nearest(geo_x[g], geo_y[g], geo_z[g], f_p[f0:f1], p_x, p_y, p_z)
            energy[pos] = raw_e[raw]
            sigma[pos] = geo_sigma[g]
            track[pos] = -1
            layer[pos] = geo_sampling[g]
            cell_id[pos] = raw_id[raw]
            cluster[pos] = raw_cluster[raw]
            total = e_total[u]
            tracked = e_tracked[u]
            focal = 0.0
            fp = focal_part[s]
            if tracked > 0 and fp >= 0:
                for k in range(contrib_off[raw], contrib_off[raw + 1]):
                    if contrib_part[k] == fp:
                        focal += contrib_e[k]
            truth_total[pos] = total
            truth_focal[pos] = focal
            truth_other_tracked[pos] = tracked - focal
            truth_untracked[pos] = total - tracked
            if total > 0 and focal >= 0.5 * total:
                mostly_focal += 1
            if stats:
                _point_moments(moments, 0, pos, x, y, z, delta_r, dist_focal, energy, sigma, chi2_ndof, layer, track)
            pos += 1
        for j in range(o_first[s], o_first[s + 1]):
            p = o_p[j]
            _track_point(pos, p, o_dr[j], 2, p_x, p_y, p_z, p_trk, p_sampling, trk_pt, trk_chi2, trk_local,
                         x, y, z, delta_r, energy, chi2_ndof, point_type, track, layer, cluster)  # fmt: skip
            dist_focal[pos] = _nearest(p_x[p], p_y[p], p_z[p], f_p[f0:f1], p_x, p_y, p_z)
            if stats:
                _point_moments(moments, 2, pos, x, y, z, delta_r, dist_focal, energy, sigma, chi2_ndof, layer, track)
            pos += 1
    return mostly_focal


@numba.njit(cache=True, nogil=True, inline="always")
def _nearest(px, py, pz, focal, f_x, f_y, f_z) -> np.float32:
    """Distance (float32 arithmetic) from a point to the nearest of the focal track's points."""
    best = np.float32(np.inf)
    for k in range(len(focal)):
        q = focal[k]
        dx = px - f_x[q]
        dy = py - f_y[q]
        dz = pz - f_z[q]
        d = np.float32(0.0)
        d += dx * dx
        d += dy * dy
        d += dz * dz
        best = min(best, d)
    return np.sqrt(best)


@numba.njit(cache=True, nogil=True, inline="always")
def _track_point(
    pos, p, dr, ptype, p_x, p_y, p_z, p_trk, p_sampling, trk_pt, trk_chi2, trk_local,
    x, y, z, delta_r, energy, chi2_ndof, point_type, track, layer, cluster,
) -> None:  # fmt: skip
    """A focal-track (``ptype`` 1) or other-track (2) layer point ``p`` at ``pos``; ``dist_focal`` is the caller's."""
    t = p_trk[p]
    x[pos], y[pos], z[pos] = p_x[p], p_y[p], p_z[p]
    delta_r[pos] = dr
    energy[pos] = trk_pt[t]
    chi2_ndof[pos] = trk_chi2[t]
    point_type[pos] = ptype
    track[pos] = trk_local[t]
    layer[pos] = p_sampling[p]
    cluster[pos] = -1


@numba.njit(cache=True, nogil=True, inline="always")
def _point_moments(moments, ptype, pos, x, y, z, delta_r, dist_focal, energy, sigma, chi2_ndof, layer, track) -> None:
    """Add the point at ``pos``, as written (zeros where a type has no such feature), to ``moments[ptype]``."""
    _accumulate(moments, ptype, 0, x[pos])  # in STAT_ORDER
    _accumulate(moments, ptype, 1, y[pos])
    _accumulate(moments, ptype, 2, z[pos])
    _accumulate(moments, ptype, 3, delta_r[pos])
    _accumulate(moments, ptype, 4, dist_focal[pos])
    _accumulate(moments, ptype, 5, energy[pos])
    _accumulate(moments, ptype, 6, sigma[pos])
    _accumulate(moments, ptype, 7, chi2_ndof[pos])
    _accumulate(moments, ptype, 8, layer[pos])
    _accumulate(moments, ptype, 9, track[pos])


def new_moments() -> np.ndarray:
    """Empty accumulators for ``assemble``: (3 point types, features, [n, sum, sum2, min, max])."""
    m = np.zeros((3, len(STAT_ORDER), 5))
    m[:, :, 3] = np.inf
    m[:, :, 4] = -np.inf
    return m
