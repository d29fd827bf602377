"""TTrees with STL-vector branches written by raypf read back exactly with plain uproot."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot

from raypf.simulate.root_writer import parse_cpp_type, write_root_file


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 5000
    c1 = rng.integers(0, 5, n)
    c2 = rng.integers(0, 4, int(c1.sum()))
    c3 = rng.integers(0, 3, int(c2.sum()))
    f32 = rng.normal(size=int(c1.sum())).astype(np.float32)
    u64 = rng.integers(0, np.iinfo(np.uint64).max, int(c2.sum()), dtype=np.uint64, endpoint=True)
    u64[:3] = [0, 2**63, np.iinfo(np.uint64).max]
    events = {
        "runNumber": ("int", np.arange(n, dtype=np.int32)),
        "eventNumber": ("Long64_t", np.arange(n, dtype=np.int64) * 10**10),
        "mcEventWeight": ("float", rng.normal(size=n).astype(np.float32)),
        "vf": ("vector<float>", ak.unflatten(f32, c1)),
        "vi": ("vector<int>", ak.unflatten((f32 * 100).astype(np.int32), c1)),
        "vd": ("std::vector<double>", ak.unflatten(f32.astype(np.float64), c1)),
        "vvf": ("vector<vector<float> >", ak.unflatten(ak.unflatten(rng.normal(size=int(c2.sum())).astype(np.float32), c2), c1)),
        "vvu": ("vector<vector<size_t>>", ak.unflatten(ak.unflatten(u64, c2), c1)),
        "vvvi": ("vector<vector<vector<int>>>", ak.unflatten(ak.unflatten(ak.unflatten(rng.integers(-5, 99, int(c3.sum())).astype(np.int32), c3), c2), c1)),
        "vvvf": ("vector<vector<vector<float>>>", ak.unflatten(ak.unflatten(ak.unflatten(rng.normal(size=int(c3.sum())).astype(np.float32), c3), c2), c1)),
    }
    geo = {"cell_geo_ID": ("vector<size_t>", ak.unflatten(np.arange(200_000, dtype=np.uint64) + np.uint64(2**63), [200_000]))}
    path = tmp_path_factory.mktemp("root") / "t.root"
    write_root_file(path, {"EventTree": events, "CellGeo": geo}, basket_entries=700)
    return path, events, geo


def test_round_trip_is_exact(written):
    path, events, geo = written
    with uproot.open(path) as f:
        assert f.classname_of("EventTree") == "TTree"
        tree = f["EventTree"]
        assert tree.num_entries == 5000
        assert tree["vf"].num_baskets == 8
        got = tree.arrays(library="ak")
        for name, (_, data) in events.items():
            assert ak.array_equal(got[name], ak.Array(data)), name
        assert got["vvu"].type.content.content.content.primitive == "uint64"
        assert got["vf"].type.content.content.primitive == "float32"
        assert got["vvvi"].type.content.content.content.content.primitive == "int32"
        g = f["CellGeo"].arrays(library="ak")
        assert ak.array_equal(g.cell_geo_ID, geo["cell_geo_ID"][1])


def test_typenames_are_stl(written):
    tree = uproot.open(written[0])["EventTree"]
    assert tree["vf"].typename == "std::vector<float>"
    assert tree["vvu"].typename == "std::vector<std::vector<uint64_t>>"
    assert tree["vvvi"].typename == "std::vector<std::vector<std::vector<int32_t>>>"
    assert tree["eventNumber"].typename == "int64_t"
    assert type(tree["vf"]).__name__.startswith("Model_TBranchElement")
    assert type(tree["runNumber"]).__name__.startswith("Model_TBranch_")


def test_partial_reads_and_iteration(written):
    path, events, _ = written
    tree = uproot.open(path)["EventTree"]
    part = tree.arrays(["vvvf", "vvu", "eventNumber"], entry_start=1234, entry_stop=3456)
    for name in ("vvvf", "vvu", "eventNumber"):
        assert ak.array_equal(part[name], ak.Array(events[name][1])[1234:3456])
    total = 0
    for chunk in uproot.iterate(f"{path}:EventTree", ["vi"], step_size=999):
        total += len(chunk)
    assert total == 5000


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"a": ("vector<string>", [["x"]])}, "branch 'a'"),
        ({"a": ("int", np.zeros(3, np.int32)), "b": ("int", np.zeros(4, np.int32))}, "lengths differ"),
        ({"a": ("vector<vector<float>>", ak.Array([[1.0], [2.0]]))}, "branch 'a'"),
    ],
)
def test_bad_input_names_the_branch_and_leaves_nothing(tmp_path, columns, message):
    path = tmp_path / "bad.root"
    with pytest.raises(ValueError, match=message):
        write_root_file(path, {"T": columns})
    assert list(tmp_path.iterdir()) == []


def test_failure_mid_write_leaves_nothing(tmp_path):
    class Exploding:
        def __len__(self):
            return 2

        def __array__(self, *args, **kwargs):
            raise RuntimeError("disk on fire")

    path = tmp_path / "x.root"
    good = {"a": ("int", np.arange(2, dtype=np.int32))}
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_root_file(path, {"First": good, "Second": {"b": ("int", Exploding())}})
    assert list(tmp_path.iterdir()) == []


def test_parse_cpp_type():
    t = parse_cpp_type("std::vector<std::vector<unsigned long> >")
    assert t.depth == 2 and t.dtype == np.dtype(">u8")
    assert parse_cpp_type("vector<vector<size_t>>").class_name == "vector<vector<unsigned long> >"
    with pytest.raises(ValueError):
        parse_cpp_type("map<int,int>")
