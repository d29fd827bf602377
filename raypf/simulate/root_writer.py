"""Write ROOT TTrees whose branches have real C++ STL types, as ATLAS MLTree ntuples do.

uproot writes flat numbers and counted C arrays (``nX`` + ``X[nX]``) into
TTrees, but not ``vector<float>`` or ``vector<vector<vector<int>>>`` branches,
and ``file[name] = {...}`` makes an RNTuple. This module serialises the TTree
metadata itself -- TBranch/TLeaf for numbers, TBranchElement/TLeafElement for
STL vectors, as ROOT does -- and lets uproot handle the file around it
(header, keys, free segments, compression, streamer infos).

Each entry of a vector branch is ROOT's object-wise serialisation: a byte
count and version header, then the element count and big-endian elements,
inner vectors nesting their counts without headers. Serialisation is
vectorised over all entries of a basket with numpy.
"""

from __future__ import annotations

import datetime
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import awkward as ak
import numpy as np
import uproot
import uproot.compression
import uproot.const
import uproot.models.TBasket
import uproot.reading
import uproot.serialization
import uproot.writing._cascade

__all__ = ["write_root_file", "parse_cpp_type"]

_SCALARS: dict[str, tuple[str, int, str]] = {
    # C++ name: (big-endian dtype, ROOT fType code, TLeaf letter)
    "int": (">i4", uproot.const.kInt, "I"),
    "int_t": (">i4", uproot.const.kInt, "I"),
    "unsignedint": (">u4", uproot.const.kUInt, "i"),
    "uint_t": (">u4", uproot.const.kUInt, "i"),
    "long64_t": (">i8", uproot.const.kLong64, "L"),
    "long": (">i8", uproot.const.kLong, "L"),
    "ulong64_t": (">u8", uproot.const.kULong64, "l"),
    "unsignedlong": (">u8", uproot.const.kULong, "l"),
    "size_t": (">u8", uproot.const.kULong, "l"),
    "float": (">f4", uproot.const.kFloat, "F"),
    "double": (">f8", uproot.const.kDouble, "D"),
}
# How ROOT spells element types inside a vector's class name.
_ROOT_SPELLING = {">i4": "int", ">u4": "unsigned int", ">i8": "Long64_t", ">u8": "unsigned long", ">f4": "float", ">f8": "double"}
_STL_VECTOR_VERSION = 9
_BASKET_KEY_VERSION = 1004
_TLEAF_SPECIAL = {"I": ">ii", "i": ">ii", "L": ">qq", "l": ">qq", "F": ">ff", "D": ">dd"}


@dataclass(frozen=True)
class CppType:
    """A branch type: an element dtype nested in ``depth`` std::vectors (0 = a plain number)."""

    dtype: np.dtype
    depth: int
    ftype: int
    letter: str

    @property
    def class_name(self) -> str:
        inner = _ROOT_SPELLING[self.dtype.str.replace("<", ">").replace("|", ">")]
        for _ in range(self.depth):
            inner = f"vector<{inner}{' ' if inner.endswith('>') else ''}>"
        return inner


def parse_cpp_type(text: str) -> CppType:
    """Parse 'vector<vector<size_t> >', 'std::vector<float>', 'Long64_t', ... into a CppType."""
    t = text.replace("std::", "").replace(" ", "").lower()
    depth = 0
    while t.startswith("vector<") and t.endswith(">"):
        t, depth = t[len("vector<") : -1], depth + 1
    if t not in _SCALARS:
        raise ValueError(f"unsupported C++ type {text!r}")
    dtype, ftype, letter = _SCALARS[t]
    return CppType(np.dtype(dtype), depth, ftype, letter)


# ---------------------------------------------------------------------------------------------
# basket payloads


