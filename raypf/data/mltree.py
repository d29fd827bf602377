"""Reading MLTree ROOT files: entry ranges, canonical dtypes, and errors that name the file and branch.

Real MLTree files differ between versions: numeric branches may be wider or
narrower than DESIGN.md lists and unused branches may be missing. Everything
read here is cast to the canonical types of ``mltree_schema`` so downstream
code sees one layout; anything unreadable raises ``MLTreeError`` naming the
file (and the tree or branch).
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import awkward as ak
import numpy as np

from raypf.data.basket_io import BasketTable, read_baskets
from raypf.data.mltree_schema import CELL_GEO_BRANCHES, CELL_GEO_TREE, EVENT_BRANCHES, EVENT_TREE

log = logging.getLogger(__name__)

_DTYPES = {"int": np.int32, "Long64_t": np.int64, "float": np.float32, "size_t": np.uint64}

#: Per-event count branches and a branch each must agree with (MLTree writes both).
COUNTERS = {"nTrack": "trackPt", "nCluster": "cluster_E", "nTruthPart": "truthPartPdgId"}


class MLTreeError(ValueError):
    """An MLTree file cannot be used; the message names the file and, where known, the branch."""


def canonical_dtype(cpp_type: str) -> np.dtype:
    """Element dtype of an MLTree branch type such as ``vector<vector<size_t>>``."""
    inner = cpp_type.replace("vector<", "").replace(">", "").strip()
    return np.dtype(_DTYPES[inner])


@dataclass(frozen=True)
class EntryRange:
    """A slice of one file's EventTree: the unit of work for parallel reading."""

    path: str
    start: int
    stop: int


def _open(path: str):
    """Open a ROOT file; a local one through one plain file handle read in the calling thread.

    uproot's default source (fsspec) opens the file anew for every basket it reads, which costs
    ~0.04 ms a time over the ~200 small baskets of an MLTree entry range.
    """
    import uproot

    local = "://" not in path
    if local and not os.path.exists(path):
        raise MLTreeError(f"{path}: no such file")
    options = {"handler": uproot.MultithreadedFileSource, "use_threads": False} if local else {}
    try:
        return uproot.open(path, **options)
    except Exception as err:  # noqa: BLE001 - uproot raises many kinds for corrupt files
        raise MLTreeError(f"{path}: not a readable ROOT file ({type(err).__name__}: {err})") from None


def _tree(file, path: str, name: str):
    try:
        obj = file[name]
    except Exception as err:  # noqa: BLE001
        raise MLTreeError(f"{path}: tree {name!r} missing or unreadable ({type(err).__name__}: {err})") from None
    if not hasattr(obj, "num_entries"):
        raise MLTreeError(f"{path}: {name!r} is a {type(obj).__name__}, not a tree")
    return obj


#: Open EventTrees kept per process: path -> (file stamp, file, tree, basket source), most recent last.
_OPEN_TREES: OrderedDict[str, tuple[tuple, object, object, _Baskets | None]] = OrderedDict()
_KEEP_OPEN = 4


