"""The rule-based particle-flow baseline: cell-by-cell energy subtraction after ATL-PERF-2015-09.

Per event, selected tracks in descending pT each match the topo-cluster closest in
ΔR' (the angular distance in units of the cluster's widths) among clusters holding
enough energy for the track, and subtract the energy the E/p template expects,
⟨E_dep⟩ = p · ⟨E/p⟩, cell by cell: layer after layer in descending energy density,
ring after ring of one cell pitch around the track's extrapolation in the layer,
the ring that crosses ⟨E_dep⟩ in proportion. A shower that looks split (the matched
cluster well short of ⟨E_dep⟩) draws in the clusters within ΔR 0.2 as well, and a
remnant of the chosen clusters below 1.5 σ(E_dep) is removed too. The result is,
per (track, cell), the fraction of the cell's energy the track took, which the
evaluation turns into a per-cell assignment comparable with the models'.

All events are processed at once: the only Python loop is over the pT rank of
tracks within their event, each step vectorised over every event's track of that rank.

Simplifications against ATL-PERF-2015-09:

- the E/p template is binned in track p and |η| only (``raypf.evaluate.template``), without the bin of
  the layer of highest energy density (LHED); the layers are still ordered by energy density;
- energy density is per unit η-φ area (Σ E / Σ pitch² of the layer's candidate cells), not per volume;
- no cluster splitting and no cell weights: a cell shared by clusters belongs to the first one only,
  and clusters are used as they come;
- cluster widths σ_η, σ_φ are the energy-weighted spread of the cluster's cells (positive energies),
  floored, measured once before any subtraction; the match position is the cluster's own (η, φ);
- the rings are centred on the track's extrapolation in the cell's layer where it reached that layer,
  else on its reference position (EMB2, else EME2); the 19 MLTree layers are all there is;
- no E/p-based match quality beyond the E/p threshold, and no track quality or |η| cut besides ``selected``;
- the 40 GeV dense-core rule is reduced to an optional plain pT cut (``max_pt``), off by default;
- tracks with p ≤ 0 or ⟨E_dep⟩ ≤ 0 subtract nothing; pT ties go to the lower track row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from raypf.data.cone import cumsum0, expand, wrap_phi
from raypf.evaluate.events import EventBatch
from raypf.evaluate.nearest import position_table, track_position
from raypf.evaluate.template import EpTemplate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PFOptions:
    """The rule-based particle flow's thresholds (defaults as in ATL-PERF-2015-09 where it gives them)."""

    match_ep_min: float = 0.1  # clusters with (current E)/p below this are not match candidates
    match_dr_max: float = 1.64  # no cluster within this ΔR' -> track left alone (ATLAS: 90 % containment)
    width_floor: float = 0.025  # floor on a cluster's angular widths sigma_eta, sigma_phi
    add_significance: float = -1.0  # (E_matched - E_dep)/sigma(E_dep) below this: split shower, add clusters...
    add_dr: float = 0.2  # ...whose centre lies within this plain ΔR of the track
    remnant_sigma: float = 1.5  # remaining energy of the chosen clusters below this x sigma(E_dep): remove it too
    max_pt: float | None = None  # tracks above this pT (GeV) are not subtracted (ATLAS: 40 in dense cores); None: all


