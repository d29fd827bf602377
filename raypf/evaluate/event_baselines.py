"""The nearest-track and particle-flow baselines on the very cells the model scored.

Both need whole events, which a sample's cone does not hold: every track of
the event (the nearest one may lie outside the cone; the particle flow
subtracts tracks in descending pT) and whole topo-clusters. So they run on the
events of the MLTree file the samples came from, and their answers are
looked up for each predicted cell by (entry, track, cell ID).
"""

from __future__ import annotations

import glob
import os
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from raypf.config import ConfigError
from raypf.data.cell_table import CellTable
from raypf.evaluate.events import EventBatch, read_event_batch
from raypf.evaluate.nearest import nearest_track
from raypf.evaluate.particle_flow import PFOptions, subtract
from raypf.evaluate.template import EpTemplate


def mltree_files(metadata: dict, overrides: dict[str, list[str]] | None, source: str) -> dict[tuple[str, str], str]:
    """(set, file name) -> MLTree path: the dataset's recorded inputs, or ``baselines.mltree`` globs for a set."""
    found: dict[tuple[str, str], str] = {}
    for item in metadata.get("inputs", []):
        found[(item["set"], Path(item["path"]).name)] = item["path"]
    for set_name, patterns in (overrides or {}).items():
        paths = sorted(p for pattern in patterns for p in glob.glob(str(Path(pattern).expanduser())))
        if not paths:
            raise ConfigError(f"{source}: key 'baselines.mltree.{set_name}': no file matches {patterns}")
        for p in paths:
            found[(set_name, Path(p).name)] = str(Path(p).resolve())
    return found


def add_event_baselines(
    cells: pa.Table,
    path: str,
    table: CellTable,
    template: EpTemplate,
    options: PFOptions,
) -> pa.Table:
    """``cells`` (predictions of one MLTree file) with ``nearest_focal`` and ``pf_fraction`` columns added.

    ``nearest_focal``: the focal track is the nearest track to the cell. ``pf_fraction``: the share of
    the cell's energy that the rule-based particle flow subtracted for the focal track.
    """
    entry = cells.column("entry").to_numpy()
    track = cells.column("track_index").to_numpy().astype(np.int64)
    cell_id = cells.column("cell_id").to_numpy()
    entries = np.unique(entry)
    events = read_event_batch(path, entries, table)
    e = np.searchsorted(entries, entry)
    n_trk = np.diff(events.track_offsets)
    if (track >= n_trk[e]).any():
        bad = int(np.argmax(track >= n_trk[e]))
        raise ValueError(
            f"{path}: entry {int(entry[bad])} has no track {int(track[bad])}; the samples do not come from this file"
        )
    track_row = events.track_offsets[e] + track
    cell_row = cell_rows(events, table, e, cell_id, path)

    nearest = nearest_track(events, cells=cell_row)[cell_row] == track_row
    t, c, f = subtract(events, template, options)
    n_cells = len(events.cell_id)
    pf_key = t.astype(np.int64) * n_cells + c
    order = np.argsort(pf_key)
    pf_key, f = pf_key[order], f[order]
    want = track_row * n_cells + cell_row
    pos = np.clip(np.searchsorted(pf_key, want), 0, max(len(pf_key) - 1, 0))
    hit = (pf_key[pos] == want) if len(pf_key) else np.zeros(len(want), dtype=bool)
    pf_fraction = np.where(hit, f[pos] if len(f) else 0.0, 0.0).astype(np.float32)
    return cells.append_column("nearest_focal", pa.array(nearest)).append_column("pf_fraction", pa.array(pf_fraction))


def cell_rows(events: EventBatch, table: CellTable, e: np.ndarray, cell_id: np.ndarray, path: str) -> np.ndarray:
    """Row in ``events``' cells of each (event, cell ID)."""
    n_geo = len(table)
    batch_event = np.repeat(events.cluster_event(), np.diff(events.cell_offsets))
    batch_key = batch_event * n_geo + table.lookup(events.cell_id)
    order = np.argsort(batch_key)
    want = e * n_geo + table.lookup(cell_id)
    pos = np.clip(np.searchsorted(batch_key[order], want), 0, max(len(order) - 1, 0))
    found = batch_key[order][pos] == want if len(order) else np.zeros(len(want), dtype=bool)
    if not found.all():
        bad = int(np.argmin(found))
        raise ValueError(
            f"{path}: cell {int(cell_id[bad])} of a sample is in no cluster of entry {int(events.entry[e[bad]])}"
        )
    return order[pos]


def run_event_baselines(
    raw: Path, out: Path, files: dict | None, metadata: dict, template: EpTemplate, options: dict, source: str
) -> list[tuple[str, Path]]:
    """Per MLTree file, a Ray task adds the event-level baselines to its cells; returns (set, part) pairs."""
    import ray

    jobs = []
    for set_dir in sorted(raw.glob("set=*")):
        set_name = set_dir.name.removeprefix("set=")
        for file_dir in sorted(set_dir.glob("file=*")):
            name = file_dir.name.removeprefix("file=")
            mltree = None
            if files is not None:
                mltree = files.get((set_name, name))
                if mltree is None or not Path(mltree).exists() and "://" not in mltree:
                    raise ConfigError(
                        f"{source}: key 'baselines.mltree.{set_name}': MLTree file {mltree or name} of set {set_name} not found "
                        "(give its location, or baselines.event_level: false)"
                    )
            (out / set_name).mkdir(parents=True, exist_ok=True)
            jobs.append((set_name, name, str(file_dir), str(out / set_name / f"{Path(name).stem}.parquet"), mltree))
    table = None
    if files is not None:
        from raypf.data.cell_table import CellTable
        from raypf.data.mltree import read_cell_geometry

        geo = read_cell_geometry(metadata["geometry_file"])
        table = ray.put(CellTable.build(geo, 0.2))  # once, shared zero-copy by every task
    task = ray.remote(num_cpus=1)(file_baselines)
    refs = [task.remote(*job, table, template.to_dict(), options) for job in jobs]
    done = ray.get(refs)
    return [(job[0], Path(p)) for job, p in zip(jobs, done)]


def file_baselines(
    set_name: str, file: str, part: str, out: str, mltree: str | None, table, template: dict, options: dict
) -> str:
    """One MLTree file's cells (the directory ``part``): sorted by sample and point, event-level baselines added,
    written to ``out``.

    The partitioned write kept ``set`` and ``file`` in the directory names only; they go back in as columns.
    """
    cells = pq.read_table(part, partitioning=None)  # every Parquet file the inference wrote for this MLTree file
    for i, (name, value) in enumerate((("set", set_name), ("file", file))):
        if name in cells.column_names:
            cells = cells.drop_columns(name)
        cells = cells.add_column(i, name, pa.DictionaryArray.from_arrays(np.zeros(cells.num_rows, np.int32), [value]))
    cells = cells.sort_by([("entry", "ascending"), ("track_index", "ascending"), ("point", "ascending")])
    if mltree is not None:
        cells = add_event_baselines(cells, mltree, table, EpTemplate.from_dict(template), PFOptions(**options))
    tmp = f"{out}.{uuid.uuid4().hex[:8]}.tmp"
    pq.write_table(cells, tmp)
    os.replace(tmp, out)
    return out
