"""Reading a branch's baskets straight from a local ROOT file: one ``pread``, the key header, decompression.

uproot reads a basket through its generic object model (chunks, cursors, a
``TBasket`` model, a block loop in Python), ~0.15 ms a basket before any data
is touched. MLTree has some fifty small per-track branches, so on a rho range
that overhead was a quarter of the read. Here a basket costs one system call,
two ``struct`` unpacks and the decompression itself. Only what MLTree writers
use is handled (zstd and zlib blocks, or no compression); for any other block
type ``read_baskets`` returns None and the caller asks uproot.
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


def read_baskets(fd: int, seeks: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, np.ndarray | None]]] | None:
    """Several baskets' payloads decompressed end to end into one array, and per basket (where its
    entries start and end in that array, its entry byte offsets in that array or None for fixed-size
    entries).

    One array, so that a range's entries are decoded where they were decompressed rather than first
    copied together. Returns None if a block is compressed with an algorithm not handled here.
    Raises ValueError if a basket is truncated or its header is inconsistent.
    """
    raws, heads = [], []
    for seek, nbytes in zip(seeks.tolist(), sizes.tolist()):
        raw = os.pread(fd, nbytes, seek)
        if len(raw) != nbytes:
            raise ValueError(f"basket at byte {seek} is truncated ({len(raw)} of {nbytes} bytes)")
        total, _, objlen, _, keylen, _ = _KEY.unpack_from(raw)
        if total != nbytes or not _KEY.size + _BASKET.size + 1 <= keylen <= nbytes or objlen < 0:
            raise ValueError(f"basket at byte {seek} has an inconsistent key header")
        border = _BASKET.unpack_from(raw, keylen - _BASKET.size - 1)[4] - keylen
        if not 0 <= border <= objlen or (objlen - border) % 4:
            raise ValueError(f"basket at byte {seek}: entry data end {border} outside its {objlen} bytes")
        raws.append(raw)
        heads.append((seek, keylen, objlen, border))
    out = np.empty(sum(h[2] for h in heads), dtype=np.uint8)
    parts = []
    base = 0
    for raw, (seek, keylen, objlen, border) in zip(raws, heads):
        dest = out[base : base + objlen]
        if len(raw) - keylen == objlen:  # stored as is
            dest[:] = np.frombuffer(raw, dtype=np.uint8, offset=keylen)
        elif not _decompress_into(raw, keylen, dest, seek):
            return None
        offsets = None
        if border != objlen:
            # after the entries: their count + 1, then each entry's start counted from the key's start
            offsets = dest[border + 4 :].view(">i4").astype(np.int64) + (base - keylen)
            if len(offsets) == 0:
                raise ValueError(f"basket at byte {seek} has no entry offsets")
            offsets[-1] = base + border
        parts.append((base, base + border, offsets))
        base += objlen
    return out, parts


def _decompress_into(raw: bytes, pos: int, out: np.ndarray, seek: int) -> bool:
    """Decompress the blocks of ``raw`` from ``pos`` into ``out``; False at a block of an unhandled algorithm."""
    view = memoryview(raw)
    size, filled = len(out), 0
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
            return False
        if n != u:
            raise ValueError(f"basket at byte {seek}: a block decompressed to {n} bytes, not {u}")
        pos += _BLOCK + c
        filled += u
    return True
