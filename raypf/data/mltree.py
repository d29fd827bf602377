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
from collections.abc import Sequence
from dataclasses import dataclass

import awkward as ak
import numpy as np

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
    import uproot

    if not os.path.exists(path) and "://" not in path:
        raise MLTreeError(f"{path}: no such file")
    try:
        return uproot.open(path)
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


def read_events(path: str, branches: Sequence[str], start: int | None = None, stop: int | None = None) -> ak.Array:
    """Read ``branches`` of EventTree entries [start, stop) as a record array of canonical dtypes.

    Count branches among ``branches`` are checked against the vectors they count.
    """
    unknown = [b for b in branches if b not in EVENT_BRANCHES]
    if unknown:
        raise ValueError(f"not MLTree EventTree branches: {unknown}")
    with _open(path) as f:
        tree = _tree(f, path, EVENT_TREE)
        present = set(tree.keys())
        missing = [b for b in branches if b not in present]
        if missing:
            raise MLTreeError(f"{path}: {EVENT_TREE} lacks branch(es) {', '.join(missing)}")
        columns = {}
        for name in branches:
            try:
                arr = tree[name].array(entry_start=start, entry_stop=stop, library="ak")
            except Exception as err:  # noqa: BLE001 - truncated baskets, bad streamers, ...
                raise MLTreeError(f"{path}: branch {name!r} unreadable ({type(err).__name__}: {err})") from None
            columns[name] = _cast(arr, canonical_dtype(EVENT_BRANCHES[name]), path, name)
    events = ak.zip(columns, depth_limit=1)
    _check_counts(events, path)
    return events


def _cast(arr: ak.Array, dtype: np.dtype, path: str, name: str) -> ak.Array:
    """Cast to the canonical dtype; a signed 64-bit ID keeps its bits (IDs >= 2**63 read back exactly)."""
    try:
        return ak.values_astype(arr, dtype)
    except Exception as err:  # noqa: BLE001
        raise MLTreeError(f"{path}: branch {name!r} is not numeric ({err})") from None


def _check_counts(events: ak.Array, path: str) -> None:
    fields = set(events.fields)
    for counter, vector in COUNTERS.items():
        if counter in fields and vector in fields:
            bad = np.nonzero(ak.to_numpy(events[counter]) != ak.to_numpy(ak.num(events[vector])))[0]
            if len(bad):
                raise MLTreeError(
                    f"{path}: branch {counter!r} disagrees with the length of {vector!r} in {len(bad)} event(s), first at entry {bad[0]}"
                )
    if "cluster_cell_ID" in fields:
        for other in ("cluster_cell_E", "cluster_cell_hitsTruthIndex", "cluster_cell_hitsTruthE"):
            if other in fields and not ak.all(ak.num(events[other], axis=2) == ak.num(events["cluster_cell_ID"], axis=2)):
                raise MLTreeError(f"{path}: branch {other!r} and 'cluster_cell_ID' list different numbers of cells")
    if "cluster_cell_hitsTruthIndex" in fields and "cluster_cell_hitsTruthE" in fields:
        if not ak.all(ak.num(events["cluster_cell_hitsTruthIndex"], axis=3) == ak.num(events["cluster_cell_hitsTruthE"], axis=3)):
            raise MLTreeError(f"{path}: branches 'cluster_cell_hitsTruthIndex' and 'cluster_cell_hitsTruthE' differ in length")


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
        missing = [b for b in _GEO_FIELDS.values() if b not in tree.keys()]
        if missing:
            raise MLTreeError(f"{path}: {CELL_GEO_TREE} lacks branch(es) {', '.join(missing)}")
        cols = {}
        for field, branch in _GEO_FIELDS.items():
            try:
                arr = tree[branch].array(entry_start=0, entry_stop=1, library="ak")[0]
            except Exception as err:  # noqa: BLE001
                raise MLTreeError(f"{path}: branch {branch!r} unreadable ({type(err).__name__}: {err})") from None
            cols[field] = ak.to_numpy(_cast(arr, canonical_dtype(CELL_GEO_BRANCHES[branch]), path, branch))
    lengths = {k: len(v) for k, v in cols.items()}
    if len(set(lengths.values())) != 1:
        raise MLTreeError(f"{path}: {CELL_GEO_TREE} branches differ in length: {lengths}")
    if len(np.unique(cols["id"])) != len(cols["id"]):
        raise MLTreeError(f"{path}: branch 'cell_geo_ID' has duplicate cell IDs")
    return CellGeometry(**cols)
