"""Pythia 8 source of TrackML-like collisions: one tt̄ hard scatter + Poisson(μ) minimum-bias pileup.

Each event is reproducible from (seed, event id) alone, whatever worker generates it: the Pythia
random generators are re-seeded per event (``pythia.rndm.init``), so resuming or changing --workers
gives the same events. Both Pythia instances are created once per worker; the minimum-bias
multiparton-interaction tables (~10 s to compute) are cached on disk by Pythia's own
``MultipartonInteractions:reuseInit`` (``mpi_cache_path``).

Particles kept: final-state (status > 0), charged, pT > ``pt_min`` (default 0.1 GeV), |η| < 4.5;
c·τ0 > 10 mm is stable (K0S, Λ decay with displaced vertices, charged pions / kaons reach the tracker).
Vertices: each collision at (N(0, σ_xy), N(0, σ_xy), N(0, σ_z)) mm plus Pythia's own production vertex.
particle_id follows the TrackML bit layout (LAL/trackml-library ``trackml/utils.py``,
``decode_particle_id``): vertex_id (collision index + 1; 1 = hard scatter) in bits 52–63, primary_id
(index of the particle in its collision + 1) in bits 36–51, generation / secondary / process 0.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import awkward as ak
import numpy as np

from partx.datagen.processes import QUIET_STABLE
from partx.datagen.trackml.propagate import Particles

BEAM_ENERGY_CM = 14000.0  # GeV, HL-LHC as the TrackML simulation
SIGMA_Z = 50.0  # mm, luminous region length
SIGMA_XY = 0.015  # mm
MAX_PYTHIA_SEED = 900_000_000

_COMMON = (f"Beams:eCM = {BEAM_ENERGY_CM}", *QUIET_STABLE, "Random:setSeed = on")
HARD = ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on")
MINBIAS = ("SoftQCD:inelastic = on",)


@dataclass
class Event:
    """Charged particles of one event (``Particles``) and their TrackML ids / collision index."""

    particles: Particles
    particle_id: np.ndarray  # (n,) int64
    collision: np.ndarray  # (n,) 0 = hard scatter


def mpi_cache_path(settings: tuple[str, ...]) -> Path:
    """Where Pythia's multiparton-interaction tables for ``settings`` are cached."""
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "partx"
    digest = hashlib.sha1("\n".join(settings).encode()).hexdigest()[:12]
    return base / f"pythia-mpi-{digest}.dat"


def _seed(*parts: int) -> int:
    h = hashlib.sha256(",".join(map(str, parts)).encode()).digest()
    return int.from_bytes(h[:8], "little") % MAX_PYTHIA_SEED + 1


def _pythia(settings: tuple[str, ...], cache: bool):
    import pythia8mc

    p = pythia8mc.Pythia("", False)
    extra: tuple[str, ...] = ()
    if cache:
        path = mpi_cache_path(settings)
        if path.is_file():
            extra = ("MultipartonInteractions:reuseInit = 2", f"MultipartonInteractions:initFile = {path}")
        else:
            # compute, save under a private name, publish by rename: concurrent workers never read half a file
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            extra = ("MultipartonInteractions:reuseInit = 1", f"MultipartonInteractions:initFile = {tmp}")
    for s in _COMMON + settings + extra:
        if not p.readString(s):
            raise RuntimeError(f"Pythia rejected setting {s!r}")
    if not p.init():
        raise RuntimeError(f"Pythia init failed for {settings}")
    if cache and extra[0].endswith("1"):
        tmp = Path(extra[1].split("=", 1)[1].strip())
        if tmp.is_file():
            os.replace(tmp, mpi_cache_path(settings))
    return p


