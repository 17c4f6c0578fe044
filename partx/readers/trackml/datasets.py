"""Where the TrackML sets live: real Kaggle events, HEPT's processed files, or the embedded generated default.

Layout under a dataset folder D (``$DATADIR_TrackML``, written to env.sh by ``get_datasets.py TrackML``)::

    D/raw/train_*.zip, detectors.zip          Kaggle downloads (put there by hand: a login is needed)
    D/raw_events/event*-{hits,...}.csv, detectors.csv     unpacked events (or put them here directly)
    D/processed/{set}/{train,val,test}/*.root  partx preprocessing of D/raw_events
    D/processed/tracking-{60k,6k}/data-*.pt    HEPT's Zenodo zips, extracted by get_datasets.py
    D/hept/processed/{full,6k}/{train,val,test}/*.root    the same converted to partx's layout

Without ``$DATADIR_TrackML`` partx generates a small set with its toy detector
(``python -m partx.datagen trackml``) into ``datasets/TrackML-generated`` and preprocesses it:
``trackml_data_dir`` is what ``./train_TrackML.sh`` calls.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

from partx.cli import UserError
from partx.datagen.trackml import schema
from partx.datagen.trackml.io import list_events

REPO = Path(__file__).resolve().parents[3]
ENV_VAR = "DATADIR_TrackML"
#: the embedded default: folder, number of events and pileup (overridable by environment variables)
DEFAULT_DIR_ENV, DEFAULT_EVENTS_ENV, DEFAULT_PILEUP_ENV = ("PARTX_TRACKML_DEFAULT_DIR", "PARTX_TRACKML_EVENTS",
                                                           "PARTX_TRACKML_PILEUP")
DEFAULT_EVENTS = 20
HEPT_SETS = {"full": "60k", "6k": "6k"}


def has_set(root: Path, set_name: str) -> bool:
    """True if ``root/processed/{set}/train`` holds at least one ROOT file."""
    d = root / "processed" / set_name / "train"
    return d.is_dir() and any(p.suffix == ".root" and not p.name.startswith(".") for p in d.iterdir())


def raw_events_dir(root: Path) -> Path | None:
    """The folder of unpacked raw events under ``root`` (raw_events/ or raw/), if it holds any."""
    for d in (root / "raw_events", root / "raw"):
        if d.is_dir() and list_events(d, parts=schema.PARTS):
            return d
    return None


def unpack_kaggle(root: Path, log: Callable[[str], None] = print) -> Path | None:
    """Unpack Kaggle's ``D/raw/{train_*,detectors}.zip`` into ``D/raw_events`` (flat), once per zip.

    Returns the events folder, or None when there is nothing to unpack. Zips are extracted safely
    (``partx.download.safe_extract``) and a marker ``.<zip>.done`` skips them on the next run.
    """
    from partx.download.extract import safe_extract

    zips = sorted((root / "raw").glob("train_*.zip")) + sorted((root / "raw").glob("detectors.zip"))
    if not zips:
        return None
    events = root / "raw_events"
    events.mkdir(parents=True, exist_ok=True)
    for z in zips:
        marker = events / f".{z.name}.done"
        if marker.exists():
            continue
        log(f"  unpacking {z} -> {events}")
        for top in safe_extract(z, events):
            sub = events / top
            if sub.is_dir():  # train_1.zip holds train_1/event*.csv: flatten
                for f in sub.iterdir():
                    os.replace(f, events / f.name)
                sub.rmdir()
        marker.write_text("done\n")
    return events


def verify_raw(events: Path, log: Callable[[str], None] = print) -> list[int]:
    """Check a raw folder before preprocessing: complete events, detectors.csv readable; return event ids."""
    from partx.datagen.trackml.io import read_detectors
    from partx.readers.trackml.preprocess import find_detectors

    ids = list_events(events, parts=schema.PARTS)
    partial = sorted(set(list_events(events, parts=("hits",))) - set(ids))
    if partial:
        raise UserError(f"{events}: event(s) {partial[:5]} lack some of hits/cells/particles/truth "
                        f"(Kaggle's test.zip has no truth: use train_*.zip)")
    det = read_detectors(find_detectors(events, None))
    log(f"  {events}: {len(ids)} complete events ({ids[0]}..{ids[-1]}), detectors.csv with {len(det)} modules"
        + (" (Kaggle train_1..5: 8850 events, train_sample: 100)" if ids else ""))
    return ids


def convert_hept_present(root: Path, log: Callable[[str], None] = print) -> list[str]:
    """Convert every extracted HEPT ``D/processed/tracking-*/data-*.pt`` into ``D/hept/`` (once)."""
    from partx.readers.trackml.hept_zip import convert_hept

    done = []
    for set_name, size in HEPT_SETS.items():
        pt = root / "processed" / f"tracking-{size}" / f"data-{size}.pt"
        marker = root / "hept" / "processed" / f".{set_name}.done"  # an interrupted conversion is redone
        if pt.is_file() and not marker.exists():
            log(f"  converting HEPT {pt} -> {root / 'hept' / 'processed' / set_name}")
            log(f"  {convert_hept(pt, root / 'hept', set_name=set_name)}")
            marker.write_text("done\n")
            done.append(set_name)
    return done


def generate_default(root: Path, events: int, pileup: int | None, log: Callable[[str], None] = print) -> Path:
    """Generate ``events`` toy events (TrackML format) into ``root/raw_events`` with partx's generator."""
    raw = root / "raw_events"
    cmd = [sys.executable, "-m", "partx.datagen", "trackml", "--out", str(raw), "--events", str(events)]
    if pileup is not None:
        cmd += ["--pileup", str(pileup)]
    log("generating the default TrackML set: " + " ".join(cmd))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    rc = subprocess.run(cmd, env=env, stdout=sys.stderr).returncode  # stdout: only the folder
    if rc != 0:
        raise UserError(f"generating the default TrackML set failed (exit {rc}): {' '.join(cmd)}")
    return raw


