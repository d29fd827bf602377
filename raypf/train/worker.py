"""What every Ray Train worker runs: build the model, resume, then per epoch train, score, checkpoint, report."""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from ray.data.collate_fn import ArrowBatchCollateFn

from raypf.data.batching import pack
from raypf.data.parquet_batches import read_metadata
from raypf.models.baselines import baseline_metrics
from raypf.models.losses import LossOptions
from raypf.train.checkpoints import METRICS, STATE, load_newest, save_best
from raypf.train.config import TrainConfig
from raypf.train.loop import (
    EarlyStopping,
    OptimOptions,
    evaluate,
    freeze,
    load_state,
    make_optimizer,
    merged_result,
    state_dict,
    train_epoch,
)

log = logging.getLogger(__name__)

#: Metric key of an epoch's end time (ms), the timestamp of its MLflow rows; not logged as a metric.
EPOCH_END = "epoch_end_ms"


def steps_per_epoch(cfg: TrainConfig, world: int) -> int:
    return max(1, cfg.data.samples_per_epoch // (cfg.data.batch_size * world))


def build(cfg: TrainConfig, dataset_dir: str) -> torch.nn.Module:
    """The configured model with its input normalisation; fine-tuning weights and freezing applied."""
    model = cfg.build_model(read_metadata(dataset_dir))
    if cfg.finetune.checkpoint:
        path = Path(cfg.finetune.checkpoint)
        state = torch.load(path / STATE if path.is_dir() else path, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
    if cfg.finetune.freeze:
        freeze(model, cfg.finetune.freeze)
    return model


def train_loop(config: dict) -> None:
    """``train_loop_per_worker`` of the TorchTrainer."""
    import mlflow
    import ray.train
    import ray.train.torch

    cfg = TrainConfig.model_validate(config["cfg"])
    dataset_dir, run_id = config["dataset_dir"], config["mlflow_run_id"]
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = ray.train.torch.get_device()
    amp = torch.bfloat16 if device.type == "cuda" and cfg.scaling.bf16 else None
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed + rank)

    model = build(cfg, dataset_dir)
    model = ray.train.torch.prepare_model(model)
    steps = steps_per_epoch(cfg, world)
    optim = OptimOptions(**cfg.optim.model_dump())
    opt, sched = make_optimizer(model, optim, steps, cfg.epochs)
    loss_options = LossOptions(**cfg.loss.model_dump())
    stopper = EarlyStopping(cfg.early_stopping.metric, cfg.early_stopping.mode, cfg.early_stopping.patience)
    start, history, resumes = 0, [], []
    state = load_newest(Path(config["checkpoints"]))
    if state is not None:
        load_state(state, model, opt, sched)
        start, history, resumes = state["epoch"] + 1, state["history"], state.get("resumes", []) + [state["epoch"] + 1]
        stopper = EarlyStopping(stopper.metric, stopper.mode, stopper.patience, state["best"])
        log.info("rank %d resumes at epoch %d", rank, start)
    if start >= cfg.epochs or (start and stopper.should_stop(start - 1)):
        return

    features, target = cfg.data.features, cfg.data.target
    train_shard = ray.train.get_dataset_shard("train")
    val_shard = ray.train.get_dataset_shard("val")
    stream = train_shard.iter_torch_batches(
        batch_size=cfg.data.batch_size, collate_fn=_Pack(features, target, cfg.record_samples), prefetch_batches=4,
        local_shuffle_buffer_size=cfg.data.shuffle_buffer or None, local_shuffle_seed=cfg.seed + rank,
    )  # fmt: skip
    recorded: list = []

    def packed():
        for batch, keys in stream:
            if keys is not None:
                recorded.append(keys)
            yield batch

    batches = packed()
    run_dir = cfg.run_dir()
    client = mlflow.MlflowClient(cfg.tracking_uri()) if rank == 0 else None
    if client is not None and history:
        backfill_metrics(client, run_id, history)
    for epoch in range(start, cfg.epochs):
        stats = train_epoch(model, opt, sched, loss_options, batches, steps, device, amp, cfg.optim.grad_clip)
        if cfg.record_samples:
            _write_keys(run_dir / "samples" / f"epoch{epoch:04d}-rank{rank}.json", recorded)
            recorded.clear()
        val_batches = (pack(t, features, target) for t in val_shard.iter_batches(batch_size=cfg.data.batch_size, batch_format="pyarrow"))
        val = merged_result(evaluate(model, val_batches, target, device, amp))
        metrics = _epoch_metrics(epoch, stats, val, world)
        is_best = stopper.update(epoch, metrics)
        metrics["best_" + stopper.metric] = stopper.best["value"]
        metrics["resumes"] = len(resumes)
        metrics["epochs_done"] = epoch + 1  # Tune schedulers' time unit
        metrics[EPOCH_END] = int(time.time() * 1000)  # the one timestamp every write of this epoch's metrics uses
        history.append(metrics)
        with tempfile.TemporaryDirectory() as tmp:
            ckpt = None
            if rank == 0:
                saved = state_dict(model, opt, sched, epoch, stopper.best, history)
                # what raypf evaluate needs to rebuild the model and link its run to this one
                saved.update(resumes=resumes, config=config["cfg"], mlflow_run_id=run_id, dataset_dir=dataset_dir)
                torch.save(saved, Path(tmp) / STATE)
                (Path(tmp) / METRICS).write_text(json.dumps(metrics, indent=1))
                if is_best:
                    save_best(run_dir, Path(tmp))
                ckpt = ray.train.Checkpoint.from_directory(tmp)
            ray.train.report(metrics, checkpoint=ckpt)
        if client is not None:
            log_epoch_metrics(client, run_id, metrics, epoch)
        if stopper.should_stop(epoch):
            log.info("early stopping after epoch %d: best %s %.4g at epoch %d", epoch, stopper.metric, stopper.best["value"], stopper.best["epoch"])
            break


class _Pack(ArrowBatchCollateFn):
    """Packs each Arrow batch in Ray Data's prefetch threads, off the training step's critical path."""

    def __init__(self, features, target: str, keys: bool) -> None:
        self.features, self.target, self.keys = features, target, keys

    def __call__(self, batch):
        keys = batch.select(["epoch", "file", "entry", "track_index"]) if self.keys else None
        return pack(batch, self.features, self.target), keys


def reported_metrics(cfg: TrainConfig) -> set[str]:
    """Names of the metrics every epoch reports for ``cfg`` (what a sweep may optimise)."""
    from raypf.models.metrics import CellMetrics

    val = CellMetrics(cfg.data.target)
    val.counts[:] = 1
    stats = {"loss": 0.0, "lr": 0.0, "samples": 1, "points": 1, "data_wait_s": 0.0, "step_s": 1.0}
    names = set(_epoch_metrics(0, stats, val.result(), 1))
    return names | {"best_" + cfg.early_stopping.metric, "resumes", "epochs_done"}


def _epoch_metrics(epoch: int, stats: dict, val: dict, world: int) -> dict:
    out = {
        "epoch": epoch,
        "loss": stats["loss"],
        "lr": stats["lr"],
        "samples_per_s": stats["samples"] * world / stats["step_s"],
        "points_per_s": stats["points"] * world / stats["step_s"],
        "data_wait_fraction": stats["data_wait_s"] / stats["step_s"],
    }
    smart = baseline_metrics(val["confusion"])["smart_random"]  # the same cells, so the model number stands beside it
    out["val_smart_random_f1"] = smart["f1"]
    out["val_smart_random_accuracy"] = smart["accuracy"]
    for key in ("accuracy", "precision", "recall", "f1", "energy_weighted_accuracy", "response_median", "response_spread", "mape", "macro_f1", "mse", "mae"):
        if key in val:
            out[f"val_{key}"] = float(val[key])
    return out


def _write_keys(path: Path, tables: list) -> None:
    import pyarrow as pa

    path.parent.mkdir(parents=True, exist_ok=True)
    t = pa.concat_tables(tables) if tables else None
    keys = [] if t is None else [f"{f}:{e}:{k}" for f, e, k in zip(t["file"].to_pylist(), t["entry"].to_pylist(), t["track_index"].to_pylist())]
    epochs = [] if t is None else sorted(set(t["epoch"].to_pylist()))
    path.write_text(json.dumps({"keys": keys, "planned_epochs": epochs}))


def log_epoch_metrics(client, run_id: str, metrics: dict, epoch: int) -> None:
    """Log one epoch's metrics at step ``epoch``, stamped with the epoch's end time.

    A trial that Tune stops right after a report is backfilled from its checkpoint by the sweep's
    callback while the worker may still log the same epoch itself. With the same timestamp the two
    writes are identical rows, which MLflow's store keeps once, so the epoch is not logged twice.
    """
    from mlflow.entities import Metric

    stamp = int(metrics.get(EPOCH_END) or time.time() * 1000)  # checkpoints written before the stamp existed lack it
    skip = ("epoch", "epochs_done", EPOCH_END)
    client.log_batch(run_id, metrics=[Metric(k, float(v), stamp, epoch) for k, v in metrics.items() if k not in skip])


def backfill_metrics(client, run_id: str, history: list[dict]) -> None:
    """Log epochs that are in the checkpoint but not in MLflow (the run was stopped between the two)."""
    logged = {m.step for m in client.get_metric_history(run_id, "loss")}
    for metrics in history:
        if metrics["epoch"] not in logged:
            log_epoch_metrics(client, run_id, metrics, metrics["epoch"])