class _Baskets:
    """A local file's descriptor for ``basket_io`` and each branch's basket table."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDONLY)
        self.tables: dict[str, BasketTable] = {}

    def table(self, branch) -> BasketTable:
        table = self.tables.get(branch.name)
        if table is None:
            table = self.tables[branch.name] = BasketTable(branch)
        return table

    def close(self) -> None:
        os.close(self.fd)


def _close(entry: tuple) -> None:
    entry[1].close()
    if entry[3] is not None:
        entry[3].close()


@contextmanager
def event_tree(path: str) -> Iterator[tuple[object, _Baskets | None]]:
    """The EventTree of ``path`` and, for a local file, its basket source, kept open while the file is unchanged.

    A worker reads many entry ranges of the same few files, and parsing the tree's metadata
    (~65 ms for MLTree's hundreds of branches) would otherwise be paid for every range. The
    file's inode, size and modification time are checked on every call, so a replaced or
    rewritten file is opened again. Remote files are opened per call and read through uproot.
    """
    try:
        st = os.stat(path) if "://" not in path else None
    except OSError:
        st = None  # _open reports it
    if st is None:
        with _open(path) as f:
            yield _tree(f, path, EVENT_TREE), None
        return
    stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
    hit = _OPEN_TREES.get(path)
    if hit is not None and hit[0] == stamp:
        _OPEN_TREES.move_to_end(path)
        yield hit[2], hit[3]
        return
    if hit is not None:
        _close(_OPEN_TREES.pop(path))
    f = _open(path)
    try:
        tree = _tree(f, path, EVENT_TREE)
        baskets = _Baskets(path)
    except BaseException:
        f.close()
        raise
    _OPEN_TREES[path] = (stamp, f, tree, baskets)
    while len(_OPEN_TREES) > _KEEP_OPEN:
        _close(_OPEN_TREES.popitem(last=False)[1])
    yield tree, baskets


def num_events(path: str) -> int:
    """Number of events in a file's EventTree."""
    with _open(path) as f:
        return int(_tree(f, path, EVENT_TREE).num_entries)


def entry_ranges(paths: Sequence[str], events_per_range: int) -> list[EntryRange]:
    """Split files into ranges of at most ``events_per_range`` events (reads only the tree headers)."""
    if events_per_range < 1:
        raise ValueError("events_per_range must be positive")
    out = []
    for path in paths:
        n = num_events(path)
        out.extend(EntryRange(path, s, min(s + events_per_range, n)) for s in range(0, n, events_per_range))
    return out


@dataclass(frozen=True, eq=False)
class Jagged:
    """One branch's entries as flat numpy: ``offsets[k]`` maps level-k lists to level k + 1 (all from 0).

    A number branch has no offsets; ``vector<vector<T>>`` has two levels (entries to clusters,
    clusters to values). Plain arrays keep the hot paths free of awkward's per-call overhead.
    """

    offsets: tuple[np.ndarray, ...]
    values: np.ndarray

    def counts(self, level: int = 0) -> np.ndarray:
        return np.diff(self.offsets[level])

    def to_awkward(self) -> ak.Array:
        layout = ak.contents.NumpyArray(self.values)
        for off in reversed(self.offsets):
            layout = ak.contents.ListOffsetArray(ak.index.Index64(off), layout)
        return ak.Array(layout)


def read_columns(path: str, branches: Sequence[str], start: int | None = None, stop: int | None = None) -> dict[str, Jagged]:
    """Read ``branches`` of EventTree entries [start, stop) as ``Jagged`` columns of canonical dtypes.

    Only the baskets overlapping the range are read. Count branches among ``branches``
    are checked against the vectors they count. The file stays open for the next range
    (``event_tree``).
    """
    unknown = [b for b in branches if b not in EVENT_BRANCHES]
    if unknown:
        raise ValueError(f"not MLTree EventTree branches: {unknown}")
    with event_tree(path) as (tree, baskets):
        present = set(tree.keys())
        missing = [b for b in branches if b not in present]
        if missing:
            raise MLTreeError(f"{path}: {EVENT_TREE} lacks branch(es) {', '.join(missing)}")
        n = int(tree.num_entries)
        lo = 0 if start is None else max(0, min(int(start), n))
        hi = n if stop is None else max(lo, min(int(stop), n))
        columns = {}
        for name in branches:
            try:
                col = _read_branch(tree[name], lo, hi, baskets)
            except MLTreeError:
                raise
            except Exception as err:  # noqa: BLE001 - truncated baskets, bad streamers, ...
                raise MLTreeError(f"{path}: branch {name!r} unreadable ({type(err).__name__}: {err})") from None
            columns[name] = _cast(col, canonical_dtype(EVENT_BRANCHES[name]), path, name)
    _check_counts(columns, path)
    return columns


def read_events(path: str, branches: Sequence[str], start: int | None = None, stop: int | None = None) -> ak.Array:
    """``read_columns`` as one awkward record array (one field per branch)."""
    columns = read_columns(path, branches, start, stop)
    return ak.zip({k: v.to_awkward() for k, v in columns.items()}, depth_limit=1)


def _nested_layout(interpretation) -> tuple[int, np.dtype] | None:
    """(depth, big-endian dtype) of an object-streamed ``vector<...<number>>`` branch, else None."""
    from uproot.containers import AsVector
    from uproot.interpretation.jagged import AsJagged
    from uproot.interpretation.numerical import AsDtype
    from uproot.interpretation.objects import AsObjects

    if isinstance(interpretation, AsJagged):  # vector<number>: 6-byte header, count, values
        content = interpretation.content
        if interpretation.header_bytes == 10 and type(content) is AsDtype and content.from_dtype.kind in "iuf":
            return 1, content.from_dtype
        return None
    if not isinstance(interpretation, AsObjects):
        return None
    model, depth = interpretation.model, 0
    while isinstance(model, AsVector):
        if bool(model.header) != (depth == 0):
            return None
        depth, model = depth + 1, model.values
    if depth < 2 or not isinstance(model, np.dtype) or model.kind not in "iuf":
        return None
    return depth, model


def _read_branch(branch, start: int, stop: int, baskets: _Baskets | None = None) -> Jagged:
    from uproot.interpretation.numerical import AsDtype

    interpretation = branch.interpretation
    if type(interpretation) is AsDtype:
        if baskets is not None and stop > start and interpretation.from_dtype.subdtype is None:
            fast = _read_flat(branch, start, stop, interpretation.from_dtype, baskets)
            if fast is not None:
                return fast
        return Jagged((), branch.array(entry_start=start, entry_stop=stop, library="np"))
    layout = _nested_layout(interpretation)
    if layout is not None and stop > start:
        fast = _read_nested(branch, start, stop, *layout, baskets)
        if fast is not None:
            return fast
    return _from_awkward(branch.array(entry_start=start, entry_stop=stop, library="ak"))


def _baskets_in(branch, start: int, stop: int, baskets: _Baskets | None) -> tuple[np.ndarray, list] | None:
    """The baskets holding entries [start, stop): their entry bytes end to end in one array and, per basket,
    (first entry, end entry, start and end of its bytes in that array, its entry offsets in that array or
    None for fixed-size entries). None where uproot must read the branch (entries in an embedded basket).

    A local file's baskets are read by ``basket_io``; a remote file's, or ones compressed with a codec
    ``basket_io`` does not handle, by uproot and copied together.
    """
    if baskets is not None:
        table = baskets.table(branch)
        if not table.complete:  # entries in an embedded (unwritten) basket
            return None
        which = table.overlapping(start, stop)
        got = read_baskets(baskets.fd, table.seek[which.start : which.stop], table.nbytes[which.start : which.stop])
        if got is not None:
            data, spans = got
            return data, [(int(table.entry[i]), int(table.entry[i + 1]), *span) for i, span in zip(which, spans)]
        bounds = {i: (int(table.entry[i]), int(table.entry[i + 1])) for i in which}
    else:
        every = [tuple(int(x) for x in branch.basket_entry_start_stop(i)) for i in range(branch.num_baskets)]
        if sum(b1 - b0 for b0, b1 in every) != branch.num_entries:  # entries in an embedded basket
            return None
        bounds = {i: (b0, b1) for i, (b0, b1) in enumerate(every) if b1 > start and b0 < stop}
    pieces, parts, base = [], [], 0
    for i, (b0, b1) in bounds.items():
        basket = branch.basket(i)
        piece = np.frombuffer(basket.data, dtype=np.uint8)
        offsets = None if basket.byte_offsets is None else np.asarray(basket.byte_offsets, dtype=np.int64) + base
        parts.append((b0, b1, base, base + len(piece), offsets))
        pieces.append(piece)
        base += len(piece)
    if not parts:
        return None
    return (pieces[0] if len(pieces) == 1 else np.concatenate(pieces)), parts


def _read_flat(branch, start: int, stop: int, dtype: np.dtype, baskets: _Baskets) -> Jagged | None:
    """A one-number-per-entry branch, from the raw baskets; None if they are not laid out as expected."""
    got = _baskets_in(branch, start, stop, baskets)
    if got is None:
        return None
    data, parts = got
    chunks = []
    for b0, b1, lo, hi, offs in parts:
        if offs is not None or hi - lo != (b1 - b0) * dtype.itemsize:
            return None
        chunks.append(data[lo:hi].view(dtype)[max(start, b0) - b0 : stop - b0])
    values = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
    if len(values) != stop - start:
        return None
    return Jagged((), values.astype(dtype.newbyteorder("="), copy=True))


def _from_awkward(arr: ak.Array) -> Jagged:
    depth = arr.ndim - 1
    offsets = tuple(_cumsum0(ak.to_numpy(ak.flatten(ak.num(arr, axis=axis), axis=None))) for axis in range(1, depth + 1))
    values = ak.to_numpy(ak.flatten(arr, axis=None)) if depth else ak.to_numpy(arr)
    return Jagged(offsets, np.asarray(values))


def _cumsum0(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts.astype(np.int64, copy=False), out=out[1:])
    return out


def _read_nested(branch, start: int, stop: int, depth: int, dtype: np.dtype, baskets: _Baskets | None = None) -> Jagged | None:
    """Decode the baskets covering [start, stop) with ``baskets.decode``; None if the layout is unusual."""
    from raypf.data.baskets import decode_entries

    got = _nested_bytes(branch, start, stop, baskets)
    if got is None:
        return None
    data, starts, ends = got
    try:
        offsets, raw = decode_entries(data, starts, depth, dtype.itemsize, entry_ends=ends)
    except ValueError as err:
        raise MLTreeError(f"{branch.file.file_path}: branch {branch.name!r} entries {start}-{stop}: {err}") from None
    return Jagged(tuple(offsets), raw.view(dtype.newbyteorder("=")))


def _nested_bytes(branch, start: int, stop: int, baskets: _Baskets | None) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The bytes holding entries [start, stop) and where each entry starts and ends in them.

    The entries are decoded where ``_baskets_in`` put them, each basket's offset table between
    its entries and the next basket's. None if a basket's layout is unusual.
    """
    got = _baskets_in(branch, start, stop, baskets)
    if got is None:
        return None
    data, parts = got
    starts, ends = [], []
    for b0, b1, _, _, offs in parts:
        if offs is None or len(offs) != b1 - b0 + 1:
            return None
        a, b = max(start, b0) - b0, min(stop, b1) - b0
        starts.append(offs[a:b])
        ends.append(offs[a + 1 : b + 1])
    return data, np.concatenate(starts), np.concatenate(ends)


def _cast(col: Jagged, dtype: np.dtype, path: str, name: str) -> Jagged:
    """Cast to the canonical dtype; a signed 64-bit ID keeps its bits (IDs >= 2**63 read back exactly)."""
    if col.values.dtype.kind not in "iufb":
        raise MLTreeError(f"{path}: branch {name!r} is not numeric ({col.values.dtype})")
    return Jagged(col.offsets, col.values.astype(dtype, copy=False))


def _check_counts(columns: dict[str, Jagged], path: str) -> None:
    for counter, vector in COUNTERS.items():
        if counter in columns and vector in columns:
            bad = np.nonzero(columns[counter].values != columns[vector].counts())[0]
            if len(bad):
                raise MLTreeError(
                    f"{path}: branch {counter!r} disagrees with the length of {vector!r} in {len(bad)} event(s), first at entry {bad[0]}"
                )
    cells = columns.get("cluster_cell_ID")
    if cells is not None:
        for other in ("cluster_cell_E", "cluster_cell_hitsE_EM", "cluster_cell_hitsE_nonEM", "cluster_cell_hitsTruthIndex", "cluster_cell_hitsTruthE"):
            col = columns.get(other)
            if col is not None and not all(np.array_equal(a, b) for a, b in zip(col.offsets[:2], cells.offsets)):
                raise MLTreeError(f"{path}: branch {other!r} and 'cluster_cell_ID' list different numbers of cells")
    index, energy = columns.get("cluster_cell_hitsTruthIndex"), columns.get("cluster_cell_hitsTruthE")
    if index is not None and energy is not None and not all(np.array_equal(a, b) for a, b in zip(index.offsets, energy.offsets)):
        raise MLTreeError(f"{path}: branches 'cluster_cell_hitsTruthIndex' and 'cluster_cell_hitsTruthE' differ in length")
    if "nCluster" in columns and cells is not None and not np.array_equal(columns["nCluster"].values, cells.counts()):
        raise MLTreeError(f"{path}: branch 'nCluster' disagrees with the clusters of 'cluster_cell_ID'")


@dataclass(frozen=True, eq=False)
class CellGeometry:
    """The CellGeo tree as flat numpy arrays of canonical dtypes, one entry per cell."""

    id: np.ndarray  # uint64
    sampling: np.ndarray  # int32
    eta: np.ndarray  # float32
    phi: np.ndarray
    rperp: np.ndarray
    deta: np.ndarray
    dphi: np.ndarray
    volume: np.ndarray
    sigma: np.ndarray

    def __len__(self) -> int:
        return len(self.id)


_GEO_FIELDS = {
    "id": "cell_geo_ID", "sampling": "cell_geo_sampling", "eta": "cell_geo_eta", "phi": "cell_geo_phi",
    "rperp": "cell_geo_rPerp", "deta": "cell_geo_deta", "dphi": "cell_geo_dphi", "volume": "cell_geo_volume",
    "sigma": "cell_geo_sigma",
}  # fmt: skip


def read_cell_geometry(path: str) -> CellGeometry:
    """Read the CellGeo tree (its first entry) of a file."""
    with _open(path) as f:
        tree = _tree(f, path, CELL_GEO_TREE)
        if tree.num_entries < 1:
            raise MLTreeError(f"{path}: {CELL_GEO_TREE} is empty")
        names = set(tree.keys())
        missing = [b for b in _GEO_FIELDS.values() if b not in names]
        if missing:
            raise MLTreeError(f"{path}: {CELL_GEO_TREE} lacks branch(es) {', '.join(missing)}")
        cols = {}
        for field, branch in _GEO_FIELDS.items():
            try:
                arr = tree[branch].array(entry_start=0, entry_stop=1, library="ak")[0]
            except Exception as err:  # noqa: BLE001
                raise MLTreeError(f"{path}: branch {branch!r} unreadable ({type(err).__name__}: {err})") from None
            cols[field] = _cast(Jagged((), ak.to_numpy(arr)), canonical_dtype(CELL_GEO_BRANCHES[branch]), path, branch).values
    lengths = {k: len(v) for k, v in cols.items()}
    if len(set(lengths.values())) != 1:
        raise MLTreeError(f"{path}: {CELL_GEO_TREE} branches differ in length: {lengths}")
    if len(np.unique(cols["id"])) != len(cols["id"]):
        raise MLTreeError(f"{path}: branch 'cell_geo_ID' has duplicate cell IDs")
    return CellGeometry(**cols)
