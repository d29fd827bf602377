"""Cone search without comparing every track with every cell.

Points (cells, track layer points) are ordered by event and eta-phi grid cell,
so their keys ``event * grid.size + grid cell`` are sorted. For a cone of
radius R around (eta, phi), each grid row that the cone touches is one run of
grid cells (two where phi wraps), i.e. one contiguous range of the sorted
points: the work is a few binary searches per track and then proportional to
the points near it.
"""

from __future__ import annotations

import numpy as np

from raypf.data.cell_table import Grid


def cumsum0(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def expand(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner, index) for every index in the ranges [starts[i], starts[i] + counts[i])."""
    counts = counts.astype(np.int64)
    owner = np.repeat(np.arange(len(counts)), counts)
    offs = cumsum0(counts)
    return owner, np.arange(offs[-1]) - np.repeat(offs[:-1] - starts, counts)


def wrap_phi(dphi: np.ndarray) -> np.ndarray:
    return np.where(dphi > np.pi, dphi - 2 * np.pi, np.where(dphi < -np.pi, dphi + 2 * np.pi, dphi))


def cone_ranges(grid: Grid, radius: float, ev: np.ndarray, eta: np.ndarray, phi: np.ndarray, keys: np.ndarray):
    """For each query (event, eta, phi), the ranges of ``keys`` (sorted event * grid.size + grid cell) that can hold
    points within ``radius``: per eta row of the grid, one or two (phi wrap) runs of grid cells.

    Returns (query of each range, start, count).
    """
    q = len(ev)
    eta = eta.astype(np.float64)
    phi = phi.astype(np.float64)
    lo_row = np.floor((eta - radius - grid.eta0) / grid.w_eta).astype(np.int64)
    n_rows = int(np.ceil(2 * radius / grid.w_eta)) + 1
    rows = lo_row[:, None] + np.arange(n_rows)[None, :]  # (q, n_rows)
    top = np.clip(rows, 0, grid.n_eta - 1)
    row_lo = grid.eta0 + top * grid.w_eta
    row_hi = row_lo + grid.w_eta
    row_lo = np.where(top == 0, -np.inf, row_lo)  # edge rows hold everything beyond the grid
    row_hi = np.where(top == grid.n_eta - 1, np.inf, row_hi)
    d_eta = np.maximum(0.0, np.maximum(row_lo - eta[:, None], eta[:, None] - row_hi))
    # a row clipped onto the grid's edge is searched once only
    first = np.ones(rows.shape, dtype=bool)
    first[:, 1:] = top[:, 1:] != top[:, :-1]
    ok = (d_eta <= radius) & first
    half = np.sqrt(np.maximum(radius * radius - d_eta * d_eta, 0.0))
    c_lo = np.floor((phi[:, None] - half + np.pi) / grid.w_phi).astype(np.int64)
    c_hi = np.floor((phi[:, None] + half + np.pi) / grid.w_phi).astype(np.int64)
    full = c_hi - c_lo + 1 >= grid.n_phi
    # run A and run B (the wrapped part), as half-open column intervals within [0, n_phi)
    a0 = np.where(full, 0, np.mod(c_lo, grid.n_phi))
    a1 = np.where(full, grid.n_phi, np.where(c_lo < 0, grid.n_phi, np.where(c_hi >= grid.n_phi, grid.n_phi, c_hi + 1)))
    b0 = np.zeros_like(a0)
    b1 = np.where(full, 0, np.where(c_lo < 0, c_hi + 1, np.where(c_hi >= grid.n_phi, c_hi - grid.n_phi + 1, 0)))
    base = ev[:, None].astype(np.int64) * grid.size + top * grid.n_phi
    lo = np.stack([base + a0, base + b0], axis=2)  # (q, n_rows, 2)
    hi = np.stack([base + a1, base + b1], axis=2)
    valid = np.repeat(ok[:, :, None], 2, axis=2) & (hi > lo)
    query = np.broadcast_to(np.arange(q)[:, None, None], valid.shape)[valid]
    start = np.searchsorted(keys, lo[valid], side="left")
    stop = np.searchsorted(keys, hi[valid], side="left")
    return query, start, stop - start


def grid_order(cell_ev: np.ndarray, rank: np.ndarray, n_ev: int, n_geo: int) -> np.ndarray:
    """Positions of each event's cells in (event, grid rank) order, duplicates of a cell dropped (first kept).

    One sort of packed 64-bit keys (event, rank, position): numpy's vectorised integer sort is
    several times faster than an argsort.
    """
    n = len(cell_ev)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    pos_bits = max(1, int(n - 1).bit_length())
    rank_bits = max(1, int(n_geo - 1).bit_length())
    ev_bits = max(1, int(n_ev - 1).bit_length())
    if pos_bits + rank_bits + ev_bits > 63:
        raise ValueError(f"range too large to sort in one key ({n} cells, {n_ev} events); use smaller tasks")
    key = (cell_ev.astype(np.int64) << (rank_bits + pos_bits)) | (rank.astype(np.int64) << pos_bits) | np.arange(n)
    key.sort()
    pos = key & ((1 << pos_bits) - 1)
    cell = key >> pos_bits
    first = np.ones(n, dtype=bool)
    first[1:] = cell[1:] != cell[:-1]
    return pos[first]
