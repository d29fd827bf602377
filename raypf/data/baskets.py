"""Decoding object-streamed nested ``std::vector`` baskets ten times faster than uproot's AwkwardForth.

MLTree's per-cell branches (``vector<vector<T>>``) and per-cell-per-particle
truth branches (``vector<vector<vector<T>>>``) are streamed object-wise: each
entry is a 6-byte header (byte count, version) and then, level by level, a
big-endian int32 count followed by that many children, with no headers for
inner vectors. Where each inner vector starts depends on every count before
it, so the decoding is inherently sequential and cannot be vectorised with
numpy; it is the one loop in the reader, compiled with numba. uproot still
does everything else: the file, the TTree metadata, decompression.

The decoder returns per-level offsets and the values byte-swapped to native
order; the caller views them with the branch's dtype. Every entry's byte count is
checked against the basket's entry offsets, so a corrupt basket is an error,
not garbage.
"""

from __future__ import annotations

import numba
import numpy as np

#: Error codes of the decoders (>= 0 means success: the number of values).
BAD_HEADER = -1
BAD_COUNT = -2
OVERRUN = -3


@numba.njit(cache=True, nogil=True)
def _int32(data: np.ndarray, p: int) -> int:
    return (np.int32(data[p]) << 24) | (np.int32(data[p + 1]) << 16) | (np.int32(data[p + 2]) << 8) | np.int32(data[p + 3])


@numba.njit(cache=True, nogil=True)
def decode(
    data: np.ndarray,
    entry_offsets: np.ndarray,
    depth: int,
    itemsize: int,
    offsets: np.ndarray,
    fill: np.ndarray,
    values: np.ndarray,
) -> tuple[int, int]:
    """Decode entries with byte offsets ``entry_offsets`` (n + 1 of them) of nested vectors ``depth`` deep.

    ``offsets`` (depth x capacity, int64, column 0 zero) receives each level's running
    totals, ``fill`` (depth) how many lists of each level were read, and ``values`` the
    value bytes in native (little-endian) order. Returns (number of value bytes or an
    error code, entry index of the error).
    """
    n_entries = len(entry_offsets) - 1
    nv = 0
    for level in range(depth):
        fill[level] = 0
        offsets[level, 0] = 0
    stack_left = np.zeros(depth, dtype=np.int64)
    for e in range(n_entries):
        p = entry_offsets[e]
        end = entry_offsets[e + 1]
        if end - p < 10:
            return BAD_HEADER, e
        header = _int32(data, p) & 0x3FFFFFFF
        if header != end - p - 4:
            return BAD_HEADER, e
        p += 6
        level = 0
        stack_left[0] = 1  # the entry's outer vector
        while level >= 0:
            if stack_left[level] == 0:
                level -= 1
                continue
            stack_left[level] -= 1
            if p + 4 > end:
                return OVERRUN, e
            k = _int32(data, p)
            p += 4
            if k < 0:
                return BAD_COUNT, e
            f = fill[level]
            if f + 1 >= offsets.shape[1]:
                return OVERRUN, e
            offsets[level, f + 1] = offsets[level, f] + k
            fill[level] = f + 1
            if level + 1 < depth:
                level += 1
                stack_left[level] = k
            else:
                nbytes = k * itemsize
                if p + nbytes > end or nv + nbytes > len(values):
                    return OVERRUN, e
                if itemsize == 4:  # big-endian to native, unrolled for the common widths
                    for i in range(k):
                        values[nv] = data[p + 3]
                        values[nv + 1] = data[p + 2]
                        values[nv + 2] = data[p + 1]
                        values[nv + 3] = data[p]
                        nv += 4
                        p += 4
                elif itemsize == 8:
                    for i in range(k):
                        for j in range(8):
                            values[nv + j] = data[p + 7 - j]
                        nv += 8
                        p += 8
                else:
                    for i in range(k):
                        for j in range(itemsize):
                            values[nv + j] = data[p + itemsize - 1 - j]
                        nv += itemsize
                        p += itemsize
        if p != end:
            return BAD_HEADER, e
    return nv, -1


def decode_entries(data: np.ndarray, entry_offsets: np.ndarray, depth: int, itemsize: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Offsets per level (each from 0) and native-order value bytes of the entries at ``entry_offsets``.

    Raises ValueError saying what is wrong and at which entry (relative to the offsets).
    """
    span = int(entry_offsets[-1] - entry_offsets[0]) if len(entry_offsets) else 0
    offsets = np.empty((depth, span // 4 + 2), dtype=np.int64)
    fill = np.zeros(depth, dtype=np.int64)
    values = np.empty(max(span, 0), dtype=np.uint8)
    nv, bad = decode(data, entry_offsets.astype(np.int64), depth, itemsize, offsets, fill, values)
    if nv < 0:
        what = {BAD_HEADER: "entry size disagrees with its header", BAD_COUNT: "negative count", OVERRUN: "counts run past the entry"}
        raise ValueError(f"{what[nv]} at entry {bad}")
    return [offsets[level, : fill[level] + 1] for level in range(depth)], values[:nv]
