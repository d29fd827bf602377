"""Packed batches streamed from the samples dataset with pyarrow alone (no Ray).

For evaluation and for machines without Ray: reads one split (and optionally
some sets) of a dataset directory record batch by record batch, so memory
holds one batch, not the dataset. Training's sampled epochs go through Ray
Data instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads

from raypf.data.batching import DEFAULT_FEATURES, PackedBatch, columns_for, pack
from raypf.data.parquet_out import METADATA


def read_metadata(dataset_dir: str | Path) -> dict:
    """The metadata JSON beside the samples; a clear error if ``dataset_dir`` is not a samples dataset."""
    path = Path(dataset_dir) / METADATA
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{dataset_dir}: no {METADATA}; not a samples dataset written by raypf preprocess") from None


def open_split(dataset_dir: str | Path, split: str, sets: list[str] | None = None) -> pads.Dataset:
    ds = pads.dataset(str(dataset_dir), format="parquet", partitioning="hive", exclude_invalid_files=True)
    expr = pads.field("split") == split
    if sets:
        expr = expr & pads.field("set").isin(sets)
    return ds.filter(expr)


def iter_packed(
    dataset_dir: str | Path,
    split: str,
    samples_per_batch: int,
    features: tuple[str, ...] | list[str] = DEFAULT_FEATURES,
    target: str = "binary",
    sets: list[str] | None = None,
) -> Iterator[PackedBatch]:
    """Packed batches of ``samples_per_batch`` samples (the last may be smaller), in file order."""
    ds = open_split(dataset_dir, split, sets)
    pending: list[pa.RecordBatch] = []
    rows = 0
    for rb in ds.to_batches(columns=columns_for(features), batch_size=samples_per_batch):
        pending.append(rb)
        rows += rb.num_rows
        while rows >= samples_per_batch:
            table = pa.Table.from_batches(pending)
            yield pack(table.slice(0, samples_per_batch), features, target)
            rest = table.slice(samples_per_batch)
            pending, rows = rest.to_batches(), rest.num_rows
    if rows:
        yield pack(pa.Table.from_batches(pending), features, target)
