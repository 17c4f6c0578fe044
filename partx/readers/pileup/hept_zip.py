"""Read HEPT's processed pileup file (Zenodo record 10694703, ``pileup-10k-processed.zip``) into partx's layout.

HEPT's ``src/datasets/pileup.py`` (``Pileup.process``) stores the whole dataset as ``data.pt``:
``torch.save((data, slices, idx_split))``, ``data`` the PyG ``Data`` of every event concatenated
(``InMemoryDataset.collate``) with ``x`` (N, 8) = [eta, phi, px, py, pt, E, rapidity, pid_class],
``y`` (LV label), ``is_neu`` (scored), ``pos`` (= x[:, :2]) and kNN edges (not needed), and
``idx_split`` = {"train", "valid", "test"} event indices. Unpickling reuses the TrackML reader's
torch_geometric-free loader (``partx.readers.trackml.hept_zip.load_hept_processed``).

Written: ``OUT/processed/{train,val,test}/pileup_NNNNN.root`` (HEPT's own split, events in its index
order, the rows in HEPT's stored permutation), ``event_id`` = HEPT's event index. HEPT keeps no charge
sign: ``part_charge`` is +1 for every charged candidate (pid_class 0) and 0 for neutrals.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from partx.readers.pileup.event import FEATURES
from partx.readers.pileup.rootio import SplitWriter
from partx.readers.trackml.hept_zip import HEPTFileError, extract_pt, load_hept_processed

KEYS = ("x", "y", "is_neu")
HEPT_SPLITS = {"train": "train", "valid": "val", "test": "test"}


def event_row(mapping: dict, slices: dict, i: int) -> dict[str, np.ndarray]:
    """Event ``i`` of HEPT's concatenated tensors as one contract row."""
    g = {k: mapping[k][int(slices[k][i]):int(slices[k][i + 1])].numpy() for k in KEYS}
    x = g["x"].astype(np.float32)
    if x.ndim != 2 or x.shape[1] != len(FEATURES):
        raise HEPTFileError(f"HEPT event {i}: x has shape {x.shape}, expected (N, {len(FEATURES)})")
    row = {"event_id": np.int64(i), "n_particles": np.int32(len(x))}
    for j, name in enumerate(FEATURES):
        row[f"part_{name}"] = x[:, j]
    row["part_charge"] = (x[:, 7] == 0).astype(np.float32)
    row["part_is_lv"] = g["y"].astype(np.float32)
    row["part_is_scored"] = g["is_neu"].astype(np.float32)
    return row


def convert_hept(source: str | os.PathLike, out_dir: str | os.PathLike, *, events_per_file: int = 100,
                 progress: bool = True) -> dict:
    """HEPT's ``pileup-10k-processed.zip`` (or its folder, or ``data.pt``) -> ``out_dir/processed/{train,val,test}``.

    Returns a summary (events per split, files, unpickler used).
    """
    from tqdm import tqdm

    from partx.cli import writable_dir

    processed = writable_dir(Path(out_dir) / "processed")
    pt = extract_pt(source, processed / ".hept", pattern="data.pt")
    mapping, slices, how, split = load_hept_processed(pt, keys=KEYS, marker=("x", "is_neu"), with_split=True)
    if not isinstance(split, dict) or set(split) != set(HEPT_SPLITS):
        raise HEPTFileError(f"{pt}: no idx_split with train / valid / test as HEPT's Pileup.process saves it")
    counts = {}
    with SplitWriter(processed, tuple(HEPT_SPLITS.values()), events_per_file) as w:
        for theirs, ours in HEPT_SPLITS.items():
            idx = np.asarray(split[theirs]).astype(np.int64).ravel()
            counts[ours] = len(idx)
            for i in tqdm(idx, desc=f"HEPT pileup {ours}", disable=not progress):
                w.add(ours, event_row(mapping, slices, int(i)))
    return {"events": counts, "files": w.files, "unpickler": how, "source": str(pt)}
