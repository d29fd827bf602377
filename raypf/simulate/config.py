"""Configuration of `raypf simulate`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, model_validator

from raypf.config import StrictModel

SetName = Literal["rho", "delta", "JZ0", "JZ1", "JZ2", "JZ3", "JZ4", "JZ5", "JZ6"]
GUN_SETS = ("rho", "delta")


class SampleConfig(StrictModel):
    """One set (rho, delta or a JZ slice): how many files of how many events."""

    set: SetName
    files: PositiveInt = 1
    events_per_file: PositiveInt = 100
    pt_min: PositiveFloat | None = Field(default=None, description="GeV; single-particle sets only (default 2)")
    pt_max: PositiveFloat | None = Field(default=None, description="GeV; single-particle sets only (default 100)")
    eta_max: PositiveFloat = Field(default=2.5, le=3.2, description="single-particle sets only")
    pileup_mu: NonNegativeFloat = Field(default=0.0, description="mean number of soft-QCD pile-up interactions")

    @model_validator(mode="after")
    def _check(self) -> SampleConfig:
        if self.set in GUN_SETS:
            lo, hi = self.pt_range
            if lo >= hi:
                raise ValueError(f"pt_min ({lo}) must be below pt_max ({hi})")
        elif self.pt_min is not None or self.pt_max is not None:
            raise ValueError(f"pt_min/pt_max apply to single-particle sets only, not {self.set} (its pTHat slice is fixed)")
        return self

    @property
    def pt_range(self) -> tuple[float, float]:
        return (self.pt_min or 2.0, self.pt_max or 100.0)


class DetectorConfig(StrictModel):
    """Detector response knobs; defaults follow CALORIMETER.md."""

    field_tesla: PositiveFloat = 2.0
    solenoid_radius_mm: PositiveFloat = 1150.0
    beamspot_sigma_z_mm: NonNegativeFloat = 42.0
    track_pt_min: PositiveFloat = 0.5
    track_eta_max: PositiveFloat = 2.5
    track_efficiency_barrel: float = Field(default=0.93, gt=0, le=1)
    track_efficiency_endcap: float = Field(default=0.87, gt=0, le=1)
    track_lost_truth_fraction: float = Field(default=0.02, ge=0, le=1)
    noise_scale: NonNegativeFloat = 1.0
    em_stochastic: NonNegativeFloat = 0.10
    had_stochastic: NonNegativeFloat = 0.40
    h_over_e: float = Field(default=0.55, gt=0, le=1.5)
    topo_seed: PositiveFloat = 4.0
    topo_grow: PositiveFloat = 2.0
    topo_boundary: NonNegativeFloat = 0.0

    @model_validator(mode="after")
    def _check(self) -> DetectorConfig:
        if not self.topo_seed > self.topo_grow >= self.topo_boundary:
            raise ValueError("need topo_seed > topo_grow >= topo_boundary")
        return self


class SimulateConfig(StrictModel):
    output_dir: str = "output/mltree"
    seed: NonNegativeInt = 1
    run_number: PositiveInt = Field(default=410000, description="runNumber of the first set; each set adds its index")
    events_per_batch: PositiveInt = Field(default=25, description="events simulated together (memory vs overhead)")
    num_cpus: PositiveInt | None = Field(default=None, description="CPUs of the embedded Ray instance; default all")
    compression: Literal["zstd", "zlib", "lz4", "lzma", "none"] = Field(
        default="zstd", description="basket compression; zstd 1 writes ~3x faster than zlib 1 and smaller files"
    )
    compression_level: int = Field(default=1, ge=0, le=9)
    samples: list[SampleConfig] = Field(min_length=1)
    detector: DetectorConfig = DetectorConfig()

    @model_validator(mode="after")
    def _unique_sets(self) -> SimulateConfig:
        names = [s.set for s in self.samples]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"set(s) {dup} listed twice in samples; give one entry per set")
        return self
