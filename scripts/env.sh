# Sourced by demo.sh and test.sh: create .venv and install raypf into it once (again when pyproject.toml, setup.py
# or the compiled kernels change: the install compiles them).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${RAYPF_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "creating virtual environment in $VENV"
    "$PYTHON" -m venv "$VENV"
fi
STAMP="$VENV/.raypf-installed"
WANT="$(cat "$ROOT/pyproject.toml" "$ROOT/setup.py" "$ROOT/raypf/data/raypf_kernels.c" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
    echo "installing raypf and its dependencies (a few minutes the first time)"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    # the CPU build of torch; an unpinned torch would pull a multi-GB CUDA build
    "$VENV/bin/python" -m pip install -q "torch==2.13.0"
    "$VENV/bin/python" -m pip install -q -e "$ROOT[test]"
    echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
