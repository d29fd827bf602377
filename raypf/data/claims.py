"""Handing entry ranges to whichever worker is free: each range is claimed once, by creating a file.

Preprocessing runs one long Ray task per worker (a lane) instead of many short ones. Ray Data
notices a finished task only at its next poll (every 0.1 s) and then has to lease a worker for
the next one: with two busy workers that left each idle ~0.2 s between tasks, and tasks of a few
seconds each still ended up to a task apart. A lane works through its own share of the ranges
first, in order (so it reads one file after another), then takes the ranges nobody has started
yet from the end of the list, where the other lanes will get to them last: the lanes finish within
one range of each other whatever their speed.

A claim is a file created with ``O_EXCL`` in a directory inside the staging directory, which every
worker writes its Parquet parts into anyway (so it is on a filesystem they all see). A lane that
dies after claiming a range leaves it claimed and unprocessed; the driver checks that every range
reported back and runs the missing ones again without claims.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence


def claim(directory: str, index: int) -> bool:
    """Claim range ``index``: True for the one caller that creates its file, False for every other."""
    try:
        fd = os.open(os.path.join(directory, str(index)), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def claimed_order(home: Sequence[int], n_ranges: int, directory: str | None) -> Iterator[int]:
    """The ranges this lane processes, each claimed just before it is yielded.

    ``home`` first, in order, then any of ``range(n_ranges)`` still unclaimed, from the last
    back. Without a claims ``directory``, exactly ``home`` (the rerun of ranges a lost lane held).
    """
    if directory is None:
        yield from home
        return
    for index in home:
        if claim(directory, index):
            yield index
    for index in range(n_ranges - 1, -1, -1):
        if claim(directory, index):
            yield index
