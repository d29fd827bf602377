"""Cell metrics, per-sample response and the baselines against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from raypf.data.batching import pack
from raypf.models.baselines import baseline_metrics
from raypf.models.heads import ModelOutput
from raypf.models.metrics import CellMetrics, metrics_from_confusion, response_metrics
from tests.models.test_batching import _rows, _table


def test_binary_metrics_from_a_confusion_matrix():
    m = metrics_from_confusion(np.array([[50, 10], [5, 35]]), np.array([[1.0, 2.0], [3.0, 4.0]]))
    p, r = 35 / 45, 35 / 40
    assert m["accuracy"] == pytest.approx(0.85)
    assert (m["precision"], m["recall"]) == (pytest.approx(p), pytest.approx(r))
    assert m["f1"] == pytest.approx(2 * p * r / (p + r))
    assert m["energy_weighted_accuracy"] == pytest.approx(5 / 10)
    assert m["confusion"] == [[50, 10], [5, 35]]


def test_three_class_metrics_report_the_focal_class_and_the_macro_average():
    c = np.array([[8, 1, 1], [2, 6, 2], [0, 0, 10]])
    m = metrics_from_confusion(c)
    assert m["accuracy"] == pytest.approx(24 / 30)
    assert (m["precision"], m["recall"]) == (pytest.approx(6 / 7), pytest.approx(6 / 10))
    f1 = [2 * 8 / (10 + 10), 2 * 6 / (7 + 10), 2 * 10 / (13 + 10)]
    assert m["f1_per_class"] == pytest.approx(f1)
    assert m["macro_f1"] == pytest.approx(sum(f1) / 3)


def test_baselines_reproduce_the_seed_table():
    # rho + delta in 000_*: 64.88 % non-focal cells
    counts = np.array([[6488.0, 0.0], [3512.0, 0.0]])
    b = baseline_metrics(counts)
    assert b["dumb"]["accuracy"] == pytest.approx(0.6488) and b["dumb"]["f1"] == 0
    assert b["random"]["accuracy"] == pytest.approx(0.5)
    assert (b["random"]["precision"], b["random"]["recall"]) == (pytest.approx(0.3512), pytest.approx(0.5))
    assert b["random"]["f1"] == pytest.approx(0.4126, abs=5e-5)
    assert b["smart_random"]["accuracy"] == pytest.approx(0.6488**2 + 0.3512**2)  # 0.5443 in the seed
    assert b["smart_random"]["f1"] == pytest.approx(0.3512)


def test_baselines_use_given_proportions_and_energy_weights():
    counts = np.array([[30.0, 10.0], [20.0, 40.0]])  # rows: 40 non-focal, 60 focal
    weighted = np.array([[1.0, 1.0], [6.0, 2.0]])  # row energies 2 and 8
    b = baseline_metrics(counts, weighted, proportions=np.array([0.9, 0.1]))
    assert b["dumb"]["accuracy"] == pytest.approx(0.4)  # the majority of the training proportions
    assert b["smart_random"]["accuracy"] == pytest.approx((40 * 0.9 + 60 * 0.1) / 100)
    assert b["smart_random"]["energy_weighted_accuracy"] == pytest.approx((2 * 0.9 + 8 * 0.1) / 10)
    assert b["random"]["energy_weighted_accuracy"] == pytest.approx(0.5)


def test_response_and_mape_over_samples_with_focal_energy():
    r = response_metrics(np.array([1.0, 3.0, 5.0, 9.0]), np.array([1.0, 2.0, 0.0, 10.0]))
    assert r["samples"] == 3
    assert r["response_median"] == pytest.approx(1.0)
    assert r["response_mean"] == pytest.approx((1 + 1.5 + 0.9) / 3)
    assert r["mape"] == pytest.approx((0 + 0.5 + 0.1) / 3)


def test_cell_metrics_accumulate_exactly_over_batches():
    rows = _rows()
    whole = pack(_table(rows * 2))
    pred = torch.tensor([5.0, 1.0, 1.0, -1.0, 5.0, 5.0, -2.0, 3.0] * 2)  # track rows are ignored
    one = CellMetrics("binary")
    one.update(ModelOutput(pred, torch.tensor(0.0)), whole)
    split = CellMetrics("binary")
    for part in (slice(0, 8), slice(8, 16)):
        b = pack(_table(rows))
        split.update(ModelOutput(pred[part], torch.tensor(0.0)), b)
    a, b = one.result(), split.result()
    assert a == b
    # cells per copy: truth [1, 0, 0 | 0, 0], predicted [1, 1, 0 | 0, 1]
    assert a["confusion"] == [[4, 4], [0, 2]]
    # predicted focal energy per sample: 2 + 1 and 0.4; true focal energy 1.7 and 0.1
    assert one.pred_energy[0].tolist() == pytest.approx([3.0, 0.4, 3.0, 0.4])
    assert one.true_energy[0].tolist() == pytest.approx([1.7, 0.1, 1.7, 0.1])
    assert a["energy_weighted_accuracy"] == pytest.approx(2 * (2.0 + 0.3) / (2 * (2.0 + 1.0 + 0.0 + 0.3 + 0.4)))


def test_regression_metrics_threshold_the_share_and_sum_energies():
    b = pack(_table(_rows()), target="fraction")
    share = torch.tensor([0, 0.8, 0.1, 0.4, 0, 0, 0.6, 0.0])
    m = CellMetrics("fraction")
    m.update(ModelOutput(share * b.energy, torch.tensor(0.0), fraction=share), b)
    r = m.result()
    assert r["confusion"] == [[3, 1], [0, 1]]  # truth shares 0.75 0.2 0 | 0.25 0; predicted 0.8 0.1 0.4 | 0.6 0
    target = b.target[b.cell] * b.energy[b.cell]
    diff = (share * b.energy)[b.cell] - target
    assert r["mse"] == pytest.approx(float(diff.square().mean()))
    assert r["mae"] == pytest.approx(float(diff.abs().mean()))
