"""MLTree files written through the Ray pipeline: schema, identifiers, truth bookkeeping, determinism."""

from __future__ import annotations

import re
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from raypf.data.mltree_schema import CELL_GEO_BRANCHES, CELL_GEO_TREE, EVENT_BRANCHES, EVENT_TREE, LAYERS, MC_CHANNEL

_SCALAR = {
    "int": "i32", "int_t": "i32", "int32_t": "i32",
    "long64_t": "i64", "int64_t": "i64", "long": "i64",
    "size_t": "u64", "ulong64_t": "u64", "unsignedlong": "u64", "uint64_t": "u64", "unsignedlonglong": "u64",
    "float": "f32", "float_t": "f32",
}  # fmt: skip


def canonical(cpp: str) -> str:
    """Spelling-independent C++ type: 'std::vector<std::vector<unsigned long> >' -> 'vector<vector<u64>>'."""
    t = cpp.replace("std::", "").replace(" ", "").lower()
    return re.sub(r"[a-z_0-9]+(?=>|$)", lambda m: _SCALAR.get(m.group(0), m.group(0)), t)


def _files(manifest) -> list[str]:
    return [f["path"] for f in manifest["files"]]


def test_schema_matches_mltree(sim_dataset):
    for path in _files(sim_dataset):
        with uproot.open(path) as f:
            assert f.classname_of(EVENT_TREE) == "TTree"
            assert f.classname_of(CELL_GEO_TREE) == "TTree"
            events, geo = f[EVENT_TREE], f[CELL_GEO_TREE]
            assert set(events.keys()) == set(EVENT_BRANCHES)
            assert set(geo.keys()) == set(CELL_GEO_BRANCHES)
            for name, cpp in EVENT_BRANCHES.items():
                assert canonical(events[name].typename) == canonical(cpp), name
            for name, cpp in CELL_GEO_BRANCHES.items():
                assert canonical(geo[name].typename) == canonical(cpp), name
            assert geo.num_entries == 1


def test_canonical_types():
    assert canonical("std::vector<std::vector<unsigned long> >") == "vector<vector<u64>>"
    assert canonical("vector<vector<size_t>>") == "vector<vector<u64>>"
    assert canonical("vector<float>") != canonical("vector<int>")


def test_events_are_uniquely_identified_and_tagged(sim_dataset):
    seen = set()
    for path in _files(sim_dataset):
        set_name = Path(path).parent.name
        ev = uproot.open(path)[EVENT_TREE].arrays(["runNumber", "eventNumber", "mcChannelNumber"], library="np")
        assert np.all(ev["mcChannelNumber"] == MC_CHANNEL[set_name])
        ids = set(zip(ev["runNumber"].tolist(), ev["eventNumber"].tolist()))
        assert len(ids) == len(ev["runNumber"])
        assert not ids & seen
        seen |= ids


def test_truth_bookkeeping(sim_dataset):
    for path in _files(sim_dataset):
        with uproot.open(path) as f:
            ev = f[EVENT_TREE].arrays(library="ak")
            geo = f[CELL_GEO_TREE].arrays(library="np")
        sigma_of = dict(zip(geo["cell_geo_ID"][0].tolist(), geo["cell_geo_sigma"][0].tolist()))
        # every cell's truth energies sum to its noise-free energy
        truth_sum = ak.sum(ev.cluster_cell_hitsTruthE, axis=-1)
        noise_free = ev.cluster_cell_hitsE_EM + ev.cluster_cell_hitsE_nonEM
        np.testing.assert_allclose(ak.to_numpy(ak.flatten(truth_sum, axis=None)), ak.to_numpy(ak.flatten(noise_free, axis=None)), rtol=1e-4, atol=1e-5)
        # measured minus noise-free energy is the cell's noise
        ids = ak.to_numpy(ak.flatten(ev.cluster_cell_ID, axis=None))
        assert ids.dtype == np.uint64
        sigma = np.array([sigma_of[i] for i in ids.tolist()])
        pull = (ak.to_numpy(ak.flatten(ev.cluster_cell_E, axis=None)) - ak.to_numpy(ak.flatten(noise_free, axis=None))) / sigma
        assert abs(np.std(pull) - 1.0) < 0.5 and abs(np.mean(pull)) < 0.3
        # truth indices point into the event's truth list; a cell is never in two clusters
        n_truth = ak.to_numpy(ev.nTruthPart)
        idx = ev.cluster_cell_hitsTruthIndex
        assert ak.all(idx >= 0)
        assert ak.all(ak.max(ak.flatten(idx, axis=2), axis=1, mask_identity=False) < n_truth)
        ordered = ak.sort(ak.flatten(ev.cluster_cell_ID, axis=2))
        assert ak.all(ordered[:, 1:] != ordered[:, :-1])
        # tracks: truth link in range or -1; extrapolations real numbers or -999999
        t_idx = ev.trackTruthParticleIndex
        assert ak.all((t_idx == -1) | ((t_idx >= 0) & (t_idx < ev.nTruthPart)))
        for layer in ("EMB2", "EME2", "TileBar0"):
            eta = ak.flatten(ev[f"trackEta_{layer}"])
            assert ak.all((eta == -999999) | (np.abs(eta) < 3.3))
        assert ak.all(ak.num(ev.cluster_E) == ev.nCluster)
        assert ak.all(ak.num(ev.cluster_cell_ID, axis=2) == ev.cluster_nCells)
        assert ak.all(ev.nTrack == ak.num(ev.trackPt))


