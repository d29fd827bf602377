"""Packed training batches from rows of the samples dataset (DESIGN.md, "Training batches").

A batch concatenates the points of all its samples into one ``[N, F]``
feature matrix with a per-point sample index, so no arithmetic is spent on
padding; per-sample operations work per segment (``raypf.models.segments``).
Features stay in physical units here: the normalisation (per point type, from
the dataset metadata) is a buffer of the model and runs on the device.

Imports only numpy, pyarrow and torch, so batching runs on a machine without Ray.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

import numpy as np
import pyarrow as pa
import torch

#: point_type codes of the samples dataset.
CELL, FOCAL, OTHER = 0, 1, 2
POINT_TYPES = ("cell", "focal_track", "other_track")

#: Input features by name: (source list column, point types where the value is kept; None = all).
#: ``point_type`` is one-hot (3 columns); every other feature is one column.
FEATURES: dict[str, tuple[str, tuple[int, ...] | None]] = {
    "point_type": ("point_type", None),
    "delta_r": ("delta_r", None),
    "track": ("track", (FOCAL, OTHER)),
    "x": ("x", None),
    "y": ("y", None),
    "z": ("z", None),
    "chi2_ndof": ("chi2_ndof", (FOCAL, OTHER)),
    "sigma": ("sigma", (CELL,)),
    "dist_focal": ("dist_focal", None),
    "cell_energy": ("energy", (CELL,)),
    "track_pt": ("energy", (FOCAL, OTHER)),
    "layer": ("layer", None),
}

#: The seed's inputs: point type, delta R, track number, x, y, z, track chi2/dof, cell sigma,
#: distance to the focal track, cell energy, track pT.
DEFAULT_FEATURES: tuple[str, ...] = (
    "point_type", "delta_r", "track", "x", "y", "z", "chi2_ndof", "sigma", "dist_focal", "cell_energy", "track_pt",
)  # fmt: skip

Target = Literal["binary", "three_class", "fraction"]
TARGETS: tuple[str, ...] = ("binary", "three_class", "fraction")

#: Class indices. Binary: 0 not focal, 1 focal. Three classes: 0 neutral (or noise only), 1 focal, 2 other charged;
#: the focal class is 1 in both, so focal precision/recall/F1 mean the same thing for either target.
NEUTRAL, FOCAL_CLASS, OTHER_CHARGED = 0, 1, 2

#: Columns a batch reads from the samples dataset.
TRUTH_COLUMNS = ("truth_focal", "truth_other_tracked", "truth_untracked", "truth_total")


def feature_width(features: tuple[str, ...] | list[str]) -> int:
    """Number of input columns ``features`` make (one-hot point type counts 3)."""
    _check_features(features)
    return sum(3 if f == "point_type" else 1 for f in features)


def _check_features(features) -> None:
    unknown = [f for f in features if f not in FEATURES]
    if unknown:
        raise ValueError(f"unknown feature(s) {unknown}; known: {sorted(FEATURES)}")
    if len(set(features)) != len(features):
        raise ValueError(f"feature listed twice in {list(features)}")


def columns_for(features: tuple[str, ...] | list[str]) -> list[str]:
    """List columns of the samples dataset a batch with ``features`` reads."""
    need = {"point_type", "energy", *TRUTH_COLUMNS}
    need.update(FEATURES[f][0] for f in features)
    return sorted(need)


@dataclass
class PackedBatch:
    """All points of ``n_samples`` samples, concatenated in sample order.

    ``features`` are raw (physical units); ``energy`` is the cell energy (0 on track points) used by the
    regression bypass, the energy weights and the per-sample energy metrics. ``cell`` marks the points
    that enter losses and metrics: track points are inputs only.
    """

    features: torch.Tensor  # [N, F] float32
    point_type: torch.Tensor  # [N] int64
    sample: torch.Tensor  # [N] int64, sample index of each point
    position: torch.Tensor  # [N] int64, index of the point inside its sample
    offsets: torch.Tensor  # [B + 1] int64
    energy: torch.Tensor  # [N] float32
    cell: torch.Tensor  # [N] bool
    target: torch.Tensor  # [N] int64 (classes) or float32 (fraction)
    truth_focal: torch.Tensor  # [N] float32
    truth_total: torch.Tensor  # [N] float32
    max_points: int

    @property
    def n_samples(self) -> int:
        return int(self.offsets.numel() - 1)

    @property
    def n_points(self) -> int:
        return int(self.features.shape[0])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> PackedBatch:
        moved = {}
        for f in fields(self):
            value = getattr(self, f.name)
            moved[f.name] = value.to(device, non_blocking=non_blocking) if isinstance(value, torch.Tensor) else value
        return PackedBatch(**moved)


def segment_index(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offsets ``[B + 1]``, sample index ``[N]`` and position in the sample ``[N]`` for samples of ``counts`` points."""
    counts = np.asarray(counts, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    sample = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    position = np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1], counts)
    return offsets, sample, position


