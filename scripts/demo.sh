#!/usr/bin/env bash
# The main job, end to end on the built-in synthetic data: simulate, then preprocess.
set -euo pipefail
source "$(dirname "$0")/env.sh"
OUT="${RAYPF_OUTPUT:-$ROOT/output}"
raypf simulate --config configs/simulate.yaml --set output_dir="$OUT/mltree"
raypf preprocess --config configs/preprocess.yaml --set input_dir="$OUT/mltree" --set output_dir="$OUT/samples"
echo "MLTree files: $OUT/mltree   samples: $OUT/samples/latest"
