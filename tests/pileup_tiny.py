"""Tiny synthetic events in the processed pileup format (the contract of partx.readers.pileup), for the model tests.

Not a physics simulation: a few leading-vertex (LV) "jets" (charged and neutral particles clustered in
eta-phi with a hard pT spectrum) on top of uniformly spread soft pileup. LV neutrals sit near LV charged
particles and are harder, so the labels are learnable by a local model in a few steps. The files have the
branches, types and layout of the contract: tree ``Events``, one row per event, ``event_id`` int64,
``n_particles`` int32 and float32 jagged ``part_*`` branches, the particles randomly permuted (as HEPT),
``part_is_scored = charge == 0 and pT > 0.9``, written to ``{root}/processed/{train,val,test}/pileup_NNNNN.root``.
"""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np

#: pid_class -> mass (GeV): charged pion, photon, K0L, (K0S), neutron
MASS = {0: 0.1396, 1: 0.0, 2: 0.4976, 3: 0.4976, 4: 0.9396}
BRANCHES = ("part_eta", "part_phi", "part_px", "part_py", "part_pt", "part_e", "part_rapidity", "part_pid_class",
            "part_charge", "part_is_lv", "part_is_scored")


def make_event(seed: int, n_jets: int = 3, n_pu_charged: int = 120, n_pu_neutral: int = 100) -> dict[str, np.ndarray]:
    """One event: per-particle arrays named as the contract's branches (without the ``part_`` prefix)."""
    rng = np.random.default_rng(seed)
    eta, phi, pt, pid, lv = [], [], [], [], []
    for _ in range(n_jets):  # LV jets: 12 charged + 8 neutral particles within ~0.1 of an axis
        ce, cp = rng.uniform(-2.0, 2.0), rng.uniform(-np.pi, np.pi)
        for n, classes in ((12, [0]), (8, [1, 2, 4])):
            eta.append(ce + rng.normal(0, 0.1, n))
            phi.append(cp + rng.normal(0, 0.1, n))
            pt.append(rng.exponential(6.0, n) + 1.0)
            pid.append(rng.choice(classes, n))
            lv.append(np.ones(n, bool))
    for n, classes, eta_max in ((n_pu_charged, [0], 2.5), (n_pu_neutral, [1, 2, 4], 3.0)):  # soft, uniform pileup
        eta.append(rng.uniform(-eta_max, eta_max, n))
        phi.append(rng.uniform(-np.pi, np.pi, n))
        pt.append(rng.exponential(0.8, n) + 0.3)
        pid.append(rng.choice(classes, n))
        lv.append(np.zeros(n, bool))
    eta, phi, pt, pid, lv = (np.concatenate(a) for a in (eta, phi, pt, pid, lv))
    phi = np.mod(phi + np.pi, 2 * np.pi) - np.pi
    mass = np.vectorize(MASS.get)(pid)
    mt = np.hypot(pt, mass)
    rapidity = np.arcsinh(pt * np.sinh(eta) / mt)
    charge = np.where(pid == 0, rng.choice([-1, 1], len(pid)), 0)
    perm = rng.permutation(len(pt))  # HEPT shuffles so that no class sits first
    ev = dict(eta=eta, phi=phi, px=pt * np.cos(phi), py=pt * np.sin(phi), pt=pt, e=mt * np.cosh(rapidity), rapidity=rapidity,
              pid_class=pid, charge=charge, is_lv=lv, is_scored=(charge == 0) & (pt > 0.9))
    return {k: v[perm] for k, v in ev.items()}


def write_file(path: str | Path, seeds: list[int]) -> Path:
    """Write the events of ``seeds`` to one contract-format ROOT file."""
    import uproot

    events = [make_event(s) for s in seeds]
    arrays = {"event_id": np.asarray(seeds, np.int64), "n_particles": np.asarray([len(e["pt"]) for e in events], np.int32)}
    for b in BRANCHES:
        arrays[b] = ak.Array([e[b[len("part_"):]].astype(np.float32) for e in events])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with uproot.recreate(path, compression=uproot.LZ4(4)) as f:
        f["Events"] = arrays
    return path


def write_set(root: str | Path, n_train: int = 12, n_val: int = 4, n_test: int = 4, per_file: int = 4, seed: int = 0) -> Path:
    """``{root}/processed/{train,val,test}/pileup_NNNNN.root`` with ``per_file`` events per file; returns root."""
    root = Path(root)
    start = seed * 100_000
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        for i, first in enumerate(range(0, n, per_file)):
            write_file(root / "processed" / split / f"pileup_{i:05d}.root", list(range(start + first, start + min(first + per_file, n))))
        start += n
    return root
