"""`ray job submit ... jobs/preprocess.py` against a cluster started with `ray start --head`.

The cluster gets its own ports and temp dir and is stopped by killing exactly
its processes: `ray stop` would also stop the test session's own Ray.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).parent / "ray")


def _free_ports(n: int) -> list[int]:
    """``n`` distinct ports free right now (all held open together, so none repeats)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _stop(temp_dir: str, gcs_port: int) -> None:
    mine = [
        p for p in psutil.process_iter(["cmdline"])
        if temp_dir in " ".join(p.info["cmdline"] or []) or f":{gcs_port} " in " ".join(p.info["cmdline"] or []) + " "
    ]  # fmt: skip
    everything = set(mine)
    for p in mine:
        try:
            everything.update(p.children(recursive=True))
        except psutil.NoSuchProcess:
            pass
    for p in everything:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(list(everything), timeout=5)
    for p in alive:
        p.kill()


@pytest.fixture(scope="module")
def head_cluster():
    temp_dir = f"/tmp/raypf-{os.getpid()}"  # short: Ray's socket paths must fit in 107 bytes
    flags = ("--ray-client-server-port", "--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
             "--metrics-export-port", "--runtime-env-agent-port", "--node-manager-port", "--object-manager-port")  # fmt: skip
    gcs, dashboard, *others = _free_ports(2 + len(flags))
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # the job's `python` is ours
    env = {**os.environ, "PATH": path, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"}
    # every port its own, so that it cannot collide with the session's Ray (whose agent holds the defaults)
    ports = {flag: str(port) for flag, port in zip(flags, others)}
    cmd = [RAY, "start", "--head", "--num-cpus", "2", "--port", str(gcs), "--dashboard-port", str(dashboard),
           "--temp-dir", temp_dir, "--include-dashboard", "true", *[x for kv in ports.items() for x in kv]]  # fmt: skip
    try:
        started = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180, check=False)
        assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
        yield f"http://127.0.0.1:{dashboard}", env
    finally:
        _stop(temp_dir, gcs)


def test_preprocess_through_ray_job_submit(head_cluster, sim_dataset, tmp_path):
    address, env = head_cluster
    root = Path(sim_dataset["config"]["output_dir"])
    out = tmp_path / "samples"
    config = tmp_path / "preprocess.yaml"
    config.write_text(yaml.safe_dump({
        "inputs": [{"set": s, "paths": [str(root / s / "*.root")]} for s in ("rho", "JZ3")],
        "output_dir": str(out),
        "events_per_task": 10,
    }))  # fmt: skip
    cmd = [RAY, "job", "submit", "--address", address, "--working-dir", str(REPO), "--",
           "python", "jobs/preprocess.py", "--config", str(config)]  # fmt: skip
    for _ in range(15):  # the head's job agent comes up a few seconds after `ray start` returns
        run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
        if "No available agent" not in run.stderr:
            break
        time.sleep(2)
    log = "\n".join(line for line in (run.stdout + run.stderr).splitlines() if "Ignoring upload" not in line)
    assert run.returncode == 0, log[-4000:]
    assert "joined the running Ray cluster" in log
    assert "succeeded" in log
    meta = json.loads((out / "latest" / "_metadata.json").read_text())
    assert set(meta["counts"]["per_set"]) == {"rho", "JZ3"}
    assert sum(meta["counts"]["samples"].values()) > 50
    assert list((out / "latest").glob("split=train/set=JZ3/*.parquet"))
