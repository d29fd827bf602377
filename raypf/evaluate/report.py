"""The evaluation report: the metrics table of the model and every baseline per set, and the plots, in Markdown."""

from __future__ import annotations

from pathlib import Path

CAPTIONS = {
    "confusion": "Confusion matrix of the model's classes over all cells (rows: true class, normalised).",
    "pr_roc": "Precision-recall and ROC curves of the model's focal score; the baselines are operating points.",
    "response_pt": "Per-track focal energy response (predicted / true focal deposit) and its resolution vs track pT.",
    "response_eta": "The same vs track η.",
    "f1_tracks": "Focal-cell F1 vs the number of tracks in the cone: where dense environments hurt.",
}

NOTES = """\
How to read it:
- Every method answers the same question on the same cells: is the cell's energy mostly the focal particle's?
  Its F1 is for the focal class; the energy-weighted accuracy is the share of the cells' energy assigned correctly.
- response: median over tracks of the predicted focal energy (Σ cell E × predicted share) over the focal particle's
  true deposit in the cone's cells; resolution: half the 16-84 % spread of that ratio over its median.
- dumb (all cells "not focal"), random (coin flip) and smart random (focal with the training split's focal rate) are
  expected values, not one draw; nearest track gives each cell to the track closest in ΔR in the cell's layer.
- particle flow (rule-based): ATL-PERF-2015-09's cell-by-cell subtraction, tracks in descending pT, with an E/p
  template fitted on the training split; its simplifications are listed in `raypf/evaluate/particle_flow.py`.
"""


def write_report(path: Path, summary: dict, table: str, plots: dict[str, Path], cfg) -> Path:
    """``report.md`` beside ``plots/``; image links are relative so the directory can be moved or logged as is."""
    lines = [
        f"# Evaluation `{summary['name']}`",
        "",
        f"- checkpoint: `{summary['checkpoint']}` (epoch {summary['epoch']}, target {summary['target']})",
        f"- training run (MLflow): `{summary['train_run_id'] or 'unknown'}`",
        f"- samples: `{summary['dataset']}`, split `{summary['split']}`, sets {', '.join(summary['sets'])}",
        f"- training-split focal-cell rate (smart random): {summary['train_class_proportions'][1]:.3f}",
        "",
        "## Metrics",
        "",
        table,
        "",
        NOTES,
        "## Plots",
        "",
    ]
    for name, file in plots.items():
        caption = CAPTIONS.get(name, "Event display: cells coloured by focal share (truth, model, particle flow).")
        lines += [f"### {name}", "", caption, "", f"![{name}](plots/{Path(file).name})", ""]
    path.write_text("\n".join(lines))
    return path
