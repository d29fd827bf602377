"""Train/val/test by event: a stable hash of (run, event number), never per sample.

Two tracks of one event share cells; splitting per sample (as the seed did)
would put the same cells in training and test. The hash is SplitMix64, pure
integer arithmetic, so the split is the same on every machine, numpy
version and re-run, whatever the order or grouping of the events.
"""

from __future__ import annotations

import numpy as np

SPLITS: tuple[str, ...] = ("train", "val", "test")

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GAMMA = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    x = x + _GAMMA
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def event_uniform(run: np.ndarray, event: np.ndarray, seed: int = 0) -> np.ndarray:
    """A number in [0, 1) per event, a fixed function of (seed, run, event)."""
    run = np.asarray(run).astype(np.int64).view(np.uint64)
    event = np.asarray(event).astype(np.int64).view(np.uint64)
    with np.errstate(over="ignore"):
        h = _mix(_mix(_mix(np.uint64(seed) + np.zeros_like(run)) ^ run) ^ event)
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def assign_splits(run: np.ndarray, event: np.ndarray, train: float, val: float, seed: int = 0) -> np.ndarray:
    """Split code per event: 0 train, 1 val, 2 test (indices into ``SPLITS``)."""
    u = event_uniform(run, event, seed)
    return np.where(u < train, 0, np.where(u < train + val, 1, 2)).astype(np.int8)
