"""Epoch plans: fractions, determinism, no repeats, replay; the schedule, freezing and early stopping."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise

import pytest
import torch

from raypf.train.epochs import RowGroup, epoch_plan, replay_fractions
from raypf.train.loop import EarlyStopping, OptimOptions, freeze, lr_factor


def _groups(n_a: int = 40, n_b: int = 10, rows: int = 16) -> dict[str, list[RowGroup]]:
    return {
        "A": [RowGroup(f"a{i // 4}.parquet", i % 4, rows, "A") for i in range(n_a)],
        "B": [RowGroup(f"b{i}.parquet", 0, rows, "B") for i in range(n_b)],
    }


def test_plan_follows_the_mix_and_is_a_function_of_seed_and_epoch():
    g = _groups()
    plan = epoch_plan(g, {"A": 0.75, "B": 0.25}, 128, epoch=3, seed=5)
    counts = Counter(x.set for x in plan)
    assert counts == {"A": 6, "B": 2}  # 96 and 32 samples in row groups of 16
    assert plan == epoch_plan(g, {"A": 0.75, "B": 0.25}, 128, epoch=3, seed=5)
    assert plan != epoch_plan(g, {"A": 0.75, "B": 0.25}, 128, epoch=3, seed=6)


def test_epochs_continue_through_the_set_before_repeating():
    g = _groups()
    seen = [x for e in range(5) for x in epoch_plan(g, {"A": 1.0}, 128, epoch=e, seed=0)]  # 8 row groups each
    assert len(seen) == 40 and len(set(seen)) == 40  # one full pass, nothing twice
    for e in range(30):  # and across passes nothing comes back within half a pass (20 row groups)
        this, nxt = epoch_plan(g, {"A": 1.0}, 128, e, 0), epoch_plan(g, {"A": 1.0}, 128, e + 1, 0)
        assert len(set(this)) == len(this) and not set(this) & set(nxt)


def test_unknown_set_is_named():
    with pytest.raises(ValueError, match="set 'JZ4' has no samples"):
        epoch_plan(_groups(), {"JZ4": 1.0}, 64, 0, 0)


def test_replay_share_decays_linearly_to_the_floor():
    f = [replay_fractions({"JZ3": 1.0}, {"rho": 1.0}, start=0.5, decay_per_epoch=0.2, floor=0.1, epoch=e) for e in range(4)]
    assert [round(x["rho"], 6) for x in f] == [0.5, 0.3, 0.1, 0.1]
    assert all(abs(sum(x.values()) - 1) < 1e-12 for x in f)


def test_learning_rate_warms_up_then_decays_to_the_floor():
    o = OptimOptions(lr=1.0, warmup_epochs=1, min_lr_ratio=0.1)
    f = [lr_factor(s, 10, 5, o) for s in range(50)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert f[10] == pytest.approx(1.0) and f[-1] == pytest.approx(0.1, abs=5e-3)
    assert lr_factor(50, 10, 5, o) == pytest.approx(0.1)  # the floor at the end of the last epoch
    assert all(a >= b for a, b in pairwise(f[10:]))
    assert lr_factor(30, 10, 5, OptimOptions(schedule="constant")) == 1.0


def test_freeze_by_prefix_and_unknown_prefix():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    assert freeze(model, ["0."]) == 2
    assert [p.requires_grad for p in model.parameters()] == [False, False, True, True]
    with pytest.raises(ValueError, match="no parameter starts with 'head'"):
        freeze(model, ["head"])


def test_early_stopping_counts_epochs_without_improvement():
    stop = EarlyStopping("val_f1", "max", patience=2)
    flags = [stop.update(e, {"val_f1": v}) for e, v in enumerate([0.1, 0.3, 0.2, 0.25])]
    assert flags == [True, True, False, False]
    assert not stop.should_stop(2) and stop.should_stop(3)
    assert EarlyStopping("val_loss", "min", None).update(0, {"val_loss": 1.0})
    with pytest.raises(KeyError, match="val_auc"):
        EarlyStopping("val_auc", "max", 1).update(0, {"val_f1": 0.1})
