"""`raypf evaluate` end to end on a real local Ray, real files and a real MLflow store.

One small dataset of every set (split 50/10/40 so that the test split holds events of each),
a model trained two epochs, and one evaluation through the CLI; the tests then check what
it wrote against the samples, the MLTree events and the MLflow store.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pyarrow.dataset as pads
import pytest
import yaml

from raypf.cli import main
from raypf.config import ConfigError
from raypf.data.preprocess import run_preprocess
from raypf.data.preprocess_config import PreprocessConfig
from raypf.evaluate.checkpoint import resolve
from raypf.evaluate.config import EvaluateConfig
from raypf.evaluate.run import run_evaluate
from raypf.train.config import TrainConfig
from raypf.train.run import run_train

SETS = ("rho", "delta", "JZ2", "JZ3")
SMALL = {"point_widths": [16, 16], "global_widths": [16, 32, 64], "head_widths": [32, 16], "tnet_widths": [16, 32],
         "tnet_fc_widths": [32]}  # fmt: skip


@pytest.fixture(scope="module")
def evaluated(ray_session, sim_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    mltree = Path(sim_dataset["config"]["output_dir"])
    pre = PreprocessConfig.model_validate(
        {
            "inputs": [{"set": s, "paths": [str(mltree / s / "*.root")]} for s in SETS],
            "output_dir": str(root / "samples"),
            "samples": {"split": {"train": 0.5, "val": 0.1, "test": 0.4}},
        }
    )
    dataset = Path(pre.output_dir) / run_preprocess(pre)["dataset"]
    store = f"sqlite:///{root / 'mlflow.db'}"
    train = TrainConfig.model_validate(
        {
            "output_dir": str(root / "train"), "run_name": "small", "epochs": 2, "tracking": {"tracking_uri": store},
            "data": {"dataset": str(dataset), "samples_per_epoch": 128, "batch_size": 32, "val_samples": 64},
            "model": {"options": SMALL}, "loss": {"kind": "bce", "pos_weight": 3.0},
            "scaling": {"num_workers": 1, "cpus_per_worker": 1},
        }
    )  # fmt: skip
    trained = run_train(train)
    config = root / "evaluate.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "eval",
                "output_dir": str(root / "evaluate"),
                "tracking": {"tracking_uri": store},
                "inference": {"actors": 1, "cpus_per_actor": 1, "batch_size": 16},
                "plots": {"event_displays": 1},
            }
        )
    )
    return {"root": root, "dataset": dataset, "store": store, "train": trained, "config": config, "mltree": mltree}


@pytest.fixture(scope="module")
def cli_run(evaluated):
    """The documented command: raypf evaluate --checkpoint ... --data ... --split test."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["evaluate", "--config", str(evaluated["config"]), "--checkpoint", str(evaluated["root"] / "train" / "small"),
                   "--data", str(evaluated["dataset"]), "--split", "test"])  # fmt: skip
    assert rc == 0
    eval_dir = evaluated["root"] / "evaluate" / "eval"
    return {
        **evaluated,
        "stdout": out.getvalue(),
        "dir": eval_dir,
        "summary": json.loads((eval_dir / "metrics.json").read_text()),
    }


def _predictions(run):
    return pads.dataset(str(run["dir"] / "predictions"), format="parquet").to_table().to_pandas()


def test_predictions_align_with_the_cells_of_their_samples(cli_run):
    pred = _predictions(cli_run)
    samples = (
        pads.dataset(str(cli_run["dataset"] / "split=test"), format="parquet", partitioning="hive")
        .to_table(columns=["set", "file", "entry", "track_index", "point_type", "cell_id", "energy", "truth_focal"])
        .to_pandas()
    )
    assert set(pred["set"]) == set(SETS) == set(samples["set"])
    n_cells = 0
    for row in samples.itertuples():
        got = pred[(pred["set"] == row.set) & (pred["file"] == row.file) & (pred["entry"] == row.entry)
                   & (pred["track_index"] == row.track_index)].sort_values("point")  # fmt: skip
        cell = np.asarray(row.point_type) == 0
        assert got["cell_id"].tolist() == np.asarray(row.cell_id)[cell].tolist()
        assert got["point"].tolist() == np.flatnonzero(cell).tolist()
        np.testing.assert_allclose(got["energy"], np.asarray(row.energy)[cell], rtol=1e-6)
        np.testing.assert_allclose(got["truth_focal"], np.asarray(row.truth_focal)[cell], rtol=1e-6)
        n_cells += int(cell.sum())
    assert len(pred) == n_cells


