"""The nearest-track baseline: every cell goes to the selected track closest to it.

The simplest event-level assignment the models must beat: no energy bookkeeping,
only geometry. Distances are measured in the cell's own layer (the track's
extrapolation there) because a track bends and a shower spreads with depth; a
cell in a layer the track did not reach, or in none of the 19, falls back to the
track's reference position (EMB2, else EME2).
"""

from __future__ import annotations

import itertools
import logging

import numpy as np

from raypf.data.cone import cumsum0, expand, wrap_phi
from raypf.evaluate.events import EventBatch

log = logging.getLogger(__name__)

#: Upper bound on the (cell, track) pairs expanded at once, to keep memory bounded in dense events.
MAX_PAIRS = 4_000_000


def position_table(events: EventBatch) -> tuple[np.ndarray, np.ndarray]:
    """Per track row: (eta, phi) float64 [T, 1 + n_layers]; column 0 is the reference, column l + 1 the
    extrapolation in layer l, or the reference where that is not finite.

    Built once so that looking up the point a cell is measured from is one gather per coordinate.
    """
    ref_eta = events.ref_eta.astype(np.float64)[:, None]
    ref_phi = events.ref_phi.astype(np.float64)[:, None]
    use = np.isfinite(events.layer_eta) & np.isfinite(events.layer_phi)
    eta = np.where(use, events.layer_eta, ref_eta)
    phi = np.where(use, events.layer_phi, ref_phi)
    return np.hstack([ref_eta, eta]), np.hstack([ref_phi, phi])


def track_position(
    table: tuple[np.ndarray, np.ndarray], track: np.ndarray, layer: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(eta, phi) of ``track`` rows in ``layer`` (index in LAYERS, -1: none) from ``position_table``.

    Shared by the baselines so that both measure a cell's distance from the same track point.
    """
    eta, phi = table
    flat = np.asarray(track, dtype=np.int64) * eta.shape[1] + (np.asarray(layer, dtype=np.int64) + 1)
    return eta.ravel()[flat], phi.ravel()[flat]


def pair_chunks(n_pairs: np.ndarray, max_pairs: int) -> np.ndarray:
    """Bounds of consecutive runs of items whose pair counts sum to at most ``max_pairs`` (an item over it alone).

    Greedy, so the number of chunks (the Python loop of the caller) is about total pairs / max_pairs.
    """
    pair_start = cumsum0(n_pairs)
    bounds = [0]
    while bounds[-1] < len(n_pairs):
        a = bounds[-1]
        bounds.append(max(int(np.searchsorted(pair_start, pair_start[a] + max_pairs, side="right")) - 1, a + 1))
    return np.asarray(bounds, dtype=np.int64)


def nearest_track(events: EventBatch, max_pairs: int = MAX_PAIRS, cells: np.ndarray | None = None) -> np.ndarray:
    """Per cell row: the track row nearest to it among its event's selected tracks, -1 when the event has none.

    Ties go to the lower track row. (cell, track) pairs are expanded in chunks of cells holding at most
    ``max_pairs`` pairs (one cell at least), so memory stays bounded whatever the event size. ``cells``
    limits the work to those rows (the others get -1): an evaluation needs only the cells of its cones.
    """
    n_cells = len(events.cell_e)
    out = np.full(n_cells, -1, dtype=np.int64)
    if n_cells == 0:
        return out
    sel_rows = np.flatnonzero(events.selected)  # ascending, hence grouped by event
    sel_offsets = cumsum0(np.bincount(events.track_event()[sel_rows], minlength=events.n_events))
    cell_event = events.cluster_event()[events.cell_cluster()]
    table = position_table(events)
    cell_eta = events.cell_eta.astype(np.float64)
    cell_phi = events.cell_phi.astype(np.float64)
    todo = np.arange(n_cells) if cells is None else np.unique(np.asarray(cells, dtype=np.int64))
    n_pairs = np.diff(sel_offsets)[cell_event[todo]]
    bounds = pair_chunks(n_pairs, max_pairs)
    for a, b in itertools.pairwise(bounds):
        chunk = np.arange(a, b)
        chunk = chunk[n_pairs[chunk] > 0]
        if len(chunk) == 0:
            continue
        counts = n_pairs[chunk]
        chunk_cells = todo[chunk]
        owner, idx = expand(sel_offsets[cell_event[chunk_cells]], counts)
        cell = chunk_cells[owner]
        track = sel_rows[idx]
        t_eta, t_phi = track_position(table, track, events.cell_layer[cell])
        d2 = (cell_eta[cell] - t_eta) ** 2 + wrap_phi(cell_phi[cell] - t_phi) ** 2
        d2 = np.where(np.isnan(d2), np.inf, d2)
        starts = cumsum0(counts)[:-1]
        best = np.minimum.reduceat(d2, starts)
        # first pair (lowest track row: rows ascend within a cell's pairs) reaching its cell's minimum
        hit = np.flatnonzero(d2 == best[owner])
        first = np.ones(len(hit), dtype=bool)
        first[1:] = owner[hit[1:]] != owner[hit[:-1]]
        out[cell[hit[first]]] = track[hit[first]]
    log.debug("nearest track: %d of %d cells, %d chunks", len(todo), n_cells, len(bounds) - 1)
    return out
