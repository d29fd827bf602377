"""Per-track point-cloud samples from a range of MLTree events, for all tracks and events at once.

A sample (``001_*``, DESIGN.md "Intermediate") belongs to one focal track
with a valid EMB2 (else EME2) extrapolation: the focal track's layer points,
every clustered cell within ``max_delta_r`` of the focal track's reference
(eta, phi), and the layer points of other tracks inside that cone. Points are
stored focal-track points first (in layer order), then cells, then other
tracks' points, each with the features and per-point truth below.

Truth per cell, from ``cluster_cell_hitsTruthIndex/E``: ``truth_focal`` is the
focal track's particle's energy, ``truth_other_tracked`` that of particles
matched to another track of the event ("other charged" in DESIGN.md),
``truth_untracked`` that of particles matched to no track ("neutral": photons,
neutral hadrons and charged particles that left no track), ``truth_total``
the sum. Track points carry zero truth; models mask them.

The cone search never compares every track with every cell: cells are sorted
by event and eta-phi grid cell (``CellTable``), and each track reads a few
contiguous ranges of that order, so the work is proportional to the points
near tracks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from raypf.data.cell_table import CellTable
from raypf.data.cone import cone_ranges, cumsum0, expand, wrap_phi
from raypf.data.event_cells import event_cells
from raypf.data.mltree import Jagged
from raypf.data.mltree_schema import LAYER_PLACEMENT, LAYERS, MISSING_THRESHOLD
from raypf.data.point_kernels import STAT_ORDER, assemble, cone_cells, new_moments
from raypf.data.preprocess_config import SampleOptions
from raypf.data.split import SPLITS, assign_splits

#: EventTree branches sample building reads.
BRANCHES: tuple[str, ...] = (
    "runNumber", "eventNumber", "nTrack", "trackPt", "trackP", "trackChiSquared", "trackNumberDOF",
    "trackTruthParticleIndex", "nTruthPart", "truthPartPdgId", "truthPartE",
    *(f"track{c}_{layer}" for layer in LAYERS for c in ("Eta", "Phi")),
    "nCluster", "cluster_cell_ID", "cluster_cell_E", "cluster_cell_hitsTruthIndex", "cluster_cell_hitsTruthE",
)  # fmt: skip

#: point_type values, as in the seed: 0 cell, 1 focal-track point, 2 other-track point.
CELL, FOCAL, OTHER = 0, 1, 2

#: Per-point list columns and their dtypes.
POINT_COLUMNS: dict[str, np.dtype] = {
    "x": np.dtype(np.float32), "y": np.dtype(np.float32), "z": np.dtype(np.float32),
    "delta_r": np.dtype(np.float32), "dist_focal": np.dtype(np.float32),
    "energy": np.dtype(np.float32), "sigma": np.dtype(np.float32), "chi2_ndof": np.dtype(np.float32),
    "point_type": np.dtype(np.int8), "track": np.dtype(np.int16), "layer": np.dtype(np.int8),
    "cell_id": np.dtype(np.uint64), "cluster": np.dtype(np.int16),
    "truth_focal": np.dtype(np.float32), "truth_other_tracked": np.dtype(np.float32),
    "truth_untracked": np.dtype(np.float32), "truth_total": np.dtype(np.float32),
}  # fmt: skip

#: Per-sample columns and their Arrow types (set and split are the partition directories).
SCALAR_COLUMNS: dict[str, pa.DataType] = {
    "file": pa.dictionary(pa.int32(), pa.string()), "run": pa.int32(), "event": pa.int64(), "entry": pa.int64(),
    "track_index": pa.int16(), "track_pt": pa.float32(), "track_p": pa.float32(), "track_eta": pa.float32(),
    "track_phi": pa.float32(), "track_ref_layer": pa.int8(), "track_chi2_ndof": pa.float32(), "truth_index": pa.int32(),
    "truth_pdg_id": pa.int32(), "truth_e": pa.float32(), "n_points": pa.int32(), "n_cells": pa.int32(),
    "n_focal_points": pa.int32(), "n_other_track_points": pa.int32(), "n_other_tracks": pa.int32(), "truncated": pa.bool_(),
}  # fmt: skip

#: The samples' Arrow schema; nothing is nullable, which also spares Parquet the definition levels.
SCHEMA = pa.schema(
    [pa.field(k, t, nullable=False) for k, t in SCALAR_COLUMNS.items()]
    + [
        pa.field(k, pa.list_(pa.field("item", pa.from_numpy_dtype(dt), nullable=False)), nullable=False)
        for k, dt in POINT_COLUMNS.items()
    ]
)

#: Float point features whose statistics go into the metadata, per point type.
STAT_FEATURES: tuple[str, ...] = STAT_ORDER

_SAMPLING = np.array([LAYER_PLACEMENT[ly][0] for ly in LAYERS], dtype=np.int8)
_BARREL = np.array([LAYER_PLACEMENT[ly][1] for ly in LAYERS])
_POSITION = np.array([LAYER_PLACEMENT[ly][2] for ly in LAYERS])
_EMB2, _EME2 = LAYERS.index("EMB2"), LAYERS.index("EME2")


@dataclass
class ChunkStats:
    """Counts from one task; ``merge`` adds them up on the driver (plain ints and lists: JSON as is)."""

    events: int = 0
    tracks: int = 0
    samples: list[int] = field(default_factory=lambda: [0, 0, 0])  # per split
    events_per_split: list[int] = field(default_factory=lambda: [0, 0, 0])
    dropped: dict[str, int] = field(default_factory=dict)  # policy -> samples (or deposits) affected
    cell_points: int = 0
    focal_cell_points: int = 0  # cells whose truth energy is mostly the focal particle's
    point_hist: list[list[int]] = field(default_factory=lambda: [[], [], []])  # per split: samples per point count
    feature_moments: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # type -> feature -> [n, sum, sum2, min, max]

    def count(self, key: str, n: int) -> None:
        self.dropped[key] = self.dropped.get(key, 0) + int(n)

    def merge(self, other: ChunkStats) -> None:
        self.events += other.events
        self.tracks += other.tracks
        self.samples = [a + b for a, b in zip(self.samples, other.samples)]
        self.events_per_split = [a + b for a, b in zip(self.events_per_split, other.events_per_split)]
        for k, v in other.dropped.items():
            self.count(k, v)
        self.cell_points += other.cell_points
        self.focal_cell_points += other.focal_cell_points
        for i in range(3):
            a, b = self.point_hist[i], other.point_hist[i]
            self.point_hist[i] = [x + y for x, y in zip(a + [0] * (len(b) - len(a)), b + [0] * (len(a) - len(b)))]
        for ptype, feats in other.feature_moments.items():
            mine = self.feature_moments.setdefault(ptype, {})
            for name, (n, s, s2, lo, hi) in feats.items():
                if name not in mine:
                    mine[name] = [n, s, s2, lo, hi]
                else:
                    m = mine[name]
                    mine[name] = [m[0] + n, m[1] + s, m[2] + s2, min(m[3], lo), max(m[4], hi)]


@dataclass
class Samples:
    """Built samples: one Arrow table per split (rows in event order) and the chunk's counts."""

    tables: dict[str, pa.Table]
    stats: ChunkStats


