"""Batch inference: every cell of a split with the model's prediction beside its truth.

``predict_cells`` turns a table of sample rows into one row per cell (keys,
truth, score, predicted class and share); ``run_inference`` maps it over the
split with a pool of Ray Data actors, each holding the model once, on a GPU
where the cluster has them, and writes Parquet partitioned by set and file,
the unit the event-level baselines work on.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from raypf.data.batching import FOCAL_CLASS, columns_for, list_column, pack
from raypf.train.config import TrainConfig

log = logging.getLogger(__name__)

#: Per-sample columns copied onto each of its cells.
KEY_COLUMNS = ("set", "file", "run", "event", "entry", "track_index", "track_pt", "track_eta", "n_other_tracks")

#: The cell predictions' schema.
SCHEMA = pa.schema(
    [
        ("set", pa.string()), ("file", pa.string()), ("run", pa.int32()), ("event", pa.int64()), ("entry", pa.int64()),
        ("track_index", pa.int16()), ("track_pt", pa.float32()), ("track_eta", pa.float32()), ("n_tracks", pa.int16()),
        ("point", pa.int32()), ("cell_id", pa.uint64()), ("layer", pa.int8()), ("energy", pa.float32()),
        ("truth_focal", pa.float32()), ("truth_total", pa.float32()), ("true_class", pa.int8()),
        ("pred_class", pa.int8()), ("score", pa.float32()), ("pred_fraction", pa.float32()),
    ]
)  # fmt: skip


def input_columns(cfg: TrainConfig) -> list[str]:
    """Sample columns inference reads: the model's inputs, truth, keys, cell IDs and layers."""
    need = {*columns_for(cfg.data.features), "cell_id", "layer", *KEY_COLUMNS}
    return sorted(need - {"set"})  # set is the partition directory


def predict_cells(
    model: torch.nn.Module, table: pa.Table, cfg: TrainConfig, device: torch.device | str = "cpu"
) -> pa.Table:
    """One row per cell of ``table``'s samples, in sample order and point order within a sample.

    ``score`` is the model's focal probability (the predicted share for the ``fraction`` target);
    ``pred_fraction`` the share of the cell's energy it gives the focal track (0 or 1 for classifiers).
    """
    target = cfg.data.target
    batch = pack(table, cfg.data.features, target)
    with torch.no_grad():
        out = model(batch.to(device))
    if target == "binary":
        score = torch.sigmoid(out.pred.float())
        pred_class = (out.pred > 0).long()
    elif target == "three_class":
        score = torch.softmax(out.pred.float(), dim=-1)[:, FOCAL_CLASS]
        pred_class = out.pred.argmax(dim=-1)
    else:
        score = out.fraction.float()
        pred_class = (out.fraction >= 0.5).long()
    fraction = score if target == "fraction" else (pred_class == FOCAL_CLASS).float()
    cell = batch.cell.numpy()
    sample = batch.sample.numpy()[cell]
    true = batch.target.numpy()[cell]
    true_class = (true >= 0.5).astype(np.int8) if target == "fraction" else true.astype(np.int8)
    n_other = table.column("n_other_tracks").to_numpy()
    cols = {
        "set": _repeat_str(table, "set", sample),
        "file": _repeat_str(table, "file", sample),
        **{
            k: table.column(k).to_numpy()[sample]
            for k in ("run", "event", "entry", "track_index", "track_pt", "track_eta")
        },
        "n_tracks": (n_other + 1).astype(np.int16)[sample],
        "point": batch.position.numpy()[cell].astype(np.int32),
        "cell_id": list_column(table, "cell_id")[0][cell],
        "layer": list_column(table, "layer")[0][cell],
        "energy": batch.energy.numpy()[cell],
        "truth_focal": batch.truth_focal.numpy()[cell],
        "truth_total": batch.truth_total.numpy()[cell],
        "true_class": true_class,
        "pred_class": pred_class.cpu().numpy()[cell].astype(np.int8),
        "score": score.cpu().numpy()[cell].astype(np.float32),
        "pred_fraction": fraction.cpu().numpy()[cell].astype(np.float32),
    }
    return pa.Table.from_pydict({f.name: pa.array(cols[f.name], type=f.type) for f in SCHEMA}, schema=SCHEMA)


def _repeat_str(table: pa.Table, name: str, index: np.ndarray) -> pa.Array:
    values = table.column(name).combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.cast(pa.string())
    return values.take(pa.array(index))


class Predictor:
    """A Ray Data actor: loads the checkpoint once, then scores batches of samples."""

    def __init__(self, checkpoint: str, metadata: dict, use_gpu: bool) -> None:
        from raypf.evaluate import checkpoint as ckpt_mod

        ckpt = ckpt_mod.load(checkpoint)
        self.cfg = ckpt.config
        self.device = torch.device("cuda" if use_gpu and torch.cuda.is_available() else "cpu")
        self.model = ckpt_mod.build(ckpt, metadata).to(self.device)

    def __call__(self, batch: pa.Table) -> pa.Table:
        return predict_cells(self.model, batch, self.cfg, self.device)


def run_inference(
    checkpoint: str,
    cfg: TrainConfig,
    metadata: dict,
    paths: list[str],
    out_dir: Path,
    actors: int,
    cpus: float,
    gpus: float,
    batch_size: int,
) -> None:
    """Score the samples under ``paths`` (set directories of one split) into ``out_dir/set=*/file=*/``."""
    import ray.data
    from ray.data.datasource import Partitioning

    ds = ray.data.read_parquet(paths, partitioning=Partitioning("hive"), num_cpus=0.5)
    ds = ds.select_columns([*input_columns(cfg), "set"])  # pushed down into the Parquet reads
    ds = ds.map_batches(
        Predictor, fn_constructor_kwargs={"checkpoint": checkpoint, "metadata": metadata, "use_gpu": gpus > 0},
        batch_size=batch_size, batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=cpus, num_gpus=gpus,
    )  # fmt: skip
    ds.write_parquet(str(out_dir), partition_cols=["set", "file"])
