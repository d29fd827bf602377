"""The cell geometry in the form sample building needs, built once and shared read-only by every task.

Two things make per-event work cheap: a hash table from 64-bit cell ID to cell
index (a sorted-array search costs ~18 dependent probes per cell; the hash
needs one or two, in a compiled loop), and an eta-phi grid with cells numbered
grid-cell by grid-cell: the table holds the cells in (grid cell, CellGeo
position) order, so that an event's cells sorted by index are grouped by grid
cell and a cone search is a few contiguous ranges per track. That order also
puts a cluster's cells near each other in memory: each per-cell array read for
them touches a few cache lines rather than one per cell (building samples is
~9 % faster than with the CellGeo order).
All arrays are plain numpy so that ``ray.put`` stores them once and every
task maps them without a copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import raypf_kernels as _kernels
from raypf.data.mltree import CellGeometry, MLTreeError

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # also in raypf_kernels.c

#: The eta-phi grid spans |eta| <= ETA_GRID; anything beyond lands in the edge rows.
ETA_GRID = 6.0


@dataclass(frozen=True, eq=False)
class Grid:
    """Rows in eta of width ``w_eta``, columns in phi of width ``w_phi``, cell (row, col) = row * n_phi + col."""

    eta0: float
    w_eta: float
    n_eta: int
    w_phi: float
    n_phi: int

    @classmethod
    def for_cone(cls, radius: float, bins_per_radius: int = 2) -> Grid:
        w = radius / bins_per_radius
        n_eta = int(np.ceil(2 * ETA_GRID / w))
        n_phi = int(np.ceil(2 * np.pi / w))
        return cls(eta0=-ETA_GRID, w_eta=w, n_eta=n_eta, w_phi=2 * np.pi / n_phi, n_phi=n_phi)

    @property
    def size(self) -> int:
        return self.n_eta * self.n_phi

    def row(self, eta: np.ndarray) -> np.ndarray:
        return np.clip(np.floor((np.asarray(eta, np.float64) - self.eta0) / self.w_eta), 0, self.n_eta - 1).astype(np.int64)

    def col(self, phi: np.ndarray) -> np.ndarray:
        c = np.floor((np.asarray(phi, np.float64) + np.pi) / self.w_phi).astype(np.int64)
        return np.mod(c, self.n_phi)

    def cell(self, eta: np.ndarray, phi: np.ndarray) -> np.ndarray:
        return self.row(eta) * self.n_phi + self.col(phi)


@dataclass(frozen=True, eq=False)
class CellTable:
    """Per-cell arrays indexed by cell index (cells in grid order, see above) and the ID hash table."""

    id: np.ndarray  # uint64
    sampling: np.ndarray  # int8
    eta: np.ndarray  # float32
    phi: np.ndarray  # float32
    x: np.ndarray  # float32, mm
    y: np.ndarray
    z: np.ndarray
    sigma: np.ndarray  # float32, GeV
    deta: np.ndarray  # float32, the cell's size in eta
    dphi: np.ndarray  # float32, in phi
    grid_cell: np.ndarray  # int64 grid cell of each cell, non-decreasing
    hash_ids: np.ndarray  # uint64 table
    hash_pos: np.ndarray  # int32 cell index per slot, -1 empty
    hash_shift: int
    grid: Grid

    def __len__(self) -> int:
        return len(self.id)

    @classmethod
    def build(cls, geo: CellGeometry, radius: float) -> CellTable:
        grid = Grid.for_cone(radius)
        grid_cell = grid.cell(geo.eta.astype(np.float32), geo.phi.astype(np.float32))
        order = np.argsort(grid_cell, kind="stable")  # grid cell, then CellGeo position
        eta = geo.eta[order].astype(np.float32)
        phi = geo.phi[order].astype(np.float32)
        r = geo.rperp[order].astype(np.float64)
        ids = np.ascontiguousarray(geo.id[order])
        hash_ids, hash_pos, shift = _build_hash(ids)
        return cls(
            id=ids,
            sampling=geo.sampling[order].astype(np.int8),
            eta=eta,
            phi=phi,
            x=(r * np.cos(phi)).astype(np.float32),
            y=(r * np.sin(phi)).astype(np.float32),
            z=(r * np.sinh(eta.astype(np.float64))).astype(np.float32),
            sigma=geo.sigma[order].astype(np.float32),
            deta=geo.deta[order].astype(np.float32),
            dphi=geo.dphi[order].astype(np.float32),
            grid_cell=grid_cell[order],
            hash_ids=hash_ids,
            hash_pos=hash_pos,
            hash_shift=shift,
            grid=grid,
        )

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        """Cell index of each ID, -1 where the geometry has no such cell."""
        ids = np.ascontiguousarray(ids, dtype=np.uint64)
        out = np.empty(len(ids), dtype=np.int64)
        _kernels.lookup(ids, self.hash_ids, self.hash_pos, int(self.hash_shift), out)  # linear probing, ~1 probe per ID
        return out


def unknown_cell(path: str, cell_id: int) -> MLTreeError:
    """The error for a clustered cell that the geometry lacks, worded alike wherever cells are looked up."""
    return MLTreeError(f"{path}: branch 'cluster_cell_ID' has cell ID {cell_id} that the CellGeo tree does not list")


def _build_hash(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Open addressing with linear probing at load <= 1/4; returns (ids, positions, shift)."""
    n = len(ids)
    bits = max(4, int(np.ceil(np.log2(max(n, 1) * 4))))
    size = 1 << bits
    table_ids = np.zeros(size, dtype=np.uint64)
    table_pos = np.full(size, -1, dtype=np.int32)
    shift = 64 - bits
    slot = ((ids.astype(np.uint64) * _GOLDEN) >> np.uint64(shift)).astype(np.int64)
    pending = np.arange(n)
    step = 0
    while len(pending):
        s = (slot[pending] + step) & (size - 1)
        free = table_pos[s] < 0
        # among pending keys aiming at the same free slot, the first wins this round
        cand = pending[free]
        uniq, first = np.unique(s[free], return_index=True)
        table_ids[uniq] = ids[cand[first]]
        table_pos[uniq] = cand[first]
        placed = np.zeros(len(pending), dtype=bool)
        placed[np.nonzero(free)[0][first]] = True
        pending = pending[~placed]
        step += 1
    return table_ids, table_pos, shift
