"""`raypf tune` on a real local Ray: a small Hyperband sweep over real samples, every trial in a real MLflow store."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import yaml

from raypf.config import ConfigError, load_config
from raypf.train.config import TrainConfig
from raypf.train.run import run_train
from raypf.tune.config import TuneConfig
from raypf.tune.run import run_tune

log = logging.getLogger(__name__)
MAX_T = 4
SPACE = {
    "optim.lr": {"loguniform": [1e-3, 1e-2]},
    "data.batch_size": {"choice": [16, 32]},
    "data.shuffle_buffer": {"randint": [32, 128]},
    "loss.energy_weighting": {"choice": ["none", "sqrt"]},
    "model.options.dropout": {"uniform": [0.0, 0.3]},
    "model.options.input_tnet": {"choice": [True, False]},
}


def _base(tmp: Path, dataset: Path, **extra) -> Path:
    cfg = {
        "data": {
            "dataset": str(dataset),
            "samples_per_epoch": 192,
            "batch_size": 16,
            "val_samples": 150,
            "shuffle_buffer": 64,
        },
        "model": {
            "options": {
                "point_widths": [32, 32],
                "global_widths": [32, 64, 128],
                "head_widths": [64, 32],
                "tnet_widths": [32, 64],
                "tnet_fc_widths": [32],
            }
        },
        "loss": {"kind": "bce", "pos_weight": 3.0},
        "optim": {"lr": 0.003, "warmup_epochs": 0.5},
        **extra,
    }
    path = tmp / "base.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _tune(tmp: Path, base: Path, **extra) -> TuneConfig:
    cfg = {
        "name": "sweep",
        "output_dir": str(tmp / "tune"),
        "base": str(base),
        "resources": {"num_workers": 1, "cpus_per_worker": 0.5},
        "set": {"data.read_cpus": 0.2},
        "num_trials": 6,
        "scheduler": {"kind": "hyperband", "max_t": MAX_T, "reduction_factor": 2},
        "search_space": SPACE,
        "seed": 3,
        **extra,
    }
    return TuneConfig.model_validate(cfg)


@pytest.fixture(scope="module")
def sweep(ray_session, rho_samples, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    cfg = _tune(tmp, _base(tmp, rho_samples))
    summary = run_tune(cfg)
    client = mlflow.MlflowClient(cfg.tracking_uri())
    exp = client.get_experiment_by_name(cfg.tracking.experiment)
    children = client.search_runs([exp.experiment_id], "tags.`raypf.sweep` = 'sweep'")
    return cfg, summary, client, children


def _steps(client, run_id: str, key: str = "val_f1") -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, key))


def test_every_trial_is_a_child_run_with_params_and_metrics_per_epoch(sweep):
    cfg, summary, client, children = sweep
    assert len(children) == cfg.num_trials == len(summary["trials"])
    for run in children:
        assert run.data.tags["mlflow.parentRunId"] == summary["parent_run_id"]
        assert run.info.status == "FINISHED"
        assert run.data.tags["raypf.trial_status"] in ("completed", "stopped early")
        for key in SPACE:
            assert key in run.data.params, key
        steps = _steps(client, run.info.run_id)
        assert steps == list(range(len(steps))) and 1 <= len(steps) <= MAX_T  # every epoch once, none repeated
        assert _steps(client, run.info.run_id, "loss") == steps
    parent = client.get_run(summary["parent_run_id"])
    assert parent.info.status == "FINISHED" and parent.data.metrics["best_val_f1"] == pytest.approx(
        summary["best_value"]
    )


def test_hyperband_stops_and_pauses_trials_which_resume_without_repeating_epochs(sweep):
    cfg, summary, client, children = sweep
    epochs = {r.info.run_id: len(_steps(client, r.info.run_id)) for r in children}
    stopped = [r for r in children if r.data.tags["raypf.trial_status"] == "stopped early"]
    assert stopped and all(epochs[r.info.run_id] < MAX_T for r in stopped)
    resumed = [r for r in children if r.data.metrics.get("resumes", 0) >= 1]
    assert resumed, "no trial was paused and resumed"
    for r in resumed:
        assert _steps(client, r.info.run_id) == list(range(epochs[r.info.run_id]))
    assert summary["epochs_trained"] == sum(epochs.values()) < cfg.num_trials * MAX_T
    log.info("epochs per trial %s, %d resumed, best val F1 %.3f in %.0f s",
             sorted(epochs.values()), len(resumed), summary["best_value"], summary["wall_seconds"])  # fmt: skip


def test_best_config_loads_and_trains(sweep):
    _, summary, _, children = sweep
    best = load_config(TrainConfig, summary["best_config"], {"epochs": 1, "run_name": "retrain"})
    trial = next(r for r in children if r.info.run_name == summary["best_run_name"])
    assert best.optim.lr == pytest.approx(float(trial.data.params["optim.lr"]))
    assert best.model.options["input_tnet"] == (trial.data.params["model.options.input_tnet"] == "True")
    result = run_train(best)
    assert result["metrics"]["epoch"] == 0 and 0 <= result["metrics"]["val_f1"] <= 1


def test_runs_table_lists_the_sweep_best_first_with_what_varied(sweep):
    cfg, summary, _, _ = sweep
    out = subprocess.run(
        [sys.executable, "-m", "raypf.cli", "runs", "--sweep", "sweep", "--tracking-uri", cfg.tracking_uri()],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    header, *rows = [re.split(r"\s{2,}", line.strip()) for line in out]
    assert len(rows) == cfg.num_trials
    assert header[:4] == ["run", "status", "epochs logged", "best val_f1"]
    assert "optim.lr" in header and "data.batch_size" in header  # sampled, so they differ
    assert "run_name" not in header and "loss.kind" not in header and "epochs" not in header  # the same in every trial
    best = [float(r[3]) for r in rows]
    assert best == sorted(best, reverse=True) and best[0] == pytest.approx(summary["best_value"], abs=1e-4)
    assert rows[0][0] == summary["best_run_name"]
    assert {r[1] for r in rows} <= {"completed", "stopped early"} and "stopped early" in {r[1] for r in rows}


def test_the_same_command_resumes_a_finished_sweep_without_new_trials(sweep):
    cfg, summary, client, _ = sweep
    again = run_tune(cfg)
    assert again["best_trial"] == summary["best_trial"] and again["epochs_trained"] == summary["epochs_trained"]
    exp = client.get_experiment_by_name(cfg.tracking.experiment)
    assert len(client.search_runs([exp.experiment_id], "tags.`raypf.sweep` = 'sweep'")) == cfg.num_trials


def test_a_crashing_trial_is_recorded_as_failed_and_the_sweep_goes_on(ray_session, rho_samples, tmp_path):
    bad = str(tmp_path / "missing" / "state.pt")
    cfg = _tune(
        tmp_path, _base(tmp_path, rho_samples, max_failures=0), name="crash", num_trials=2,
        scheduler={"kind": "none", "max_t": 1}, search_space={"finetune.checkpoint": {"choice": [None, bad]}},
        points_to_evaluate=[{"finetune.checkpoint": bad}, {"finetune.checkpoint": None}],
    )  # fmt: skip
    summary = run_tune(cfg)
    client = mlflow.MlflowClient(cfg.tracking_uri())
    exp = client.get_experiment_by_name(cfg.tracking.experiment)
    runs = {
        r.data.params.get("finetune.checkpoint"): r
        for r in client.search_runs([exp.experiment_id], "tags.`raypf.sweep` = 'crash'")
    }
    assert runs[bad].info.status == "FAILED" and runs[bad].data.tags["raypf.trial_status"] == "failed"
    assert "state.pt" in runs[bad].data.tags["raypf.error"]
    assert runs["None"].info.status == "FINISHED" and runs["None"].data.tags["raypf.trial_status"] == "completed"
    assert summary["failed"] == 1 and summary["best_trial"] == runs["None"].data.tags["raypf.trial_id"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"search_space": {"optim.learning_rate": {"loguniform": [1e-4, 1e-2]}}}, "search_space.optim.learning_rate"),
        ({"search_space": {"model.options.widths": {"choice": [[8], [16]]}}}, "search_space.model.options.widths"),
        ({"search_space": {"data.batch_size": {"choice": [16, 0]}}}, "search_space.data.batch_size"),
        ({"search_space": {"model.options.dropout": {"uniform": [0.5, 1.5]}}}, "search_space.model.options.dropout"),
        ({"search_space": {"optim.lr": {"normal": [0, 1]}}}, "search_space.optim.lr.normal"),
        ({"scheduler": {"kind": "pbt"}}, "scheduler.kind"),
        ({"metric": "val_iou"}, "metric"),
        ({"set": {"data.batchsize": 8}}, "set.data.batchsize"),
    ],
)
def test_bad_sweeps_fail_before_any_trial_naming_the_key(change, named, rho_samples, tmp_path):
    base = _base(tmp_path, rho_samples)
    data = {"name": "bad", "output_dir": str(tmp_path / "tune"), "base": str(base), "search_space": {}, **change}
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=f"'{named}'"):
        run_tune(load_config(TuneConfig, path), source=str(path))
    assert not (tmp_path / "tune" / "bad" / "tune").exists()


def test_slots_take_back_the_slot_of_a_dead_trial(ray_session):
    import ray

    from raypf.tune.slots import Slots

    @ray.remote(num_cpus=0)
    class Holder:
        def ping(self) -> bool:
            return True

    slots = Slots.remote(1)
    first, second = Holder.remote(), Holder.remote()
    ray.get([first.ping.remote(), second.ping.remote()])
    assert ray.get(slots.acquire.remote("a", first))
    assert not ray.get(slots.acquire.remote("b", second))  # full, and the holder is alive
    ray.kill(first)
    _wait_dead(first)  # as a stopped trial's actor is by the time another trial asks again
    assert ray.get(slots.acquire.remote("b", second)) and ray.get(slots.held.remote()) == ["b"]
    ray.get(slots.release.remote("b"))
    assert ray.get(slots.held.remote()) == []


def _wait_dead(actor, timeout_s: float = 60.0) -> None:
    import ray

    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            ray.get(actor.ping.remote(), timeout=5)
        except ray.exceptions.RayActorError:
            return
        time.sleep(0.1)
    raise AssertionError("the killed actor still answers")
