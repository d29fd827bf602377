"""A deliberately simple reference for sample building: plain uproot, Python loops, one track at a time.

Written from the definitions (DESIGN.md "Intermediate", issue text, ``001_*``),
not from the vectorised code, so that the two can only agree if both are right.
Slow by design; use it on a handful of events.
"""

from __future__ import annotations

import math

import numpy as np
import uproot

LAYERS = ["EMB1", "EMB2", "EMB3", "EME1", "EME2", "EME3", "HEC0", "HEC1", "HEC2", "HEC3",
          "TileBar0", "TileBar1", "TileBar2", "TileGap1", "TileGap2", "TileGap3", "TileExt0", "TileExt1", "TileExt2"]  # fmt: skip
SAMPLING = [1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]
BARREL = [True, True, True, False, False, False, False, False, False, False] + [True] * 9
POSITION = [1532.0, 1724.0, 1923.0, 3790.0, 3984.0, 4196.0, 4461.0, 4870.0, 5425.0, 5905.0,
            2450.0, 2995.0, 3630.0, 3215.0, 3630.0, 2246.5, 2450.0, 2870.0, 3480.0]  # fmt: skip


def f32(x: float) -> float:
    return float(np.float32(x))


def delta_r2(eta1: float, phi1: float, eta2: float, phi2: float) -> float:
    d_eta = eta1 - eta2
    d_phi = phi1 - phi2
    if d_phi > math.pi:
        d_phi -= 2 * math.pi
    elif d_phi < -math.pi:
        d_phi += 2 * math.pi
    return d_eta * d_eta + d_phi * d_phi


def layer_point(eta: float, phi: float, layer: int) -> tuple[float, float, float]:
    if BARREL[layer]:
        r = POSITION[layer]
        z = r * math.sinh(eta)
    else:
        z = math.copysign(POSITION[layer], eta)
        r = POSITION[layer] / max(abs(math.sinh(eta)), 1e-9)
    return f32(r * math.cos(phi)), f32(r * math.sin(phi)), f32(z)


