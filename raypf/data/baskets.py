"""Decoding object-streamed nested ``std::vector`` baskets faster than uproot's AwkwardForth.

MLTree's per-cell branches (``vector<vector<T>>``) and per-cell-per-particle
truth branches (``vector<vector<vector<T>>>``) are streamed object-wise: each
entry is a 6-byte header (byte count, version) and then, level by level, a
big-endian int32 count followed by that many children, with no headers for
inner vectors. Where each inner vector starts depends on every count before
it, so the decoding is inherently sequential and cannot be vectorised with
numpy; it is the one loop in the reader, compiled C (``raypf_kernels.c``). uproot reads
the TTree metadata; ``basket_io`` the baskets themselves. With
decompression, a 2,430-event rho range reads 1.5x (cell IDs) to 8x (truth
lists) faster than through uproot's AwkwardForth path.

The decoder returns per-level offsets and the values byte-swapped to native
order (copied as stored, then swapped in one numpy pass); the caller views them
with the branch's dtype. Every entry's byte count is
checked against the basket's entry offsets, so a corrupt basket is an error,
not garbage.
"""

from __future__ import annotations

import numpy as np

import raypf_kernels as _kernels

#: Error codes of the decoder (>= 0 means success: the number of value bytes).
BAD_HEADER = -1
BAD_COUNT = -2
OVERRUN = -3


def decode(
    data: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    depth: int,
    itemsize: int,
    offsets: np.ndarray,
    fill: np.ndarray,
    values: np.ndarray,
) -> tuple[int, int]:
    """Decode the entries at ``data[starts[e]:ends[e]]``, nested vectors ``depth`` deep (compiled: ``raypf_kernels.c``).

    ``offsets`` (depth x capacity, int64, column 0 zero) receives each level's running
    totals, ``fill`` (depth) how many lists of each level were read, and ``values`` the
    value bytes as stored (big-endian; ``decode_entries`` swaps them in one pass). Returns
    (number of value bytes or an error code, entry index of the error).

    The lists holding the values (the leaves) are read in one tight loop per parent list:
    a run of values is copied in bulk, and an empty leaf (most cells' truth lists) takes a
    predictable branch rather than a step whose length depends on the count just loaded.
    """
    return _kernels.decode(data, starts, ends, int(depth), int(itemsize), offsets, fill, values)


def decode_entries(
    data: np.ndarray, entry_offsets: np.ndarray, depth: int, itemsize: int, entry_ends: np.ndarray | None = None
) -> tuple[list[np.ndarray], np.ndarray]:
    """Offsets per level (each from 0) and native-order value bytes of the entries at ``entry_offsets``.

    Entry e spans ``entry_offsets[e]`` to ``entry_offsets[e + 1]``, or, given ``entry_ends`` (as many
    as the offsets), to ``entry_ends[e]``: entries of several baskets decompressed into one array,
    with each basket's offset table between them. Raises ValueError saying what is wrong and at
    which entry (relative to the offsets).
    """
    starts = np.asarray(entry_offsets, dtype=np.int64)
    if entry_ends is None:
        starts, ends = starts[:-1], starts[1:]
    else:
        ends = np.asarray(entry_ends, dtype=np.int64)
        if len(ends) != len(starts):
            raise ValueError(f"{len(starts)} entry starts but {len(ends)} ends")
    span = int((ends - starts).sum()) if len(starts) else 0
    offsets = np.empty((depth, span // 4 + 2), dtype=np.int64)
    fill = np.zeros(depth, dtype=np.int64)
    values = np.empty(max(span, 0), dtype=np.uint8)
    nv, bad = decode(data, starts, ends, depth, itemsize, offsets, fill, values)
    if nv < 0:
        what = {BAD_HEADER: "entry size disagrees with its header", BAD_COUNT: "negative count", OVERRUN: "counts run past the entry"}
        raise ValueError(f"{what[nv]} at entry {bad}")
    raw = values[:nv]
    if itemsize > 1:  # big-endian to native, vectorised over every value at once
        raw.view(f">u{itemsize}").byteswap(inplace=True)
    return [offsets[level, : fill[level] + 1] for level in range(depth)], raw
