"""Binned summaries and curves against hand-computed values; every evaluation figure drawn from synthetic cones."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from raypf.evaluate import binned, plots

# --------------------------------------------------------------------------- synthetic data

#: (CaloSampling, deta, dphi cell size, share of the shower energy, shower width in ΔR) of a barrel pion.
_BARREL = (
    (1, 0.003125, 0.098, 0.10, 0.020),
    (2, 0.025, 0.0245, 0.30, 0.030),
    (3, 0.05, 0.0245, 0.05, 0.040),
    (12, 0.1, 0.1, 0.30, 0.060),
    (13, 0.1, 0.1, 0.20, 0.070),
    (14, 0.2, 0.1, 0.05, 0.080),
)


def synthetic_cone(
    rng: np.random.Generator, n_other: int = 2, em_only: bool = False
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Cells, tracks and focal-fraction panels of one cone: a focal pion at the centre, ``n_other`` neighbours.

    Cells sit on each layer's grid within ΔR < 0.2, carry Gaussian-profile shower energy of every track
    plus noise (so some are negative), and are kept above a topo-cluster-like |E| threshold.
    """
    layers = [ly for ly in _BARREL if ly[0] <= 3] if em_only else list(_BARREL)
    centres = np.vstack(([0.0, 0.0], rng.uniform(-0.17, 0.17, size=(n_other, 2))))
    energies = np.concatenate(([rng.uniform(5.0, 20.0)], rng.uniform(1.0, 10.0, size=n_other)))
    bend = rng.normal(0.0, 0.006, size=len(centres))  # per-layer drift of the extrapolation in φ
    cells = {k: [] for k in ("deta", "dphi", "layer", "energy")}
    focal_e, all_e, t_rows = [], [], []
    for step, (sampling, w_eta, w_phi, share, width) in enumerate(layers):
        ge = np.arange(-0.2, 0.2 + 1e-9, w_eta)
        gp = np.arange(-0.2, 0.2 + 1e-9, w_phi)
        eta, phi = (a.ravel() for a in np.meshgrid(ge, gp))
        inside = np.hypot(eta, phi) < plots.CONE_DR
        eta, phi = eta[inside], phi[inside]
        pos = centres + np.outer(bend, [0.0, 1.0]) * step
        d2 = (eta[:, None] - pos[None, :, 0]) ** 2 + (phi[:, None] - pos[None, :, 1]) ** 2
        cell_area = w_eta * w_phi / (2 * np.pi * width**2)
        dep = share * energies[None, :] * cell_area * np.exp(-d2 / (2 * width**2))  # [cells, tracks]
        noise = rng.normal(0.0, 0.03, size=len(eta))
        e = dep.sum(axis=1) + noise
        keep = np.abs(e) > 0.06
        cells["deta"].append(eta[keep])
        cells["dphi"].append(phi[keep])
        cells["layer"].append(np.full(keep.sum(), sampling))
        cells["energy"].append(e[keep])
        focal_e.append(dep[keep, 0])
        all_e.append(dep[keep].sum(axis=1))
        t_rows.append(np.column_stack((pos, np.full(len(pos), sampling), np.arange(len(pos)))))
    cells = {k: np.concatenate(v) for k, v in cells.items()}
    cells["layer"] = cells["layer"].astype(np.int64)
    t = np.vstack(t_rows)
    tracks = {
        "deta": t[:, 0],
        "dphi": t[:, 1],
        "layer": t[:, 2].astype(np.int64),
        "track": t[:, 3].astype(np.int64),
        "focal": t[:, 3] == 0,
    }
    truth = np.concatenate(focal_e) / np.maximum(np.concatenate(all_e), 1e-9)
    model = np.clip(truth + rng.normal(0.0, 0.15, size=len(truth)), 0.0, 1.0)
    pflow = (truth > 0.5) ^ (rng.random(len(truth)) < 0.15)
    return cells, tracks, {"truth": truth, "PointNet": model, "particle flow": pflow.astype(np.float64)}


