"""Where the pileup sets live: HEPT's processed zip, raw Delphes files, or the embedded generated default.

Layout under a dataset folder D (``$DATADIR_Pileup``, written to env.sh by ``get_datasets.py Pileup``)::

    D/raw/*.root                          Delphes PF files (HEPT's testTTbar_part{1,2}.root, or generated)
    D/processed/data.pt                   HEPT's pileup-10k-processed.zip, extracted by get_datasets.py
    D/processed/{train,val,test}/*.root   the contract's files (from D/raw, or converted from data.pt)

Without ``$DATADIR_Pileup`` (or with env.sh's untouched default holding no data) partx generates a small
set (``python -m partx.datagen pileup``, ``$PARTX_PILEUP_EVENTS`` events, default 40, at μ =
``$PARTX_PILEUP_MU``, default 200) into ``datasets/Pileup-generated/raw`` and preprocesses it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

from partx.cli import UserError
from partx.readers.pileup.preprocess import has_processed

REPO = Path(__file__).resolve().parents[3]
ENV_VAR = "DATADIR_Pileup"
DEFAULT_DIR_ENV, DEFAULT_EVENTS_ENV, DEFAULT_MU_ENV = "PARTX_PILEUP_DEFAULT_DIR", "PARTX_PILEUP_EVENTS", "PARTX_PILEUP_MU"
DEFAULT_EVENTS = 40
HEPT_DONE = ".hept.done"


def raw_files(root: Path) -> list[Path]:
    """Raw Delphes files in ``root/raw``."""
    d = root / "raw"
    return sorted(p for p in d.glob("*.root") if not p.name.startswith(".")) if d.is_dir() else []


def hept_file(root: Path) -> Path | None:
    """HEPT's extracted ``data.pt`` under ``root/processed`` (not partx's own extraction folder)."""
    d = root / "processed"
    if not d.is_dir():
        return None
    found = sorted(p for p in d.rglob("data.pt") if ".hept" not in p.parts)
    return found[0] if found else None


def prepare_local(root: Path, *, force: bool = False, progress: bool = True, log: Callable[[str], None] = print) -> dict:
    """What ``get_datasets.py Pileup`` does after downloading: convert HEPT's extracted ``data.pt`` (once),
    else preprocess raw files found in ``root/raw``. Returns a summary."""
    from partx.readers.pileup.hept_zip import convert_hept
    from partx.readers.pileup.preprocess import preprocess

    pt = hept_file(root)
    marker = root / "processed" / HEPT_DONE
    if pt is not None and (force or not marker.exists()):
        log(f"converting HEPT {pt} -> {root / 'processed'}/{{train,val,test}}")
        info = convert_hept(pt, root, progress=progress)
        marker.write_text("done\n")
        return {"hept": info}
    if pt is None and raw_files(root):
        return {"raw": preprocess([root / "raw"], root, force=force, progress=progress, log=log)}
    if pt is None:
        log(f"Pileup: no HEPT data.pt under {root / 'processed'} and no raw files in {root / 'raw'}")
    return {}


def generate_default(root: Path, events: int, mu: float | None, log: Callable[[str], None] = print) -> Path:
    """Generate ``events`` events into ``root/raw`` with partx's generator (a child process: stdout stays clean)."""
    raw = root / "raw"
    cmd = [sys.executable, "-m", "partx.datagen", "pileup", "--out", str(raw), "--events", str(events),
           "--overwrite"]  # the default folder is partx's own: other parameters are regenerated
    if mu is not None:
        cmd += ["--mu", str(mu)]
    log("generating the default pileup set: " + " ".join(cmd))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    rc = subprocess.run(cmd, env=env, stdout=sys.stderr).returncode
    if rc != 0:
        raise UserError(f"generating the default pileup set failed (exit {rc}): {' '.join(cmd)}")
    return raw


def default_dir() -> Path:
    return Path(os.environ.get(DEFAULT_DIR_ENV) or REPO / "datasets" / "Pileup-generated")


def pileup_data_dir(*, events: int | None = None, mu: float | None = None,
                    log: Callable[[str], None] = print) -> Path:
    """The folder whose ``processed/{train,val,test}`` holds the pileup set, made if needed.

    With ``$DATADIR_Pileup``: its processed files, else HEPT's data.pt converted, else its raw files
    preprocessed. Without it: the generated default (made on first use; more events or another μ
    regenerate it).
    """
    from partx.datagen.pileup.generate import PARAMS_FILE
    from partx.readers.pileup.preprocess import preprocess

    configured = os.environ.get(ENV_VAR)
    if configured:
        root = Path(configured).expanduser()
        if not root.is_dir():
            raise UserError(f"${ENV_VAR}={configured} is not a directory (see ./get_datasets.py Pileup)")
        if not has_processed(root):
            prepare_local(root, log=log)
        if has_processed(root):
            return root
        raise UserError(f"${ENV_VAR}={root} has no pileup data: fetch HEPT's processed set with "
                        f"./get_datasets.py Pileup, or put Delphes files in {root / 'raw'}")
    root = default_dir()
    n = events or int(os.environ.get(DEFAULT_EVENTS_ENV) or DEFAULT_EVENTS)
    want_mu = mu if mu is not None else float(os.environ.get(DEFAULT_MU_ENV) or 200.0)
    rec = root / "raw" / PARAMS_FILE
    import json

    have = json.loads(rec.read_text()) if rec.is_file() else {}
    if has_processed(root) and have.get("events") == n and have.get("mu") == want_mu:
        return root
    if not (have.get("events") == n and have.get("mu") == want_mu and len(raw_files(root)) > 0):
        generate_default(root, n, want_mu, log)  # resumable: finished files are kept
    if (root / "processed").exists():  # other raw events: our own derived files are rebuilt
        shutil.rmtree(root / "processed")
    preprocess([root / "raw"], root, progress=False, log=log)
    return root


def launcher_data_dir(datadir: str, features: str, default_datadir: str, dry_run: bool = False) -> Path:
    """The data folder ``./train_Pileup.sh`` trains on (``DatasetLayout.find_data``).

    ``datadir`` is ``$DATADIR_Pileup`` (env.sh sets it to ``default_datadir``); ``features`` is unused
    (one feature set). A folder with data is used as ``pileup_data_dir`` does (converting HEPT's file or
    preprocessing raw files first if needed). When it is the untouched default and holds no pileup data,
    the embedded generated set is used instead (made on first use) and a line says so; any other
    folder without data is an error. With ``dry_run`` nothing is made: the folder that would be used is returned.
    """
    root = Path(datadir).expanduser()
    is_default = os.path.normpath(datadir) == os.path.normpath(default_datadir)
    has_data = root.is_dir() and (has_processed(root) or bool(raw_files(root)) or hept_file(root) is not None)
    err = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731 - stdout is the launcher's
    if not has_data and is_default:
        err(f"no pileup data in {datadir} (${ENV_VAR}): using the generated default {default_dir()} "
            f"(get HEPT's set with ./get_datasets.py Pileup)")
        if dry_run:
            return default_dir()
        saved = os.environ.pop(ENV_VAR, None)
        try:
            return pileup_data_dir(log=err)
        finally:
            if saved is not None:
                os.environ[ENV_VAR] = saved
    if dry_run:
        return root
    saved = os.environ.get(ENV_VAR)
    os.environ[ENV_VAR] = str(root)
    try:
        return pileup_data_dir(log=err)
    finally:
        if saved is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = saved
