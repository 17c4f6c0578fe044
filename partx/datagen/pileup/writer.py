"""Write PF candidates as a Delphes-style ROOT file that uproot can write (and read back by field name).

Real Delphes files hold a ``TClonesArray`` branch ``PF`` split into sub-branches, read by HEPT as
``tree.arrays(["PF/PF.PT", ...])``. uproot cannot write ``TClonesArray`` splits, so partx writes the
closest layout it can: tree ``Delphes``, counter ``PF_size`` (int32, Delphes' name for the array size)
and one jagged branch per member named as Delphes names its leaves, ``PF.PT``, ``PF.Eta``, ...
(``mktree`` with ``counter_name`` / ``field_name``), plus ``Event.Number`` (int64). The reader
(``partx.readers.pileup.delphes``) finds each member by its logical name in either layout.
Types as Delphes: Float_t members float32, Int_t members (Charge, PID, IsPU) int32.
"""

from __future__ import annotations

import os
from pathlib import Path

import awkward as ak
import numpy as np

from partx.atomic import atomic_path
from partx.datagen.pileup.events import PF_DTYPES
from partx.readers.trackml.rootio import _compression

TREE = "Delphes"
BRANCH = "PF"


def write_delphes(path: str | os.PathLike, events: list[dict[str, np.ndarray]], numbers: list[int]) -> Path:
    """Write ``events`` (each: ``PF_DTYPES`` arrays of one event) to ``path`` through a temporary file.

    Args:
        path: target ``.root`` file.
        events: PF candidates per event.
        numbers: event numbers (``Event.Number``), one per event.
    """
    import uproot

    path = Path(path)
    counts = np.array([len(e["PT"]) for e in events], dtype=np.int64)
    pf = ak.zip({k: ak.unflatten(np.concatenate([np.asarray(e[k], dt) for e in events]) if events
                                 else np.zeros(0, dt), counts) for k, dt in PF_DTYPES.items()})
    data = {"Event.Number": np.asarray(numbers, dtype=np.int64), BRANCH: pf}
    types = {"Event.Number": np.dtype(np.int64), BRANCH: pf.type.content}
    with atomic_path(path) as tmp, uproot.recreate(tmp, compression=_compression()) as f:
        f.mktree(TREE, types, counter_name=lambda name: f"{name}_size",
                 field_name=lambda outer, inner: f"{outer}.{inner}").extend(data)
    return path