def synthetic_cells(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Per-cell n_tracks, truth label, model score and hard decisions of three baselines, with a realistic mix."""
    n_tracks = rng.geometric(0.35, size=n)  # >= 1: the focal track
    p_focal = np.clip(1.0 / n_tracks + 0.1, 0, 1)
    y_true = rng.random(n) < p_focal
    difficulty = 0.15 + 0.05 * n_tracks
    logit = np.where(y_true, 1.2, -1.2) + rng.normal(0.0, 4.0 * difficulty)
    score = (1.0 / (1.0 + np.exp(-logit))).round(3)  # a sigmoid output, rounded: many tied scores

    def flip(p: np.ndarray) -> np.ndarray:
        return y_true ^ (rng.random(n) < p)

    preds = {
        "PointNet": score > 0.5,
        "nearest track": flip(0.1 + 0.04 * n_tracks),
        "particle flow": flip(0.15 + 0.02 * n_tracks),
        "smart random": rng.random(n) < y_true.mean(),
    }
    return n_tracks, y_true, score, preds


def synthetic_response(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Track pT (falling spectrum, GeV), η and per-method E_pred / E_true with pT-dependent resolution and tails."""
    pt = 1.0 + rng.pareto(2.0, size=n) * 5.0
    eta = rng.uniform(-2.5, 2.5, size=n)
    sigma = 0.5 / np.sqrt(pt) + 0.05
    tail = rng.random(n) < 0.08
    resp = {
        "PointNet": rng.normal(1.0, sigma) + tail * rng.exponential(0.5, size=n),
        "particle flow": rng.normal(0.95, 1.3 * sigma) + tail * rng.exponential(0.8, size=n),
        "nearest track": rng.normal(1.15, 1.6 * sigma) + tail * rng.exponential(1.0, size=n),
    }
    return pt, eta, resp


def assert_png(path: Path, min_width: int = 600) -> np.ndarray:
    assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(path)
    assert image.shape[1] >= min_width and image.shape[0] >= 300
    assert image[..., :3].std() > 0, "blank image"
    return image


# --------------------------------------------------------------------------- binned.py


def test_binned_response_quantiles_and_empty_bins():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 10.0, -1.0, 20.0, 2.5])
    response = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 7.0, 99.0, 99.0, np.inf])  # out of range / infinite: dropped
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = binned.binned_response(x, response, np.array([0.0, 6.0, 8.0, 11.0]))
    np.testing.assert_array_equal(r["centre"], [3.0, 7.0, 9.5])
    np.testing.assert_array_equal(r["count"], [5, 0, 1])
    # linear interpolation on 1..5: position 0.16 * 4 = 0.64 -> 1.64, 0.84 * 4 = 3.36 -> 4.36
    np.testing.assert_allclose(r["median"], [3.0, np.nan, 7.0])
    np.testing.assert_allclose(r["q16"], [1.64, np.nan, 7.0])
    np.testing.assert_allclose(r["q84"], [4.36, np.nan, 7.0])
    np.testing.assert_allclose(r["resolution"], [(4.36 - 1.64) / 2 / 3, np.nan, 0.0])


def test_binned_response_unsorted_input_and_closed_last_edge():
    r = binned.binned_response([2.0, 0.5, 1.5, 0.2, 1.0], [8.0, 2.0, 4.0, 6.0, 10.0], [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(r["count"], [2, 3])  # x = 1.0 opens bin 1, x = 2.0 closes it
    np.testing.assert_allclose(r["median"], [4.0, 8.0])
    np.testing.assert_allclose(r["q16"], [2.64, 4.0 + 0.32 * 4.0])


def test_binned_response_all_empty_is_nan_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = binned.binned_response(np.zeros(0), np.zeros(0), np.array([0.0, 1.0, 2.0]))
    assert np.all(r["count"] == 0) and np.all(np.isnan(r["median"])) and np.all(np.isnan(r["resolution"]))


def test_f1_by_group_hand_table():
    group = np.array([1, 1, 1, 1, 2, 2, 2, 3, 3, 5, 9])
    y_true = np.array([1, 1, 0, 0, 1, 0, 0, 0, 0, 1, 1], bool)
    y_pred = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0], bool)
    # group 1: TP 1, FP 1, FN 1 -> 2/4; group 2: FN only -> 0; 3: no positives -> NaN; 4: no cells -> NaN;
    # 5: TP 1 -> 1; group 9 is not asked for. Groups in any order.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f1 = binned.f1_by_group(group, y_true, y_pred, np.array([5, 3, 1, 4, 2]))
    np.testing.assert_array_equal(f1, [1.0, np.nan, 0.5, np.nan, 0.0])