def subtract(
    events: EventBatch, template: EpTemplate, opts: PFOptions = PFOptions()
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(track row, cell row, fraction of that cell's energy the track subtracted), one entry per (track, cell) with
    fraction > 0, sorted by track then cell row.

    Fractions of one cell over all tracks sum to at most 1 (up to rounding): each track takes from what the
    tracks of higher pT left.
    """
    state = _State(events, opts)
    p = events.track_p.astype(np.float64)
    ref_eta = events.ref_eta.astype(np.float64)
    mean, std = template.lookup(p, np.nan_to_num(ref_eta))
    e_dep, s_dep = p * mean, p * std
    active = events.selected & np.isfinite(ref_eta) & np.isfinite(events.ref_phi) & (p > 0) & (e_dep > 0)
    if opts.max_pt is not None:
        active &= events.track_pt <= opts.max_pt
    rows = np.flatnonzero(active)
    t_event = events.track_event()[rows]
    order = np.lexsort((rows, -events.track_pt[rows].astype(np.float64), t_event))
    rows, t_event = rows[order], t_event[order]
    rank = np.arange(len(rows)) - np.searchsorted(t_event, t_event, side="left")
    by_rank = rows[np.lexsort((t_event, rank))]
    rank_offsets = cumsum0(np.bincount(rank)) if len(rank) else np.zeros(1, dtype=np.int64)

    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for r in range(len(rank_offsets) - 1):
        tracks = by_rank[rank_offsets[r] : rank_offsets[r + 1]]
        parts.append(state.step(tracks, e_dep[tracks], s_dep[tracks]))
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    track, cell, frac = (np.concatenate(a) for a in zip(*parts))
    order = np.lexsort((cell, track))
    log.debug("particle flow: %d tracks in %d ranks, %d (track, cell) entries", len(rows), len(parts), len(track))
    return track[order], cell[order], frac[order]


class _State:
    """What the subtraction carries from one pT rank to the next: each cell's remaining fraction and each
    cluster's current energy, plus the per-cluster constants (widths) computed once."""

    def __init__(self, events: EventBatch, opts: PFOptions) -> None:
        self.ev = events
        self.opts = opts
        self.cell_cluster = events.cell_cluster()
        self.track_event = events.track_event()
        self.positions = position_table(events)
        self.cell_e = events.cell_e.astype(np.float64)
        self.rem = np.ones(len(self.cell_e))
        n_clusters = len(events.cluster_e)
        self.cur = np.bincount(self.cell_cluster, weights=self.cell_e, minlength=n_clusters)
        self.sig_eta, self.sig_phi = cluster_widths(events, opts.width_floor)
        self.n_groups = events.layer_eta.shape[1] + 1  # layers, and "none" (-1)

    def step(
        self, tracks: np.ndarray, e_dep: np.ndarray, s_dep: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Subtract for ``tracks`` (at most one per event); returns their (track, cell, fraction) entries."""
        ev, opts = self.ev, self.opts
        n = len(tracks)
        p = ev.track_p[tracks].astype(np.float64)
        t_eta = ev.ref_eta[tracks].astype(np.float64)
        t_phi = ev.ref_phi[tracks].astype(np.float64)

        # 1. match: the closest cluster in ΔR' among the event's clusters with enough energy for the track
        t_event = self.track_event[tracks]
        owner, clu = expand(ev.cluster_offsets[t_event], np.diff(ev.cluster_offsets)[t_event])
        d_eta = ev.cluster_eta[clu] - t_eta[owner]
        d_phi = wrap_phi(ev.cluster_phi[clu] - t_phi[owner])
        dr_prime = np.sqrt((d_phi / self.sig_phi[clu]) ** 2 + (d_eta / self.sig_eta[clu]) ** 2)
        eligible = (self.cur[clu] / p[owner] > opts.match_ep_min) & np.isfinite(dr_prime)
        dr_prime = np.where(eligible, dr_prime, np.inf)
        by_dr = np.lexsort((clu, dr_prime, owner))
        first = np.ones(len(by_dr), dtype=bool)
        first[1:] = owner[by_dr[1:]] != owner[by_dr[:-1]]
        best = by_dr[first]
        matched = np.full(n, -1, dtype=np.int64)
        ok = dr_prime[best] <= opts.match_dr_max
        matched[owner[best[ok]]] = clu[best[ok]]

        # 2. split shower: the matched cluster well short of the expectation draws in clusters close to the track
        has = matched >= 0
        e_matched = np.zeros(n)
        e_matched[has] = self.cur[matched[has]]
        shortfall = e_matched - e_dep
        significance = np.divide(shortfall, s_dep, out=np.where(shortfall < 0, -np.inf, np.inf), where=s_dep > 0)
        split = has & (significance < opts.add_significance)
        near = np.hypot(d_eta, d_phi) < opts.add_dr
        chosen = (clu == matched[owner]) | (split[owner] & near & (self.cur[clu] > 0))
        chosen_clu, chosen_owner = clu[chosen], owner[chosen]

        # 3. candidate cells: every cell of the chosen clusters with energy left
        c_idx, cells = expand(ev.cell_offsets[chosen_clu], np.diff(ev.cell_offsets)[chosen_clu])
        live = self.rem[cells] > 0
        cand, k = cells[live], chosen_owner[c_idx[live]]
        if len(cand) == 0:
            return (np.zeros(0, dtype=np.int64),) * 2 + (np.zeros(0),)
        rem = self.rem[cand]
        energy = np.maximum(self.cell_e[cand] * rem, 0.0)
        layer = ev.cell_layer[cand]
        pos_eta, pos_phi = track_position(self.positions, tracks[k], layer)
        d = np.hypot(ev.cell_eta[cand] - pos_eta, wrap_phi(ev.cell_phi[cand] - pos_phi))
        pitch = ev.cell_pitch[cand].astype(np.float64)
        ring = np.floor(np.divide(d, pitch, out=np.zeros_like(d), where=pitch > 0)).astype(np.int64)

        # 4. layers by energy density (per unit eta-phi area) among the candidates, rings within a layer
        _, group = np.unique(k * self.n_groups + (layer + 1), return_inverse=True)
        area = np.bincount(group, weights=pitch * pitch)
        density = np.bincount(group, weights=energy) / np.maximum(area, np.finfo(np.float64).tiny)
        order = np.lexsort((cand, ring, layer, -density[group], k))
        k_o, layer_o, ring_o = k[order], layer[order], ring[order]
        new_ring = np.ones(len(order), dtype=bool)
        new_ring[1:] = (k_o[1:] != k_o[:-1]) | (layer_o[1:] != layer_o[:-1]) | (ring_o[1:] != ring_o[:-1])
        ring_id = np.cumsum(new_ring) - 1
        ring_e = np.bincount(ring_id, weights=energy[order])
        ring_k = k_o[new_ring]
        # cumulative ring energy within each track's rings
        cum_end = np.cumsum(ring_e)
        first_ring = np.ones(len(ring_k), dtype=bool)
        first_ring[1:] = ring_k[1:] != ring_k[:-1]
        base = (cum_end - ring_e)[first_ring]
        cum_end = cum_end - base[np.cumsum(first_ring) - 1]
        cum_before = cum_end - ring_e
        target = e_dep[ring_k]
        crossing = np.divide(target - cum_before, ring_e, out=np.zeros_like(ring_e), where=ring_e > 0)
        f_ring = np.where(cum_end <= target, 1.0, np.where(cum_before < target, crossing, 0.0))
        f = np.empty(len(cand))
        f[order] = f_ring[ring_id]
        take = f * rem
        left = rem - take  # exactly 0 where f == 1

        # 5. remnant: what is left of the chosen clusters, if below remnant_sigma x sigma(E_dep), goes too
        remaining = np.bincount(k, weights=self.cell_e[cand] * left, minlength=n)
        remnant = remaining < opts.remnant_sigma * s_dep
        sweep = remnant[k]
        take = np.where(sweep, rem, take)
        left = np.where(sweep, 0.0, left)

        self.rem[cand] = left
        self.cur[chosen_clu] = np.bincount(
            c_idx, weights=self.cell_e[cells] * self.rem[cells], minlength=len(chosen_clu)
        )
        keep = take > 0
        return tracks[k[keep]], cand[keep], take[keep]


def cluster_widths(events: EventBatch, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Per cluster: σ_η, σ_φ, the positive-energy-weighted spread of its cells about their barycentre, floored.

    ΔR' divides by these so that a track counts as close to a wide hadronic shower at a larger angle than to a
    narrow one; the floor keeps a one-cell cluster from becoming unreachable.
    """
    n = len(events.cluster_e)
    cc = events.cell_cluster()
    w = np.maximum(events.cell_e.astype(np.float64), 0.0)
    eta = events.cell_eta.astype(np.float64)
    dphi = wrap_phi(events.cell_phi.astype(np.float64) - events.cluster_phi[cc].astype(np.float64))
    sw = np.bincount(cc, weights=w, minlength=n)
    denom = np.where(sw > 0, sw, 1.0)
    m_eta = np.bincount(cc, weights=w * eta, minlength=n) / denom
    m_phi = np.bincount(cc, weights=w * dphi, minlength=n) / denom
    v_eta = np.bincount(cc, weights=w * (eta - m_eta[cc]) ** 2, minlength=n) / denom
    v_phi = np.bincount(cc, weights=w * (dphi - m_phi[cc]) ** 2, minlength=n) / denom
    return np.maximum(np.sqrt(v_eta), floor), np.maximum(np.sqrt(v_phi), floor)
