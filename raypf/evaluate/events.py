"""Whole events as flat arrays, for the event-level baselines (nearest track, rule-based particle flow).

The samples dataset holds one cone per track; the rule-based particle flow needs
more: every track of the event in descending pT, and whole topo-clusters. This
module reads those from the MLTree file a sample came from, for the entries the
evaluation needs, into one ``EventBatch`` of flat numpy arrays (offsets per
event, per cluster), so the baselines run vectorised over all events at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from raypf.data.cell_table import CellTable, unknown_cell
from raypf.data.cone import cumsum0, grid_order
from raypf.data.mltree import MLTreeError, read_columns
from raypf.data.mltree_schema import LAYER_PLACEMENT, LAYERS, MISSING_THRESHOLD

#: EventTree branches the event-level baselines read.
BRANCHES: tuple[str, ...] = (
    "nTrack", "trackPt", "trackP",
    *(f"track{c}_{layer}" for layer in LAYERS for c in ("Eta", "Phi")),
    "nCluster", "cluster_E", "cluster_Eta", "cluster_Phi", "cluster_cell_ID", "cluster_cell_E",
)  # fmt: skip

_EMB2, _EME2 = LAYERS.index("EMB2"), LAYERS.index("EME2")
#: CaloSampling number -> index in LAYERS (-1: not a layer tracks are extrapolated to).
LAYER_OF_SAMPLING = np.full(32, -1, dtype=np.int64)
LAYER_OF_SAMPLING[[LAYER_PLACEMENT[ly][0] for ly in LAYERS]] = np.arange(len(LAYERS))


@dataclass(frozen=True, eq=False)
class EventBatch:
    """Tracks, topo-clusters and their cells of ``n_events`` events, flat.

    Tracks of event ``e`` are rows ``track_offsets[e]:track_offsets[e+1]`` in file order (row minus
    ``track_offsets[e]`` is the MLTree track index, ``track_index`` of a sample). Clusters likewise with
    ``cluster_offsets``; the cells of cluster ``c`` are rows ``cell_offsets[c]:cell_offsets[c+1]``. A cell
    listed in several clusters of an event is kept once, in the first. ``layer_eta/phi`` are the track's
    extrapolations in the 19 layers of ``LAYERS`` (NaN where it did not reach one); ``selected`` marks tracks
    with an EMB2 (else EME2) extrapolation, those the samples dataset holds, whose position there is ``ref_eta/phi``.
    """

    entry: np.ndarray  # int64 [E], EventTree entry of each event
    track_offsets: np.ndarray  # int64 [E + 1]
    track_pt: np.ndarray  # float32 [T], GeV
    track_p: np.ndarray  # float32 [T], GeV
    layer_eta: np.ndarray  # float32 [T, 19]
    layer_phi: np.ndarray  # float32 [T, 19]
    ref_eta: np.ndarray  # float32 [T] (NaN where not selected)
    ref_phi: np.ndarray  # float32 [T]
    selected: np.ndarray  # bool [T]
    cluster_offsets: np.ndarray  # int64 [E + 1]
    cluster_e: np.ndarray  # float32 [C], GeV
    cluster_eta: np.ndarray  # float32 [C]
    cluster_phi: np.ndarray  # float32 [C]
    cell_offsets: np.ndarray  # int64 [C + 1]
    cell_id: np.ndarray  # uint64 [N]
    cell_e: np.ndarray  # float32 [N], GeV (may be negative: noise)
    cell_eta: np.ndarray  # float32 [N]
    cell_phi: np.ndarray  # float32 [N]
    cell_layer: np.ndarray  # int64 [N], index in LAYERS (-1: none)
    cell_pitch: np.ndarray  # float32 [N], angular cell size sqrt(deta * dphi): a ring's width in its layer

    @property
    def n_events(self) -> int:
        return len(self.entry)

    def track_event(self) -> np.ndarray:
        return np.repeat(np.arange(self.n_events), np.diff(self.track_offsets))

    def cluster_event(self) -> np.ndarray:
        return np.repeat(np.arange(self.n_events), np.diff(self.cluster_offsets))

    def cell_cluster(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.cluster_e)), np.diff(self.cell_offsets))


def read_event_batch(path: str, entries: np.ndarray, cells: CellTable) -> EventBatch:
    """The events at ``entries`` (sorted, unique) of ``path``, their cells looked up in ``cells``.

    Reads the smallest entry range that covers them, then keeps only those entries.
    """
    entries = np.asarray(entries, dtype=np.int64)
    if len(entries) == 0:
        raise ValueError(f"{path}: no entries to read")
    cols = read_columns(path, BRANCHES, int(entries[0]), int(entries[-1]) + 1)
    keep = entries - entries[0]
    n_read = len(cols["nTrack"].values)
    if keep[-1] >= n_read:
        raise MLTreeError(f"{path}: EventTree has no entry {int(entries[-1])}")

    # tracks of the kept events
    trk_off = cols["trackPt"].offsets[0]
    t_rows, track_offsets = _rows(trk_off, keep)
    eta_l = np.stack([cols[f"trackEta_{ly}"].values for ly in LAYERS], axis=1)[t_rows]
    phi_l = np.stack([cols[f"trackPhi_{ly}"].values for ly in LAYERS], axis=1)[t_rows]
    valid = (eta_l > MISSING_THRESHOLD) & (phi_l > MISSING_THRESHOLD) & np.isfinite(eta_l) & np.isfinite(phi_l)
    eta_l = np.where(valid, eta_l, np.nan).astype(np.float32)
    phi_l = np.where(valid, phi_l, np.nan).astype(np.float32)
    ref = np.where(valid[:, _EMB2], _EMB2, np.where(valid[:, _EME2], _EME2, -1))
    rows = np.arange(len(ref))
    ref_eta = np.where(ref >= 0, eta_l[rows, np.maximum(ref, 0)], np.nan).astype(np.float32)
    ref_phi = np.where(ref >= 0, phi_l[rows, np.maximum(ref, 0)], np.nan).astype(np.float32)

    # clusters of the kept events, and their cells
    ids = cols["cluster_cell_ID"]
    clu_off, cell_off = ids.offsets
    c_rows, cluster_offsets = _rows(clu_off, keep)
    n_cells = np.diff(cell_off)[c_rows]
    cell_rows = np.repeat(cell_off[c_rows], n_cells) + (
        np.arange(n_cells.sum()) - np.repeat(cumsum0(n_cells)[:-1], n_cells)
    )
    cell_id = ids.values[cell_rows]
    cell_e = cols["cluster_cell_E"].values[cell_rows]
    g = cells.lookup(cell_id)
    if len(g) and g.min() < 0:
        raise unknown_cell(path, int(cell_id[np.argmin(g)]))
    # a cell listed in several clusters of an event counts once: keep its first listing
    cell_event = np.repeat(np.repeat(np.arange(len(keep)), np.diff(cluster_offsets)), n_cells)
    first = np.zeros(len(g), dtype=bool)
    first[grid_order(cell_event, g, len(keep), len(cells))] = True  # preprocessing's rule, any per-cell key will do
    cell_cluster = np.repeat(np.arange(len(c_rows)), n_cells)[first]
    g = g[first]
    return EventBatch(
        entry=entries,
        track_offsets=track_offsets,
        track_pt=cols["trackPt"].values[t_rows].astype(np.float32),
        track_p=cols["trackP"].values[t_rows].astype(np.float32),
        layer_eta=eta_l,
        layer_phi=phi_l,
        ref_eta=ref_eta,
        ref_phi=ref_phi,
        selected=ref >= 0,
        cluster_offsets=cluster_offsets,
        cluster_e=cols["cluster_E"].values[c_rows].astype(np.float32),
        cluster_eta=cols["cluster_Eta"].values[c_rows].astype(np.float32),
        cluster_phi=cols["cluster_Phi"].values[c_rows].astype(np.float32),
        cell_offsets=cumsum0(np.bincount(cell_cluster, minlength=len(c_rows))),
        cell_id=cell_id[first],
        cell_e=cell_e[first].astype(np.float32),
        cell_eta=cells.eta[g],
        cell_phi=cells.phi[g],
        cell_layer=LAYER_OF_SAMPLING[np.clip(cells.sampling[g].astype(np.int64), 0, 31)],
        cell_pitch=np.sqrt(cells.deta[g].astype(np.float64) * cells.dphi[g]).astype(np.float32),
    )


def _rows(offsets: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat rows of the kept events' lists, and the kept events' new offsets."""
    counts = np.diff(offsets)[keep]
    new = cumsum0(counts)
    rows = np.repeat(offsets[keep], counts) + (np.arange(new[-1]) - np.repeat(new[:-1], counts))
    return rows.astype(np.int64), new
