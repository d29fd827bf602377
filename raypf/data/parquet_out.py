"""Writing the samples dataset so that a reader never sees half of it.

Tasks write into a staging directory beside the final one; each Parquet file
appears there by rename. Only when every task has finished (and the files of
skipped inputs are removed) is the staging directory swapped in for the old
dataset, so a crash or a failed file leaves the previous dataset, or nothing,
never a mixture.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

METADATA = "_metadata.json"  # leading underscore: pyarrow dataset readers skip it
LATEST = "latest"


def part_name(file_index: int, path: str, start: int) -> str:
    """File name of one task's output: input file number and stem, first entry."""
    stem = Path(path.rstrip("/")).name.rsplit(".", 1)[0]
    return f"f{file_index:05d}-{stem}-{start:09d}.parquet"


def write_part(
    table: pa.Table,
    root: Path,
    split: str,
    set_name: str,
    name: str,
    compression: str,
    level: int | None,
    row_group: int,
) -> Path:
    """Write one table to ``root/split=<split>/set=<set>/<name>`` via a temporary name.

    Row groups of ``row_group`` samples are the unit that training's sampled epochs read, so an
    epoch decodes about the samples it uses rather than whole files.
    """
    directory = root / f"split={split}" / f"set={set_name}"
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / name
    tmp = directory / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        pq.write_table(
            table,
            tmp,
            compression=None if compression == "none" else compression,
            compression_level=level if compression == "zstd" else None,
            use_dictionary=["file"],
            write_statistics=["file", "run", "event", "entry"],
            row_group_size=row_group,
        )
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return final


def remove_parts(root: Path, file_index: int) -> int:
    """Remove every part written from input file ``file_index`` (a skipped bad file); returns how many."""
    parts = list(root.glob(f"split=*/set=*/f{file_index:05d}-*.parquet"))
    for p in parts:
        p.unlink()
    return len(parts)


def staging_dir(output_dir: Path, dataset: str) -> Path:
    path = output_dir / f".staging-{dataset}-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    return path


def publish(staging: Path, final: Path, metadata: dict) -> None:
    """Write the metadata into ``staging`` and swap it in for ``final``; point ``latest`` at it."""
    tmp = staging / f".{METADATA}.tmp"
    tmp.write_text(json.dumps(metadata, indent=2))
    os.replace(tmp, staging / METADATA)
    swap_dir(staging, final)
    link = final.parent / LATEST
    tmp_link = final.parent / f".{LATEST}.{uuid.uuid4().hex[:8]}"
    os.symlink(final.name, tmp_link)
    os.replace(tmp_link, link)


def swap_dir(staging: Path, final: Path) -> None:
    """Put the finished directory ``staging`` in place of ``final`` (a reader sees the old one or the new one)."""
    old = None
    if final.exists():
        old = final.with_name(f".old-{final.name}-{uuid.uuid4().hex[:8]}")
        os.replace(final, old)
    os.replace(staging, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
