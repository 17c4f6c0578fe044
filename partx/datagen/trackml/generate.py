"""Generate TrackML-format events into a directory: parallel over events, resumable, interrupt-safe.

``<out>/detectors.csv`` holds the geometry; ``<out>/event%09d-{hits,cells,particles,truth}.csv`` the
events (ids ``first_event`` .. ``first_event + n - 1``; default 1000 like TrackML's ``train_1``).
``<out>/partx_trackml.json`` records the generation parameters (seed, pileup, noise fraction, pT cut,
detector hash, format version). A rerun with the same parameters skips every event whose four files
exist (each file is written under a hidden name and renamed when complete, so an existing file is a
finished one) and regenerates events with a file missing. A rerun with other parameters is refused
(``GenerationMismatch``, one line naming the differences) unless ``overwrite`` is set, which deletes
the directory's event files and regenerates. Every event depends on (seed, event id) only, so the
result does not depend on ``workers`` nor on which run produced which event.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from partx.atomic import atomic_write
from partx.cli import UserError
from partx.datagen.trackml import schema
from partx.datagen.trackml.writer import event_complete, event_paths, write_event

PARAMS_FILE = "partx_trackml.json"
FORMAT_VERSION = 1
DEFAULT_FIRST_EVENT = 1000
_STALE = re.compile(r"^\.(event\d{9}-\w+|detectors)\..*\.tmp\.(csv|gz)$")
_EVENT_FILE = re.compile(r"^event\d{9}-(hits|cells|particles|truth)\.csv(\.gz)?$")


class GenerationMismatch(UserError):
    """The output directory holds events made with other parameters."""


@dataclass(frozen=True)
class Settings:
    """Everything an event's content depends on (besides its id)."""

    seed: int = 0
    pileup: float = 200.0
    noise_fraction: float = 0.0
    pt_min: float = 0.1
    detector: str = "toy"  # "toy" or the sha1 of the detectors.csv table used
    scattering: bool = True
    hard_scatter: bool = True
    format_version: int = FORMAT_VERSION


@dataclass
class EventStats:
    event_id: int
    hits: int
    pixel_hits: int
    particles: int
    seconds: float


def detector_table(path: str | os.PathLike | None):
    """(modules table, its tag for Settings.detector): the toy detector, or a real detectors.csv."""
    from partx.datagen.trackml.geometry import build_modules
    from partx.datagen.trackml.io import read_detectors

    if path is None:
        return build_modules(), "toy"
    df = read_detectors(path)
    digest = hashlib.sha1(df.to_csv(index=False).encode()).hexdigest()
    return df, f"sha1:{digest}"


# ---------------------------------------------------------------------------------------- workers
_STATE: dict = {}


def _init_state(settings: Settings, modules) -> None:
    from partx.datagen.trackml.events import EventSource
    from partx.datagen.trackml.geometry import Detector
    from partx.datagen.trackml.propagate import Propagator

    if _STATE.get("settings") == settings:  # same physics and detector (its hash is in settings): reuse
        return
    det = Detector(modules)
    _STATE.update(settings=settings, det=det, prop=Propagator(det, scattering=settings.scattering),
                  source=EventSource(settings.seed, settings.pileup, settings.pt_min, settings.hard_scatter))


def _worker_init(settings: Settings, modules) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent alone handles Ctrl-C
    _init_state(settings, modules)


def simulate(event_id: int) -> dict:
    """The four tables of one event, from the state built by ``_init_state``."""
    from partx.datagen.trackml.assemble import assemble

    s: Settings = _STATE["settings"]
    ev = _STATE["source"].event(event_id)
    rng = np.random.default_rng([s.seed, event_id, 2])
    cr = _STATE["prop"].run(ev.particles, rng)
    return assemble(_STATE["det"], ev.particles, ev.particle_id, cr, rng, s.noise_fraction)


