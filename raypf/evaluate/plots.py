"""Evaluation figures: event displays, confusion matrix, PR/ROC, energy response and F1 vs cone occupancy.

Each function writes one PNG and returns its path. Figures are built on ``matplotlib.figure.Figure``
with the Agg canvas, never through pyplot: no global backend switch, no figure registry to leak
into when an evaluation writes hundreds of event displays in a Ray worker. The numbers come from
:mod:`raypf.evaluate.binned`, so what a figure shows is what the tests pin.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle
from matplotlib.path import Path as MarkerPath
from matplotlib.transforms import Affine2D

from raypf.evaluate import binned

logger = logging.getLogger(__name__)

DPI = 120
#: Cone half-size of a sample, and the Δη, Δφ half-range drawn (a little wider, to show tracks just outside).
CONE_DR = 0.2
VIEW_HALF_WIDTH = 0.27
#: Marker area range (pt²) of the event display: area ∝ cell energy, clipped.
CELL_AREA_MIN, CELL_AREA_MAX = 6.0, 320.0
#: Most points drawn per curve; AUCs are computed on the full curve.
MAX_CURVE_POINTS = 2000

#: Event-display columns: a name and the ATLAS CaloSampling numbers drawn in it (presamplers join the strips).
LAYER_GROUPS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("EM layer 1 (strips)", (0, 1, 4, 5)),
    ("EM layer 2", (2, 6)),
    ("EM layer 3", (3, 7)),
    ("hadronic (Tile + HEC, overlaid)", tuple(range(8, 24))),
)
_GROUP_OF_SAMPLING = np.full(64, len(LAYER_GROUPS) - 1, dtype=np.int64)  # unknown samplings: hadronic column
for _g, (_, _samplings) in enumerate(LAYER_GROUPS):
    _GROUP_OF_SAMPLING[list(_samplings)] = _g

FRACTION_CMAP = colormaps["viridis"].with_extremes(bad="lightgrey")
#: Strip cells are fine in η and wide in φ: drawn as η-narrow ellipses, so neighbouring strips overlap less.
#: Matplotlib scales a path marker to its longest side, hence the area factor to stay on the circles' scale.
_STRIP_ASPECT = 0.25
_STRIP_MARKER = MarkerPath(Affine2D().scale(_STRIP_ASPECT, 1.0).transform_path(MarkerPath.unit_circle()).vertices)
_STRIP_GROUP = 0
_MARKERS = ("o", "s", "D", "^", "v", "P", "X", "*")


def _new_figure(figsize: tuple[float, float]) -> Figure:
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    fig.clear()  # drop the artists now: callers write many figures in one process
    logger.debug("wrote %s", path)
    return path


def _colours(n: int) -> list:
    return [colormaps["tab10"](i % 10) for i in range(n)]


# --------------------------------------------------------------------------- event display


def _cell_area(energy: np.ndarray, e_ref: float) -> np.ndarray:
    """Marker area ∝ energy, with ``e_ref`` at the largest area; tiny cells stay visible at the smallest."""
    return np.clip(CELL_AREA_MAX * energy / e_ref, CELL_AREA_MIN, CELL_AREA_MAX)


def _size_legend_energies(e_ref: float) -> list[float]:
    """Round energies (1, 2 or 5 × 10^k GeV) spanning the drawn size range, for the marker-size legend."""
    e_min = e_ref * CELL_AREA_MIN / CELL_AREA_MAX
    nice = np.array([m * 10.0**k for k in range(-3, 4) for m in (1.0, 2.0, 5.0)])
    nice = nice[(nice >= e_min) & (nice <= e_ref)]
    if len(nice) == 0:
        return [e_ref]
    picks = nice[np.unique(np.linspace(0, len(nice) - 1, min(3, len(nice))).round().astype(int))]
    return [float(e) for e in picks]


def _format_gev(e: float) -> str:
    return f"{e:g} GeV" if e >= 0.01 else f"{e * 1e3:g} MeV"


def event_display(
    path: str | Path,
    cells: dict[str, np.ndarray],
    tracks: dict[str, np.ndarray],
    panels: dict[str, np.ndarray],
    title: str,
) -> Path:
    """One sample's cone in Δη–Δφ: a row per focal-fraction source (truth, model, ...), a column per layer group.

    Layers are grouped (strips, EM2, EM3, all hadronic) because single layers are mostly empty in a
    0.2 cone, while the strips' fine η granularity would be lost if merged with the coarser EM2.
    Marker area ∝ cell energy (shared scale across panels; strips as η-narrow ellipses of the same
    area), colour = the focal energy fraction a row assigns, and each panel prints Σ E·fraction, the
    focal energy that row gives. Cells with E ≤ 0 (noise) are grey rings. Tracks are drawn in the
    layers they were extrapolated to: the focal one as hollow red stars, others as black crosses.
    """
    deta = np.asarray(cells["deta"], dtype=np.float64)
    dphi = np.asarray(cells["dphi"], dtype=np.float64)
    energy = np.asarray(cells["energy"], dtype=np.float64)
    cell_group = _GROUP_OF_SAMPLING[np.clip(np.asarray(cells["layer"], dtype=np.int64), 0, 63)]
    for name, fraction in panels.items():
        if np.shape(fraction) != energy.shape:
            raise ValueError(f"panel {name!r} has {np.shape(fraction)} values for {energy.shape} cells")
    t_deta = np.asarray(tracks["deta"], dtype=np.float64)
    t_dphi = np.asarray(tracks["dphi"], dtype=np.float64)
    t_layer = np.asarray(tracks["layer"], dtype=np.int64)
    t_group = _GROUP_OF_SAMPLING[np.clip(t_layer, 0, 63)]
    t_focal = np.asarray(tracks["focal"], dtype=bool)
    t_id = np.asarray(tracks["track"])

    columns = [g for g in range(len(LAYER_GROUPS)) if np.any(cell_group == g)] or [1]
    rows = list(panels) or ["cells"]
    positive = energy > 0
    e_ref = float(energy[positive].max()) if positive.any() else 1.0
    area = _cell_area(energy, e_ref)
    order = np.argsort(-energy, kind="stable")  # big markers first, so small ones stay on top

    fig = _new_figure((2.9 * len(columns) + 1.6, 2.75 * len(rows) + 1.5))
    axes = fig.subplots(len(rows), len(columns), sharex=True, sharey=True, squeeze=False)
    norm = Normalize(0.0, 1.0)
    for r, row in enumerate(rows):
        fraction = np.asarray(panels[row], dtype=np.float64) if panels else np.full(energy.shape, np.nan)
        for c, g in enumerate(columns):
            ax = axes[r, c]
            ax.add_patch(Circle((0.0, 0.0), CONE_DR, fill=False, ls="--", lw=0.9, color="0.45", zorder=1))
            ax.axhline(0.0, color="0.85", lw=0.6, zorder=0)
            ax.axvline(0.0, color="0.85", lw=0.6, zorder=0)
            sel = order[cell_group[order] == g]
            pos, neg = sel[positive[sel]], sel[~positive[sel]]
            marker, area_factor = (_STRIP_MARKER, 1.0 / _STRIP_ASPECT) if g == _STRIP_GROUP else ("o", 1.0)
            ax.scatter(
                deta[pos], dphi[pos], s=area[pos] * area_factor, c=fraction[pos], cmap=FRACTION_CMAP, norm=norm,
                marker=marker, edgecolors="0.2", linewidths=0.4, zorder=2,
            )  # fmt: skip
            ax.scatter(
                deta[neg], dphi[neg], s=CELL_AREA_MIN * 2 * area_factor, marker=marker, facecolors="none",
                edgecolors="0.5", linewidths=0.7, zorder=2,
            )  # fmt: skip
            in_group = t_group == g
            other = in_group & ~t_focal
            ax.scatter(t_deta[other], t_dphi[other], marker="x", s=45, c="black", linewidths=1.4, zorder=4)
            for track in np.unique(t_id[other]):  # a neighbour crossing several layers of this column: one line
                points = np.flatnonzero(other & (t_id == track))
                points = points[np.argsort(t_layer[points], kind="stable")]
                ax.plot(t_deta[points], t_dphi[points], color="black", lw=0.7, zorder=4)
            focal = np.flatnonzero(in_group & t_focal)
            focal = focal[np.argsort(t_layer[focal], kind="stable")]
            # hollow star: the colour of the cell the track points at stays visible
            ax.plot(t_deta[focal], t_dphi[focal], "-*", color="red", ms=14, mfc="none", mew=1.5, lw=1.0, zorder=5)
            ax.set_xlim(-VIEW_HALF_WIDTH, VIEW_HALF_WIDTH)
            ax.set_ylim(-VIEW_HALF_WIDTH, VIEW_HALF_WIDTH)
            ax.set_aspect("equal")
            ax.tick_params(labelsize=8)
            in_column = cell_group == g
            n_cells, e_sum = int(np.count_nonzero(in_column)), float(energy[in_column].sum())
            if panels:  # the energy this row gives the focal track here: what the response plots aggregate
                e_focal = float(np.nansum(energy[in_column] * fraction[in_column]))
                ax.text(
                    0.03, 0.97, f"focal E: {e_focal:.2f} GeV", transform=ax.transAxes, ha="left", va="top",
                    fontsize=7.5, color="0.15",
                )  # fmt: skip
            if r == 0:
                ax.set_title(f"{LAYER_GROUPS[g][0]}\n{n_cells} cells, ΣE = {e_sum:.2f} GeV", fontsize=9)
            if r == len(rows) - 1:
                ax.set_xlabel("Δη")
            if c == 0:
                ax.set_ylabel(f"{row}\n\nΔφ [rad]", fontsize=10)
    fig.colorbar(
        ScalarMappable(norm=norm, cmap=FRACTION_CMAP), ax=axes, label="focal energy fraction", shrink=0.9,
        aspect=30 if len(rows) > 2 else 20,
    )  # fmt: skip

    handles = [
        Line2D([], [], marker="*", color="red", mfc="none", ms=14, mew=1.5, lw=1.0, label="focal track"),
        Line2D([], [], marker="x", color="black", ms=7, mew=1.4, ls="none", label="other tracks"),
        Line2D([], [], ls="--", color="0.45", label=f"ΔR = {CONE_DR}"),
        Line2D(
            [], [], marker="o", mfc="none", mec="0.55", ls="none", ms=np.sqrt(CELL_AREA_MIN * 2), label="E ≤ 0 (noise)"
        ),
    ]
    handles += [
        Line2D(
            [],
            [],
            marker="o",
            mfc="0.8",
            mec="0.2",
            mew=0.4,
            ls="none",
            ms=float(np.sqrt(_cell_area(e, e_ref))),
            label=f"{_format_gev(e)} cell",
        )
        for e in _size_legend_energies(e_ref)
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.suptitle(title)
    return _save(fig, path)


# --------------------------------------------------------------------------- confusion matrix


def confusion(path: str | Path, counts: np.ndarray, class_names: list[str], title: str) -> Path:
    """Row-normalised confusion matrix (rows = true class): each row reads as that class's efficiency and losses."""
    counts = np.asarray(counts, dtype=np.float64)
    k = len(class_names)
    if counts.shape != (k, k):
        raise ValueError(f"counts has shape {counts.shape}, expected ({k}, {k}) for {class_names}")
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where(totals > 0, counts / totals, np.nan)

    fig = _new_figure((1.7 * k + 2.8, 1.45 * k + 1.6))
    ax = fig.add_subplot()
    image = ax.imshow(100.0 * fraction, cmap=colormaps["Blues"].with_extremes(bad="0.9"), vmin=0.0, vmax=100.0)
    for i in range(k):
        for j in range(k):
            if np.isnan(fraction[i, j]):
                text, colour = "no cells", "0.3"
            else:
                text = f"{100.0 * fraction[i, j]:.1f} %\n({int(counts[i, j]):,} cells)"
                colour = "white" if fraction[i, j] > 0.55 else "black"
            ax.text(j, i, text, ha="center", va="center", color=colour, fontsize=10)
    ax.set_xticks(range(k), class_names)
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="fraction of the true class's cells [%]", shrink=0.9)
    return _save(fig, path)


