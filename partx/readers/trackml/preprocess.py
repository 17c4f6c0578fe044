"""Raw TrackML CSV events -> HEPT-exact point clouds in ROOT files weaver reads, for several sector sets.

Output layout (one file per event and set, so an interrupted run resumes event by event; each file is
written under a temporary name and renamed when complete, ``partx.atomic``)::

    OUT/processed/manifest.json                 the event split (checked on resume)
    OUT/processed/{set}/{train,val,test}/event%09d.root     tree Events, 1 row (full) or n rows (sectors)
    OUT/processed/preprocess_stats.json         hits per event / row, events/s of the last run

Each event is read and its features computed once, then cut into the sectors of every requested set.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

from partx.atomic import atomic_write
from partx.cli import UserError, writable_dir
from partx.datagen.trackml import schema
from partx.datagen.trackml.io import TrackMLFormatError, list_events, read_detectors, read_event
from partx.readers.trackml.event import EventHits, build_event
from partx.readers.trackml.features import DetectorTable, hept_coords, scaled_features
from partx.readers.trackml.rootio import write_rows
from partx.readers.trackml.sectors import SET_LENGTHS, SETS, sector_hits
from partx.readers.trackml.split import SPLITS, split_events


def event_rows(ev: EventHits, n_sectors: int) -> list[dict[str, np.ndarray]]:
    """The output rows of one event for one sector count (see ``rootio`` for the branches)."""
    x = scaled_features(ev.raw, ev.layer)
    coords = hept_coords(ev.raw, x)
    nz = np.unique(ev.particle_id[ev.particle_id > 0])
    pindex = np.where(ev.particle_id > 0, np.searchsorted(nz, ev.particle_id) + 1, 0)
    rows = []
    for s, (idx, label) in enumerate(sector_hits(ev, n_sectors)):
        row = {"event_id": ev.event_id, "sector_id": s, "n_sectors": n_sectors}
        for j, name in enumerate(("r", "phi", "z", "eta_rz", "u", "v", "charge_frac", "leta", "lphi",
                                  "lx", "ly", "lz", "geta", "gphi", "layer")):
            row[f"hit_{name}"] = x[idx, j]
        row.update(hit_pos_eta=coords[idx, 0], hit_pos_phi=coords[idx, 1], hit_particle_id=ev.particle_id[idx],
                   hit_particle_index=pindex[idx], hit_pt=ev.pt[idx],
                   hit_reconstructable=ev.reconstructable[idx], hit_particle_eta=ev.particle_eta[idx],
                   hit_sector=label, hit_particle_nhits=ev.n_hits[idx], hit_particle_nlayers=ev.n_layers_hit[idx],
                   hit_layer_id=ev.layer[idx], hit_id=ev.hit_id[idx])
        rows.append(row)
    return rows


def find_detectors(raw_dir: Path, detectors: str | os.PathLike | None) -> Path:
    """``--detectors`` or detectors.csv[.gz] in the raw directory or its parent; else a UserError."""
    if detectors is not None:
        p = Path(detectors)
        if not p.is_file():
            raise UserError(f"detectors file {p} does not exist")
        return p
    for d in (raw_dir, raw_dir.parent):
        for name in ("detectors.csv", "detectors.csv.gz"):
            if (d / name).is_file():
                return d / name
    raise UserError(f"no detectors.csv in {raw_dir} or {raw_dir.parent}: HEPT's cell features need the module "
                    f"geometry (Kaggle's detectors.zip, or the generator's detectors.csv); pass --detectors FILE")


_DETECTOR: DetectorTable | None = None


def _init_worker(detectors_path: str) -> None:
    global _DETECTOR
    _DETECTOR = DetectorTable(read_detectors(detectors_path))


def _process_one(raw_dir: str, event_id: int, targets: dict[str, str]) -> dict:
    """Worker: one event -> its files for every set in ``targets`` (set name -> path)."""
    t0 = time.perf_counter()
    ev = build_event(event_id, read_event(raw_dir, event_id), _DETECTOR)
    hits_per_row = {}
    for name, path in targets.items():
        rows = event_rows(ev, SETS[name])
        write_rows(path, rows)
        hits_per_row[name] = [len(r["hit_id"]) for r in rows]
    return {"event_id": event_id, "n_pixel_hits": len(ev), "hits_per_row": hits_per_row,
            "seconds": time.perf_counter() - t0,
            "reconstructable_pt09": _frac_reconstructable(ev)}


def _frac_reconstructable(ev: EventHits) -> float:
    """Fraction of particles with pT > 0.9 GeV (and >= 1 pixel hit) that are reconstructable."""
    sel = (ev.particle_id > 0) & (ev.pt > 0.9)
    pids, first = np.unique(ev.particle_id[sel], return_index=True)
    return float(ev.reconstructable[sel][first].mean()) if len(pids) else float("nan")


def _check_manifest(processed: Path, split: dict[str, list[int]], raw_dir: Path, force: bool) -> None:
    path = processed / "manifest.json"
    new = {"raw_dir": str(raw_dir), "split": split,
           "reference": "Graph-COM/HEPT point_cloud_builder.py + src/datasets/tracking.py (partx.readers.trackml)"}
    if path.exists() and not force:
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise UserError(f"{path} is unreadable ({err}); remove it or pass --force") from None
        if old.get("split") != split:
            raise UserError(f"{path} records a different event split (other raw events?); use a new --out or "
                            f"pass --force to rebuild every file")
        return
    atomic_write(path, json.dumps(new, indent=1) + "\n")


def preprocess(raw_dir: str | os.PathLike, out_dir: str | os.PathLike, sets: list[str], *,
               detectors: str | os.PathLike | None = None, workers: int = 1, force: bool = False,
               max_events: int | None = None, progress: bool = True,
               log: Callable[[str], None] = print) -> dict:
    """Preprocess every event of ``raw_dir`` into ``out_dir/processed/{set}/{split}/``; return run statistics.

    Args:
        raw_dir: folder of ``event%09d-{hits,cells,particles,truth}.csv[.gz]``.
        out_dir: dataset folder (``processed/`` is created in it).
        sets: names of ``SETS`` (full, 20k, 15k, 10k, 6k, 3k).
        detectors: detectors.csv (default: in raw_dir or its parent).
        workers: processes.
        force: rewrite existing files (and the manifest).
        max_events: only the first N events (by id) -- the split is made over these.
        log: where messages go (resume note, truncation warning).
    """
    from tqdm import tqdm

    unknown = [s for s in sets if s not in SETS]
    if unknown or not sets:
        raise UserError(f"unknown set(s) {', '.join(unknown) or '(none given)'}: choose from {', '.join(SETS)}")
    raw_dir = Path(raw_dir)
    events = list_events(raw_dir, parts=schema.PARTS)
    if not events:
        raise TrackMLFormatError(f"{raw_dir} holds no complete TrackML event "
                                 f"(event%09d-{{hits,cells,particles,truth}}.csv[.gz])")
    if max_events is not None:
        events = events[:max_events]
    det_path = find_detectors(raw_dir, detectors)
    _init_worker(str(det_path))  # validates detectors.csv here, before any work (one line on error)
    processed = writable_dir(Path(out_dir) / "processed")
    split = split_events(events)
    _check_manifest(processed, split, raw_dir.resolve(), force)

    jobs = []
    for part in SPLITS:
        for e in split[part]:
            targets = {s: str(processed / s / part / f"event{e:09d}.root") for s in sets}
            if not force:
                targets = {s: p for s, p in targets.items() if not Path(p).exists()}
            if targets:
                jobs.append((str(raw_dir), e, targets))
    skipped = len(events) - len(jobs)
    if skipped:
        log(f"resuming: {skipped} of {len(events)} event(s) already preprocessed for {', '.join(sets)}")
    results = []
    t0 = time.perf_counter()
    with tqdm(total=len(jobs), desc="TrackML preprocess", unit="event", disable=not progress) as bar:
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                results.append(_process_one(*job))
                bar.update()
        else:
            with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(str(det_path),)) as pool:
                futures = [pool.submit(_process_one, *job) for job in jobs]
                for f in futures:
                    results.append(f.result())
                    bar.update()
    wall = time.perf_counter() - t0
    stats = summarize(results, wall, workers)
    stats["out"] = str(processed)
    for name, h in stats.get("hits_per_row", {}).items():
        if h["max"] > SET_LENGTHS[name]:
            log(f"WARNING: set {name}: a row has {h['max']} hits, more than the {SET_LENGTHS[name]} of "
                f"data/TrackML/TrackML_{name}.yaml: weaver keeps only the first {SET_LENGTHS[name]} (outer layers "
                f"dropped); raise `length` there")
    if results:
        atomic_write(processed / "preprocess_stats.json", json.dumps(stats, indent=1) + "\n")
    return stats


def summarize(results: list[dict], wall: float, workers: int) -> dict:
    """Events/s and hits per event / row of one run."""
    out: dict = {"events": len(results), "wall_s": round(wall, 3), "workers": workers,
                 "events_per_s": round(len(results) / wall, 4) if wall > 0 and results else None}
    if not results:
        return out
    n = np.array([r["n_pixel_hits"] for r in results])
    out["pixel_hits_per_event"] = {"mean": float(n.mean()), "min": int(n.min()), "max": int(n.max())}
    out["reconstructable_fraction_pt09"] = float(np.nanmean([r["reconstructable_pt09"] for r in results]))
    per_set = {}
    for name in results[0]["hits_per_row"]:
        h = np.concatenate([r["hits_per_row"][name] for r in results if name in r["hits_per_row"]])
        per_set[name] = {"n_sectors": SETS[name], "rows": int(len(h)), "mean": float(h.mean()),
                         "max": int(h.max()), "min": int(h.min())}
    out["hits_per_row"] = per_set
    return out
