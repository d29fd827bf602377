"""End-to-end training throughput: Parquet on disk to optimizer step.

    python benchmarks/train.py [--data output/samples/latest] [--device cpu|cuda] [--bf16] [--compile]
                               [--batch-size 128] [--samples-per-epoch 8192] [--epochs 3]
    python benchmarks/train.py --ray --workers 2       # the same through raypf train (Ray Train + Ray Data)

Plain mode needs no Ray (torch, numpy, pyarrow only): each epoch plans its row
groups (``raypf.train.epochs``), reads, shuffles and packs them in background
threads (``raypf.train.streams``) and runs the model core's training step
(``raypf.train.loop``). Prints samples/s, real points/s, and the fraction of
step time spent waiting for the next batch, per epoch; the first epoch
includes warm-up (compilation, page cache). Targets on one H100: >= 1e7 real
points/s with < 10 % waiting for data.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

log = logging.getLogger("benchmarks.train")


def plain(args) -> None:
    import torch

    from raypf.data.batching import DEFAULT_FEATURES, columns_for, feature_norm, feature_width
    from raypf.data.parquet_batches import read_metadata
    from raypf.models import build_model
    from raypf.models.losses import LossOptions
    from raypf.train.epochs import default_fractions, epoch_plan, row_groups
    from raypf.train.loop import OptimOptions, make_optimizer, train_epoch
    from raypf.train.streams import row_group_batches

    device = torch.device(args.device)
    data = str(args.data.resolve())
    groups = row_groups(data, "train")
    fractions = default_fractions(groups)
    steps = args.samples_per_epoch // args.batch_size
    torch.manual_seed(0)
    model = build_model("pointnet", {}, feature_width(DEFAULT_FEATURES), "binary", norm=feature_norm(read_metadata(data))).to(device)
    opt, sched = make_optimizer(model, OptimOptions(), steps, args.epochs)
    runner = torch.compile(model, dynamic=True) if args.compile else model
    amp = torch.bfloat16 if args.bf16 else None
    log.info("plain process on %s; %d row groups in the train split; %d steps of %d samples per epoch",
             torch.cuda.get_device_name() if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)",
             sum(len(g) for g in groups.values()), steps, args.batch_size)  # fmt: skip
    log.info(f"{'epoch':>5} {'samples/s':>10} {'real points/s':>14} {'data wait':>10} {'loss':>8}")
    for epoch in range(args.epochs):
        plan = epoch_plan(groups, fractions, args.samples_per_epoch + 4 * args.batch_size, epoch, seed=0)
        batches = row_group_batches(plan, columns_for(DEFAULT_FEATURES), args.batch_size, 4096, epoch, DEFAULT_FEATURES, "binary")
        s = train_epoch(runner, opt, sched, LossOptions("bce", "sqrt"), iter(batches), steps, device, amp, 1.0)
        log.info(f"{epoch:>5} {s['samples'] / s['step_s']:>10.0f} {s['points'] / s['step_s']:>14.3g} "
                 f"{s['data_wait_s'] / s['step_s']:>10.1%} {s['loss']:>8.4f}")  # fmt: skip


def through_ray(args) -> None:
    from raypf.train.config import TrainConfig
    from raypf.train.run import run_train

    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig.model_validate(
            {
                "output_dir": tmp, "epochs": args.epochs,
                "data": {"dataset": str(args.data.resolve()), "samples_per_epoch": args.samples_per_epoch,
                         "batch_size": args.batch_size, "val_samples": 512},
                "scaling": {"num_workers": args.workers, "cpus_per_worker": args.cpus_per_worker, "use_gpu": args.device == "cuda"},
            }
        )  # fmt: skip
        summary = run_train(cfg)
        import mlflow

        client = mlflow.MlflowClient(cfg.tracking_uri())
        rows = {k: client.get_metric_history(summary["run_id"], k) for k in ("samples_per_s", "points_per_s", "data_wait_fraction")}
    log.info(f"{'epoch':>5} {'samples/s':>10} {'real points/s':>14} {'data wait':>10}   (all workers)")
    for i, m in enumerate(sorted(rows["samples_per_s"], key=lambda m: m.step)):
        p = sorted(rows["points_per_s"], key=lambda m: m.step)[i].value
        w = sorted(rows["data_wait_fraction"], key=lambda m: m.step)[i].value
        log.info(f"{m.step:>5} {m.value:>10.0f} {p:>14.3g} {w:>10.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("output/samples/latest"))
    parser.add_argument("--device", default=None)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--samples-per-epoch", type=int, default=8192)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--ray", action="store_true", help="run through raypf train instead of a plain process")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--cpus-per-worker", type=float, default=1.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.device is None:
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    through_ray(args) if args.ray else plain(args)


if __name__ == "__main__":
    main()
