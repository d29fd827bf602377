"""Preprocessing throughput: samples/s and events/s per core, peak memory per worker, 1 vs 2 workers.

    python benchmarks/preprocess.py [--repeat 3] [--sets rho,JZ3] [--rho-events 640000] [--jz3-events 12800]

Simulates the input once, in 8 files per set and size (cached under --data;
about 10 min for the rho and 3 min for the JZ3 files on 2 cores the first
time), reads the files into the page cache, then runs the full `raypf
preprocess` pipeline (Ray Data, Parquet written) on rho and on JZ3 files with
a local Ray of 1 and of 2 CPUs, after one warm-up run on one file. Each run starts after
the previous one's output is flushed to disk and deleted. Per core = samples per
wall second divided by the workers, end to end (start-up included: reading the
headers and the cell geometry, starting Ray Data and the workers) and steady
(from the first task's start to the last one's end). Targets on a 2-core
machine: >= 5,000 samples/s per core on both, <= 1.5 GB peak RSS per worker, 2 workers >= 1.7x one.
Also prints, per set, the share of cells whose truth energy is mostly the
focal particle's (the seeds report ~35% for rho+delta and ~6% for JZ2-JZ4).

The default sizes make a run with two workers last about a minute. A run
costs about 2 s of start-up whatever its size (Ray Data's import in the
driver and in every worker, its two actors, the first touch of each worker's
memory), most of it on both cores; on a run of a few seconds that, not the
pipeline, sets the 2/1 ratio. ``--rho-events 160000 --jz3-events 6400`` runs
the smaller sets measured before.

A small VM's speed drifts by 20 % and more within minutes, so ``--repeat N``
runs the configurations N times, alternating the order of the 1- and 2-worker
runs, and prints each configuration's median and best, and the 2/1 ratio of
each adjacent pair, taken seconds apart, rather than of runs minutes apart.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

SETS = ("rho", "JZ3")


def simulate(data: Path, set_name: str, events: int) -> Path:
    """The directory of ``events`` events of ``set_name`` in 8 files, simulated on first use.

    Each set and size has its own directory (``<data>/<set>-<events>``), so that runs at
    another size do not replace the files of this one.
    """
    from raypf.simulate.config import SimulateConfig
    from raypf.simulate.run import run_simulation

    out = data / f"{set_name}-{events}"
    manifest = out / "manifest.json"
    if manifest.exists():
        have = json.loads(manifest.read_text())["config"]["samples"]
        if any((s["set"], s["files"], s["events_per_file"]) == (set_name, 8, events // 8) for s in have):
            return out / set_name
    cfg = SimulateConfig.model_validate(
        {"output_dir": str(out), "seed": 12, "samples": [{"set": set_name, "files": 8, "events_per_file": events // 8}]}
    )
    run_simulation(cfg)
    import ray

    ray.shutdown()
    return out / set_name


def run(files: Path, set_name: str, workers: int, out: Path, task_megabytes: float = 16.0, pattern: str = "*.root") -> dict:
    import ray

    from raypf.data.preprocess import run_preprocess
    from raypf.data.preprocess_config import PreprocessConfig

    cfg = PreprocessConfig.model_validate(
        {"inputs": [{"set": set_name, "paths": [str(files / pattern)]}], "output_dir": str(out), "workers": workers,
         "task_megabytes": task_megabytes}
    )
    os.sync()  # the previous run's output is on disk, not written back by the kernel during this one
    ray.init(num_cpus=workers, include_dashboard=False, configure_logging=False, log_to_driver=False)
    try:
        t0 = time.perf_counter()
        meta = run_preprocess(cfg)
        wall = time.perf_counter() - t0
    finally:
        ray.shutdown()
        shutil.rmtree(out, ignore_errors=True)  # 1-3 GB a run
    counts = meta["counts"]
    samples = sum(counts["samples"].values())
    cpu = meta["task_cpu_seconds"]
    tasks = meta["tasks_seconds"]
    return {
        "set": set_name,
        "workers": workers,
        "events": counts["events"],
        "samples": samples,
        "wall": wall,
        "startup": meta["startup_seconds"],
        "tasks": tasks,
        "samples_per_s_core": samples / wall / workers,
        "steady_per_s_core": samples / tasks / workers,
        "events_per_s_core": counts["events"] / wall / workers,
        "task_samples_per_cpu_s": samples / sum(cpu.values()),
        "us_per_sample": {k: 1e6 * v / samples for k, v in cpu.items()},
        "peak_rss_gb": meta["peak_worker_rss_bytes"] / 1e9,
        "focal_share": counts["per_set"][set_name]["focal_cell_share"],
        "points_p50": meta["points"]["all"]["p50"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rho-events", type=int, default=640000)
    parser.add_argument("--jz3-events", type=int, default=12800)
    parser.add_argument("--data", type=Path, default=Path("output/bench/mltree"))
    parser.add_argument("--task-megabytes", type=float, default=16.0, help="compressed input per task")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each configuration, interleaved")
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated, from: " + ", ".join(SETS))
    args = parser.parse_args()
    sets = [s for s in args.sets.split(",") if s]
    if unknown := set(sets) - set(SETS):
        parser.error(f"--sets: unknown set(s) {sorted(unknown)}; choose from {list(SETS)}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    logging.basicConfig(level=logging.WARNING)
    data = args.data.resolve()
    events = {"rho": args.rho_events, "JZ3": args.jz3_events}
    files = {name: simulate(data, name, events[name]) for name in sets}
    for path in sorted(p for d in files.values() for p in d.glob("*.root")):
        with open(path, "rb") as f:  # into the page cache: every run reads from memory
            while f.read(1 << 24):
                pass
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        run(files[sets[0]], sets[0], 2, Path(tmp) / "warmup", pattern="*_0000.root")  # libraries from disk, once
        for rep in range(args.repeat):
            for set_name in sets:
                for workers in (1, 2) if rep % 2 == 0 else (2, 1):  # drift within a pair cancels over pairs
                    r = run(files[set_name], set_name, workers, Path(tmp) / f"{set_name}-{workers}", args.task_megabytes)
                    results.append({**r, "rep": rep})
    print(f"{'set':5} {'wk':>2} {'run':>3} {'events':>7} {'samples':>8} {'wall s':>7} {'start-up s':>10} {'samples/s/core':>14} "
          f"{'steady':>7} {'events/s/core':>13} {'task smp/cpu-s':>14} {'read/build/write us/sample':>27} {'peak RSS GB':>11} "
          f"{'focal share':>11}")  # fmt: skip
    for r in results:
        us = r["us_per_sample"]
        print(
            f"{r['set']:5} {r['workers']:>2} {r['rep']:>3} {r['events']:>7} {r['samples']:>8} {r['wall']:>7.1f} {r['startup']:>10.1f} "
            f"{r['samples_per_s_core']:>14.0f} {r['steady_per_s_core']:>7.0f} {r['events_per_s_core']:>13.0f} "
            f"{r['task_samples_per_cpu_s']:>14.0f} {us['read']:>9.0f}/{us['build']:>6.0f}/{us['write']:>6.0f}     "
            f"{r['peak_rss_gb']:>11.2f} {r['focal_share']:>11.1%}"
        )
    for set_name in sets:
        for workers in (1, 2):
            runs = [r for r in results if r["set"] == set_name and r["workers"] == workers]
            e2e, steady = ([r[k] for r in runs] for k in ("samples_per_s_core", "steady_per_s_core"))
            print(f"{set_name} {workers} worker(s), samples/s per core: end to end median {statistics.median(e2e):.0f}, "
                  f"best {max(e2e):.0f}; steady median {statistics.median(steady):.0f}, best {max(steady):.0f}")  # fmt: skip
        pairs = [[next(r for r in results if r["set"] == set_name and r["workers"] == w and r["rep"] == rep) for w in (1, 2)]
                 for rep in range(args.repeat)]  # fmt: skip
        e2e = [one["wall"] / two["wall"] for one, two in pairs]
        steady = [one["tasks"] / two["tasks"] for one, two in pairs]
        print(f"{set_name}: 2 workers / 1 worker = {statistics.median(e2e):.2f}x end to end "
              f"({', '.join(f'{x:.2f}' for x in e2e)}), {statistics.median(steady):.2f}x steady "
              f"({', '.join(f'{x:.2f}' for x in steady)})")  # fmt: skip


if __name__ == "__main__":
    main()
