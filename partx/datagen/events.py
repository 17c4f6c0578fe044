"""Pythia 8 event source: batches of events as flat numpy arrays plus per-event truth.

``Pythia.nextBatch(n)`` returns awkward arrays; everything here is vectorised over the batch except
the truth walk, which visits only the few resonance candidates per event (never all particles).
"""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np

from partx.datagen.processes import process, pythia_settings

NEUTRINO_IDS = (12, 14, 16)
#: resonances that are expanded further when they appear among decay products
_EXPAND = (6, 23, 24, 25)
#: Pythia accepts seeds in [0, 900_000_000]
MAX_PYTHIA_SEED = 900_000_000


@dataclass
class GenPart:
    """One truth object: a resonance with its decay tree, or a hard QCD parton."""

    pt: np.ndarray  # (k,) first entry is the resonance / parton itself
    eta: np.ndarray
    phi: np.ndarray
    pid: np.ndarray
    visible: np.ndarray  # (k,) bool: final decay products that must lie inside the jet
    ok: bool = True  # decay pattern matches the class (e.g. leptonic top for TTBarLep)


@dataclass
class Batch:
    """Visible final-state particles of a batch of events, flattened, with an event index."""

    n_events: int
    evt: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    pid: np.ndarray
    charge: np.ndarray
    vx: np.ndarray  # production vertex, mm
    vy: np.ndarray
    vz: np.ndarray
    truth: list[list[GenPart]]  # per event: resonances (signal) or hard partons (QCD)


def kin(px, py, pz):
    """(pt, eta, phi) of momentum components (numpy arrays or scalars)."""
    pt = np.hypot(px, py)
    eta = np.arcsinh(np.divide(pz, pt, out=np.zeros_like(np.asarray(pz, dtype=float)), where=np.asarray(pt) > 0))
    phi = np.arctan2(py, px)
    return pt, eta, phi


