"""Configuration of `raypf tune`: the base training config, the search space, the scheduler, the budget."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, NonNegativeInt, PositiveFloat, PositiveInt, model_validator

from raypf.config import StrictModel
from raypf.train.config import Scaling

DISTRIBUTIONS = ("choice", "uniform", "loguniform", "randint")


class Distribution(StrictModel):
    """One key's search space: exactly one of ``choice: [...]`` or ``uniform|loguniform|randint: [low, high]``."""

    choice: list[Any] | None = None
    uniform: tuple[float, float] | None = None
    loguniform: tuple[float, float] | None = None
    randint: tuple[int, int] | None = Field(default=None, description="integers low..high-1")

    @model_validator(mode="after")
    def _one(self) -> Distribution:
        given = [k for k in DISTRIBUTIONS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(DISTRIBUTIONS)}; got {', '.join(given) or 'none'}")
        if self.kind == "choice":
            if not self.choice:
                raise ValueError("choice needs a non-empty list of values")
        else:
            lo, hi = self.args
            if not lo < hi or (self.kind == "loguniform" and lo <= 0):
                raise ValueError(f"{self.kind} [{lo}, {hi}] is not a valid range")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in DISTRIBUTIONS if getattr(self, k) is not None)

    @property
    def args(self) -> list:
        return list(getattr(self, self.kind))

    def extremes(self) -> list:
        """The values that bound what can be sampled: every choice, each end of a range."""
        if self.kind == "choice":
            return self.args
        lo, hi = self.args
        return [lo, hi - 1] if self.kind == "randint" else [lo, hi]


class Scheduler(StrictModel):
    """Which trials go on: Hyperband brackets (trials paused at each rung), ASHA, or none (plain random search)."""

    kind: Literal["hyperband", "asha", "none"] = "hyperband"
    max_t: PositiveInt = Field(default=9, description="epochs a trial may train at most (the training config's epochs)")
    reduction_factor: float = Field(
        default=3.0, gt=1, description="Hyperband/ASHA: 1/eta of the trials go on at each rung"
    )
    grace_period: PositiveInt = Field(default=1, description="ASHA: epochs before a trial can be stopped")


class Tracking(StrictModel):
    tracking_uri: str | None = Field(
        default=None, description="default: $MLFLOW_TRACKING_URI, else sqlite:///<output_dir>/../mlflow.db"
    )
    experiment: str = "raypf-tune"


class TuneConfig(StrictModel):
    """`raypf tune`: trials of `raypf train` sampled from ``search_space``, one MLflow parent run per sweep."""

    name: str = Field(default="sweep", pattern=r"^[A-Za-z0-9_.-]+$", description="same name again: resume the sweep")
    output_dir: str = "output/tune"
    base: str = Field(default="configs/train_small.yaml", description="the training config every trial starts from")
    set: dict[str, Any] = Field(default_factory=dict, description="fixed overrides of the base config (dotted keys)")
    search_space: dict[str, Distribution] = Field(
        default_factory=dict,
        description="dotted training-config key -> {choice: [...]} | {uniform|loguniform|randint: [lo, hi]}",
    )
    points_to_evaluate: list[dict[str, Any]] = Field(
        default_factory=list, description="trials to run first (dotted keys)"
    )
    num_trials: PositiveInt = 8
    metric: str = Field(default="val_f1", description="any metric that training reports every epoch")
    mode: Literal["max", "min"] = "max"
    scheduler: Scheduler = Scheduler()
    resources: Scaling | None = Field(
        default=None, description="workers and GPUs per trial (default: the base config's)"
    )
    max_concurrent_trials: PositiveInt | None = Field(default=None, description="default: as many as the cluster holds")
    seed: NonNegativeInt = 0
    trial_timeout_s: PositiveFloat | None = None
    tracking: Tracking = Tracking()

    @model_validator(mode="after")
    def _check_points(self) -> TuneConfig:
        for i, point in enumerate(self.points_to_evaluate):
            unknown = set(point) - set(self.search_space)
            if unknown:
                raise ValueError(f"points_to_evaluate.{i}: key(s) {sorted(unknown)} are not in search_space")
        return self

    def tracking_uri(self) -> str:
        from raypf.tracking import default_tracking_uri

        return self.tracking.tracking_uri or default_tracking_uri(self.output_dir)
