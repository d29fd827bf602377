"""A self-contained writer of ROOT files holding TTrees with real C++ STL branch types.

Why this exists: uproot's TTree writer (``file.mktree``) only writes numbers and
counted C arrays (``nX`` + ``X[nX]``), and ``file[name] = {...}`` makes an
RNTuple. ATLAS "MLTree" ntuples need TTrees whose branches are ``vector<float>``,
``vector<vector<size_t>>``, ``vector<vector<vector<int>>>`` and so on, so this
module writes the ROOT file format itself, laid out as ROOT 6 lays it out:

* file header, top directory (``TFile`` key), keys list, free-segments record;
* per tree, one ``TBasket`` key per branch per ``basket_entries`` entries,
  written cluster by cluster (all branches of entries [0, N), then [N, 2N), ...);
* the ``TTree`` (v20) with a ``TBranch``/``TLeafI|L|F|D`` for every number and
  a ``TBranchElement`` (v10)/``TLeafElement`` for every STL vector, object and
  class references resolved as ROOT's ``TBufferFile`` writes them;
* the ``StreamerInfo`` list with the classes ROOT would record, including one
  ``TStreamerInfo`` per ``vector<...>`` class used.

A vector entry is streamed object-wise, as ROOT does for a top-level STL
branch: a byte count and version header, the outer element count, then the
elements; nested vectors nest ``[count][elements]`` without headers of their
own. Baskets of vector branches end with ROOT's entry-offset table. All of it
is built with numpy over every entry of a basket at once.

From uproot this uses only its compression codecs (``uproot.compression``) and
the raw streamer records it ships for ROOT's own TTree, TBranch and TLeaf classes.
"""

from __future__ import annotations

import collections
import concurrent.futures
import datetime
import functools
import os
import re
import secrets
import struct
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from itertools import chain

import awkward as ak
import numpy as np
import uproot.compression

__all__ = ["write_root_file"]

# ROOT I/O constants (TBufferFile / TFile)
_BYTECOUNT = 0x40000000  # kByteCountMask
_NEW_CLASS = 0xFFFFFFFF  # kNewClassTag
_CLASS_REF = 0x80000000  # kClassMask
_MAP_OFFSET = 2  # kMapOffset: object/class references count from 2 before the key's start
_START_BIG_FILE = 2000000000  # TFile::kStartBigFile: beyond it, seeks are 64-bit
_BEGIN = 100  # fBEGIN: where the first key (the top directory) starts
_ROOT_VERSION = 62400  # we write the class versions of ROOT 6.24
_BASKET_SIZE = 32000  # ROOT's default fBasketSize
_ON_HEAP = 0x03000000  # TObject fBits of a heap object: kNotDeleted | kIsOnHeap
_STL_VERSION = 6  # class version ROOT gives every std::vector
_STL_HEADER_VERSION = 9  # version in the per-entry header of a streamed STL collection
_MAX_BASKET = 0x7FFF0000  # basket offsets and fLast are 32-bit
# ROOT::TIOFeatures as ROOT writes it: byte count 7, version 0 then the class checksum, fIOBits = 0
_TIOFEATURES = b"\x40\x00\x00\x07\x00\x00\x1a\xa1\x2f\x10\x00"
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# ---------------------------------------------------------------------------------------------
# C++ types


@dataclass(frozen=True)
class _Number:
    """A C++ number type as ROOT names and stores it."""

    dtype: np.dtype  # big-endian, as on disk
    spelling: str  # inside a ROOT class name: vector<unsigned long>
    typedef: str  # ROOT typedef in an STL streamer's title: <ULong_t>
    code: int  # EDataType (fCtype of TStreamerSTL)
    leaf: str  # TLeaf class of a plain number branch
    letter: str  # leaf-list type letter of a plain number branch


_INT = _Number(np.dtype(">i4"), "int", "Int_t", 3, "TLeafI", "I")
_UINT = _Number(np.dtype(">u4"), "unsigned int", "UInt_t", 13, "TLeafI", "i")
_LONG64 = _Number(np.dtype(">i8"), "Long64_t", "Long64_t", 16, "TLeafL", "L")
_LONG = _Number(np.dtype(">i8"), "long", "Long_t", 4, "TLeafL", "L")
_ULONG64 = _Number(np.dtype(">u8"), "ULong64_t", "ULong64_t", 17, "TLeafL", "l")
_ULONG = _Number(np.dtype(">u8"), "unsigned long", "ULong_t", 14, "TLeafL", "l")
_FLOAT = _Number(np.dtype(">f4"), "float", "Float_t", 5, "TLeafF", "F")
_DOUBLE = _Number(np.dtype(">f8"), "double", "Double_t", 8, "TLeafD", "D")

# Accepted spellings (lower case, single spaces). size_t is unsigned long on the LP64 platforms ROOT
# supports, and ROOT normalises vector<size_t> to vector<unsigned long>.
_NUMBERS: dict[str, _Number] = {
    **dict.fromkeys(("int", "int_t", "int32_t", "signed int"), _INT),
    **dict.fromkeys(("unsigned int", "unsigned", "uint_t", "uint32_t"), _UINT),
    **dict.fromkeys(("long64_t", "long long", "long long int"), _LONG64),
    **dict.fromkeys(("long", "long_t", "int64_t", "long int"), _LONG),
    **dict.fromkeys(("ulong64_t", "unsigned long long", "unsigned long long int"), _ULONG64),
    **dict.fromkeys(("unsigned long", "ulong_t", "size_t", "uint64_t", "unsigned long int"), _ULONG),
    **dict.fromkeys(("float", "float_t"), _FLOAT),
    **dict.fromkeys(("double", "double_t"), _DOUBLE),
}


