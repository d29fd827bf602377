"""Reading MLTree files: canonical types whatever the file's widths, and clear errors for bad input."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from raypf.data.mltree import MLTreeError, entry_ranges, num_events, read_cell_geometry, read_events
from raypf.data.mltree_schema import CELL_GEO_BRANCHES, EVENT_BRANCHES
from raypf.simulate.rootio import write_root_file

BRANCHES = ["eventNumber", "nTrack", "trackPt", "nCluster", "cluster_E", "cluster_cell_ID", "cluster_cell_E",
            "cluster_cell_hitsTruthIndex", "cluster_cell_hitsTruthE"]  # fmt: skip


def _a_file(manifest) -> str:
    return next(f["path"] for f in manifest["files"] if "/JZ3/" in f["path"])


def test_reads_ranges_of_simulated_files_with_canonical_types(sim_dataset):
    path = _a_file(sim_dataset)
    n = num_events(path)
    assert n == 4
    whole = read_events(path, BRANCHES)
    part = read_events(path, BRANCHES, 1, 3)
    assert len(part) == 2
    assert ak.array_equal(part.cluster_cell_ID, whole.cluster_cell_ID[1:3])
    assert whole.trackPt.type.content.content.primitive == "float32"
    assert whole.cluster_cell_ID.type.content.content.content.primitive == "uint64"
    assert ak.any(whole.cluster_cell_ID >= np.uint64(2**63))
    ranges = entry_ranges([f["path"] for f in sim_dataset["files"]], 7)
    assert sum(r.stop - r.start for r in ranges) == sim_dataset["events"]
    assert all(0 < r.stop - r.start <= 7 for r in ranges)
    geo = read_cell_geometry(path)
    assert len(geo) == 180_608 and geo.id.dtype == np.uint64 and geo.sigma.dtype == np.float32


def _minimal_events(n: int = 3) -> dict:
    """A tiny but consistent EventTree."""
    flat = np.array([2**64 - 1, 5, 7], dtype=np.uint64)
    ids = ak.unflatten(ak.unflatten(flat, [2, 1]), [1, 0, 1])[:n]
    return {
        "eventNumber": ("Long64_t", np.arange(n)),
        "nTrack": ("int", np.array([1, 0, 2][:n])),
        "trackPt": ("vector<float>", ak.Array([[1.5], [], [2.0, 3.0]][:n])),
        "nCluster": ("int", np.array([1, 0, 1][:n])),
        "cluster_E": ("vector<float>", ak.Array([[1.0], [], [2.0]][:n])),
        "cluster_cell_ID": ("vector<vector<size_t>>", ids),
        "cluster_cell_E": ("vector<vector<float>>", ak.Array([[[0.5, 0.5]], [], [[2.0]]][:n])),
        "cluster_cell_hitsTruthIndex": ("vector<vector<vector<int>>>", ak.Array([[[[0], []]], [], [[[1, 2]]]][:n])),
        "cluster_cell_hitsTruthE": ("vector<vector<vector<float>>>", ak.Array([[[[0.4], []]], [], [[[1.0, 0.9]]]][:n])),
    }


def _geo(n: int = 4) -> dict:
    cols = {}
    for name, cpp in CELL_GEO_BRANCHES.items():
        dtype = np.uint64 if "size_t" in cpp else (np.int32 if "int" in cpp else np.float32)
        cols[name] = (cpp, ak.unflatten(np.arange(n).astype(dtype), [n]))
    return cols


def test_wider_narrower_and_signed_types_read_as_canonical(tmp_path):
    events = _minimal_events()
    events["trackPt"] = ("vector<double>", ak.values_astype(events["trackPt"][1], np.float64))
    events["nTrack"] = ("Long64_t", np.array([1, 0, 2]))
    events["eventNumber"] = ("int", np.arange(3))
    # cell IDs written as signed 64-bit: IDs >= 2**63 appear negative and must come back exactly
    events["cluster_cell_ID"] = ("vector<vector<Long64_t>>", ak.values_astype(events["cluster_cell_ID"][1], np.int64))
    path = tmp_path / "wide.root"
    write_root_file(path, {"EventTree": events, "CellGeo": _geo()})
    got = read_events(str(path), BRANCHES)
    assert got.trackPt.type.content.content.primitive == "float32"
    assert got.nTrack.type.content.primitive == "int32"
    assert got.eventNumber.type.content.primitive == "int64"
    assert ak.to_list(got.cluster_cell_ID) == [[[2**64 - 1, 5]], [], [[7]]]


def test_unused_branches_may_be_missing(tmp_path):
    events = {k: v for k, v in _minimal_events().items() if k in ("eventNumber", "trackPt", "nTrack")}
    path = tmp_path / "few.root"
    write_root_file(path, {"EventTree": events, "CellGeo": _geo()})
    got = read_events(str(path), ["eventNumber", "trackPt", "nTrack"])
    assert len(got) == 3


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_bytes(b"this is not a ROOT file" * 100), "not a readable ROOT file"),
        (lambda p: write_root_file(p, {"CellGeo": _geo()}), "tree 'EventTree' missing"),
        (
            lambda p: write_root_file(p, {"EventTree": {k: v for k, v in _minimal_events().items() if k != "cluster_E"}}),
            "lacks branch.*cluster_E",
        ),
        (
            lambda p: write_root_file(p, {"EventTree": {**_minimal_events(), "nTrack": ("int", np.array([1, 1, 2]))}}),
            "'nTrack' disagrees with the length of 'trackPt'.*first at entry 1",
        ),
        (
            lambda p: write_root_file(
                p, {"EventTree": {**_minimal_events(), "cluster_cell_E": ("vector<vector<float>>", ak.Array([[[0.5]], [], [[2.0]]]))}}
            ),
            "'cluster_cell_E' and 'cluster_cell_ID'",
        ),
    ],
)
def test_bad_input_names_the_file_and_branch(tmp_path, make, message):
    path = tmp_path / "bad.root"
    make(path)
    with pytest.raises(MLTreeError, match=message) as err:
        read_events(str(path), BRANCHES)
    assert str(path) in str(err.value)


def test_truncated_file_is_reported(tmp_path, sim_dataset):
    source = _a_file(sim_dataset)
    data = Path(source).read_bytes()
    path = tmp_path / "cut.root"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(MLTreeError, match="cut.root"):
        read_events(str(path), BRANCHES)
    with pytest.raises(MLTreeError, match="cut.root"):
        read_cell_geometry(str(path))


def test_cell_geometry_errors(tmp_path):
    path = tmp_path / "geo.root"
    geo = _geo()
    geo["cell_geo_ID"] = ("vector<size_t>", ak.unflatten(np.array([1, 1, 2, 3], dtype=np.uint64), [4]))
    write_root_file(path, {"CellGeo": geo})
    with pytest.raises(MLTreeError, match="duplicate cell IDs"):
        read_cell_geometry(str(path))
    write_root_file(path, {"CellGeo": {k: v for k, v in _geo().items() if k != "cell_geo_sigma"}})
    with pytest.raises(MLTreeError, match="lacks branch.*cell_geo_sigma"):
        read_cell_geometry(str(path))


def test_unknown_branch_names_are_a_programming_error(sim_dataset):
    with pytest.raises(ValueError, match="not MLTree"):
        read_events(_a_file(sim_dataset), ["trackPT"])
    assert set(BRANCHES) <= set(EVENT_BRANCHES)
    assert uproot  # the reader is plain uproot underneath


def test_a_file_rewritten_in_place_is_read_again(tmp_path):
    """The EventTree is kept open between reads; a file rewritten under the same path must not be read stale."""
    path = tmp_path / "same.root"
    write_root_file(path, {"EventTree": _minimal_events(), "CellGeo": _geo()})
    first = read_events(str(path), BRANCHES)
    assert ak.to_list(first.trackPt) == [[1.5], [], [2.0, 3.0]]
    assert ak.to_list(read_events(str(path), BRANCHES, 2, 3).trackPt) == [[2.0, 3.0]]  # the kept tree, another range
    changed = _minimal_events()
    changed["trackPt"] = ("vector<float>", ak.Array([[9.5], [], [8.0, 7.0]]))
    write_root_file(path, {"EventTree": changed, "CellGeo": _geo()})  # a new file under the same name
    assert ak.to_list(read_events(str(path), BRANCHES).trackPt) == [[9.5], [], [8.0, 7.0]]
    again = _minimal_events()
    again["trackPt"] = ("vector<float>", ak.Array([[4.25], [], [6.0, 5.0]]))
    other = tmp_path / "other.root"
    write_root_file(other, {"EventTree": again, "CellGeo": _geo()})
    inode = path.stat().st_ino
    with open(path, "r+b") as f:  # the same inode, rewritten in place
        f.truncate()
        f.write(other.read_bytes())
    assert path.stat().st_ino == inode
    assert ak.to_list(read_events(str(path), BRANCHES).trackPt) == [[4.25], [], [6.0, 5.0]]
