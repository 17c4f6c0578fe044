"""Raw Delphes-style pileup files -> ``OUT/processed/{train,val,test}/pileup_NNNNN.root`` (the contract).

Events are read in order: the training files first (``split.train_files``), then the others, each by
entry; an event's id is its position in that order (for partx's generated files it equals the
generator's ``Event.Number``). ``split.assign`` decides each event's split; ``event.process_event``
makes its arrays (HEPT's features / labels, permuted with ``default_rng([seed, event_id])``); every
``events_per_file`` events of a split become one file. The three split folders are built under hidden
names and swapped in together at the end (``partx.atomic.atomic_dir``): an interrupted or failed run
leaves the previous result untouched. Memory holds one chunk of raw events plus one file per split.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from partx.atomic import atomic_write
from partx.readers.pileup import delphes
from partx.readers.pileup.event import process_event
from partx.readers.pileup.rootio import SplitWriter
from partx.readers.pileup.split import SPLITS, assign, train_files

EVENTS_PER_FILE = 100
RECORD = "partx_pileup_processed.json"


def find_raw(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """Raw ``.root`` files named, or found directly inside the folders named (hidden files skipped)."""
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.glob("*.root") if not q.name.startswith("."))
            if not found:
                raise delphes.RawFileError(f"{p} holds no .root file")
            files += found
        else:
            files.append(p)  # a missing file is reported by delphes.open_tree with its name
    if not files:
        raise delphes.RawFileError("no raw pileup file given")
    return list(dict.fromkeys(files))


def has_processed(root: str | os.PathLike) -> bool:
    """True if ``root/processed/{train,val,test}`` each hold at least one ROOT file."""
    d = Path(root) / "processed"
    return all((d / s).is_dir() and any(p.suffix == ".root" and not p.name.startswith(".") for p in (d / s).iterdir())
               for s in SPLITS)


def preprocess(raw: Sequence[str | os.PathLike], out: str | os.PathLike, *, seed: int = 42,
               events_per_file: int = EVENTS_PER_FILE, force: bool = False, progress: bool = True,
               log: Callable[[str], None] = print) -> dict:
    """Write the processed files of ``raw`` into ``out/processed``; returns a summary.

    Args:
        raw: raw files and / or folders of them.
        out: dataset folder.
        seed: permutation and split seed (HEPT: 42).
        events_per_file: events per processed file.
        force: rebuild an existing processed set.
    """
    files = find_raw(raw)
    sizes = {f: delphes.num_entries(f) for f in files}  # every file opens and has every member, first
    if not sum(sizes.values()):
        raise delphes.RawFileError(f"{', '.join(map(str, files))}: no events (the Delphes tree is empty)")
    first = train_files(files)
    order = first + [f for f in sorted(files, key=lambda p: p.name) if f not in first]
    n_train = sum(sizes[f] for f in first)
    n_all = sum(sizes.values())
    which = assign(n_train, n_all - n_train, seed)
    processed = Path(out) / "processed"
    if has_processed(out) and not force:
        log(f"{processed}: train/val/test already there (--force rebuilds)")
        return {"skipped": True, "processed": str(processed)}
    counts = {s: int((which == k).sum()) for k, s in enumerate(SPLITS)}
    log(f"{len(files)} raw file(s), {n_all} events: train {counts['train']} (from {', '.join(f.name for f in first)}), "
        f"val {counts['val']}, test {counts['test']}")
    from tqdm import tqdm

    bar = tqdm(total=n_all, desc="pileup preprocess", unit="event", disable=not progress)
    n_part, n_scored = [], []
    try:
        with SplitWriter(processed, SPLITS, events_per_file) as w:
            g = 0
            for f in order:
                for start, chunk in delphes.iterate(f):
                    for i in range(len(chunk["PT"])):
                        row = process_event(delphes.event_arrays(chunk, i), g, seed, f"{f}, event {start + i}")
                        w.add(SPLITS[which[g]], row)
                        n_part.append(int(row["n_particles"]))
                        n_scored.append(int(row["part_is_scored"].sum()))
                        g += 1
                        bar.update()
    finally:
        bar.close()
    written = w.files
    rec = {"seed": seed, "events_per_file": events_per_file, "raw": [str(f) for f in order],
           "events": counts, "files": written,
           "particles_per_event": {"mean": float(np.mean(n_part)), "max": int(np.max(n_part))},
           "scored_per_event": {"mean": float(np.mean(n_scored)), "max": int(np.max(n_scored))}}
    atomic_write(processed / RECORD, json.dumps(rec, indent=1) + "\n")
    return {"processed": str(processed), **rec}