# --------------------------------------------------------------------------- PR and ROC


def _thin(x: np.ndarray, y: np.ndarray, max_points: int = MAX_CURVE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` points of a curve, evenly spaced along its length (steep parts keep their detail)."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) <= max_points:
        return x, y
    s = np.concatenate(([0.0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))))
    idx = np.searchsorted(s, np.linspace(0.0, s[-1], max_points - 1))
    idx = np.unique(np.concatenate((np.clip(idx, 0, len(x) - 1), [0, len(x) - 1])))
    return x[idx], y[idx]


def pr_roc(
    path: str | Path,
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    points: dict[str, dict[str, float]],
    title: str,
) -> Path:
    """Precision–recall (left) and ROC (right) of scored methods as curves, hard-decision methods as points.

    ``curves``: name -> (y_true, score) per cell; ``points``: name -> {"precision", "recall", "fpr", "tpr"}.
    Both panels, because the focal class is a minority of the cone's cells: ROC alone flatters a scorer
    that the precision–recall plane shows to be mediocre.
    """
    fig = _new_figure((12.0, 5.6))
    ax_pr, ax_roc = fig.subplots(1, 2)
    colours = _colours(len(curves) + len(points))
    prevalence = None
    for (name, (y_true, score)), colour in zip(curves.items(), colours):
        precision, recall, _ = binned.pr_curve(y_true, score)
        fpr, tpr, _ = binned.roc_curve(y_true, score)
        ap, roc_auc = binned.auc(recall, precision), binned.auc(fpr, tpr)
        ax_pr.plot(*_thin(recall, precision), color=colour, lw=1.8, label=f"{name} (area = {ap:.3f})")
        ax_roc.plot(*_thin(fpr, tpr), color=colour, lw=1.8, label=f"{name} (AUC = {roc_auc:.3f})")
        if prevalence is None and len(y_true):
            prevalence = float(np.mean(np.asarray(y_true, dtype=bool)))
    for i, ((name, p), colour) in enumerate(zip(points.items(), colours[len(curves) :])):
        style = {"marker": _MARKERS[i % len(_MARKERS)], "color": colour, "ms": 10, "mec": "black", "mew": 0.7}
        ax_pr.plot([p.get("recall", np.nan)], [p.get("precision", np.nan)], ls="none", label=name, **style)
        ax_roc.plot([p.get("fpr", np.nan)], [p.get("tpr", np.nan)], ls="none", label=name, **style)
    if prevalence is not None:
        ax_pr.axhline(prevalence, color="0.5", ls=":", lw=1.2, label=f"random (focal fraction {prevalence:.1%})")
    ax_roc.plot([0.0, 1.0], [0.0, 1.0], color="0.5", ls=":", lw=1.2, label="random")
    for ax, xlabel, ylabel, loc, sub in (
        (ax_pr, "recall (focal cells found / all focal cells)", "precision (focal / cells called focal)",
         "upper right", "precision–recall"),  # low-prevalence operating points sit at the bottom
        (ax_roc, "false-positive rate (non-focal cells called focal)", "true-positive rate (= recall)",
         "lower right", "ROC"),
    ):  # fmt: skip
        ax.set_xlim(-0.01, 1.01)
        ax.set_ylim(-0.01, 1.01)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(sub)
        ax.grid(alpha=0.3)
        ax.legend(loc=loc, fontsize=8.5)
    fig.suptitle(title)
    return _save(fig, path)


# --------------------------------------------------------------------------- response and F1 vs a variable


def _bin_edge_lines(axes, edges: np.ndarray) -> None:
    """Faint vertical lines at the bin edges: a point stands for its whole bin, not for its x."""
    for ax in axes:
        for e in edges:
            ax.axvline(e, color="0.88", lw=0.8, zorder=0)
        ax.grid(alpha=0.3, axis="y")


def response_vs(
    path: str | Path,
    x: np.ndarray,
    responses: dict[str, np.ndarray],
    edges: np.ndarray,
    xlabel: str,
    title: str,
    log_x: bool = False,
    min_count: int = 10,
) -> Path:
    """Per-track energy response (predicted / true focal energy) vs x: median with 16–84 % bars, and resolution.

    Quantiles, not mean ± RMS, because of long tails from neighbours' showers. Methods are nudged
    sideways within a bin so their bars do not hide each other (the bin's centre is geometric on a
    log axis); bins with fewer than ``min_count`` tracks are not drawn, their quantiles being noise.
    """
    edges = np.asarray(edges, dtype=np.float64)
    fig = _new_figure((8.0, 7.4))
    ax_top, ax_bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2.0, 1.0])
    n = len(responses)
    log_bins = log_x and edges[0] > 0
    top_resolution = 0.0
    for i, (name, response) in enumerate(responses.items()):
        colour, marker = _colours(n)[i], _MARKERS[i % len(_MARKERS)]
        r = binned.binned_response(x, response, edges)
        thin = r["count"] < min_count
        for key in ("median", "q16", "q84", "resolution"):
            r[key][thin] = np.nan
        shift = (i - (n - 1) / 2.0) * 0.5 / max(n, 2)  # fraction of the bin width
        if log_bins:
            lo, hi = np.log10(r["low"]), np.log10(r["high"])
            centre = 10.0 ** (0.5 * (lo + hi) + shift * (hi - lo))
        else:
            centre = r["centre"] + shift * (r["high"] - r["low"])
        yerr = np.vstack((r["median"] - r["q16"], r["q84"] - r["median"]))
        style = {"color": colour, "marker": marker, "ms": 5.5, "lw": 1.3}
        ax_top.errorbar(
            centre, r["median"], yerr=yerr, capsize=3, elinewidth=1.1, **style,
            label=f"{name} ({int(r['count'].sum()):,} tracks)",
        )  # fmt: skip
        ax_bottom.plot(centre, r["resolution"], **style)
        top_resolution = np.nanmax([top_resolution, *r["resolution"]])
    ax_top.axhline(1.0, color="0.3", ls="--", lw=1.0)
    ax_top.set_ylabel("response  $E_\\mathrm{pred}$ / $E_\\mathrm{true}$\n(median, bars: 16–84 %)")
    ax_bottom.set_ylabel("resolution\n$(q_{84} - q_{16}) \\,/\\, (2 \\times \\mathrm{median})$")
    ax_bottom.set_xlabel(xlabel)
    ax_bottom.set_ylim(0.0, 1.15 * top_resolution if top_resolution > 0 else 1.0)
    if log_x:
        ax_bottom.set_xscale("log")
    ax_bottom.set_xlim(edges[0], edges[-1])
    _bin_edge_lines((ax_top, ax_bottom), edges)
    ax_top.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(n, 3), fontsize=9, frameon=False)
    fig.suptitle(title)
    return _save(fig, path)


def f1_vs_tracks(
    path: str | Path,
    n_tracks: np.ndarray,
    y_true: np.ndarray,
    predictions: dict[str, np.ndarray],
    title: str,
    max_tracks: int = 10,
) -> Path:
    """Focal-class F1 vs the number of tracks in the cone, per method, with the cell count per bin beneath.

    Busy cones are where assigning cells is hard and where nearest-track stops being good enough; the
    counts show where the high-multiplicity points rest on few cells.
    """
    group = np.minimum(np.asarray(n_tracks, dtype=np.int64), max_tracks)
    bins = np.arange(1, max_tracks + 1)
    counts = np.bincount(np.clip(group, 0, max_tracks), minlength=max_tracks + 1)[1:]  # n_tracks < 1: not drawn
    fig = _new_figure((8.0, 6.8))
    ax_f1, ax_n = fig.subplots(2, 1, sharex=True, height_ratios=[2.2, 1.0])
    for (name, pred), colour, marker in zip(predictions.items(), _colours(len(predictions)), _MARKERS):
        f1 = binned.f1_by_group(group, y_true, pred, bins)
        ax_f1.plot(bins, f1, marker=marker, ls="-", color=colour, ms=6.5, lw=1.4, label=name)
    ax_f1.set_ylabel("focal-class F1")
    ax_f1.set_ylim(0.0, 1.02)
    ax_f1.grid(alpha=0.3)
    ax_n.bar(bins, counts, width=0.7, color="0.6", edgecolor="0.3")
    ax_n.set_yscale("log")
    ax_n.set_ylabel("cells per bin")
    ax_n.grid(alpha=0.3, axis="y")
    ax_n.set_xlabel("tracks in the cone (ΔR < 0.2, focal track included)")
    ax_n.set_xticks(bins, [str(b) for b in bins[:-1]] + [f"≥ {max_tracks}"])
    ax_n.set_xlim(0.4, max_tracks + 0.6)
    ax_f1.legend(
        loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(len(predictions), 4), fontsize=9, frameon=False
    )
    fig.suptitle(title)
    return _save(fig, path)
