"""Costs of the evaluation's parts on the demo data, without Ray: inference, reading whole events, the baselines.

    python benchmarks/evaluate.py --checkpoint output/train/demo-small [--data output/samples/latest]
                                  [--split test] [--batch-size 256] [--files 2]

Prints model inference in samples/s and cells/s on this machine's CPU (or
``--device cuda``), and per MLTree set the cost per event of reading whole events
(tracks, clusters, cells), of the nearest-track rule (for the cones' cells) and
of the rule-based particle flow, with the tracks and cells per event they handled. One process,
one core's worth of work per stage: what each Ray task of `raypf evaluate` does.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import torch

from raypf.data.cell_table import CellTable
from raypf.data.mltree import read_cell_geometry
from raypf.data.parquet_batches import read_metadata
from raypf.evaluate import checkpoint as checkpoints
from raypf.evaluate.config import Template
from raypf.evaluate.event_baselines import cell_rows
from raypf.evaluate.events import read_event_batch
from raypf.evaluate.inference import input_columns, predict_cells
from raypf.evaluate.nearest import nearest_track
from raypf.evaluate.particle_flow import PFOptions, subtract
from raypf.evaluate.template import fit_on_train_split

log = logging.getLogger("benchmarks.evaluate")


def inference(ckpt, dataset: Path, metadata: dict, split: str, batch_size: int, device: str) -> None:
    model = checkpoints.build(ckpt, metadata).to(device)
    ds = pads.dataset(str(dataset / f"split={split}"), format="parquet", partitioning="hive")
    columns = [*input_columns(ckpt.config), "set"]
    tables = [pa.Table.from_batches([b]) for b in ds.to_batches(columns=columns, batch_size=batch_size)]
    predict_cells(model, tables[0], ckpt.config, device)  # warm-up
    t0, samples, cells = time.perf_counter(), 0, 0
    for t in tables:
        cells += predict_cells(model, t, ckpt.config, device).num_rows
        samples += t.num_rows
    wall = time.perf_counter() - t0
    print(f"inference ({device}, {torch.get_num_threads()} threads): {samples} samples, {cells} cells in {wall:.2f} s: "
          f"{samples / wall:,.0f} samples/s, {cells / wall:,.0f} cells/s")  # fmt: skip


def baselines(dataset: Path, metadata: dict, split: str, n_files: int) -> None:
    template, _ = fit_on_train_split(dataset, "binary", Template())
    geo = read_cell_geometry(metadata["geometry_file"])
    table = CellTable.build(geo, 0.2)
    by_set: dict[str, list[str]] = {}
    for item in metadata["inputs"]:
        by_set.setdefault(item["set"], []).append(item["path"])
    keys = pads.dataset(str(dataset / f"split={split}"), format="parquet", partitioning="hive").to_table(
        columns=["set", "file", "entry", "point_type", "cell_id"]
    )
    print(
        f"{'set':6} {'events':>7} {'tracks/ev':>9} {'cells/ev':>9} {'read ms/ev':>10} {'nearest ms/ev':>13} {'PF ms/ev':>9}"
    )
    for set_name, paths in by_set.items():
        n_ev = n_trk = n_cells = 0
        t_read = t_near = t_pf = 0.0
        for path in paths[:n_files]:
            mask = (keys["set"].to_numpy(zero_copy_only=False) == set_name) & (
                keys["file"].cast("string").to_numpy(zero_copy_only=False) == Path(path).name
            )
            rows = keys.filter(pa.array(mask))
            entries = np.unique(rows["entry"].to_numpy())
            if not len(entries):
                continue
            # the cones' cells, as raypf evaluate asks the nearest-track rule for them
            n_points = pc.list_value_length(rows["point_type"]).to_numpy()
            is_cell = pc.list_flatten(rows["point_type"]).to_numpy() == 0
            entry = np.repeat(rows["entry"].to_numpy(), n_points)[is_cell]
            cell_id = pc.list_flatten(rows["cell_id"]).to_numpy()[is_cell]
            t0 = time.perf_counter()
            events = read_event_batch(path, entries, table)
            t1 = time.perf_counter()
            nearest_track(events, cells=cell_rows(events, table, np.searchsorted(entries, entry), cell_id, path))
            t2 = time.perf_counter()
            subtract(events, template, PFOptions())
            t3 = time.perf_counter()
            t_read, t_near, t_pf = t_read + t1 - t0, t_near + t2 - t1, t_pf + t3 - t2
            n_ev += events.n_events
            n_trk += int(events.selected.sum())
            n_cells += len(events.cell_id)
        if n_ev:
            print(f"{set_name:6} {n_ev:7d} {n_trk / n_ev:9.1f} {n_cells / n_ev:9.0f} {1e3 * t_read / n_ev:10.2f} "
                  f"{1e3 * t_near / n_ev:13.2f} {1e3 * t_pf / n_ev:9.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", default=None, help="default: the checkpoint's dataset")
    parser.add_argument("--split", default="test")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--files", type=int, default=2, help="MLTree files per set for the baselines")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    ckpt = checkpoints.load(args.checkpoint)
    dataset = Path(args.data or ckpt.dataset_dir).resolve()
    metadata = read_metadata(dataset)
    inference(ckpt, dataset, metadata, args.split, args.batch_size, args.device)
    baselines(dataset, metadata, args.split, args.files)


if __name__ == "__main__":
    main()
