"""Metrics of the model and of every baseline, per set and per group of sets, from the cell predictions.

All methods are scored as the same binary question, "is this cell's energy
mostly the focal particle's?", on the same cells, so one table compares them:
accuracy, focal precision/recall/F1 and the energy-weighted accuracy from
confusion matrices (``raypf.models.metrics``), and the per-track energy
response (predicted focal energy over the focal particle's true deposit). The
dumb, random and smart-random baselines are the expected confusion matrices
of ``raypf.models.baselines`` with the training split's class proportions.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from raypf.data.batching import FOCAL_CLASS
from raypf.models.baselines import BASELINES, baseline_metrics
from raypf.models.metrics import metrics_from_confusion, response_metrics

#: Methods with per-cell decisions: column of the predicted focal share in the cell predictions.
SHARE_COLUMNS = {"model": "pred_fraction", "nearest_track": "nearest_focal", "particle_flow": "pf_fraction"}
#: Named groups of sets reported beside the sets themselves (as the seeds did).
GROUPS = {"rho+delta": ("rho", "delta"), "JZ": tuple(f"JZ{i}" for i in range(13))}
#: Table columns: metric key -> header.
COLUMNS = {
    "f1": "F1", "precision": "precision", "recall": "recall", "accuracy": "accuracy",
    "energy_weighted_accuracy": "E-weighted acc.", "response_median": "response", "response_spread": "resolution",
}  # fmt: skip


#: How the table and the plots name each method (the model goes by its architecture).
LABELS = {
    "nearest_track": "nearest track", "particle_flow": "particle flow (rule-based)",
    "dumb": "dumb", "random": "random", "smart_random": "smart random",
}  # fmt: skip


def method_labels(model_name: str) -> dict[str, str]:
    return {"model": model_name, **LABELS}


def shares(cells: pa.Table) -> dict[str, np.ndarray]:
    """Per method present in ``cells``: the share of each cell's energy it gives the focal track."""
    return {
        m: cells.column(c).to_numpy().astype(np.float64) for m, c in SHARE_COLUMNS.items() if c in cells.column_names
    }


