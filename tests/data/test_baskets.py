"""The compiled decoder of object-streamed nested vectors, on bytes laid out as ROOT streams them."""

from __future__ import annotations

import itertools
import struct

import numpy as np
import pytest

from raypf.data.baskets import decode_entries


def _encode(entry: list, depth: int, dtype: np.dtype) -> bytes:
    """One entry as ROOT streams it object-wise: byte count and version, then counts and big-endian values."""
    body = bytearray()

    def put(lst: list, level: int) -> None:
        body.extend(struct.pack(">i", len(lst)))
        if level == depth - 1:
            body.extend(np.asarray(lst, dtype=dtype).astype(dtype.newbyteorder(">")).tobytes())
        else:
            for child in lst:
                put(child, level + 1)

    put(entry, 0)
    payload = b"\x00\x09" + bytes(body)
    return struct.pack(">I", len(payload) | 0x40000000) + payload


def _stream(entries: list, depth: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    parts = [_encode(e, depth, dtype) for e in entries]
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
    return np.frombuffer(b"".join(parts), dtype=np.uint8), offsets


def _random_entries(rng: np.random.Generator, n: int, depth: int, dtype: np.dtype) -> list:
    def make(level: int) -> list:
        if level == depth - 1:
            # mostly empty or short leaves (like cells' truth lists), now and then a long run
            size = int(rng.choice([0, 0, 0, 1, 2, 5, 40]))
            if dtype.kind == "f":
                return rng.normal(size=size).astype(dtype).tolist()
            info = np.iinfo(dtype)
            return rng.integers(info.min, info.max, size=size, dtype=dtype, endpoint=True).tolist()
        return [make(level + 1) for _ in range(int(rng.integers(0, 6)))]

    return [make(0) for _ in range(n)]


def _expected(entries: list, depth: int, dtype: np.dtype) -> tuple[list[np.ndarray], np.ndarray]:
    counts: list[list[int]] = [[] for _ in range(depth)]
    values: list = []

    def walk(lst: list, level: int) -> None:
        counts[level].append(len(lst))
        if level == depth - 1:
            values.extend(lst)
        else:
            for child in lst:
                walk(child, level + 1)

    for e in entries:
        walk(e, 0)
    offsets = [np.concatenate([[0], np.cumsum(c, dtype=np.int64)]) for c in counts]
    return offsets, np.asarray(values, dtype=dtype)


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("dtype", ["float32", "int32", "uint64", "int16", "uint8", "float64"])
def test_decodes_every_depth_and_width(depth, dtype):
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(depth * 100 + dtype.itemsize)
    entries = _random_entries(rng, 60, depth, dtype)
    entries[3] = []  # an event with no cells
    if dtype == np.uint64:  # IDs above 2**63 keep every bit
        entries[5] = [[2**64 - 1, 2**63 + 12345]] if depth == 2 else entries[5]
    data, entry_offsets = _stream(entries, depth, dtype)
    offsets, raw = decode_entries(data, entry_offsets, depth, dtype.itemsize)
    want_offsets, want_values = _expected(entries, depth, dtype)
    assert len(offsets) == depth
    for got, want in zip(offsets, want_offsets):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(raw.view(dtype), want_values)
    # a range starting mid-stream (as a range inside a basket): offsets restart from zero
    offsets, raw = decode_entries(data, entry_offsets[10:], depth, dtype.itemsize)
    want_offsets, want_values = _expected(entries[10:], depth, dtype)
    np.testing.assert_array_equal(offsets[-1], want_offsets[-1])
    np.testing.assert_array_equal(raw.view(dtype), want_values)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_entries_with_bytes_between_them_decode_given_their_ends(depth):
    """Baskets decompressed end to end leave each basket's offset table between its entries and the next's."""
    dtype = np.dtype("float32")
    entries = _random_entries(np.random.default_rng(depth), 30, depth, dtype)
    data, entry_offsets = _stream(entries, depth, dtype)
    gaps = {9: b"\xff" * 7, 19: b"\x00" * 12}  # junk after entries 9 and 19, where an offset table would sit
    pieces, starts, ends, pos = [], [], [], 0
    for k, (a, b) in enumerate(itertools.pairwise(entry_offsets)):
        pieces.append(data[a:b].tobytes())
        starts.append(pos)
        ends.append(pos + (b - a))
        pos += b - a
        if k in gaps:
            pieces.append(gaps[k])
            pos += len(gaps[k])
    gapped = np.frombuffer(b"".join(pieces), dtype=np.uint8)
    offsets, raw = decode_entries(gapped, np.array(starts), depth, 4, entry_ends=np.array(ends))
    want_offsets, want_values = _expected(entries, depth, dtype)
    for got, want in zip(offsets, want_offsets):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(raw.view(dtype), want_values)
    with pytest.raises(ValueError, match="entry size disagrees with its header at entry 9"):  # read as if contiguous
        decode_entries(gapped, np.array([*starts, ends[-1]]), depth, 4)


def _corrupt(entries: list, depth: int, index: int, edit) -> tuple[np.ndarray, np.ndarray]:
    parts = [bytearray(_encode(e, depth, np.dtype(np.float32))) for e in entries]
    parts[index] = edit(parts[index])
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)
    return np.frombuffer(b"".join(parts), dtype=np.uint8), offsets