def test_table_matches_the_predictions_and_holds_every_method(cli_run):
    pred = _predictions(cli_run)
    metrics = cli_run["summary"]["metrics"]
    assert {"rho", "delta", "JZ2", "JZ3", "rho+delta", "JZ", "all"} <= set(metrics)
    for group, members in {"rho": ["rho"], "JZ": ["JZ2", "JZ3"], "all": list(SETS)}.items():
        sub = pred[pred["set"].isin(members)]
        true = sub["true_class"] == 1
        for method, column in {
            "model": "pred_fraction",
            "nearest_track": "nearest_focal",
            "particle_flow": "pf_fraction",
        }.items():
            called = sub[column].astype(float) >= 0.5
            tp, fp, fn = (true & called).sum(), (~true & called).sum(), (true & ~called).sum()
            assert metrics[group][method]["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn)), (group, method)
        assert {"dumb", "random", "smart_random"} <= set(metrics[group])
    # the printed table is the report's
    table = cli_run["stdout"].strip()
    assert table.splitlines()[0].startswith("| set | method | F1 |")
    assert table in (cli_run["dir"] / "report.md").read_text()
    assert "particle flow (rule-based)" in table and "smart random" in table


def test_event_level_baselines_are_consistent_across_samples(cli_run):
    pred = _predictions(cli_run)
    assert pred["pf_fraction"].between(0, 1).all()
    per_cell = pred.groupby(["set", "file", "entry", "cell_id"])
    # a cell's energy is subtracted at most once over all tracks, and it is nearest to at most one track
    assert (per_cell["pf_fraction"].sum() <= 1 + 1e-5).all()
    assert (per_cell["nearest_focal"].sum() <= 1).all()
    # rho events: the particle flow takes energy for most tracks, near their own track
    rho = pred[pred["set"] == "rho"]
    took = rho.groupby(["file", "entry", "track_index"])["pf_fraction"].sum()
    assert (took > 0).mean() > 0.5


def test_plots_and_report_are_written_and_logged(cli_run):
    report = (cli_run["dir"] / "report.md").read_text()
    plots = sorted(p.name for p in (cli_run["dir"] / "plots").glob("*.png"))
    for name in ("confusion.png", "pr_roc.png", "response_pt.png", "response_eta.png", "f1_tracks.png"):
        assert name in plots and f"(plots/{name})" in report
    assert [p for p in plots if p.startswith("event_")] == [f"event_{s}_0.png" for s in sorted(SETS)]
    import matplotlib.image

    for name in plots:
        image = matplotlib.image.imread(cli_run["dir"] / "plots" / name)
        assert image.shape[1] >= 600 and image.std() > 0, name
    client = mlflow.MlflowClient(cli_run["store"])
    runs = client.search_runs(
        [client.get_experiment_by_name("raypf-evaluate").experiment_id], "tags.`raypf.evaluation` = 'eval'"
    )
    assert len(runs) == 1
    run = runs[0]
    train_id = cli_run["train"]["run_id"]
    assert run.data.tags["raypf.train_run_id"] == train_id
    assert client.get_run(train_id).data.tags["raypf.evaluation.eval"] == run.info.run_id
    assert run.data.metrics["all.model.f1"] == pytest.approx(cli_run["summary"]["metrics"]["all"]["model"]["f1"])
    assert "rho_delta.particle_flow.f1" in run.data.metrics
    logged = {a.path for a in client.list_artifacts(run.info.run_id)} | {
        a.path for a in client.list_artifacts(run.info.run_id, "plots")
    }
    assert {"report.md", "metrics.json", "template.json", "plots/pr_roc.png", "plots/event_rho_0.png"} <= logged


def test_bad_inputs_are_named_and_leave_the_previous_evaluation(cli_run, tmp_path):
    base = yaml.safe_load(cli_run["config"].read_text())
    ok = {**base, "checkpoint": str(cli_run["root"] / "train" / "small"), "data": str(cli_run["dataset"])}
    cases = {
        "checkpoint": {"checkpoint": str(tmp_path)},
        "sets": {"sets": ["JZ7"]},
        "baselines.mltree.rho": {"baselines": {"mltree": {"rho": [str(tmp_path / "*.root")]}}},
        "data": {"data": str(tmp_path)},
    }
    before = sorted(p.name for p in cli_run["dir"].rglob("*"))
    for key, change in cases.items():
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            run_evaluate(EvaluateConfig.model_validate({**ok, **change}))
    # an MLTree file that is not where the metadata says fails in the baselines, after inference
    (tmp_path / "rho").mkdir()
    moved = {"baselines": {"mltree": {"rho": [str(tmp_path / "rho" / "*.root")]}}}
    for f in (cli_run["mltree"] / "rho").glob("*.root"):
        (tmp_path / "rho" / f.name).write_bytes(f.read_bytes()[:2000])  # truncated copies
    with pytest.raises(Exception, match="rho_000"):
        run_evaluate(EvaluateConfig.model_validate({**ok, **moved}))
    assert sorted(p.name for p in cli_run["dir"].rglob("*")) == before
    assert not list(cli_run["dir"].parent.glob(".staging-*"))


def test_checkpoint_can_be_a_run_a_state_file_or_a_sweep(tmp_path):
    (tmp_path / "run" / "best").mkdir(parents=True)
    (tmp_path / "run" / "best" / "state.pt").write_bytes(b"x")
    assert resolve(str(tmp_path / "run")) == tmp_path / "run" / "best" / "state.pt"
    assert resolve(str(tmp_path / "run" / "best")) == tmp_path / "run" / "best" / "state.pt"
    assert resolve(str(tmp_path / "run" / "best" / "state.pt")) == tmp_path / "run" / "best" / "state.pt"
    (tmp_path / "sweep" / "trial-3" / "best").mkdir(parents=True)
    (tmp_path / "sweep" / "trial-3" / "best" / "state.pt").write_bytes(b"x")
    (tmp_path / "sweep" / "summary.json").write_text(json.dumps({"best_run_name": "trial-3"}))
    assert resolve(str(tmp_path / "sweep")) == tmp_path / "sweep" / "trial-3" / "best" / "state.pt"
    with pytest.raises(ConfigError, match="checkpoint"):
        resolve(str(tmp_path / "nothing"))
