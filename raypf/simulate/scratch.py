"""Reusable lookup tables over a batch's cell ids.

Dense tables (one slot per cell of every event in a batch) turn lookups into
gathers, but filling tens of MB per batch costs as much as the work itself.
A Scratch keeps one table per process, hands it out already filled, and
resets only the slots a batch touched.
"""

from __future__ import annotations

import numpy as np


class Scratch:
    """A table of at least ``size`` slots, all equal to ``fill`` on every ``take`` (``fill=None``: no guarantee)."""

    def __init__(self, dtype, fill) -> None:
        self._dtype = np.dtype(dtype)
        self._fill = fill
        self._table = np.empty(0, dtype=self._dtype)
        self._busy = False

    def take(self, size: int) -> np.ndarray:
        if self._busy:
            raise RuntimeError("scratch table is already in use")
        if len(self._table) < size:
            n = max(size, int(1.25 * len(self._table)))
            self._table = np.empty(n, dtype=self._dtype) if self._fill is None else np.full(n, self._fill, self._dtype)
        self._busy = True
        return self._table

    def give_back(self, *touched: np.ndarray) -> None:
        if self._fill is not None:
            for idx in touched:
                self._table[idx] = self._fill
        self._busy = False
