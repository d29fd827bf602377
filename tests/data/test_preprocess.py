"""`raypf preprocess` on real simulated files through a real local Ray: content, split, re-runs, bad input."""

from __future__ import annotations

import itertools
from pathlib import Path

import awkward as ak
import numpy as np
import pyarrow.parquet as pq
import pytest
import uproot

from raypf.data.cell_table import CellTable
from raypf.data.claims import claim, claimed_order
from raypf.data.mltree import Jagged, MLTreeError, read_cell_geometry, read_columns
from raypf.data.mltree_schema import EVENT_BRANCHES
from raypf.data.parquet_out import LATEST, METADATA
from raypf.data.preprocess import InputFile, _inspect, plan, run_preprocess
from raypf.data.preprocess_config import PreprocessConfig, SampleOptions
from raypf.data.samples import BRANCHES, FOCAL, build_samples
from raypf.data.split import assign_splits
from raypf.simulate.rootio import write_root_file

from .oracle import reference_samples

SETS = ("rho", "delta", "JZ2", "JZ3")


def _config(inputs: list[dict], out: Path, **extra) -> PreprocessConfig:
    return PreprocessConfig.model_validate({"inputs": inputs, "output_dir": str(out), **extra})


@pytest.fixture(scope="session")
def sim_root(sim_dataset) -> Path:
    return Path(sim_dataset["config"]["output_dir"])


@pytest.fixture(scope="session")
def preprocessed(ray_session, sim_root, tmp_path_factory):
    """The whole small simulated dataset, several entry ranges per file."""
    cfg = _config([{"set": s, "paths": [str(sim_root / s / "*.root")]} for s in SETS], tmp_path_factory.mktemp("samples"), events_per_task=7)
    meta = run_preprocess(cfg)
    return cfg, meta, Path(cfg.output_dir) / meta["dataset"]


def _load(path: Path):
    return pq.read_table(path).to_pandas()


def _points(row) -> dict:
    keys = zip(row["point_type"], row["track"], row["layer"], row["cell_id"])
    return {(int(t), int(k), int(ly), int(c)): i for i, (t, k, ly, c) in enumerate(keys)}


def test_oracle_agrees_exactly_on_every_set(preprocessed, sim_dataset):
    _, _, path = preprocessed
    df = _load(path)
    checked = {s: 0 for s in SETS}
    for f in sim_dataset["files"]:
        set_name = Path(f["path"]).parent.name
        ref = reference_samples(f["path"])
        rows = df[(df["set"] == set_name) & (df["file"] == Path(f["path"]).name)]
        got = {(int(r.entry), int(r.track_index)): r for r in rows.itertuples()}
        _assert_agrees(got, ref, f["path"])
        checked[set_name] += len(ref)
    assert all(n > 0 for n in checked.values()), checked


def _assert_agrees(got: dict, ref: dict, label: str) -> None:
    """Samples ``got`` ({(entry, track index): row}) are exactly the oracle's ``ref``: same samples, points, features."""
    assert set(got) == set(ref), label
    for key, sample in ref.items():
        row = got[key]._asdict() if hasattr(got[key], "_asdict") else got[key]
        pts = _points(row)
        assert set(pts) == set(sample["points"]), (label, key)
        order = [pts[k] for k in sample["points"]]
        want = list(sample["points"].values())
        for names, feature, rtol, atol in (
            (["x", "y", "z"], "xyz", 1e-6, 1e-3),
            (["delta_r"], "delta_r", 1e-5, 1e-7),
            (["dist_focal"], "dist_focal", 1e-4, 1e-2),
            (["energy"], "energy", 1e-6, 0.0),
            (["sigma"], "sigma", 1e-6, 0.0),
            (["chi2_ndof"], "chi2_ndof", 1e-5, 0.0),
            (["cluster"], "cluster", 0, 0.0),
            (["truth_focal", "truth_other_tracked", "truth_untracked", "truth_total"], "truth", 1e-5, 1e-6),
        ):
            have = np.stack([np.asarray(row[n])[order] for n in names], axis=1)
            expect = np.array([w[feature] if len(names) > 1 else [w[feature]] for w in want], dtype=np.float64)
            np.testing.assert_allclose(have, expect, rtol=rtol, atol=atol, err_msg=f"{label} {key} {names}")
        for name in ("track_pt", "track_eta", "track_phi"):
            np.testing.assert_allclose(row[name], sample["scalars"][name], rtol=1e-6)
        assert row["truth_index"] == sample["scalars"]["truth_index"]
        assert row["truth_pdg_id"] == sample["scalars"]["truth_pdg_id"]
        assert row["event"] == sample["scalars"]["event"]
        types = row["point_type"]
        assert row["n_points"] == len(types) == row["n_cells"] + row["n_focal_points"] + row["n_other_track_points"]
        assert list(types[: row["n_focal_points"]]) == [FOCAL] * row["n_focal_points"]