def list_column(table: pa.Table, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Flat values and zero-based offsets of one list column, whatever its chunking or slicing."""
    try:
        col = table.column(name)
    except KeyError:
        raise KeyError(f"samples table has no column '{name}' (columns: {', '.join(table.column_names)})") from None
    arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    offsets = arr.offsets.to_numpy()
    values = arr.values.slice(int(offsets[0]), int(offsets[-1] - offsets[0])).to_numpy(zero_copy_only=False)
    return values, (offsets - offsets[0]).astype(np.int64)


def labels(
    target: str, point_type: np.ndarray, focal: np.ndarray, other: np.ndarray, untracked: np.ndarray, total: np.ndarray
) -> np.ndarray:
    """Per-point target; track points get 0 (they are masked out of losses and metrics).

    A cell is focal when the focal particle's share of its truth energy is >= 0.5 (cells with no truth
    energy, pure noise, are not). Three classes: focal as in the binary target; otherwise other charged
    when other tracked particles left more than untracked ones, else neutral (noise-only cells included:
    particle flow leaves unassigned energy to the neutral side).
    """
    cell = point_type == CELL
    share = np.divide(focal, total, out=np.zeros_like(focal, dtype=np.float32), where=total > 0)
    share = np.where(cell, share, 0.0).astype(np.float32)
    if target == "fraction":
        return share
    is_focal = cell & (share >= 0.5)
    if target == "binary":
        return is_focal.astype(np.int64)
    if target == "three_class":
        cls = np.where(other > untracked, OTHER_CHARGED, NEUTRAL)
        return np.where(is_focal, FOCAL_CLASS, np.where(cell, cls, NEUTRAL)).astype(np.int64)
    raise ValueError(f"unknown target '{target}'; known: {', '.join(TARGETS)}")


def pack(table: pa.Table, features: tuple[str, ...] | list[str] = DEFAULT_FEATURES, target: str = "binary") -> PackedBatch:
    """One packed batch from a table of sample rows (a Parquet read, a Ray Data batch, a slice).

    Vectorised over all points: the per-feature work is a cast and a type mask per column.
    """
    _check_features(features)
    if target not in TARGETS:
        raise ValueError(f"unknown target '{target}'; known: {', '.join(TARGETS)}")
    ptype, offsets = list_column(table, "point_type")
    ptype = ptype.astype(np.int64)
    n = len(ptype)
    cols: dict[str, np.ndarray] = {"point_type": ptype}
    for name in columns_for(features):
        if name not in cols:
            values, off = list_column(table, name)
            if len(values) != n or not np.array_equal(off, offsets):
                raise ValueError(f"samples table: list column '{name}' does not have the points of 'point_type' in every row")
            cols[name] = values
    x = np.empty((n, feature_width(features)), dtype=np.float32)
    j = 0
    for f in features:
        if f == "point_type":
            x[:, j : j + 3] = ptype[:, None] == np.arange(3)
            j += 3
            continue
        source, keep = FEATURES[f]
        v = cols[source].astype(np.float32)
        if keep is not None:
            v = np.where(np.isin(ptype, keep), v, np.float32(0))
        x[:, j] = v
        j += 1
    cell = ptype == CELL
    energy = np.where(cell, cols["energy"].astype(np.float32), np.float32(0))
    counts = np.diff(offsets)
    _, sample, position = segment_index(counts)
    y = labels(target, ptype, *(cols[c].astype(np.float32) for c in TRUTH_COLUMNS))
    return PackedBatch(
        features=torch.from_numpy(x),
        point_type=torch.from_numpy(ptype),
        sample=torch.from_numpy(sample),
        position=torch.from_numpy(position),
        offsets=torch.from_numpy(offsets),
        energy=torch.from_numpy(energy),
        cell=torch.from_numpy(cell),
        target=torch.from_numpy(y),
        truth_focal=torch.from_numpy(np.where(cell, cols["truth_focal"], 0).astype(np.float32)),
        truth_total=torch.from_numpy(np.where(cell, cols["truth_total"], 0).astype(np.float32)),
        max_points=int(counts.max()) if len(counts) else 0,
    )


@dataclass
class PaddedBatch:
    """The same points padded to ``[B, L, ...]`` with a mask: the seed's layout, for models that need it."""

    features: torch.Tensor  # [B, L, F]
    point_type: torch.Tensor  # [B, L]
    mask: torch.Tensor  # [B, L] bool, True on real points
    energy: torch.Tensor  # [B, L]


