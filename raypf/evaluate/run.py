"""The driver of `raypf evaluate`: inference, event-level baselines, scores, plots, report, MLflow.

Everything is written into a staging directory and swapped in for
``<output_dir>/<name>`` at the end, so a failed evaluation leaves the previous
one (or nothing), never a mixture.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from raypf.config import ConfigError
from raypf.evaluate import checkpoint as checkpoints
from raypf.evaluate.config import EvaluateConfig
from raypf.evaluate.figures import make_plots
from raypf.evaluate.scores import Scoreboard, markdown_table, table_rows
from raypf.evaluate.template import EpTemplate, fit_template, reference_energy

log = logging.getLogger(__name__)
PREDICTIONS = "predictions"
TRAIN_COLUMNS = [
    "track_p",
    "track_eta",
    "point_type",
    "energy",
    *("truth_focal", "truth_other_tracked", "truth_untracked", "truth_total"),
]


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


def fit_from_train(cfg: EvaluateConfig, dataset: Path, target: str) -> tuple[EpTemplate, np.ndarray]:
    """The E/p template and the class proportions of the training split (what baselines may know)."""
    from raypf.data.batching import CELL, labels, list_column

    t = cfg.baselines.particle_flow.template
    ds = pads.dataset(str(dataset / "split=train"), format="parquet", partitioning="hive")
    p, eta, e_ref, class_counts, n = [], [], [], np.zeros(3), 0
    for batch in ds.to_batches(columns=TRAIN_COLUMNS, batch_size=4096):
        table = pa.Table.from_batches([batch])
        p.append(table.column("track_p").to_numpy())
        eta.append(table.column("track_eta").to_numpy())
        e_ref.append(reference_energy(table))
        ptype, _ = list_column(table, "point_type")
        truth = [list_column(table, c)[0] for c in TRAIN_COLUMNS[4:]]
        cls = labels("three_class" if target == "three_class" else "binary", ptype, *truth)
        class_counts += np.bincount(cls[ptype == CELL], minlength=3)[:3]
        n += table.num_rows
        if n >= t.max_samples:
            break
    if n == 0:
        raise ConfigError(
            f"{dataset}: the train split is empty; the baselines need it (E/p template, class proportions)"
        )
    template = fit_template(
        np.concatenate(p), np.concatenate(eta), np.concatenate(e_ref), t.p_edges, t.eta_edges, t.min_count
    )
    k = 3 if target == "three_class" else 2
    return template, class_counts[:k] / class_counts[:k].sum()


def _score_part(
    set_name: str, file: str, part: str, out: str, mltree: str | None, shared, template: dict, options: dict
) -> str:
    """One MLTree file's cells: sorted by sample and point, event-level baselines added, written to ``out``.

    The partitioned write kept ``set`` and ``file`` in the directory names only; they go back in as columns.
    """
    from raypf.evaluate.event_baselines import add_event_baselines
    from raypf.evaluate.particle_flow import PFOptions

    cells = pq.read_table(part, partitioning=None)
    for i, (name, value) in enumerate((("set", set_name), ("file", file))):
        if name in cells.column_names:
            cells = cells.drop_columns(name)
        cells = cells.add_column(i, name, pa.DictionaryArray.from_arrays(np.zeros(cells.num_rows, np.int32), [value]))
    cells = cells.sort_by([("entry", "ascending"), ("track_index", "ascending"), ("point", "ascending")])
    if mltree is not None:
        table, deta, dphi = shared
        cells = add_event_baselines(
            cells, mltree, table, deta, dphi, EpTemplate.from_dict(template), PFOptions(**options)
        )
    tmp = f"{out}.{uuid.uuid4().hex[:8]}.tmp"
    pq.write_table(cells, tmp)
    os.replace(tmp, out)
    return out


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
        from raypf.evaluate.event_baselines import mltree_files

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
        template, proportions = fit_from_train(cfg, dataset, target)
        log.info(
            "scoring %s (epoch %d) on %s split '%s', sets %s",
            ckpt.path,
            ckpt.epoch,
            dataset,
            cfg.split,
            ", ".join(sets),
        )
        from raypf.evaluate.inference import run_inference

        raw = staging / ".model"
        inf = cfg.inference
        run_inference(
            str(ckpt.path), ckpt.config, metadata, [str(dataset / f"split={cfg.split}" / f"set={s}") for s in sets], raw,
            inf.actors, inf.cpus_per_actor, 1.0 if use_gpu else 0.0, inf.batch_size,
        )  # fmt: skip
        parts = _baselines(cfg, raw, staging / PREDICTIONS, files, metadata, template, source)
        shutil.rmtree(raw)
        board, collected = _score(parts, ckpt, proportions, cfg)
        result = board.result()
        model_name = _model_label(ckpt)
        rows = table_rows(result, model_name)
        table = markdown_table(rows)
        plots = make_plots(cfg, staging / "plots", dataset, staging / PREDICTIONS, collected, board, model_name)
        summary = {
            "name": cfg.name, "checkpoint": str(ckpt.path), "epoch": ckpt.epoch, "train_run_id": ckpt.train_run_id,
            "dataset": str(dataset), "split": cfg.split, "sets": sets, "target": target,
            "train_class_proportions": proportions.tolist(), "metrics": result, "table": rows,
            "wall_seconds": round(time.perf_counter() - t0, 1),
        }  # fmt: skip
        (staging / "metrics.json").write_text(json.dumps(summary, indent=1, default=float))
        (staging / "template.json").write_text(json.dumps(template.to_dict(), indent=1))
        from raypf.evaluate.report import write_report

        write_report(staging / "report.md", summary, table, plots, cfg)
        _publish(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    summary["run_id"] = _log_mlflow(cfg, final, summary, ckpt)
    summary["report"] = str(final / "report.md")
    summary["table_markdown"] = table
    log.info("evaluation %s: %s; report %s (MLflow run %s)", cfg.name, final, final / "report.md", summary["run_id"])
    return summary


def _model_label(ckpt: checkpoints.Checkpoint) -> str:
    return {"pointnet": "PointNet"}.get(ckpt.config.model.name, ckpt.config.model.name)


def _baselines(
    cfg, raw: Path, out: Path, files, metadata: dict, template: EpTemplate, source: str
) -> list[tuple[str, Path]]:
    """Per MLTree file, a Ray task adds the event-level baselines to its cells; returns (set, part) pairs."""
    import ray

    jobs = []
    for set_dir in sorted(raw.glob("set=*")):
        set_name = set_dir.name.removeprefix("set=")
        for file_dir in sorted(set_dir.glob("file=*")):
            name = file_dir.name.removeprefix("file=")
            parts = sorted(file_dir.glob("*.parquet"))
            if len(parts) > 1:
                pq.write_table(pa.concat_tables([pq.read_table(p) for p in parts]), file_dir / "all.parquet")
                parts = [file_dir / "all.parquet"]
            mltree = None
            if files is not None:
                mltree = files.get((set_name, name))
                if mltree is None or not Path(mltree).exists() and "://" not in mltree:
                    raise ConfigError(
                        f"{source}: key 'baselines.mltree.{set_name}': MLTree file {mltree or name} of set {set_name} not found "
                        "(give its location, or baselines.event_level: false)"
                    )
            (out / set_name).mkdir(parents=True, exist_ok=True)
            jobs.append((set_name, name, str(parts[0]), str(out / set_name / f"{Path(name).stem}.parquet"), mltree))
    shared = None
    if files is not None:
        from raypf.data.cell_table import CellTable
        from raypf.data.mltree import read_cell_geometry

        geo = read_cell_geometry(metadata["geometry_file"])
        shared = ray.put((CellTable.build(geo, 0.2), geo.deta, geo.dphi))  # once, shared zero-copy by every task
    options = cfg.baselines.particle_flow.model_dump(exclude={"template"})
    task = ray.remote(num_cpus=1)(_score_part)
    refs = [task.remote(*job, shared, template.to_dict(), options) for job in jobs]
    done = ray.get(refs)
    return [(job[0], Path(p)) for job, p in zip(jobs, done)]


def _score(parts, ckpt, proportions: np.ndarray, cfg: EvaluateConfig):
    """The scoreboard, and what the plots need: per-sample energies and a random subsample of cells."""
    from raypf.evaluate.scores import sample_sums, shares

    k = 3 if ckpt.config.data.target == "three_class" else 2
    board = Scoreboard(k, proportions)
    total = sum(pq.ParquetFile(p).metadata.num_rows for _, p in parts)
    rate = min(1.0, cfg.plots.max_curve_cells / max(total, 1))
    rng = np.random.default_rng(cfg.seed)
    samples, cells = [], []
    for set_name, part in parts:
        t = pq.read_table(part)
        board.add(set_name, t)
        energy = t.column("energy").to_numpy().astype(np.float64)
        by_method = shares(t)
        starts, sums = sample_sums(t, {"truth": t.column("truth_focal").to_numpy().astype(np.float64),
                                       **{m: energy * s for m, s in by_method.items()}})  # fmt: skip
        samples.append({"set": np.full(len(starts), set_name), "file": np.full(len(starts), part.stem),
                        **{c: t.column(c).to_numpy()[starts] for c in ("entry", "track_index", "track_pt", "track_eta", "n_tracks")},
                        **{f"energy_{m}": v for m, v in sums.items()}})  # fmt: skip
        keep = rng.random(t.num_rows) < rate
        cells.append({"true": t.column("true_class").to_numpy()[keep] == 1, "score": t.column("score").to_numpy()[keep],
                      "n_tracks": t.column("n_tracks").to_numpy()[keep],
                      **{f"pred_{m}": s[keep] >= 0.5 for m, s in by_method.items()}})  # fmt: skip
    return board, {"samples": _merge(samples), "cells": _merge(cells)}


def _merge(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def _publish(staging: Path, final: Path) -> None:
    old = None
    if final.exists():
        old = final.with_name(f".old-{final.name}-{uuid.uuid4().hex[:8]}")
        os.replace(final, old)
    os.replace(staging, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _log_mlflow(cfg: EvaluateConfig, final: Path, summary: dict, ckpt: checkpoints.Checkpoint) -> str:
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
            for key in (
                "f1",
                "precision",
                "recall",
                "accuracy",
                "energy_weighted_accuracy",
                "response_median",
                "response_spread",
            ):
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
