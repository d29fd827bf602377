"""Bad simulate configs fail before any work, naming the key."""

from __future__ import annotations

import os

import pytest
import yaml

from raypf.cli import main
from raypf.config import ConfigError, load_config
from raypf.simulate.config import SimulateConfig
from raypf.simulate.run import check_output_dir


def _write(tmp_path, data) -> str:
    path = tmp_path / "sim.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"samples": [{"set": "JZ9"}]}, "samples.0.set"),
        ({"samples": [{"set": "rho", "files": -1}]}, "samples.0.files"),
        ({"samples": [{"set": "rho", "events_per_file": 0}]}, "samples.0.events_per_file"),
        ({"samples": [{"set": "rho", "evnts_per_file": 3}]}, "samples.0.evnts_per_file"),
        ({"samples": [{"set": "rho"}], "detector": {"noise": 2}}, "detector.noise"),
        ({"samples": [{"set": "rho"}], "seeed": 1}, "seeed"),
        ({"samples": []}, "samples"),
        ({"samples": [{"set": "JZ2", "pt_min": 5.0}]}, "samples.0"),
        ({"samples": [{"set": "rho", "pt_min": 50.0, "pt_max": 10.0}]}, "samples.0"),
        ({"samples": [{"set": "rho"}, {"set": "rho"}]}, "<root>"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path, data, key):
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as err:
        load_config(SimulateConfig, path)
    assert path in str(err.value)
    assert f"key '{key}'" in str(err.value)


def test_unwritable_output_dir_fails_before_work(tmp_path, caplog):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # running as root: permissions do not bind, use a file as parent instead
            target = tmp_path / "a_file"
            target.write_text("")
            out = target / "sub"
        else:
            out = locked / "sub"
        path = _write(tmp_path, {"output_dir": str(out), "samples": [{"set": "rho", "files": 1, "events_per_file": 1}]})
        cfg = load_config(SimulateConfig, path)
        with pytest.raises(ConfigError, match="key 'output_dir'"):
            check_output_dir(cfg, path)
        # the CLI reports it and exits 2 without starting any work
        assert main(["simulate", "--config", path]) == 2
        assert "output_dir" in caplog.text
        assert not out.exists()
    finally:
        locked.chmod(0o700)


def test_default_config_loads():
    from pathlib import Path

    cfg = load_config(SimulateConfig, Path(__file__).parents[2] / "configs" / "simulate.yaml")
    assert {s.set for s in cfg.samples} >= {"rho", "delta", "JZ2", "JZ3"}


def test_overrides_reach_into_lists_and_name_bad_paths(tmp_path):
    path = _write(tmp_path, {"samples": [{"set": "rho"}, {"set": "JZ3"}]})
    cfg = load_config(SimulateConfig, path, {"samples.1.events_per_file": 7, "detector.noise_scale": 0.5, "seed": 3})
    assert cfg.samples[1].events_per_file == 7 and cfg.detector.noise_scale == 0.5 and cfg.seed == 3
    with pytest.raises(ConfigError, match="samples.5.files"):
        load_config(SimulateConfig, path, {"samples.5.files": 1})
    with pytest.raises(ConfigError, match="key 'samples.0.fils'"):
        load_config(SimulateConfig, path, {"samples.0.fils": 1})


def test_cli_simulates_with_overrides(tmp_path, ray_session):
    """`raypf simulate --config ... --set ...` end to end (joins the session's Ray)."""
    import json

    path = _write(tmp_path, {"output_dir": str(tmp_path / "out"), "samples": [{"set": "rho", "files": 1, "events_per_file": 50}]})
    assert main(["simulate", "--config", path, "--set", "samples.0.events_per_file=3", "--set", "seed=9"]) == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["events"] == 3 and manifest["config"]["seed"] == 9
    assert (tmp_path / "out" / "rho" / "rho_0000.root").is_file()
