"""The ATLAS-like calorimeter: 19 layers of eta-phi cells, their noise, and who neighbours whom.

Cells are ordered by layer, side, eta region, |eta| bin and phi bin, so that
finding the cell under a point is index arithmetic, not a search. Numbers
follow CALORIMETER.md; each layer exists at +eta and -eta.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix

from raypf.data.mltree_schema import LAYERS as LAYER_NAMES

log = logging.getLogger(__name__)

TWO_PI = 2.0 * np.pi


@dataclass(frozen=True)
class Layer:
    name: str
    index: int
    sampling: int  # ATLAS CaloSampling number
    barrel: bool
    position: float  # r (barrel) or |z| (end-cap), mm
    depth_mm: float
    noise: float  # GeV
    regions: tuple[tuple[float, float, int, int], ...]  # (|eta| lo, |eta| hi, n_eta, n_phi) per side

    @property
    def lar(self) -> bool:
        return not self.name.startswith("Tile")


def _reg(lo: float, hi: float, deta: float, n_phi: int) -> tuple[float, float, int, int]:
    return (lo, hi, int(round((hi - lo) / deta)), n_phi)


_E = 0.025
_SPEC = [
    # name, sampling, barrel, position, depth, noise, regions
    ("EMB1", 1, True, 1532.0, 90.0, 0.015, (_reg(0.0, 1.475, _E / 8, 64),)),
    ("EMB2", 2, True, 1724.0, 330.0, 0.025, (_reg(0.0, 1.475, _E, 256),)),
    ("EMB3", 3, True, 1923.0, 40.0, 0.015, (_reg(0.0, 1.35, 0.05, 256),)),
    ("EME1", 5, False, 3790.0, 90.0, 0.015, (
        _reg(1.375, 1.5, _E, 64), _reg(1.5, 1.8, _E / 8, 64), _reg(1.8, 2.0, _E / 6, 64),
        _reg(2.0, 2.4, _E / 4, 64), _reg(2.4, 2.5, _E, 64), _reg(2.5, 3.2, 0.1, 64))),
    ("EME2", 6, False, 3984.0, 350.0, 0.030, (_reg(1.375, 2.5, _E, 256), _reg(2.5, 3.2, 0.1, 64))),
    ("EME3", 7, False, 4196.0, 50.0, 0.020, (_reg(1.5, 2.5, 0.05, 256),)),
    ("HEC0", 8, False, 4461.0, 280.0, 0.15, (_reg(1.5, 2.5, 0.1, 64), (2.5, 3.2, 4, 32))),
    ("HEC1", 9, False, 4870.0, 450.0, 0.15, (_reg(1.5, 2.5, 0.1, 64), (2.5, 3.2, 4, 32))),
    ("HEC2", 10, False, 5425.0, 450.0, 0.20, (_reg(1.5, 2.5, 0.1, 64), (2.5, 3.2, 4, 32))),
    ("HEC3", 11, False, 5905.0, 450.0, 0.25, (_reg(1.5, 2.5, 0.1, 64), (2.5, 3.2, 4, 32))),
    ("TileBar0", 12, True, 2450.0, 300.0, 0.025, (_reg(0.0, 1.0, 0.1, 64),)),
    ("TileBar1", 13, True, 2995.0, 800.0, 0.030, (_reg(0.0, 1.0, 0.1, 64),)),
    ("TileBar2", 14, True, 3630.0, 400.0, 0.035, (_reg(0.0, 1.0, 0.2, 64),)),
    ("TileGap1", 15, True, 3215.0, 100.0, 0.030, ((0.85, 0.95, 1, 64),)),
    ("TileGap2", 16, True, 3630.0, 100.0, 0.030, ((0.8, 1.0, 1, 64),)),
    ("TileGap3", 17, True, 2246.5, 100.0, 0.030, (_reg(1.0, 1.6, 0.1, 64),)),
    ("TileExt0", 18, True, 2450.0, 300.0, 0.025, (_reg(0.8, 1.7, 0.1, 64),)),
    ("TileExt1", 19, True, 2870.0, 800.0, 0.030, (_reg(0.8, 1.7, 0.1, 64),)),
    ("TileExt2", 20, True, 3480.0, 400.0, 0.035, ((0.8, 1.7, 5, 64),)),
]  # fmt: skip

LAYERS: tuple[Layer, ...] = tuple(
    Layer(name, i, sampling, barrel, pos, depth, noise, regions)
    for i, (name, sampling, barrel, pos, depth, noise, regions) in enumerate(_SPEC)
)
assert tuple(ly.name for ly in LAYERS) == LAYER_NAMES

#: Longitudinally adjacent layers whose overlapping cells are topo-cluster neighbours.
ADJACENT_LAYERS = (
    ("EMB1", "EMB2"), ("EMB2", "EMB3"), ("EMB3", "TileBar0"), ("TileBar0", "TileBar1"), ("TileBar1", "TileBar2"),
    ("EMB3", "TileExt0"), ("TileExt0", "TileExt1"), ("TileExt1", "TileExt2"),
    ("EME1", "EME2"), ("EME2", "EME3"), ("EME3", "HEC0"), ("EME2", "HEC0"),
    ("HEC0", "HEC1"), ("HEC1", "HEC2"), ("HEC2", "HEC3"),
    ("TileGap3", "TileExt0"), ("TileBar1", "TileGap1"), ("TileBar2", "TileGap2"),
)  # fmt: skip


@dataclass(frozen=True)
class _Block:
    """One (layer, side, region) grid of cells: n_eta x n_phi starting at ``offset``."""

    layer: int
    side: int  # +1 or -1
    region: int
    lo: float
    hi: float
    n_eta: int
    n_phi: int
    offset: int

    @property
    def deta(self) -> float:
        return (self.hi - self.lo) / self.n_eta

    def ids(self) -> np.ndarray:
        return self.offset + np.arange(self.n_eta * self.n_phi).reshape(self.n_eta, self.n_phi)

    def eta_edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Signed eta interval of each |eta| bin."""
        a = self.lo + self.deta * np.arange(self.n_eta)
        b = a + self.deta
        return (a, b) if self.side > 0 else (-b, -a)


