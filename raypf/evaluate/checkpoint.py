"""Which checkpoint an evaluation scores, and the model it holds.

Training checkpoints (``state.pt``) carry the training config, the dataset
they were trained on and their MLflow run id, so a checkpoint alone rebuilds
the model and links the evaluation to its training run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from raypf.config import ConfigError
from raypf.train.checkpoints import STATE
from raypf.train.config import TrainConfig


@dataclass
class Checkpoint:
    path: Path  # the state.pt
    state: dict
    config: TrainConfig
    train_run_id: str | None
    dataset_dir: str | None

    @property
    def epoch(self) -> int:
        return int(self.state.get("epoch", -1))


def resolve(path: str, source: str = "config") -> Path:
    """The ``state.pt`` that ``path`` names: itself, inside it, its ``best/``, or a sweep's best trial's ``best/``."""
    p = Path(path).expanduser().resolve()
    candidates = [p, p / STATE, p / "best" / STATE]
    summary = p / "summary.json"
    if summary.is_file():
        best_run = json.loads(summary.read_text()).get("best_run_name")
        if best_run:
            candidates.append(p / best_run / "best" / STATE)
    for c in candidates:
        if c.is_file():
            return c
    raise ConfigError(
        f"{source}: key 'checkpoint': {p} holds no {STATE} (give a checkpoint directory, a state.pt, "
        "a training run directory with best/, or a sweep directory)"
    )


def load(path: str, source: str = "config") -> Checkpoint:
    import torch

    state_path = resolve(path, source)
    try:
        state = torch.load(state_path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - truncated or foreign files raise many kinds
        raise ConfigError(
            f"{source}: key 'checkpoint': {state_path} does not load ({type(err).__name__}: {err})"
        ) from None
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise ConfigError(
            f"{source}: key 'checkpoint': {state_path} is not a raypf training checkpoint with its config "
            "(written by raypf train)"
        )
    return Checkpoint(
        path=state_path,
        state=state,
        config=TrainConfig.model_validate(state["config"]),
        train_run_id=state.get("mlflow_run_id"),
        dataset_dir=state.get("dataset_dir"),
    )


def build(ckpt: Checkpoint, metadata: dict):
    """The checkpoint's model in eval mode (normalisation buffers come from the checkpoint itself)."""
    model = ckpt.config.build_model(metadata)
    model.load_state_dict(ckpt.state["model"])
    return model.eval()