def _flatten_levels(data, depth: int, n: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Counts per nesting level (outermost first) and the flat leaf values of a depth-``depth`` array."""
    arr = data if isinstance(data, ak.Array) else ak.Array(data)
    if len(arr) != n:
        raise ValueError(f"has {len(arr)} entries, expected {n}")
    if arr.ndim != depth + 1:
        raise ValueError(f"has nesting depth {arr.ndim - 1}, expected {depth}")
    counts = []
    layout = ak.to_layout(arr)
    for _ in range(depth):
        layout = layout.to_ListOffsetArray64(True)  # also turns ListArray/RegularArray into offsets
        offsets = np.asarray(layout.offsets)
        counts.append(np.diff(offsets))
        layout = layout.content[offsets[0] : offsets[-1]]
    return counts, np.asarray(ak.to_numpy(ak.Array(layout)))


def _vector_payload(counts: list[np.ndarray], values: np.ndarray, dtype: np.dtype) -> tuple[bytes, np.ndarray]:
    """Object-wise serialisation of nested vectors for every entry; returns (bytes, entry byte offsets).

    Entry layout: [4-byte byte count | kByteCountMask][2-byte version] then the outer
    vector: [int32 n] followed by n values (vector<T>) or n inner vectors, each
    [int32 m][...] with no header of its own. Every field is a whole number of
    2-byte words, so the buffer is built as big-endian uint16: headers and counts
    are placed by index, and the values fill every remaining word, in order, with
    one masked assignment.
    """
    itemsize = dtype.itemsize
    n_entries = len(counts[0])
    entry_sizes = _vector_sizes(counts, itemsize) + 6
    starts = np.zeros(n_entries + 1, dtype=np.int64)
    np.cumsum(entry_sizes, out=starts[1:])
    words = np.empty(int(starts[-1]) // 2, dtype=">u2")
    fixed = np.zeros(len(words), dtype=bool)  # header and count words

    def place(byte_pos: np.ndarray, data: np.ndarray) -> None:
        halves = data.reshape(len(byte_pos), -1)
        at = byte_pos // 2
        for k in range(halves.shape[1]):
            words[at + k] = halves[:, k]
            fixed[at + k] = True

    byte_count = (entry_sizes - 4).astype(np.uint32) | np.uint32(uproot.const.kByteCountMask)
    header = np.empty((n_entries, 3), dtype=">u2")
    header[:, :2] = byte_count.astype(">u4").view(">u2").reshape(-1, 2)
    header[:, 2] = _STL_VECTOR_VERSION
    place(starts[:-1], header)

    pos = starts[:-1] + 6  # byte position of each vector's count at the current level
    for level, cnt in enumerate(counts):
        place(pos, cnt.astype(">i4").view(">u2"))
        if level < len(counts) - 1:
            content = np.repeat(pos + 4, cnt)  # parent's content start, once per child
            child_sizes = _vector_sizes(counts[level + 1 :], itemsize)
            before = np.cumsum(child_sizes) - child_sizes  # bytes of earlier children, counted globally
            first_child = np.repeat(np.cumsum(cnt) - cnt, cnt)
            pos = content + before - before[first_child] if len(before) else content
    words[~fixed] = np.ascontiguousarray(values, dtype=dtype.newbyteorder(">")).view(">u2")
    return words.tobytes(), starts


def _vector_sizes(counts: list[np.ndarray], itemsize: int) -> np.ndarray:
    """Byte size (count word included) of each vector at the level of counts[0]."""
    sizes = counts[-1].astype(np.int64) * itemsize + 4
    for level in range(len(counts) - 2, -1, -1):
        seg = np.repeat(np.arange(len(counts[level])), counts[level])
        sizes = np.bincount(seg, weights=sizes, minlength=len(counts[level])).astype(np.int64) + 4
    return sizes


# ---------------------------------------------------------------------------------------------
# ROOT object serialisation


def _nv(payload: bytes, version: int) -> bytes:
    """Byte-count + version header followed by the payload."""
    return uproot.serialization.numbytes_version(len(payload), version) + payload


def _tobject(bits: int = 0) -> bytes:
    return struct.pack(">HII", 1, 0, 0x03000000 | bits)


def _tnamed(name: str, title: str, bits: int = 0) -> bytes:
    return _nv(_tobject(bits) + uproot.serialization.string(name) + uproot.serialization.string(title), 1)


def _any(class_name: str, payload: bytes) -> bytes:
    """An object pointer written in full: byte count, new-class tag, class name, object."""
    body = struct.pack(">I", uproot.const.kNewClassTag) + class_name.encode() + b"\x00" + payload
    return struct.pack(">I", (len(body)) | uproot.const.kByteCountMask) + body


_EMPTY_TOBJARRAY = _nv(_tobject() + b"\x00" + struct.pack(">ii", 0, 0), 3)
_TATTFILL = _nv(struct.pack(">hh", 0, 1001), 2)
_TIOFEATURES = b"@\x00\x00\x07\x00\x00\x1a\xa1/\x10\x00"


@dataclass
class _BranchOut:
    name: str
    ctype: CppType
    basket_bytes: list[int]
    basket_entry: list[int]
    basket_seek: list[int]
    tot_bytes: int
    zip_bytes: int


def _leaf(b: _BranchOut) -> tuple[str, bytes]:
    ct = b.ctype
    if ct.depth == 0:
        tleaf = _nv(
            _tnamed(b.name, b.name, 0)
            + struct.pack(">iii??", 1, ct.dtype.itemsize, 0, False, ct.letter.islower())
            + b"\x00\x00\x00\x00",  # fLeafCount
            2,
        )
        return "TLeaf" + ct.letter.upper(), _nv(tleaf + struct.pack(_TLEAF_SPECIAL[ct.letter], 0, 0), 1)
    tleaf = _nv(_tnamed(b.name, b.name, 0) + struct.pack(">iii??", 1, 0, 0, False, False) + b"\x00\x00\x00\x00", 2)
    return "TLeafElement", _nv(tleaf + struct.pack(">ii", -1, -1), 1)


def _branch(b: _BranchOut, n_entries: int, capacity: int) -> tuple[str, bytes, int]:
    """Serialised TBranch / TBranchElement; returns (class, bytes, offset of the leaf within them)."""
    n_baskets = len(b.basket_seek)
    is_vector = b.ctype.depth > 0
    entry_offset_len = 1000 if is_vector else 0
    head = _tnamed(b.name, b.name, 0x00400000) + _TATTFILL
    head += struct.pack(">iiiiq", 0, 32000, entry_offset_len, n_baskets, n_entries)
    head += _TIOFEATURES
    head += struct.pack(">iIiqqqq", 0, capacity, 0, n_entries, 0, b.tot_bytes, b.zip_bytes)
    head += _EMPTY_TOBJARRAY  # sub-branches
    leaf_class, leaf_bytes = _leaf(b)
    leaves_head = _tobject() + b"\x00" + struct.pack(">ii", 1, 0)
    leaf_any = _any(leaf_class, leaf_bytes)
    leaves = _nv(leaves_head + leaf_any, 3)
    basket_bytes = np.zeros(capacity, ">i4")
    basket_entry = np.zeros(capacity, ">i8")
    basket_seek = np.zeros(capacity, ">i8")
    basket_bytes[:n_baskets] = b.basket_bytes
    basket_entry[: n_baskets + 1] = [*b.basket_entry, n_entries]
    basket_seek[:n_baskets] = b.basket_seek
    tail = _EMPTY_TOBJARRAY  # fBaskets (written as separate keys)
    tail += b"\x01" + basket_bytes.tobytes() + b"\x01" + basket_entry.tobytes() + b"\x01" + basket_seek.tobytes()
    tail += b"\x00"  # fFileName
    tbranch_payload = head + leaves + tail
    tbranch = _nv(tbranch_payload, 13)
    # where the leaf's pointer starts inside tbranch: 6 (TBranch header) + head + 6 (TObjArray header) + leaves_head
    leaf_in_tbranch = 6 + len(head) + 6 + len(leaves_head)
    if not is_vector:
        return "TBranch", tbranch, leaf_in_tbranch
    element = tbranch
    element += uproot.serialization.string(b.ctype.class_name)  # fClassName
    element += uproot.serialization.string("")  # fParentName
    element += uproot.serialization.string("")  # fClonesName
    element += struct.pack(">Ihiiii", 0, _STL_VECTOR_VERSION, -1, 0, -1, 0)  # checksum, class version, fID, fType, fStreamerType, fMaximum
    element += b"\x00\x00\x00\x00" * 2  # fBranchCount, fBranchCount2
    return "TBranchElement", _nv(element, 10), 6 + leaf_in_tbranch


def _tree_bytes(name: str, title: str, branches: list[_BranchOut], n_entries: int, key_len: int) -> bytes:
    capacity = max(max((len(b.basket_seek) for b in branches), default=0) + 2, 10)
    tot = sum(b.tot_bytes for b in branches)
    zipped = sum(b.zip_bytes for b in branches)
    head = _tnamed(name, title)
    head += _nv(struct.pack(">hhh", 602, 1, 1), 2)  # TAttLine
    head += _TATTFILL
    head += _nv(struct.pack(">hhf", 1, 1, 1.0), 2)  # TAttMarker
    head += struct.pack(">qqqqqdiiiiiqqqqqq", n_entries, tot, zipped, 0, 0, 1.0, 0, 25, 0, 1000, 0, 10**12, 10**12, 0, -300000000, -30000000, 1000000)
    head += b"\x00\x00" + _TIOFEATURES  # two empty cluster arrays (speedbumps), fIOFeatures
    # TObjArray of branches; positions are relative to the start of the key (ROOT's object references)
    array_head = _tobject() + b"\x00" + struct.pack(">ii", len(branches), 0)
    tree_prefix = 6 + len(head) + 6 + len(array_head)  # TTree header, body so far, TObjArray header
    pieces, leaf_refs, pos = [], [], key_len + tree_prefix
    for b in branches:
        cls, blob, leaf_off = _branch(b, n_entries, capacity)
        item = _any(cls, blob)
        prefix = 8 + len(cls) + 1  # byte count, new-class tag, class name
        leaf_refs.append(pos + prefix + leaf_off + uproot.const.kMapOffset)
        pieces.append(item)
        pos += len(item)
    branch_array = _nv(array_head + b"".join(pieces), 3)
    refs = np.array(leaf_refs, ">u4").tobytes()
    leaf_array = _nv(_tobject() + b"\x00" + struct.pack(">ii", len(leaf_refs), 0) + refs, 3)
    tail = b"\x00" * 4  # fAliases
    tail += b"\x00" * 4 + b"\x00" * 4  # fIndexValues, fIndex (empty arrays)
    tail += b"\x00" * 16  # fTreeIndex, fFriends, fUserInfo, fBranchRef
    return _nv(head + branch_array + leaf_array + tail, 20)


# ---------------------------------------------------------------------------------------------
# writing


def _compression(name: str, level: int):
    if name in (None, "none"):
        return None
    table = {"zlib": uproot.compression.ZLIB, "lz4": uproot.compression.LZ4, "zstd": uproot.compression.ZSTD, "lzma": uproot.compression.LZMA}
    if name not in table:
        raise ValueError(f"unknown compression {name!r}; use one of {sorted(table)} or 'none'")
    return table[name](level)


def _write_basket(sink, freesegments, parent_location: int, tree: str, branch: str, payload: bytes, entry_offsets, n: int, item_size: int, compression) -> tuple[int, int, int]:
    """Write one TBasket key; returns (uncompressed size incl. key, total bytes on disk, location)."""
    cls, nm, tt = (uproot.serialization.string(x) for x in ("TBasket", branch, tree))
    key_len = uproot.reading._key_format_big.size + len(cls) + len(nm) + len(tt) + uproot.models.TBasket._tbasket_format2.size + 1
    if entry_offsets is None:
        raw = payload
        nev_buf_size, last = item_size, key_len + len(payload)
    else:
        offsets = (np.asarray(entry_offsets, dtype=np.int64) + key_len).astype(">i4")
        raw = payload + struct.pack(">I", len(offsets)) + offsets.tobytes()
        nev_buf_size, last = len(offsets) + 1, key_len + len(payload)
    data = uproot.compression.compress(raw, compression) if compression is not None else raw
    n_bytes = key_len + len(data)
    location = freesegments.allocate(n_bytes, dry_run=False)
    stamp = uproot._util.datetime_to_code(datetime.datetime.now())
    key = uproot.reading._key_format_big.pack(n_bytes, _BASKET_KEY_VERSION, len(raw), stamp, key_len, 0, location, parent_location)
    basket = uproot.models.TBasket._tbasket_format2.pack(3, 32000, nev_buf_size, n, last)
    sink.write(location, b"".join([key, cls, nm, tt, basket, b"\x00", data]))
    return key_len + len(raw), n_bytes, location


def _write_tree(file, name: str, columns: Mapping[str, tuple[str, object]], compression, basket_entries: int) -> None:
    if not columns:
        raise ValueError(f"tree {name!r}: no branches")
    lengths = {}
    parsed = {}
    for bname, (cpp, data) in columns.items():
        try:
            parsed[bname] = parse_cpp_type(cpp)
        except ValueError as err:
            raise ValueError(f"tree {name!r}, branch {bname!r}: {err}") from None
        lengths[bname] = len(data)
    n_entries = next(iter(lengths.values()))
    bad = {k: v for k, v in lengths.items() if v != n_entries}
    if bad:
        raise ValueError(f"tree {name!r}: branch lengths differ: {bad} vs {n_entries} entries of {next(iter(lengths))!r}")

    sink = file.file.sink
    cascading = file.file._cascading
    directory = cascading.rootdirectory
    parent = directory.key.location
    out = []
    for bname, (cpp, data) in columns.items():
        ct = parsed[bname]
        b = _BranchOut(bname, ct, [], [], [], 0, 0)
        try:
            if ct.depth == 0:
                arr = np.asarray(ak.to_numpy(data) if isinstance(data, ak.Array) else data)
                if arr.ndim != 1:
                    raise ValueError(f"expected a flat array of numbers, got shape {arr.shape}")
                flat = arr.astype(ct.dtype)
            else:
                counts, values = _flatten_levels(data, ct.depth, n_entries)
        except (ValueError, TypeError) as err:
            raise ValueError(f"tree {name!r}, branch {bname!r}: {err}") from None
        for start in range(0, max(n_entries, 1), basket_entries):
            stop = min(start + basket_entries, n_entries)
            if stop <= start:
                break
            if ct.depth == 0:
                payload, offsets = flat[start:stop].tobytes(), None
            else:
                sub_counts, sub_values = _slice_levels(counts, values, start, stop)
                payload, offsets = _vector_payload(sub_counts, sub_values, ct.dtype)
            size, n_bytes, loc = _write_basket(sink, cascading.freesegments, parent, name, bname, payload, offsets, stop - start, ct.dtype.itemsize, compression)
            b.basket_bytes.append(n_bytes)
            b.basket_entry.append(start)
            b.basket_seek.append(loc)
            b.tot_bytes += size
            b.zip_bytes += n_bytes
        out.append(b)
    key_len = uproot.reading._key_format_big.size + sum(len(uproot.serialization.string(x)) for x in ("TTree", name, name))
    raw = _tree_bytes(name, name, out, n_entries, key_len)
    directory.add_object(sink, "TTree", name, name, raw, len(raw), big=True)


def _slice_levels(counts: list[np.ndarray], values: np.ndarray, start: int, stop: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Counts and values of entries [start, stop) of a nested array given by per-level counts."""
    out = []
    lo, hi = start, stop
    for cnt in counts:
        offsets = np.zeros(len(cnt) + 1, dtype=np.int64)
        np.cumsum(cnt, out=offsets[1:])
        out.append(cnt[lo:hi])
        lo, hi = int(offsets[lo]), int(offsets[hi])
    return out, values[lo:hi]


def _streamers():
    models = (
        uproot.models.TLeaf.Model_TLeafI_v1,
        uproot.models.TLeaf.Model_TLeafL_v1,
        uproot.models.TLeaf.Model_TLeafF_v1,
        uproot.models.TLeaf.Model_TLeafD_v1,
        uproot.models.TBranch.Model_TBranch_v13,
        uproot.models.TTree.Model_TTree_v20,
    )
    seen, out = set(), []
    for model in models:
        for raw in model.class_rawstreamers:
            if (raw[-2], raw[-1]) not in seen:
                seen.add((raw[-2], raw[-1]))
                out.append(uproot.writing._cascade.RawStreamerInfo(*raw))
    return out


def write_root_file(
    path: str | os.PathLike,
    trees: Mapping[str, Mapping[str, tuple[str, object]]],
    *,
    compression: str = "zstd",
    level: int = 1,
    basket_entries: int = 2000,
) -> None:
    """Write ``{tree: {branch: (cpp_type, data)}}`` to ``path`` atomically (temporary file, then rename).

    Scalars are numpy arrays; vectors are awkward arrays (or lists) of matching
    depth. Values are cast to the declared C++ type. On any error the temporary
    file is removed and nothing appears at ``path``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with uproot.recreate(tmp, compression=None) as f:
            codec = _compression(compression, level)
            for tree_name, columns in trees.items():
                _write_tree(f, tree_name, columns, codec, basket_entries)
            f.file._cascading.streamers.update_streamers(f.file.sink, _streamers())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
