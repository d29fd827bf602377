"""The MLTree ntuple format: tree names, branch names and their C++ types.

One source of truth for the simulator that writes MLTree files and for the
preprocessing that reads them (``DESIGN.md``, "Input").
"""

from __future__ import annotations

EVENT_TREE = "EventTree"
CELL_GEO_TREE = "CellGeo"

#: The 19 calorimeter layers of the seed, in MLTree naming and order.
LAYERS: tuple[str, ...] = (
    "EMB1", "EMB2", "EMB3",
    "EME1", "EME2", "EME3",
    "HEC0", "HEC1", "HEC2", "HEC3",
    "TileBar0", "TileBar1", "TileBar2",
    "TileGap1", "TileGap2", "TileGap3",
    "TileExt0", "TileExt1", "TileExt2",
)  # fmt: skip

#: Where each layer sits, to place a track's extrapolated (eta, phi) in x, y, z (``001_*``'s
#: track_metadata): (ATLAS CaloSampling number, barrel?, r in mm for barrel layers or |z| in mm
#: for end-cap ones). Numbers from CALORIMETER.md.
LAYER_PLACEMENT: dict[str, tuple[int, bool, float]] = {
    "EMB1": (1, True, 1532.0), "EMB2": (2, True, 1724.0), "EMB3": (3, True, 1923.0),
    "EME1": (5, False, 3790.0), "EME2": (6, False, 3984.0), "EME3": (7, False, 4196.0),
    "HEC0": (8, False, 4461.0), "HEC1": (9, False, 4870.0), "HEC2": (10, False, 5425.0), "HEC3": (11, False, 5905.0),
    "TileBar0": (12, True, 2450.0), "TileBar1": (13, True, 2995.0), "TileBar2": (14, True, 3630.0),
    "TileGap1": (15, True, 3215.0), "TileGap2": (16, True, 3630.0), "TileGap3": (17, True, 2246.5),
    "TileExt0": (18, True, 2450.0), "TileExt1": (19, True, 2870.0), "TileExt2": (20, True, 3480.0),
}  # fmt: skip
assert tuple(LAYER_PLACEMENT) == LAYERS

#: Extrapolated coordinates at or below this mean "did not reach the layer" (``001_*``: -100000).
MISSING_THRESHOLD = -1.0e5

#: Value MLTree writes for a track that never reached a layer.
MISSING_EXTRAPOLATION = -999999.0

_VF = "vector<float>"
_VI = "vector<int>"

EVENT_BRANCHES: dict[str, str] = {
    "runNumber": "int",
    "eventNumber": "Long64_t",
    "mcChannelNumber": "int",
    "mcEventWeight": "float",
    "nTruthPart": "int",
    "truthPartPdgId": _VI,
    "truthPartStatus": _VI,
    "truthPartE": _VF,
    "truthPartPt": _VF,
    "truthPartEta": _VF,
    "truthPartPhi": _VF,
    "truthPartMass": _VF,
    "nTrack": "int",
    "trackPt": _VF,
    "trackP": _VF,
    "trackMass": _VF,
    "trackEta": _VF,
    "trackPhi": _VF,
    "trackD0": _VF,
    "trackZ0": _VF,
    "trackChiSquared": _VF,
    "trackNumberDOF": _VI,
    "trackNumberOfPixelHits": _VI,
    "trackNumberOfSCTHits": _VI,
    "trackTruthParticleIndex": _VI,
    "trackSubtractedCaloEnergy": _VF,
    **{f"track{coord}_{layer}": _VF for layer in LAYERS for coord in ("Eta", "Phi")},
    "nCluster": "int",
    "cluster_E": _VF,
    "cluster_Pt": _VF,
    "cluster_Eta": _VF,
    "cluster_Phi": _VF,
    "cluster_nCells": _VI,
    "cluster_EM_PROBABILITY": _VF,
    "cluster_cell_ID": "vector<vector<size_t>>",
    "cluster_cell_E": "vector<vector<float>>",
    "cluster_cell_hitsE_EM": "vector<vector<float>>",
    "cluster_cell_hitsE_nonEM": "vector<vector<float>>",
    "cluster_cell_hitsTruthIndex": "vector<vector<vector<int>>>",
    "cluster_cell_hitsTruthE": "vector<vector<vector<float>>>",
}

CELL_GEO_BRANCHES: dict[str, str] = {
    "cell_geo_ID": "vector<size_t>",
    "cell_geo_sampling": _VI,
    "cell_geo_eta": _VF,
    "cell_geo_phi": _VF,
    "cell_geo_rPerp": _VF,
    "cell_geo_deta": _VF,
    "cell_geo_dphi": _VF,
    "cell_geo_volume": _VF,
    "cell_geo_sigma": _VF,
}

#: ATLAS dataset IDs (mcChannelNumber) per set; JZ slices follow the Pythia8 A14 dijet DSIDs.
MC_CHANNEL: dict[str, int] = {
    "rho": 900101,
    "delta": 900102,
    **{f"JZ{i}": 364700 + i for i in range(7)},
}
SET_OF_CHANNEL: dict[int, str] = {v: k for k, v in MC_CHANNEL.items()}
