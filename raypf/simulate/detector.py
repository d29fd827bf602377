"""From generated particles to one batch of MLTree events.

Tracks, showers, noise and topo-clustering for a whole batch of events in one
pass of array operations; the output is a dict of MLTree branches (numpy for
per-event scalars, awkward for vectors) ready for the ROOT writer.
"""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np
from scipy.special import ndtr

from raypf.data.mltree_schema import LAYERS, MISSING_EXTRAPOLATION
from raypf.simulate import noise
from raypf.simulate.config import DetectorConfig
from raypf.simulate.generators import Particles
from raypf.simulate.geometry import LAYERS as CALO_LAYERS
from raypf.simulate.geometry import CaloGeometry
from raypf.simulate.propagation import LayerSurfaces, extrapolate, wrap_phi
from raypf.simulate.scratch import Scratch
from raypf.simulate.showers import Deposits, ShowerModel, longitudinal, spread
from raypf.simulate.topocluster import ranges, topo_cluster_sparse
from raypf.simulate.tracking import TrackModel, Tracks, reconstruct

#: Truth particles kept (and simulated): everything that can reach the calorimeter.
TRUTH_ETA_MAX = 3.5
PION_MASS = 0.13957


@dataclass(frozen=True)
class CellTruth:
    """Signal deposits aggregated per (global cell, particle), sorted by cell then particle."""

    cell: np.ndarray  # int64 global id, event * n_cells + cell
    particle: np.ndarray  # int64 index into the batch's truth particles
    energy: np.ndarray  # float64 GeV
    signal_cells: np.ndarray  # sorted unique global ids with any signal
    signal_energy: np.ndarray  # per signal cell: total noise-free energy
    signal_em: np.ndarray  # per signal cell: energy from electromagnetic processes
    first: np.ndarray  # per signal cell: its first row in (cell, particle, energy)
    count: np.ndarray  # per signal cell: number of contributing particles


def _unflatten(flat: np.ndarray, *counts: np.ndarray) -> ak.Array:
    """Nest a flat array by successive count arrays, innermost first (offsets built directly, no copies)."""
    content = ak.contents.NumpyArray(np.ascontiguousarray(flat))
    for c in counts:
        offsets = np.zeros(len(c) + 1, dtype=np.int64)
        np.cumsum(c, out=offsets[1:])
        content = ak.contents.ListOffsetArray(ak.index.Index64(offsets), content)
    return ak.Array(content)


def aggregate(dep: Deposits, event_of_particle: np.ndarray, n_cells: int, n_particles: int) -> CellTruth:
    gcell = event_of_particle[dep.particle].astype(np.int64) * n_cells + dep.cell
    key = gcell * max(n_particles, 1) + dep.particle
    uniq, inv = np.unique(key, return_inverse=True)
    energy = np.bincount(inv, weights=dep.energy, minlength=len(uniq))
    cell = uniq // max(n_particles, 1)
    particle = uniq % max(n_particles, 1)
    signal_cells, first, count = np.unique(cell, return_index=True, return_counts=True)
    signal_energy = np.add.reduceat(energy, first) if len(first) else np.empty(0)
    signal_of_row = np.repeat(np.arange(len(signal_cells)), count)
    signal_em = np.bincount(signal_of_row[inv], weights=dep.energy * dep.em, minlength=len(signal_cells))
    return CellTruth(cell, particle, energy, signal_cells, signal_energy, signal_em, first, count)


