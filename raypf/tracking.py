"""MLflow helpers shared by the stages: one store per output directory, runs found by a tag, flat params."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

STORE = "mlflow.db"


def default_tracking_uri(output_dir: str) -> str:
    """$MLFLOW_TRACKING_URI, else the project's store: ``mlflow.db`` in the output root, the parent of a stage's output_dir.

    Training runs and sweeps (``output/train``, ``output/tune``) thereby land in one
    store (``output/mlflow.db``), where `raypf runs` and `raypf ui` find them all.
    """
    return store_uri(str(Path(output_dir).expanduser().resolve().parent))


def store_uri(output_root: str) -> str:
    """$MLFLOW_TRACKING_URI, else ``sqlite:///<output_root>/mlflow.db``."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{Path(output_root).expanduser().resolve() / STORE}"


def get_experiment(tracking_uri: str, name: str, output_dir: str) -> tuple[Any, str]:
    """A client on ``tracking_uri`` and the id of experiment ``name``, created if need be.

    A new experiment keeps its artifacts beside an SQLite store (else in ``output_dir``),
    not in ./mlruns of whatever directory the driver happens to run in.
    """
    import mlflow

    client = mlflow.MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(name)
    if exp is None:
        root = (
            Path(tracking_uri.removeprefix("sqlite:///")).parent
            if tracking_uri.startswith("sqlite:///")
            else Path(output_dir)
        )
        artifacts = root.expanduser().resolve() / "mlartifacts"
        try:
            return client, client.create_experiment(name, artifact_location=artifacts.as_uri())
        except mlflow.exceptions.MlflowException:  # created meanwhile by another process (a sweep's trials)
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
    return client, exp.experiment_id


def find_run(client: Any, experiment_id: str, tag: str, value: str) -> Any | None:
    """The run of ``experiment_id`` whose tag ``tag`` is ``value``, or None."""
    found = client.search_runs([experiment_id], f"tags.`{tag}` = '{value}'", max_results=1)
    return found[0] if found else None


def flatten(d: dict, prefix: str = "") -> dict:
    """Nested config mapping -> dotted keys (empty mappings stay as values)."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def log_params(client: Any, run_id: str, params: dict) -> None:
    """Log a flat mapping as params, in MLflow's batches of 100, values cut to its length limit."""
    from mlflow.entities import Param

    items = [Param(k, str(v)[:6000]) for k, v in params.items()]
    for i in range(0, len(items), 100):
        client.log_batch(run_id, params=items[i : i + 100])
