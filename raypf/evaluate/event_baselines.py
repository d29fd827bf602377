"""The nearest-track and particle-flow baselines on the very cells the model scored.

Both need whole events, which a sample's cone does not hold: every track of
the event (the nearest one may lie outside the cone; the particle flow
subtracts tracks in descending pT) and whole topo-clusters. So they run on the
events of the MLTree file the samples came from, and their answers are
looked up for each predicted cell by (entry, track, cell ID).
"""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
import pyarrow as pa

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
    deta: np.ndarray,
    dphi: np.ndarray,
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
    events = read_event_batch(path, entries, table, deta, dphi)
    e = np.searchsorted(entries, entry)
    n_trk = np.diff(events.track_offsets)
    if (track >= n_trk[e]).any():
        bad = int(np.argmax(track >= n_trk[e]))
        raise ValueError(
            f"{path}: entry {int(entry[bad])} has no track {int(track[bad])}; the samples do not come from this file"
        )
    track_row = events.track_offsets[e] + track
    cell_row = _cell_rows(events, table, e, cell_id, path)

    nearest = nearest_track(events)[cell_row] == track_row
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


def _cell_rows(events: EventBatch, table: CellTable, e: np.ndarray, cell_id: np.ndarray, path: str) -> np.ndarray:
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
