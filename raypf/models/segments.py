"""Per-sample operations on point clouds, written once for two memory layouts.

``PackedLayout``: all points of a batch concatenated, ``[N, C]``, with a sample
index per point. ``PaddedLayout``: the seed's ``[B, L, C]`` padded to the longest
sample, flattened to ``[B * L, C]``, with a mask. A network body written
against the layout interface (``mask``, ``pool``, ``transform``, ``expand``) runs
unchanged on either, which is how the packed path is checked against the
padded one.

The per-sample T-Net transform on packed points never gathers a ``k x k``
matrix per point (``N * k * k`` numbers, more memory traffic than the rest of
the network): the points are scattered into a ``[B, L, k]`` block, multiplied
per sample with one batched matmul, and gathered back; the block is ``k``
wide, not ``k * k``.
"""

from __future__ import annotations

import torch


def segment_max(x: torch.Tensor, sample: torch.Tensor, n_samples: int) -> torch.Tensor:
    """Max over the points of each sample: ``[N, C] -> [B, C]``."""
    out = x.new_full((n_samples, x.shape[1]), float("-inf"))
    return out.scatter_reduce(0, sample.unsqueeze(1).expand_as(x), x, reduce="amax", include_self=True)


def segment_matmul(x: torch.Tensor, t: torch.Tensor, sample: torch.Tensor, position: torch.Tensor, length: int) -> torch.Tensor:
    """``x[i] @ t[sample[i]]`` for every point: ``[N, k] x [B, k, h] -> [N, h]``."""
    block = x.new_zeros(t.shape[0], length, x.shape[1])
    block[sample, position] = x
    return torch.bmm(block, t.to(block.dtype))[sample, position]


class PackedLayout:
    """Points of ``n_samples`` samples concatenated; ``sample``/``position`` locate each point."""

    def __init__(self, sample: torch.Tensor, position: torch.Tensor, n_samples: int, max_points: int) -> None:
        self.sample, self.position, self.n_samples, self.max_points = sample, position, n_samples, max_points
        self.mask = None  # every row is a real point

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        return segment_max(x, self.sample, self.n_samples)

    def transform(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return segment_matmul(x, t, self.sample, self.position, self.max_points)

    def expand(self, g: torch.Tensor) -> torch.Tensor:
        """Per-sample rows ``[B, C]`` repeated onto each sample's points ``[N, C]``."""
        return g[self.sample]


class PaddedLayout:
    """``B`` samples padded to ``L`` points, rows flattened to ``[B * L, C]``; padding is masked out."""

    def __init__(self, mask: torch.Tensor) -> None:
        self.n_samples, self.length = mask.shape
        self.mask = mask.reshape(-1)
        self._mask3 = mask.unsqueeze(-1)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        x = x.view(self.n_samples, self.length, -1)
        return x.masked_fill(~self._mask3, float("-inf")).amax(dim=1)

    def transform(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x = x.view(self.n_samples, self.length, -1)
        return torch.bmm(x, t.to(x.dtype)).reshape(self.n_samples * self.length, -1)

    def expand(self, g: torch.Tensor) -> torch.Tensor:
        return g.unsqueeze(1).expand(-1, self.length, -1).reshape(self.n_samples * self.length, -1)
