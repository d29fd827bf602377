"""Event generation with Pythia8: single-particle guns (rho, delta) and dijet JZ slices.

Pythia does the physics (decays for the guns; hard QCD, showers, MPI and
hadronisation for dijets); this module only turns its event record into flat
numpy arrays of final-state particles, one batch of events at a time, so that
the detector simulation downstream never loops over particles in Python.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import awkward as ak
import numpy as np

log = logging.getLogger(__name__)

#: ATLAS dijet slices: pTHat bounds in GeV.
JZ_PTHAT: dict[str, tuple[float, float]] = {
    "JZ0": (0.0, 20.0),
    "JZ1": (20.0, 60.0),
    "JZ2": (60.0, 160.0),
    "JZ3": (160.0, 400.0),
    "JZ4": (400.0, 800.0),
    "JZ5": (800.0, 1300.0),
    "JZ6": (1300.0, 1800.0),
}

GUN_SPECIES: dict[str, tuple[int, ...]] = {
    "rho": (213, -213),
    # all four Delta charge states and their antiparticles
    "delta": (2224, 2214, 2114, 1114, -2224, -2214, -2114, -1114),
}

#: Particles Pythia may not decay: ATLAS's generator-level stability cut (c*tau > 10 mm).
_COMMON = [
    "Print:quiet = on",
    "Next:numberCount = 0",
    "ParticleDecays:limitTau0 = on",
    "ParticleDecays:tau0Max = 10",
    "Random:setSeed = on",
]

_NEUTRINOS = (12, 14, 16)


@dataclass(frozen=True)
class Particles:
    """Final-state particles of a batch of events, flat, with the event each belongs to."""

    event: np.ndarray  # int32, index of the event within the batch
    pdg: np.ndarray  # int32
    status: np.ndarray  # int32, Pythia status code
    px: np.ndarray  # float64 GeV
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    m: np.ndarray
    charge: np.ndarray  # float32, units of e
    n_events: int

    def __len__(self) -> int:
        return len(self.pdg)

    @property
    def pt(self) -> np.ndarray:
        return np.hypot(self.px, self.py)

    @property
    def eta(self) -> np.ndarray:
        return np.arcsinh(self.pz / np.maximum(self.pt, 1e-12))

    @property
    def phi(self) -> np.ndarray:
        return np.arctan2(self.py, self.px)

    def select(self, mask: np.ndarray) -> Particles:
        return Particles(
            **{f: getattr(self, f)[mask] for f in ("event", "pdg", "status", "px", "py", "pz", "e", "m", "charge")},
            n_events=self.n_events,
        )

    @staticmethod
    def concatenate(parts: list[Particles]) -> Particles:
        """Stack batches event-wise (event indices are offset), e.g. to overlay pile-up."""
        offsets = np.cumsum([0] + [p.n_events for p in parts[:-1]])
        fields = ("pdg", "status", "px", "py", "pz", "e", "m", "charge")
        return Particles(
            event=np.concatenate([p.event + o for p, o in zip(parts, offsets)]).astype(np.int32),
            **{f: np.concatenate([getattr(p, f) for p in parts]) for f in fields},
            n_events=int(sum(p.n_events for p in parts)),
        )


class _ChargeTable:
    """Charge by PDG id, looked up once per distinct id rather than per particle."""

    def __init__(self, particle_data) -> None:
        self._pd = particle_data
        self._cache: dict[int, float] = {}

    def __call__(self, pdg: np.ndarray) -> np.ndarray:
        uniq, inv = np.unique(pdg, return_inverse=True)
        vals = np.empty(len(uniq), dtype=np.float32)
        for i, pid in enumerate(uniq.tolist()):  # distinct species only, a few dozen
            if pid not in self._cache:
                self._cache[pid] = float(self._pd.charge(pid))
            vals[i] = self._cache[pid]
        return vals[inv]


def _pythia(settings: list[str], seed: int):
    import pythia8mc

    p = pythia8mc.Pythia("", False)
    for s in [*_COMMON, f"Random:seed = {seed}", *settings]:
        if not p.readString(s):
            raise RuntimeError(f"Pythia rejected setting {s!r}")
    if not p.init():
        raise RuntimeError("Pythia failed to initialise")
    return p


def _final_state(record: ak.Array, charge: _ChargeTable) -> Particles:
    """Flatten Pythia's batched event record to final-state, visible particles."""
    counts = ak.to_numpy(ak.num(record))
    flat = ak.flatten(record)
    ids = ak.to_numpy(flat.id)
    keep = (ak.to_numpy(flat.status) > 0) & ~np.isin(np.abs(ids), _NEUTRINOS)
    flat = flat[keep]
    pdg = ids[keep].astype(np.int32)
    return Particles(
        event=np.repeat(np.arange(len(counts), dtype=np.int32), counts)[keep],
        pdg=pdg,
        status=ak.to_numpy(flat.status).astype(np.int32),
        px=ak.to_numpy(flat.p.px),
        py=ak.to_numpy(flat.p.py),
        pz=ak.to_numpy(flat.p.pz),
        e=ak.to_numpy(flat.p.e),
        m=ak.to_numpy(flat.m),
        charge=charge(pdg),
        n_events=len(counts),
    )