def sample_sums(cells: pa.Table, values: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per sample (consecutive rows of one (entry, track)): the first row index and each value summed."""
    entry = cells.column("entry").to_numpy()
    track = cells.column("track_index").to_numpy()
    new = np.ones(len(entry), dtype=bool)
    new[1:] = (entry[1:] != entry[:-1]) | (track[1:] != track[:-1])
    starts = np.flatnonzero(new)
    return starts, {k: np.add.reduceat(v, starts) if len(v) else v for k, v in values.items()}


class Scoreboard:
    """Accumulates confusion matrices and per-sample energies per set and method, part by part."""

    def __init__(self, model_classes: int, train_proportions: np.ndarray) -> None:
        self.k = model_classes
        self.proportions = np.asarray(train_proportions, dtype=np.float64)
        self.counts: dict[tuple[str, str], np.ndarray] = defaultdict(lambda: np.zeros((2, 2)))
        self.weighted: dict[tuple[str, str], np.ndarray] = defaultdict(lambda: np.zeros((2, 2)))
        self.native: dict[str, np.ndarray] = defaultdict(lambda: np.zeros((self.k, self.k)))
        self.energy: dict[tuple[str, str], list[np.ndarray]] = defaultdict(list)
        self.true_energy: dict[str, list[np.ndarray]] = defaultdict(list)

    def add(self, set_name: str, cells: pa.Table) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Add the cells of one file, sorted by sample (rows of a sample consecutive).

        Returns what it computed on the way, for the plots: each sample's first row, the per-sample focal
        energies (``truth`` and per method) and each method's per-cell shares.
        """
        true_focal = cells.column("true_class").to_numpy() == FOCAL_CLASS
        energy = cells.column("energy").to_numpy().astype(np.float64)
        weight = np.maximum(energy, 0)
        tc, pc = cells.column("true_class").to_numpy(), cells.column("pred_class").to_numpy()
        self.native[set_name] += np.bincount(tc * self.k + pc, minlength=self.k * self.k).reshape(self.k, self.k)
        by_method = shares(cells)
        energies = {m: energy * s for m, s in by_method.items()}
        energies["truth"] = cells.column("truth_focal").to_numpy().astype(np.float64)
        starts, sums = sample_sums(cells, energies)
        self.true_energy[set_name].append(sums["truth"])
        for method, share in by_method.items():
            index = true_focal * 2 + (share >= 0.5)
            self.counts[set_name, method] += np.bincount(index, minlength=4).reshape(2, 2)
            self.weighted[set_name, method] += np.bincount(index, weights=weight, minlength=4).reshape(2, 2)
            self.energy[set_name, method].append(sums[method])
        return starts, sums, by_method

    def sets(self) -> list[str]:
        return sorted(self.true_energy)

    def methods(self) -> list[str]:
        return [m for m in SHARE_COLUMNS if any(key[1] == m for key in self.counts)]

    def groups(self) -> dict[str, list[str]]:
        """Every set alone, the named groups with more than one of their sets present, and everything."""
        out = {s: [s] for s in self.sets()}
        for name, members in GROUPS.items():
            present = [s for s in self.sets() if s in members]
            if len(present) > 1:
                out[name] = present
        if len(self.sets()) > 1:
            out["all"] = self.sets()
        return out

    def result(self) -> dict[str, dict[str, dict]]:
        """group -> method -> metrics (the model, the event-level baselines, dumb, random, smart random)."""
        out: dict[str, dict[str, dict]] = {}
        for group, members in self.groups().items():
            true = _cat(self.true_energy[s] for s in members)
            rows: dict[str, dict] = {}
            for method in self.methods():
                counts = sum(self.counts[s, method] for s in members)
                weighted = sum(self.weighted[s, method] for s in members)
                rows[method] = metrics_from_confusion(counts, weighted)
                rows[method].update(response_metrics(_cat(self.energy[s, method] for s in members), true))
            model_counts = sum(self.counts[s, "model"] for s in members)
            model_weighted = sum(self.weighted[s, "model"] for s in members)
            binary_props = np.array([1 - self.proportions[FOCAL_CLASS], self.proportions[FOCAL_CLASS]])
            for name, m in baseline_metrics(model_counts, model_weighted, binary_props).items():
                rows[name] = m
            if self.k > 2:
                rows["model"]["native"] = metrics_from_confusion(sum(self.native[s] for s in members))
            out[group] = rows
        return out


def _cat(lists) -> np.ndarray:
    """One array from an iterable of lists of arrays."""
    flat = [a for arrays in lists for a in arrays]
    return np.concatenate(flat) if flat else np.zeros(0)


def table_rows(result: dict[str, dict[str, dict]], model_name: str) -> list[dict]:
    """Rows (group, method, metrics) in report order: per group the model first, then every baseline."""
    names = method_labels(model_name)
    order = ["model", "particle_flow", "nearest_track", *BASELINES[::-1]]
    rows = []
    for group, methods in result.items():
        for method in order:
            if method in methods:
                m = methods[method]
                rows.append({"set": group, "method": names[method], "cells": int(m["cells"]), "samples": m.get("samples"),
                             **{k: m.get(k) for k in COLUMNS}})  # fmt: skip
    return rows


def markdown_table(rows: list[dict]) -> str:
    """The metrics table in Markdown (also what the demo prints)."""
    head = ["set", "method", *COLUMNS.values(), "cells"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        vals = [r["set"], r["method"], *("—" if r[k] is None else f"{r[k]:.3f}" for k in COLUMNS), f"{r['cells']:,}"]
        lines.append("| " + " | ".join(vals) + " |")
    return "\n".join(lines)


def score_parts(parts: list[tuple[str, Path]], k: int, proportions: np.ndarray, max_cells: int, seed: int):
    """The scoreboard, and what the plots need: per-sample energies and a random subsample of cells."""
    board = Scoreboard(k, proportions)
    total = sum(pq.ParquetFile(p).metadata.num_rows for _, p in parts)
    rate = min(1.0, max_cells / max(total, 1))
    rng = np.random.default_rng(seed)
    samples, cells = [], []
    for set_name, part in parts:
        t = pq.read_table(part)
        starts, sums, by_method = board.add(set_name, t)
        samples.append({"set": np.full(len(starts), set_name), "file": np.full(len(starts), part.stem),
                        **{c: t.column(c).to_numpy()[starts] for c in ("entry", "track_index", "track_pt", "track_eta", "n_tracks")},
                        **{f"energy_{m}": v for m, v in sums.items()}})  # fmt: skip
        keep = rng.random(t.num_rows) < rate
        cells.append({"true": t.column("true_class").to_numpy()[keep] == 1, "score": t.column("score").to_numpy()[keep],
                      "n_tracks": t.column("n_tracks").to_numpy()[keep],
                      **{f"pred_{m}": s[keep] >= 0.5 for m, s in by_method.items()}})  # fmt: skip
    return board, {"samples": _merge(samples), "cells": _merge(cells)}


def _merge(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