# 6 cells, shuffled; by score: 0.9 (+), 0.8 (+), 0.8 (-), 0.5 (+), 0.5 (-), 0.1 (-)
_Y = np.array([0, 1, 0, 1, 1, 0], bool)
_S = np.array([0.5, 0.8, 0.1, 0.9, 0.5, 0.8])


def test_pr_and_roc_curves_group_tied_scores():
    precision, recall, thresholds = binned.pr_curve(_Y, _S)
    # thresholds 0.9, 0.8, 0.5, 0.1 -> (TP, FP) = (1, 0), (2, 1), (3, 2), (3, 3); P = 3, N = 3
    np.testing.assert_array_equal(thresholds, [np.inf, 0.9, 0.8, 0.5, 0.1])
    np.testing.assert_allclose(precision, [1.0, 1.0, 2 / 3, 3 / 5, 1 / 2])
    np.testing.assert_allclose(recall, [0.0, 1 / 3, 2 / 3, 1.0, 1.0])
    fpr, tpr, thresholds = binned.roc_curve(_Y, _S)
    np.testing.assert_array_equal(thresholds, [np.inf, 0.9, 0.8, 0.5, 0.1])
    np.testing.assert_allclose(fpr, [0.0, 0.0, 1 / 3, 2 / 3, 1.0])
    np.testing.assert_allclose(tpr, [0.0, 1 / 3, 2 / 3, 1.0, 1.0])
    # Mann-Whitney with ties counted half: (3 + 2.5 + 1.5) / 9
    assert binned.auc(fpr, tpr) == pytest.approx(7 / 9)
    assert binned.auc(fpr[::-1], tpr[::-1]) == pytest.approx(7 / 9)


def test_weighted_curves():
    w = np.array([1.0, 1.0, 1.0, 2.0, 1.0, 1.0])  # the 0.9 positive counts twice: P = 4, N = 3
    precision, recall, _ = binned.pr_curve(_Y, _S, weight=w)
    np.testing.assert_allclose(precision, [1.0, 1.0, 3 / 4, 4 / 6, 4 / 7])
    np.testing.assert_allclose(recall, [0.0, 2 / 4, 3 / 4, 1.0, 1.0])
    fpr, tpr, _ = binned.roc_curve(_Y, _S, weight=w)
    np.testing.assert_allclose(fpr, [0.0, 0.0, 1 / 3, 2 / 3, 1.0])
    np.testing.assert_allclose(tpr, [0.0, 2 / 4, 3 / 4, 1.0, 1.0])
    assert binned.auc(fpr, tpr) == pytest.approx((6 + 2.5 + 1.5) / 12)


def test_auc_of_perfect_and_reversed_scorers():
    y = np.array([0, 0, 1, 1, 0, 1], bool)
    perfect = y.astype(float) * 0.5 + np.arange(6) * 0.01
    assert binned.auc(*binned.roc_curve(y, perfect)[:2]) == pytest.approx(1.0)
    assert binned.auc(*binned.roc_curve(y, -perfect)[:2]) == pytest.approx(0.0)
    precision, recall, _ = binned.pr_curve(y, perfect)
    assert binned.auc(recall, precision) == pytest.approx(1.0)
    assert binned.auc(*binned.roc_curve(y, np.full(6, 0.3))[:2]) == pytest.approx(0.5)  # one tie: the diagonal


