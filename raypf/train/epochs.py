"""Sampled epochs: which row groups of the training split each epoch reads.

An epoch is ``samples_per_epoch`` samples drawn with per-set mixing fractions,
so it costs the same whatever the dataset size. The unit of reading is a
Parquet row group (``parquet_row_group_samples`` samples, written by
preprocess): an epoch decodes about the samples it uses, never whole files.
For each set the row groups are visited in a fresh random permutation per
pass over the set, and consecutive epochs continue where the last one
stopped, so every sample is seen once before any is seen twice and different
epochs draw different samples. The plan is a pure function of (seed, epoch):
identical on every worker and after a restart.

Imports only numpy and pyarrow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow.dataset as pads
import pyarrow.parquet as pq


@dataclass(frozen=True)
class RowGroup:
    path: str
    index: int
    rows: int
    set: str


def row_groups(dataset_dir: str, split: str) -> dict[str, list[RowGroup]]:
    """Every row group of one split, by set, in a stable order (path, index), from the Parquet footers."""
    ds = pads.dataset(dataset_dir, format="parquet", partitioning="hive", exclude_invalid_files=True)
    out: dict[str, list[RowGroup]] = {}
    for frag in ds.get_fragments(filter=pads.field("split") == split):
        keys = pads.get_partition_keys(frag.partition_expression)
        meta = pq.ParquetFile(frag.path).metadata
        for i in range(meta.num_row_groups):
            out.setdefault(keys["set"], []).append(RowGroup(frag.path, i, meta.row_group(i).num_rows, keys["set"]))
    for groups in out.values():
        groups.sort(key=lambda g: (g.path, g.index))
    return out


def _sequence(groups: list[RowGroup], seed: int, set_name: str, rows_needed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-group indices in visiting order (one permutation per pass) and their cumulative rows.

    Each pass starts with row groups that were not among the last half of the previous pass, so a
    row group never comes back within half a pass: epochs smaller than half the set never hold a
    sample twice, and workers a few batches apart never train on the same sample.
    """
    rows = np.array([g.rows for g in groups], dtype=np.int64)
    per_pass = int(rows.sum())
    passes = max(1, -(-rows_needed // per_pass) + 1)
    key = int.from_bytes(set_name.encode()[:8].ljust(8, b"\0"), "little")
    window = len(groups) // 2
    order, tail = [], np.empty(0, dtype=np.int64)
    for p in range(passes):
        perm = np.random.default_rng([seed, key, p]).permutation(len(groups))
        late = np.isin(perm, tail)
        perm = np.concatenate([perm[~late], perm[late]])
        order.append(perm)
        tail = perm[len(perm) - window :] if window else tail
    order = np.concatenate(order)
    return order, np.cumsum(rows[order])


def epoch_plan(
    groups: dict[str, list[RowGroup]], fractions: dict[str, float], samples_per_epoch: int, epoch: int, seed: int
) -> list[RowGroup]:
    """Row groups of ``epoch``: per set about ``fraction * samples_per_epoch`` samples, continuing the set's sequence."""
    plan: list[RowGroup] = []
    for set_name, frac in sorted(fractions.items()):
        if frac <= 0:
            continue
        if set_name not in groups:
            raise ValueError(f"set '{set_name}' has no samples in this split (sets: {', '.join(sorted(groups))})")
        per_epoch = max(1, round(frac * samples_per_epoch))
        order, cum = _sequence(groups[set_name], seed, set_name, per_epoch * (epoch + 1))
        start = int(np.searchsorted(cum, per_epoch * epoch, side="right"))
        stop = int(np.searchsorted(cum, per_epoch * (epoch + 1), side="right"))
        plan += [groups[set_name][i] for i in order[start : max(stop, start + 1)]]
    rng = np.random.default_rng([seed, epoch, 1])
    return [plan[i] for i in rng.permutation(len(plan))]


def default_fractions(groups: dict[str, list[RowGroup]]) -> dict[str, float]:
    """Sets in proportion to their sizes (what uniform sampling of the whole split would give)."""
    sizes = {s: sum(g.rows for g in gs) for s, gs in groups.items()}
    total = sum(sizes.values())
    return {s: n / total for s, n in sizes.items()}


def replay_fractions(
    target: dict[str, float], source: dict[str, float], start: float, decay_per_epoch: float, floor: float, epoch: int
) -> dict[str, float]:
    """Transfer by replay (``000_*``): a share of source-set samples that decays linearly per epoch to a floor."""
    share = max(floor, start - decay_per_epoch * epoch)
    out = {s: f * (1 - share) for s, f in target.items()}
    for s, f in source.items():
        out[s] = out.get(s, 0.0) + f * share
    return out


def read_row_group(group: RowGroup, columns: list[str]):
    """One row group as an Arrow table (only ``columns``)."""
    return pq.ParquetFile(group.path).read_row_group(group.index, columns=columns)
