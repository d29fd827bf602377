#!/usr/bin/env bash
# The main job, end to end on the built-in synthetic data: simulate, preprocess, train a small model, a small sweep,
# then evaluate the trained model against the baselines and the rule-based particle flow.
set -euo pipefail
source "$(dirname "$0")/env.sh"
OUT="${RAYPF_OUTPUT:-$ROOT/output}"
STAMP="$(date +%Y%m%d-%H%M%S)"   # new MLflow runs each time; the same names would resume
raypf simulate --config configs/simulate.yaml --set output_dir="$OUT/mltree"
raypf preprocess --config configs/preprocess.yaml --set input_dir="$OUT/mltree" --set output_dir="$OUT/samples"
raypf train --config configs/train_small.yaml --set data.dataset="$OUT/samples/latest" --set output_dir="$OUT/train" \
    --set run_name="demo-$STAMP"
raypf tune --config configs/tune.yaml --set set.data.dataset="$OUT/samples/latest" --set output_dir="$OUT/tune" \
    --set name="demo-sweep-$STAMP"
raypf runs --output "$OUT" --sweep "demo-sweep-$STAMP"
echo "MLTree files: $OUT/mltree   samples: $OUT/samples/latest   training: $OUT/train   sweep: $OUT/tune/demo-sweep-$STAMP"
echo "evaluation report: $OUT/evaluate/demo-eval-$STAMP/report.md (plots beside it)"
echo "MLflow store: $OUT/mlflow.db — browse it with: raypf ui --output $OUT"
# last: the trained model on the test split (--checkpoint "$OUT/tune/demo-sweep-$STAMP" would take the sweep's
# best trial); prints the report's metrics table
raypf evaluate --config configs/evaluate.yaml --checkpoint "$OUT/train/demo-$STAMP" --split test \
    --set output_dir="$OUT/evaluate" --set name="demo-eval-$STAMP"
