"""Where a run's checkpoints live and which one a (re)started run continues from.

Ray Train keeps the checkpoints under ``<output_dir>/ray/<run_name>/checkpoint_*``;
each holds ``state.pt`` (``loop.state_dict``) and ``metrics.json``. A restarted
worker group takes the newest complete one on disk: after a worker dies
between rank 0's upload and the other ranks' report, Ray Train has not
registered that checkpoint yet, but it is whole and one epoch newer.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

STATE = "state.pt"
METRICS = "metrics.json"


def checkpoints(storage: Path) -> list[tuple[int, Path]]:
    """Checkpoint directories under ``storage`` that have both files, newest epoch first."""
    found = []
    for m in Path(storage).glob(f"checkpoint_*/{METRICS}"):
        if not (m.parent / STATE).exists():
            continue
        try:
            found.append((int(json.loads(m.read_text())["epoch"]), m.parent))
        except (ValueError, KeyError, OSError):
            continue  # being written
    return sorted(found, reverse=True)


def latest_checkpoint(storage: Path) -> tuple[Path | None, int]:
    """Newest complete checkpoint directory under ``storage`` and its epoch (-1 without one)."""
    found = checkpoints(storage)
    return (found[0][1], found[0][0]) if found else (None, -1)


def load_newest(storage: Path) -> dict | None:
    """The newest checkpoint state that loads (one cut short by a dying worker is skipped)."""
    import torch

    for _, path in checkpoints(storage):
        try:
            return torch.load(path / STATE, map_location="cpu", weights_only=False)
        except (RuntimeError, EOFError, OSError):
            continue
    return None


def save_best(run_dir: Path, src: Path) -> None:
    """Copy checkpoint ``src`` to ``run_dir/best``, replacing the previous best whole."""
    best = run_dir / "best"
    tmp = run_dir / ".best.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    if best.exists():
        shutil.rmtree(best)
    os.replace(tmp, best)
