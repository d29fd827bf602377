"""The evaluation's plots, from the scoreboard and what scoring collected (drawing itself is in ``plots``)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from raypf.data.batching import CELL, FOCAL
from raypf.data.cone import wrap_phi
from raypf.evaluate import plots
from raypf.evaluate.scores import Scoreboard, method_labels

log = logging.getLogger(__name__)
PT_EDGES = np.array([0.5, 1, 2, 3, 5, 8, 12, 20, 40, 100])
ETA_EDGES = np.linspace(-2.5, 2.5, 11)


def make_plots(
    cfg, out: Path, dataset: Path, predictions: Path, collected: dict, board: Scoreboard, result: dict, model_name: str
) -> dict[str, Path]:
    """Every plot of the report, by name; ``result`` is ``board.result()``."""
    out.mkdir(parents=True, exist_ok=True)
    labels = method_labels(model_name)
    overall = result["all"] if "all" in result else next(iter(result.values()))
    s, c = collected["samples"], collected["cells"]
    made: dict[str, Path] = {}

    native = sum(board.native[name] for name in board.sets())
    names = ["neutral", "focal", "other charged"] if board.k == 3 else ["not focal", "focal"]
    made["confusion"] = plots.confusion(out / "confusion.png", native, names, f"{model_name}: cells of all sets")

    points = {
        labels[m]: _operating_point(np.asarray(overall[m]["confusion"]))
        for m in overall
        if m not in ("model", "dumb", "random")
    }
    made["pr_roc"] = plots.pr_roc(
        out / "pr_roc.png", {model_name: (c["true"], c["score"])}, points, "Focal cells: precision-recall and ROC"
    )

    has_truth = s["energy_truth"] > 0
    responses = {labels[m]: s[f"energy_{m}"][has_truth] / s["energy_truth"][has_truth] for m in board.methods()}
    made["response_pt"] = plots.response_vs(
        out / "response_pt.png", s["track_pt"][has_truth], responses, PT_EDGES, "track $p_T$ [GeV]",
        "Focal energy response vs track $p_T$", log_x=True,
    )  # fmt: skip
    made["response_eta"] = plots.response_vs(
        out / "response_eta.png",
        s["track_eta"][has_truth],
        responses,
        ETA_EDGES,
        r"track $\eta$",
        r"Focal energy response vs track $\eta$",
    )
    decisions = {labels[m]: c[f"pred_{m}"] for m in board.methods()}
    made["f1_tracks"] = plots.f1_vs_tracks(
        out / "f1_tracks.png", c["n_tracks"], c["true"], decisions, "Focal-cell F1 vs tracks in the cone"
    )
    for set_name in board.sets():
        for i, row in enumerate(_chosen(s, set_name, cfg.plots.event_displays)):
            made[f"event_{set_name}_{i}"] = _event_display(
                out / f"event_{set_name}_{i}.png", cfg, dataset, predictions, s, row, model_name
            )
    return made


def _operating_point(confusion: np.ndarray) -> dict[str, float]:
    (tn, fp), (fn, tp) = confusion
    return {
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "fpr": fp / (fp + tn) if fp + tn else 0.0,
        "tpr": tp / (tp + fn) if tp + fn else 0.0,
    }


def _chosen(s: dict, set_name: str, n: int) -> list[int]:
    """Samples to display: cones that hold other tracks where there are any, at the 90th, then lower
    percentiles of focal energy (typical showers, not the single most energetic track)."""
    rows = np.flatnonzero((s["set"] == set_name) & (s["energy_truth"] > 0))
    if not len(rows) or n == 0:
        return []
    dense = rows[s["n_tracks"][rows] > 1]
    rows = dense if len(dense) else rows
    rows = rows[np.argsort(s["energy_truth"][rows], kind="stable")]
    picks = np.unique(np.round(np.linspace(0.9, 0.3, n) * (len(rows) - 1)).astype(int))
    return rows[picks].tolist()


def _event_display(path: Path, cfg, dataset: Path, predictions: Path, s: dict, row: int, model_name: str) -> Path:
    """One sample's cone in Δη-Δφ per layer group: truth, the model and the particle flow side by side."""
    set_name, stem, entry, track = s["set"][row], s["file"][row], int(s["entry"][row]), int(s["track_index"][row])
    samples = pads.dataset(str(dataset / f"split={cfg.split}" / f"set={set_name}"), format="parquet")
    sample = samples.to_table(
        filter=(pc.field("entry") == entry) & (pc.field("track_index") == track),
        columns=["file", "track_eta", "track_phi", "track_pt", "x", "y", "z", "point_type", "track", "layer", "energy",
                 "truth_focal", "truth_total"],
    )  # fmt: skip
    sample = sample.filter(pc.equal(sample.column("file").cast("string"), f"{stem}.root")).slice(0, 1)
    cells = pq.read_table(predictions / set_name / f"{stem}.parquet")
    cells = cells.filter((pc.field("entry") == entry) & (pc.field("track_index") == track)).sort_by("point")
    point = {
        k: np.asarray(sample.column(k)[0].values) for k in ("x", "y", "z", "point_type", "track", "layer", "energy")
    }
    r = np.hypot(point["x"], point["y"])
    d_eta = np.arcsinh(point["z"] / r) - sample.column("track_eta")[0].as_py()
    d_phi = wrap_phi(np.arctan2(point["y"], point["x"]) - sample.column("track_phi")[0].as_py())
    is_cell = point["point_type"] == CELL
    truth_total = np.asarray(sample.column("truth_total")[0].values)[is_cell]
    truth_focal = np.asarray(sample.column("truth_focal")[0].values)[is_cell]
    panels = {"truth": np.divide(truth_focal, truth_total, out=np.zeros(len(truth_total)), where=truth_total > 0),
              f"{model_name} (focal probability)": cells.column("score").to_numpy()}  # fmt: skip
    if "pf_fraction" in cells.column_names:
        panels["particle flow (subtracted share)"] = cells.column("pf_fraction").to_numpy()
    track_points = ~is_cell
    title = (f"{set_name} {stem} entry {entry}, track {track}: $p_T$ = {sample.column('track_pt')[0].as_py():.1f} GeV, "
             f"{int(s['n_tracks'][row])} track(s) in the cone")  # fmt: skip
    return plots.event_display(
        path,
        {"deta": d_eta[is_cell], "dphi": d_phi[is_cell], "layer": point["layer"][is_cell], "energy": point["energy"][is_cell]},
        {"deta": d_eta[track_points], "dphi": d_phi[track_points], "layer": point["layer"][track_points],
         "focal": point["point_type"][track_points] == FOCAL, "track": point["track"][track_points]},
        panels,
        title,
    )  # fmt: skip
