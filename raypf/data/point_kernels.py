"""Compiled kernels (``raypf_kernels.c``) for the two steps of sample building that touch every point.

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

import numpy as np

import raypf_kernels as _kernels

#: Per-point features whose moments are accumulated, in this order (``samples.STAT_FEATURES``; ``point_moments`` in C).
STAT_ORDER = ("x", "y", "z", "delta_r", "dist_focal", "energy", "sigma", "chi2_ndof", "layer", "track")


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
    total = int(count.sum())
    out_q, out_p, out_dr = np.empty(total, np.int64), np.empty(total, np.int64), np.empty(total, np.float64)
    n = _kernels.cone_cells(
        *(np.ascontiguousarray(a) for a in (query, start, count, eta, phi, ref_eta, ref_phi)), float(radius), out_q, out_p, out_dr
    )
    return out_q[:n], out_p[:n], out_dr[:n]


def assemble(*args) -> int:
    """Write every point of every output sample: focal-track points, then cells, then other tracks' points.

    Arguments, in order (``assemble`` in raypf_kernels.c): order, offsets, n_train; per built sample
    offsets into, and the point and delta R of, the focal-track points (f_first, f_p, f_dr), the
    cells (c_first, c_u, c_dr) and the other tracks' points (o_first, o_p, o_dr); the track
    points' x, y, z, track and sampling, the tracks' pt, chi2/ndof and number in the event; per
    kept cell its table index and listing, the table's x, y, z, sigma and sampling; per listing its
    energy, ID and cluster; per kept cell its truth total and tracked part; per sample its focal
    particle; per listing the offsets of its deposits and per deposit particle and energy; then
    the 17 point columns (``samples.POINT_COLUMNS``, zeroed) and the moments
    (``new_moments``). Output sample ``i`` is built sample ``order[i]``; its points go to
    ``offsets[i]:offsets[i + 1]``. Samples ``i < n_train`` add their points to ``moments`` (point
    type x ``STAT_ORDER`` x [n, sum, sum2, min, max]). Returns the number of cell points whose
    truth energy is mostly the focal particle's.
    """
    n_inputs = 36
    inputs = [a if i == 2 else np.ascontiguousarray(a) for i, a in enumerate(args[:n_inputs])]
    return _kernels.assemble(*inputs, *args[n_inputs:])


def new_moments() -> np.ndarray:
    """Empty accumulators for ``assemble``: (3 point types, features, [n, sum, sum2, min, max])."""
    m = np.zeros((3, len(STAT_ORDER), 5))
    m[:, :, 3] = np.inf
    m[:, :, 4] = -np.inf
    return m
