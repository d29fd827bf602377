"""Shared fixtures: one local Ray instance, small simulated MLTree files and a rho samples dataset per session."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")


@pytest.fixture(scope="session")
def ray_session():
    """A local 2-CPU Ray instance shared by every test that needs Ray; stopped at the end."""
    import ray

    started = not ray.is_initialized()
    if started:
        # with the dashboard: Ray Train's placement-group cleaner needs its state API (raypf.ray_utils)
        ray.init(num_cpus=2, include_dashboard=True, configure_logging=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="session")
def small_sim_config(tmp_path_factory):
    from raypf.simulate.config import SimulateConfig

    out = tmp_path_factory.mktemp("mltree")
    return SimulateConfig.model_validate(
        {
            "output_dir": str(out),
            "seed": 7,
            "events_per_batch": 10,
            "samples": [
                {"set": "rho", "files": 2, "events_per_file": 20, "pt_min": 5.0, "pt_max": 50.0},
                {"set": "delta", "files": 1, "events_per_file": 20},
                {"set": "JZ2", "files": 1, "events_per_file": 3},
                {"set": "JZ3", "files": 1, "events_per_file": 4},
            ],
        }
    )


@pytest.fixture(scope="session")
def sim_dataset(ray_session, small_sim_config):
    """MLTree files of rho, delta and JZ3, written through the Ray pipeline."""
    from raypf.simulate.run import run_simulation

    manifest = run_simulation(small_sim_config)
    return manifest


@pytest.fixture(scope="session")
def rho_samples(ray_session, tmp_path_factory) -> Path:
    """Simulate rho events, preprocess them with Ray, return the dataset directory (with its metadata)."""
    from raypf.data.preprocess import run_preprocess
    from raypf.data.preprocess_config import PreprocessConfig
    from raypf.simulate.config import SimulateConfig
    from raypf.simulate.run import run_simulation

    root = tmp_path_factory.mktemp("rho")
    sim = SimulateConfig.model_validate(
        {"output_dir": str(root / "mltree"), "seed": 23, "samples": [{"set": "rho", "files": 2, "events_per_file": 1000}]}
    )
    run_simulation(sim)
    cfg = PreprocessConfig.model_validate(
        {
            "inputs": [{"set": "rho", "paths": [str(root / "mltree" / "rho" / "*.root")]}],
            "output_dir": str(root / "samples"),
            "parquet_row_group_samples": 16,  # many row groups, as a large dataset has, for sampled epochs
        }
    )
    meta = run_preprocess(cfg)
    path = Path(cfg.output_dir) / meta["dataset"]
    assert json.loads((path / "_metadata.json").read_text())["counts"]["samples"]["train"] > 100
    return path
