"""The ATLAS-like calorimeter: 19 layers of eta-phi cells, their noise, and who neighbours whom.

Cells are ordered by layer, side, eta region, |eta| bin and phi bin, so that
finding the cell under a point is index arithmetic, not a search. Positions,
granularities and noise follow the ATLAS calorimeter (``_SPEC`` below); each
layer exists at +eta and -eta. Phi bins start at -pi.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix

from raypf.data.mltree_schema import LAYER_PLACEMENT
from raypf.data.mltree_schema import LAYERS as _SCHEMA_LAYERS

log = logging.getLogger(__name__)

#: The 19 layers in cell (and MLTree) order; one source of truth with the MLTree schema.
LAYER_NAMES: tuple[str, ...] = tuple(_SCHEMA_LAYERS)

TWO_PI = 2.0 * np.pi


@dataclass(frozen=True)
class Layer:
    """One sampling layer; ``regions`` are the eta regions of one side (the other mirrors them)."""

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
        """Liquid-argon layers (EM and HEC) get ATLAS-like IDs with bit 63 set."""
        return not self.name.startswith("Tile")


def _reg(lo: float, hi: float, deta: float, n_phi: int) -> tuple[float, float, int, int]:
    return (lo, hi, round((hi - lo) / deta), n_phi)


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
assert all(LAYER_PLACEMENT[ly.name] == (ly.sampling, ly.barrel, ly.position) for ly in LAYERS)

#: Longitudinally adjacent layers whose overlapping cells are topo-cluster neighbours. The third
#: entry, if any, names a layer between the two: they are linked only where that layer is absent
#: (EME2 reaches HEC0 directly only beyond EME3's |eta| < 2.5).
ADJACENT_LAYERS: tuple[tuple[str, ...], ...] = (
    ("EMB1", "EMB2"), ("EMB2", "EMB3"), ("EMB3", "TileBar0"), ("TileBar0", "TileBar1"), ("TileBar1", "TileBar2"),
    ("EMB3", "TileExt0"), ("TileExt0", "TileExt1"), ("TileExt1", "TileExt2"),
    ("EME1", "EME2"), ("EME2", "EME3"), ("EME3", "HEC0"), ("EME2", "HEC0", "EME3"),
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


@dataclass(frozen=True)
class _LayerTable:
    """Per-layer region arrays so ``find_cells`` is one pass of index arithmetic over all points."""

    lo: np.ndarray  # (R,) |eta| low edge of each region, ascending
    hi: np.ndarray  # (R,)
    deta: np.ndarray  # (R,)
    n_eta: np.ndarray  # (R,) int64
    n_phi: np.ndarray  # (R,) int64
    offset: np.ndarray  # (2, R) int64 first cell of (side, region); side 0 is eta < 0, 1 is eta >= 0


@dataclass(frozen=True, eq=False)
class CaloGeometry:
    """Every cell's identity, position, size and noise, and the topo-clustering neighbour graph."""

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
        """Cell index under each (eta, phi) in ``layer``, -1 outside its acceptance (or for non-finite input).

        Regions are half-open in |eta|, ``[lo, hi)``; phi wraps, so any real phi maps to a bin.
        Arithmetic on the cell ordering, so millions of shower spots cost a few array passes.
        """
        t = self._tables[layer]
        eta, phi = np.broadcast_arrays(np.asarray(eta, dtype=np.float64), np.asarray(phi, dtype=np.float64))
        shape = eta.shape
        eta, phi = eta.ravel(), phi.ravel()
        a = np.abs(eta)
        r = np.zeros(a.shape, dtype=np.intp)  # region: count of inner region edges at or below |eta|
        for edge in t.lo[1:]:
            r += a >= edge
        inside = (a >= t.lo[0]) & (a < t.hi[r]) & np.isfinite(phi)
        x = (a - t.lo[r]) / t.deta[r]
        x[~inside] = 0.0
        ieta = np.minimum(x.astype(np.int64), t.n_eta[r] - 1)
        u = (phi + np.pi) * (1.0 / TWO_PI)
        with np.errstate(invalid="ignore"):  # infinite phi: already outside
            u -= np.floor(u)  # in [0, 1]: cheaper than np.mod
        u[~inside] = 0.0
        n_phi = t.n_phi[r]
        iphi = np.minimum((u * n_phi).astype(np.int64), n_phi - 1)
        cell = t.offset[(eta >= 0).astype(np.intp), r] + ieta * n_phi + iphi
        cell[~inside] = -1
        return cell.reshape(shape)

    @functools.cached_property
    def _tables(self) -> tuple[_LayerTable, ...]:
        out = []
        for ly in LAYERS:
            blocks = sorted((b for b in self.blocks if b.layer == ly.index), key=lambda b: (b.side, b.lo))
            pos = [b for b in blocks if b.side > 0]
            offset = np.array([[b.offset for b in blocks if b.side < 0], [b.offset for b in pos]], dtype=np.int64)
            out.append(
                _LayerTable(
                    lo=np.array([b.lo for b in pos]),
                    hi=np.array([b.hi for b in pos]),
                    deta=np.array([b.deta for b in pos]),
                    n_eta=np.array([b.n_eta for b in pos], dtype=np.int64),
                    n_phi=np.array([b.n_phi for b in pos], dtype=np.int64),
                    offset=offset,
                )
            )
        return tuple(out)


