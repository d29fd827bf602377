"""raypf.simulate.rootio: TTrees with real C++ STL branch types, checked through uproot."""

from __future__ import annotations

import os

import awkward as ak
import numpy as np
import pytest
import uproot

from raypf.simulate import rootio
from raypf.simulate.rootio import write_root_file

N_EVENTS = 5000
N_CELLS = 200_000
U64_MAX = np.iinfo(np.uint64).max


def _nested(rng, n: int, depth: int, make, mean: float = 2.0) -> ak.Array:
    """A depth-``depth`` jagged array with empty vectors at every level (every 7th list is empty);
    entry 0 is empty and entry 1 holds only empty inner vectors."""
    counts = []
    size = n
    for level in range(depth):
        c = rng.poisson(mean, size)
        c[::7] = 0
        if level == 0:
            c[1] = 3
        elif level == 1:
            c[counts[0][0] : counts[0][0] + counts[0][1]] = 0
        counts.append(c)
        size = int(c.sum())
    out = ak.Array(make(size))
    for c in reversed(counts):
        out = ak.unflatten(out, c)
    return out


def _u64(rng, size: int) -> np.ndarray:
    """uint64 values spread over the whole range, including 2**63 and 2**64 - 1."""
    out = rng.integers(0, U64_MAX, size=size, dtype=np.uint64, endpoint=True)
    out[::3] = U64_MAX - rng.integers(0, 1000, size=out[::3].shape, dtype=np.uint64)
    out[1::11] = np.uint64(2**63)
    return out


def _f32(size: int, rng) -> np.ndarray:
    return (rng.standard_normal(size) * 1e3).astype(np.float32)


def _i32(size: int, rng) -> np.ndarray:
    return rng.integers(np.iinfo(np.int32).min, np.iinfo(np.int32).max, size=size, dtype=np.int32, endpoint=True)


# (branch, C++ type, numpy dtype of the values, expected uproot typename: what it prints for ROOT-written branches)
EVENT_BRANCHES = [
    ("runNumber", "int", np.int32, "int32_t"),
    ("eventNumber", "Long64_t", np.int64, "int64_t"),
    ("mcEventWeight", "float", np.float32, "float"),
    ("energy", "double", np.float64, "double"),
    ("flags", "unsigned int", np.uint32, "uint32_t"),
    ("hash", "ULong64_t", np.uint64, "uint64_t"),
    ("truthPartE", "vector<float>", np.float32, "std::vector<float>"),
    ("truthPartPdgId", "std::vector<int>", np.int32, "std::vector<int32_t>"),
    ("trackP", "vector<double>", np.float64, "std::vector<double>"),
    ("cellID", "vector<size_t>", np.uint64, "std::vector<uint64_t>"),
    ("cellIDul", "vector<unsigned long>", np.uint64, "std::vector<uint64_t>"),
    ("cellIDull", "vector<ULong64_t>", np.uint64, "std::vector<uint64_t>"),
    ("cluster_cell_E", "vector<vector<float> >", np.float32, "std::vector<std::vector<float>>"),
    ("cluster_cell_layer", "vector<vector<int>>", np.int32, "std::vector<std::vector<int32_t>>"),
    ("cluster_cell_ID", "std::vector<std::vector<size_t> >", np.uint64, "std::vector<std::vector<uint64_t>>"),
    ("cluster_cell_hitsTruthIndex", "vector<vector<vector<int> > >", np.int32,
     "std::vector<std::vector<std::vector<int32_t>>>"),
    ("cluster_cell_hitsTruthE", "vector<vector<vector<float>>>", np.float32,
     "std::vector<std::vector<std::vector<float>>>"),
]  # fmt: skip


def _values(dtype, size: int, rng) -> np.ndarray:
    if dtype == np.uint64:
        return _u64(rng, size)
    if dtype == np.int32:
        return _i32(size, rng)
    if dtype == np.uint32:
        return rng.integers(0, 2**32 - 1, size=size, dtype=np.uint32, endpoint=True)
    if dtype == np.int64:
        return rng.integers(-(2**63), 2**63 - 1, size=size, dtype=np.int64, endpoint=True)
    if dtype == np.float32:
        return _f32(size, rng)
    return rng.standard_normal(size) * 1e6


