"""A run stopped between its checkpoint and its MLflow log (a paused trial) logs the missing epochs on resume."""

from __future__ import annotations

import time

import mlflow

from raypf.train.worker import EPOCH_END, backfill_metrics, log_epoch_metrics


def test_backfill_logs_only_the_epochs_mlflow_lacks(tmp_path):
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_id = client.create_run(client.create_experiment("x", artifact_location=(tmp_path / "a").as_uri())).info.run_id
    history = [{"epoch": e, "loss": 1.0 / (e + 1), "val_f1": 0.1 * e, "epochs_done": e + 1} for e in range(4)]
    for metrics in history[:2]:
        log_epoch_metrics(client, run_id, metrics, metrics["epoch"])
    backfill_metrics(client, run_id, history)
    backfill_metrics(client, run_id, history)  # idempotent
    loss = sorted((m.step, m.value) for m in client.get_metric_history(run_id, "loss"))
    assert loss == [(e, 1.0 / (e + 1)) for e in range(4)]
    assert sorted(m.step for m in client.get_metric_history(run_id, "val_f1")) == [0, 1, 2, 3]
    assert not client.get_metric_history(run_id, "epochs_done")  # Tune's clock, not a metric to chart


def test_an_epoch_logged_by_the_worker_and_a_racing_backfill_appears_once(tmp_path):
    # Tune stops a trial right after its report: the sweep's callback backfills the epoch from the
    # checkpoint while the worker logs it too; each saw it missing before the other wrote it
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_id = client.create_run(client.create_experiment("x", artifact_location=(tmp_path / "a").as_uri())).info.run_id
    metrics = {"epoch": 1, "loss": 0.5, "val_f1": 0.25, "epochs_done": 2, EPOCH_END: 1_790_000_000_000}
    log_epoch_metrics(client, run_id, metrics, 1)
    time.sleep(0.01)  # the second writer comes later
    log_epoch_metrics(client, run_id, dict(metrics), 1)
    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value, m.timestamp) for m in history] == [(1, 0.5, 1_790_000_000_000)]
    assert not client.get_metric_history(run_id, EPOCH_END)