def test_split_is_per_event_and_matches_the_hash(preprocessed):
    cfg, meta, path = preprocessed
    df = _load(path)
    per_event = df.groupby(["run", "event"])["split"].nunique()
    assert (per_event == 1).all()
    codes = assign_splits(df["run"].to_numpy(), df["event"].to_numpy(), cfg.samples.split.train, cfg.samples.split.val)
    assert (np.array(["train", "val", "test"])[codes] == df["split"].astype(str).to_numpy()).all()
    assert meta["counts"]["samples"] == df["split"].astype(str).value_counts().reindex(["train", "val", "test"], fill_value=0).to_dict()
    for s in SETS:
        assert sum(meta["counts"]["per_set"][s]["samples"].values()) == int((df["set"] == s).sum())
    assert set(meta["feature_stats"]["by_point_type"]) == {"cell", "focal_track", "other_track"}
    assert meta["points"]["all"]["max"] == df["n_points"].max()


def test_every_range_is_processed_once_by_lanes_that_share_them_out(preprocessed, tmp_path):
    cfg, meta, _ = preprocessed
    assert 0 <= meta["startup_seconds"] <= meta["wall_seconds"]
    assert 0 < meta["tasks_seconds"] <= meta["wall_seconds"] - meta["startup_seconds"] + 0.5  # worker clocks vs the driver's
    assert not list((Path(cfg.output_dir) / meta["dataset"]).rglob(".claims"))  # the claims are not published
    # two lanes taking turns: each works through its own share, then takes the other's from the end
    claims = tmp_path / "claims"
    claims.mkdir()
    a = claimed_order([0, 1, 2, 3, 4], 10, str(claims))
    b = claimed_order([5, 6, 7, 8, 9], 10, str(claims))
    got_a, got_b = [next(a)], []
    for _ in range(3):
        got_b.append(next(b))
    got_a += list(a)
    got_b += list(b)
    assert got_a == [0, 1, 2, 3, 4, 9, 8] and got_b == [5, 6, 7]
    assert sorted(p.name for p in claims.iterdir()) == sorted(str(i) for i in range(10))
    assert not claim(str(claims), 3) and claim(str(claims), 10)
    assert list(claimed_order([4, 2], 10, None)) == [4, 2]  # no claims: exactly the ranges given


def test_ranges_a_lost_task_had_claimed_are_processed_again(preprocessed, monkeypatch, tmp_path):
    """A task that dies after claiming a range leaves it claimed: the driver finds it unreported and runs it again."""
    from raypf.data import preprocess

    cfg, meta, path = preprocessed
    real = preprocess._lanes

    def lanes_losing_two(items, lanes, claims, fn_kwargs):
        if claims is not None:  # as if a task had claimed the first and the last range and then died
            for index in (0, len(items) - 1):
                assert claim(claims, items[index]["index"])
        return real(items, lanes, claims, fn_kwargs)

    monkeypatch.setattr(preprocess, "_lanes", lanes_losing_two)
    again = run_preprocess(cfg.model_copy(update={"output_dir": str(tmp_path)}))
    assert again["counts"] == meta["counts"]
    key = ["set", "file", "entry", "track_index"]
    want = _load(path)[key].sort_values(key).reset_index(drop=True)
    got = _load(tmp_path / again["dataset"])[key].sort_values(key).reset_index(drop=True)
    assert len(got) == len(want) > 0 and got.equals(want)


