"""The sweep in MLflow: a parent run, and each trial's child run closed with how the trial ended.

Trials create their own child runs (through `raypf train`). A trial that the
scheduler stops, or whose process dies, cannot close its run, so the driver
does it here from Tune's trial events: ``completed`` (trained all its epochs or
stopped by its own early stopping), ``stopped early`` (by the scheduler) or
``failed`` (with the error).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ray.tune import Callback

from raypf.tracking import find_run, flatten, get_experiment, log_params
from raypf.train.checkpoints import load_newest
from raypf.train.run import RUN_TAG
from raypf.train.worker import backfill_metrics
from raypf.tune.config import TuneConfig
from raypf.tune.space import sweep_dir, trial_config
from raypf.tune.trial import STATUS_TAG, trial_run_name

log = logging.getLogger(__name__)
SWEEP_TAG = "raypf.sweep_name"


def parent_run(cfg: TuneConfig) -> str:
    """The sweep's parent run: the existing one (a resumed sweep) or a new one with the sweep config."""
    client, exp_id = get_experiment(cfg.tracking_uri(), cfg.tracking.experiment, cfg.output_dir)
    found = find_run(client, exp_id, SWEEP_TAG, cfg.name)
    if found is not None:
        client.update_run(found.info.run_id, status="RUNNING")
        return found.info.run_id
    run = client.create_run(exp_id, run_name=cfg.name, tags={SWEEP_TAG: cfg.name, "raypf.stage": "tune"})
    params = {"metric": cfg.metric, "mode": cfg.mode, "num_trials": cfg.num_trials, "base": cfg.base,
              **{f"scheduler.{k}": v for k, v in cfg.scheduler.model_dump().items()},
              **{f"space.{k}": v.model_dump(exclude_none=True) for k, v in cfg.search_space.items()}}  # fmt: skip
    log_params(client, run.info.run_id, params)
    client.log_dict(run.info.run_id, cfg.model_dump(mode="json"), "tune_config.yaml")
    return run.info.run_id


class TrialRuns(Callback):
    """Closes each trial's MLflow child run when Tune says the trial is over."""

    def __init__(self, cfg: TuneConfig, base: dict, parent_run_id: str) -> None:
        self.cfg, self.base, self.parent = cfg, base, parent_run_id

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info) -> None:
        epochs = int((trial.last_result or {}).get("epochs_done", 0))
        summary = sweep_dir(self.cfg) / trial_run_name(self.cfg.name, trial.trial_id) / "summary.json"
        status = "completed" if epochs >= self.cfg.scheduler.max_t or summary.exists() else "stopped early"
        self._close(trial, status, "FINISHED")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info) -> None:
        local = Path(trial.error_file) if trial.error_file else None  # written just now; storage may lag
        error = local.read_text() if local and local.exists() else trial.get_error() or "unknown error"
        self._close(trial, "failed", "FAILED", str(error))

    def _close(self, trial: Any, status: str, mlflow_status: str, error: str | None = None) -> None:
        try:
            client, exp_id = get_experiment(self.cfg.tracking_uri(), self.cfg.tracking.experiment, self.cfg.output_dir)
            name = trial_run_name(self.cfg.name, trial.trial_id)
            run = find_run(client, exp_id, RUN_TAG, name)
            if run is None:  # failed before training started: still one child run per trial
                run = client.create_run(exp_id, run_name=name, tags={RUN_TAG: name, "mlflow.parentRunId": self.parent,
                                                                     "raypf.sweep": self.cfg.name, "raypf.trial_id": trial.trial_id})  # fmt: skip
                log_params(
                    client,
                    run.info.run_id,
                    flatten(trial_config(self.base, trial.config, name).model_dump(mode="json")),
                )
            run_id = run.info.run_id
            if STATUS_TAG in run.data.tags:  # closed before: a resumed sweep's trial that had ended
                return
            state = load_newest(sweep_dir(self.cfg) / "ray" / name)
            if state is not None:  # a trial stopped right after a report has not logged that epoch yet
                backfill_metrics(client, run_id, state["history"])
            client.set_tag(run_id, STATUS_TAG, status)
            if error:
                client.set_tag(run_id, "raypf.error", error[-5000:])
                client.log_text(run_id, error, "error.txt")
            best = sweep_dir(self.cfg) / name / "best"
            if best.exists() and not client.list_artifacts(run_id, "checkpoints/best"):
                client.log_artifacts(run_id, str(best), "checkpoints/best")
            client.set_terminated(run_id, mlflow_status)
            log.info(
                "trial %s: %s after %s epoch(s)",
                trial.trial_id,
                status,
                (trial.last_result or {}).get("epochs_done", 0),
            )
        except Exception:  # a tracking hiccup must not end the sweep
            log.exception("could not close the MLflow run of trial %s", trial.trial_id)
