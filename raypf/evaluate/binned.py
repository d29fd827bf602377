"""Binned summaries and threshold curves for the evaluation plots, in plain numpy.

Kept apart from the plotting so the numbers a figure shows can be tested exactly and
reused in the report tables. Empty bins and undefined ratios come back as NaN, silently:
an evaluation over a few hundred samples always has empty bins, and a warning per bin
would bury the useful log lines.
"""

from __future__ import annotations

import numpy as np

#: Percentiles of the "±1σ" band of a response distribution (robust to the long tails of E_pred / E_true).
Q_LOW, Q_HIGH = 16.0, 84.0


def binned_response(x: np.ndarray, response: np.ndarray, edges: np.ndarray) -> dict[str, np.ndarray]:
    """Per bin of x: centre, count, median, 16th and 84th percentile of response, and resolution = (q84-q16)/2/median.

    Quantiles rather than mean and RMS because a cone's energy response has long tails (a neighbour's
    shower assigned to the focal track). Entries with x outside ``edges`` or a non-finite response (true
    focal energy 0) are left out; bins are ``[edges[i], edges[i+1])``, the last one closed.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    response = np.asarray(response, dtype=np.float64).ravel()
    edges = np.asarray(edges, dtype=np.float64)
    if x.shape != response.shape:
        raise ValueError(f"x and response differ in length: {x.shape} vs {response.shape}")
    n_bins = len(edges) - 1
    keep = np.isfinite(x) & np.isfinite(response) & (x >= edges[0]) & (x <= edges[-1])
    idx = np.clip(np.searchsorted(edges, x[keep], side="right") - 1, 0, n_bins - 1)
    values = response[keep]
    # one sort by (bin, response): each bin's values are then a contiguous, sorted slice
    order = np.lexsort((values, idx))
    values, idx = values[order], idx[order]
    count = np.bincount(idx, minlength=n_bins)
    starts = np.concatenate(([0], np.cumsum(count)))
    median, q16, q84 = (np.full(n_bins, np.nan) for _ in range(3))
    for b in np.flatnonzero(count):  # a loop over bins, not entries
        q16[b], median[b], q84[b] = np.percentile(values[starts[b] : starts[b + 1]], [Q_LOW, 50.0, Q_HIGH])
    with np.errstate(divide="ignore", invalid="ignore"):
        resolution = (q84 - q16) / 2.0 / median
    return {
        "centre": 0.5 * (edges[:-1] + edges[1:]),
        "low": edges[:-1].copy(),
        "high": edges[1:].copy(),
        "count": count,
        "median": median,
        "q16": q16,
        "q84": q84,
        "resolution": resolution,
    }


def f1_by_group(group: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Focal-class F1 (positive class = True) of the cells in each of `groups` (values of `group`); NaN where a group has no cells or no positives at all in truth and prediction.

    F1 = 2 TP / (2 TP + FP + FN), counted per group with one ``bincount``; cells whose group is not
    in ``groups`` are ignored. Used for F1 against the number of tracks in the cone, where how well
    a method does in busy cones is what sets it apart from the nearest-track baseline.
    """
    group = np.asarray(group).ravel()
    y_true = np.asarray(y_true, dtype=bool).ravel()
    y_pred = np.asarray(y_pred, dtype=bool).ravel()
    groups = np.asarray(groups).ravel()
    if not (group.shape == y_true.shape == y_pred.shape):
        raise ValueError(f"group, y_true and y_pred differ in length: {group.shape}, {y_true.shape}, {y_pred.shape}")
    if len(groups) == 0:
        return np.zeros(0)
    order = np.argsort(groups, kind="stable")
    pos = np.clip(np.searchsorted(groups[order], group), 0, len(groups) - 1)
    matched = groups[order][pos] == group
    idx = order[pos[matched]]
    t, p = y_true[matched], y_pred[matched]
    tp = np.bincount(idx, weights=t & p, minlength=len(groups))
    fp = np.bincount(idx, weights=~t & p, minlength=len(groups))
    fn = np.bincount(idx, weights=t & ~p, minlength=len(groups))
    denominator = 2.0 * tp + fp + fn
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, 2.0 * tp / denominator, np.nan)


def _cumulative_counts(
    y_true: np.ndarray, score: np.ndarray, weight: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted true and false positives at each distinct score, scores descending (>= threshold is positive)."""
    y_true = np.asarray(y_true, dtype=bool).ravel()
    score = np.asarray(score, dtype=np.float64).ravel()
    w = np.ones_like(score) if weight is None else np.asarray(weight, dtype=np.float64).ravel()
    if not (y_true.shape == score.shape == w.shape):
        raise ValueError(f"y_true, score and weight differ in length: {y_true.shape}, {score.shape}, {w.shape}")
    if not np.all(np.isfinite(score)):
        raise ValueError("scores must be finite")
    order = np.argsort(-score, kind="stable")
    score, y_true, w = score[order], y_true[order], w[order]
    tp = np.cumsum(w * y_true)
    fp = np.cumsum(w * ~y_true)
    # tied scores form one threshold: keep the last entry of each run of equal scores
    last = np.flatnonzero(np.diff(score, append=-np.inf) != 0)
    return tp[last], fp[last], score[last]


def pr_curve(
    y_true: np.ndarray, score: np.ndarray, weight: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and thresholds, one point per distinct score, thresholds descending.

    A cell is called positive when ``score >= threshold``. The curve starts at threshold +inf with
    recall 0 and precision 1 (the usual convention), so the trapezoid area of a perfect scorer is 1.
    Recall is NaN throughout if there is no positive weight.
    """
    tp, fp, thresholds = _cumulative_counts(y_true, score, weight)
    total = tp[-1] if len(tp) else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = tp / (tp + fp)
        recall = tp / total if total > 0 else np.full(len(tp), np.nan)
    return (
        np.concatenate(([1.0], precision)),
        np.concatenate(([0.0 if total > 0 else np.nan], recall)),
        np.concatenate(([np.inf], thresholds)),
    )


def roc_curve(
    y_true: np.ndarray, score: np.ndarray, weight: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False- and true-positive rates and thresholds, one point per distinct score, thresholds descending.

    Starts at (0, 0) with threshold +inf and ends at (1, 1); a rate is NaN if its class has no weight.
    """
    tp, fp, thresholds = _cumulative_counts(y_true, score, weight)
    tp, fp = np.concatenate(([0.0], tp)), np.concatenate(([0.0], fp))
    with np.errstate(divide="ignore", invalid="ignore"):
        fpr = fp / fp[-1] if fp[-1] > 0 else np.full(len(fp), np.nan)
        tpr = tp / tp[-1] if tp[-1] > 0 else np.full(len(tp), np.nan)
    return fpr, tpr, np.concatenate(([np.inf], thresholds))


def auc(x: np.ndarray, y: np.ndarray) -> float:
    """Trapezoid area under y(x); a curve traced with x decreasing counts positive too."""
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in length: {x.shape} vs {y.shape}")
    if len(x) < 2:
        return float("nan")
    area = float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))
    return -area if x[-1] < x[0] else area
