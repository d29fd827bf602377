"""The evaluation's MLflow run: config, every metric of the table, report and plots, linked to its training run."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from raypf.evaluate.checkpoint import Checkpoint
from raypf.evaluate.config import EvaluateConfig
from raypf.evaluate.scores import COLUMNS

log = logging.getLogger(__name__)


def log_evaluation(cfg: EvaluateConfig, final: Path, summary: dict, ckpt: Checkpoint) -> str:
    """An MLflow run with the config, every metric of the table, the report and the plots, linked to the training run."""
    from mlflow.entities import Metric

    from raypf.tracking import flatten, get_experiment, log_params

    client, exp_id = get_experiment(cfg.tracking_uri(), cfg.tracking.experiment, cfg.output_dir)
    tags = {"raypf.stage": "evaluate", "raypf.evaluation": cfg.name, "raypf.checkpoint": str(ckpt.path)}
    if ckpt.train_run_id:
        tags["raypf.train_run_id"] = ckpt.train_run_id
        tags["mlflow.note.content"] = (
            f"Evaluation of training run {ckpt.train_run_id} (checkpoint epoch {ckpt.epoch}) on split {cfg.split}."
        )
    run = client.create_run(exp_id, run_name=cfg.name, tags=tags)
    run_id = run.info.run_id
    log_params(client, run_id, {**flatten(cfg.model_dump(mode="json")), "checkpoint_epoch": ckpt.epoch})
    now = int(time.time() * 1000)
    metrics = []
    for group, methods in summary["metrics"].items():
        for method, m in methods.items():
            for key in COLUMNS:
                if m.get(key) is not None:
                    metrics.append(Metric(f"{_metric_name(group)}.{method}.{key}", float(m[key]), now, 0))
    for i in range(0, len(metrics), 500):
        client.log_batch(run_id, metrics=metrics[i : i + 500])
    for name in ("report.md", "metrics.json", "template.json"):
        client.log_artifact(run_id, str(final / name))
    client.log_artifacts(run_id, str(final / "plots"), "plots")
    client.set_terminated(run_id, "FINISHED")
    if ckpt.train_run_id:
        try:
            client.set_tag(ckpt.train_run_id, f"raypf.evaluation.{cfg.name}", run_id)
        except Exception as err:  # noqa: BLE001 - the training run may live in another store
            log.warning("could not tag training run %s: %s", ckpt.train_run_id, err)
    return run_id


def _metric_name(group: str) -> str:
    """MLflow metric names allow letters, digits, _ - . / and spaces."""
    return group.replace("+", "_")
