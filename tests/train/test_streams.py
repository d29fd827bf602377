"""The plain-process data path: planned row groups read, shuffled and packed in background threads."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch

from raypf.data.batching import DEFAULT_FEATURES, columns_for, pack
from raypf.train.epochs import default_fractions, epoch_plan, read_row_group, row_groups
from raypf.train.streams import prefetch, row_group_batches, shuffled_tables


def test_shuffled_tables_keep_every_row_once_in_full_batches():
    t = pa.table({"i": np.arange(100)})
    parts = [t.slice(i, 10) for i in range(0, 100, 10)]
    out = list(shuffled_tables(parts, 16, 40, np.random.default_rng(0)))
    sizes = [x.num_rows for x in out]
    assert sizes[:-1] == [16] * (len(out) - 1) and sum(sizes) == 100
    got = np.concatenate([x["i"].to_numpy() for x in out])
    assert sorted(got.tolist()) == list(range(100)) and not np.array_equal(got, np.arange(100))


def test_prefetch_passes_errors_to_the_consumer():
    def items():
        yield 1
        raise OSError("disk gone")

    it = prefetch(items())
    assert next(it) == 1
    with pytest.raises(OSError, match="disk gone"):
        next(it)


def test_row_group_batches_pack_the_planned_samples(rho_samples):
    groups = row_groups(str(rho_samples), "train")
    plan = epoch_plan(groups, default_fractions(groups), 96, 0, 0)
    cols = columns_for(DEFAULT_FEATURES)
    batches = list(row_group_batches(plan, cols, 32, 64, 0, DEFAULT_FEATURES, "binary"))
    whole = pack(pa.concat_tables([read_row_group(g, cols) for g in plan]))
    assert sum(b.n_samples for b in batches) == whole.n_samples
    assert sum(b.n_points for b in batches) == whole.n_points
    assert torch.isclose(sum(b.features.double().sum() for b in batches), whole.features.double().sum())