def reference_samples(path: str, max_delta_r: float = 0.2, min_cells: int = 25) -> dict:
    """{(entry, track index): sample} where a sample is {"points": {key: features}, "scalars": {...}}."""
    f = uproot.open(path)
    geo = f["CellGeo"].arrays(library="np")
    geo_of = {}
    for i, cid in enumerate(geo["cell_geo_ID"][0]):
        eta, phi, r = float(geo["cell_geo_eta"][0][i]), float(geo["cell_geo_phi"][0][i]), float(geo["cell_geo_rPerp"][0][i])
        geo_of[int(cid)] = {
            "eta": eta, "phi": phi, "sampling": int(geo["cell_geo_sampling"][0][i]), "sigma": float(geo["cell_geo_sigma"][0][i]),
            "x": f32(r * math.cos(phi)), "y": f32(r * math.sin(phi)), "z": f32(r * math.sinh(eta)),
        }  # fmt: skip
    events = f["EventTree"].arrays(library="ak").to_list()
    out = {}
    for entry, ev in enumerate(events):
        tracked_particles = {t for t in ev["trackTruthParticleIndex"] if 0 <= t < ev["nTruthPart"]}
        # every track's layer points
        points = []
        for t in range(ev["nTrack"]):
            for layer, name in enumerate(LAYERS):
                eta, phi = ev[f"trackEta_{name}"][t], ev[f"trackPhi_{name}"][t]
                if eta > -1e5 and phi > -1e5:
                    points.append({"track": t, "layer": layer, "eta": eta, "phi": phi, "xyz": layer_point(eta, phi, layer)})
        # each clustered cell once (first occurrence), with its truth split by particle
        cells = {}
        for k, cluster_ids in enumerate(ev["cluster_cell_ID"]):
            for j, cid in enumerate(cluster_ids):
                cid &= 0xFFFFFFFFFFFFFFFF  # cell IDs are unsigned, whatever type the file stores them as
                if cid in cells:
                    continue
                by_particle = {}
                for idx, e in zip(ev["cluster_cell_hitsTruthIndex"][k][j], ev["cluster_cell_hitsTruthE"][k][j]):
                    by_particle[idx] = by_particle.get(idx, 0.0) + max(e, 0.0)
                cells[cid] = {"cluster": k, "energy": ev["cluster_cell_E"][k][j], "truth": by_particle}
        for t in range(ev["nTrack"]):
            part = ev["trackTruthParticleIndex"][t]
            if not 0 <= part < ev["nTruthPart"]:
                continue
            if ev["trackEta_EMB2"][t] > -1e5 and ev["trackPhi_EMB2"][t] > -1e5:
                ref = ("EMB2", ev["trackEta_EMB2"][t], ev["trackPhi_EMB2"][t])
            elif ev["trackEta_EME2"][t] > -1e5 and ev["trackPhi_EME2"][t] > -1e5:
                ref = ("EME2", ev["trackEta_EME2"][t], ev["trackPhi_EME2"][t])
            else:
                continue
            _, ref_eta, ref_phi = ref
            ndof = ev["trackNumberDOF"][t]
            chi2 = ev["trackChiSquared"][t] / ndof if ndof > 0 else 0.0
            focal_pts = [p for p in points if p["track"] == t]
            sample = {}
            for p in focal_pts:
                sample[(1, t, SAMPLING[p["layer"]], 0)] = {
                    "xyz": p["xyz"], "delta_r": math.sqrt(delta_r2(p["eta"], p["phi"], ref_eta, ref_phi)), "dist_focal": 0.0,
                    "energy": ev["trackPt"][t], "sigma": 0.0, "chi2_ndof": chi2, "cluster": -1, "truth": (0.0, 0.0, 0.0, 0.0),
                }  # fmt: skip

            def nearest(xyz, focal_pts=focal_pts):
                return math.sqrt(min(sum((a - b) ** 2 for a, b in zip(xyz, p["xyz"])) for p in focal_pts))

            n_cells = 0
            for cid, cell in cells.items():
                g = geo_of[cid]
                dr2 = delta_r2(g["eta"], g["phi"], ref_eta, ref_phi)
                if dr2 > max_delta_r**2:
                    continue
                n_cells += 1
                total = sum(cell["truth"].values())
                focal_e = sum(e for i, e in cell["truth"].items() if i == part)
                tracked_e = sum(e for i, e in cell["truth"].items() if i in tracked_particles)
                sample[(0, -1, g["sampling"], cid)] = {
                    "xyz": (g["x"], g["y"], g["z"]), "delta_r": math.sqrt(dr2), "dist_focal": nearest((g["x"], g["y"], g["z"])),
                    "energy": cell["energy"], "sigma": g["sigma"], "chi2_ndof": 0.0, "cluster": cell["cluster"],
                    "truth": (focal_e, tracked_e - focal_e, total - tracked_e, total),
                }  # fmt: skip
            for p in points:
                if p["track"] == t:
                    continue
                dr2 = delta_r2(p["eta"], p["phi"], ref_eta, ref_phi)
                if dr2 > max_delta_r**2:
                    continue
                other = p["track"]
                o_ndof = ev["trackNumberDOF"][other]
                sample[(2, other, SAMPLING[p["layer"]], 0)] = {
                    "xyz": p["xyz"], "delta_r": math.sqrt(dr2), "dist_focal": nearest(p["xyz"]),
                    "energy": ev["trackPt"][other], "sigma": 0.0,
                    "chi2_ndof": ev["trackChiSquared"][other] / o_ndof if o_ndof > 0 else 0.0,
                    "cluster": -1, "truth": (0.0, 0.0, 0.0, 0.0),
                }  # fmt: skip
            if n_cells < min_cells:
                continue
            out[(entry, t)] = {
                "points": sample,
                "scalars": {"track_pt": ev["trackPt"][t], "track_eta": ref_eta, "track_phi": ref_phi, "truth_index": part,
                            "truth_pdg_id": ev["truthPartPdgId"][part], "event": ev["eventNumber"], "run": ev["runNumber"]},
            }  # fmt: skip
    return out
