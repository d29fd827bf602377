"""The seeds' losses, on cell points only.

Every loss is a weighted mean over the cells of the batch, ``sum w l / sum w``,
where ``w`` is the cell-energy weight of the chosen scheme (``000_*``: the
energy-weighted BCE makes the energetic cells, which decide the energy
subtraction, count more). Normalising by ``sum w`` keeps the loss scale the same
across schemes and batch sizes, so learning rates carry over. Track points
and padding never enter: they are inputs only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch.nn import functional as F

from raypf.data.batching import PackedBatch
from raypf.models.heads import ModelOutput

LossKind = Literal["bce", "focal", "ce", "mse", "mae"]
Weighting = Literal["none", "linear", "absolute", "square", "sqrt"]

#: Which target each loss needs.
LOSS_TARGET = {"bce": "binary", "focal": "binary", "ce": "three_class", "mse": "fraction", "mae": "fraction"}
WEIGHTINGS = ("none", "linear", "absolute", "square", "sqrt")


@dataclass(frozen=True)
class LossOptions:
    """``pos_weight`` is the seed's alpha on the focal class (bce); ``class_weights`` weight the ce classes."""

    kind: LossKind = "bce"
    energy_weighting: Weighting = "none"
    pos_weight: float = 1.0
    focal_gamma: float = 2.0
    focal_alpha: float | None = None
    class_weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in LOSS_TARGET:
            raise ValueError(f"loss.kind: unknown loss '{self.kind}'; known: {', '.join(LOSS_TARGET)}")
        if self.energy_weighting not in WEIGHTINGS:
            raise ValueError(f"loss.energy_weighting: unknown scheme '{self.energy_weighting}'; known: {', '.join(WEIGHTINGS)}")
        if self.pos_weight <= 0 or self.focal_gamma < 0:
            raise ValueError("loss.pos_weight must be > 0 and loss.focal_gamma >= 0")
        if self.focal_alpha is not None and not 0 < self.focal_alpha < 1:
            raise ValueError(f"loss.focal_alpha: must be in (0, 1), got {self.focal_alpha}")
        if self.class_weights is not None and (len(self.class_weights) != 3 or min(self.class_weights) < 0):
            raise ValueError(f"loss.class_weights: three non-negative weights (neutral, focal, other charged), got {self.class_weights}")

    @property
    def target(self) -> str:
        return LOSS_TARGET[self.kind]


def energy_weights(energy: torch.Tensor, scheme: str) -> torch.Tensor:
    """Per-cell weight from the measured cell energy.

    ``linear`` is ``max(E, 0)``: noise can make a cell's energy negative, and a negative weight would
    reward the wrong answer. ``absolute`` is ``|E|``, ``square`` ``E^2``, ``sqrt`` ``sqrt|E|``.
    """
    if scheme == "none":
        return torch.ones_like(energy)
    if scheme == "linear":
        return energy.clamp_min(0)
    if scheme == "absolute":
        return energy.abs()
    if scheme == "square":
        return energy.square()
    if scheme == "sqrt":
        return energy.abs().sqrt()
    raise ValueError(f"unknown energy weighting '{scheme}'; known: {', '.join(WEIGHTINGS)}")


def _weighted_mean(per_cell: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return (per_cell * w).sum() / w.sum().clamp_min(torch.finfo(w.dtype).tiny)


def cell_loss(options: LossOptions, pred: torch.Tensor, target: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
    """The loss on cell rows only: ``pred`` and ``target`` already restricted to cells."""
    pred = pred.float()
    w = energy_weights(energy.float(), options.energy_weighting)
    kind = options.kind
    if kind in ("bce", "focal"):
        y = target.float()
        if kind == "bce":
            per = F.binary_cross_entropy_with_logits(pred, y, reduction="none")
            per = per * torch.where(y > 0.5, options.pos_weight, 1.0)
        else:
            log_p = F.logsigmoid(pred)
            log_q = F.logsigmoid(-pred)
            log_pt = torch.where(y > 0.5, log_p, log_q)
            per = -((1 - log_pt.exp()) ** options.focal_gamma) * log_pt
            if options.focal_alpha is not None:
                per = per * torch.where(y > 0.5, options.focal_alpha, 1 - options.focal_alpha)
        return _weighted_mean(per, w)
    if kind == "ce":
        cw = None if options.class_weights is None else torch.tensor(options.class_weights, device=pred.device)
        per = F.cross_entropy(pred, target.long(), reduction="none")
        if cw is not None:
            w = w * cw[target.long()]  # as torch's weighted cross-entropy: weighted mean over cells
        return _weighted_mean(per, w)
    target_energy = target.float() * energy.float()  # the focal share of the measured energy
    diff = pred - target_energy
    return _weighted_mean(diff.square() if kind == "mse" else diff.abs(), w)


def compute_loss(options: LossOptions, out: ModelOutput, batch: PackedBatch) -> torch.Tensor:
    """Training loss of a packed batch: the cell loss plus the model's own regulariser."""
    cell = batch.cell
    return cell_loss(options, out.pred[cell], batch.target[cell], batch.energy[cell]) + out.aux_loss