@dataclass(frozen=True, eq=False)
class CaloGeometry:
    cell_id: np.ndarray  # uint64
    layer: np.ndarray  # int16
    sampling: np.ndarray  # int32
    eta: np.ndarray  # float32
    phi: np.ndarray
    deta: np.ndarray
    dphi: np.ndarray
    rperp: np.ndarray  # mm
    volume: np.ndarray  # mm^3
    sigma: np.ndarray  # GeV
    neighbours: csr_matrix  # symmetric bool adjacency
    blocks: tuple[_Block, ...]

    @property
    def n_cells(self) -> int:
        return len(self.cell_id)

    def find_cells(self, layer: int, eta: np.ndarray, phi: np.ndarray) -> np.ndarray:
        """Cell index under each (eta, phi) in ``layer``, -1 outside its acceptance."""
        eta = np.asarray(eta, dtype=np.float64)
        phi = np.asarray(phi, dtype=np.float64)
        out = np.full(eta.shape, -1, dtype=np.int64)
        a = np.abs(eta)
        pos = eta >= 0
        u = np.mod(phi + np.pi, TWO_PI) / TWO_PI  # in [0, 1)
        for b in self._by_layer[layer]:
            sel = (a >= b.lo) & (a < b.hi) & (pos == (b.side > 0))
            if not sel.any():
                continue
            ieta = np.minimum(((a[sel] - b.lo) / b.deta).astype(np.int64), b.n_eta - 1)
            iphi = np.minimum((u[sel] * b.n_phi).astype(np.int64), b.n_phi - 1)
            out[sel] = b.offset + ieta * b.n_phi + iphi
        return out

    @functools.cached_property
    def _by_layer(self) -> dict[int, list[_Block]]:
        out: dict[int, list[_Block]] = {i: [] for i in range(len(LAYERS))}
        for b in self.blocks:
            out[b.layer].append(b)
        return out


