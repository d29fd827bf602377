"""A run stopped between its checkpoint and its MLflow log (a paused trial) logs the missing epochs on resume."""

from __future__ import annotations

import mlflow

from raypf.train.worker import backfill_metrics, log_epoch_metrics


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