@dataclass(frozen=True)
class _CppType:
    """A number nested in ``depth`` std::vectors (depth 0: a plain number)."""

    number: _Number
    depth: int

    @property
    def class_name(self) -> str:
        """ROOT's normalised class name, e.g. ``vector<vector<unsigned long> >``."""
        name = self.number.spelling
        for _ in range(self.depth):
            name = f"vector<{name}{' ' if name.endswith('>') else ''}>"
        return name


def _parse_type(text: str) -> _CppType:
    """'vector<vector<float> >', 'std::vector<size_t>', 'Long64_t', ... -> _CppType; ValueError if unknown."""
    if not isinstance(text, str):
        raise ValueError(f"C++ type must be a string, got {type(text).__name__}")  # noqa: TRY004 -- bad input
    t = " ".join(text.replace("std::", "").split()).lower()
    t = re.sub(r"\s*([<>])\s*", r"\1", t)
    depth = 0
    while t.startswith("vector<") and t.endswith(">"):
        t, depth = t[len("vector<") : -1], depth + 1
    if t not in _NUMBERS:
        raise ValueError(
            f"unsupported C++ type {text!r}; use a number type ({', '.join(sorted(_NUMBERS))}) or vector<...> of one"
        )
    return _CppType(_NUMBERS[t], depth)


def _checksum(class_name: str) -> int:
    """TClass::GetCheckSum of an STL collection: its normalised name hashed as id = id*3 + c."""
    h = 0
    for c in class_name.encode():
        h = (h * 3 + c) & 0xFFFFFFFF
    return h


# ---------------------------------------------------------------------------------------------
# input columns


@dataclass
class _Column:
    """One branch's data, cast to its on-disk dtype: per-level list offsets (each from 0) and flat values."""

    name: str
    ctype: _CppType
    offsets: list[np.ndarray]  # empty for plain numbers
    values: np.ndarray  # big-endian, contiguous

    @property
    def num_entries(self) -> int:
        return len(self.offsets[0]) - 1 if self.offsets else len(self.values)


def _cast(values, dtype: np.dtype) -> np.ndarray:
    """Flat values as a contiguous big-endian array of ``dtype`` (C++ static_cast semantics)."""
    arr = np.asarray(values) if isinstance(values, np.ndarray) else np.array(values, dtype=dtype)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"expected numbers, got {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"expected one number per {'element' if arr.ndim else 'entry'}, got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=dtype)


def _cumsum0(x: np.ndarray) -> np.ndarray:
    """Running sum starting at 0 (counts -> offsets)."""
    out = np.zeros(len(x) + 1, dtype=np.int64)
    np.cumsum(x, out=out[1:])
    return out


