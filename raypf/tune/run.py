"""The driver of `raypf tune`: checks, parent MLflow run, Ray Tune over `raypf train` trials, best config.

Re-running the same command (same ``name``) restores the sweep from
``<output_dir>/<name>/tune``: finished trials stay finished, paused and
unfinished ones go on from their checkpoints, and no new MLflow runs appear.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import yaml

from raypf.train.config import TrainConfig
from raypf.tune.config import TuneConfig
from raypf.tune.space import base_config, check_sweep, param_space, plain, sweep_dir, trial_config

log = logging.getLogger(__name__)
BEST_CONFIG = "best_config.yaml"
TRIAL_CPU = 0.001  # Tune needs a non-zero request per trial


def concurrent_trials(cfg: TuneConfig, base: TrainConfig) -> int:
    """As many trials at once as the cluster holds with all their workers and data readers (at least one).

    A trial's readers are capped (``data.read_tasks``) for its train and its val dataset, which may read at once.
    """
    import ray

    res = ray.cluster_resources()
    s, d = base.scaling, base.data
    free = res.get("CPU", 0) - cfg.num_trials * TRIAL_CPU
    fits = [math.floor(free / (s.num_workers * s.cpus_per_worker + 2 * d.read_tasks * d.read_cpus))]
    if s.use_gpu:
        fits.append(math.floor(res.get("GPU", 0) / (s.num_workers * s.gpus_per_worker)))
    n = max(1, min(fits))
    return min(n, cfg.max_concurrent_trials) if cfg.max_concurrent_trials else n


def _scheduler(cfg: TuneConfig):
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, HyperBandScheduler

    s = cfg.scheduler
    if s.kind == "hyperband":
        return HyperBandScheduler(time_attr="epochs_done", max_t=s.max_t, reduction_factor=s.reduction_factor)
    if s.kind == "asha":
        return ASHAScheduler(
            time_attr="epochs_done", max_t=s.max_t, grace_period=s.grace_period, reduction_factor=s.reduction_factor
        )
    return FIFOScheduler()


def run_tune(cfg: TuneConfig, source: str = "config", address: str | None = None) -> dict:
    """Run (or resume) the sweep; returns its summary: best trial, best metric, per-trial outcomes, wall time."""
    import ray

    from raypf.ray_utils import init_ray
    from raypf.train.run import check_dataset, check_resources
    from raypf.tune import slots
    from raypf.tune.tracking import parent_run
    from raypf.tune.trial import trial_run_name

    base = base_config(cfg, source)
    check_sweep(cfg, base, source)
    base_cfg = TrainConfig.model_validate(base)
    check_dataset(base_cfg, f"{source}: base {cfg.base}")
    init_ray(address)
    check_resources(base_cfg, f"{source}: base {cfg.base}")
    out = sweep_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    parent = parent_run(cfg)
    n = concurrent_trials(cfg, base_cfg)
    semaphore = slots.create(cfg.name, n)  # held for the whole sweep: the actor lives as long as a handle does
    t0 = time.perf_counter()
    try:
        results = _tuner(cfg, base, parent, n).fit()
    finally:
        ray.kill(semaphore)
    trials = [_outcome(r, cfg) for r in results]
    scored = [t for t in trials if t["best_" + cfg.metric] is not None]
    if not scored:
        raise RuntimeError(f"sweep {cfg.name}: no trial reported '{cfg.metric}' (errors: {[t['error'] for t in trials]})")
    sign = 1 if cfg.mode == "max" else -1
    best = max(scored, key=lambda t: sign * t["best_" + cfg.metric])
    best_cfg = trial_config(base, best["config"], f"{cfg.name}-best")
    (out / BEST_CONFIG).write_text(
        f"# best trial {best['trial_id']} of sweep {cfg.name}: {cfg.metric} {best['best_' + cfg.metric]:.4f}\n"
        f"# train it: raypf train --config {out / BEST_CONFIG}\n"
        + yaml.safe_dump(best_cfg.model_dump(mode="json"), sort_keys=False)
    )
    summary = {
        "sweep": cfg.name, "parent_run_id": parent, "metric": cfg.metric, "mode": cfg.mode,
        "best_trial": best["trial_id"], "best_run_name": trial_run_name(cfg.name, best["trial_id"]),
        "best_value": best["best_" + cfg.metric], "best_config": str(out / BEST_CONFIG),
        "epochs_trained": _epochs_logged(cfg, trials), "failed": sum(t["error"] is not None for t in trials),
        "wall_seconds": round(time.perf_counter() - t0, 1), "trials": trials,
    }  # fmt: skip
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    _log_parent(cfg, parent, summary, out)
    log.info("sweep %s: best %s %.4f (trial %s) over %d trials, %d epochs in %.0f s; best config %s; "
             "compare: raypf runs --tracking-uri %s --sweep %s",
             cfg.name, cfg.metric, summary["best_value"], best["trial_id"], len(trials), summary["epochs_trained"],
             summary["wall_seconds"], out / BEST_CONFIG, cfg.tracking_uri(), cfg.name)  # fmt: skip
    return summary


def _tuner(cfg: TuneConfig, base: dict, parent: str, concurrent: int):
    """A new Tuner, or the sweep's saved one restored (same name again: resume)."""
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from raypf.tune.tracking import TrialRuns
    from raypf.tune.trial import run_trial

    trainable = tune.with_resources(
        tune.with_parameters(run_trial, sweep=cfg.name, base=base, parent_run_id=parent), {"CPU": TRIAL_CPU}
    )  # a token: the trial only drives its TorchTrainer, whose workers hold the resources; slots bound concurrency
    path = str(sweep_dir(cfg) / "tune")
    if tune.Tuner.can_restore(path):
        log.info("resuming sweep %s from %s", cfg.name, path)
        return tune.Tuner.restore(path, trainable, param_space=param_space(cfg), resume_unfinished=True, resume_errored=False)
    log.info("sweep %s: %d trial(s), %s scheduler, max %d epochs, %d at a time", cfg.name, cfg.num_trials,
             cfg.scheduler.kind, cfg.scheduler.max_t, concurrent)  # fmt: skip
    return tune.Tuner(
        trainable,
        param_space=param_space(cfg),
        tune_config=tune.TuneConfig(
            metric=cfg.metric, mode=cfg.mode, num_samples=cfg.num_trials, scheduler=_scheduler(cfg), reuse_actors=False,
            search_alg=BasicVariantGenerator(points_to_evaluate=cfg.points_to_evaluate or None, random_state=cfg.seed),
        ),
        run_config=tune.RunConfig(
            name="tune", storage_path=str(sweep_dir(cfg)), callbacks=[TrialRuns(cfg, base, parent)],
            failure_config=tune.FailureConfig(max_failures=0), verbose=1,
        ),
    )  # fmt: skip