def _event_tree(rng) -> dict:
    tree = {}
    for name, cpp, dtype, _ in EVENT_BRANCHES:
        depth = cpp.count("vector")
        if depth == 0:
            tree[name] = (cpp, _values(dtype, N_EVENTS, rng))
        else:
            tree[name] = (cpp, _nested(rng, N_EVENTS, depth, lambda size, d=dtype: _values(d, size, rng)))
    # nested Python lists work too, including uint64 values Python only has as big ints
    lists = [[int(U64_MAX), 2**63, i] if i % 3 else [] for i in range(N_EVENTS)]
    tree["fromLists"] = ("vector<ULong64_t>", lists)
    tree["scalarFromList"] = ("size_t", [int(U64_MAX) - i for i in range(N_EVENTS)])
    return tree


def _cell_geo(rng) -> dict:
    def one(values):  # one entry holding every cell
        return ak.unflatten(values, [len(values)])

    return {
        "cell_geo_ID": ("vector<size_t>", one(_u64(rng, N_CELLS))),
        "cell_geo_sampling": ("vector<int>", one(rng.integers(0, 19, N_CELLS).astype(np.int32))),
        "cell_geo_eta": ("vector<float>", one(_f32(N_CELLS, rng))),
        "cell_geo_volume": ("vector<double>", one(rng.random(N_CELLS))),
    }


def _expected(cpp: str, data) -> ak.Array | np.ndarray:
    ctype = rootio._parse_type(cpp)
    if ctype.depth == 0:
        return np.asarray(np.array(data, dtype=ctype.number.dtype.newbyteorder("=")))
    dtype = ctype.number.dtype.newbyteorder("=")
    if isinstance(data, list):  # awkward cannot take Python ints >= 2**63; one level of lists here
        return ak.unflatten(np.array([x for row in data for x in row], dtype=dtype), [len(row) for row in data])
    return ak.values_astype(ak.Array(data), dtype)


def _assert_same(got, want, name: str) -> None:
    if isinstance(want, np.ndarray):
        got = ak.to_numpy(got)
        assert got.dtype == want.dtype, name
        np.testing.assert_array_equal(got, want, err_msg=name)
    else:
        assert str(got.type) == str(want.type), name  # e.g. 5000 * var * var * uint64
        assert ak.array_equal(got, want, dtype_exact=True, check_parameters=False, same_content_types=False), name


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    rng = np.random.default_rng(20240611)
    trees = {"EventTree": _event_tree(rng), "CellGeo": _cell_geo(rng)}
    path = tmp_path_factory.mktemp("rootio") / "mltree.root"
    write_root_file(path, trees)
    expected = {t: {b: _expected(cpp, data) for b, (cpp, data) in branches.items()} for t, branches in trees.items()}
    return path, trees, expected


def test_round_trip_values_and_dtypes(written):
    path, _, expected = written
    with uproot.open(path) as f:
        assert sorted(f.keys()) == ["CellGeo;1", "EventTree;1"]
        assert set(f.classnames().values()) == {"TTree"}
        for tree_name, want in expected.items():
            tree = f[tree_name]
            assert tree.num_entries == (N_EVENTS if tree_name == "EventTree" else 1)
            got = tree.arrays(library="ak")
            assert got.fields == list(want)
            for name, values in want.items():
                _assert_same(got[name], values, f"{tree_name}/{name}")
        cells = f["CellGeo"]["cell_geo_ID"].array(library="ak")
        assert len(cells[0]) == N_CELLS and cells.type.content.content.primitive == "uint64"
        # the extremes survive: 2**64 - 1 and 2**63 as uint64, never through int64 or float
        ids = ak.flatten(f["EventTree"]["cellIDull"].array(library="ak"))
        assert ak.max(ids) == U64_MAX and ak.any(ids == np.uint64(2**63))


