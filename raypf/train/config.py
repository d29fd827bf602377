"""Configuration of `raypf train`: data and epochs, model, loss, optimizer, scaling, transfer, tracking."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, model_validator

from raypf.config import StrictModel
from raypf.data.batching import DEFAULT_FEATURES, FEATURES, TARGETS


class DataOptions(StrictModel):
    """Which samples, how they are batched, and how an epoch is drawn."""

    dataset: str = Field(default="output/samples/latest", description="a samples dataset directory (raypf preprocess)")
    features: list[str] = Field(default_factory=lambda: list(DEFAULT_FEATURES))
    target: Literal["binary", "three_class", "fraction"] = "binary"
    samples_per_epoch: PositiveInt = Field(default=204_800, description="fresh random samples per epoch, all workers")
    mix: dict[str, PositiveFloat] | None = Field(default=None, description="set -> fraction of each epoch (default: by size)")
    batch_size: PositiveInt = Field(default=128, description="samples per batch per worker")
    val_samples: PositiveInt = Field(default=20_000, description="fixed subset of the val split scored every epoch")
    shuffle_buffer: NonNegativeInt = Field(default=4096, description="samples mixed across row groups before batching")
    read_cpus: PositiveFloat = Field(default=0.5, description="CPUs per Ray Data read task")
    read_tasks: PositiveInt | None = Field(
        default=None, description="read tasks at once per dataset (default: as many as fit; sweeps bound it to 1)"
    )

    @model_validator(mode="after")
    def _check(self) -> DataOptions:
        unknown = [f for f in self.features if f not in FEATURES]
        if unknown:
            raise ValueError(f"unknown feature(s) {unknown}; known: {sorted(FEATURES)}")
        if self.mix is not None and abs(sum(self.mix.values()) - 1) > 1e-6:
            raise ValueError(f"mix fractions must sum to 1, got {sum(self.mix.values()):g}")
        assert self.target in TARGETS
        return self


class ModelSection(StrictModel):
    name: str = "pointnet"
    options: dict[str, Any] = Field(default_factory=dict, description="the architecture's options (checked when built)")


class LossSection(StrictModel):
    kind: Literal["bce", "focal", "ce", "mse", "mae"] = "bce"
    energy_weighting: Literal["none", "linear", "absolute", "square", "sqrt"] = "sqrt"
    pos_weight: PositiveFloat = 1.0
    focal_gamma: NonNegativeFloat = 2.0
    focal_alpha: float | None = Field(default=None, gt=0, lt=1)
    class_weights: tuple[float, float, float] | None = None


class OptimSection(StrictModel):
    lr: PositiveFloat = 1e-3
    weight_decay: NonNegativeFloat = 0.0
    warmup_epochs: NonNegativeFloat = 1.0
    schedule: Literal["cosine", "constant"] = "cosine"
    min_lr_ratio: float = Field(default=0.01, ge=0, le=1)
    grad_clip: NonNegativeFloat = Field(default=1.0, description="max gradient norm; 0 = off")


class EarlyStopping(StrictModel):
    metric: str = Field(default="val_f1", description="any reported metric, e.g. val_f1, val_energy_weighted_accuracy, loss")
    mode: Literal["max", "min"] = "max"
    patience: PositiveInt | None = Field(default=None, description="epochs without improvement before stopping; null = never")


class Scaling(StrictModel):
    num_workers: PositiveInt = 1
    use_gpu: bool = False
    cpus_per_worker: PositiveFloat = 1.0
    gpus_per_worker: PositiveFloat = 1.0
    bf16: bool = Field(default=True, description="bf16 autocast on GPUs (CPUs train in fp32)")


class Replay(StrictModel):
    """Transfer by replay (000_*): mix source sets into the target mix, a share decaying per epoch to a floor."""

    source: dict[str, PositiveFloat]
    start: float = Field(default=0.5, ge=0, le=1)
    decay_per_epoch: NonNegativeFloat = 0.05
    floor: float = Field(default=0.0, ge=0, le=1)


class FineTune(StrictModel):
    checkpoint: str | None = Field(default=None, description="start from these weights (a checkpoint dir or state.pt)")
    freeze: list[str] = Field(default_factory=list, description="parameter-name prefixes to freeze, e.g. point_mlp")
    replay: Replay | None = None


class Tracking(StrictModel):
    tracking_uri: str | None = Field(default=None, description="default: $MLFLOW_TRACKING_URI, else sqlite:///<output_dir>/../mlflow.db")
    experiment: str = "raypf-train"


class TrainConfig(StrictModel):
    """`raypf train`: the model core driven by Ray Train, one MLflow run per training run."""

    output_dir: str = "output/train"
    run_name: str = Field(default="pointnet", pattern=r"^[A-Za-z0-9_.-]+$", description="same name again: resume")
    epochs: PositiveInt = 10
    seed: NonNegativeInt = 0
    max_failures: NonNegativeInt = Field(default=2, description="worker-group restarts from the last checkpoint")
    record_samples: bool = Field(default=False, description="write the sample keys each worker trained on, per epoch")
    data: DataOptions = DataOptions()
    model: ModelSection = ModelSection()
    loss: LossSection = LossSection()
    optim: OptimSection = OptimSection()
    early_stopping: EarlyStopping = EarlyStopping()
    scaling: Scaling = Scaling()
    finetune: FineTune = FineTune()
    tracking: Tracking = Tracking()

    @model_validator(mode="after")
    def _loss_matches_target(self) -> TrainConfig:
        from raypf.models.losses import LOSS_TARGET

        if LOSS_TARGET[self.loss.kind] != self.data.target:
            raise ValueError(
                f"loss.kind '{self.loss.kind}' needs data.target '{LOSS_TARGET[self.loss.kind]}', not '{self.data.target}'"
            )
        return self

    def run_dir(self) -> Path:
        return Path(self.output_dir).expanduser().resolve() / self.run_name

    def build_model(self, metadata: dict):
        """The configured model with the dataset's input normalisation (``metadata``: the samples dataset's).

        Training and evaluation both build it here, so a checkpoint's weights always fit the
        model rebuilt from the config stored beside them.
        """
        from raypf.data.batching import feature_norm, feature_width
        from raypf.models import build_model

        features = self.data.features
        return build_model(
            self.model.name, self.model.options, feature_width(features), self.data.target, norm=feature_norm(metadata, features)
        )

    def tracking_uri(self) -> str:
        from raypf.tracking import default_tracking_uri

        return self.tracking.tracking_uri or default_tracking_uri(self.output_dir)