def _outcome(result, cfg: TuneConfig) -> dict:
    """One trial's id, sampled values, epochs reported, best metric over its epochs and error, from Tune's result."""
    history = result.metrics_dataframe
    values = history[cfg.metric].dropna() if history is not None and cfg.metric in history else []
    best = (max(values) if cfg.mode == "max" else min(values)) if len(values) else None
    return {
        "trial_id": (result.metrics or {}).get("trial_id") or Path(result.path).name,
        "config": {k: plain(v) for k, v in result.config.items()},
        "epochs_reported": int((result.metrics or {}).get("epochs_done", 0)),
        "best_" + cfg.metric: best,
        "error": str(result.error)[:500] if result.error else None,
    }


def _epochs_logged(cfg: TuneConfig, trials: list[dict]) -> int:
    """Epochs the trials trained, from their MLflow runs (with the tail a stopped trial ran past its last report)."""
    from raypf.tracking import find_run, get_experiment
    from raypf.train.run import RUN_TAG
    from raypf.tune.trial import trial_run_name

    client, exp_id = get_experiment(cfg.tracking_uri(), cfg.tracking.experiment, cfg.output_dir)
    total = 0
    for t in trials:
        t["epochs_logged"] = 0
        run = find_run(client, exp_id, RUN_TAG, trial_run_name(cfg.name, t["trial_id"]))
        if run is not None:
            t["epochs_logged"] = len(client.get_metric_history(run.info.run_id, "loss"))
        total += t["epochs_logged"]
    return total


def _log_parent(cfg: TuneConfig, parent: str, summary: dict, out) -> None:
    from raypf.tracking import get_experiment

    client, _ = get_experiment(cfg.tracking_uri(), cfg.tracking.experiment, cfg.output_dir)
    client.log_metric(parent, "best_" + cfg.metric, float(summary["best_value"]))
    client.log_metric(parent, "epochs_trained", summary["epochs_trained"])
    client.log_metric(parent, "failed_trials", summary["failed"])
    client.set_tag(parent, "raypf.best_trial", summary["best_trial"])
    client.log_artifact(parent, str(out / BEST_CONFIG))
    client.log_artifact(parent, str(out / "summary.json"))
    client.set_terminated(parent, "FINISHED")
