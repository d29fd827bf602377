"""`raypf ui` serves the MLflow UI on the project store."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ui_serves_the_store(tmp_path):
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "raypf.cli", "ui", "--output", str(tmp_path), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip  (its own process group: the server's worker processes go with it)
    try:
        deadline, status = time.time() + 120, None
        while time.time() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    status = r.status
                    break
            except OSError:
                time.sleep(1)
        assert status == 200, proc.stderr.read().decode()[-2000:] if proc.poll() is not None else "no answer"
        assert (tmp_path / "mlflow.db").exists()  # the store the UI serves is <output>/mlflow.db
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        time.sleep(2)
        if _group_alive(proc.pid):  # a worker that ignored SIGTERM
            os.killpg(proc.pid, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