def to_padded(batch: PackedBatch, length: int | None = None) -> PaddedBatch:
    """Scatter a packed batch into padded tensors of length ``length`` (default: its longest sample)."""
    length = batch.max_points if length is None else length
    if length < batch.max_points:
        raise ValueError(f"padded length {length} is shorter than the longest sample ({batch.max_points} points)")
    b, idx = batch.n_samples, (batch.sample, batch.position)
    feats = batch.features.new_zeros(b, length, batch.features.shape[1])
    feats[idx] = batch.features
    ptype = batch.point_type.new_zeros(b, length)
    ptype[idx] = batch.point_type
    mask = torch.zeros(b, length, dtype=torch.bool, device=batch.features.device)
    mask[idx] = True
    energy = batch.energy.new_zeros(b, length)
    energy[idx] = batch.energy
    return PaddedBatch(feats, ptype, mask, energy)


def feature_norm(metadata: dict, features: tuple[str, ...] | list[str] = DEFAULT_FEATURES) -> tuple[np.ndarray, np.ndarray]:
    """Per-point-type mean and std, ``[3, F]`` each, from the dataset metadata's training-split statistics.

    Each feature is standardised with the statistics of its own point type (a cell energy and a track pT
    live on different scales); one-hot columns, and features a point type does not carry keep mean 0
    and std 1; a feature constant within a type is only centred.
    """
    _check_features(features)
    try:
        stats = metadata["feature_stats"]["by_point_type"]
    except (KeyError, TypeError):
        raise KeyError("dataset metadata has no 'feature_stats.by_point_type' (was it written by raypf preprocess?)") from None
    width = feature_width(features)
    mean = np.zeros((3, width), dtype=np.float32)
    std = np.ones((3, width), dtype=np.float32)
    j = 0
    for f in features:
        if f == "point_type":
            j += 3
            continue
        source, keep = FEATURES[f]
        for code, type_name in enumerate(POINT_TYPES):
            s = stats.get(type_name, {}).get(source)
            if s is None or s["count"] == 0 or (keep is not None and code not in keep):
                continue
            mean[code, j] = s["mean"]
            std[code, j] = s["std"] if s["std"] > 1e-12 else 1.0
        j += 1
    return mean, std