def test_tracks_point_at_their_truth_particle(sim_dataset):
    path = next(p for p in _files(sim_dataset) if "/rho/" in p)
    ev = uproot.open(path)[EVENT_TREE].arrays(library="ak")
    has = ev.trackTruthParticleIndex >= 0
    t_eta = ev.trackEta[has]
    truth_eta = ev.truthPartEta[ev.trackTruthParticleIndex[has]]
    assert ak.max(np.abs(t_eta - truth_eta)) < 0.05
    # single rho: typically one track per event
    assert 0.7 < ak.mean(ev.nTrack) < 1.3


def test_single_particle_events_have_focal_cells(sim_dataset):
    """rho/delta: 10-200 clustered cells carry the tracked pion's energy, as in the seed's samples."""
    path = next(p for p in _files(sim_dataset) if "/rho/" in p)
    ev = uproot.open(path)[EVENT_TREE].arrays(library="ak")
    one = ev[ev.nTrack == 1]
    focal = ak.firsts(one.trackTruthParticleIndex)
    one, focal = one[focal >= 0], focal[focal >= 0]
    idx = ak.flatten(one.cluster_cell_hitsTruthIndex, axis=2)
    e = ak.flatten(one.cluster_cell_hitsTruthE, axis=2)
    share = ak.sum(e * (idx == focal), axis=-1) / ak.sum(e, axis=-1)
    n_focal = ak.sum(share >= 0.5, axis=-1)
    assert 10 <= np.median(ak.to_numpy(n_focal)) <= 200


def test_deterministic_for_a_seed(tmp_path, small_sim_config, sim_dataset):
    from raypf.simulate.run import simulate_file

    cfg = small_sim_config.model_copy(update={"output_dir": str(tmp_path)})
    sample = cfg.samples[0]
    summary = simulate_file(cfg, sample, 1)
    original = next(f["path"] for f in sim_dataset["files"] if f["path"].endswith("rho_0001.root"))
    a = uproot.open(original)[EVENT_TREE].arrays(library="ak")
    b = uproot.open(summary.path)[EVENT_TREE].arrays(library="ak")
    for name in EVENT_BRANCHES:
        assert ak.array_equal(a[name], b[name]), name
    other = simulate_file(cfg.model_copy(update={"seed": cfg.seed + 1}), sample, 1)
    c = uproot.open(other.path)[EVENT_TREE].arrays(["truthPartE"], library="ak")
    assert not ak.all(ak.ravel(c.truthPartE)[:10] == ak.ravel(a.truthPartE)[:10])


def test_failed_task_leaves_no_file(tmp_path, small_sim_config, monkeypatch):
    from raypf.simulate import detector, run

    calls = {"n": 0}
    real = detector.Detector.simulate

    def flaky(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("detector failure in batch 2")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(detector.Detector, "simulate", flaky)
    cfg = small_sim_config.model_copy(update={"output_dir": str(tmp_path)})
    with pytest.raises(RuntimeError, match="batch 2"):
        run.simulate_file(cfg, cfg.samples[0], 0)
    assert list(tmp_path.rglob("*")) in ([], [tmp_path / "rho"])


def test_manifest_lists_all_files(sim_dataset, small_sim_config):
    expected = sum(s.files for s in small_sim_config.samples)
    assert len(sim_dataset["files"]) == expected
    for f in sim_dataset["files"]:
        assert Path(f["path"]).is_file()
        assert uproot.open(f["path"])[EVENT_TREE].num_entries == f["events"]
    manifest = Path(small_sim_config.output_dir) / "manifest.json"
    assert manifest.is_file()
    assert LAYERS[1] == "EMB2"