def build_samples(cols: dict[str, Jagged], cells: CellTable, opts: SampleOptions, path: str, entry_start: int = 0) -> Samples:
    """Samples of every selected track in ``cols`` (a range of one file's events starting at ``entry_start``)."""
    stats = ChunkStats()
    radius = float(opts.max_delta_r)
    grid = cells.grid
    run = cols["runNumber"].values.astype(np.int64)
    event_number = cols["eventNumber"].values
    n_ev = len(run)
    stats.events = n_ev
    split_of_event = assign_splits(run, event_number, opts.split.train, opts.split.val, opts.split.seed)
    stats.events_per_split = np.bincount(split_of_event, minlength=3).tolist()

    # ---- tracks and their layer points
    trk_off = cols["trackPt"].offsets[0]
    n_trk = int(trk_off[-1])
    stats.tracks = n_trk
    trk_ev = np.repeat(np.arange(n_ev), np.diff(trk_off))
    trk_local = np.arange(n_trk) - trk_off[trk_ev]
    pt = cols["trackPt"].values
    ndof = cols["trackNumberDOF"].values.astype(np.float32)
    chi2ndof = np.where(ndof > 0, cols["trackChiSquared"].values / np.maximum(ndof, 1), 0).astype(np.float32)
    eta_l = np.stack([cols[f"trackEta_{ly}"].values for ly in LAYERS], axis=1)
    phi_l = np.stack([cols[f"trackPhi_{ly}"].values for ly in LAYERS], axis=1)
    valid = (eta_l > MISSING_THRESHOLD) & (phi_l > MISSING_THRESHOLD) & np.isfinite(eta_l) & np.isfinite(phi_l)
    p_trk, p_layer = np.nonzero(valid)  # track-major, layers in order
    p_eta = eta_l[p_trk, p_layer]
    p_phi = phi_l[p_trk, p_layer]
    p_x, p_y, p_z = _layer_points(p_eta, p_phi, p_layer)
    p_off = cumsum0(valid.sum(axis=1))

    truth_off = cols["truthPartPdgId"].offsets[0]
    n_truth_ev = np.diff(truth_off)
    t_idx = cols["trackTruthParticleIndex"].values.astype(np.int64)
    has_truth = (t_idx >= 0) & (t_idx < n_truth_ev[trk_ev])
    t_global = np.where(has_truth, truth_off[trk_ev] + t_idx, -1)
    tracked = np.zeros(int(truth_off[-1]) + 1, dtype=bool)  # last slot: "no particle"
    tracked[t_global[has_truth]] = True

    ref = np.where(valid[:, _EMB2], _EMB2, np.where(valid[:, _EME2], _EME2, -1))
    focal = np.nonzero(ref >= 0)[0]
    stats.count("no_emb2_or_eme2", n_trk - len(focal))
    if opts.tracks_without_truth == "drop":
        stats.count("track_without_truth", int((~has_truth[focal]).sum()))
        focal = focal[has_truth[focal]]
    ref_eta = eta_l[focal, ref[focal]]
    ref_phi = phi_l[focal, ref[focal]]
    s_ev = trk_ev[focal]
    n_s = len(focal)

    # ---- clustered cells: once per event, in grid order, with their truth sums (a duplicate's copy is never looked at)
    ids = cols["cluster_cell_ID"]
    ec = event_cells(
        ids, cols["cluster_cell_hitsTruthIndex"], cols["cluster_cell_hitsTruthE"], truth_off, tracked, cells,
        opts.negative_truth == "clip", path,
    )  # fmt: skip
    stats.count("duplicate_cell_entries", len(ids.values) - len(ec.raw))
    if opts.negative_truth == "clip":
        stats.count("negative_truth_deposits_clipped", ec.negative_clipped)
    stats.count("truth_deposits_with_unknown_particle", ec.unknown_particle)

    # ---- cone search: cells
    q, start, count = cone_ranges(grid, radius, s_ev, ref_eta, ref_phi, ec.key)
    c_s, c_u, c_dr = cone_cells(q, start, count, ec.eta, ec.phi, ref_eta, ref_phi, radius)

    # ---- cone search: other tracks' points
    pt_key = trk_ev[p_trk] * grid.size + grid.cell(p_eta, p_phi)
    p_order = np.argsort(pt_key, kind="stable")
    q, start, count = cone_ranges(grid, radius, s_ev, ref_eta, ref_phi, pt_key[p_order])
    o_s, o_i = expand(start, count)
    o_s, o_p = q[o_s], p_order[o_i]
    d_eta = p_eta[o_p].astype(np.float64) - ref_eta[o_s]
    d_phi = wrap_phi(p_phi[o_p].astype(np.float64) - ref_phi[o_s])
    dr2 = d_eta * d_eta + d_phi * d_phi
    inside = (dr2 <= radius * radius) & (p_trk[o_p] != focal[o_s])
    o_s, o_p, o_dr = o_s[inside], o_p[inside], np.sqrt(dr2[inside])
    # keep other-track points in (sample, track, layer) order
    o_sort = np.lexsort((o_p, o_s))
    o_s, o_p, o_dr = o_s[o_sort], o_p[o_sort], o_dr[o_sort]

    # ---- focal-track points
    f_s, f_p = expand(p_off[focal], np.diff(p_off)[focal])
    f_dr = np.sqrt((p_eta[f_p].astype(np.float64) - ref_eta[f_s]) ** 2 + wrap_phi(p_phi[f_p].astype(np.float64) - ref_phi[f_s]) ** 2)

    # ---- which samples survive the policies
    n_focal = np.bincount(f_s, minlength=n_s)
    n_cells = np.bincount(c_s, minlength=n_s)
    n_other = np.bincount(o_s, minlength=n_s)
    keep = n_cells >= opts.min_cells
    stats.count("fewer_than_min_cells", int((~keep).sum()))
    over = keep & (n_focal + n_cells + n_other > opts.max_points)
    if opts.too_many_points == "drop":
        stats.count("more_than_max_points_dropped", int(over.sum()))
        keep &= ~over
    else:
        stats.count("more_than_max_points_truncated", int(over.sum()))
    truncated = np.zeros(n_s, dtype=bool)
    if opts.too_many_points == "truncate" and over.any():
        c_keep, o_keep = _truncate(c_s, c_dr, o_s, o_dr, n_focal, over, opts.max_points)
        c_s, c_u, c_dr = c_s[c_keep], c_u[c_keep], c_dr[c_keep]
        o_s, o_p, o_dr = o_s[o_keep], o_p[o_keep], o_dr[o_keep]
        truncated = over
        n_cells = np.bincount(c_s, minlength=n_s)
        n_other = np.bincount(o_s, minlength=n_s)
    sel = keep[c_s]
    c_s, c_u, c_dr = c_s[sel], c_u[sel], c_dr[sel]
    sel = keep[o_s]
    o_s, o_p, o_dr = o_s[sel], o_p[sel], o_dr[sel]
    sel = keep[f_s]
    f_s, f_p, f_dr = f_s[sel], f_p[sel], f_dr[sel]

    # ---- sample order: by split, then as found; point offsets
    s_split = split_of_event[s_ev]
    order = np.nonzero(keep)[0]
    order = order[np.argsort(s_split[order], kind="stable")]
    split_of_sample = s_split[order]
    n_pts = (n_focal + n_cells + n_other)[order]
    offsets = cumsum0(n_pts)

    # ---- every point's features and truth, in one pass (point arrays are grouped by sample)
    out = {name: np.zeros(int(offsets[-1]), dtype=dt) for name, dt in POINT_COLUMNS.items()}
    moments = new_moments()
    stats.focal_cell_points = assemble(
        order, offsets, int(np.count_nonzero(split_of_sample == 0)),
        cumsum0(np.bincount(f_s, minlength=n_s)), f_p, f_dr,
        cumsum0(np.bincount(c_s, minlength=n_s)), c_u, c_dr,
        cumsum0(np.bincount(o_s, minlength=n_s)), o_p, o_dr,
        p_x, p_y, p_z, p_trk, _SAMPLING[p_layer], pt, chi2ndof, trk_local,
        ec.geo, ec.raw, cells.x, cells.y, cells.z, cells.sigma, cells.sampling,
        cols["cluster_cell_E"].values, ids.values, ec.cluster,
        ec.truth_total, ec.truth_tracked, t_global[focal], cols["cluster_cell_hitsTruthIndex"].offsets[2],
        ec.deposit_particle, ec.deposit_energy,
        *(out[name] for name in POINT_COLUMNS), moments,  # in the kernel's argument order
    )  # fmt: skip
    stats.cell_points = len(c_s)
    for code, ptype in enumerate(("cell", "focal_track", "other_track")):
        if moments[code, 0, 0] > 0:
            stats.feature_moments[ptype] = {name: [int(m[0]), *map(float, m[1:])] for name, m in zip(STAT_FEATURES, moments[code])}

    # ---- per-sample columns
    trk = focal[order]
    part = t_global[trk]
    pdg = cols["truthPartPdgId"].values
    truth_e = cols["truthPartE"].values
    other_tracks = _distinct_per_sample(o_s, p_trk[o_p], n_s)
    scalars = {
        "file": pa.DictionaryArray.from_arrays(np.zeros(len(order), np.int32), pa.array([path.rsplit("/", 1)[-1]])),
        "run": run[s_ev[order]].astype(np.int32),
        "event": event_number[s_ev[order]].astype(np.int64),
        "entry": (entry_start + s_ev[order]).astype(np.int64),
        "track_index": trk_local[trk].astype(np.int16),
        "track_pt": pt[trk],
        "track_p": cols["trackP"].values[trk],
        "track_eta": ref_eta[order].astype(np.float32),
        "track_phi": ref_phi[order].astype(np.float32),
        "track_ref_layer": _SAMPLING[ref[trk]],
        "track_chi2_ndof": chi2ndof[trk],
        "truth_index": np.where(part >= 0, t_idx[trk], -1).astype(np.int32),
        "truth_pdg_id": np.where(part >= 0, pdg[np.maximum(part, 0)] if len(pdg) else 0, 0).astype(np.int32),
        "truth_e": np.where(part >= 0, truth_e[np.maximum(part, 0)] if len(truth_e) else 0, 0).astype(np.float32),
        "n_points": n_pts.astype(np.int32),
        "n_cells": n_cells[order].astype(np.int32),
        "n_focal_points": n_focal[order].astype(np.int32),
        "n_other_track_points": n_other[order].astype(np.int32),
        "n_other_tracks": other_tracks[order].astype(np.int32),
        "truncated": truncated[order],
    }
    offsets32 = pa.array(offsets.astype(np.int32))
    arrays = [pa.array(scalars[name]) if name != "file" else scalars[name] for name in SCALAR_COLUMNS]
    arrays += [pa.ListArray.from_arrays(offsets32, pa.array(out[name]), type=SCHEMA.field(name).type) for name in POINT_COLUMNS]
    table = pa.Table.from_arrays(arrays, schema=SCHEMA)

    # ---- split tables and statistics
    bounds = np.searchsorted(split_of_sample, np.arange(4))
    tables = {}
    for i, name in enumerate(SPLITS):
        a, b = int(bounds[i]), int(bounds[i + 1])
        stats.samples[i] = b - a
        stats.point_hist[i] = np.bincount(n_pts[a:b]).tolist() if b > a else []
        if b > a:
            tables[name] = table.slice(a, b - a)
    return Samples(tables, stats)


