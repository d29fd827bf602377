"""PointNet on packed points: same answer as padded, permutation equivariant, built by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from raypf.data.batching import CELL, PackedBatch, segment_index, to_padded
from raypf.models import build_model, model_names
from raypf.models.layers import tssr
from raypf.models.pointnet import orthogonality

SMALL = {"point_widths": [16, 16], "global_widths": [16, 32], "head_widths": [32, 16], "tnet_widths": [16, 32],
         "tnet_fc_widths": [16], "dropout": 0.0}  # fmt: skip


def random_batch(counts, n_features=13, target="binary", seed=0) -> PackedBatch:
    g = np.random.default_rng(seed)
    counts = np.asarray(counts)
    n = int(counts.sum())
    offsets, sample, position = segment_index(counts)
    ptype = g.integers(0, 3, n)
    ptype[offsets[:-1]] = 1  # every sample has its focal track
    cell = ptype == CELL
    if target == "three_class":
        y = torch.from_numpy(g.integers(0, 3, n))
    elif target == "fraction":
        y = torch.from_numpy(g.random(n).astype(np.float32))
    else:
        y = torch.from_numpy(g.integers(0, 2, n))
    return PackedBatch(
        features=torch.from_numpy(g.normal(size=(n, n_features)).astype(np.float32)),
        point_type=torch.from_numpy(ptype),
        sample=torch.from_numpy(sample),
        position=torch.from_numpy(position),
        offsets=torch.from_numpy(offsets),
        energy=torch.from_numpy(np.where(cell, g.exponential(1.0, n), 0).astype(np.float32)),
        cell=torch.from_numpy(cell),
        target=y,
        truth_focal=torch.zeros(n),
        truth_total=torch.zeros(n),
        max_points=int(counts.max()),
    )


def _model(target, **options):
    torch.manual_seed(3)
    model = build_model("pointnet", {**SMALL, **options}, in_features=13, target=target)
    for tnet in (model.input_tnet, model.feature_tnet):
        if tnet is not None:  # away from the identity it starts at, so the transforms matter
            torch.nn.init.normal_(tnet.out.weight, std=0.05)
    return model


@pytest.mark.parametrize("target", ["binary", "three_class", "fraction"])
@pytest.mark.parametrize("training", [True, False])
def test_packed_and_padded_give_the_same_outputs_and_gradients(target, training):
    batch = random_batch([7, 31, 2, 64, 15], target=target)
    batch = PackedBatch(**{**batch.__dict__, "features": batch.features.double(), "energy": batch.energy.double()})
    model = _model(target).double().train(training)  # float64: a tight comparison of the two layouts
    params = list(model.parameters())
    # each backward runs before the next forward: a training forward updates the running statistics in place
    packed = model(batch)
    g1 = torch.autograd.grad(packed.pred.square().sum() + packed.aux_loss, params) if training else None
    padded = model.forward_padded(to_padded(batch, length=80))
    got = padded.pred[batch.sample, batch.position]
    torch.testing.assert_close(got, packed.pred, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(padded.aux_loss, packed.aux_loss, rtol=1e-9, atol=1e-12)
    if training:  # the masked batch norm sees the same points, so the gradients agree too
        g2 = torch.autograd.grad(got.square().sum() + padded.aux_loss, params)
        for a, b in zip(g1, g2):
            torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)


def test_padding_content_does_not_leak():
    batch = random_batch([5, 9, 3])
    model = _model("binary").train()
    padded = to_padded(batch, length=12)
    ref = model.forward_padded(padded).pred[padded.mask]
    padded.features[~padded.mask] = 1e4
    torch.testing.assert_close(model.forward_padded(padded).pred[padded.mask], ref)


@pytest.mark.parametrize("training", [True, False])
def test_shuffling_points_within_samples_permutes_the_outputs(training):
    batch = random_batch([12, 40, 5, 23], target="three_class")
    model = _model("three_class").train(training)
    out = model(batch).pred
    g = torch.Generator().manual_seed(1)
    perm = torch.cat([torch.randperm(n, generator=g) + int(o) for o, n in zip(batch.offsets[:-1], batch.offsets.diff())])
    shuffled = PackedBatch(
        **{
            **batch.__dict__,
            **{k: getattr(batch, k)[perm] for k in ("features", "point_type", "energy", "cell", "target", "truth_focal", "truth_total")},
        }
    )
    torch.testing.assert_close(model(shuffled).pred, out[perm], rtol=1e-4, atol=1e-5)
    # and a sample's outputs do not depend on the other samples (eval: fixed batch-norm statistics)
    if not training:
        alone = random_batch([12], target="three_class")
        alone = PackedBatch(**{**alone.__dict__, **{k: getattr(batch, k)[:12] for k in ("features", "point_type", "energy", "cell", "target")}})
        torch.testing.assert_close(model(alone).pred, out[:12], rtol=1e-4, atol=1e-5)


def test_regression_head_is_the_energy_bypass():
    batch = random_batch([10, 20], target="fraction")
    out = _model("fraction").eval()(batch)
    torch.testing.assert_close(out.pred, out.fraction * batch.energy)
    assert torch.all(out.pred[~batch.cell] == 0)


def test_tssr_is_linear_then_square_root():
    x = torch.tensor([-9.0, -1.0, -0.5, 0.0, 0.3, 1.0, 4.0])
    assert tssr(x).tolist() == pytest.approx([-5.0, -1.0, -0.5, 0.0, 0.3, 1.0, 3.0])
    x.requires_grad_(True)
    tssr(x).sum().backward()
    assert x.grad.tolist() == pytest.approx([1 / 3, 1, 1, 1, 1, 1, 0.5])


def test_orthogonality_is_zero_for_rotations():
    c, s = np.cos(0.3), np.sin(0.3)
    rot = torch.tensor([[[c, -s], [s, c]]], dtype=torch.float32)
    assert orthogonality(rot).item() == pytest.approx(0.0, abs=1e-6)
    assert orthogonality(2 * rot).item() == pytest.approx(2 * 9.0)  # (4 - 1)^2 on each diagonal entry


def test_tnets_and_widths_are_configurable():
    batch = random_batch([6, 9])
    bare = build_model("pointnet", {**SMALL, "input_tnet": False, "feature_tnet": False}, 13, "binary")
    assert bare.input_tnet is None and bare.feature_tnet is None
    assert bare(batch).aux_loss.item() == 0.0
    full = build_model("pointnet", {}, 13, "three_class")
    assert full(batch).pred.shape == (batch.n_points, 3)
    assert sum(p.numel() for p in full.parameters()) > 10 * sum(p.numel() for p in bare.parameters())


def test_registry_names_and_errors():
    assert "pointnet" in model_names()
    with pytest.raises(ValueError, match="unknown model 'pointnet2'"):
        build_model("pointnet2", {}, 13, "binary")
    with pytest.raises(ValueError, match=r"model.options: unknown key\(s\) \['widths'\]"):
        build_model("pointnet", {"widths": [1]}, 13, "binary")
    with pytest.raises(ValueError, match="model.options.dropout: expected a number"):
        build_model("pointnet", {"dropout": "high"}, 13, "binary")
    with pytest.raises(ValueError, match=r"model.options.head_widths.1: expected an integer"):
        build_model("pointnet", {"head_widths": [64, 1.5]}, 13, "binary")
    with pytest.raises(ValueError, match="dropout: must be in"):
        build_model("pointnet", {"dropout": 1.0}, 13, "binary")
    with pytest.raises(ValueError, match="unknown target"):
        build_model("pointnet", {}, 13, "energy")
    with pytest.raises(ValueError, match=r"\[3, 13\]"):
        build_model("pointnet", {}, 13, "binary", norm=(np.zeros((3, 12)), np.ones((3, 12))))


def test_input_normalisation_is_per_point_type():
    batch = random_batch([30, 30])
    mean = np.random.default_rng(0).normal(size=(3, 13)).astype(np.float32)
    std = np.random.default_rng(1).uniform(0.5, 2, size=(3, 13)).astype(np.float32)
    normed = build_model("pointnet", SMALL, 13, "binary", norm=(mean, std)).eval()
    plain = build_model("pointnet", SMALL, 13, "binary").eval()
    plain.load_state_dict({k: v for k, v in normed.state_dict().items() if not k.startswith("norm.")}, strict=False)
    pt = batch.point_type
    shifted = PackedBatch(**{**batch.__dict__, "features": (batch.features - torch.from_numpy(mean)[pt]) / torch.from_numpy(std)[pt]})
    torch.testing.assert_close(normed(batch).pred, plain(shifted).pred, rtol=1e-4, atol=1e-5)
