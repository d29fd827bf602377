"""What a segmentation model returns, and the output head that makes it for each target."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from raypf.models.layers import tssr

#: Output columns per target: one logit (binary), three logits (three_class), one share (fraction).
OUT_FEATURES = {"binary": 1, "three_class": 3, "fraction": 1}


@dataclass
class ModelOutput:
    """Per-point predictions for every input row, and the model's own regulariser.

    ``pred``: binary logits ``[M]``, three-class logits ``[M, 3]``, or for ``fraction`` the predicted
    focal energy ``[M]`` (GeV); ``fraction``: the predicted focal share of the cell energy (regression
    only). ``aux_loss`` (e.g. the T-Net orthogonality term) is added to the training loss.
    """

    pred: torch.Tensor
    aux_loss: torch.Tensor
    fraction: torch.Tensor | None = None


class OutputHead(nn.Module):
    """Last linear layer; for regression the seed's energy bypass: ``tssr(out) * cell energy``."""

    def __init__(self, in_features: int, target: str) -> None:
        super().__init__()
        if target not in OUT_FEATURES:
            raise ValueError(f"unknown target '{target}'; known: {', '.join(OUT_FEATURES)}")
        self.target = target
        self.linear = nn.Linear(in_features, OUT_FEATURES[target])

    def forward(self, x: torch.Tensor, energy: torch.Tensor, aux_loss: torch.Tensor) -> ModelOutput:
        out = self.linear(x)
        if self.target == "three_class":
            return ModelOutput(out, aux_loss)
        out = out.squeeze(-1)
        if self.target == "binary":
            return ModelOutput(out, aux_loss)
        share = tssr(out.to(torch.promote_types(out.dtype, torch.float32)))
        return ModelOutput(share * energy, aux_loss, fraction=share)