class EventSource:
    """A configured Pythia instance for one class / variant producing :class:`Batch` objects."""

    def __init__(self, stem: str, variant: int, seed: int, *, fast: bool = False):
        import pythia8mc  # imported lazily: only generation needs it

        self.stem = stem
        self.proc = process(stem)
        self.pythia = pythia8mc.Pythia("", False)
        for s in pythia_settings(stem, variant, seed % MAX_PYTHIA_SEED, fast=fast):
            if not self.pythia.readString(s):
                raise RuntimeError(f"Pythia rejected setting {s!r}")
        if not self.pythia.init():
            raise RuntimeError(f"Pythia init failed for {stem} variant {variant}")
        self._charge_cache: dict[int, float] = {}

    def _charges(self, pid: np.ndarray) -> np.ndarray:
        uniq, inv = np.unique(pid, return_inverse=True)
        pdata = self.pythia.particleData
        vals = np.empty(len(uniq))
        for k, u in enumerate(uniq.tolist()):
            if u not in self._charge_cache:
                self._charge_cache[u] = float(pdata.charge(u))
            vals[k] = self._charge_cache[u]
        return vals[inv]

    def next(self, n_events: int) -> Batch:
        prt = self.pythia.nextBatch(n_events).prt
        nper = ak.to_numpy(ak.num(prt)).astype(np.int64)
        offs = np.concatenate([[0], np.cumsum(nper)])
        flat = {
            "id": ak.to_numpy(ak.flatten(prt.id)),
            "status": ak.to_numpy(ak.flatten(prt.status)),
            "d1": ak.to_numpy(ak.flatten(prt.daughter1)),
            "d2": ak.to_numpy(ak.flatten(prt.daughter2)),
            "px": ak.to_numpy(ak.flatten(prt.p.px)),
            "py": ak.to_numpy(ak.flatten(prt.p.py)),
            "pz": ak.to_numpy(ak.flatten(prt.p.pz)),
            "e": ak.to_numpy(ak.flatten(prt.p.e)),
        }
        vprod = prt.vProd
        vx = ak.to_numpy(ak.flatten(ak.fill_none(vprod.px, 0.0)))
        vy = ak.to_numpy(ak.flatten(ak.fill_none(vprod.py, 0.0)))
        vz = ak.to_numpy(ak.flatten(ak.fill_none(vprod.pz, 0.0)))
        nev = len(nper)
        evt_all = np.repeat(np.arange(nev), nper)

        ids = flat["id"]
        fs = (flat["status"] > 0) & ~np.isin(np.abs(ids), NEUTRINO_IDS)
        truth = self._truth(flat, offs, evt_all, nev)
        return Batch(
            n_events=nev,
            evt=evt_all[fs],
            px=flat["px"][fs], py=flat["py"][fs], pz=flat["pz"][fs], e=flat["e"][fs],
            pid=ids[fs].astype(np.int32),
            charge=self._charges(ids[fs]),
            vx=vx[fs], vy=vy[fs], vz=vz[fs],
            truth=truth,
        )

    # ------------------------------------------------------------------ truth
    def _truth(self, f: dict, offs: np.ndarray, evt_all: np.ndarray, nev: int) -> list[list[GenPart]]:
        ids = f["id"]
        out: list[list[GenPart]] = [[] for _ in range(nev)]
        res = self.proc.resonance
        if res == 0:  # QCD: outgoing partons of the hard process (status -23)
            sel = np.flatnonzero((f["status"] == -23) & ((np.abs(ids) <= 5) | (ids == 21)))
            for g in sel:
                out[evt_all[g]].append(self._genpart(f, [int(g)], []))
            return out
        d1g = offs[evt_all] + f["d1"]
        last = (np.abs(ids) == res) & ~((f["d1"] > 0) & (ids[np.minimum(d1g, len(ids) - 1)] == ids))
        for g in np.flatnonzero(last):
            ev = evt_all[g]
            inter, finals = self._walk(int(g), int(offs[ev]), f)
            gp = self._genpart(f, [int(g)] + inter, finals)
            gp.ok = self._decay_ok(ids, inter, finals)
            out[ev].append(gp)
        return out

    def _last_copy(self, g: int, off: int, f: dict) -> int:
        ids, d1, d2 = f["id"], f["d1"], f["d2"]
        while d1[g] > 0 and d1[g] == d2[g] and ids[off + d1[g]] == ids[g]:
            g = off + int(d1[g])
        return g

    def _walk(self, g: int, off: int, f: dict) -> tuple[list[int], list[int]]:
        """Intermediate resonances and final decay products (global indices) below resonance g."""
        ids, d1, d2 = f["id"], f["d1"], f["d2"]
        inter: list[int] = []
        finals: list[int] = []
        lo, hi = int(d1[g]), int(d2[g])
        if lo <= 0:
            return inter, finals
        for loc in range(lo, max(hi, lo) + 1):
            d = off + loc
            if abs(ids[d]) in _EXPAND:
                dl = self._last_copy(d, off, f)
                inter.append(dl)
                i2, f2 = self._walk(dl, off, f)
                inter += i2
                finals += f2
            else:
                finals.append(d)
        return inter, finals

    @staticmethod
    def _genpart(f: dict, head: list[int], finals: list[int]) -> GenPart:
        idx = np.asarray(head + finals, dtype=np.int64)
        pt, eta, phi = kin(f["px"][idx], f["py"][idx], f["pz"][idx])
        pid = f["id"][idx]
        visible = np.zeros(len(idx), dtype=bool)
        visible[len(head):] = ~np.isin(np.abs(pid[len(head):]), NEUTRINO_IDS)
        if not finals:  # a bare parton (QCD): the parton itself is the object to contain
            visible[0] = True
        return GenPart(pt=pt, eta=eta, phi=phi, pid=pid, visible=visible)

    def _decay_ok(self, ids: np.ndarray, inter: list[int], finals: list[int]) -> bool:
        w = self.proc.w_decay
        if not w:
            return True
        fin = np.abs(ids[finals])
        nlep = int(np.isin(fin, (11, 13, 15)).sum())
        nq = int((fin <= 5).sum())
        if w == "had":
            return nlep == 0
        if w == "lep":
            return nlep == 1
        if w == "one_lep":
            return nlep == 1 and nq == 2
        return True
