"""`raypf runs`: the runs of an experiment (or of one sweep) side by side, best first.

Only the params that differ between the listed runs are shown, so a sweep's
table reads as "what was varied, and what it gave".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from raypf.tracking import get_experiment

KEY_METRICS = ("val_f1", "val_energy_weighted_accuracy", "val_smart_random_f1", "loss")
NOT_COMPARED = ("run_name",)  # differs between every two runs by construction


def runs_table(
    tracking_uri: str, experiment: str, sweep: str | None, metric: str, mode: str, limit: int = 100
) -> list[dict]:
    """One row per run: name, status, epochs logged, best ``metric``, the last key metrics, every param that differs.

    Column names and values never hold two spaces in a row, so ``re.split(r"\\s{2,}", line)`` splits a printed row.
    """
    import mlflow

    if tracking_uri.startswith("sqlite:///") and not Path(tracking_uri.removeprefix("sqlite:///")).exists():
        raise ValueError(f"{tracking_uri}: no MLflow store there (stages write <output root>/mlflow.db; see --output)")
    client = mlflow.MlflowClient(tracking_uri)
    if client.get_experiment_by_name(experiment) is None:
        names = [e.name for e in client.search_experiments()]
        raise ValueError(f"{tracking_uri}: no experiment '{experiment}' (experiments: {', '.join(names) or 'none'})")
    _, exp_id = get_experiment(tracking_uri, experiment, ".")
    query = f"tags.`raypf.sweep` = '{sweep}'" if sweep else "tags.`raypf.stage` != 'tune'"
    runs = client.search_runs([exp_id], query, max_results=limit)
    rows = []
    for run in runs:
        history = client.get_metric_history(run.info.run_id, metric)
        values = [m.value for m in history]
        best = (max(values) if mode == "max" else min(values)) if values else None
        rows.append({
            "run": run.info.run_name,
            "status": run.data.tags.get("raypf.trial_status", run.info.status.lower()),
            "epochs logged": len(client.get_metric_history(run.info.run_id, "loss")),
            f"best {metric}": best,
            **{k: run.data.metrics.get(k) for k in KEY_METRICS if k != metric},
            "_params": run.data.params,
        })  # fmt: skip
    keys = sorted({k for r in rows for k in r["_params"]} - set(NOT_COMPARED))
    varied = [k for k in keys if len({r["_params"].get(k) for r in rows}) > 1]
    for r in rows:
        params = r.pop("_params")
        r.update({k: _number(params.get(k, "-")) for k in varied})
    sign = -1 if mode == "max" else 1
    return sorted(rows, key=lambda r: (r[f"best {metric}"] is None, sign * (r[f"best {metric}"] or 0.0)))


def format_table(rows: list[dict]) -> str:
    """Plain aligned columns (numbers to 4 significant digits), for a terminal or a log."""
    if not rows:
        return "(no runs)"
    cols = list(rows[0])
    cells = [[_fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def _number(text: str) -> Any:
    """A param (MLflow keeps strings) as a float when it is one, so that it prints to 4 digits."""
    if "." not in text and "e" not in text:
        return text
    try:
        return float(text)
    except ValueError:
        return text


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
