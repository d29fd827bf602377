"""The E/p template of the rule-based particle flow, fitted on the training split.

ATLAS measures ⟨E_ref/p⟩ on single pions in bins of track p, η and the layer of
highest energy density. Here the reference energy of a training sample is the
focal particle's share of its cone's measured cell energy,
``Σ E_cell · truth_focal / truth_total`` over the cone's cells (ΔR < 0.2), and
the template bins track p and |η| (the LHED bin is dropped: the subtraction
still orders layers by energy density). Empty bins take the mean of their p
row, then the overall mean, so every track gets an expectation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads

from raypf.config import ConfigError
from raypf.data.batching import TRUTH_COLUMNS

#: Default bin edges: track p (GeV) and |eta| at the reference layer.
P_EDGES = (0.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 40.0, 1.0e4)
ETA_EDGES = (0.0, 0.4, 0.8, 1.2, 1.6, 2.0, 2.5, 5.0)


@dataclass(frozen=True)
class EpTemplate:
    """Mean and spread of E_ref/p per (p, |eta|) bin, and how many training tracks filled each."""

    p_edges: tuple[float, ...]
    eta_edges: tuple[float, ...]
    mean: list[list[float]]
    std: list[list[float]]
    count: list[list[int]]

    def lookup(self, p: np.ndarray, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """⟨E/p⟩ and σ(E/p) for tracks of momentum ``p`` at ``eta``."""
        i = _bin(p, self.p_edges)
        j = _bin(np.abs(eta), self.eta_edges)
        return np.asarray(self.mean)[i, j], np.asarray(self.std)[i, j]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> EpTemplate:
        return cls(tuple(d["p_edges"]), tuple(d["eta_edges"]), d["mean"], d["std"], d["count"])


def _bin(x: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    return np.clip(
        np.searchsorted(np.asarray(edges), np.asarray(x, dtype=np.float64), side="right") - 1, 0, len(edges) - 2
    )


def fit_template(
    p: np.ndarray, eta: np.ndarray, e_ref: np.ndarray, p_edges=P_EDGES, eta_edges=ETA_EDGES, min_count: int = 20
) -> EpTemplate:
    """Per-bin mean and standard deviation of ``e_ref / p``; bins with fewer than ``min_count`` tracks are filled in."""
    p, eta, e_ref = (np.asarray(a, dtype=np.float64) for a in (p, eta, e_ref))
    ok = p > 0
    ratio = e_ref[ok] / p[ok]
    i, j = _bin(p[ok], p_edges), _bin(np.abs(eta[ok]), eta_edges)
    shape = (len(p_edges) - 1, len(eta_edges) - 1)
    flat = np.ravel_multi_index((i, j), shape)
    n = np.bincount(flat, minlength=np.prod(shape)).reshape(shape)
    s1 = np.bincount(flat, weights=ratio, minlength=np.prod(shape)).reshape(shape)
    s2 = np.bincount(flat, weights=ratio * ratio, minlength=np.prod(shape)).reshape(shape)
    full = n >= min_count
    mean = np.divide(s1, n, out=np.zeros(shape), where=n > 0)
    std = np.sqrt(np.maximum(np.divide(s2, n, out=np.zeros(shape), where=n > 0) - mean**2, 0))
    # fill sparse bins from their p row, then from everything
    overall_mean = ratio.mean() if len(ratio) else 0.0
    overall_std = ratio.std() if len(ratio) else 0.0
    n_row, s1_row, s2_row = n.sum(1), s1.sum(1), s2.sum(1)
    row_ok = n_row >= min_count
    row_mean = np.where(row_ok, np.divide(s1_row, n_row, out=np.zeros(shape[0]), where=n_row > 0), overall_mean)
    row_std = np.where(
        row_ok,
        np.sqrt(np.maximum(np.divide(s2_row, n_row, out=np.zeros(shape[0]), where=n_row > 0) - row_mean**2, 0)),
        overall_std,
    )
    mean = np.where(full, mean, row_mean[:, None])
    std = np.where(full, std, row_std[:, None])
    return EpTemplate(tuple(map(float, p_edges)), tuple(map(float, eta_edges)), mean.tolist(), std.tolist(), n.tolist())


def reference_energy(table: pa.Table) -> np.ndarray:
    """Per sample: the focal particle's share of the measured energy of the cone's cells."""
    from raypf.data.batching import CELL, list_column

    ptype, offsets = list_column(table, "point_type")
    energy, _ = list_column(table, "energy")
    focal, _ = list_column(table, "truth_focal")
    total, _ = list_column(table, "truth_total")
    share = np.divide(focal, total, out=np.zeros(len(focal), dtype=np.float64), where=total > 0)
    contribution = np.where(ptype == CELL, energy * share, 0.0)
    sample = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    return np.bincount(sample, weights=contribution, minlength=len(offsets) - 1)


_TRAIN_COLUMNS = ["track_p", "track_eta", "point_type", "energy", *TRUTH_COLUMNS]


def fit_on_train_split(dataset: Path, target: str, t) -> tuple[EpTemplate, np.ndarray]:
    """The E/p template and the class proportions of the training split (what baselines may know).

    ``t`` holds the binning and ``max_samples`` (the config's ``Template``).
    """
    from raypf.data.batching import CELL, labels, list_column

    ds = pads.dataset(str(dataset / "split=train"), format="parquet", partitioning="hive")
    p, eta, e_ref, class_counts, n = [], [], [], np.zeros(3), 0
    for batch in ds.to_batches(columns=_TRAIN_COLUMNS, batch_size=4096):
        table = pa.Table.from_batches([batch])
        p.append(table.column("track_p").to_numpy())
        eta.append(table.column("track_eta").to_numpy())
        e_ref.append(reference_energy(table))
        ptype, _ = list_column(table, "point_type")
        truth = [list_column(table, c)[0] for c in TRUTH_COLUMNS]
        cls = labels("three_class" if target == "three_class" else "binary", ptype, *truth)
        class_counts += np.bincount(cls[ptype == CELL], minlength=3)[:3]
        n += table.num_rows
        if n >= t.max_samples:
            break
    if n == 0:
        raise ConfigError(
            f"{dataset}: the train split is empty; the baselines need it (E/p template, class proportions)"
        )
    template = fit_template(
        np.concatenate(p), np.concatenate(eta), np.concatenate(e_ref), t.p_edges, t.eta_edges, t.min_count
    )
    k = 3 if target == "three_class" else 2
    return template, class_counts[:k] / class_counts[:k].sum()
