"""Generate pileup events into Delphes-style ROOT files: parallel over files, resumable, interrupt-safe.

Layout of ``out``: ``pileup_part1_NNNNN.root`` and ``pileup_part2_NNNNN.root`` (tree ``Delphes``,
``writer.write_delphes``), mirroring HEPT's two raw files ``testTTbar_part{1,2}.root`` (part 1 is the
training set, part 2 is shuffled and halved into validation and test: ``partx.readers.pileup.split``).
Events 0 .. n1-1 go to part 1 and n1 .. n-1 to part 2 with ``n - n1 = max(n // 2, min(2, n - 1))``
(half each; with 3 events still one per split), ``events_per_file`` per file.
``partx_pileup.json`` records the parameters. The discipline is the TrackML generator's
(``partx.datagen.trackml.generate``): every event depends on (seed, event id) only, so neither
``workers`` nor resuming changes the result; each file is written under a hidden name and renamed when
complete, so an existing file is a finished one and a rerun skips it; a rerun with other parameters is
refused unless ``overwrite``; Ctrl-C leaves finished files and removes the temporary ones.
"""

from __future__ import annotations

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
from partx.datagen.pileup import events as phys

PARAMS_FILE = "partx_pileup.json"
FORMAT_VERSION = 1
DEFAULT_EVENTS_PER_FILE = 100
_FILE = re.compile(r"^pileup_part[12]_\d{5}\.root$")
_STALE = re.compile(r"^\.pileup_part[12]_\d{5}\..*\.tmp\.root$")


class GenerationMismatch(UserError):
    """The output directory holds files made with other parameters."""


@dataclass(frozen=True)
class Settings:
    """Everything the files' content depends on."""

    seed: int = 0
    mu: float = 200.0
    events: int = 10
    events_per_file: int = DEFAULT_EVENTS_PER_FILE
    sigma_z_mm: float = phys.SIGMA_Z
    charged_pt_min: float = phys.CHARGED_PT_MIN
    photon_e_min: float = phys.PHOTON_E_MIN
    neutral_hadron_e_min: float = phys.NEUTRAL_HADRON_E_MIN
    format_version: int = FORMAT_VERSION


@dataclass
class EventStats:
    """Multiplicities of one generated event."""

    event_id: int
    candidates: int
    neutrals: int
    scored: int  # neutral with pT > 0.9 GeV (HEPT's is_neu)
    seconds: float  # CPU seconds to generate it


