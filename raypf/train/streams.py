"""From Arrow tables of sample rows to a stream of packed batches, shuffled across row groups.

Used by the plain single-process path; the Ray workers get the same
shuffling and batching from Ray Data (``iter_batches`` with a local shuffle
buffer) and only pack. Imports only numpy, pyarrow and torch.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from itertools import chain

import numpy as np
import pyarrow as pa

from raypf.data.batching import PackedBatch, pack
from raypf.train.epochs import RowGroup, read_row_group

_END = object()


def prefetch(items: Iterable, depth: int = 4) -> Iterator:
    """Run ``items`` in a background thread, ``depth`` ahead (pyarrow decoding releases the GIL)."""
    q: queue.Queue = queue.Queue(maxsize=depth)

    def work() -> None:
        try:
            for item in items:
                q.put(item)
        except BaseException as err:  # noqa: BLE001 (re-raised in the consumer)
            q.put(err)
        q.put(_END)

    threading.Thread(target=work, daemon=True).start()
    while (item := q.get()) is not _END:
        if isinstance(item, BaseException):
            raise item
        yield item


def shuffled_tables(tables: Iterable[pa.Table], batch_size: int, buffer: int, rng: np.random.Generator) -> Iterator[pa.Table]:
    """Tables of ``batch_size`` rows, rows permuted within a buffer of about ``buffer`` rows (last one may be short)."""
    pending: list[pa.Table] = []
    rows = 0
    target = max(buffer, batch_size)
    for t in chain(tables, [None]):  # None: the input is exhausted, flush everything
        if t is not None:
            pending.append(t)
            rows += t.num_rows
            if rows < target:
                continue
        if not rows:
            return
        big = pa.concat_tables(pending).take(rng.permutation(rows))
        end = rows if t is None else rows // batch_size * batch_size
        for i in range(0, end, batch_size):
            yield big.slice(i, min(batch_size, end - i))
        rest = big.slice(end)
        pending, rows = [rest], rest.num_rows


def row_group_batches(
    groups: list[RowGroup], columns: list[str], batch_size: int, buffer: int, seed: int, features, target: str
) -> Iterator[PackedBatch]:
    """Packed batches from row groups, read, shuffled and packed in background threads ahead of the training step."""
    tables = prefetch(read_row_group(g, columns) for g in groups)
    shuffled = shuffled_tables(tables, batch_size, buffer, np.random.default_rng(seed))
    return prefetch((pack(t, features, target) for t in shuffled), depth=4)