def _interval_pairs(a_lo, a_hi, b_lo, b_hi, touching: bool) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs of intervals from two small sets that overlap (or touch, if ``touching``)."""
    eps = 1e-9
    ov = np.minimum(a_hi[:, None], b_hi[None, :]) - np.maximum(a_lo[:, None], b_lo[None, :])
    return np.nonzero(ov > (-eps if touching else eps))


def _phi_pairs(na: int, nb: int, touching: bool) -> tuple[np.ndarray, np.ndarray]:
    """Overlapping phi bins of two grids starting at -pi, with wrap-around."""
    ea = np.arange(na + 1) / na
    eb = np.arange(nb + 1) / nb
    i, j = _interval_pairs(ea[:-1], ea[1:], eb[:-1], eb[1:], touching)
    if touching:  # the first and last bins touch across the wrap
        extra_i = np.array([0, na - 1]) if na > 1 or nb > 1 else np.empty(0, int)
        extra_j = np.array([nb - 1, 0]) if na > 1 or nb > 1 else np.empty(0, int)
        i, j = np.concatenate([i, extra_i]), np.concatenate([j, extra_j])
    return i, j


def _block_pairs(a: _Block, b: _Block, touching: bool) -> tuple[np.ndarray, np.ndarray]:
    """Cell pairs between two blocks whose eta-phi rectangles overlap (or touch)."""
    ea_lo, ea_hi = a.eta_edges()
    eb_lo, eb_hi = b.eta_edges()
    ie, je = _interval_pairs(ea_lo, ea_hi, eb_lo, eb_hi, touching)
    ip, jp = _phi_pairs(a.n_phi, b.n_phi, touching)
    if len(ie) == 0 or len(ip) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    src = a.offset + (ie[:, None] * a.n_phi + ip[None, :]).ravel()
    dst = b.offset + (je[:, None] * b.n_phi + jp[None, :]).ravel()
    return src.astype(np.int64), dst.astype(np.int64)


def _grid_pairs(b: _Block) -> tuple[np.ndarray, np.ndarray]:
    """The 8-neighbourhood inside one block, phi wrapping around."""
    g = b.ids()
    src, dst = [], []
    right = np.roll(g, -1, axis=1)
    src.append(g.ravel())
    dst.append(right.ravel())  # phi neighbour
    if b.n_eta > 1:
        for shift in (0, 1, -1):  # eta neighbour and the two diagonals
            src.append(g[:-1].ravel())
            dst.append(np.roll(g[1:], shift, axis=1).ravel())
    return np.concatenate(src), np.concatenate(dst)


def _neighbours(blocks: list[_Block], n: int) -> csr_matrix:
    src, dst = [], []
    for b in blocks:
        s, d = _grid_pairs(b)
        src.append(s)
        dst.append(d)
    by_layer: dict[int, list[_Block]] = {}
    for b in blocks:
        by_layer.setdefault(b.layer, []).append(b)
    # within a layer: across region boundaries, and across eta = 0
    for layer_blocks in by_layer.values():
        for i, a in enumerate(layer_blocks):
            for b in layer_blocks[i + 1 :]:
                if (a.side == b.side and (abs(a.hi - b.lo) < 1e-9 or abs(b.hi - a.lo) < 1e-9)) or (
                    a.side != b.side and a.lo == 0.0 and b.lo == 0.0
                ):
                    s, d = _block_pairs(a, b, touching=True)
                    src.append(s)
                    dst.append(d)
    # between longitudinally adjacent layers: overlapping rectangles
    index = {ly.name: ly.index for ly in LAYERS}
    for la, lb in ADJACENT_LAYERS:
        for a in by_layer[index[la]]:
            for b in by_layer[index[lb]]:
                if a.side == b.side:
                    s, d = _block_pairs(a, b, touching=False)
                    src.append(s)
                    dst.append(d)
    s, d = np.concatenate(src), np.concatenate(dst)
    keep = s != d
    s, d = s[keep], d[keep]
    m = coo_matrix((np.ones(2 * len(s), dtype=bool), (np.concatenate([s, d]), np.concatenate([d, s]))), shape=(n, n))
    out = m.tocsr()
    out.sum_duplicates()
    out.data[:] = True
    return out


def _cell_ids(layer: Layer, side: int, region: int, ieta: np.ndarray, iphi: np.ndarray) -> np.ndarray:
    """Unique 64-bit IDs: LAr flag (bit 63), sampling, side, region, eta and phi indices."""
    v = (np.uint64(layer.sampling) << np.uint64(56)) | (np.uint64(side > 0) << np.uint64(55))
    v |= np.uint64(region) << np.uint64(48)
    v = v | (ieta.astype(np.uint64) << np.uint64(24)) | iphi.astype(np.uint64)
    return v | (np.uint64(1) << np.uint64(63)) if layer.lar else v


@functools.lru_cache(maxsize=4)
def build_geometry(seed: int = 12345) -> CaloGeometry:
    """Build (once per process) every cell, its noise and the neighbour graph."""
    rng = np.random.default_rng(seed)
    blocks, cols = [], {k: [] for k in ("id", "layer", "sampling", "eta", "phi", "deta", "dphi", "rperp", "volume", "sigma")}
    offset = 0
    for ly in LAYERS:
        for side in (-1, 1):
            for r, (lo, hi, n_eta, n_phi) in enumerate(ly.regions):
                b = _Block(ly.index, side, r, lo, hi, n_eta, n_phi, offset)
                blocks.append(b)
                ieta, iphi = np.divmod(np.arange(n_eta * n_phi), n_phi)
                deta, dphi = b.deta, TWO_PI / n_phi
                a_lo = lo + ieta * deta
                a_mid = a_lo + 0.5 * deta
                if ly.barrel:
                    rperp = np.full(len(ieta), ly.position)
                    dz = ly.position * (np.sinh(a_lo + deta) - np.sinh(a_lo))
                    volume = dz * ly.position * dphi * ly.depth_mm
                else:
                    rperp = ly.position / np.sinh(a_mid)
                    r_in, r_out = ly.position / np.sinh(a_lo + deta), ly.position / np.sinh(a_lo)
                    volume = 0.5 * dphi * (r_out**2 - r_in**2) * ly.depth_mm
                cols["id"].append(_cell_ids(ly, side, r, ieta, iphi))
                cols["layer"].append(np.full(len(ieta), ly.index, np.int16))
                cols["sampling"].append(np.full(len(ieta), ly.sampling, np.int32))
                cols["eta"].append(side * a_mid)
                cols["phi"].append(-np.pi + (iphi + 0.5) * dphi)
                cols["deta"].append(np.full(len(ieta), deta))
                cols["dphi"].append(np.full(len(ieta), dphi))
                cols["rperp"].append(rperp)
                cols["volume"].append(volume)
                cols["sigma"].append(ly.noise * np.exp(0.1 * rng.standard_normal(len(ieta))))
                offset += n_eta * n_phi
    f32 = lambda k: np.concatenate(cols[k]).astype(np.float32)  # noqa: E731
    geo = CaloGeometry(
        cell_id=np.concatenate(cols["id"]),
        layer=np.concatenate(cols["layer"]),
        sampling=np.concatenate(cols["sampling"]),
        eta=f32("eta"),
        phi=f32("phi"),
        deta=f32("deta"),
        dphi=f32("dphi"),
        rperp=f32("rperp"),
        volume=f32("volume"),
        sigma=f32("sigma"),
        neighbours=_neighbours(blocks, offset),
        blocks=tuple(blocks),
    )
    log.debug("built calorimeter geometry: %d cells, %d neighbour links", geo.n_cells, geo.neighbours.nnz // 2)
    return geo
