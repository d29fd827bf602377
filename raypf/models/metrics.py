"""Cell metrics from confusion matrices, and per-sample focal-energy response.

Everything is accumulated as confusion matrices (counts, and counts weighted
by cell energy) plus per-sample energy sums, so metrics over a whole test set
are exact however it is batched, and the baselines (``baselines.py``) are the
same formulas applied to their expected confusion matrices.

The focal class is 1 for both classification targets; for the ``fraction``
target a cell is called focal when its predicted share is >= 0.5, as in the
truth definition.
"""

from __future__ import annotations

import numpy as np
import torch

from raypf.data.batching import FOCAL_CLASS, PackedBatch
from raypf.models.heads import ModelOutput


def metrics_from_confusion(counts: np.ndarray, weighted: np.ndarray | None = None) -> dict:
    """Accuracy, focal-class precision/recall/F1 and more from ``counts[true, predicted]``.

    ``weighted`` is the same matrix summed with cell-energy weights (``max(E, 0)``): its trace over its
    sum is the energy-weighted accuracy, the share of the cells' energy that is assigned correctly.
    """
    c = np.asarray(counts, dtype=np.float64)
    k = c.shape[0]
    total = c.sum()
    tp = np.diag(c)
    predicted, actual = c.sum(axis=0), c.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros(k), where=actual > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=(precision + recall) > 0)
    out = {
        "cells": total,
        "accuracy": float(tp.sum() / total) if total else 0.0,
        "precision": float(precision[FOCAL_CLASS]),
        "recall": float(recall[FOCAL_CLASS]),
        "f1": float(f1[FOCAL_CLASS]),
        "confusion": c.tolist(),
    }
    if k > 2:
        out["f1_per_class"] = f1.tolist()
        out["macro_f1"] = float(f1.mean())
    if weighted is not None:
        w = np.asarray(weighted, dtype=np.float64)
        out["energy_weighted_accuracy"] = float(np.trace(w) / w.sum()) if w.sum() > 0 else 0.0
    return out


def response_metrics(predicted: np.ndarray, true: np.ndarray) -> dict:
    """Per-sample focal energy: response ``predicted / true`` (median, mean, spread) and MAPE.

    Over samples whose focal particle left energy in the cone's cells (``true > 0``). The spread is
    half the 16-84 % interval of the response over its median (a resolution); MAPE is the mean of
    ``|predicted - true| / true``, as in the seed's test notebook.
    """
    predicted, true = np.asarray(predicted, dtype=np.float64), np.asarray(true, dtype=np.float64)
    keep = true > 0
    if not keep.any():
        return {"samples": 0, "response_median": 0.0, "response_mean": 0.0, "response_spread": 0.0, "mape": 0.0}
    r = predicted[keep] / true[keep]
    q16, q50, q84 = np.percentile(r, [16, 50, 84])
    return {
        "samples": int(keep.sum()),
        "response_median": float(q50),
        "response_mean": float(r.mean()),
        "response_spread": float((q84 - q16) / 2 / q50) if q50 else float("inf"),
        "mape": float(np.abs(r - 1).mean()),
    }


class CellMetrics:
    """Accumulates a model's predictions over batches; ``result()`` gives every metric at once."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.k = 3 if target == "three_class" else 2
        self.counts = np.zeros((self.k, self.k))
        self.weighted = np.zeros((self.k, self.k))
        self.sq_err = 0.0
        self.abs_err = 0.0
        self.pred_energy: list[np.ndarray] = []
        self.true_energy: list[np.ndarray] = []

    def predicted_classes(self, out: ModelOutput) -> torch.Tensor:
        if self.target == "three_class":
            return out.pred.argmax(dim=-1)
        if self.target == "binary":
            return (out.pred > 0).long()
        return (out.fraction >= 0.5).long()

    def update(self, out: ModelOutput, batch: PackedBatch) -> None:
        with torch.no_grad():
            cell = batch.cell
            classes = self.predicted_classes(out)
            pred = classes[cell]
            truth = batch.target[cell]
            if self.target == "fraction":
                truth = (truth >= 0.5).long()
            energy = batch.energy[cell].float()
            index = truth * self.k + pred
            k2 = self.k * self.k
            self.counts += torch.bincount(index, minlength=k2).reshape(self.k, self.k).cpu().numpy()
            self.weighted += torch.bincount(index, weights=energy.clamp_min(0).double(), minlength=k2).reshape(self.k, self.k).cpu().numpy()
            if self.target == "fraction":
                focal_energy = out.pred.float()
                diff = out.pred[cell].float() - batch.target[cell] * energy
                self.sq_err += float(diff.square().sum())
                self.abs_err += float(diff.abs().sum())
            else:
                focal_energy = torch.where(classes == FOCAL_CLASS, batch.energy, 0.0)
            focal_energy = torch.where(cell, focal_energy, 0.0)
            b = batch.n_samples
            predicted = torch.zeros(b, dtype=torch.float64, device=cell.device).index_add_(0, batch.sample, focal_energy.double())
            true = torch.zeros(b, dtype=torch.float64, device=cell.device).index_add_(0, batch.sample, batch.truth_focal.double())
            self.pred_energy.append(predicted.cpu().numpy())
            self.true_energy.append(true.cpu().numpy())

    def result(self) -> dict:
        out = metrics_from_confusion(self.counts, self.weighted)
        pred = np.concatenate(self.pred_energy) if self.pred_energy else np.zeros(0)
        true = np.concatenate(self.true_energy) if self.true_energy else np.zeros(0)
        out.update(response_metrics(pred, true))
        if self.target == "fraction" and out["cells"]:
            out["mse"] = self.sq_err / out["cells"]
            out["mae"] = self.abs_err / out["cells"]
        return out