def _run_event(task: tuple[str, int]) -> EventStats:
    out, event_id = task
    t0 = time.perf_counter()
    tables = simulate(event_id)
    write_event(out, event_id, tables)
    h = tables["hits"]
    return EventStats(event_id, len(h), int(h["volume_id"].isin(schema.PIXEL_VOLUMES).sum()),
                      len(tables["particles"]), time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------- records
def _read_params(out: Path) -> dict | None:
    path = out / PARAMS_FILE
    if not path.exists():
        return None
    try:
        rec = json.loads(path.read_text())
        if not isinstance(rec, dict):
            raise ValueError("not a JSON object")
        return rec
    except (OSError, ValueError) as err:
        raise GenerationMismatch(f"{path}: unreadable generation record ({err}); remove it, or use --overwrite") from None


def remove_stale(out: Path) -> None:
    """Remove hidden temporary files an interrupted run left in ``out``."""
    if out.is_dir():
        for name in os.listdir(out):
            if _STALE.match(name):
                (out / name).unlink(missing_ok=True)


def _check_or_reset(out: Path, settings: Settings, overwrite: bool, log) -> None:
    want = asdict(settings)
    have = _read_params(out)
    events_there = [n for n in os.listdir(out) if _EVENT_FILE.match(n)] if out.is_dir() else []
    if have == want:
        return
    if have is None and not events_there:
        return
    if not overwrite:
        if have is None:
            raise GenerationMismatch(f"{out} holds TrackML event files without a {PARAMS_FILE} record: choose another "
                                     "--out, or --overwrite to delete them and regenerate")
        diff = ", ".join(f"{k}={have.get(k)!r} (now {v!r})" for k, v in want.items() if have.get(k) != v)
        raise GenerationMismatch(f"{out} was generated with other parameters: {diff}; choose another --out, or "
                                 "--overwrite to delete its events and regenerate")
    for n in events_there:
        (out / n).unlink(missing_ok=True)
    (out / "detectors.csv").unlink(missing_ok=True)
    log(f"--overwrite: removed {len(events_there)} event files generated with other parameters")


# ---------------------------------------------------------------------------------------- driver
def generate(out_dir: str | os.PathLike, n_events: int, *, first_event: int = DEFAULT_FIRST_EVENT,
             settings: Settings | None = None, detectors: str | os.PathLike | None = None, workers: int = 1,
             overwrite: bool = False, progress: bool = True, log=print) -> list[EventStats]:
    """Generate (or complete) events ``first_event .. first_event + n_events - 1`` in ``out_dir``.

    Args:
        out_dir: output directory (created).
        n_events: number of events (>= 1).
        first_event: id of the first event.
        settings: physics settings (its ``detector`` field is filled from ``detectors``).
        detectors: a TrackML ``detectors.csv`` to place hits on (default: the toy detector).
        workers: parallel processes.
        overwrite: regenerate a directory made with other parameters (deletes its events).
        progress: show a tqdm bar.
        log: receives the one-line resume / overwrite messages.
    Returns:
        statistics of the events generated by this call (not of those kept).
    """
    from partx.datagen.trackml.geometry import write_detectors

    if n_events < 1 or workers < 1 or first_event < 0:
        raise ValueError("n_events and workers must be >= 1 and first_event >= 0")
    out = Path(out_dir)
    modules, tag = detector_table(detectors)
    settings = Settings(**{**asdict(settings or Settings()), "detector": tag})
    out.mkdir(parents=True, exist_ok=True)
    remove_stale(out)
    _check_or_reset(out, settings, overwrite, log)
    atomic_write(out / PARAMS_FILE, json.dumps(asdict(settings), indent=1) + "\n")
    if not (out / "detectors.csv").is_file():
        write_detectors(modules, out / "detectors.csv")
    ids = list(range(first_event, first_event + n_events))
    todo = [e for e in ids if not event_complete(out, e)]
    partial = [e for e in todo if any(p.exists() for p in event_paths(out, e).values())]
    if len(todo) < len(ids) or partial:
        log(f"resuming: {len(ids) - len(todo)} of {len(ids)} events already complete are kept"
            + (f", {len(partial)} incomplete regenerated" if partial else "")
            + (f", {len(todo)} to generate" if todo else "; nothing to generate"))
    stats: list[EventStats] = []
    if not todo:
        return stats
    bar = None
    if progress:
        from tqdm import tqdm

        tqdm.monitor_interval = 0  # no monitor thread (the pool may fork)
        bar = tqdm(total=len(todo), desc="trackml events", unit="event")
    tasks = [(str(out), e) for e in todo]
    try:
        if workers <= 1 or len(todo) == 1:
            _init_state(settings, modules)
            it = map(_run_event, tasks)
            for st in it:
                stats.append(st)
                if bar is not None:
                    bar.set_postfix_str(f"{st.hits} hits")
                    bar.update()
        else:
            if settings.pileup > 0:  # compute the Pythia MPI tables once, before the workers read them
                from partx.datagen.trackml.events import MINBIAS, _pythia, mpi_cache_path

                if not mpi_cache_path(MINBIAS).is_file():
                    _pythia(MINBIAS, cache=True)
            import pythia8mc  # noqa: F401  (imported once, before forking)

            methods = mp.get_all_start_methods()
            ctx = mp.get_context("fork" if "fork" in methods else "spawn")
            with ctx.Pool(min(workers, len(todo)), initializer=_worker_init, initargs=(settings, modules)) as pool:
                for st in pool.imap_unordered(_run_event, tasks):
                    stats.append(st)
                    if bar is not None:
                        bar.set_postfix_str(f"{st.hits} hits")
                        bar.update()
    except BaseException:
        # terminated workers cannot remove their hidden temporary files: done here; finished events stay
        remove_stale(out)
        raise
    finally:
        if bar is not None:
            bar.close()
    return stats