def _levels_from_layout(layout, depth: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Offsets of ``depth`` list levels of an awkward layout, and the layout of the numbers inside."""
    offsets = []
    for _ in range(depth):
        if isinstance(layout, ak.contents.NumpyArray) and layout.data.ndim > 1:
            layout = layout.to_RegularArray()
        if not isinstance(layout, (ak.contents.ListOffsetArray, ak.contents.ListArray, ak.contents.RegularArray)):
            raise ValueError(  # noqa: TRY004 -- bad input
                f"expected {depth} nested level(s) of lists of numbers, found {layout.form.type}"
            )
        if layout.parameter("__array__") in ("string", "bytestring"):
            raise ValueError("expected lists of numbers, got strings")
        layout = layout.to_ListOffsetArray64(True)
        off = np.asarray(layout.offsets.data, dtype=np.int64)
        offsets.append(off)
        layout = layout.content[: int(off[-1])]
    if isinstance(layout, ak.contents.EmptyArray):
        return offsets, np.empty(0)
    if not isinstance(layout, ak.contents.NumpyArray) or layout.data.ndim != 1:
        raise ValueError(f"expected {depth} nested level(s) of lists of numbers, found {layout.form.type} inside")
    return offsets, np.asarray(layout.data)


def _levels_from_python(data, depth: int) -> tuple[list[np.ndarray], object]:
    """Offsets of ``depth`` list levels of nested sequences, and the flat numbers (a list or an array)."""
    offsets = []
    level = data
    for lvl in range(depth):
        try:
            counts = np.fromiter((len(x) for x in level), dtype=np.int64, count=len(level))
        except TypeError:
            raise ValueError(f"expected {depth} nested level(s) of lists of numbers") from None
        offsets.append(_cumsum0(counts))
        if lvl == depth - 1 and len(level) and all(isinstance(x, np.ndarray) and x.ndim == 1 for x in level):
            level = np.concatenate(level)  # a list of numpy arrays: no Python loop over the numbers
        else:
            level = list(chain.from_iterable(level))
    return offsets, level


def _column(name: str, ctype: _CppType, data) -> _Column:
    """Validate and convert one branch's data; ValueError (without the branch name) if it does not fit."""
    dtype = ctype.number.dtype
    if ctype.depth == 0:
        if isinstance(data, ak.Array):
            try:
                data = ak.to_numpy(data, allow_missing=False)
            except (ValueError, TypeError) as err:
                raise ValueError(f"expected a flat array of numbers, got {data.type}: {err}") from None
        return _Column(name, ctype, [], _cast(data, dtype))
    if isinstance(data, (ak.Array, ak.contents.Content)) or (isinstance(data, np.ndarray) and data.dtype != object):
        offsets, values = _levels_from_layout(ak.to_layout(ak.to_packed(data)), ctype.depth)
    else:
        offsets, values = _levels_from_python(data, ctype.depth)
    return _Column(name, ctype, offsets, _cast(values, dtype))


# ---------------------------------------------------------------------------------------------
# basket payloads


def _overlapping(buffer: np.ndarray, dtype: str, step: int) -> np.ndarray:
    """A view whose k-th item is the ``dtype``-sized item starting ``k * step`` bytes into ``buffer``.

    Lets one fancy-index assignment write a 4-byte count at any 2-byte-aligned position.
    """
    itemsize = np.dtype(dtype).itemsize
    return np.ndarray(shape=((buffer.nbytes - itemsize) // step + 1,), dtype=dtype, buffer=buffer, strides=(step,))


def _vector_payload(offsets: list[np.ndarray], values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Object-wise streaming of nested vectors for every entry at once.

    Entry layout: [byte count | kByteCountMask : 4][version 9 : 2][n : 4] then n elements,
    or for nested vectors n inner vectors, each [m : 4] + its elements (no header).
    Every field is a whole number of 2-byte words, so the buffer is big-endian
    uint16: headers and counts are placed by index, then the values fill all other
    words in order with one masked assignment.

    Returns (payload words, byte offset of each entry start plus the end).
    """
    depth = len(offsets)
    counts = [np.diff(off) for off in offsets]
    # bytes of each vector (its count included) per level, innermost first, and their running sums
    sizes: list[np.ndarray] = [np.empty(0)] * depth
    cums: list[np.ndarray] = [np.empty(0)] * depth
    sizes[-1] = counts[-1] * values.dtype.itemsize + 4
    for lvl in range(depth - 1, 0, -1):
        cums[lvl] = _cumsum0(sizes[lvl])
        sizes[lvl - 1] = cums[lvl][offsets[lvl - 1][1:]] - cums[lvl][offsets[lvl - 1][:-1]] + 4
    entry_sizes = sizes[0] + 6
    starts = _cumsum0(entry_sizes)
    n_words = int(starts[-1]) // 2
    words = np.empty(n_words, dtype=">u2")
    fixed = np.zeros(n_words + 1, dtype=np.uint8)  # 1 where a header or count word goes
    quads = _overlapping(words, ">u4", 2)  # quads[k]: the 4 bytes from word k
    fixed_pairs = _overlapping(fixed, "<u2", 1)  # fixed_pairs[k]: the flags of words k and k + 1

    at = starts[:-1] // 2
    quads[at] = (entry_sizes - 4) | _BYTECOUNT
    words[at + 2] = _STL_HEADER_VERSION
    fixed_pairs[at] = 0x0101
    fixed[at + 2] = 1

    pos = starts[:-1] + 6  # byte position of the count of each vector at this level
    for lvl in range(depth):
        at = pos // 2
        quads[at] = counts[lvl]
        fixed_pairs[at] = 0x0101
        if lvl + 1 < depth:
            # child j of vector i starts after i's count and i's earlier children
            cum = cums[lvl + 1]
            pos = np.repeat(pos + 4 - cum[offsets[lvl][:-1]], counts[lvl]) + cum[:-1]
    words[fixed[:-1] == 0] = values.view(">u2")
    return words, starts


def _slice(col: _Column, start: int, stop: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Offsets (from 0) and values of entries [start, stop) of a vector column."""
    out = []
    lo, hi = start, stop
    for off in col.offsets:
        part = off[lo : hi + 1]
        out.append(part - part[0])
        lo, hi = int(part[0]), int(part[-1])
    return out, col.values[lo:hi]


@dataclass
class _Basket:
    """A serialised TBasket key, everything but its location."""

    keylen: int
    objlen: int
    nev_buf_size: int
    nev_buf: int
    last: int
    chunks: list  # bytes-like pieces of the (compressed or not) payload following the key
    size: int  # their total length


def _basket_keylen(tree: str, branch: str) -> int:
    # TKey (64-bit, as ROOT always writes basket keys) + class, name, title + TBasket header + flag byte
    return 34 + len(_string("TBasket")) + len(_string(branch)) + len(_string(tree)) + 18 + 1


def _make_basket(tree: str, col: _Column, start: int, stop: int, compression) -> _Basket:
    """Serialise and compress entries [start, stop) of one branch."""
    keylen = _basket_keylen(tree, col.name)
    n = stop - start
    if col.ctype.depth == 0:
        pieces = [col.values[start:stop].view(np.uint8)]
        last = keylen + pieces[0].nbytes
        nev_buf_size = col.values.itemsize
    else:
        offsets, values = _slice(col, start, stop)
        words, starts = _vector_payload(offsets, values)
        # ROOT's entry-offset table: WriteArray(fEntryOffset, fNevBuf + 1); the unused last slot is 0
        table = np.empty(n + 2, dtype=">i4")
        table[0] = n + 1
        table[1:-1] = starts[:-1] + keylen
        table[-1] = 0
        pieces = [words.view(np.uint8), table.view(np.uint8)]
        last = keylen + words.nbytes
        nev_buf_size = 1000  # ROOT's fEntryOffset capacity: starts at 1000, doubles as needed
        while nev_buf_size < n + 1:
            nev_buf_size *= 2
    objlen = sum(p.nbytes for p in pieces)
    if keylen + objlen > _MAX_BASKET:
        raise ValueError(
            f"tree {tree!r}, branch {col.name!r}: a basket of {n} entries is {objlen} bytes, over ROOT's 2 GB"
            " basket limit; use a smaller basket_entries"
        )
    if compression is not None:
        raw = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
        pieces = [uproot.compression.compress(raw, compression)]
    return _Basket(keylen, objlen, nev_buf_size, n, last, pieces, sum(len(p) for p in pieces))


# ---------------------------------------------------------------------------------------------
# ROOT object streaming


def _string(s: str) -> bytes:
    """A ROOT (T)String: 1-byte length, or 255 and a 4-byte length, then the characters."""
    b = s.encode("utf-8", "surrogateescape")
    return (bytes([len(b)]) if len(b) < 255 else b"\xff" + struct.pack(">I", len(b))) + b


class _Buffer:
    """What ROOT's TBufferFile writes for one key: byte counts, versions, and object/class references.

    References are positions in the key (its header included) plus kMapOffset. With
    ``class_refs`` a class name is written once and referred to afterwards, as ROOT does;
    without, every object carries its class name (position-independent, as uproot's raw
    streamer records are).
    """

    def __init__(self, keylen: int, class_refs: bool = True) -> None:
        self.b = bytearray()
        self.keylen = keylen
        self.class_refs = class_refs
        self.classes: dict[str, int] = {}

    def pack(self, fmt: str, *values) -> None:
        self.b += struct.pack(fmt, *values)

    def raw(self, data: bytes) -> None:
        self.b += data

    def string(self, s: str) -> None:
        self.b += _string(s)

    def ref(self, position: int) -> int:
        """The reference number of whatever starts at ``position`` in this buffer."""
        return self.keylen + position + _MAP_OFFSET

    def begin(self, version: int) -> int:
        """Open a byte-count + version header; returns the position to pass to ``end``."""
        start = len(self.b)
        self.pack(">IH", 0, version)
        return start

    def end(self, start: int) -> None:
        struct.pack_into(">I", self.b, start, (len(self.b) - start - 4) | _BYTECOUNT)

    def begin_object(self, class_name: str) -> int:
        """Open a pointer to an object written in full (TBuffer::WriteObjectAny)."""
        start = len(self.b)
        self.pack(">I", 0)
        if self.class_refs and class_name in self.classes:
            self.pack(">I", self.classes[class_name] | _CLASS_REF)
        else:
            self.classes[class_name] = self.ref(len(self.b))
            self.pack(">I", _NEW_CLASS)
            self.raw(class_name.encode() + b"\x00")
        return start

    def tobject(self, bits: int = _ON_HEAP) -> None:
        self.pack(">HII", 1, 0, bits)

    def tnamed(self, name: str, title: str, bits: int = _ON_HEAP) -> None:
        at = self.begin(1)
        self.tobject(bits)
        self.string(name)
        self.string(title)
        self.end(at)

    def tobjarray_begin(self, size: int, bits: int = _ON_HEAP) -> int:
        at = self.begin(3)
        self.tobject(bits)
        self.string("")
        self.pack(">ii", size, 0)
        return at

    def empty_tobjarray(self) -> None:
        self.end(self.tobjarray_begin(0))


@dataclass
class _BranchOut:
    """A written branch: its column and where its baskets went."""

    col: _Column
    basket_bytes: list[int]
    basket_entry: list[int]
    basket_seek: list[int]
    tot_bytes: int = 0
    zip_bytes: int = 0


def _write_leaf(buf: _Buffer, col: _Column) -> int:
    """A branch's single leaf as an object pointer; returns its reference number (for TTree::fLeaves)."""
    number = col.ctype.number
    vector = col.ctype.depth > 0
    at_object = buf.begin_object("TLeafElement" if vector else number.leaf)
    ref = buf.ref(at_object)
    at_leaf = buf.begin(1)
    at_tleaf = buf.begin(2)
    buf.tnamed(col.name, col.name)
    is_unsigned = not vector and number.letter.islower()
    # fLen, fLenType, fOffset, fIsRange, fIsUnsigned, fLeafCount (null)
    buf.pack(">iii??I", 1, 0 if vector else number.dtype.itemsize, 0, False, is_unsigned, 0)
    buf.end(at_tleaf)
    if vector:
        buf.pack(">ii", -1, -1)  # fID, fType: a top-level STL collection
    else:
        fmt = {"I": ">ii", "i": ">ii", "L": ">qq", "l": ">qq", "F": ">ff", "D": ">dd"}[number.letter]
        buf.pack(fmt, 0, 0)  # fMinimum, fMaximum
    buf.end(at_leaf)
    buf.end(at_object)
    return ref


def _write_branch(buf: _Buffer, b: _BranchOut, num_entries: int, compress: int) -> int:
    """One TBranch (numbers) or TBranchElement (vectors) as an object pointer; returns its leaf's reference."""
    ctype = b.col.ctype
    vector = ctype.depth > 0
    n_baskets = len(b.basket_seek)
    max_baskets = max(10, n_baskets + 1)
    at_object = buf.begin_object("TBranchElement" if vector else "TBranch")
    at_element = buf.begin(10) if vector else None
    at_branch = buf.begin(13)
    title = b.col.name if vector else f"{b.col.name}/{ctype.number.letter}"
    buf.tnamed(b.col.name, title, _ON_HEAP | 0x00400000)  # kDoNotProcessProofEvent, as ROOT sets
    at = buf.begin(2)  # TAttFill
    buf.pack(">hh", 0, 1001)
    buf.end(at)
    entry_offset_len = 20 if vector else 0  # what ROOT gives a top-level STL branch
    buf.pack(">iiiiq", compress, _BASKET_SIZE, entry_offset_len, n_baskets, num_entries)
    buf.raw(_TIOFEATURES)
    split_level = 99 if vector else 0
    buf.pack(">iIiqqqq", 0, max_baskets, split_level, num_entries, 0, b.tot_bytes, b.zip_bytes)
    buf.empty_tobjarray()  # fBranches
    at = buf.tobjarray_begin(1)  # fLeaves
    leaf_ref = _write_leaf(buf, b.col)
    buf.end(at)
    buf.empty_tobjarray()  # fBaskets: all baskets are separate keys
    basket_bytes = np.zeros(max_baskets, ">i4")
    basket_entry = np.zeros(max_baskets, ">i8")
    basket_seek = np.zeros(max_baskets, ">i8")
    basket_bytes[:n_baskets] = b.basket_bytes
    basket_entry[:n_baskets] = b.basket_entry
    basket_entry[n_baskets] = num_entries
    basket_seek[:n_baskets] = b.basket_seek
    for arr in (basket_bytes, basket_entry, basket_seek):
        buf.raw(b"\x01" + arr.tobytes())  # speed bump, then the array
    buf.string("")  # fFileName
    buf.end(at_branch)
    if vector:
        buf.string(ctype.class_name)  # fClassName
        buf.string("")  # fParentName
        buf.string("")  # fClonesName
        # fCheckSum, fClassVersion, fID, fType, fStreamerType, fMaximum, fBranchCount, fBranchCount2
        buf.pack(">IhiiiiII", _checksum(ctype.class_name), _STL_VERSION, -1, 0, -1, 0, 0, 0)
        buf.end(at_element)
    buf.end(at_object)
    return leaf_ref


def _tree_object(
    name: str, branches: list[_BranchOut], num_entries: int, keylen: int, compress: int, auto_flush: int
) -> bytes:
    """The TTree (v20) with its branches and leaves, as streamed into its key."""
    buf = _Buffer(keylen)
    at_tree = buf.begin(20)
    buf.tnamed(name, name, _ON_HEAP | 0x8)  # kMustCleanup
    for version, fmt, values in ((2, ">hhh", (602, 1, 1)), (2, ">hh", (0, 1001)), (2, ">hhf", (1, 1, 1.0))):
        at = buf.begin(version)  # TAttLine, TAttFill, TAttMarker
        buf.pack(fmt, *values)
        buf.end(at)
    tot = sum(b.tot_bytes for b in branches)
    zipped = sum(b.zip_bytes for b in branches)
    buf.pack(
        ">qqqqqdiiiiIqqqqqq",
        num_entries,
        tot,  # fTotBytes
        zipped,  # fZipBytes
        0,  # fSavedBytes
        0,  # fFlushedBytes
        1.0,  # fWeight
        0,  # fTimerInterval
        25,  # fScanField
        0,  # fUpdate
        1000,  # fDefaultEntryOffsetLen
        0,  # fNClusterRange
        1000000000000,  # fMaxEntries
        1000000000000,  # fMaxEntryLoop
        0,  # fMaxVirtualSize
        -300000000,  # fAutoSave
        auto_flush,  # fAutoFlush: clusters are this many entries
        1000000,  # fEstimate
    )
    buf.raw(b"\x00\x00")  # fClusterRangeEnd, fClusterSize: empty (speed bumps only)
    buf.raw(_TIOFEATURES)
    at = buf.tobjarray_begin(len(branches), _ON_HEAP | 0x4000)  # fBranches (kIsOwner)
    leaf_refs = [_write_branch(buf, b, num_entries, compress) for b in branches]
    buf.end(at)
    at = buf.tobjarray_begin(len(leaf_refs))  # fLeaves: references to the leaves above
    for ref in leaf_refs:
        buf.pack(">I", ref)
    buf.end(at)
    # fAliases, fIndexValues (empty TArrayD), fIndex (empty TArrayI), fTreeIndex, fFriends, fUserInfo, fBranchRef
    buf.raw(b"\x00" * 28)
    buf.end(at_tree)
    return bytes(buf.b)


# ---------------------------------------------------------------------------------------------
# streamer infos

# (class, name, title, fType, fSize, fTypeName, extra) per element; facts about ROOT 6's classes
_TBRANCHELEMENT_V10 = [
    ("TStreamerBase", "TBranch", "Branch descriptor", 0, 0, "BASE", (278366892, 13)),
    ("TStreamerString", "fClassName", "Class name of referenced object", 65, 24, "TString", None),
    ("TStreamerString", "fParentName", "Name of parent class", 65, 24, "TString", None),
    ("TStreamerString", "fClonesName", "Name of class in TClonesArray (if any)", 65, 24, "TString", None),
    ("TStreamerBasicType", "fCheckSum", "CheckSum of class", 13, 4, "unsigned int", None),
    ("TStreamerBasicType", "fClassVersion", "Version number of class", 2, 2, "short", None),
    ("TStreamerBasicType", "fID", "element serial number in fInfo", 3, 4, "int", None),
    ("TStreamerBasicType", "fType", "branch type", 3, 4, "int", None),
    ("TStreamerBasicType", "fStreamerType", "branch streamer type", 3, 4, "int", None),
    ("TStreamerBasicType", "fMaximum", "Maximum entries for a TClonesArray or variable array", 3, 4, "int", None),
    ("TStreamerObjectPointer", "fBranchCount", "pointer to primary branchcount branch", 64, 8, "TBranchElement*", None),
    (
        "TStreamerObjectPointer",
        "fBranchCount2",
        "pointer to secondary branchcount branch",
        64,
        8,
        "TBranchElement*",
        None,
    ),
]
_TLEAFELEMENT_V1 = [
    ("TStreamerBase", "TLeaf", "Leaf: description of a Branch data type", 0, 0, "BASE", (1830715730, 2)),
    ("TStreamerBasicType", "fID", "element serial number in fInfo", 3, 4, "int", None),
    ("TStreamerBasicType", "fType", "leaf type", 3, 4, "int", None),
]
_ELEMENT_VERSIONS = {
    "TStreamerBase": 3,
    "TStreamerString": 2,
    "TStreamerBasicType": 2,
    "TStreamerObjectPointer": 2,
    "TStreamerSTL": 3,
}


def _streamer_info(buf: _Buffer, name: str, checksum: int, version: int, elements: list) -> None:
    """One TStreamerInfo (v9) as a TList entry: object pointer, then the (empty) option string."""
    at_object = buf.begin_object("TStreamerInfo")
    at_info = buf.begin(9)
    buf.tnamed(name, "", _ON_HEAP | 0x00010000)
    buf.pack(">Ii", checksum, version)
    at_array_object = buf.begin_object("TObjArray")
    at_array = buf.tobjarray_begin(len(elements), 0x02000000)
    for cls, el_name, title, ftype, size, type_name, extra in elements:
        at_el_object = buf.begin_object(cls)
        at_el = buf.begin(_ELEMENT_VERSIONS[cls])
        at_base = buf.begin(4)  # TStreamerElement
        buf.tnamed(el_name, title)
        buf.pack(">iiii", ftype, size, 0, 0)  # fType, fSize, fArrayLength, fArrayDim
        buf.pack(">5i", 0, extra[0] if cls == "TStreamerBase" else 0, 0, 0, 0)  # fMaxIndex (a base: its checksum)
        buf.string(type_name)
        buf.end(at_base)
        if cls == "TStreamerBase":
            buf.pack(">i", extra[1])  # fBaseVersion
        elif cls == "TStreamerSTL":
            buf.pack(">ii", *extra)  # fSTLtype, fCtype
        buf.end(at_el)
        buf.end(at_el_object)
    buf.end(at_array)
    buf.end(at_array_object)
    buf.end(at_info)
    buf.end(at_object)
    buf.string("")


def _stl_streamer(buf: _Buffer, ctype: _CppType) -> None:
    """The TStreamerInfo ROOT records for a vector class: one TStreamerSTL element named 'This'."""
    name = ctype.class_name
    inner = _CppType(ctype.number, ctype.depth - 1)
    value = inner.class_name if inner.depth else ctype.number.typedef
    ctype_code = 61 if inner.depth else ctype.number.code  # kObject for a vector of vectors
    title = f"<{value}> Used to call the proper TStreamerInfo case"
    element = ("TStreamerSTL", "This", title, 500, 0, name, (1, ctype_code))  # kSTL, kSTLvector
    _streamer_info(buf, name, _checksum(name), _STL_VERSION, [element])


def _uproot_raw_streamers(leaf_classes: set[str]) -> list[tuple[bytes, str, int]]:
    """ROOT's own streamer records for TTree, TBranch and the TLeaf classes, as uproot ships them."""
    import uproot.models.TLeaf
    import uproot.models.TTree

    models = [uproot.models.TTree.Model_TTree_v20]
    models += [getattr(uproot.models.TLeaf, f"Model_{cls}_v1", None) for cls in sorted(leaf_classes)]
    out, seen = [], set()
    for model in models:
        for raw in getattr(model, "class_rawstreamers", None) or ():
            if (raw[2], raw[3]) not in seen:
                seen.add((raw[2], raw[3]))
                out.append((raw[1], raw[2], raw[3]))
    return out


def _streamer_list(keylen: int, columns: list[_Column]) -> bytes:
    """The TList of TStreamerInfo records this file's classes need."""
    buf = _Buffer(keylen, class_refs=False)
    at_list = buf.begin(5)
    buf.tobject(0x02000000)
    buf.string("")
    count_at = len(buf.b)
    buf.pack(">i", 0)
    count = 0
    vectors = sorted({c.ctype for c in columns if c.ctype.depth}, key=lambda t: (t.depth, t.class_name))
    for ctype in vectors:
        _stl_streamer(buf, ctype)
        count += 1
    leaf_classes = {c.ctype.number.leaf for c in columns if not c.ctype.depth}
    for raw, _, _ in _uproot_raw_streamers(leaf_classes):
        buf.raw(raw)
        count += 1
    if vectors:
        _streamer_info(buf, "TBranchElement", 3880738403, 10, _TBRANCHELEMENT_V10)
        _streamer_info(buf, "TLeafElement", 2689566867, 1, _TLEAFELEMENT_V1)
        count += 2
    struct.pack_into(">i", buf.b, count_at, count)
    buf.end(at_list)
    return bytes(buf.b)


# ---------------------------------------------------------------------------------------------
# the file


def _datime(when: datetime.datetime) -> int:
    """TDatime's packed date and time."""
    return (
        (when.year - 1995) << 26 | when.month << 22 | when.day << 17 | when.hour << 12 | when.minute << 6 | when.second
    )


class _FileWriter:
    """Writes keys one after another and, at the end, the header and top directory that point to them."""

    def __init__(self, fh, file_name: str, compression) -> None:
        self.fh = fh
        self.name = file_name
        self.compression = compression
        self.compress_code = compression.code if compression is not None else 0
        self.datime = _datime(datetime.datetime.now())
        self.uuid = uuid.uuid4().bytes
        self.tree_keys: list[bytes] = []
        # the top directory's key and record are rewritten at the end, in place
        self.dir_keylen = 26 + len(_string("TFile")) + len(_string(self.name)) + len(_string(""))
        self.name_bytes = self.dir_keylen + len(_string(self.name)) + len(_string(""))
        self.pos = _BEGIN + self.name_bytes + 60
        fh.write(b"\x00" * self.pos)

    def key_header(
        self, cls: str, name: str, title: str, objlen: int, nbytes_data: int, location: int,
        cycle: int = 1, parent: int = _BEGIN, big: bool | None = None, keylen: int | None = None,
    ) -> bytes:  # fmt: skip
        """TKey header; ``keylen`` is given where more than the header belongs to the key (TBasket)."""
        big = location > _START_BIG_FILE if big is None else big
        keylen = self.keylen(cls, name, title, big) if keylen is None else keylen
        fields = (keylen + nbytes_data, 1004 if big else 4, objlen, self.datime, keylen, cycle, location, parent)
        head = struct.pack(">ihiIhhqq" if big else ">ihiIhhii", *fields)
        return head + _string(cls) + _string(name) + _string(title)

    @staticmethod
    def keylen(class_name: str, name: str, title: str, big: bool) -> int:
        """Length of a TKey header: 64-bit (``big``) or 32-bit seeks, then class name, name and title."""
        return (34 if big else 26) + len(_string(class_name)) + len(_string(name)) + len(_string(title))

    def write(self, data) -> int:
        location = self.pos
        self.pos += self.fh.write(data)
        return location

    def write_object(
        self, cls: str, name: str, title: str, build: Callable[[int], bytes], compress: bool = True
    ) -> tuple[int, bytes]:
        """Write an object key at the end of the file; ``build(keylen)`` streams the object.

        Returns (location, key header)."""
        location = self.pos
        keylen = self.keylen(cls, name, title, location > _START_BIG_FILE)
        raw = build(keylen)
        data = uproot.compression.compress(raw, self.compression) if compress and self.compression is not None else raw
        head = self.key_header(cls, name, title, len(raw), len(data), location)
        self.write(head + bytes(data))
        return location, head

    def write_basket(self, tree: str, branch: str, basket: _Basket) -> tuple[int, int]:
        """Write one TBasket key; returns (location, total bytes on disk)."""
        location = self.pos
        head = self.key_header(
            "TBasket", branch, tree, basket.objlen, basket.size, location, cycle=0, big=True, keylen=basket.keylen
        )
        head += struct.pack(
            ">Hiiii", 3, max(_BASKET_SIZE, basket.last), basket.nev_buf_size, basket.nev_buf, basket.last
        )
        head += b"\x00"  # flag: header only (baskets in keys)
        assert len(head) == basket.keylen
        self.write(head)
        for chunk in basket.chunks:
            self.write(chunk)
        return location, basket.keylen + basket.size

    def finish(self, columns: list[_Column]) -> None:
        """Keys list, streamer infos, free segments, then the header and top directory."""
        # KeysList: the headers of the top directory's keys
        keys_data = struct.pack(">i", len(self.tree_keys)) + b"".join(self.tree_keys)
        keys_location = self.pos
        keys_head = self.key_header("TFile", self.name, "", len(keys_data), len(keys_data), keys_location)
        self.write(keys_head + keys_data)
        keys_nbytes = len(keys_head) + len(keys_data)

        info_location, _ = self.write_object(
            "TList", "StreamerInfo", "Doubly linked list", lambda keylen: _streamer_list(keylen, columns)
        )
        info_nbytes = self.pos - info_location

        free_location = self.pos
        free_head_len = self.keylen("TFile", self.name, "", free_location > _START_BIG_FILE)
        end = free_location + free_head_len + 10
        big_free = end > _START_BIG_FILE
        if big_free:
            end += 8
            limit = _START_BIG_FILE
            while limit <= end:
                limit *= 2
            free = struct.pack(">HQQ", 1001, end, limit)
        else:
            free = struct.pack(">HII", 1, end, _START_BIG_FILE)
        self.write(self.key_header("TFile", self.name, "", len(free), len(free), free_location) + free)
        assert self.pos == end

        big = end > _START_BIG_FILE
        # the top directory: TFile key, name and title, TDirectory record (60 bytes either way)
        dir_head = self.key_header(
            "TFile",
            self.name,
            "",
            self.name_bytes - self.dir_keylen + 60,
            self.name_bytes - self.dir_keylen + 60,
            _BEGIN,
            parent=0,
            big=False,
        )
        record = _string(self.name) + _string("")
        if big:
            record += struct.pack(
                ">hIIiiqqq", 1005, self.datime, self.datime, keys_nbytes, self.name_bytes, _BEGIN, 0, keys_location
            )
            record += struct.pack(">H", 1) + self.uuid
        else:
            record += struct.pack(
                ">hIIiiiii", 5, self.datime, self.datime, keys_nbytes, self.name_bytes, _BEGIN, 0, keys_location
            )
            record += struct.pack(">H", 1) + self.uuid + b"\x00" * 12  # room to grow to 64-bit seeks
        self.fh.seek(_BEGIN)
        self.fh.write(dir_head + record)

        if big:
            header = struct.pack(
                ">4siiqqiiiBiqiH16s", b"root", _ROOT_VERSION + 1000000, _BEGIN, end, free_location, end - free_location,
                1, self.name_bytes, 8, self.compress_code, info_location, info_nbytes, 1, self.uuid,
            )  # fmt: skip
        else:
            header = struct.pack(
                ">4siiiiiiiBiiiH16s", b"root", _ROOT_VERSION, _BEGIN, end, free_location, end - free_location,
                1, self.name_bytes, 4, self.compress_code, info_location, info_nbytes, 1, self.uuid,
            )  # fmt: skip
        self.fh.seek(0)
        self.fh.write(header)
        self.fh.seek(end)


def _compression(name: str, level: int):
    """An uproot compression codec, or None for uncompressed."""
    codecs = {
        "zlib": uproot.compression.ZLIB,
        "lzma": uproot.compression.LZMA,
        "lz4": uproot.compression.LZ4,
        "zstd": uproot.compression.ZSTD,
    }
    if name is None or str(name).lower() in ("none", ""):
        return None
    if str(name).lower() not in codecs:
        raise ValueError(f"unknown compression {name!r}; use one of {sorted(codecs)} or 'none'")
    if not isinstance(level, int) or isinstance(level, bool) or level < 0:
        raise ValueError(f"compression level must be a non-negative integer, got {level!r}")
    if level == 0:
        return None
    codec = codecs[str(name).lower()](level)
    uproot.compression.compress(bytes(256), codec)  # fail now, not mid-write, if its library is missing
    return codec


def _prepare(trees: Mapping[str, Mapping[str, tuple[str, object]]]) -> list[tuple[str, list[_Column], int]]:
    """Parse types and convert data of every branch before anything is written."""
    if not isinstance(trees, Mapping) or not trees:
        raise ValueError("trees must be a non-empty mapping {tree_name: {branch_name: (cpp_type, data)}}")
    out = []
    for tree, branches in trees.items():
        if not isinstance(tree, str) or not _NAME_RE.match(tree):
            raise ValueError(f"tree name {tree!r} is not an identifier")
        if not isinstance(branches, Mapping) or not branches:
            raise ValueError(f"tree {tree!r}: needs a non-empty mapping of branches")
        columns: list[_Column] = []
        for name, spec in branches.items():
            where = f"tree {tree!r}, branch {name!r}"
            if not isinstance(name, str) or not _NAME_RE.match(name):
                raise ValueError(f"{where}: branch name is not an identifier")
            if not isinstance(spec, tuple) or len(spec) != 2:
                raise ValueError(f"{where}: expected a (cpp_type, data) pair")
            try:
                col = _column(name, _parse_type(spec[0]), spec[1])
            except (ValueError, TypeError, OverflowError) as err:
                raise ValueError(f"{where}: {err}") from None
            if columns and col.num_entries != columns[0].num_entries:
                first = columns[0]
                raise ValueError(
                    f"{where}: has {col.num_entries} entries but branch {first.name!r} has {first.num_entries}"
                )
            columns.append(col)
        out.append((tree, columns, columns[0].num_entries))
    return out


def _ordered_results(pool, tasks: Iterator[tuple], fn: Callable, window: int) -> Iterator:
    """fn(*task) for each task, in order, at most ``window`` running ahead."""
    if pool is None:
        for task in tasks:
            yield fn(*task)
        return
    pending: collections.deque = collections.deque()
    for task in tasks:
        pending.append(pool.submit(fn, *task))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _open_temporary(directory: str, base: str) -> tuple[str, int]:
    """A new file next to the target (same file system, so os.replace is atomic), with normal permissions."""
    while True:
        tmp = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue


def write_root_file(
    path: str | os.PathLike,
    trees: Mapping[str, Mapping[str, tuple[str, object]]],
    *,
    compression: str = "zlib",
    level: int = 1,
    basket_entries: int = 2000,
    threads: int = 1,
) -> None:
    """Write ``{tree_name: {branch_name: (cpp_type, data)}}`` as a ROOT file of TTrees, atomically.

    ``cpp_type`` is a number type (``int``, ``unsigned int``, ``Long64_t``, ``ULong64_t``,
    ``size_t``/``unsigned long``, ``float``, ``double``) or ``vector<...>`` of one, nested to
    any depth (``std::`` and ``> >`` spellings accepted). ``data`` is a flat numpy array (or
    sequence) for numbers and an awkward Array, or nested Python lists, for vectors; every
    branch of a tree has the same number of entries. Values are cast to the declared type.

    Each branch gets one basket per ``basket_entries`` entries, compressed with
    ``compression`` ("zlib", "lzma", "lz4", "zstd" or "none") at ``level``. The file is
    written to a temporary file beside ``path`` and renamed into place, so ``path`` is
    either untouched or complete; on any error the temporary file is removed. Bad input
    raises ValueError naming the tree and branch, before anything is written. ``threads`` > 1
    compresses baskets in parallel (the codecs release the GIL): worth it for one large write,
    not when every core already runs a writer, as in ``raypf simulate``.
    """
    if not isinstance(basket_entries, int) or isinstance(basket_entries, bool) or basket_entries < 1:
        raise ValueError(f"basket_entries must be a positive integer, got {basket_entries!r}")
    codec = _compression(compression, level)
    prepared = _prepare(trees)

    path = os.fspath(path)
    directory, base = os.path.split(os.path.abspath(path))
    tmp, fd = _open_temporary(directory, base)
    # compression may run on several threads; output order stays fixed
    workers = max(1, threads) if codec is not None else 1
    pool = None
    try:
        if workers > 1:
            pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="rootio")
        with os.fdopen(fd, "wb") as fh:
            out = _FileWriter(fh, base, codec)
            for tree, columns, n in prepared:
                written = [_BranchOut(col, [], [], []) for col in columns]
                # ROOT's order: cluster by cluster, every branch within a cluster
                plan = [(start, b) for start in range(0, n, basket_entries) for b in written]
                tasks = ((tree, b.col, start, min(start + basket_entries, n), codec) for start, b in plan)
                for (start, b), basket in zip(plan, _ordered_results(pool, tasks, _make_basket, 2 * workers)):
                    location, nbytes = out.write_basket(tree, b.col.name, basket)
                    b.basket_bytes.append(nbytes)
                    b.basket_entry.append(start)
                    b.basket_seek.append(location)
                    b.tot_bytes += basket.keylen + basket.objlen
                    b.zip_bytes += nbytes
                build = functools.partial(
                    _tree_object, tree, written, n, compress=out.compress_code, auto_flush=basket_entries
                )
                out.tree_keys.append(out.write_object("TTree", tree, tree, build)[1])
            out.finish([col for _, columns, _ in prepared for col in columns])
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