def prepare_local(root: Path, sets: list[str], *, workers: int = 1, progress: bool = True,
                  log: Callable[[str], None] = print) -> dict:
    """What ``get_datasets.py TrackML`` does after downloading: unpack Kaggle zips found in ``root/raw``,
    verify and preprocess the raw events into ``root/processed/{set}``, convert HEPT files into ``root/hept``.
    Returns {"raw_events": n or 0, "hept": [converted sets]}."""
    from partx.readers.trackml.preprocess import preprocess

    raw = raw_events_dir(root) or unpack_kaggle(root, log)
    n = 0
    if raw is None:
        log(f"TrackML raw events: none in {root / 'raw'} or {root / 'raw_events'}. Kaggle needs a login: download "
            f"train_1..5.zip (or train_sample.zip) and detectors.zip from "
            f"https://www.kaggle.com/c/trackml-particle-identification/data into {root / 'raw'} and re-run "
            f"(./get_datasets.py TrackML --local-only) to unpack, verify and preprocess them")
    else:
        n = len(verify_raw(raw, log))
        preprocess(raw, root, sets, workers=workers, progress=progress, log=log)
    return {"raw_events": n, "hept": convert_hept_present(root, log)}


def trackml_data_dir(sets: list[str], *, workers: int = 1, events: int | None = None, pileup: int | None = None,
                     log: Callable[[str], None] = print) -> Path:
    """The folder whose ``processed/{set}/{train,val,test}/`` holds every set of ``sets``, made if needed.

    With ``$DATADIR_TrackML``: its preprocessed sets, else its raw events (unpacked from Kaggle zips if
    needed) preprocessed now, else HEPT's files converted (sets full / 6k only). Without it: the
    embedded default, generated (``$PARTX_TRACKML_EVENTS`` events, default 20, pileup
    ``$PARTX_TRACKML_PILEUP`` or the generator's default) and preprocessed on first use.

    Args:
        sets: set names (``partx.readers.trackml.sectors.SETS``).
        workers: preprocessing processes.
    """
    from partx.readers.trackml.preprocess import preprocess

    configured = os.environ.get(ENV_VAR)
    if configured:
        root = Path(configured).expanduser()
        if not root.is_dir():
            raise UserError(f"${ENV_VAR}={configured} is not a directory (see ./get_datasets.py TrackML)")
        if all(has_set(root, s) for s in sets):
            return root
        raw = raw_events_dir(root) or unpack_kaggle(root, log)
        if raw is not None:
            verify_raw(raw, log)
            preprocess(raw, root, sets, workers=workers, log=log)
            return root
        convert_hept_present(root, log)
        if all(has_set(root / "hept", s) and (root / "hept" / "processed" / f".{s}.done").exists() for s in sets):
            return root / "hept"
        raise UserError(f"${ENV_VAR}={root} has no TrackML data for set(s) {', '.join(sets)}: put Kaggle's "
                        f"train_*.zip + detectors.zip in {root / 'raw'} (or unpacked events in "
                        f"{root / 'raw_events'}), or fetch HEPT's files (full, 6k) with ./get_datasets.py TrackML")
    root = Path(os.environ.get(DEFAULT_DIR_ENV) or REPO / "datasets" / "TrackML-generated")
    missing = [s for s in sets if not has_set(root, s)]
    if not missing:
        return root
    n = events or int(os.environ.get(DEFAULT_EVENTS_ENV) or DEFAULT_EVENTS)
    mu = pileup if pileup is not None else (int(os.environ[DEFAULT_PILEUP_ENV]) if os.environ.get(DEFAULT_PILEUP_ENV) else None)
    raw = root / "raw_events"
    if len(list_events(raw, parts=schema.PARTS) if raw.is_dir() else []) < n:
        generate_default(root, n, mu, log)  # resumable: finished events are kept
        if (root / "processed").exists():  # more events: a new split, so our own derived files are rebuilt
            shutil.rmtree(root / "processed")
        missing = list(sets)
    preprocess(raw, root, missing, workers=workers, log=log)
    return root


