"""Configuration of `raypf preprocess`: which files, how samples are built, and what happens to odd ones."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import Field, NonNegativeInt, PositiveInt, model_validator

from raypf.config import StrictModel


class InputSet(StrictModel):
    """MLTree files of one set: paths or globs, local or any fsspec URL (``s3://...``, ``root://...``)."""

    set: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="name used in the partition path, e.g. rho, JZ2")
    paths: list[str] = Field(min_length=1)


class SplitFractions(StrictModel):
    """Per-event split by a stable hash of (run, event number): identical on every machine and re-run."""

    train: float = Field(default=0.8, ge=0, le=1)
    val: float = Field(default=0.1, ge=0, le=1)
    test: float = Field(default=0.1, ge=0, le=1)
    seed: NonNegativeInt = Field(default=0, description="changes which events land where, not the fractions")

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitFractions:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"train + val + test must be 1, got {total:g}")
        return self


class SampleOptions(StrictModel):
    """What a sample is; every choice here changes the data, so all of it goes into the config hash."""

    max_delta_r: float = Field(default=0.2, gt=0, le=1.0, description="cone around the focal track's EMB2/EME2 point")
    min_cells: NonNegativeInt = Field(default=25, description="samples with fewer cells are dropped")
    max_points: PositiveInt = Field(default=1500, ge=32, description="samples with more points follow too_many_points")
    too_many_points: Literal["truncate", "drop"] = Field(
        default="truncate", description="truncate keeps the focal track and the points nearest in delta R"
    )
    negative_truth: Literal["clip", "keep"] = Field(default="clip", description="clip sets negative truth deposits to 0")
    tracks_without_truth: Literal["drop", "keep"] = Field(
        default="drop", description="keep gives such samples a focal energy of 0 everywhere"
    )
    split: SplitFractions = SplitFractions()


class PreprocessConfig(StrictModel):
    """`raypf preprocess`: MLTree files in, the samples dataset out (DESIGN.md, "Intermediate")."""

    inputs: list[InputSet] = Field(min_length=1)
    input_dir: str = Field(default=".", description="relative input paths are taken from here")
    output_dir: str = "output/samples"
    samples: SampleOptions = SampleOptions()
    on_bad_file: Literal["fail", "skip"] = Field(default="fail", description="skip: leave the file out, list it in the summary")
    events_per_task: PositiveInt | None = Field(default=None, description="events per entry range (the unit a task claims); default: about task_megabytes of input")
    task_megabytes: float = Field(default=16.0, gt=0, description="compressed input per entry range when events_per_task is unset")
    workers: PositiveInt | None = Field(default=None, description="parallel tasks, one per worker (default: every CPU of the cluster)")
    parquet_compression: Literal["zstd", "lz4", "snappy", "none"] = Field(
        default="lz4", description="lz4 writes ~25 % faster than zstd-1; zstd-1 files are ~25 % smaller"
    )
    parquet_compression_level: int = Field(default=1, description="zstd only")
    parquet_row_group_samples: PositiveInt = Field(default=512, description="samples per row group: the unit training reads")

    @model_validator(mode="after")
    def _unique_sets(self) -> PreprocessConfig:
        names = [i.set for i in self.inputs]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"set(s) listed twice in inputs: {', '.join(dup)} (give one entry several paths instead)")
        return self

    def resolve(self, path: str) -> str:
        """An input path or glob made absolute (URLs as they are)."""
        if "://" in path:
            return path
        return str((Path(self.input_dir).expanduser() / Path(path).expanduser()).resolve())

    def dataset_hash(self) -> str:
        """Hash of everything that decides the rows: inputs, sample options, bad-file policy, Parquet settings.

        Not the output directory or how the work is cut into tasks, which change nothing in the data.
        """
        content = self.model_dump(mode="json", exclude={"output_dir", "events_per_task", "task_megabytes", "workers", "input_dir"})
        content["inputs"] = [{"set": i.set, "paths": [self.resolve(p) for p in i.paths]} for i in self.inputs]
        blob = json.dumps(content, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:10]