def _layer_points(eta: np.ndarray, phi: np.ndarray, layer: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, y, z of extrapolated (eta, phi) on each layer's cylinder (barrel) or disc (end-cap)."""
    eta = eta.astype(np.float64)
    phi = phi.astype(np.float64)
    pos = _POSITION[layer]
    sh = np.sinh(eta)
    barrel = _BARREL[layer]
    r = np.where(barrel, pos, pos / np.maximum(np.abs(sh), 1e-9))
    z = np.where(barrel, pos * sh, np.copysign(pos, eta))
    return (r * np.cos(phi)).astype(np.float32), (r * np.sin(phi)).astype(np.float32), z.astype(np.float32)


def _truncate(c_s, c_dr, o_s, o_dr, n_focal, over, max_points):
    """Keep masks for cell and other-track points: in over-full samples, the ones nearest in delta R."""
    s = np.concatenate([c_s, o_s])
    dr = np.concatenate([c_dr, o_dr])
    keep = np.ones(len(s), dtype=bool)
    hit = np.nonzero(over[s])[0]
    order = hit[np.lexsort((dr[hit], s[hit]))]
    first = cumsum0(np.bincount(s[order], minlength=len(over)))[:-1]
    rank = np.arange(len(order)) - first[s[order]]
    keep[order[rank >= max_points - n_focal[s[order]]]] = False
    return keep[: len(c_s)], keep[len(c_s) :]


def _distinct_per_sample(s: np.ndarray, track: np.ndarray, n_s: int) -> np.ndarray:
    """Number of distinct tracks per sample (pairs sorted by sample then track)."""
    if not len(s):
        return np.zeros(n_s, dtype=np.int64)
    new = np.ones(len(s), dtype=bool)
    new[1:] = (s[1:] != s[:-1]) | (track[1:] != track[:-1])
    return np.bincount(s[new], minlength=n_s)