def test_typenames_are_those_of_root_written_branches(written):
    path, _, _ = written
    with uproot.open(path) as f:
        tree = f["EventTree"]
        for name, cpp, _, typename in EVENT_BRANCHES:
            branch = tree[name]
            assert branch.typename == typename, name
            if "vector" in cpp:
                # a top-level STL branch, as ROOT makes one
                assert branch.classname == "TBranchElement", name
                assert (
                    branch.member("fStreamerType") == -1 and branch.member("fID") == -1 and branch.member("fType") == 0
                )
                assert branch.member("fClassName") == rootio._parse_type(cpp).class_name
                leaf = branch.member("fLeaves")[0]
                assert leaf.classname == "TLeafElement" and leaf.member("fType") == -1
            else:
                assert branch.classname == "TBranch", name
        assert str(tree["truthPartE"].interpretation) == "AsJagged(AsDtype('>f4'), header_bytes=10)"
        assert tree["cluster_cell_ID"].member("fClassName") == "vector<vector<unsigned long> >"
        assert tree["cluster_cell_hitsTruthIndex"].member("fClassName") == "vector<vector<vector<int> > >"


def test_partial_reads_and_iteration(written):
    path, _, expected = written
    want = expected["EventTree"]
    with uproot.open(path) as f:
        tree = f["EventTree"]
        assert tree.num_entries == N_EVENTS
        # 2000-entry baskets: several per branch, aligned across branches
        for name in want:
            assert tree[name].num_baskets == 3, name
            assert list(tree[name].member("fBasketEntry")[:4]) == [0, 2000, 4000, 5000], name
        part = tree.arrays(entry_start=1234, entry_stop=3456, library="ak")
        for name, values in want.items():
            _assert_same(part[name], values[1234:3456], name)
        one = tree.arrays(["cluster_cell_hitsTruthE"], entry_start=4999, entry_stop=5000, library="ak")
        _assert_same(one["cluster_cell_hitsTruthE"], want["cluster_cell_hitsTruthE"][4999:], "last entry")
    chunks = list(uproot.iterate(f"{path}:EventTree", step_size=700, library="ak"))
    assert [len(c) for c in chunks] == [700] * 7 + [100]
    joined = ak.concatenate(chunks)
    for name, values in want.items():
        _assert_same(joined[name], values, name)


def test_file_structure_is_roots(written):
    """What ROOT would need beyond uproot: streamer infos, consistent keys, a header uproot can update in place."""
    path, _, expected = written
    with uproot.open(path, minimal_ttree_metadata=False) as f:
        streamers = f.file.streamers
        for name in ("TTree", "TBranch", "TBranchElement", "TLeafElement", "TLeafI", "TLeafL", "TLeafF", "TLeafD"):
            assert name in streamers, name
        for name in ("vector<float>", "vector<vector<unsigned long>>", "vector<vector<vector<int>>>"):
            (info,) = streamers[name].values()
            assert info.class_version == 6 and info.elements[0].member("fSTLtype") == 1
        assert streamers["TBranchElement"][10].member("fCheckSum") == 3880738403
        tree = f["EventTree"]
        assert tree.member("fAutoFlush") == 2000 and tree.member("fEntries") == N_EVENTS
        assert tree.member("fTotBytes") == sum(b.member("fTotBytes") for b in tree.branches)
        basket = tree["cluster_cell_E"].basket(1)
        assert basket.num_entries == 2000 and basket.key_version == 1004
    # uproot's writer parses the header, directory, keys list and free segments strictly
    with uproot.update(path) as f:
        f["added"] = np.histogram(np.arange(10), bins=5)
    with uproot.open(path) as f:
        assert "added;1" in f
        _assert_same(f["EventTree"]["cellID"].array(library="ak"), expected["EventTree"]["cellID"], "after update")


