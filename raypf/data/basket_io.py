"""Reading a branch's baskets straight from a local ROOT file: one ``pread``, the key header, decompression.

uproot reads a basket through its generic object model (chunks, cursors, a
``TBasket`` model, a block loop in Python), ~0.15 ms a basket before any data
is touched. MLTree has some fifty small per-track branches, so on a rho range
that overhead was a quarter of the read. Here a basket costs one system call,
two ``struct`` unpacks and the decompression itself. Only what MLTree writers
use is handled (zstd and zlib blocks, or no compression); for any other block
type ``read_basket`` returns None and the caller asks uproot.
"""

from __future__ import annotations

import os
import struct
import zlib

import cramjam
import numpy as np

#: TKey header: fNbytes, fVersion, fObjlen, fDatime, fKeylen, fCycle.
_KEY = struct.Struct(">ihiIhh")
#: TBasket fields that end the key: fVersion, fBufferSize, fNevBufSize, fNevBuf, fLast (then a 1-byte flag).
_BASKET = struct.Struct(">hiiii")
#: ROOT compression block header: algorithm (2 bytes), method, compressed and uncompressed sizes (3 bytes each, little-endian).
_BLOCK = 9


class BasketTable:
    """Where a branch's baskets lie in the file and which entries each holds, as numpy arrays."""

    def __init__(self, branch) -> None:
        n = int(branch.num_baskets)
        self.seek = np.asarray(branch.member("fBasketSeek")[:n], dtype=np.int64)
        self.nbytes = np.asarray(branch.member("fBasketBytes")[:n], dtype=np.int64)
        self.entry = np.asarray(branch.member("fBasketEntry")[: n + 1], dtype=np.int64)
        # entries held in a basket embedded in the TBranch (never written out) are not in this table
        self.complete = len(self.entry) == n + 1 and int(self.entry[-1]) == int(branch.num_entries)

    def overlapping(self, start: int, stop: int) -> range:
        """Indices of the baskets holding any of the entries [start, stop)."""
        first = int(np.searchsorted(self.entry[1:], start, side="right"))
        last = int(np.searchsorted(self.entry[:-1], stop, side="left")) if stop > start else first
        return range(first, max(first, last))


def read_basket(fd: int, seek: int, nbytes: int) -> tuple[np.ndarray, np.ndarray | None] | None:
    """A basket's entry bytes and its entry byte offsets (None for fixed-size entries).

    Returns None if a block is compressed with an algorithm not handled here. Raises
    ValueError if the basket is truncated or its header is inconsistent.
    """
    raw = os.pread(fd, nbytes, seek)
    if len(raw) != nbytes:
        raise ValueError(f"basket at byte {seek} is truncated ({len(raw)} of {nbytes} bytes)")
    total, _, objlen, _, keylen, _ = _KEY.unpack_from(raw)
    if total != nbytes or not _KEY.size + _BASKET.size + 1 <= keylen <= nbytes or objlen < 0:
        raise ValueError(f"basket at byte {seek} has an inconsistent key header")
    last = _BASKET.unpack_from(raw, keylen - _BASKET.size - 1)[4]
    if nbytes - keylen == objlen:
        data = np.frombuffer(raw, dtype=np.uint8, offset=keylen)
    else:
        data = _decompress(raw, keylen, objlen, seek)
        if data is None:
            return None
    border = last - keylen
    if not 0 <= border <= objlen or (objlen - border) % 4:
        raise ValueError(f"basket at byte {seek}: entry data end {border} outside its {objlen} bytes")
    if border == objlen:
        return data, None
    # after the entries: their count + 1, then each entry's start counted from the key's start
    offsets = data[border + 4 :].view(">i4").astype(np.int64) - keylen
    if len(offsets) == 0:
        raise ValueError(f"basket at byte {seek} has no entry offsets")
    offsets[-1] = border
    return data[:border], offsets


def _decompress(raw: bytes, pos: int, size: int, seek: int) -> np.ndarray | None:
    out = np.empty(size, dtype=np.uint8)
    view = memoryview(raw)
    filled = 0
    while filled < size:
        if pos + _BLOCK > len(raw):
            raise ValueError(f"basket at byte {seek}: compressed block header runs past the basket")
        algo = raw[pos : pos + 2]
        c = int.from_bytes(raw[pos + 3 : pos + 6], "little")
        u = int.from_bytes(raw[pos + 6 : pos + 9], "little")
        block = view[pos + _BLOCK : pos + _BLOCK + c]
        if len(block) != c or filled + u > size:
            raise ValueError(f"basket at byte {seek}: compressed block sizes disagree with the basket's")
        if algo == b"ZS":
            n = cramjam.zstd.decompress_into(block, out[filled : filled + u])
        elif algo == b"ZL":
            plain = zlib.decompress(block)
            n = len(plain)
            out[filled : filled + min(n, u)] = np.frombuffer(plain, dtype=np.uint8)[:u]
        else:
            return None
        if n != u:
            raise ValueError(f"basket at byte {seek}: a block decompressed to {n} bytes, not {u}")
        pos += _BLOCK + c
        filled += u
    return out
