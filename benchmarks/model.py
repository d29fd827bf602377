"""PointNet training-step throughput on packed versus padded batches.

    python benchmarks/model.py [--device cpu|cuda] [--dtype fp32|bf16] [--compile] [--samples 128] [--steps 20]
                               [--data output/samples/latest]

One training step is forward, backward and an AdamW update of the default
PointNet (binary target, BCE). The same batches run twice: packed (all real
points concatenated) and padded to the batch's longest sample, as the seed's
network sees them. Prints real (unpadded) points per second, padded points
per second and the FLOP rate (FLOPs of one step counted by
``torch.utils.flop_counter`` in eager mode). Point counts come from a samples
dataset when ``--data`` is given, else from a log-normal with the spread of
the simulated dijet and rho samples (25 to 859 points; 859 is the seed's
padded length). Reference: the seed's architecture, padded, bf16, 859 points
per sample, about 5e6 padded points/s on one H100; the packed target is
>= 1e7 real points/s with bf16 and torch.compile.

Imports only torch, numpy, pyarrow and raypf's numeric core: runs without Ray.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import torch

from raypf.data.batching import CELL, DEFAULT_FEATURES, PackedBatch, feature_width, segment_index, to_padded
from raypf.models import build_model
from raypf.models.losses import LossOptions, cell_loss

log = logging.getLogger("benchmarks.model")


def point_counts(n: int, data: Path | None, rng: np.random.Generator) -> np.ndarray:
    if data is not None:
        import pyarrow.dataset as pads

        counts = pads.dataset(data, format="parquet", partitioning="hive").to_table(columns=["n_points"])["n_points"].to_numpy()
        return rng.choice(counts, n)
    return np.clip(rng.lognormal(np.log(180), 0.7, n), 25, 859).astype(np.int64)


def synthetic_batch(counts: np.ndarray, rng: np.random.Generator) -> PackedBatch:
    n = int(counts.sum())
    offsets, sample, position = segment_index(counts)
    ptype = np.where(rng.random(n) < 0.9, CELL, 2)
    ptype[offsets[:-1]] = 1
    cell = ptype == CELL
    return PackedBatch(
        features=torch.from_numpy(rng.normal(size=(n, feature_width(DEFAULT_FEATURES))).astype(np.float32)),
        point_type=torch.from_numpy(ptype),
        sample=torch.from_numpy(sample),
        position=torch.from_numpy(position),
        offsets=torch.from_numpy(offsets),
        energy=torch.from_numpy(np.where(cell, rng.exponential(1.0, n), 0).astype(np.float32)),
        cell=torch.from_numpy(cell),
        target=torch.from_numpy((rng.random(n) < 0.2) & cell).long(),
        truth_focal=torch.zeros(n),
        truth_total=torch.zeros(n),
        max_points=int(counts.max()),
    )


def make_step(model, opt, padded: bool, dtype: torch.dtype | None, device: str):
    loss_opts = LossOptions("bce", "sqrt")

    def step(batch, pad):
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device, dtype=dtype, enabled=dtype is not None):
            if padded:
                out = model.forward_padded(pad)
                pred = out.pred[pad.mask]
            else:
                out = model(batch)
                pred = out.pred
            loss = cell_loss(loss_opts, pred[batch.cell], batch.target[batch.cell], batch.energy[batch.cell]) + out.aux_loss
        loss.backward()
        opt.step()
        return loss

    return step


def count_flops(model, step, batch, pad) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step(batch, pad)
    return float(counter.get_total_flops())


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def bench(args, padded: bool) -> dict:
    rng = np.random.default_rng(0)
    device = args.device
    dtype = torch.bfloat16 if args.dtype == "bf16" else None
    batches = []
    for _ in range(args.distinct):
        b = synthetic_batch(point_counts(args.samples, args.data, rng), rng).to(device)
        p = to_padded(b, length=args.pad_to or b.max_points)  # built outside the timing, as a padded loader would
        batches.append((b, p))  # mask order is packed order, so both paths score the same cells
    torch.manual_seed(0)
    model = build_model("pointnet", {}, feature_width(DEFAULT_FEATURES), "binary").to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    eager = make_step(model, opt, padded, dtype, device)
    flops = count_flops(model, eager, *batches[0])
    real0 = batches[0][0].n_points
    runner = model
    if args.compile:
        runner = torch.compile(model, dynamic=True)
    step = make_step(runner, opt, padded, dtype, device)
    for i in range(args.warmup):
        step(*batches[i % len(batches)])
    sync(device)
    real = padded_points = 0
    t0 = time.perf_counter()
    for i in range(args.steps):
        b, p = batches[i % len(batches)]
        step(b, p)
        real += b.n_points
        padded_points += p.mask.numel()
    sync(device)
    wall = time.perf_counter() - t0
    return {
        "path": "padded" if padded else "packed",
        "real_pts_s": real / wall,
        "padded_pts_s": padded_points / wall,
        "tflops": flops / real0 * real / wall / 1e12,
        "flop_per_real_point": flops / real0,
        "step_ms": 1e3 * wall / args.steps,
        "real_fraction": real / padded_points,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--samples", type=int, default=128, help="samples per batch")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--distinct", type=int, default=4, help="distinct batches cycled through")
    parser.add_argument("--pad-to", type=int, default=0, help="padded length (default: each batch's longest sample)")
    parser.add_argument("--data", type=Path, default=None, help="samples dataset to draw point counts from")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (default: torch's choice)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    log.info("device: %s; dtype %s; compile %s; %d samples per batch", name, args.dtype, args.compile, args.samples)
    results = [bench(args, padded) for padded in (False, True)]
    log.info(f"{'path':7} {'real pts/s':>12} {'padded pts/s':>13} {'TFLOP/s':>8} {'GFLOP/real pt':>13} {'ms/step':>8} {'real/padded':>11}")
    for r in results:
        log.info(
            f"{r['path']:7} {r['real_pts_s']:>12.3g} {r['padded_pts_s']:>13.3g} {r['tflops']:>8.3f} "
            f"{r['flop_per_real_point'] / 1e9:>13.5f} {r['step_ms']:>8.1f} {r['real_fraction']:>11.2f}"
        )
    log.info("packed / padded, real points per second: %.2fx", results[0]["real_pts_s"] / results[1]["real_pts_s"])


if __name__ == "__main__":
    main()
