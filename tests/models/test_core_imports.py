"""The numeric core runs on a machine with only torch, numpy and pyarrow (DESIGN.md, "Layout")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CORE = [
    "raypf.data.batching", "raypf.data.parquet_batches", "raypf.models", "raypf.models.pointnet",
    "raypf.models.losses", "raypf.models.metrics", "raypf.models.baselines",
]  # fmt: skip
FORBIDDEN = ["ray", "mlflow", "uproot", "awkward", "pydantic", "yaml", "numba"]  # pandas: pyarrow loads it when present


def test_core_imports_nothing_but_torch_numpy_pyarrow():
    code = (
        f"import sys\nfor m in {CORE!r}: __import__(m)\n"
        "import raypf.models as rm; rm.model_names()\n"
        f"bad = sorted({{m.split('.')[0] for m in sys.modules}} & set({FORBIDDEN!r}))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_model_benchmark_runs():
    out = subprocess.run(
        [sys.executable, "benchmarks/model.py", "--device", "cpu", "--samples", "4", "--steps", "1", "--warmup", "0", "--distinct", "1"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    lines = out.stderr + out.stdout
    assert "packed / padded, real points per second" in lines
    assert "packed " in lines and "padded " in lines
