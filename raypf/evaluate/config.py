"""Configuration of `raypf evaluate`: which checkpoint on which split, inference resources, baselines, plots."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, NonNegativeInt, PositiveFloat, PositiveInt, model_validator

from raypf.config import StrictModel
from raypf.evaluate.particle_flow import PFOptions
from raypf.evaluate.template import ETA_EDGES, P_EDGES

_PF = PFOptions()


class Inference(StrictModel):
    """Ray Data batch inference: a pool of model actors, on GPUs where the cluster has them."""

    actors: PositiveInt = 1
    cpus_per_actor: PositiveFloat = 1.0
    use_gpu: Literal["auto", True, False] = Field(
        default="auto", description="auto: one GPU per actor if the cluster has them"
    )
    batch_size: PositiveInt = Field(default=256, description="samples per inference batch")


class Template(StrictModel):
    """The E/p template, fitted on the training split of the same samples dataset."""

    p_edges: list[float] = Field(default_factory=lambda: list(P_EDGES), min_length=2)
    eta_edges: list[float] = Field(default_factory=lambda: list(ETA_EDGES), min_length=2)
    min_count: PositiveInt = Field(default=20, description="tracks a bin needs; sparser bins take their p row's value")
    max_samples: PositiveInt = Field(default=200_000, description="training samples read at most")

    @model_validator(mode="after")
    def _ascending(self) -> Template:
        for name in ("p_edges", "eta_edges"):
            edges = getattr(self, name)
            if any(np.diff(edges) <= 0):
                raise ValueError(f"{name} must increase strictly, got {edges}")
        return self


class ParticleFlow(StrictModel):
    """The rule-based particle flow (raypf.evaluate.particle_flow; its ``PFOptions`` hold the defaults)."""

    match_ep_min: PositiveFloat = _PF.match_ep_min
    match_dr_max: PositiveFloat = _PF.match_dr_max
    width_floor: PositiveFloat = _PF.width_floor
    add_significance: float = _PF.add_significance
    add_dr: PositiveFloat = _PF.add_dr
    remnant_sigma: float = Field(default=_PF.remnant_sigma, ge=0)
    max_pt: PositiveFloat | None = Field(
        default=_PF.max_pt, description="tracks above this pT (GeV) are not subtracted"
    )
    template: Template = Template()


class Baselines(StrictModel):
    """Event-level baselines read whole events from the MLTree files the samples came from."""

    event_level: bool = Field(default=True, description="nearest track and particle flow (need the MLTree files)")
    mltree: dict[str, list[str]] | None = Field(
        default=None, description="set -> MLTree paths or globs (default: the inputs in the dataset metadata)"
    )
    particle_flow: ParticleFlow = ParticleFlow()


class Plots(StrictModel):
    event_displays: NonNegativeInt = Field(default=1, description="event displays per set")
    max_curve_cells: PositiveInt = Field(
        default=2_000_000, description="cells drawn into the PR and ROC curves at most"
    )


class Tracking(StrictModel):
    tracking_uri: str | None = Field(
        default=None, description="default: $MLFLOW_TRACKING_URI, else sqlite:///<output_dir>/../mlflow.db"
    )
    experiment: str = "raypf-evaluate"


class EvaluateConfig(StrictModel):
    """`raypf evaluate`: a checkpoint scored on one split, against every baseline, with plots and a report."""

    name: str = Field(
        default="evaluation", pattern=r"^[A-Za-z0-9_.-]+$", description="results go to <output_dir>/<name>"
    )
    output_dir: str = "output/evaluate"
    checkpoint: str = Field(
        default="output/train/demo-small",
        description="a checkpoint directory or state.pt, a training run directory (its best checkpoint) or a sweep directory (its best trial's)",
    )
    data: str | None = Field(
        default=None, description="samples dataset (default: the one the checkpoint was trained on)"
    )
    split: Literal["train", "val", "test"] = "test"
    sets: list[str] | None = Field(default=None, description="default: every set of the split")
    seed: NonNegativeInt = 0
    inference: Inference = Inference()
    baselines: Baselines = Baselines()
    plots: Plots = Plots()
    tracking: Tracking = Tracking()

    def eval_dir(self) -> Path:
        return Path(self.output_dir).expanduser().resolve() / self.name

    def tracking_uri(self) -> str:
        from raypf.tracking import default_tracking_uri

        return self.tracking.tracking_uri or default_tracking_uri(self.output_dir)
