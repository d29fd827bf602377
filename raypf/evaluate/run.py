"""The driver of `raypf evaluate`: inference, event-level baselines, scores, plots, report, MLflow.

Everything is written into a staging directory and swapped in for
``<output_dir>/<name>`` at the end, so a failed evaluation leaves the previous
one (or nothing), never a mixture.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import uuid
from pathlib import Path

from raypf.config import ConfigError
from raypf.data.parquet_out import swap_dir
from raypf.evaluate import checkpoint as checkpoints
from raypf.evaluate.config import EvaluateConfig
from raypf.evaluate.event_baselines import mltree_files, run_event_baselines
from raypf.evaluate.figures import make_plots
from raypf.evaluate.inference import run_inference
from raypf.evaluate.report import write_report
from raypf.evaluate.scores import markdown_table, score_parts, table_rows
from raypf.evaluate.template import fit_on_train_split
from raypf.evaluate.tracking import log_evaluation

log = logging.getLogger(__name__)
PREDICTIONS = "predictions"


def dataset_and_sets(cfg: EvaluateConfig, ckpt: checkpoints.Checkpoint, source: str) -> tuple[Path, dict, list[str]]:
    """The samples dataset, its metadata and the sets of the split to score, checked."""
    from raypf.data.parquet_batches import read_metadata

    key = "data" if cfg.data else "checkpoint"
    raw = cfg.data or ckpt.dataset_dir
    if raw is None:
        raise ConfigError(f"{source}: key 'data': the checkpoint does not name its dataset; give data")
    path = Path(raw).expanduser().resolve()
    try:
        metadata = read_metadata(path)
    except FileNotFoundError as err:
        raise ConfigError(f"{source}: key '{key}': {err}") from None
    split_dir = path / f"split={cfg.split}"
    present = sorted(p.name.removeprefix("set=") for p in split_dir.glob("set=*") if any(p.glob("*.parquet")))
    if not present:
        raise ConfigError(f"{source}: key 'split': {path} has no samples in split '{cfg.split}'")
    sets = cfg.sets or present
    unknown = sorted(set(sets) - set(present))
    if unknown:
        raise ConfigError(f"{source}: key 'sets': {unknown} not in split '{cfg.split}' of {path} (sets: {present})")
    return path, metadata, sets


def run_evaluate(cfg: EvaluateConfig, source: str = "config", address: str | None = None) -> dict:
    """Score ``cfg.checkpoint`` on ``cfg.split``; returns the metrics, the table and the MLflow run id."""
    import ray

    from raypf.ray_utils import init_ray

    t0 = time.perf_counter()
    ckpt = checkpoints.load(cfg.checkpoint, source)
    dataset, metadata, sets = dataset_and_sets(cfg, ckpt, source)
    target = ckpt.config.data.target
    files = None
    if cfg.baselines.event_level:
        files = mltree_files(metadata, cfg.baselines.mltree, source)
    init_ray(address)
    use_gpu = cfg.inference.use_gpu if cfg.inference.use_gpu != "auto" else ray.cluster_resources().get("GPU", 0) > 0
    if use_gpu and ray.cluster_resources().get("GPU", 0) < 1:
        raise ConfigError(f"{source}: key 'inference.use_gpu': the Ray cluster has no GPU")

    final = cfg.eval_dir()
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.parent / f".staging-{cfg.name}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        template, proportions = fit_on_train_split(dataset, target, cfg.baselines.particle_flow.template)
        log.info(
            "scoring %s (epoch %d) on %s split '%s', sets %s",
            ckpt.path,
            ckpt.epoch,
            dataset,
            cfg.split,
            ", ".join(sets),
        )
        raw = staging / ".model"
        inf = cfg.inference
        run_inference(
            str(ckpt.path), ckpt.config, metadata, [str(dataset / f"split={cfg.split}" / f"set={s}") for s in sets], raw,
            inf.actors, inf.cpus_per_actor, 1.0 if use_gpu else 0.0, inf.batch_size,
        )  # fmt: skip
        options = cfg.baselines.particle_flow.model_dump(exclude={"template"})
        parts = run_event_baselines(raw, staging / PREDICTIONS, files, metadata, template, options, source)
        shutil.rmtree(raw)
        k = 3 if target == "three_class" else 2
        board, collected = score_parts(parts, k, proportions, cfg.plots.max_curve_cells, cfg.seed)
        result = board.result()
        model_name = _model_label(ckpt)
        rows = table_rows(result, model_name)
        table = markdown_table(rows)
        plots = make_plots(cfg, staging / "plots", dataset, staging / PREDICTIONS, collected, board, result, model_name)
        summary = {
            "name": cfg.name, "checkpoint": str(ckpt.path), "epoch": ckpt.epoch, "train_run_id": ckpt.train_run_id,
            "dataset": str(dataset), "split": cfg.split, "sets": sets, "target": target,
            "train_class_proportions": proportions.tolist(), "metrics": result, "table": rows,
            "wall_seconds": round(time.perf_counter() - t0, 1),
        }  # fmt: skip
        (staging / "metrics.json").write_text(json.dumps(summary, indent=1, default=float))
        (staging / "template.json").write_text(json.dumps(template.to_dict(), indent=1))
        write_report(staging / "report.md", summary, table, plots, cfg)
        swap_dir(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    summary["run_id"] = log_evaluation(cfg, final, summary, ckpt)
    summary["report"] = str(final / "report.md")
    summary["table_markdown"] = table
    log.info("evaluation %s: %s; report %s (MLflow run %s)", cfg.name, final, final / "report.md", summary["run_id"])
    return summary


def _model_label(ckpt: checkpoints.Checkpoint) -> str:
    return {"pointnet": "PointNet"}.get(ckpt.config.model.name, ckpt.config.model.name)
