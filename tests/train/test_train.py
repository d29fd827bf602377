"""`raypf train` on a real local Ray with 2 CPU workers, real Parquet samples and a real MLflow store."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import mlflow
import psutil
import pytest

from raypf.config import ConfigError
from raypf.train.config import TrainConfig
from raypf.train.run import run_train

SMALL_MODEL = {"point_widths": [32, 32], "global_widths": [32, 64, 128], "head_widths": [64, 32], "tnet_widths": [32, 64],
               "tnet_fc_widths": [32], "dropout": 0.1}  # fmt: skip  (for the tests about the machinery, not learning)


def _config(dataset: Path, out: Path, **extra) -> TrainConfig:
    base = {
        "output_dir": str(out),
        "tracking": {"tracking_uri": f"sqlite:///{out / 'mlflow.db'}"},  # one store per test module
        "run_name": "rho",
        "epochs": 4,
        "record_samples": True,
        "data": {"dataset": str(dataset), "samples_per_epoch": 256, "batch_size": 16, "val_samples": 200, "shuffle_buffer": 64},
        "model": {"options": {}},  # the default PointNet
        "loss": {"kind": "bce", "energy_weighting": "sqrt", "pos_weight": 3.0},
        "optim": {"lr": 0.003, "warmup_epochs": 0.5},
        "scaling": {"num_workers": 2, "cpus_per_worker": 0.5},
    }
    for key, value in extra.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return TrainConfig.model_validate(base)


def _keys(run_dir: Path, epoch: int, rank: int) -> list[str]:
    return json.loads((run_dir / "samples" / f"epoch{epoch:04d}-rank{rank}.json").read_text())["keys"]


@pytest.fixture(scope="module")
def trained(ray_session, rho_samples, tmp_path_factory):
    """Four epochs with 2 workers, then the same command again with six epochs (a resume)."""
    out = tmp_path_factory.mktemp("train")
    first = run_train(_config(rho_samples, out))
    first["files_after_run"] = [Path(first[k]) / "state.pt" for k in ("final_checkpoint", "best_checkpoint")]
    first["files_after_run"] = [p.exists() for p in first["files_after_run"]]  # before the resume rotates checkpoints
    second = run_train(_config(rho_samples, out, epochs=6))
    return out, first, second


def test_two_workers_train_and_beat_smart_random(trained):
    out, first, _ = trained
    client = mlflow.MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    loss = [m.value for m in sorted(client.get_metric_history(first["run_id"], "loss"), key=lambda m: m.step)]
    f1 = client.get_metric_history(first["run_id"], "val_f1")
    smart = client.get_metric_history(first["run_id"], "val_smart_random_f1")
    logging.getLogger(__name__).info(
        "loss per epoch %s; best val F1 %.3f, smart random %.3f", [round(x, 3) for x in loss],
        max(m.value for m in f1), max(m.value for m in smart),
    )  # fmt: skip
    assert len(loss) >= 4 and loss[3] < loss[0]
    assert max(m.value for m in f1) > max(m.value for m in smart) + 0.05
    assert first["metrics"]["epoch"] == 3
    assert first["files_after_run"] == [True, True]


def test_mlflow_run_has_config_metrics_and_checkpoints(trained):
    out, first, _ = trained
    client = mlflow.MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    run = client.get_run(first["run_id"])
    assert run.info.status == "FINISHED"
    assert run.info.artifact_uri.startswith((out / "mlartifacts").as_uri())  # beside the database, not in ./mlruns
    assert run.data.params["data.batch_size"] == "16" and run.data.params["loss.kind"] == "bce"
    for key in ("loss", "lr", "val_accuracy", "val_f1", "val_energy_weighted_accuracy", "samples_per_s", "data_wait_fraction"):
        assert key in run.data.metrics, key
    artifacts = {a.path for a in client.list_artifacts(first["run_id"])}
    assert {"config.yaml", "checkpoints"} <= artifacts
    final = {a.path for a in client.list_artifacts(first["run_id"], "checkpoints/final")}
    assert "checkpoints/final/state.pt" in final


def test_workers_see_disjoint_samples_and_epochs_differ(trained):
    out, _, _ = trained
    run_dir = out / "rho"
    for epoch in range(4):
        a, b = _keys(run_dir, epoch, 0), _keys(run_dir, epoch, 1)
        assert len(a) == len(b) == 256 // (2 * 16) * 16  # steps x batch size each
        assert not set(a) & set(b)
    e0 = set(_keys(run_dir, 0, 0) + _keys(run_dir, 0, 1))
    e1 = set(_keys(run_dir, 1, 0) + _keys(run_dir, 1, 1))
    assert len(e0 & e1) < 0.2 * len(e0)


def test_same_run_name_resumes(trained):
    out, first, second = trained
    assert second["run_id"] == first["run_id"]
    assert second["metrics"]["epoch"] == 5
    assert second["metrics"]["resumes"] == 1
    client = mlflow.MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    steps = sorted(m.step for m in client.get_metric_history(first["run_id"], "loss"))
    assert steps == [0, 1, 2, 3, 4, 5]  # nothing trained twice


def test_a_killed_worker_is_replaced_and_the_run_finishes_from_its_checkpoint(ray_session, rho_samples, tmp_path):
    cfg = _config(
        rho_samples, tmp_path, epochs=24, record_samples=False, data={"samples_per_epoch": 64, "val_samples": 32},
        model={"options": SMALL_MODEL},
    )  # fmt: skip
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(run_train(cfg)))
    thread.start()
    storage = tmp_path / "ray" / "rho"
    deadline = time.time() + 300
    while time.time() < deadline and not list(storage.glob("checkpoint_*/state.pt")):
        time.sleep(0.5)
    assert list(storage.glob("checkpoint_*/state.pt")), "no checkpoint within 300 s"
    workers = [p for p in psutil.process_iter(["cmdline"]) if "RayTrainWorker" in " ".join(p.info["cmdline"] or [])]
    assert workers, "no Ray Train worker process found"
    workers[0].kill()
    thread.join(timeout=600)
    assert not thread.is_alive()
    assert result["metrics"]["epoch"] == 23
    assert result["metrics"]["resumes"] >= 1
    import torch

    state = torch.load(Path(result["final_checkpoint"]) / "state.pt", weights_only=False)
    assert [h["epoch"] for h in state["history"]] == list(range(24))  # each epoch once: at most one epoch redone


def test_bad_configs_fail_at_start(ray_session, rho_samples, tmp_path):
    with pytest.raises(ConfigError, match=r"scaling.use_gpu.*has 0 GPU"):
        run_train(_config(rho_samples, tmp_path, scaling={"use_gpu": True}))
    with pytest.raises(ConfigError, match="data.dataset.*not a directory"):
        run_train(_config(tmp_path / "nowhere", tmp_path))
    with pytest.raises(ConfigError, match=r"scaling.cpus_per_worker.*need 3.5 CPUs"):
        run_train(_config(rho_samples, tmp_path, scaling={"cpus_per_worker": 1.5}))
    with pytest.raises(ConfigError, match=r"data.mix.*\['JZ4'\] not in the train split"):
        run_train(_config(rho_samples, tmp_path, data={"mix": {"JZ4": 1.0}}))
    with pytest.raises(ValueError, match="loss.kind 'ce' needs data.target 'three_class'"):
        _config(rho_samples, tmp_path, loss={"kind": "ce"})


def test_wrong_schema_is_named(ray_session, rho_samples, tmp_path):
    import shutil

    import pyarrow.parquet as pq

    bad = tmp_path / "bad"
    shutil.copytree(rho_samples, bad)
    for f in bad.glob("split=*/set=*/*.parquet"):
        pq.write_table(pq.read_table(f).drop(["sigma"]), f)
    with pytest.raises(ConfigError, match=r"lacks column\(s\) \['sigma'\]"):
        run_train(_config(bad, tmp_path))


def test_fine_tuning_starts_from_a_checkpoint_and_keeps_frozen_parts(trained, rho_samples):
    import torch

    out, _, second = trained
    cfg = _config(
        rho_samples, out, run_name="tuned", epochs=1, record_samples=False,
        finetune={"checkpoint": second["best_checkpoint"], "freeze": ["input_tnet", "point_mlp"]},
    )  # fmt: skip
    tuned = run_train(cfg)
    start = torch.load(Path(second["best_checkpoint"]) / "state.pt", weights_only=False)["model"]
    end = torch.load(Path(tuned["final_checkpoint"]) / "state.pt", weights_only=False)["model"]
    frozen = [k for k in start if k.startswith(("input_tnet.", "point_mlp.")) and "running" not in k and "num_batches" not in k]
    trained_keys = [k for k in start if k.startswith("head") and k.endswith("weight")]
    assert frozen and trained_keys
    assert all(torch.equal(start[k], end[k]) for k in frozen)
    assert any(not torch.equal(start[k], end[k]) for k in trained_keys)
    assert tuned["run_id"] != second["run_id"]
