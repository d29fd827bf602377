"""`raypf simulate`: one Ray task per output file, a manifest when all are done."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import awkward as ak
import numpy as np

from raypf.config import ConfigError, config_hash
from raypf.data.mltree_schema import CELL_GEO_BRANCHES, CELL_GEO_TREE, EVENT_BRANCHES, EVENT_TREE, MC_CHANNEL
from raypf.simulate.config import GUN_SETS, DetectorConfig, SampleConfig, SimulateConfig

log = logging.getLogger(__name__)

SET_ORDER = tuple(MC_CHANNEL)  # rho, delta, JZ0..JZ6: fixes each set's runNumber offset
MANIFEST = "manifest.json"


@dataclass
class FileSummary:
    set: str
    path: str
    events: int
    seed: int
    tracks: int
    clusters: int
    clustered_cells: int
    generator_cpu_seconds: float
    detector_cpu_seconds: float
    write_cpu_seconds: float


def file_seed(global_seed: int, set_name: str, index: int) -> int:
    """Independent, reproducible seed per file, valid for Pythia (1..900,000,000)."""
    digest = hashlib.sha256(f"{global_seed}/{set_name}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % 900_000_000 + 1


def output_path(out_dir: Path, set_name: str, index: int) -> Path:
    return out_dir / set_name / f"{set_name}_{index:04d}.root"


def _generator(sample: SampleConfig, seed: int):
    from raypf.simulate.generators import DijetGenerator, GunGenerator

    if sample.set in GUN_SETS:
        return GunGenerator(sample.set, seed, sample.pt_range, sample.eta_max)
    return DijetGenerator(sample.set, seed, sample.pileup_mu)


def cell_geo_branches(geo) -> dict[str, tuple[str, object]]:
    cols = {
        "cell_geo_ID": geo.cell_id,
        "cell_geo_sampling": geo.sampling,
        "cell_geo_eta": geo.eta,
        "cell_geo_phi": geo.phi,
        "cell_geo_rPerp": geo.rperp,
        "cell_geo_deta": geo.deta,
        "cell_geo_dphi": geo.dphi,
        "cell_geo_volume": geo.volume,
        "cell_geo_sigma": geo.sigma,
    }
    return {k: (CELL_GEO_BRANCHES[k], ak.unflatten(np.asarray(v), [len(v)])) for k, v in cols.items()}


@functools.lru_cache(maxsize=2)
def _detector(cfg: DetectorConfig):
    """One detector (and its reusable lookup tables) per worker process and configuration."""
    from raypf.simulate.detector import Detector
    from raypf.simulate.geometry import build_geometry

    return Detector(cfg, build_geometry())


#: Uncompressed size aimed at for the largest basket (cell IDs, 8 bytes per cell).
BASKET_BYTES = 4 << 20


def basket_entries(cells_per_event: float) -> int:
    """Events per basket so that readers of an entry range decompress little beyond it (as ROOT's auto-flush)."""
    return int(np.clip(BASKET_BYTES / max(8.0 * cells_per_event, 1.0), 10, 2000))


def simulate_file(cfg: SimulateConfig, sample: SampleConfig, index: int) -> FileSummary:
    """Generate, simulate and write one MLTree file; on failure nothing is left at its path."""
    from raypf.malloc_tuning import keep_freed_memory
    from raypf.simulate.rootio import write_root_file

    keep_freed_memory()
    out_dir = Path(cfg.output_dir).resolve()
    path = output_path(out_dir, sample.set, index)
    path.parent.mkdir(parents=True, exist_ok=True)
    seed = file_seed(cfg.seed, sample.set, index)
    rng = np.random.default_rng(seed)
    detector = _detector(cfg.detector)
    generator = _generator(sample, seed)
    run_number = cfg.run_number + SET_ORDER.index(sample.set)
    channel = MC_CHANNEL[sample.set]

    batches = []
    t_gen = t_det = 0.0
    n = sample.events_per_file
    for start in range(0, n, cfg.events_per_batch):
        size = min(cfg.events_per_batch, n - start)
        t0 = time.process_time()  # CPU time: the cost, immune to other load on the machine
        particles, weights = generator.generate(size)
        t1 = time.process_time()
        event_numbers = index * n + start + 1 + np.arange(size)
        batches.append(detector.simulate(particles, weights, run_number, event_numbers, channel, rng))
        t_gen += t1 - t0
        t_det += time.process_time() - t1

    branches = {}
    for name, cpp_type in EVENT_BRANCHES.items():
        parts = [b[name] for b in batches]
        data = np.concatenate(parts) if isinstance(parts[0], np.ndarray) else ak.concatenate(parts)
        branches[name] = (cpp_type, data)
    t2 = time.process_time()
    trees = {EVENT_TREE: branches, CELL_GEO_TREE: cell_geo_branches(detector.geo)}
    cells = int(ak.sum(ak.num(branches["cluster_cell_E"][1], axis=2)))
    write_root_file(path, trees, compression=cfg.compression, level=cfg.compression_level, basket_entries=basket_entries(cells / n))
    t_write = time.process_time() - t2
    n_cluster = branches["nCluster"][1]
    return FileSummary(
        set=sample.set,
        path=str(path),
        events=n,
        seed=seed,
        tracks=int(branches["nTrack"][1].sum()),
        clusters=int(n_cluster.sum()),
        clustered_cells=int(ak.sum(branches["cluster_nCells"][1])),
        generator_cpu_seconds=round(t_gen, 3),
        detector_cpu_seconds=round(t_det, 3),
        write_cpu_seconds=round(t_write, 3),
    )


def check_output_dir(cfg: SimulateConfig, source: str = "config") -> Path:
    """Fail before any work if output_dir cannot be written, naming the key."""
    out = Path(cfg.output_dir).expanduser().resolve()
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as err:
        raise ConfigError(f"{source}: key 'output_dir': cannot write to {out}: {err.strerror or err}") from None
    return out


def run_simulation(cfg: SimulateConfig, source: str = "config", address: str | None = None) -> dict:
    """Simulate every file of every set as Ray tasks; return (and write) the manifest."""
    import ray
    from tqdm import tqdm

    from raypf.ray_utils import init_ray

    out = check_output_dir(cfg, source)
    init_ray(address, cfg.num_cpus)
    task = ray.remote(num_cpus=1, max_retries=0)(simulate_file)
    jobs = {task.remote(cfg, s, i): (s.set, i) for s in cfg.samples for i in range(s.files)}
    n_events = sum(s.files * s.events_per_file for s in cfg.samples)
    log.info("simulating %d files, %d events into %s", len(jobs), n_events, out)
    t0 = time.perf_counter()
    summaries, failures = [], []
    pending = list(jobs)
    with tqdm(total=len(jobs), desc="simulate", unit="file") as bar:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            try:
                summaries.append(ray.get(done[0]))
            except Exception as err:  # noqa: BLE001 - report every failed file, then fail
                set_name, index = jobs[done[0]]
                failures.append(f"{output_path(out, set_name, index)}: {err}")
            bar.update(1)
    if failures:
        raise RuntimeError("simulation failed for:\n" + "\n".join(failures))
    wall = time.perf_counter() - t0
    summaries.sort(key=lambda s: s.path)
    manifest = {
        "config": cfg.model_dump(mode="json"),
        "config_hash": config_hash(cfg),
        "files": [asdict(s) for s in summaries],
        "events": n_events,
        "wall_seconds": round(wall, 2),
    }
    tmp = out / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, out / MANIFEST)
    for set_name in dict.fromkeys(s.set for s in summaries):
        rows = [s for s in summaries if s.set == set_name]
        ev = sum(r.events for r in rows)
        log.info(
            "%-6s %3d files %6d events  %6.1f tracks/event  %7.0f clustered cells/event",
            set_name, len(rows), ev, sum(r.tracks for r in rows) / ev, sum(r.clustered_cells for r in rows) / ev,
        )  # fmt: skip
    log.info("wrote %d events in %.1f s (%.1f events/s) to %s", n_events, wall, n_events / wall, out)
    return manifest
