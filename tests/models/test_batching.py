"""Packed batches from sample rows: features, masks, labels, padding and normalisation."""

from __future__ import annotations

import pyarrow as pa
import pytest
import torch

from raypf.data.batching import (
    CELL,
    DEFAULT_FEATURES,
    FOCAL,
    OTHER,
    columns_for,
    feature_norm,
    feature_width,
    pack,
    to_padded,
)


def _table(rows: list[dict]) -> pa.Table:
    names = sorted({k for r in rows for k in r})
    return pa.table({k: [r[k] for r in rows] for k in names})


def _row(ptype, energy, focal, other, untracked, **extra):
    n = len(ptype)
    base = {
        "point_type": pa.array(ptype, pa.int8()).to_pylist(),
        "energy": energy,
        "truth_focal": focal,
        "truth_other_tracked": other,
        "truth_untracked": untracked,
        "truth_total": [a + b + c for a, b, c in zip(focal, other, untracked)],
    }
    for name in ("delta_r", "track", "x", "y", "z", "chi2_ndof", "sigma", "dist_focal"):
        base[name] = extra.get(name, [float(i + 1) for i in range(n)])
    return base




def _rows():
    focal = [0.0, 1.5, 0.2, 0.0, 0.0]
    other = [0.0, 0.5, 0.6, 0.0, 0.0]
    untracked = [0.0, 0.0, 0.2, 0.0, 0.0]
    a = _row([FOCAL, CELL, CELL, CELL, OTHER], [20.0, 2.0, 1.0, -0.1, 7.0], focal, other, untracked)
    b = _row([FOCAL, CELL, CELL], [5.0, 0.3, 0.4], [0.0, 0.1, 0.0], [0.0, 0.0, 0.0], [0.0, 0.3, 0.5])
    return [a, b]


def test_pack_concatenates_points_with_sample_index_and_offsets():
    batch = pack(_table(_rows()))
    assert batch.n_samples == 2 and batch.n_points == 8 and batch.max_points == 5
    assert batch.offsets.tolist() == [0, 5, 8]
    assert batch.sample.tolist() == [0, 0, 0, 0, 0, 1, 1, 1]
    assert batch.position.tolist() == [0, 1, 2, 3, 4, 0, 1, 2]
    assert batch.cell.tolist() == [False, True, True, True, False, False, True, True]
    assert batch.energy.tolist() == pytest.approx([0, 2.0, 1.0, -0.1, 0, 0, 0.3, 0.4])


def test_features_follow_the_seed_inputs_with_type_masks():
    batch = pack(_table(_rows()))
    assert batch.features.shape == (8, feature_width(DEFAULT_FEATURES)) == (8, 13)
    x = batch.features.numpy()
    # one-hot point type first
    assert x[:, :3].argmax(1).tolist() == [FOCAL, CELL, CELL, CELL, OTHER, FOCAL, CELL, CELL]
    names = [f for f in DEFAULT_FEATURES if f != "point_type"]
    col = {name: x[:, 3 + i] for i, name in enumerate(names)}
    assert col["cell_energy"].tolist() == pytest.approx([0, 2.0, 1.0, -0.1, 0, 0, 0.3, 0.4])
    assert col["track_pt"].tolist() == pytest.approx([20.0, 0, 0, 0, 7.0, 5.0, 0, 0])
    assert col["sigma"][[0, 4, 5]].tolist() == [0, 0, 0]  # cells only
    assert col["chi2_ndof"][[1, 2, 3]].tolist() == [0, 0, 0]  # tracks only
    assert col["delta_r"].tolist() == [1, 2, 3, 4, 5, 1, 2, 3]


def test_labels_for_every_target():
    t = _table(_rows())
    assert pack(t, target="binary").target.tolist() == [0, 1, 0, 0, 0, 0, 0, 0]
    # 3 classes: 0 neutral/noise, 1 focal, 2 other charged
    assert pack(t, target="three_class").target.tolist() == [0, 1, 2, 0, 0, 0, 0, 0]
    frac = pack(t, target="fraction").target.numpy()
    assert frac.tolist() == pytest.approx([0, 0.75, 0.2, 0, 0, 0, 0.25, 0])


def test_pack_reads_sliced_and_chunked_tables_and_names_bad_columns():
    t = _table(_rows() * 3)
    whole = pack(t)
    part = pack(pa.concat_tables([t.slice(1, 2), t.slice(3, 3)]))  # rows 1-5, two chunks
    assert torch.equal(part.features, whole.features[5:])
    with pytest.raises(KeyError, match="no column 'sigma'"):
        pack(t.drop(["sigma"]))
    bad = t.set_column(t.column_names.index("x"), "x", pa.array([[1.0]] * 6))
    with pytest.raises(ValueError, match="'x'"):
        pack(bad)
    with pytest.raises(ValueError, match="unknown feature"):
        pack(t, features=["x", "energy_density"])
    assert "sigma" in columns_for(DEFAULT_FEATURES) and "truth_total" in columns_for(["x"])


def test_padding_puts_every_point_back_in_its_slot():
    batch = pack(_table(_rows()))
    padded = to_padded(batch, length=6)
    assert padded.features.shape == (2, 6, 13)
    assert padded.mask.sum(1).tolist() == [5, 3]
    assert torch.equal(padded.features[batch.sample, batch.position], batch.features)
    assert padded.features[1, 3:].abs().sum() == 0
    with pytest.raises(ValueError, match="shorter"):
        to_padded(batch, length=4)


def test_feature_norm_uses_each_point_types_statistics():
    stats = {
        "cell": {"energy": {"count": 10, "mean": 0.5, "std": 2.0}, "x": {"count": 10, "mean": 100.0, "std": 0.0}},
        "focal_track": {"energy": {"count": 2, "mean": 20.0, "std": 5.0}},
    }
    mean, std = feature_norm({"feature_stats": {"by_point_type": stats}}, ["point_type", "x", "cell_energy", "track_pt"])
    assert mean.shape == std.shape == (3, 6)
    assert mean[:, :3].tolist() == [[0] * 3] * 3 and std[:, :3].tolist() == [[1] * 3] * 3
    assert (mean[CELL, 3], std[CELL, 3]) == (100.0, 1.0)  # constant: centred only
    assert (mean[CELL, 4], std[CELL, 4]) == (0.5, 2.0)  # cell energy with cell statistics
    assert (mean[FOCAL, 4], std[FOCAL, 4]) == (0.0, 1.0)  # a track has no cell energy
    assert (mean[FOCAL, 5], std[FOCAL, 5]) == (20.0, 5.0)  # track pT with focal-track statistics
    assert (mean[OTHER, 5], std[OTHER, 5]) == (0.0, 1.0)  # no statistics for that type
    with pytest.raises(KeyError, match="feature_stats"):
        feature_norm({}, ["x"])