def test_each_range_s_row_reaches_the_driver_while_its_lane_goes_on(ray_session, monkeypatch, tmp_path):
    """Ray Data's progress bar and the driver's tally advance range by range, not once when a lane ends.

    The lane yields a row, then waits until the driver has received it (a file the driver creates)
    before yielding the next; had its rows been held back to the lane's end, the wait times out.
    """
    from raypf.data import preprocess

    received = tmp_path / "received"

    def lane(batch, **_):
        import os
        import time

        yield {"index": [0], "seen_by_driver": [False]}
        deadline = time.monotonic() + 30
        while not os.path.exists(received) and time.monotonic() < deadline:
            time.sleep(0.01)
        yield {"index": [1], "seen_by_driver": [os.path.exists(received)]}

    monkeypatch.setattr(preprocess, "process_ranges", lane)
    rows = []
    for row in preprocess._lanes([{"index": 0}], 1, None, {}):
        rows.append((int(row["index"]), bool(row["seen_by_driver"])))
        received.touch()
    assert rows == [(0, False), (1, True)]


def test_files_are_cut_into_equal_ranges_of_at_most_the_task_size(tmp_path):
    files = [InputFile(0, "rho", "a.root", 20000, 96_000_000), InputFile(1, "JZ3", "b.root", 801, 16_020_000), InputFile(2, "rho", "c.root", 0, 0)]
    cfg = _config([{"set": "rho", "paths": ["a.root"]}], tmp_path, task_megabytes=16.0)
    tasks = plan(files, cfg)
    for f, per_event in ((files[0], 4800), (files[1], 20000)):
        ranges = [(t["start"], t["stop"]) for t in tasks if t["file_index"] == f.index]
        sizes = [b - a for a, b in ranges]
        assert ranges[0][0] == 0 and ranges[-1][1] == f.events and all(b == c for (_, b), (c, _) in itertools.pairwise(ranges))
        assert len(ranges) == -(-f.events // int(16e6 / per_event))  # as many as ranges of the task size would make
        assert max(sizes) - min(sizes) <= 1, sizes  # no remnant of a few events at the end
    assert not [t for t in tasks if t["file_index"] == 2]
    fixed = plan(files, cfg.model_copy(update={"events_per_task": 3000}))
    assert [t["stop"] - t["start"] for t in fixed if t["file_index"] == 0] == [3000] * 6 + [2000]  # an explicit size is kept


def test_cuts_move_to_basket_cluster_boundaries_nearby(tmp_path):
    # a real file: baskets of 40 entries in every branch, whatever the branch's type
    n = 203
    path = tmp_path / "clustered.root"
    tree = {"runNumber": ("int", np.arange(n)), "trackPt": ("vector<float>", ak.Array([[1.0] * (i % 3) for i in range(n)]))}
    write_root_file(path, {"EventTree": tree}, basket_entries=40)
    f = _inspect(InputFile(0, "rho", str(path)))
    assert f.events == n and f.clusters == (0, 40, 80, 120, 160, 200, 203)

    cfg = _config([{"set": "rho", "paths": [str(path)]}], tmp_path, task_megabytes=f.compressed_bytes / n * 45 / 1e6)
    ranges = [(t["start"], t["stop"]) for t in plan([f], cfg)]
    # five equal ranges would cut at 40, 81, 121 and 162: each cut moves to the boundary near it
    assert ranges == [(0, 40), (40, 80), (80, 120), (120, 160), (160, 203)]

    # a cut moves only to a boundary within a quarter of a range, so no range grows by more
    big = cfg.model_copy(update={"task_megabytes": 16.0})
    equal = [(t["start"], t["stop"]) for t in plan([InputFile(1, "rho", "c.root", 20000, 96_000_000)], big)]
    assert [b for _, b in equal][:-1] == [2857, 5714, 8571, 11428, 14285, 17142]
    coarse = InputFile(1, "rho", "c.root", 20000, 96_000_000, (0, 810, 3000, 10000, 20000))
    ranges = [(t["start"], t["stop"]) for t in plan([coarse], big)]
    assert [b for _, b in ranges] == [3000, 5714, 8571, 11428, 14285, 17142, 20000]
    one_basket = InputFile(2, "rho", "d.root", 20000, 96_000_000, (0, 20000))
    assert [(t["start"], t["stop"]) for t in plan([one_basket], big)] == equal


def _sorted(df):
    df = df.sort_values(["set", "file", "entry", "track_index"]).reset_index(drop=True)
    return df.drop(columns=["split"]).assign(split=df["split"].astype(str), set=df["set"].astype(str), file=df["file"].astype(str))


def test_rerun_replaces_and_another_config_writes_elsewhere(preprocessed):
    cfg, meta, path = preprocessed
    before = _sorted(_load(path))
    again = cfg.model_copy(update={"workers": 1, "events_per_task": 2})
    meta2 = run_preprocess(again)
    assert meta2["dataset"] == meta["dataset"]
    after = _sorted(_load(path))
    assert len(after) == len(before)
    for col in ("set", "file", "entry", "track_index", "split", "n_points"):
        assert (after[col].to_numpy() == before[col].to_numpy()).all(), col
    assert all(np.array_equal(a, b) for a, b in zip(after["cell_id"], before["cell_id"]))
    other = cfg.model_copy(update={"samples": cfg.samples.model_copy(update={"max_delta_r": 0.1})})
    meta3 = run_preprocess(other)
    assert meta3["dataset"] != meta["dataset"]
    root = Path(cfg.output_dir)
    assert (root / meta["dataset"] / METADATA).is_file() and (root / meta3["dataset"] / METADATA).is_file()
    assert (root / LATEST).resolve() == (root / meta3["dataset"]).resolve()
    assert sorted(p.name for p in root.iterdir() if p.name.startswith(".")) == []
    narrow = _load(root / meta3["dataset"])
    cone = np.concatenate([r.delta_r[r.point_type != FOCAL] for r in narrow.itertuples()])
    assert 0.09 < cone.max() <= 0.1 + 1e-6  # focal-track points are kept wherever they are


def test_truncation_keeps_the_focal_track_and_the_nearest_points(sim_root):
    path = str(next((sim_root / "JZ3").glob("*.root")))
    cells = CellTable.build(read_cell_geometry(path), 0.2)
    cols = read_columns(path, BRANCHES)
    full = build_samples(cols, cells, SampleOptions(min_cells=0, max_points=100_000), path).tables["train"].to_pandas()
    cut = build_samples(cols, cells, SampleOptions(min_cells=0, max_points=64), path)
    assert cut.stats.dropped["more_than_max_points_truncated"] > 0
    small = cut.tables["train"].to_pandas()
    assert (small["n_points"] <= 64).all() and small["truncated"].any()
    for a, b in zip(full.itertuples(), small.itertuples()):
        assert (a.entry, a.track_index) == (b.entry, b.track_index)
        if not b.truncated:
            assert a.n_points == b.n_points
            continue
        assert b.n_focal_points == a.n_focal_points
        rest = np.sort(a.delta_r[a.point_type != FOCAL])
        kept = np.sort(b.delta_r[b.point_type != FOCAL])
        np.testing.assert_array_equal(kept, rest[: len(kept)])


# ---------------------------------------------------------------- unusual and bad input


def _events(path: str) -> dict:
    tree = uproot.open(path)["EventTree"]
    return {name: tree[name].array(library="ak") for name in EVENT_BRANCHES}


def _geo_branches(path: str) -> dict:
    from raypf.data.mltree_schema import CELL_GEO_BRANCHES

    tree = uproot.open(path)["CellGeo"]
    return {name: (cpp, tree[name].array(library="ak")) for name, cpp in CELL_GEO_BRANCHES.items()}


def _write(path: Path, events: dict, types: dict | None = None, geo: dict | None = None, source: str = "") -> Path:
    types = {**EVENT_BRANCHES, **(types or {})}
    branches = {k: (types[k], v) for k, v in events.items()}
    write_root_file(path, {"EventTree": branches, "CellGeo": geo or _geo_branches(source)})
    return path


@pytest.fixture(scope="session")
def odd_file(sim_root, tmp_path_factory) -> Path:
    """A rho file as another MLTree version might write it: other widths, unused branches gone,
    an event without tracks and one without clusters."""
    source = str(min((sim_root / "rho").glob("*.root")))
    ev = _events(source)
    no_tracks, no_clusters = 0, 1
    for name in ev:
        if name.startswith(("track", "cluster")):
            i = no_tracks if name.startswith("track") else no_clusters
            ev[name] = ak.concatenate([ev[name][:i], ev[name][i : i + 1][:, :0], ev[name][i + 1 :]])
    ev["nTrack"] = ak.to_numpy(ak.num(ev["trackPt"])).astype(np.int32)
    ev["nCluster"] = ak.to_numpy(ak.num(ev["cluster_E"])).astype(np.int32)
    for unused in ("trackD0", "trackZ0", "cluster_Pt", "cluster_EM_PROBABILITY", "truthPartPt", "mcEventWeight", "trackSubtractedCaloEnergy"):
        del ev[unused]
    types = {
        "runNumber": "Long64_t", "eventNumber": "int", "trackPt": "vector<double>", "trackEta_EMB2": "vector<double>",
        "cluster_cell_ID": "vector<vector<Long64_t>>", "cluster_cell_E": "vector<vector<double>>",
        "cluster_cell_hitsTruthIndex": "vector<vector<vector<Long64_t>>>", "cluster_cell_hitsTruthE": "vector<vector<vector<double>>>",
    }  # fmt: skip
    return _write(tmp_path_factory.mktemp("odd") / "rho_odd.root", ev, types, source=source)


def test_other_widths_missing_unused_branches_and_empty_events(ray_session, odd_file, tmp_path):
    tree = uproot.open(odd_file)["EventTree"]
    assert "trackD0" not in set(tree.keys()) and tree["trackPt"].interpretation.content.from_dtype.itemsize == 8
    meta = run_preprocess(_config([{"set": "rho", "paths": [str(odd_file)]}], tmp_path, events_per_task=5))
    df = _load(tmp_path / meta["dataset"])
    ref = reference_samples(str(odd_file))
    assert len(ref) > 0
    assert {(int(r.entry), int(r.track_index)) for r in df.itertuples()} == set(ref)
    for r in df.itertuples():
        assert set(_points(r._asdict())) == set(ref[(r.entry, r.track_index)]["points"])
    assert meta["counts"]["events"] == len(tree["runNumber"].array())
    assert (df["cell_id"].explode().astype(np.uint64) >= np.uint64(2**63)).any()


def test_repeated_listings_negative_and_unknown_truth_follow_the_policies(sim_root, tmp_path):
    """A cell listed again in a later cluster counts once (its first listing: energy, cluster, truth);
    negative truth deposits are clipped to zero; a deposit of a particle index the event does not
    have counts as untracked. The policy counts say how many of each."""
    source = str(next((sim_root / "JZ3").glob("*.root")))
    ev = _events(source)
    names = ("cluster_cell_ID", "cluster_cell_E", "cluster_cell_hitsTruthIndex", "cluster_cell_hitsTruthE")
    cols = {n: ev[n].to_list() for n in names}
    n_truth = ak.to_list(ev["nTruthPart"])
    repeated = negative = unknown = 0
    for e in range(len(n_truth)):
        ids, energy, index, truth_e = (cols[n][e] for n in names)
        for k, cluster in enumerate(index):
            for j, deposits in enumerate(cluster):
                for d in range(len(deposits)):
                    if (k + j + d) % 7 == 3:
                        truth_e[k][j][d] = -abs(truth_e[k][j][d]) - 0.01
                        negative += 1
                    elif (k + j + d) % 11 == 5:
                        deposits[d] = n_truth[e] + 3
                        unknown += 1
        if len(ids) >= 2:  # the first cluster's first cells again, with other energies and truth, in the last cluster
            n = min(5, len(ids[0]))
            ids[-1] += ids[0][:n]
            energy[-1] += [x * 3.0 + 1.0 for x in energy[0][:n]]
            index[-1] += [[0] for _ in range(n)]
            truth_e[-1] += [[50.0] for _ in range(n)]
            repeated += n
    assert repeated and negative and unknown
    path = _write(tmp_path / "JZ3_policies.root", {**ev, **{n: cols[n] for n in names}}, source=source)

    cells = CellTable.build(read_cell_geometry(str(path)), 0.2)
    built = build_samples(read_columns(str(path), BRANCHES), cells, SampleOptions(), str(path))
    assert built.stats.dropped["duplicate_cell_entries"] == repeated
    assert built.stats.dropped["negative_truth_deposits_clipped"] == negative
    assert built.stats.dropped["truth_deposits_with_unknown_particle"] == unknown
    rows = [r for t in built.tables.values() for r in t.to_pylist()]
    got = {(r["entry"], r["track_index"]): r for r in rows}
    _assert_agrees(got, reference_samples(str(path)), str(path))
    assert len(got) > 20


def test_cell_id_missing_from_the_geometry_is_named(sim_root):
    path = str(next((sim_root / "rho").glob("*.root")))
    geo = read_cell_geometry(path)
    cols = read_columns(path, BRANCHES)
    ids = cols["cluster_cell_ID"].values.copy()
    bad = int(geo.id.max()) + 1
    ids[len(ids) // 2] = bad
    cols["cluster_cell_ID"] = Jagged(cols["cluster_cell_ID"].offsets, ids)
    with pytest.raises(MLTreeError, match=f"{path}: branch 'cluster_cell_ID' has cell ID {bad} that the CellGeo tree does not list"):
        build_samples(cols, CellTable.build(geo, 0.2), SampleOptions(), path)


def _bad_files(sim_root: Path, tmp: Path) -> dict[str, tuple[Path, str]]:
    source = str(min((sim_root / "rho").glob("*.root")))
    files = {}
    files["missing"] = (tmp / "gone.root", "no such file")
    p = tmp / "text.root"
    p.write_bytes(b"not a ROOT file\n" * 64)
    files["not_root"] = (p, "not a readable ROOT file")
    data = Path(source).read_bytes()
    p = tmp / "cut.root"
    p.write_bytes(data[: len(data) // 2])
    files["truncated"] = (p, "cut.root")
    ev = _events(source)
    p = tmp / "no_tree.root"
    write_root_file(p, {"CellGeo": _geo_branches(source)})
    files["missing_tree"] = (p, "tree 'EventTree' missing")
    files["missing_branch"] = (_write(tmp / "no_branch.root", {k: v for k, v in ev.items() if k != "cluster_cell_E"}, source=source), "lacks branch.*cluster_cell_E")
    n_track = ak.to_numpy(ev["nTrack"]).copy()
    n_track[15] += 1  # late in the file: earlier entry ranges are fine and already written
    files["inconsistent"] = (_write(tmp / "inconsistent.root", {**ev, "nTrack": n_track}, source=source), "'nTrack' disagrees.*'trackPt'")
    return files


@pytest.fixture(scope="session")
def bad_files(sim_root, tmp_path_factory):
    return _bad_files(sim_root, tmp_path_factory.mktemp("bad"))


@pytest.mark.parametrize("case", ["missing", "not_root", "truncated", "missing_tree", "missing_branch", "inconsistent"])
def test_bad_file_fails_naming_file_and_branch(ray_session, bad_files, sim_root, tmp_path, case):
    path, message = bad_files[case]
    good = str(min((sim_root / "rho").glob("*.root")))
    cfg = _config([{"set": "rho", "paths": [good, str(path)]}], tmp_path, events_per_task=4)
    with pytest.raises(MLTreeError, match=message) as err:
        run_preprocess(cfg)
    assert str(path) in str(err.value) or path.name in str(err.value)
    assert [p.name for p in tmp_path.iterdir()] == []  # nothing half written


def test_skip_policy_keeps_only_complete_files(ray_session, bad_files, sim_root, tmp_path):
    good = sorted(str(p) for p in (sim_root / "rho").glob("*.root"))
    bad = [str(p) for p, _ in bad_files.values()]
    cfg = _config([{"set": "rho", "paths": good + bad}], tmp_path, events_per_task=4, on_bad_file="skip")
    meta = run_preprocess(cfg)
    assert sorted(s["path"] for s in meta["skipped_files"]) == sorted(str(Path(b).resolve()) for b in bad)
    df = _load(tmp_path / meta["dataset"])
    assert set(df["file"].astype(str)) == {Path(g).name for g in good}
    parts = list((tmp_path / meta["dataset"]).rglob("*.parquet"))
    assert not any("inconsistent" in p.name for p in parts)
    assert meta["counts"]["events"] == sum(uproot.open(g)["EventTree"].num_entries for g in good)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([meta["dataset"], LATEST])


def test_tasks_map_the_shared_cell_table_without_copying(ray_session, sim_root):
    import ray

    from raypf.data.preprocess import _shared

    table = CellTable.build(read_cell_geometry(str(next((sim_root / "rho").glob("*.root")))), 0.2)
    ref = ray.put(table)

    @ray.remote
    def probe(refs):
        cells = _shared(refs[0])
        return cells.eta.flags.writeable, cells.eta.flags.owndata, int(cells.lookup(cells.id[:5]).sum())

    # read-only views of the object store, not private copies; and the table works there
    assert ray.get(probe.remote([ref])) == (False, False, 0 + 1 + 2 + 3 + 4)