def part_sizes(n: int) -> tuple[int, int]:
    """(events in part 1, events in part 2) for ``n`` events."""
    n2 = max(n // 2, min(2, n - 1))
    return n - n2, n2


def file_plan(n: int, per_file: int) -> list[tuple[str, list[int]]]:
    """[(file name, event ids)] of a run of ``n`` events."""
    n1, _ = part_sizes(n)
    plan = []
    for part, (lo, hi) in ((1, (0, n1)), (2, (n1, n))):
        for k, start in enumerate(range(lo, hi, per_file)):
            plan.append((f"pileup_part{part}_{k:05d}.root", list(range(start, min(hi, start + per_file)))))
    return plan


# ---------------------------------------------------------------------------------------- workers
_STATE: dict = {}


def _init_state(settings: Settings) -> None:
    if _STATE.get("settings") != settings:
        _STATE.update(settings=settings, source=phys.PileupSource(settings.seed, settings.mu))


def _worker_init(settings: Settings) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent alone handles Ctrl-C
    _init_state(settings)


def _run_file(task: tuple[str, str, list[int]], on_event=None) -> list[EventStats]:
    from partx.datagen.pileup.writer import write_delphes

    out, name, ids = task
    evs, stats = [], []
    for e in ids:
        t0 = time.process_time()  # CPU time: wall time on a shared machine says little
        ev = _STATE["source"].event(e)
        neu = ev["Charge"] == 0
        stats.append(EventStats(e, len(neu), int(neu.sum()), int((neu & (ev["PT"] > 0.9)).sum()),
                                time.process_time() - t0))
        evs.append(ev)
        if on_event is not None:
            on_event(stats[-1])
    write_delphes(Path(out) / name, evs, ids)
    return stats


def remove_stale(out: Path) -> None:
    """Remove hidden temporary files an interrupted run left in ``out``."""
    if out.is_dir():
        for name in os.listdir(out):
            if _STALE.match(name):
                (out / name).unlink(missing_ok=True)


def _check_or_reset(out: Path, settings: Settings, overwrite: bool, log) -> None:
    want = asdict(settings)
    path = out / PARAMS_FILE
    have = None
    if path.exists():
        try:
            have = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise GenerationMismatch(f"{path}: unreadable generation record ({err}); remove it, or use --overwrite") from None
    there = [n for n in os.listdir(out) if _FILE.match(n)] if out.is_dir() else []
    if have == want or (have is None and not there):
        return
    if not overwrite:
        if have is None:
            raise GenerationMismatch(f"{out} holds pileup files without a {PARAMS_FILE} record: choose another "
                                     "--out, or --overwrite to delete them and regenerate")
        diff = ", ".join(f"{k}={have.get(k)!r} (now {v!r})" for k, v in want.items() if have.get(k) != v)
        raise GenerationMismatch(f"{out} was generated with other parameters: {diff}; choose another --out, or "
                                 "--overwrite to delete its files and regenerate")
    for n in there:
        (out / n).unlink(missing_ok=True)
    log(f"--overwrite: removed {len(there)} files generated with other parameters")


def generate(out_dir: str | os.PathLike, settings: Settings, *, workers: int = 1, overwrite: bool = False,
             progress: bool = True, log=print) -> list[EventStats]:
    """Generate (or complete) the files of ``settings`` in ``out_dir``.

    Args:
        out_dir: output directory (created).
        settings: seed, μ, number of events, events per file.
        workers: parallel processes (over files).
        overwrite: regenerate a directory made with other parameters (deletes its files).
        progress: show a tqdm bar (events).
        log: receives the one-line resume / overwrite messages.
    Returns:
        statistics of the events generated by this call (not of those kept).
    """
    if settings.events < 1 or settings.events_per_file < 1 or workers < 1:
        raise ValueError("events, events_per_file and workers must be >= 1")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale(out)
    _check_or_reset(out, settings, overwrite, log)
    atomic_write(out / PARAMS_FILE, json.dumps(asdict(settings), indent=1) + "\n")
    plan = file_plan(settings.events, settings.events_per_file)
    todo = [(str(out), name, ids) for name, ids in plan if not (out / name).is_file()]
    if len(todo) < len(plan):
        log(f"resuming: {len(plan) - len(todo)} of {len(plan)} files already complete are kept"
            + (f", {len(todo)} to generate" if todo else "; nothing to generate"))
    stats: list[EventStats] = []
    if not todo:
        return stats
    bar = None
    if progress:
        from tqdm import tqdm

        tqdm.monitor_interval = 0  # no monitor thread (the pool may fork)
        bar = tqdm(total=sum(len(t[2]) for t in todo), desc="pileup events", unit="event")

    def tick(st: EventStats) -> None:
        if bar is not None:
            bar.set_postfix_str(f"{st.candidates} PF")
            bar.update()

    try:
        if workers <= 1 or len(todo) == 1:
            _init_state(settings)
            for t in todo:
                stats += _run_file(t, tick)
        else:
            from partx.datagen.trackml.events import MINBIAS, _pythia, mpi_cache_path

            if settings.mu > 0 and not mpi_cache_path(MINBIAS).is_file():
                _pythia(MINBIAS, cache=True)  # the MPI tables once, before the workers read them
            import pythia8mc  # noqa: F401  (imported once, before forking)

            ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
            with ctx.Pool(min(workers, len(todo)), initializer=_worker_init, initargs=(settings,)) as pool:
                for file_stats in pool.imap_unordered(_run_file, todo):
                    stats += file_stats
                    for st in file_stats:
                        tick(st)
    except BaseException:
        remove_stale(out)  # terminated workers cannot remove their temporary files; finished files stay
        raise
    finally:
        if bar is not None:
            bar.close()
    return stats


def summary_line(stats: list[EventStats], seconds: float) -> str:
    """One line: events, wall time, and mean / max multiplicities of ``stats``."""
    c = np.array([s.candidates for s in stats])
    n = np.array([s.neutrals for s in stats])
    sc = np.array([s.scored for s in stats])
    cpu = np.mean([s.seconds for s in stats])
    return (f"{len(stats)} events in {seconds:.1f} s ({cpu:.2f} CPU s/event): PF candidates/event mean "
            f"{c.mean():.0f} max {c.max()}, neutrals mean {n.mean():.0f}, scored neutrals (pT > 0.9) mean {sc.mean():.0f}")
