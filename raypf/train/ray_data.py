"""The Ray Datasets a training run streams: every epoch's planned row groups, and the fixed val subset.

The driver plans all remaining epochs (``epochs.epoch_plan``) and hands Ray
Train one dataset of (epoch, row group) items; read tasks on the cluster decode
the row groups and Ray Train splits the rows between the workers
(``streaming_split``, each row to one worker). A worker runs a fixed number of
steps per epoch on its stream, so all workers step together (DDP) whatever
the row groups' sizes; one extra planned epoch at the end keeps any worker
from running dry.
"""

from __future__ import annotations

import logging

import pyarrow as pa

from raypf.config import ConfigError
from raypf.data.batching import columns_for
from raypf.train.config import TrainConfig
from raypf.train.epochs import RowGroup, default_fractions, epoch_plan, read_row_group, replay_fractions, row_groups

log = logging.getLogger(__name__)

KEY_COLUMNS = ["file", "entry", "track_index"]


def read_columns(cfg: TrainConfig) -> list[str]:
    cols = columns_for(cfg.data.features)
    return cols + KEY_COLUMNS if cfg.record_samples else cols


def _read_items(batch: pa.Table, columns: list[str]) -> pa.Table:
    tables = []
    for path, index, epoch in zip(batch["path"].to_pylist(), batch["index"].to_pylist(), batch["epoch"].to_pylist()):
        t = read_row_group(RowGroup(path, index, 0, ""), columns)
        if "file" in t.column_names:
            t = t.set_column(t.column_names.index("file"), "file", t["file"].cast(pa.string()))
        tables.append(t.append_column("epoch", pa.array([epoch] * t.num_rows, pa.int32())))
    return pa.concat_tables(tables)


def epoch_fractions(cfg: TrainConfig, groups: dict[str, list[RowGroup]], epoch: int) -> dict[str, float]:
    base = dict(cfg.data.mix) if cfg.data.mix else default_fractions(groups)
    replay = cfg.finetune.replay
    if replay is None:
        return base
    total = sum(replay.source.values())
    source = {s: f / total for s, f in replay.source.items()}
    return replay_fractions(base, source, replay.start, replay.decay_per_epoch, replay.floor, epoch)


def train_items(cfg: TrainConfig, groups: dict[str, list[RowGroup]], start_epoch: int) -> list[dict]:
    items = []
    for epoch in range(start_epoch, cfg.epochs + 1):  # + 1: margin, see the module docstring
        plan = epoch_plan(groups, epoch_fractions(cfg, groups, epoch), cfg.data.samples_per_epoch, epoch, cfg.seed)
        items += [{"epoch": epoch, "path": g.path, "index": g.index} for g in plan]
    return items


def val_items(cfg: TrainConfig, groups: dict[str, list[RowGroup]]) -> list[dict]:
    """A fixed subset of the val split: the sets of ``data.mix`` (all sets without one), in proportion to their sizes."""
    everything = default_fractions(groups)
    fractions = {s: f for s, f in everything.items() if not cfg.data.mix or s in cfg.data.mix} or everything
    total = sum(fractions.values())
    plan = epoch_plan(groups, {s: f / total for s, f in fractions.items()}, cfg.data.val_samples, 0, cfg.seed + 1)
    return [{"epoch": -1, "path": g.path, "index": g.index} for g in plan]


def build_datasets(cfg: TrainConfig, dataset_dir: str, train_groups: dict[str, list[RowGroup]], start_epoch: int) -> dict:
    """The "train" and "val" Ray Datasets; ``train_groups`` is the train split's row groups (``epochs.row_groups``)."""
    import ray

    columns = read_columns(cfg)
    val_groups = row_groups(dataset_dir, "val") or row_groups(dataset_dir, "test")
    if not train_groups or not val_groups:
        raise ConfigError(f"key 'data.dataset': {dataset_dir} needs samples in the train and the val (or test) split")
    items = {"train": train_items(cfg, train_groups, start_epoch), "val": val_items(cfg, val_groups)}
    out = {}
    for name, its in items.items():
        out[name] = ray.data.from_items(its, override_num_blocks=min(len(its), 2048)).map_batches(
            _read_items, fn_kwargs={"columns": columns}, batch_size=1, batch_format="pyarrow", num_cpus=cfg.data.read_cpus
        )
    log.info("train: %d row groups planned for epochs %d-%d; val: %d row groups", len(items["train"]), start_epoch, cfg.epochs - 1, len(items["val"]))
    return out
