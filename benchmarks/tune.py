"""Hyperband against random search at the same epoch budget, on the simulated samples.

    python benchmarks/tune.py [--config configs/tune.yaml] [--data output/samples/latest] [--trials 8] [--max-t 4]

Runs the sweep of ``--config`` with Hyperband (``--trials`` trials, at most
``--max-t`` epochs each), counts the epochs it trained, then runs random search
(no early stopping: every trial trains ``--max-t`` epochs) with as many trials
as that budget pays for. Both sample the same seeded space, so random search's
trials are the first of Hyperband's. Prints, for each, the best metric reached,
the epochs trained and the wall time. Both land in ``--out``'s MLflow store
(`raypf runs --output <out> --sweep <name>`).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

log = logging.getLogger("benchmarks.tune")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/tune.yaml")
    parser.add_argument("--data", type=Path, default=Path("output/samples/latest"))
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--max-t", type=int, default=4)
    parser.add_argument("--reduction-factor", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="default: a temporary directory")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )

    from raypf.config import load_config
    from raypf.tune.config import TuneConfig
    from raypf.tune.run import run_tune

    out = args.out or Path(tempfile.mkdtemp(prefix="raypf-bench-tune-"))
    stamp = time.strftime("%H%M%S")

    def sweep(kind: str, trials: int) -> dict:
        cfg = load_config(TuneConfig, args.config, {
            "name": f"bench-{kind}-{stamp}", "output_dir": str(out / "tune"), "num_trials": trials, "seed": args.seed,
            "scheduler.kind": kind, "scheduler.max_t": args.max_t, "scheduler.reduction_factor": args.reduction_factor,
            "set.data.dataset": str(args.data.resolve()),
        })  # fmt: skip
        return run_tune(cfg, source=args.config)

    hyperband = sweep("hyperband", args.trials)
    budget = hyperband["epochs_trained"]
    random = sweep("none", max(1, round(budget / args.max_t)))
    metric = hyperband["metric"]
    print(f"{'search':<12} {'trials':>6} {'epochs':>6} {'best ' + metric:>12} {'wall s':>8}")
    for name, s in (("hyperband", hyperband), ("random", random)):
        print(
            f"{name:<12} {len(s['trials']):>6} {s['epochs_trained']:>6} {s['best_value']:>12.4f} {s['wall_seconds']:>8.0f}"
        )
    print(f"MLflow: raypf runs --output {out} --sweep <name>  (names: {hyperband['sweep']}, {random['sweep']})")


if __name__ == "__main__":
    main()
