"""Simulation throughput on one core: events/s, generator vs detector time, tracks and clustered cells per event.

    python benchmarks/simulate.py [--events-rho 500] [--events-jz3 100]

Runs `simulate_file` in this process (one core, no Ray) so the figures are per
core. The detector must not be the bottleneck: for JZ3 its time per event
should not exceed Pythia's.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time

from raypf.simulate.config import SimulateConfig
from raypf.simulate.geometry import build_geometry
from raypf.simulate.run import simulate_file


def bench(set_name: str, events: int, batch: int, out_dir: str, repeat: int) -> dict:
    """Simulate the same file ``repeat`` times; keep each stage's fastest run (timeit's rule on a noisy machine)."""
    cfg = SimulateConfig.model_validate(
        {"output_dir": out_dir, "events_per_batch": batch, "samples": [{"set": set_name, "files": 1, "events_per_file": events}]}
    )
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        runs.append((simulate_file(cfg, cfg.samples[0], 0), time.perf_counter() - t0))
    s, wall = runs[0]
    for field in ("generator_cpu_seconds", "detector_cpu_seconds", "write_cpu_seconds"):
        setattr(s, field, min(getattr(r, field) for r, _ in runs))
    wall = min(w for _, w in runs)
    cpu = s.generator_cpu_seconds + s.detector_cpu_seconds + s.write_cpu_seconds
    return {
        "set": set_name,
        "events": events,
        "events_per_s": events / wall,
        "events_per_cpu_s": events / cpu,
        "gen_ms": 1e3 * s.generator_cpu_seconds / events,
        "det_ms": 1e3 * s.detector_cpu_seconds / events,
        "write_ms": 1e3 * s.write_cpu_seconds / events,
        "det_share": s.detector_cpu_seconds / (s.detector_cpu_seconds + s.generator_cpu_seconds),
        "tracks": s.tracks / events,
        "cells": s.clustered_cells / events,
        "clusters": s.clusters / events,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events-rho", type=int, default=500)
    parser.add_argument("--events-jz3", type=int, default=100)
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--repeat", type=int, default=2, help="runs per set; the fastest of each stage is kept")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    t0 = time.perf_counter()
    build_geometry()
    print(f"geometry build: {time.perf_counter() - t0:.2f} s (once per process)")
    header = (
        f"{'set':6} {'events':>6} {'ev/s (wall)':>11} {'ev/CPU-s':>9} {'pythia ms/ev':>12} {'detector ms/ev':>14} "
        f"{'write ms/ev':>11} {'det/(det+gen)':>13} {'det/gen':>7} {'tracks/ev':>9} {'clusters/ev':>11} {'cells/ev':>9}"
    )
    print(f"times are CPU ms per event on one core, fastest of {args.repeat} runs per stage")
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        for name, n in (("rho", args.events_rho), ("JZ3", args.events_jz3)):
            r = bench(name, n, args.batch, tmp, args.repeat)
            print(
                f"{r['set']:6} {r['events']:6d} {r['events_per_s']:11.1f} {r['events_per_cpu_s']:9.1f} {r['gen_ms']:12.2f} "
                f"{r['det_ms']:14.2f} {r['write_ms']:11.2f} {r['det_share']:13.2f} {r['det_ms'] / r['gen_ms']:7.2f} "
                f"{r['tracks']:9.1f} {r['clusters']:11.1f} {r['cells']:9.0f}"
            )


if __name__ == "__main__":
    main()
