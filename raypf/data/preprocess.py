"""`raypf preprocess`: a Ray Data pipeline from MLTree ROOT files to the samples dataset.

The work items are (file, entry range) pairs sized by compressed bytes. Ray
Data runs one long task per worker (a lane), which takes ranges one at a time,
its own share first and then whatever no other lane has started
(``claims``), so it holds only one range's arrays. The cell geometry is read once on the driver,
turned into a ``CellTable`` and ``ray.put`` once; every task receives the
reference and maps the arrays from the object store without a copy. Each
task reads its range, builds the samples (``samples.build_samples``) and
writes its Parquet parts into a staging directory itself, returning only its
counts: the samples never travel through the object store, and the counts
make exact metadata without a second pass. The dataset is published by
swapping the staging directory in (``parquet_out.publish``), once every range
has reported back. While the driver
reads the headers and the geometry, one warm-up task per worker imports what
the tasks need, so the first range does not wait for it.
"""

from __future__ import annotations

import datetime
import functools
import itertools
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from raypf.config import ConfigError
from raypf.data.mltree import MLTreeError, read_cell_geometry
from raypf.data.preprocess_config import PreprocessConfig
from raypf.data.split import SPLITS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InputFile:
    index: int
    set: str
    path: str
    events: int = 0
    compressed_bytes: int = 0
    clusters: tuple[int, ...] = ()  # entries where a basket of every branch read starts (and the last entry + 1)


def expand_inputs(cfg: PreprocessConfig) -> list[InputFile]:
    """Resolve every path or glob of every set, in config order; a pattern matching nothing is a file that is missing."""
    import fsspec

    out: list[InputFile] = []
    for item in cfg.inputs:
        for pattern in map(cfg.resolve, item.paths):
            if any(ch in pattern for ch in "*?["):
                fs, _ = fsspec.core.url_to_fs(pattern)
                matches = sorted(fs.glob(pattern))
                protocol = pattern.split("://", 1)[0] + "://" if "://" in pattern else ""
                if not matches:
                    out.append(InputFile(len(out), item.set, pattern))  # reported as missing when opened
                for m in matches:
                    out.append(InputFile(len(out), item.set, protocol + m if protocol and "://" not in m else m))
            else:
                out.append(InputFile(len(out), item.set, pattern))
    return out


def _inspect(f: InputFile) -> InputFile:
    """Number of events, compressed bytes and basket clusters of the EventTree (headers only)."""
    import uproot

    from raypf.data.mltree import _open, _tree
    from raypf.data.mltree_schema import EVENT_TREE
    from raypf.data.samples import BRANCHES

    read = set(BRANCHES)
    with _open(f.path) as handle:
        tree = _tree(handle, f.path, EVENT_TREE)
        n = int(tree.num_entries)
        try:
            size = int(tree.compressed_bytes)
        except (uproot.KeyInFileError, AttributeError, ValueError):
            size = 0
        try:
            clusters = tuple(int(x) for x in tree.common_entry_offsets(filter_name=read.__contains__))
        except (uproot.KeyInFileError, AttributeError, ValueError):
            clusters = ()  # cuts stay where equal ranges put them
    return InputFile(f.index, f.set, f.path, n, size, clusters)