def final_state(pythia, n: int) -> dict[str, np.ndarray]:
    """Final-state particles (status > 0) of ``n`` collisions from ``pythia.nextBatch``, flattened.

    Returns arrays ``coll`` (collision 0..n-1), ``index`` (position in its collision's event record),
    ``status``, ``id``, ``px``, ``py``, ``pz``, ``e`` (GeV) and ``vx``, ``vy``, ``vz`` (production vertex, mm).
    Shared by the TrackML and pileup generators.
    """
    prt = pythia.nextBatch(n).prt
    nper = ak.to_numpy(ak.num(prt)).astype(np.int64)
    f = {
        "coll": np.repeat(np.arange(len(nper)), nper),
        "status": ak.to_numpy(ak.flatten(prt.status)),
        "id": ak.to_numpy(ak.flatten(prt.id)),
        "px": ak.to_numpy(ak.flatten(prt.p.px)), "py": ak.to_numpy(ak.flatten(prt.p.py)),
        "pz": ak.to_numpy(ak.flatten(prt.p.pz)), "e": ak.to_numpy(ak.flatten(prt.p.e)),
        "vx": ak.to_numpy(ak.flatten(ak.fill_none(prt.vProd.px, 0.0))),
        "vy": ak.to_numpy(ak.flatten(ak.fill_none(prt.vProd.py, 0.0))),
        "vz": ak.to_numpy(ak.flatten(ak.fill_none(prt.vProd.pz, 0.0))),
    }
    f["index"] = np.arange(len(f["id"])) - np.repeat(np.cumsum(nper) - nper, nper)
    keep = f["status"] > 0
    return {k: v[keep] for k, v in f.items()}


class EventSource:
    """tt̄ + Poisson(``pileup``) minimum bias, per event id.

    Args:
        seed: run seed; event ``k`` uses seeds derived from (seed, k).
        pileup: mean number μ of minimum-bias collisions (0: hard scatter only).
        pt_min: particles below this pT (GeV) are dropped.
        hard_scatter: include the tt̄ collision (False: pileup only).
    """

    def __init__(self, seed: int, pileup: float, pt_min: float = 0.1, hard_scatter: bool = True):
        self.seed, self.pileup, self.pt_min = seed, pileup, pt_min
        self.hard = _pythia(HARD, cache=False) if hard_scatter else None
        self.minbias = _pythia(MINBIAS, cache=True) if pileup > 0 else None
        self._charge: dict[int, float] = {}

    def _charges(self, pid: np.ndarray, pythia) -> np.ndarray:
        uniq, inv = np.unique(pid, return_inverse=True)
        vals = np.empty(len(uniq))
        for k, u in enumerate(uniq.tolist()):
            if u not in self._charge:
                self._charge[u] = float(pythia.particleData.charge(u))
            vals[k] = self._charge[u]
        return vals[inv]

    def _collisions(self, pythia, n: int) -> dict[str, np.ndarray]:
        f = final_state(pythia, n)
        f["q"] = self._charges(f["id"], pythia)
        pt = np.hypot(f["px"], f["py"])
        eta = np.arcsinh(np.divide(f["pz"], pt, out=np.zeros_like(pt), where=pt > 0))
        keep = (f["q"] != 0) & (pt > self.pt_min) & (np.abs(eta) < 4.5)
        return {k: v[keep] for k, v in f.items()}

    def event(self, event_id: int) -> Event:
        """Generate event ``event_id`` (deterministic in (seed, event_id))."""
        rng = np.random.default_rng([self.seed, event_id, 1])
        parts = []
        if self.hard is not None:
            self.hard.rndm.init(_seed(self.seed, event_id, 0))
            parts.append(self._collisions(self.hard, 1))
        n_pu = int(rng.poisson(self.pileup)) if self.minbias is not None else 0
        if n_pu:
            self.minbias.rndm.init(_seed(self.seed, event_id, 1))
            mb = self._collisions(self.minbias, n_pu)
            mb["coll"] = mb["coll"] + (1 if self.hard is not None else 0)
            parts.append(mb)
        if not parts:
            f = {k: np.zeros(0) for k in ("coll", "px", "py", "pz", "e", "vx", "vy", "vz", "q", "index")}
        else:
            f = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        ncoll = int(f["coll"].max()) + 1 if len(f["coll"]) else 0
        vtx = np.stack([rng.normal(0, SIGMA_XY, ncoll), rng.normal(0, SIGMA_XY, ncoll), rng.normal(0, SIGMA_Z, ncoll)], 1)
        c = f["coll"].astype(np.int64)
        pid = ((c + 1) << 52) | (((f["index"].astype(np.int64) + 1) & 0xFFFF) << 36)
        p = Particles(vx=f["vx"] + vtx[c, 0], vy=f["vy"] + vtx[c, 1], vz=f["vz"] + vtx[c, 2],
                      px=f["px"], py=f["py"], pz=f["pz"], q=f["q"], e=f["e"])
        return Event(p, pid, c)