class Detector:
    """The fast ATLAS-like detector: call it on a batch of generated events."""

    def __init__(self, cfg: DetectorConfig, geometry: CaloGeometry) -> None:
        self.cfg = cfg
        self.geo = geometry
        layers = CALO_LAYERS
        self.surfaces = LayerSurfaces(
            barrel=np.array([ly.barrel for ly in layers]),
            position=np.array([ly.position for ly in layers], dtype=np.float64),
            abs_eta_min=np.array([min(r[0] for r in ly.regions) for ly in layers]),
            abs_eta_max=np.array([max(r[1] for r in ly.regions) for ly in layers]),
        )
        self.shower_model = ShowerModel(em_stochastic=cfg.em_stochastic, had_stochastic=cfg.had_stochastic, h_over_e=cfg.h_over_e)
        self.track_model = TrackModel(
            pt_min=cfg.track_pt_min,
            eta_max=cfg.track_eta_max,
            efficiency_barrel=cfg.track_efficiency_barrel,
            efficiency_endcap=cfg.track_efficiency_endcap,
            lost_truth_fraction=cfg.track_lost_truth_fraction,
        )
        self.sigma = geometry.sigma.astype(np.float64) * cfg.noise_scale
        # per-batch lookup tables over event * n_cells ids, reused across batches
        self._signal_pos = Scratch(np.int32, -1)
        self._energy_of = Scratch(np.float32, np.nan)
        self._sigma_of: np.ndarray = np.empty(0)  # sigma tiled over a batch: a gather instead of id % n_cells

    # -- stages -----------------------------------------------------------------------------------
    def _extrapolate(self, pt, eta, phi, charge, z0):
        return extrapolate(pt, eta, phi, charge, z0, self.surfaces, self.cfg.field_tesla, self.cfg.solenoid_radius_mm)

    def calorimeter(self, truth: Particles, vertex_z: np.ndarray, rng: np.random.Generator) -> CellTruth:
        """Noise-free visible energy per (cell, particle) for a batch."""
        inter = self._extrapolate(truth.pt, truth.eta, truth.phi, truth.charge, vertex_z[truth.event])
        pairs = longitudinal(truth.pdg, truth.e, truth.charge, truth.m, inter, LAYERS, self.surfaces.barrel, rng, self.shower_model)
        dep = spread(*pairs, inter, self.geo.find_cells, rng, self.shower_model)
        return aggregate(dep, truth.event, self.geo.n_cells, len(truth))

    def digitise(self, truth: CellTruth, n_events: int, rng: np.random.Generator):
        """Add noise and topo-cluster; return clustered global cells, labels, energies and signal positions.

        Per-batch dense tables over ``n_events * n_cells`` ids turn every cell lookup
        into a gather (tens of MB for a batch, far cheaper than searching).
        """
        nc = self.geo.n_cells
        signal_pos = self._signal_pos.take(n_events * nc)
        energy_of = self._energy_of.take(n_events * nc)
        written: list[np.ndarray] = []  # cells whose energy slot was set, to reset afterwards
        try:
            return self._digitise(truth, n_events, rng, signal_pos, energy_of, written)
        finally:
            self._signal_pos.give_back(truth.signal_cells)
            self._energy_of.give_back(*written)

    def _batch_sigma(self, n_events: int) -> np.ndarray:
        if len(self._sigma_of) < n_events * self.geo.n_cells:
            self._sigma_of = np.tile(np.maximum(self.sigma, 1e-12).astype(np.float32), n_events)
        return self._sigma_of

    def _digitise(self, truth: CellTruth, n_events: int, rng: np.random.Generator, signal_pos, energy_of, written):
        nc, cfg = self.geo.n_cells, self.cfg
        grow = cfg.topo_grow
        sigma_of = self._batch_sigma(n_events)
        signal_pos[truth.signal_cells] = np.arange(len(truth.signal_cells), dtype=np.int32)
        written.append(truth.signal_cells)
        energy_of[truth.signal_cells] = truth.signal_energy + sigma_of[truth.signal_cells] * rng.standard_normal(
            len(truth.signal_cells)
        )
        band_sig = 0.5 * (grow + cfg.topo_seed)
        if cfg.noise_scale > 0:
            # Noise-only cells above the growing threshold. Only seeds (> topo_seed) need a value now:
            # a cell between the thresholds just grows clusters, so its value is drawn (from that band)
            # only if it ends up in one. Until then its slot holds +inf and its significance a stand-in.
            tails = noise.tail_cells(n_events * nc, grow, rng)
            tails = tails[signal_pos[tails] < 0]
            p_seed = ndtr(-cfg.topo_seed) / ndtr(-grow)
            is_seed = rng.random(len(tails)) < p_seed
            noise_seeds, band = tails[is_seed], tails[~is_seed]
            energy_of[noise_seeds] = sigma_of[noise_seeds] * noise.tail_values(len(noise_seeds), cfg.topo_seed, rng)
            energy_of[band] = np.inf
            written.append(tails)
            cells = np.concatenate([truth.signal_cells, noise_seeds, band])
        else:
            cells = truth.signal_cells
        significance = energy_of[cells] / sigma_of[cells]  # float32 precision is ample for thresholds
        significance[np.isinf(significance)] = band_sig
        c_cells, labels, _ = topo_cluster_sparse(cells, significance, self.geo.neighbours, nc, cfg.topo_seed, grow)
        # noise drawn on demand: clustered band cells from grow < |x| <= seed, quiet boundary cells from |x| <= grow
        c_energy = energy_of[c_cells].astype(np.float64)
        scale = float(cfg.noise_scale > 0)
        in_band = np.isinf(c_energy)
        c_energy[in_band] = sigma_of[c_cells[in_band]] * noise.tail_values(int(in_band.sum()), grow, rng, cfg.topo_seed)
        quiet = np.isnan(c_energy)
        c_energy[quiet] = sigma_of[c_cells[quiet]] * noise.quiet_values(int(quiet.sum()), grow, rng) * scale
        if cfg.topo_boundary > 0:
            keep = np.abs(c_energy) / sigma_of[c_cells] > cfg.topo_boundary
            c_cells, labels, c_energy = c_cells[keep], labels[keep], c_energy[keep]
        return c_cells, labels, c_energy, signal_pos[c_cells]

    # -- the whole batch -------------------------------------------------------------------------
    def simulate(
        self,
        particles: Particles,
        weights: np.ndarray,
        run_number: int,
        event_numbers: np.ndarray,
        mc_channel: int,
        rng: np.random.Generator,
    ) -> dict[str, np.ndarray | ak.Array]:
        """Simulate a batch of events and return its MLTree branches."""
        n_events = particles.n_events
        truth = particles.select((np.abs(particles.eta) < TRUTH_ETA_MAX) & (particles.e > 0))
        first = np.searchsorted(truth.event, np.arange(n_events))
        n_truth = np.bincount(truth.event, minlength=n_events)
        vertex_z = self.cfg.beamspot_sigma_z_mm * rng.standard_normal(n_events)

        cell_truth = self.calorimeter(truth, vertex_z, rng)
        c_cells, labels, c_energy, c_signal = self.digitise(cell_truth, n_events, rng)
        tracks = reconstruct(truth.event, truth.pt, truth.eta, truth.phi, truth.charge, vertex_z[truth.event], rng, self.track_model)

        out: dict[str, np.ndarray | ak.Array] = {
            "runNumber": np.full(n_events, run_number, dtype=np.int32),
            "eventNumber": np.asarray(event_numbers, dtype=np.int64),
            "mcChannelNumber": np.full(n_events, mc_channel, dtype=np.int32),
            "mcEventWeight": np.asarray(weights, dtype=np.float32),
            "nTruthPart": n_truth.astype(np.int32),
            "truthPartPdgId": _unflatten(truth.pdg.astype(np.int32), n_truth),
            "truthPartStatus": _unflatten(np.ones(len(truth), np.int32), n_truth),
            "truthPartE": _unflatten(truth.e.astype(np.float32), n_truth),
            "truthPartPt": _unflatten(truth.pt.astype(np.float32), n_truth),
            "truthPartEta": _unflatten(truth.eta.astype(np.float32), n_truth),
            "truthPartPhi": _unflatten(truth.phi.astype(np.float32), n_truth),
            "truthPartMass": _unflatten(truth.m.astype(np.float32), n_truth),
        }
        out.update(self._track_branches(tracks, first, n_events))
        out.update(self._cluster_branches(c_cells, labels, c_energy, c_signal, cell_truth, first, n_events, rng))
        return out

    def _track_branches(self, tr: Tracks, first: np.ndarray, n_events: int) -> dict[str, ak.Array | np.ndarray]:
        n = np.bincount(tr.event, minlength=n_events)
        f32 = lambda a: _unflatten(np.asarray(a, dtype=np.float32), n)
        i32 = lambda a: _unflatten(np.asarray(a, dtype=np.int32), n)
        truth_index = np.where(tr.truth_lost, -1, tr.particle - first[tr.event])
        p = tr.pt * np.cosh(tr.eta)
        out = {
            "nTrack": n.astype(np.int32),
            "trackPt": f32(tr.pt),
            "trackP": f32(p),
            "trackMass": f32(np.full(len(tr.pt), PION_MASS)),
            "trackEta": f32(tr.eta),
            "trackPhi": f32(tr.phi),
            "trackD0": f32(tr.d0),
            "trackZ0": f32(tr.z0),
            "trackChiSquared": f32(tr.chi2),
            "trackNumberDOF": i32(tr.ndof),
            "trackNumberOfPixelHits": i32(tr.n_pixel),
            "trackNumberOfSCTHits": i32(tr.n_sct),
            "trackTruthParticleIndex": i32(truth_index),
            "trackSubtractedCaloEnergy": f32(np.zeros(len(tr.pt))),
        }
        inter = self._extrapolate(tr.pt, tr.eta, tr.phi, tr.charge, tr.z0)
        missing = ~inter.crossed
        eta = inter.eta.astype(np.float32)
        phi = inter.phi.astype(np.float32)
        eta[missing] = MISSING_EXTRAPOLATION
        phi[missing] = MISSING_EXTRAPOLATION
        for k, layer in enumerate(LAYERS):
            out[f"trackEta_{layer}"] = f32(eta[:, k])
            out[f"trackPhi_{layer}"] = f32(phi[:, k])
        return out

    def _cluster_branches(self, cells, labels, energy, signal, truth: CellTruth, first, n_events, rng):
        """MLTree cluster and cluster-cell branches; clusters per event by descending significance."""
        geo, nc = self.geo, self.geo.n_cells
        # labels run over events, then significance; numpy radix-sorts 16-bit keys, 8x faster than int32
        key = labels.astype(np.uint16) if len(labels) and labels.max() < 2**16 else labels
        order = np.argsort(key, kind="stable")
        cells, labels, energy, signal = cells[order], labels[order], energy[order], signal[order]
        event, local = np.divmod(cells, nc)
        n_cells_cl = np.bincount(labels, minlength=int(labels.max()) + 1 if len(labels) else 0)
        starts = np.cumsum(n_cells_cl) - n_cells_cl
        n_cluster = np.bincount(event[starts], minlength=n_events) if len(starts) else np.zeros(n_events, np.int64)

        # per-cell truth lists and EM / non-EM energies (cells without signal have none)
        has = signal >= 0
        sp = np.where(has, signal, 0)
        n_truth = np.where(has, truth.count[sp] if len(truth.count) else 0, 0)
        rows = ranges(np.where(has, truth.first[sp] if len(truth.first) else 0, 0), n_truth)
        cell_of_row = np.repeat(np.arange(len(cells)), n_truth)
        t_index = (truth.particle[rows] - first[event[cell_of_row]]).astype(np.int32)
        t_energy = truth.energy[rows].astype(np.float32)
        e_true = np.where(has, truth.signal_energy[sp] if len(truth.signal_energy) else 0.0, 0.0)
        e_em = np.where(has, truth.signal_em[sp] if len(truth.signal_em) else 0.0, 0.0)

        # cluster kinematics: energy-weighted barycentre (positive energies), phi relative to the first cell.
        # Cells are sorted by label, so every per-cluster sum is a reduceat over contiguous segments.
        eta_c = geo.eta[local]
        phi_c = geo.phi[local]
        n_cl = len(starts)
        w = np.maximum(energy, 0.0)
        wsum = np.add.reduceat(w, starts) if n_cl else np.zeros(0)
        negative = np.nonzero((wsum <= 0)[labels])[0]  # clusters of negative noise: weight by |E| instead
        w[negative] = np.abs(energy[negative]) + 1e-12
        wsum += np.bincount(labels[negative], weights=w[negative], minlength=n_cl)  # their sum was exactly 0
        dphi = phi_c - phi_c[starts][labels]  # within one cluster: wrap once at most
        dphi[dphi > np.pi] -= np.float32(2 * np.pi)
        dphi[dphi < -np.pi] += np.float32(2 * np.pi)
        segment_sum = (lambda x: np.add.reduceat(x, starts)) if n_cl else (lambda x: np.zeros(0))
        cl_eta = segment_sum(w * eta_c) / wsum
        cl_phi = wrap_phi(phi_c[starts] + segment_sum(w * dphi) / wsum)
        cl_e = segment_sum(energy)
        em_sum, tot_sum = segment_sum(e_em), segment_sum(e_true)
        em_frac = np.where(tot_sum > 0, em_sum / np.maximum(tot_sum, 1e-12), 0.5)
        em_prob = np.clip(em_frac + 0.1 * rng.standard_normal(n_cl), 0.0, 1.0)

        f32 = np.float32
        per_cl = lambda a, dt=f32: _unflatten(np.asarray(a, dtype=dt), n_cluster)
        per_cell = lambda a, dt=f32: _unflatten(np.asarray(a, dtype=dt), n_cells_cl, n_cluster)
        return {
            "nCluster": n_cluster.astype(np.int32),
            "cluster_E": per_cl(cl_e),
            "cluster_Pt": per_cl(cl_e / np.cosh(cl_eta)),
            "cluster_Eta": per_cl(cl_eta),
            "cluster_Phi": per_cl(cl_phi),
            "cluster_nCells": per_cl(n_cells_cl, np.int32),
            "cluster_EM_PROBABILITY": per_cl(em_prob),
            "cluster_cell_ID": per_cell(geo.cell_id[local], np.uint64),
            "cluster_cell_E": per_cell(energy),
            "cluster_cell_hitsE_EM": per_cell(e_em),
            "cluster_cell_hitsE_nonEM": per_cell(np.maximum(e_true.astype(f32) - e_em.astype(f32), f32(0))),
            "cluster_cell_hitsTruthIndex": _unflatten(t_index, n_truth, n_cells_cl, n_cluster),
            "cluster_cell_hitsTruthE": _unflatten(t_energy, n_truth, n_cells_cl, n_cluster),
        }