def plan(files: list[InputFile], cfg: PreprocessConfig) -> list[dict]:
    """Entry ranges of about ``task_megabytes`` compressed input each (or ``events_per_task`` events).

    A file is cut into equal ranges, so that it does not end in a remnant of a few events that
    costs a range's fixed overhead (basket reads, a Parquet file) for a handful of samples; each
    cut then moves to the nearest basket cluster boundary (``_align``).
    """
    tasks = []
    for f in files:
        if f.events == 0:
            continue
        if cfg.events_per_task:
            bounds = [*range(0, f.events, cfg.events_per_task), f.events]
        else:
            per_event = max(f.compressed_bytes / f.events, 1.0)
            n_ranges = -(-f.events // max(1, int(cfg.task_megabytes * 1e6 / per_event)))
            bounds = _align([i * f.events // n_ranges for i in range(n_ranges + 1)], f.clusters)
        for start, stop in itertools.pairwise(bounds):
            tasks.append({"index": len(tasks), "file_index": f.index, "set": f.set, "path": f.path, "start": start, "stop": stop})
    return tasks


def _align(bounds: list[int], clusters: tuple[int, ...]) -> list[int]:
    """``bounds`` with each inner cut moved to the nearest entry in ``clusters`` within a quarter of a range.

    A basket that a cut splits is read and decompressed by both ranges: on rho files (baskets
    of 810 events, ranges of 2,500) that is 5 % of the read. A cut with no cluster boundary
    near it stays where it is, so a file written as one basket is not read as one range.
    """
    if len(bounds) < 3 or len(clusters) < 3:
        return bounds
    edges = np.asarray(clusters, dtype=np.int64)
    inner = np.asarray(bounds[1:-1], dtype=np.int64)
    j = np.clip(np.searchsorted(edges, inner), 1, len(edges) - 1)
    lo, hi = edges[j - 1], edges[j]
    near = np.where(inner - lo <= hi - inner, lo, hi)
    step = (bounds[-1] - bounds[0]) / (len(bounds) - 1)
    cuts = np.where(np.abs(near - inner) <= step / 4, near, inner)
    cuts = cuts[(cuts > bounds[0]) & (cuts < bounds[-1])]
    return [bounds[0], *np.unique(cuts).tolist(), bounds[-1]]


_CELLS: dict = {}


def _shared(ref):
    """The object behind ``ref``, fetched once per worker process; its numpy arrays map the object store (no copy)."""
    import ray

    key = ref.hex()
    if key not in _CELLS:
        _CELLS.clear()
        _CELLS[key] = ray.get(ref)
    return _CELLS[key]


def process_ranges(
    batch: dict,
    ranges: list[dict],
    claims: str | None,
    cells_ref,
    options_json: str,
    staging: str,
    compression: str,
    level: int,
    row_group: int,
) -> Iterator[dict]:
    """Ray Data map function of one lane: ranges in (``batch`` is its own share), one row of counts per range out.

    The ranges processed are the share's and then any other still unclaimed
    (``claims.claimed_order``); each is read, built and written before the next is claimed,
    and its row is yielded at once, so that Ray Data's progress bar counts ranges.
    """
    from raypf.data.claims import claimed_order
    from raypf.data.preprocess_config import SampleOptions
    from raypf.malloc_tuning import keep_freed_memory

    keep_freed_memory()
    _freeze_imports()
    cells = _shared(cells_ref)
    opts = SampleOptions.model_validate_json(options_json)
    for index in claimed_order([int(i) for i in batch["index"]], len(ranges), claims):
        row = _process_range(ranges[index], cells, opts, Path(staging), compression, level, row_group)
        yield {"index": [index], **{key: [value] for key, value in row.items()}}


@functools.cache
def _freeze_imports() -> None:
    """Take everything the worker holds so far out of the cyclic garbage collector's sight, once per process.

    Ray, Ray Data, pandas, uproot and pyarrow leave ~190,000 tracked objects, none of them garbage;
    every full collection (a few per worker and run) walked them all, ~0.09 s each, while the
    tasks' own arrays are freed by reference counting anyway.
    """
    import gc

    gc.freeze()


def _process_range(item: dict, cells, opts, staging: Path, compression: str, level: int, row_group: int) -> dict:
    """One entry range: read, build, write its parts; its counts (or the error), CPU seconds and time span."""
    from raypf.data.mltree import read_columns
    from raypf.data.parquet_out import part_name, write_part
    from raypf.data.samples import BRANCHES, build_samples

    file_index, set_name, path = int(item["file_index"]), str(item["set"]), str(item["path"])
    start, stop = int(item["start"]), int(item["stop"])
    began = time.time()
    t0 = time.process_time()
    try:
        cols = read_columns(path, BRANCHES, start, stop)
        t1 = time.process_time()
        samples = build_samples(cols, cells, opts, path, start)
    except MLTreeError as err:
        cpu = [time.process_time() - t0, 0.0, 0.0]
        return {"file_index": file_index, "stats": "", "error": str(err), "cpu": cpu, "rss": _peak_rss(), "span": [began, time.time()]}
    del cols
    t2 = time.process_time()
    name = part_name(file_index, path, start)
    for split, table in samples.tables.items():
        write_part(table, staging, split, set_name, name, compression, level, row_group)
    stats = json.dumps(asdict(samples.stats))
    cpu = [t1 - t0, t2 - t1, time.process_time() - t2]  # read, build, write
    return {"file_index": file_index, "stats": stats, "error": "", "cpu": cpu, "rss": _peak_rss(), "span": [began, time.time()]}


def _peak_rss() -> int:
    """Peak resident memory of this worker process so far, bytes."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_preprocess(cfg: PreprocessConfig, source: str = "config", address: str | None = None) -> dict:
    """Build the samples dataset under ``output_dir/<dataset hash>``; return its metadata."""
    import shutil

    import ray

    from raypf.data import parquet_out
    from raypf.data.cell_table import CellTable
    from raypf.data.samples import ChunkStats
    from raypf.ray_utils import init_ray

    out_root = Path(cfg.output_dir).expanduser().resolve()
    try:
        out_root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"{source}: key 'output_dir': cannot create {out_root}: {err.strerror or err}") from None
    dataset = cfg.dataset_hash()
    final = out_root / dataset
    t_start = time.perf_counter()
    t_wall0 = time.time()  # task spans are wall-clock times from the workers

    files = expand_inputs(cfg)
    init_ray(address, cfg.workers)
    workers = cfg.workers or int(ray.cluster_resources().get("CPU", 1))
    warm = _warm_workers(files, workers)
    good: list[InputFile] = []
    skipped: dict[int, str] = {}
    for f in files:
        try:
            good.append(_inspect(f))
        except MLTreeError as err:
            _bad(cfg, skipped, f, str(err))
    if not good:
        raise MLTreeError("no readable input files" + "".join(f"\n  {m}" for m in skipped.values()))
    geometry_file, geometry = None, None
    for f in good:
        try:
            geometry = read_cell_geometry(f.path)
            geometry_file = f.path
            break
        except MLTreeError as err:
            _bad(cfg, skipped, f, str(err))
    if geometry is None:
        raise MLTreeError("no input file has a readable CellGeo tree" + "".join(f"\n  {m}" for m in skipped.values()))
    good = [f for f in good if f.index not in skipped]
    tasks = plan(good, cfg)
    n_events = sum(f.events for f in good)
    log.info("%d files, %d events, %d entry ranges; cell geometry (%d cells) from %s", len(good), n_events, len(tasks), len(geometry), geometry_file)

    cells_ref = ray.put(CellTable.build(geometry, cfg.samples.max_delta_r))
    staging = parquet_out.staging_dir(out_root, dataset)
    tally = _Tally()
    try:
        if tasks:
            fn_kwargs = {
                "ranges": tasks,
                "cells_ref": cells_ref,
                "options_json": cfg.samples.model_dump_json(),
                "staging": str(staging),
                "compression": cfg.parquet_compression,
                "level": cfg.parquet_compression_level,
                "row_group": cfg.parquet_row_group_samples,
            }
            claims = staging / ".claims"
            claims.mkdir()
            for row in _lanes(tasks, min(len(tasks), workers), str(claims), fn_kwargs):
                if error := tally.add(row):
                    _bad(cfg, skipped, files[int(row["file_index"])], error)
            if missing := [t for t in tasks if t["index"] not in tally.ranges]:
                log.warning("%d of %d ranges were claimed by a task that did not finish; processing them again", len(missing), len(tasks))
                for row in _lanes(missing, min(len(missing), workers), None, fn_kwargs):
                    if error := tally.add(row):
                        _bad(cfg, skipped, files[int(row["file_index"])], error)
            shutil.rmtree(claims)
        for index in skipped:
            parquet_out.remove_parts(staging, index)
        per_set: dict[str, ChunkStats] = {}
        for index, stats in tally.totals.items():
            if index not in skipped:
                per_set.setdefault(files[index].set, ChunkStats()).merge(stats)
        wall = time.perf_counter() - t_start
        timing = {"wall": wall, "startup": tally.first - t_wall0 if tasks else wall, "tasks": tally.last - tally.first if tasks else 0.0}
        metadata = _metadata(cfg, dataset, files, good, skipped, per_set, geometry_file, timing, tally.cpu, tally.peak_rss)
        parquet_out.publish(staging, final, metadata)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    del warm
    _log_summary(metadata, final)
    return metadata


@dataclass
class _Tally:
    """What the ranges' rows add up to: counts per input file, task CPU, peak memory, the tasks' time span."""

    ranges: set[int] = field(default_factory=set)
    totals: dict = field(default_factory=dict)  # input file index -> ChunkStats
    cpu: np.ndarray = field(default_factory=lambda: np.zeros(3))  # read, build, write
    peak_rss: int = 0
    first: float = np.inf
    last: float = -np.inf

    def add(self, row: dict) -> str:
        """Count one range's row; returns its error ("" if none), whose file the caller marks bad."""
        from raypf.data.samples import ChunkStats

        self.ranges.add(int(row["index"]))
        self.cpu += np.asarray(row["cpu"], dtype=float)
        self.peak_rss = max(self.peak_rss, int(row["rss"]))
        self.first, self.last = min(self.first, row["span"][0]), max(self.last, row["span"][1])
        if row["error"]:
            return str(row["error"])
        self.totals.setdefault(int(row["file_index"]), ChunkStats()).merge(ChunkStats(**json.loads(row["stats"])))
        return ""


def _warm_up(path: str) -> None:
    """Import what a task needs and open the first file by reading one event.

    A fresh worker spends ~1.1 s of CPU on this before its first range (Ray Data's import
    0.6-0.8 s, uproot's 0.2 s); run while the driver reads the headers and the geometry, it
    overlaps them instead of following them.
    Ray reuses the warmed worker processes for the pipeline's tasks. A bad file is not reported
    here: the task that reads it says what is wrong.
    """
    import ray.data  # noqa: F401

    from raypf.data import parquet_out  # noqa: F401
    from raypf.data.mltree import read_columns
    from raypf.data.samples import BRANCHES

    try:
        read_columns(path, BRANCHES, 0, 1)
    except Exception as err:  # noqa: BLE001
        log.debug("warm-up read of %s: %s", path, err)


def _warm_workers(files: list[InputFile], workers: int) -> list:
    """One warm-up task per worker, not waited for (the pipeline's first tasks queue behind them)."""
    import ray

    if not files:
        return []
    task = ray.remote(num_cpus=1)(_warm_up)
    return [task.remote(files[0].path) for _ in range(min(workers, 64))]


def _lanes(items: list[dict], lanes: int, claims: str | None, fn_kwargs: dict) -> Iterator[dict]:
    """Rows of counts, one per range as it ends, from ``lanes`` Ray Data tasks that share out ``items`` (``process_ranges``)."""
    import ray

    ds = ray.data.from_items(items, override_num_blocks=max(1, lanes)).map_batches(
        process_ranges,
        batch_size=None,
        fn_kwargs={**fn_kwargs, "claims": claims},
        num_cpus=1,
        compute=ray.data.TaskPoolStrategy(size=max(1, lanes)),
    )
    # Ray Data packs a task's outputs into blocks of up to 128 MiB, so a lane's few-byte rows would reach
    # the driver and its progress bar all at once when the lane ends; a 1-byte target makes each row its
    # own block, sent as its range ends (this dataset's own context: the global one is untouched). Read
    # without prefetching, since `iter_rows` holds each block back until the next one has arrived.
    ds.context.target_max_block_size = 1
    for block in ds.iter_batches(batch_size=None, prefetch_batches=0, batch_format="pyarrow"):
        yield from block.to_pylist()


def _bad(cfg: PreprocessConfig, skipped: dict[int, str], f: InputFile, message: str) -> None:
    if cfg.on_bad_file == "fail":
        raise MLTreeError(message)
    if f.index not in skipped:
        log.warning("skipping %s", message)
        skipped[f.index] = message


def _percentiles(hist: list[int]) -> dict:
    if not hist or sum(hist) == 0:
        return {"p50": 0, "p99": 0, "max": 0}
    cdf = np.cumsum(hist) / sum(hist)
    return {
        "p50": int(np.searchsorted(cdf, 0.5)),
        "p99": int(np.searchsorted(cdf, 0.99)),
        "max": int(np.nonzero(hist)[0][-1]),
    }


def _metadata(cfg, dataset, files, good, skipped, per_set, geometry_file, timing, cpu, peak_rss) -> dict:
    from raypf.data.samples import CELL, FOCAL, OTHER, SCHEMA, ChunkStats

    total = ChunkStats()
    for stats in per_set.values():
        total.merge(stats)
    features = {}
    for ptype, feats in total.feature_moments.items():
        features[ptype] = {}
        for name, (n, s, s2, lo, hi) in feats.items():
            mean = s / n if n else 0.0
            std = float(np.sqrt(max(s2 / n - mean * mean, 0.0))) if n else 0.0
            features[ptype][name] = {"count": n, "mean": mean, "std": std, "min": lo, "max": hi}
    events_by_file = {f.index: f.events for f in good}
    return {
        "dataset": dataset,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "config": cfg.model_dump(mode="json"),
        "config_hash": dataset,
        "geometry_file": geometry_file,
        "inputs": [
            {"set": f.set, "path": f.path, "events": events_by_file.get(f.index, 0), "skipped": skipped.get(f.index)}
            for f in files
        ],
        "skipped_files": [{"path": files[i].path, "reason": m} for i, m in sorted(skipped.items())],
        "counts": {
            "events": total.events,
            "tracks": total.tracks,
            "samples": dict(zip(SPLITS, total.samples)),
            "events_per_split": dict(zip(SPLITS, total.events_per_split)),
            "per_set": {
                name: {
                    "events": s.events,
                    "tracks": s.tracks,
                    "samples": dict(zip(SPLITS, s.samples)),
                    "focal_cell_share": s.focal_cell_points / s.cell_points if s.cell_points else 0.0,
                }
                for name, s in per_set.items()
            },
            "policies": total.dropped,
        },
        "points": {
            **{split: _percentiles(h) for split, h in zip(SPLITS, total.point_hist)},
            "all": _percentiles([sum(x) for x in _pad(total.point_hist)]),
        },
        "feature_stats": {"split": "train", "by_point_type": features},
        "point_types": {"cell": CELL, "focal_track": FOCAL, "other_track": OTHER},
        "schema": {f.name: str(f.type) for f in SCHEMA},
        "wall_seconds": round(timing["wall"], 2),
        "startup_seconds": round(timing["startup"], 2),  # from the start to the first task's start
        "tasks_seconds": round(timing["tasks"], 2),  # from the first task's start to the last one's end
        "task_cpu_seconds": {"read": round(cpu[0], 3), "build": round(cpu[1], 3), "write": round(cpu[2], 3)},
        "peak_worker_rss_bytes": peak_rss,
    }


def _pad(hists: list[list[int]]) -> list[tuple[int, ...]]:
    n = max((len(h) for h in hists), default=0)
    return list(zip(*[h + [0] * (n - len(h)) for h in hists]))


def _log_summary(meta: dict, final: Path) -> None:
    c = meta["counts"]
    log.info("%-8s %8s %8s %9s %9s %9s %7s", "set", "events", "tracks", "train", "val", "test", "focal")
    for name, s in c["per_set"].items():
        sm = s["samples"]
        log.info(
            "%-8s %8d %8d %9d %9d %9d %6.1f%%",
            name, s["events"], s["tracks"], sm["train"], sm["val"], sm["test"], 100 * s["focal_cell_share"],
        )  # fmt: skip
    n_samples = sum(c["samples"].values())
    wall = meta["wall_seconds"]
    log.info(
        "%d events, %d samples in %.1f s (%.1f s of start-up): %.0f events/s, %.0f samples/s; points p50/p99/max %s",
        c["events"], n_samples, wall, meta["startup_seconds"], c["events"] / wall, n_samples / wall,
        "/".join(str(meta["points"]["all"][k]) for k in ("p50", "p99", "max")),
    )  # fmt: skip
    if c["policies"]:
        log.info("policies: %s", ", ".join(f"{k} {v}" for k, v in sorted(c["policies"].items())))
    for s in meta["skipped_files"]:
        log.warning("skipped %s: %s", s["path"], s["reason"])
    log.info("dataset: %s", final)
