"""One trial of a sweep: a Tune function trainable that builds and fits a `raypf train` run.

Hyperband pauses trials by stopping their actor. Ray Tune then holds no
checkpoint of its own (Train's report callback passes metrics only), so a
resumed trial starts this function again; `run_train` finds the trial's newest
Train checkpoint under its run name and goes on from the next epoch, and its
MLflow child run goes on with it, so no epoch is trained or logged twice.
Schedulers count time in ``epochs_done``, which survives the restart (Tune's
own ``training_iteration`` does not).
"""

from __future__ import annotations

import logging
from typing import Any

from raypf.tune.space import trial_config

log = logging.getLogger(__name__)
STATUS_TAG = "raypf.trial_status"


def trial_run_name(sweep: str, trial_id: str) -> str:
    return f"{sweep}-{trial_id}"


def run_trial(sampled: dict[str, Any], sweep: str, base: dict, parent_run_id: str) -> None:
    """Train the base config with the ``sampled`` values, reporting every epoch to Tune."""
    import ray.data
    import ray.tune
    from ray.tune.integration.ray_train import TuneReportCallback

    from raypf.train.run import run_train
    from raypf.tune import slots

    trial_id = ray.tune.get_context().get_trial_id()
    cfg = trial_config(base, sampled, trial_run_name(sweep, trial_id))
    tags = {
        "mlflow.parentRunId": parent_run_id,
        "raypf.sweep": sweep,
        "raypf.trial_id": trial_id,
        "raypf.stage": "tune-trial",
    }
    if _closed(cfg):
        log.info("trial %s ended in an earlier run of the sweep; not training it again", trial_id)
        return
    ray.data.DataContext.get_current().enable_progress_bars = False  # many trials at once: Tune's table says enough
    slots.acquire(sweep, trial_id)
    try:
        run_train(cfg, source=f"sweep {sweep}, trial {trial_id}", callbacks=[TuneReportCallback()], mlflow_tags=tags)
    finally:
        slots.release(sweep, trial_id)


def _closed(cfg) -> bool:
    """Whether the trial's MLflow run already has its final status (Tune's saved state can lag behind it)."""
    from raypf.tracking import find_run, get_experiment
    from raypf.train.run import RUN_TAG

    client, exp_id = get_experiment(cfg.tracking_uri(), cfg.tracking.experiment, cfg.output_dir)
    run = find_run(client, exp_id, RUN_TAG, cfg.run_name)
    return run is not None and STATUS_TAG in run.data.tags
