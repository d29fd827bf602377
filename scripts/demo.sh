#!/usr/bin/env bash
# The main job, end to end on the built-in synthetic data.
source "$(dirname "$0")/env.sh"
OUT="${RAYPF_OUTPUT:-$ROOT/output}"
raypf simulate --config configs/simulate.yaml --set output_dir="$OUT/mltree" "$@"
echo "MLTree files and manifest: $OUT/mltree"
