#!/usr/bin/env bash
# The main job, end to end on the built-in synthetic data: simulate, preprocess, then train a small model.
set -euo pipefail
source "$(dirname "$0")/env.sh"
OUT="${RAYPF_OUTPUT:-$ROOT/output}"
raypf simulate --config configs/simulate.yaml --set output_dir="$OUT/mltree"
raypf preprocess --config configs/preprocess.yaml --set input_dir="$OUT/mltree" --set output_dir="$OUT/samples"
raypf train --config configs/train_small.yaml --set data.dataset="$OUT/samples/latest" --set output_dir="$OUT/train" \
    --set run_name="demo-$(date +%Y%m%d-%H%M%S)"   # a new MLflow run each time; the same name would resume
echo "MLTree files: $OUT/mltree   samples: $OUT/samples/latest   training: $OUT/train (MLflow: $OUT/train/mlflow.db)"