class DijetGenerator:
    """pp -> dijets at 13.6 TeV (HardQCD, A14 tune) in one ATLAS pTHat slice, with optional pile-up."""

    def __init__(self, slice_name: str, seed: int, pileup_mu: float = 0.0) -> None:
        lo, hi = JZ_PTHAT[slice_name]
        settings = ["Beams:eCM = 13600.", "Tune:pp = 21", "HardQCD:all = on", f"PhaseSpace:pTHatMin = {lo}"]
        settings.append(f"PhaseSpace:pTHatMax = {hi}")
        self._pythia = _pythia(settings, seed)
        self._charge = _ChargeTable(self._pythia.particleData)
        self._pileup = PileupGenerator(seed + 1, pileup_mu) if pileup_mu > 0 else None

    def generate(self, n_events: int) -> tuple[Particles, np.ndarray]:
        """Return final-state particles of ``n_events`` events and the per-event generator weights."""
        batches = []
        while (done := sum(len(b) for b in batches)) < n_events:  # Pythia skips events that fail
            batches.append(self._pythia.nextBatch(n_events - done, "skip"))
        parts = Particles.concatenate([_final_state(b.prt, self._charge) for b in batches])
        weights = np.concatenate([ak.to_numpy(ak.fill_none(ak.firsts(b.info.weights), 1.0)) for b in batches])
        weights = weights.astype(np.float32)
        if self._pileup is not None:
            parts = self._pileup.overlay(parts)
        return parts, weights


class PileupGenerator:
    """Soft-QCD (non-diffractive) interactions overlaid Poisson(mu) per event, in time."""

    def __init__(self, seed: int, mu: float) -> None:
        self._pythia = _pythia(["Beams:eCM = 13600.", "Tune:pp = 21", "SoftQCD:nonDiffractive = on"], seed)
        self._charge = _ChargeTable(self._pythia.particleData)
        self._rng = np.random.default_rng(seed)
        self.mu = mu

    def overlay(self, hard: Particles) -> Particles:
        n_pu = self._rng.poisson(self.mu, size=hard.n_events)
        total = int(n_pu.sum())
        if total == 0:
            return hard
        pu = _final_state(self._pythia.nextBatch(total, "skip").prt, self._charge)
        # map each pile-up interaction to the hard event it overlays
        owner = np.repeat(np.arange(hard.n_events, dtype=np.int32), n_pu)[: pu.n_events]
        fields = ("pdg", "status", "px", "py", "pz", "e", "m", "charge")
        merged = Particles(
            event=np.concatenate([hard.event, owner[pu.event]]),
            **{f: np.concatenate([getattr(hard, f), getattr(pu, f)]) for f in fields},
            n_events=hard.n_events,
        )
        order = np.argsort(merged.event, kind="stable")  # hard-scatter particles first within each event
        return merged.select(order)


class GunGenerator:
    """Single rho or Delta with flat pT and eta, decayed by Pythia (the seeds' single-particle samples)."""

    def __init__(self, set_name: str, seed: int, pt_range: tuple[float, float], eta_max: float) -> None:
        self._species = np.array(GUN_SPECIES[set_name])
        self._pythia = _pythia(["ProcessLevel:all = off"], seed)
        self._charge = _ChargeTable(self._pythia.particleData)
        self._rng = np.random.default_rng(seed)
        self._pt_range = pt_range
        self._eta_max = eta_max

    def generate(self, n_events: int) -> tuple[Particles, np.ndarray]:
        rng = self._rng
        pdg = rng.choice(self._species, size=n_events)
        pt = rng.uniform(*self._pt_range, size=n_events)
        eta = rng.uniform(-self._eta_max, self._eta_max, size=n_events)
        phi = rng.uniform(-np.pi, np.pi, size=n_events)
        rows = []
        ev = self._pythia.event
        pd = self._pythia.particleData
        for i in range(n_events):  # one Pythia call per event: decays are Pythia's job
            m = pd.mSel(int(pdg[i]))
            px, py, pz = pt[i] * np.cos(phi[i]), pt[i] * np.sin(phi[i]), pt[i] * np.sinh(eta[i])
            ev.reset()
            ev.append(int(pdg[i]), 23, 0, 0, px, py, pz, float(np.sqrt(px * px + py * py + pz * pz + m * m)), m)
            if not self._pythia.next():
                raise RuntimeError(f"Pythia failed to decay particle {pdg[i]}")
            rows.extend(
                (i, q.id(), q.status(), q.px(), q.py(), q.pz(), q.e(), q.m())
                for q in ev.particles()
                if q.isFinal() and q.idAbs() not in _NEUTRINOS
            )
        arr = np.array(rows, dtype=np.float64).reshape(-1, 8)
        pdgs = arr[:, 1].astype(np.int32)
        parts = Particles(
            event=arr[:, 0].astype(np.int32),
            pdg=pdgs,
            status=arr[:, 2].astype(np.int32),
            px=arr[:, 3],
            py=arr[:, 4],
            pz=arr[:, 5],
            e=arr[:, 6],
            m=arr[:, 7],
            charge=self._charge(pdgs),
            n_events=n_events,
        )
        return parts, np.ones(n_events, dtype=np.float32)
