"""Streaming packed batches from a samples dataset with pyarrow alone."""

from __future__ import annotations

import pytest
import torch

from raypf.data.batching import DEFAULT_FEATURES, columns_for, pack
from raypf.data.parquet_batches import iter_packed, open_split, read_metadata


def test_batches_cover_the_split_once_in_order(rho_samples):
    table = open_split(rho_samples, "train").to_table(columns=columns_for(DEFAULT_FEATURES))
    batches = list(iter_packed(rho_samples, "train", 50))
    assert [b.n_samples for b in batches[:-1]] == [50] * (len(batches) - 1)
    assert 0 < batches[-1].n_samples <= 50
    assert sum(b.n_samples for b in batches) == table.num_rows == read_metadata(rho_samples)["counts"]["samples"]["train"]
    whole = pack(table)
    assert torch.equal(torch.cat([b.features for b in batches]), whole.features)
    assert torch.equal(torch.cat([b.target for b in batches]), whole.target)


def test_set_filter_and_missing_metadata(rho_samples, tmp_path):
    assert list(iter_packed(rho_samples, "train", 50, sets=["JZ2"])) == []
    assert sum(b.n_samples for b in iter_packed(rho_samples, "test", 50, sets=["rho"])) == open_split(rho_samples, "test").count_rows()
    with pytest.raises(FileNotFoundError, match="not a samples dataset"):
        read_metadata(tmp_path)
