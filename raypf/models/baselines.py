"""The baselines of ``000_*``: dumb (majority class), random, smart random (class proportions).

Each is given by its *expected* confusion matrix on the very cells a model
was scored on, so its metrics are exact numbers, not one noisy draw: with
``n_i`` cells of true class ``i`` and class proportions ``p``, dumb puts every
row into the majority column, random spreads each row evenly over the ``k``
classes, smart random spreads row ``i`` as ``n_i p_j``. The same
``metrics_from_confusion`` then gives accuracy, precision, recall, F1 and the
energy-weighted accuracy (the weighted matrix is spread the same way).
"""

from __future__ import annotations

import numpy as np

from raypf.models.metrics import metrics_from_confusion

BASELINES = ("dumb", "random", "smart_random")


def expected_confusion(rows: np.ndarray, name: str, proportions: np.ndarray) -> np.ndarray:
    """Expected ``[true, predicted]`` matrix of baseline ``name`` for true-class totals ``rows``."""
    rows = np.asarray(rows, dtype=np.float64)
    k = len(rows)
    if name == "dumb":
        spread = np.zeros(k)
        spread[int(np.argmax(proportions))] = 1.0
    elif name == "random":
        spread = np.full(k, 1.0 / k)
    elif name == "smart_random":
        spread = np.asarray(proportions, dtype=np.float64)
    else:
        raise ValueError(f"unknown baseline '{name}'; known: {', '.join(BASELINES)}")
    return rows[:, None] * spread[None, :]


def baseline_metrics(counts: np.ndarray, weighted: np.ndarray | None = None, proportions: np.ndarray | None = None) -> dict:
    """Metrics of every baseline on the cells behind a model's ``counts`` (and energy-``weighted``) matrix.

    ``proportions`` default to the class proportions of those cells; pass the training split's to
    score baselines that only know the training data, as the seeds did.
    """
    counts = np.asarray(counts, dtype=np.float64)
    rows = counts.sum(axis=1)
    if proportions is None:
        proportions = rows / rows.sum() if rows.sum() else np.full(len(rows), 1.0 / len(rows))
    proportions = np.asarray(proportions, dtype=np.float64)
    out = {}
    for name in BASELINES:
        c = expected_confusion(rows, name, proportions)
        w = None if weighted is None else expected_confusion(np.asarray(weighted).sum(axis=1), name, proportions)
        out[name] = metrics_from_confusion(c, w)
    return out
