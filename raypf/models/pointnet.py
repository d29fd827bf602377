"""PointNet segmentation (Qi et al. 2017; ``001_*``) on packed or padded point clouds.

Input T-Net -> shared MLP -> feature T-Net -> shared MLP -> max pool per
sample -> segmentation head on [point feature, global feature]. The head's
first layer is split into a per-point part and a per-sample part: ``W [l; g] =
W_l l + W_g g``, and ``W_g g`` is computed once per sample and broadcast, which
is the same function as the seed's concatenation without a 1024-wide product
per point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from raypf.data.batching import PackedBatch, PaddedBatch
from raypf.models.heads import ModelOutput, OutputHead
from raypf.models.layers import MaskedBatchNorm, SharedMLP
from raypf.models.registry import register_model
from raypf.models.segments import PackedLayout, PaddedLayout


@dataclass(frozen=True)
class PointNetOptions:
    """Widths follow PointNet's segmentation network; T-Nets and widths are configurable."""

    input_tnet: bool = True
    feature_tnet: bool = True
    point_widths: tuple[int, ...] = (64, 64)
    global_widths: tuple[int, ...] = (64, 128, 1024)
    head_widths: tuple[int, ...] = (512, 256, 128)
    tnet_widths: tuple[int, ...] = (64, 128, 1024)
    tnet_fc_widths: tuple[int, ...] = (512, 256)
    dropout: float = 0.3
    orthogonal_weight: float = 1e-3

    def __post_init__(self) -> None:
        for name in ("point_widths", "global_widths", "head_widths", "tnet_widths", "tnet_fc_widths"):
            if any(w < 1 for w in getattr(self, name)):
                raise ValueError(f"model.options.{name}: widths must be positive, got {list(getattr(self, name))}")
        for name in ("global_widths", "head_widths", "tnet_widths"):
            if not getattr(self, name):
                raise ValueError(f"model.options.{name}: needs at least one layer")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"model.options.dropout: must be in [0, 1), got {self.dropout}")
        if self.orthogonal_weight < 0:
            raise ValueError(f"model.options.orthogonal_weight: must be >= 0, got {self.orthogonal_weight}")


class InputNorm(nn.Module):
    """Standardise each feature with the statistics of the point's type (buffers: move with the model)."""

    def __init__(self, in_features: int, norm: tuple[np.ndarray, np.ndarray] | None) -> None:
        super().__init__()
        mean, std = norm if norm is not None else (np.zeros((3, in_features)), np.ones((3, in_features)))
        mean, std = np.asarray(mean, dtype=np.float32), np.asarray(std, dtype=np.float32)
        if mean.shape != (3, in_features) or std.shape != (3, in_features):
            raise ValueError(f"normalisation must be two [3, {in_features}] arrays, got {mean.shape} and {std.shape}")
        self.register_buffer("mean", torch.from_numpy(mean))
        self.register_buffer("inv_std", torch.from_numpy(1.0 / std))

    def forward(self, x: torch.Tensor, point_type: torch.Tensor) -> torch.Tensor:
        return (x - self.mean[point_type]) * self.inv_std[point_type]


class TNet(nn.Module):
    """Predicts one ``k x k`` transform per sample, starting at the identity."""

    def __init__(self, k: int, widths: tuple[int, ...], fc_widths: tuple[int, ...]) -> None:
        super().__init__()
        self.k = k
        self.mlp = SharedMLP(widths, k)
        layers: list[nn.Module] = []
        width = self.mlp.out_features
        for w in fc_widths:
            layers += [nn.Linear(width, w, bias=False), nn.BatchNorm1d(w), nn.ReLU()]
            width = w
        self.fc = nn.Sequential(*layers)
        self.out = nn.Linear(width, k * k)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.register_buffer("eye", torch.eye(k).reshape(1, k * k))

    def forward(self, x: torch.Tensor, layout) -> torch.Tensor:
        g = self.fc(layout.pool(self.mlp(x, layout.mask)))
        return (self.out(g) + self.eye).view(-1, self.k, self.k)


def orthogonality(t: torch.Tensor) -> torch.Tensor:
    """Mean over samples of ``|T T^T - I|_F^2``: keeps the feature transform close to a rotation."""
    t = t.float()
    eye = torch.eye(t.shape[-1], device=t.device)
    return (torch.bmm(t, t.transpose(1, 2)) - eye).square().sum(dim=(1, 2)).mean()


@register_model("pointnet", PointNetOptions)
class PointNet(nn.Module):
    def __init__(
        self, options: PointNetOptions, in_features: int, target: str, norm: tuple[np.ndarray, np.ndarray] | None = None
    ) -> None:
        super().__init__()
        o = self.options = options
        self.norm = InputNorm(in_features, norm)
        self.input_tnet = TNet(in_features, o.tnet_widths, o.tnet_fc_widths) if o.input_tnet else None
        self.point_mlp = SharedMLP(o.point_widths, in_features)
        local = self.point_mlp.out_features
        self.feature_tnet = TNet(local, o.tnet_widths, o.tnet_fc_widths) if o.feature_tnet else None
        self.global_mlp = SharedMLP(o.global_widths, local)
        first, *rest = o.head_widths
        self.head_local = nn.Linear(local, first, bias=False)
        self.head_global = nn.Linear(self.global_mlp.out_features, first, bias=False)
        self.head_norm = MaskedBatchNorm(first)
        self.head = SharedMLP(rest, first)
        self.dropout = nn.Dropout(o.dropout)
        self.out = OutputHead(self.head.out_features, target)

    def body(self, x: torch.Tensor, point_type: torch.Tensor, energy: torch.Tensor, layout) -> ModelOutput:
        """The network on rows ``[M, F]`` of either layout."""
        mask = layout.mask
        x = self.norm(x, point_type)
        aux = x.new_zeros((), dtype=torch.float32)
        for tnet, mlp in ((self.input_tnet, self.point_mlp), (self.feature_tnet, None)):
            if tnet is not None:
                t = tnet(x, layout)
                x = layout.transform(x, t)
                aux = aux + orthogonality(t)
            if mlp is not None:
                x = mlp(x, mask)
        g = layout.pool(self.global_mlp(x, mask))
        h = self.head_local(x) + layout.expand(self.head_global(g))
        h = self.head(F.relu(self.head_norm(h, mask)), mask)
        return self.out(self.dropout(h), energy, aux * self.options.orthogonal_weight)

    def forward(self, batch: PackedBatch) -> ModelOutput:
        layout = PackedLayout(batch.sample, batch.position, batch.n_samples, batch.max_points)
        return self.body(batch.features, batch.point_type, batch.energy, layout)

    def forward_padded(self, batch: PaddedBatch) -> ModelOutput:
        """The same network on padded samples; outputs are ``[B, L, ...]``, padding rows meaningless."""
        b, length, f = batch.features.shape
        layout = PaddedLayout(batch.mask)
        out = self.body(batch.features.reshape(b * length, f), batch.point_type.reshape(-1), batch.energy.reshape(-1), layout)
        shape = (b, length)
        return ModelOutput(
            out.pred.reshape(*shape, *out.pred.shape[1:]),
            out.aux_loss,
            None if out.fraction is None else out.fraction.reshape(shape),
        )
