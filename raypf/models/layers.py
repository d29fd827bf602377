"""Building blocks shared by the point-cloud models."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def tssr(x: torch.Tensor) -> torch.Tensor:
    """Two-sided square root: ``x`` for ``|x| <= 1``, else ``sign(x) * (2 sqrt|x| - 1)``.

    Linear near zero and only square-root growing beyond, so a predicted energy share can exceed 1
    (a cell may measure less than the focal particle left in it) without running away.
    """
    a = x.abs()
    return torch.where(a <= 1, x, torch.sign(x) * (2 * torch.sqrt(a.clamp_min(1)) - 1))


class MaskedBatchNorm(nn.BatchNorm1d):
    """Batch norm over points whose statistics ignore padding rows.

    With ``mask=None`` (packed points: every row is real) this is ``BatchNorm1d``; with a mask the
    batch statistics come from the real rows only, so a padded batch normalises exactly as the
    same points packed.
    """

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        if mask is None or not self.training:
            return super().forward(x)
        real = x[mask]
        mean = real.mean(0)
        var = real.var(0, unbiased=False)
        with torch.no_grad():
            n = real.shape[0]
            self.num_batches_tracked.add_(1)
            m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
            self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), m)
            unbiased = var.detach() * (n / max(n - 1, 1))
            self.running_var.lerp_(unbiased.to(self.running_var.dtype), m)
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias


class SharedMLP(nn.Module):
    """The same Linear -> BatchNorm -> ReLU stack applied to every point (PointNet's kernel-1 convolutions)."""

    def __init__(self, widths: list[int] | tuple[int, ...], in_features: int) -> None:
        super().__init__()
        self.linears = nn.ModuleList()
        self.norms = nn.ModuleList()
        for w in widths:
            self.linears.append(nn.Linear(in_features, w, bias=False))  # the norm's shift is the bias
            self.norms.append(MaskedBatchNorm(w))
            in_features = w
        self.out_features = in_features

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        for linear, norm in zip(self.linears, self.norms):
            x = F.relu(norm(linear(x), mask))
        return x