def test_checksums_match_root():
    # TClass checksums of these classes, as ROOT 6 records them in files
    assert rootio._checksum("vector<int>") == 9976712
    assert rootio._checksum("vector<vector<int> >") == 3104527037
    assert rootio._checksum("vector<vector<double> >") == 2217838159


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("compression", ["none", "zlib", "lzma", "lz4", "zstd"])
def test_compression_round_trip(tmp_path, compression, threads):
    rng = np.random.default_rng(3)
    vv = _nested(rng, 300, 2, lambda size: np.round(_f32(size, rng)))
    trees = {"t": {"n": ("int", np.arange(300)), "vv": ("vector<vector<float>>", vv)}}
    path = tmp_path / "c.root"
    write_root_file(path, trees, compression=compression, level=4, basket_entries=64, threads=threads)
    with uproot.open(path) as f:
        t = f["t"]
        assert t["vv"].num_baskets == 5
        _assert_same(t["vv"].array(library="ak"), ak.values_astype(vv, np.float32), "vv")
        expect_code = {"none": 0, "zlib": 104, "lzma": 204, "lz4": 404, "zstd": 504}[compression]
        assert f.file.fCompress == expect_code and t["vv"].member("fCompress") == expect_code
        if compression != "none":
            assert t["vv"].basket(0).compressed_bytes < t["vv"].basket(0).uncompressed_bytes


def test_empty_tree_and_casting(tmp_path):
    path = tmp_path / "e.root"
    trees = {
        "empty": {"x": ("float", np.array([], dtype=np.float32)), "v": ("vector<int>", ak.Array([[]])[:0])},
        "cast": {
            "f": ("float", np.array([1.5, 2**40], dtype=np.float64)),  # to float32
            "i": ("vector<int>", ak.Array([[1.9, -2.0], []])),  # to int32, like static_cast
            "u": ("vector<size_t>", np.array([[1, 2], [3, 4]], dtype=np.int64)),  # a regular 2-d array
        },
    }
    write_root_file(path, trees)
    with uproot.open(path) as f:
        assert f["empty"].num_entries == 0
        assert len(f["empty"].arrays(library="ak")) == 0
        got = f["cast"].arrays(library="ak")
        assert got["f"].type.content.primitive == "float32" and got["f"].tolist() == [1.5, 2.0**40]
        assert str(got["i"].type) == "2 * var * int32" and got["i"].tolist() == [[1, -2], []]
        assert str(got["u"].type) == "2 * var * uint64" and got["u"].tolist() == [[1, 2], [3, 4]]


def test_list_of_numpy_arrays(tmp_path):
    rows = [np.arange(i, dtype=np.int16) for i in range(50)]
    nested = [[np.full(2, i, dtype=np.float64)] * (i % 3) for i in range(50)]
    write_root_file(tmp_path / "l.root", {"t": {"v": ("vector<int>", rows), "vv": ("vector<vector<float>>", nested)}})
    with uproot.open(tmp_path / "l.root") as f:
        got = f["t"].arrays(library="ak")
        assert str(got["v"].type) == "50 * var * int32" and got["v"].tolist() == [r.tolist() for r in rows]
        assert str(got["vv"].type) == "50 * var * var * float32"
        assert got["vv"].tolist() == [[x.tolist() for x in row] for row in nested]


def test_64_bit_seeks(tmp_path, monkeypatch):
    """Files past 2 GB use 64-bit keys, directory and header; exercised here by moving the threshold."""
    monkeypatch.setattr(rootio, "_START_BIG_FILE", 3000)
    rng = np.random.default_rng(5)
    vv = _nested(rng, 2000, 2, lambda size: _u64(rng, size))
    path = tmp_path / "big.root"
    write_root_file(path, {"t": {"vv": ("vector<vector<size_t>>", vv)}}, basket_entries=500)
    with uproot.open(path) as f:
        assert f.file.fVersion > 1000000 and f.file.fEND == path.stat().st_size
        assert f.key("t").fVersion > 1000
        _assert_same(f["t"]["vv"].array(library="ak"), vv, "vv")
    with uproot.update(path) as f:
        f["added"] = np.histogram(np.arange(10), bins=5)
    with uproot.open(path) as f:
        assert sorted(f.keys()) == ["added;1", "t;1"]
        _assert_same(f["t"]["vv"].array(library="ak"), vv, "vv after update")


