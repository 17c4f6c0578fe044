"""One event's PF candidates -> HEPT's per-particle arrays (the processed-data contract's branches).

Reference: Graph-COM/HEPT ``src/datasets/pileup.py``, ``process_one_event``:

* x = [eta, phi, px, py, pt, E, rapidity, pid_class] (float32), pid_class: charged (Charge != 0) 0,
  PID 22 -> 1, 130 -> 2, 310 -> 3, |PID| 2112 -> 4, 3122 -> 5, 3322 -> 6;
* y = (IsPU == 0): from the leading vertex;
* is_neu = (Charge == 0) & (PT > 0.9): the scored particles;
* a random permutation of the candidates ("in case all positive points are put at the beginning").

Differences, on purpose: HEPT asserts ``max |pid_class| == 6`` (which also rejects an event without a
Ξ0); partx names the file, event and first unknown PID instead, and accepts events without a Ξ0. HEPT
draws the permutation from NumPy's global generator inside 32 threads (not reproducible); partx draws
it from ``default_rng([seed, event_id])`` (reproducible, independent of processing order). NaN / inf
values and events without candidates are errors (HEPT would train on the first and crash on the second).
"""

from __future__ import annotations

import numpy as np

from partx.cli import UserError
from partx.readers.pileup.delphes import FLOAT_FIELDS

#: neutral PDG id (absolute value unless noted in PID_SIGNED) -> pid_class
PID_CLASS = {22: 1, 130: 2, 310: 3, 2112: 4, 3122: 5, 3322: 6}
#: HEPT compares these without abs(): -22, -130, -310 do not exist, and are unknown here
PID_SIGNED = (22, 130, 310)
FEATURES = ("eta", "phi", "px", "py", "pt", "e", "rapidity", "pid_class")
#: contract branch (without ``part_``) -> dtype
PART_DTYPES = {**{f: "float32" for f in FEATURES}, "charge": "float32", "is_lv": "float32", "is_scored": "float32"}
SCORE_PT_MIN = 0.9  # GeV


class BadEvent(UserError):
    """An event HEPT's preprocessing cannot use (unknown PID, NaN / inf, no candidates)."""


def pid_class(pid: np.ndarray, charge: np.ndarray) -> np.ndarray:
    """HEPT's pid mapping (int32, -1 for an unknown neutral PDG id)."""
    out = np.full(len(pid), -1, dtype=np.int32)
    out[charge != 0] = 0
    neutral = charge == 0
    for code, cls in PID_CLASS.items():
        match = (pid == code) if code in PID_SIGNED else (np.abs(pid) == code)
        out[neutral & match] = cls
    return out


def process_event(ev: dict[str, np.ndarray], event_id: int, seed: int, where: str = "") -> dict[str, np.ndarray]:
    """The contract's per-particle arrays of one event, permuted.

    Args:
        ev: PF members (``delphes.FIELDS``), arrays (N,).
        event_id: the event's id (seeds its permutation).
        seed: preprocessing seed.
        where: "file, event k" for error messages.
    Returns:
        {"event_id", "n_particles", "part_<name>" (N,) for each of ``PART_DTYPES``}.
    """
    n = len(ev["PT"])
    if n == 0:
        raise BadEvent(f"{where}: no PF candidates (empty event)")
    for k in FLOAT_FIELDS:
        bad = ~np.isfinite(ev[k])
        if bad.any():
            raise BadEvent(f"{where}: PF.{k} has {int(bad.sum())} NaN/inf value(s)")
    charge = ev["Charge"]
    cls = pid_class(ev["PID"], charge)
    if (cls < 0).any():
        bad = np.unique(ev["PID"][cls < 0])
        raise BadEvent(f"{where}: unknown neutral PID {int(bad[0])}"
                       + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else "")
                       + f"; HEPT's classes: charged, {', '.join(map(str, PID_CLASS))}")
    pt = ev["PT"].astype(np.float32)
    cols = {"eta": ev["Eta"], "phi": ev["Phi"], "px": ev["Px"], "py": ev["Py"], "pt": pt, "e": ev["E"],
            "rapidity": ev["Rapidity"], "pid_class": cls, "charge": charge, "is_lv": ev["IsPU"] == 0,
            "is_scored": (charge == 0) & (pt > SCORE_PT_MIN)}
    perm = np.random.default_rng([seed, event_id]).permutation(n)
    out: dict[str, np.ndarray] = {"event_id": np.int64(event_id), "n_particles": np.int32(n)}
    for k, dt in PART_DTYPES.items():
        out[f"part_{k}"] = np.asarray(cols[k]).astype(dt)[perm]
    return out