def _set_int(buf: bytearray, at: int, value: int) -> bytearray:
    buf[at : at + 4] = struct.pack(">i", value)
    return buf


# entry [[1.0], [], [2.0, 3.0]] at depth 3 is [[[1.0], [], [2.0, 3.0]]]: header 6 bytes, then
# counts at 6 (outer: 1), 10 (cell list: 3), 14 (first leaf: 1), 22 (second leaf: 0), 26 (third leaf: 2)
ENTRIES = [[[[0.5]]], [[[1.0], [], [2.0, 3.0]]], [[[4.0]]]]


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda b: _set_int(b, 22, -1), "negative count at entry 1"),  # an empty leaf's count made negative
        (lambda b: _set_int(b, 26, 3), "counts run past the entry at entry 1"),  # a leaf claims one value more
        (lambda b: _set_int(b, 10, 9), "counts run past the entry at entry 1"),  # more leaves than the entry holds
        (lambda b: _set_int(b, 26, 1), "entry size disagrees with its header at entry 1"),  # bytes left over
        (lambda b: _set_int(b, 0, (len(b) - 3) | 0x40000000), "entry size disagrees with its header at entry 1"),
        (lambda b: b[:8], "entry size disagrees with its header at entry 1"),  # cut short
    ],
)
def test_corrupt_entries_are_errors_naming_the_entry(edit, message):
    data, offsets = _corrupt(ENTRIES, 3, 1, edit)
    with pytest.raises(ValueError, match=message):
        decode_entries(data, offsets, 3, 4)


def test_uncorrupted_reference_entries_decode():
    data, offsets = _corrupt(ENTRIES, 3, 1, lambda b: b)
    level_offsets, raw = decode_entries(data, offsets, 3, 4)
    assert [o.tolist() for o in level_offsets] == [[0, 1, 2, 3], [0, 1, 4, 5], [0, 1, 2, 2, 4, 5]]
    assert raw.view(np.float32).tolist() == [0.5, 1.0, 2.0, 3.0, 4.0]


def test_compiled_decoder_rejects_wrong_arrays_rather_than_reading_past_them():
    import raypf_kernels

    data, offsets = _corrupt(ENTRIES, 3, 1, lambda b: b)
    starts, ends = np.asarray(offsets[:-1], np.int64), np.asarray(offsets[1:], np.int64)
    span = int(ends[-1] - starts[0])
    out = (np.zeros((3, span), np.int64), np.zeros(3, np.int64), np.zeros(span, np.uint8))
    assert raypf_kernels.decode(data, starts, ends, 3, 4, *out)[1] == -1  # as given: decodes
    with pytest.raises(TypeError, match="decode: argument 1 has element type"):
        raypf_kernels.decode(data, starts.astype(np.float64), ends, 3, 4, *out)
    with pytest.raises(TypeError, match="decode: argument 5 must be a C-contiguous, writable array"):
        raypf_kernels.decode(data, starts, ends, 3, 4, out[0].T, *out[1:])
    with pytest.raises(ValueError, match="entry 1 lies outside the data"):
        raypf_kernels.decode(data[: int(ends[1]) - 1], starts, ends, 3, 4, *out)