def _no_leftovers(directory) -> list[str]:
    return sorted(os.listdir(directory))


@pytest.mark.parametrize(
    ("branches", "message"),
    [
        (
            {"a": ("int", np.arange(3)), "bad": ("vector<string>", [["x"]] * 3)},
            "branch 'bad'.*unsupported C\\+\\+ type",
        ),
        ({"a": ("int", np.arange(3)), "bad": ("vector<float", [[1.0]] * 3)}, "branch 'bad'.*unsupported"),
        ({"a": ("int", np.arange(3)), "bad": ("vector<float>", [[1.0]] * 4)}, "branch 'bad'.*4 entries.*'a' has 3"),
        ({"bad": ("vector<vector<float>>", ak.Array([[1.0], [2.0]]))}, "branch 'bad'.*2 nested level"),
        ({"bad": ("vector<float>", ak.Array([[[1.0]], [[2.0]]]))}, "branch 'bad'.*lists of numbers"),
        ({"bad": ("vector<size_t>", [[1], [-1]])}, "branch 'bad'"),
        ({"bad": ("float", np.array(["1.0", "x"]))}, "branch 'bad'.*expected numbers"),
        ({"bad": ("vector<float>", ak.Array([[1.0, None]]))}, "branch 'bad'"),
        ({"bad": ("int", np.zeros((2, 2)))}, "branch 'bad'.*shape"),
        ({"bad": "vector<int>"}, "branch 'bad'.*pair"),
        ({"b/ad": ("int", [1])}, "not an identifier"),
    ],
)
def test_bad_input_names_the_branch_and_writes_nothing(tmp_path, branches, message):
    path = tmp_path / "bad.root"
    with pytest.raises(ValueError, match=message) as err:
        write_root_file(path, {"EventTree": branches})
    assert "EventTree" in str(err.value) or "identifier" in str(err.value)
    assert _no_leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "kwargs", [{"compression": "brotli"}, {"compression": "zlib", "level": 12}, {"basket_entries": 0}]
)
def test_bad_options(tmp_path, kwargs):
    with pytest.raises(ValueError):
        write_root_file(tmp_path / "x.root", {"t": {"a": ("int", [1])}}, **kwargs)
    assert _no_leftovers(tmp_path) == []


@pytest.mark.parametrize(("compression", "threads"), [("none", 1), ("zlib", 1), ("zlib", 3)])
def test_failure_mid_write_leaves_nothing(tmp_path, monkeypatch, compression, threads):
    original = rootio._make_basket
    calls = []

    def failing(*args):
        calls.append(args)
        if len(calls) == 4:
            raise RuntimeError("disk on fire")
        return original(*args)

    monkeypatch.setattr(rootio, "_make_basket", failing)
    trees = {"t": {"a": ("int", np.arange(100)), "v": ("vector<float>", [[1.0]] * 100)}}
    path = tmp_path / "x.root"
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_root_file(path, trees, basket_entries=10, compression=compression, threads=threads)
    assert _no_leftovers(tmp_path) == []

    # an existing file at the path is left as it was
    path.write_bytes(b"previous")
    calls.clear()
    with pytest.raises(RuntimeError):
        write_root_file(path, trees, basket_entries=10, compression=compression, threads=threads)
    assert path.read_bytes() == b"previous"
    assert _no_leftovers(tmp_path) == ["x.root"]

    monkeypatch.setattr(rootio, "_make_basket", original)
    write_root_file(path, trees, basket_entries=10, compression=compression, threads=threads)
    assert uproot.open(path)["t"].num_entries == 100
    assert _no_leftovers(tmp_path) == ["x.root"]