_EPS = 1e-9


def _interval_pairs(
    a_lo: np.ndarray, a_hi: np.ndarray, b_lo: np.ndarray, b_hi: np.ndarray, touching: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs of intervals from two small sets that overlap (or touch, if ``touching``)."""
    ov = np.minimum(a_hi[:, None], b_hi[None, :]) - np.maximum(a_lo[:, None], b_lo[None, :])
    return np.nonzero(ov > (-_EPS if touching else _EPS))


def _phi_pairs(na: int, nb: int, touching: bool) -> tuple[np.ndarray, np.ndarray]:
    """Overlapping (or touching) phi bins of two grids starting at -pi, with wrap-around."""
    ea = np.arange(na + 1) / na
    eb = np.arange(nb + 1) / nb
    i, j = _interval_pairs(ea[:-1], ea[1:], eb[:-1], eb[1:], touching)
    if touching:  # the first and last bins touch across the wrap
        i, j = np.concatenate([i, [0, na - 1]]), np.concatenate([j, [nb - 1, 0]])
    return i, j


def _block_pairs(
    a: _Block, b: _Block, touching: bool, exclude: tuple[float, float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Cell pairs between two blocks whose eta-phi rectangles overlap (or touch).

    ``exclude`` is an |eta| range: pairs whose eta overlap lies entirely inside it are dropped.
    """
    ea_lo, ea_hi = a.eta_edges()
    eb_lo, eb_hi = b.eta_edges()
    ie, je = _interval_pairs(ea_lo, ea_hi, eb_lo, eb_hi, touching)
    if exclude is not None and len(ie):
        o1 = np.abs(np.maximum(ea_lo[ie], eb_lo[je]))
        o2 = np.abs(np.minimum(ea_hi[ie], eb_hi[je]))
        lo, hi = np.minimum(o1, o2), np.maximum(o1, o2)
        keep = (np.minimum(hi, exclude[0]) - lo > _EPS) | (hi - np.maximum(lo, exclude[1]) > _EPS)
        ie, je = ie[keep], je[keep]
    ip, jp = _phi_pairs(a.n_phi, b.n_phi, touching)
    if len(ie) == 0 or len(ip) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    src = a.offset + (ie[:, None] * a.n_phi + ip[None, :]).ravel()
    dst = b.offset + (je[:, None] * b.n_phi + jp[None, :]).ravel()
    return src.astype(np.int64), dst.astype(np.int64)


def _grid_pairs(b: _Block) -> tuple[np.ndarray, np.ndarray]:
    """The 8-neighbourhood inside one block, phi wrapping around (each pair once)."""
    g = b.ids()
    src, dst = [g.ravel()], [np.roll(g, -1, axis=1).ravel()]  # phi neighbour
    if b.n_eta > 1:
        for shift in (0, 1, -1):  # eta neighbour and the two diagonals
            src.append(g[:-1].ravel())
            dst.append(np.roll(g[1:], shift, axis=1).ravel())
    return np.concatenate(src), np.concatenate(dst)


def _neighbours(blocks: list[_Block], n: int) -> csr_matrix:
    """ATLAS all3D-like adjacency: 8 neighbours in a layer (also across eta = 0 and region edges),
    overlapping cells across longitudinally adjacent layers.

    Same-layer links between blocks use touching rectangles, so a cell at a region edge keeps
    its diagonal neighbours; cross-layer links need a positive overlap area.
    """
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
                same_side_edge = a.side == b.side and (abs(a.hi - b.lo) < _EPS or abs(b.hi - a.lo) < _EPS)
                across_zero = a.side != b.side and a.lo == 0.0 and b.lo == 0.0
                if same_side_edge or across_zero:
                    s, d = _block_pairs(a, b, touching=True)
                    src.append(s)
                    dst.append(d)
    # between longitudinally adjacent layers: overlapping rectangles
    index = {ly.name: ly.index for ly in LAYERS}
    for la, lb, *between in ADJACENT_LAYERS:
        exclude = None
        if between:
            mid = LAYERS[index[between[0]]].regions
            exclude = (min(r[0] for r in mid), max(r[1] for r in mid))
        for a in by_layer[index[la]]:
            for b in by_layer[index[lb]]:
                if a.side == b.side:
                    s, d = _block_pairs(a, b, touching=False, exclude=exclude)
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
    """Every cell, its noise and the neighbour graph, built once per process and shared.

    Every file written needs the same geometry, so it is cached; its arrays are made
    read-only so no caller can corrupt the shared copy. ``seed`` fixes the per-cell
    noise factors exp(N(0, 0.1)), making the noise map reproducible across processes.
    """
    rng = np.random.default_rng(seed)
    columns = ("id", "layer", "sampling", "eta", "phi", "deta", "dphi", "rperp", "volume", "sigma")
    blocks: list[_Block] = []
    cols: dict[str, list[np.ndarray]] = {k: [] for k in columns}
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
    f32 = lambda k: np.concatenate(cols[k]).astype(np.float32)
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
    for name in ("cell_id", "layer", "sampling", "eta", "phi", "deta", "dphi", "rperp", "volume", "sigma"):
        getattr(geo, name).setflags(write=False)
    log.debug("built calorimeter geometry: %d cells, %d neighbour links", geo.n_cells, geo.neighbours.nnz // 2)
    return geo