def test_curve_thinning_keeps_the_ends_and_the_area():
    rng = np.random.default_rng(3)
    y = rng.random(200_000) < 0.3
    score = np.where(y, 0.65, 0.35) + rng.normal(0.0, 0.2, size=y.size)
    fpr, tpr, _ = binned.roc_curve(y, score)
    x, t = plots._thin(fpr, tpr)
    assert len(fpr) > 100_000 and len(x) <= plots.MAX_CURVE_POINTS
    assert (x[0], t[0], x[-1], t[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert binned.auc(x, t) == pytest.approx(binned.auc(fpr, tpr), abs=1e-3)


# --------------------------------------------------------------------------- plots.py


@pytest.mark.parametrize(
    ("case", "n_other", "em_only"), [("busy", 3, False), ("em_only", 1, True), ("focal_only", 0, False)]
)
def test_event_display(tmp_path, case, n_other, em_only):
    rng = np.random.default_rng(11)
    cells, tracks, panels = synthetic_cone(rng, n_other=n_other, em_only=em_only)
    if case == "em_only":
        assert set(np.unique(cells["layer"])) <= {1, 2, 3}
        cells["energy"][0] = -0.4  # a noise cell
    assert (cells["energy"] < 0).any()
    path = plots.event_display(tmp_path / f"{case}.png", cells, tracks, panels, title=f"sample {case}")
    assert_png(path)


def test_event_display_rejects_a_panel_of_the_wrong_length(tmp_path):
    cells, tracks, panels = synthetic_cone(np.random.default_rng(0), n_other=1)
    panels["PointNet"] = panels["PointNet"][:-1]
    with pytest.raises(ValueError, match="PointNet"):
        plots.event_display(tmp_path / "bad.png", cells, tracks, panels, title="bad")


def test_confusion(tmp_path):
    assert_png(plots.confusion(tmp_path / "c2.png", np.array([[61234, 4012], [3120, 31634]]), ["other", "focal"], "2"))
    counts3 = np.array([[5000, 300, 200], [0, 0, 0], [150, 40, 2400]])  # an empty true class
    assert_png(plots.confusion(tmp_path / "c3.png", counts3, ["focal", "other tracks", "noise"], "3 classes"))


def test_pr_roc(tmp_path):
    rng = np.random.default_rng(5)
    _, y_true, score, preds = synthetic_cells(rng, 300_000)
    points = {}
    for name in ("nearest track", "particle flow", "smart random"):
        p = preds[name]
        tp, fp = np.sum(p & y_true), np.sum(p & ~y_true)
        points[name] = {"precision": tp / p.sum(), "recall": tp / y_true.sum(), "fpr": fp / (~y_true).sum(),
                        "tpr": tp / y_true.sum()}  # fmt: skip
    path = plots.pr_roc(tmp_path / "pr_roc.png", {"PointNet": (y_true, score)}, points, title="cells of the test split")
    assert_png(path, min_width=1000)


def test_response_vs(tmp_path):
    rng = np.random.default_rng(8)
    pt, eta, resp = synthetic_response(rng, 20_000)
    pt_edges = np.array([1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0, 40.0, 100.0, 1000.0])  # the last one near-empty
    path = plots.response_vs(tmp_path / "pt.png", pt, resp, pt_edges, "track $p_T$ [GeV]", "response", log_x=True)
    assert_png(path)
    path = plots.response_vs(tmp_path / "eta.png", eta, resp, np.linspace(-2.5, 2.5, 11), "track η", "response")
    assert_png(path)


def test_f1_vs_tracks(tmp_path):
    rng = np.random.default_rng(9)
    n_tracks, y_true, _, preds = synthetic_cells(rng, 100_000)
    path = plots.f1_vs_tracks(tmp_path / "f1.png", n_tracks, y_true, preds, title="F1 vs cone occupancy")
    assert_png(path)