def launcher_data_dir(datadir: str, set_name: str, default_datadir: str, dry_run: bool = False) -> Path:
    """The data folder ``./train_TrackML.sh`` trains on (``partx.dataset_layouts.TRACKML.find_data``).

    ``datadir`` is ``$DATADIR_TrackML`` (env.sh sets it to ``default_datadir``). A folder with data is used as
    ``trackml_data_dir`` does (preprocessing its raw events or converting HEPT's files first if needed).
    When it is the untouched default and holds no TrackML data at all, the embedded generated set is used
    instead (made on first use) and a line says so; any other folder without data is an error. With
    ``dry_run`` nothing is generated or preprocessed: the folder that would be used is returned.
    """
    root = Path(datadir).expanduser()
    is_default = os.path.normpath(datadir) == os.path.normpath(default_datadir)
    has_data = root.is_dir() and (any(has_set(root, s) for s in ("full", "20k", "15k", "10k", "6k", "3k"))
                                  or raw_events_dir(root) is not None or any((root / "raw").glob("train_*.zip"))
                                  or any((root / "processed").glob("tracking-*")))
    if not has_data and is_default:
        default = Path(os.environ.get(DEFAULT_DIR_ENV) or REPO / "datasets" / "TrackML-generated")
        print(f"no TrackML data in {datadir} (${ENV_VAR}): using the generated default {default} "
              f"(get real data with ./get_datasets.py TrackML)", file=sys.stderr, flush=True)
        if dry_run:
            return default
        saved = os.environ.pop(ENV_VAR, None)
        try:
            return trackml_data_dir([set_name], log=lambda m: print(m, file=sys.stderr, flush=True))
        finally:
            if saved is not None:
                os.environ[ENV_VAR] = saved
    if dry_run:
        return root / "hept" if not has_set(root, set_name) and has_set(root / "hept", set_name) else root
    os.environ[ENV_VAR] = str(root)
    return trackml_data_dir([set_name], log=lambda m: print(m, file=sys.stderr, flush=True))
