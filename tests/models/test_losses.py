"""Every loss and weighting scheme against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from raypf.data.batching import pack
from raypf.models.heads import ModelOutput
from raypf.models.losses import LossOptions, cell_loss, compute_loss, energy_weights
from tests.models.test_batching import _rows, _table

Z = torch.tensor([0.0, 2.0, -1.0])
Y = torch.tensor([1, 0, 1])
E = torch.tensor([1.0, 4.0, -1.0])
# -log p for the true class, by hand: softplus(-z) for y = 1, softplus(z) for y = 0
NLL = [math.log(2), math.log(1 + math.exp(2)), math.log(1 + math.exp(1))]


def _wmean(values, weights):
    return sum(v * w for v, w in zip(values, weights)) / sum(weights)


@pytest.mark.parametrize(
    "scheme, weights",
    [("none", [1, 1, 1]), ("linear", [1, 4, 0]), ("absolute", [1, 4, 1]), ("square", [1, 16, 1]), ("sqrt", [1, 2, 1])],
)
def test_energy_weighted_bce(scheme, weights):
    assert energy_weights(E, scheme).tolist() == weights
    got = cell_loss(LossOptions("bce", scheme), Z, Y, E)
    assert got.item() == pytest.approx(_wmean(NLL, weights), rel=1e-6)


def test_bce_weights_the_focal_class_by_pos_weight():
    got = cell_loss(LossOptions("bce", pos_weight=3.0), Z, Y, E)
    assert got.item() == pytest.approx((3 * NLL[0] + NLL[1] + 3 * NLL[2]) / 3, rel=1e-6)


def test_focal_loss():
    sig = [1 / (1 + math.exp(-z)) for z in Z.tolist()]
    pt = [sig[0], 1 - sig[1], sig[2]]
    per = [(1 - p) ** 2 * -math.log(p) for p in pt]
    assert cell_loss(LossOptions("focal", focal_gamma=2.0), Z, Y, E).item() == pytest.approx(sum(per) / 3, rel=1e-6)
    alpha = [0.25, 0.75, 0.25]  # alpha on focal cells, 1 - alpha on the others
    got = cell_loss(LossOptions("focal", focal_gamma=2.0, focal_alpha=0.25), Z, Y, E).item()
    assert got == pytest.approx(sum(a * p for a, p in zip(alpha, per)) / 3, rel=1e-6)
    # gamma 0 is plain BCE
    assert cell_loss(LossOptions("focal", focal_gamma=0.0), Z, Y, E).item() == pytest.approx(sum(NLL) / 3, rel=1e-6)


def test_class_weighted_cross_entropy():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 3.0]])
    target = torch.tensor([0, 1])
    nll0 = -math.log(math.exp(2) / (math.exp(2) + 2))
    nll1 = -math.log(math.e / (1 + math.e + math.exp(3)))
    opts = LossOptions("ce", class_weights=(1.0, 4.0, 1.0))
    got = cell_loss(opts, logits, target, torch.ones(2)).item()
    assert got == pytest.approx((nll0 + 4 * nll1) / 5, rel=1e-6)
    both = cell_loss(LossOptions("ce", "square", class_weights=(1.0, 4.0, 1.0)), logits, target, torch.tensor([2.0, 1.0]))
    assert both.item() == pytest.approx((4 * nll0 + 4 * nll1) / 8, rel=1e-6)


def test_regression_losses_compare_energies():
    pred = torch.tensor([1.0, 0.5, 3.0])  # predicted focal energy, GeV
    share = torch.tensor([0.5, 0.0, 1.0])
    energy = torch.tensor([2.0, 1.0, 2.0])  # target energies 1, 0, 2
    assert cell_loss(LossOptions("mse"), pred, share, energy).item() == pytest.approx((0 + 0.25 + 1) / 3)
    assert cell_loss(LossOptions("mae"), pred, share, energy).item() == pytest.approx((0 + 0.5 + 1) / 3)
    assert cell_loss(LossOptions("mae", "linear"), pred, share, energy).item() == pytest.approx((0 + 0.5 + 2) / 5)


def test_compute_loss_sees_only_cells_and_adds_the_regulariser():
    batch = pack(_table(_rows()), target="binary")
    pred = torch.linspace(-2, 2, batch.n_points)
    base = compute_loss(LossOptions("bce"), ModelOutput(pred, torch.tensor(0.0)), batch)
    moved = pred.clone()
    moved[~batch.cell] = 1e6  # any value on track points
    again = compute_loss(LossOptions("bce"), ModelOutput(moved, torch.tensor(0.25)), batch)
    assert again.item() == pytest.approx(base.item() + 0.25)
    cells = [(p, y) for p, y, c in zip(pred.tolist(), batch.target.tolist(), batch.cell.tolist()) if c]
    by_hand = sum(math.log(1 + math.exp(-p)) if y else math.log(1 + math.exp(p)) for p, y in cells) / len(cells)
    assert base.item() == pytest.approx(by_hand, rel=1e-6)


def test_options_are_checked():
    with pytest.raises(ValueError, match="unknown loss"):
        LossOptions("hinge")
    with pytest.raises(ValueError, match="energy_weighting"):
        LossOptions("bce", "cubic")
    with pytest.raises(ValueError, match="class_weights"):
        LossOptions("ce", class_weights=(1.0, 2.0))
    assert LossOptions("ce").target == "three_class" and LossOptions("mae").target == "fraction"
