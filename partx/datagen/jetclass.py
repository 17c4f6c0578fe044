"""Embedded JetClass generator: Pythia 8 + (Delphes-lite | generator level) + fastjet -> JetClass ROOT files.

Layout written (as the real dataset): ``<out>/Pythia/{train_100M,val_5M,test_20M}/<Stem>_NNN.root``.
File numbers follow the real dataset: train files count from 000, test from 100, val from 120.
``jets_per_class`` is the number of *training* jets per class; validation and test get
``VAL_FRACTION`` / ``TEST_FRACTION`` of it (rounded up). Files hold at most ``JETS_PER_FILE`` jets.

Provenance: ``<out>/Pythia/partx_datagen.json`` records the parameters of every file written (jets,
seed, detector, fast) and its size in bytes. A re-run skips a finished file only when it was made with
the same parameters, and refuses (``GenerationMismatch``) when it was not: a rerun with another size or
seed never keeps old files while reporting the new size. A recorded file whose size changed since it
was written (a damaged or half-copied file) is generated again (same seed, same jets). A file without
a record (e.g. written before records existed) is accepted when it reads and its jet count is the
planned one. A re-run says how many finished files it keeps (resuming an interrupted run).

Determinism: every file has its own ``numpy.random.SeedSequence((seed, class, split, file))``; it
seeds Pythia (one seed per variant) and the detector RNG. The same arguments give identical arrays,
independently of ``workers`` and of the order in which files are produced. Splits get disjoint seeds.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from pathlib import Path

import awkward as ak
import numpy as np

from partx.datagen import schema
from partx.datagen.processes import PROCESSES

VAL_FRACTION = 0.25
TEST_FRACTION = 0.25
JETS_PER_FILE = 100_000
SPLIT_DIRS = dict(zip(("train", "val", "test"), schema.SPLITS))
FIRST_FILE_INDEX = {"train": 0, "test": 100, "val": 120}

#: jets per class in the training split for the named presets (val/test: fractions above)
PRESETS = {"tiny": 24, "small": 800}

# relative CPU cost per jet (measured, docs/datagen.md); used only to schedule expensive files first
_COST = {"HToWW2Q1L": 4.0, "TTBarLep": 2.0, "HToWW4Q": 1.5}


@dataclass(frozen=True)
class FileTask:
    stem: str
    split: str
    index: int  # file number within the split (0-based, before FIRST_FILE_INDEX)
    n_jets: int
    seed: int
    detector: bool
    fast: bool
    path: Path

    def seed_sequence(self) -> np.random.SeedSequence:
        return np.random.SeedSequence(
            (self.seed, schema.STEMS.index(self.stem), list(SPLIT_DIRS).index(self.split), self.index)
        )


MANIFEST = "partx_datagen.json"


class GenerationMismatch(ValueError):
    """Existing files were generated with other parameters than those asked for."""


def _record(task: FileTask) -> dict:
    """The generation parameters of a file (what must match for a re-run to keep it)."""
    return {"jets": task.n_jets, "seed": task.seed, "detector": task.detector, "fast": task.fast}


#: manifest entries also hold the file size ("bytes"); it identifies a damaged file, not a parameter
_SIZE = "bytes"


def _manifest_path(out_dir) -> Path:
    return Path(out_dir) / "Pythia" / MANIFEST


def read_manifest(out_dir) -> dict[str, dict]:
    path = _manifest_path(out_dir)
    if not path.exists():
        return {}
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise GenerationMismatch(f"{path}: unreadable generation record ({err}); remove it to regenerate") from None
    if not isinstance(manifest, dict) or not all(isinstance(v, dict) for v in manifest.values()):
        raise GenerationMismatch(f"{path}: not a partx generation record (expected {{file: parameters}}); "
                                 "remove it to regenerate")
    return manifest


def _write_manifest(out_dir, manifest: dict[str, dict]) -> None:
    from partx.atomic import atomic_write

    atomic_write(_manifest_path(out_dir), json.dumps(dict(sorted(manifest.items())), indent=1))


def _existing_matches(task: FileTask, key: str, manifest: dict, log) -> bool:
    """True if the finished file of ``task`` was made with its parameters and is intact; False if it was
    damaged since (to be generated again); raise GenerationMismatch if it was made with other parameters."""
    if key in manifest:
        params = {k: v for k, v in manifest[key].items() if k != _SIZE}
        if params == _record(task):
            size, recorded = task.path.stat().st_size, manifest[key].get(_SIZE)
            if recorded is not None and size != recorded:
                log(f"{task.path}: {size} bytes on disk, {recorded} when generated (damaged or half-copied): "
                    "generating it again")
                return False
            return True
        old = ", ".join(f"{k}={v}" for k, v in params.items())
        new = ", ".join(f"{k}={v}" for k, v in _record(task).items())
        raise GenerationMismatch(f"{task.path} was generated with {old}, not {new}: choose another --out, "
                                 "or delete the old files to regenerate them")
    import uproot

    from partx.preflight import PreflightError, check_root_integrity

    try:  # no record (older partx): accept a complete, readable file of the planned size
        check_root_integrity(str(task.path))  # a truncated file keeps a readable header and jet count
        with uproot.open(task.path) as f:
            n = f[schema.TREE_NAME].num_entries
    except PreflightError as err:
        raise GenerationMismatch(f"{err}; delete it to regenerate it") from None
    except Exception as err:  # noqa: BLE001 - uproot raises many types for a truncated or foreign file
        raise GenerationMismatch(f"{task.path} is not a readable JetClass file ({type(err).__name__}: "
                                 f"{' '.join(str(err).split())}); delete it to regenerate it") from None
    if n != task.n_jets:
        raise GenerationMismatch(f"{task.path} holds {n} jets, not the {task.n_jets} asked for: choose another --out, "
                                 "or delete the old files to regenerate them")
    return True


def split_sizes(jets_per_class: int) -> dict[str, int]:
    n = int(jets_per_class)
    return {"train": n, "val": math.ceil(n * VAL_FRACTION), "test": math.ceil(n * TEST_FRACTION)}


def plan(out_dir, jets_per_class, *, seed=0, splits=("train", "val", "test"), classes=None,
         detector=True, fast=False) -> list[FileTask]:
    classes = list(classes) if classes else list(schema.STEMS)
    for c in classes:
        if c not in PROCESSES:
            raise ValueError(f"unknown class {c!r}; known: {', '.join(schema.STEMS)}")
    for s in splits:
        if s not in SPLIT_DIRS:
            raise ValueError(f"unknown split {s!r}; known: {', '.join(SPLIT_DIRS)}")
    sizes = split_sizes(jets_per_class)
    tasks = []
    for stem in classes:
        for split in splits:
            n = sizes[split]
            nfiles = max(1, math.ceil(n / JETS_PER_FILE))
            for i in range(nfiles):
                nj = n // nfiles + (1 if i < n % nfiles else 0)
                name = f"{stem}_{FIRST_FILE_INDEX[split] + i:03d}.root"
                path = Path(out_dir) / "Pythia" / SPLIT_DIRS[split] / name
                tasks.append(FileTask(stem, split, i, nj, int(seed), bool(detector), bool(fast), path))
    return tasks


def generate_arrays(task: FileTask) -> dict[str, np.ndarray | ak.Array]:
    """Generate the jets of one file and return the branch arrays (not written)."""
    from partx.datagen.detector import apply_detector, generator_level
    from partx.datagen.events import EventSource
    from partx.datagen.jets import select_jets
    from partx.datagen.jetobs import substructure

    proc = PROCESSES[task.stem]
    nvar = len(proc.variants)
    states = task.seed_sequence().generate_state(nvar + 1)
    rng = np.random.default_rng(int(states[-1]))
    collected: list[dict] = []
    for v in range(nvar):
        quota = task.n_jets // nvar + (1 if v < task.n_jets % nvar else 0)
        if quota == 0:
            continue
        src = EventSource(task.stem, v, int(states[v]), fast=task.fast)
        got: list[dict] = []
        n_events = 0
        while len(got) < quota:
            eff = (len(got) + 1) / (n_events + 2)  # deterministic running estimate of jets / event
            nb = int(np.clip(math.ceil((quota - len(got)) / eff * 1.2), 8, 256))
            batch = src.next(nb)
            n_events += batch.n_events
            cands = apply_detector(batch, rng) if task.detector else generator_level(batch)
            got += select_jets(cands, batch, qcd=proc.resonance == 0)
        collected += got[:quota]
    return _assemble(collected, task.stem, substructure)


def _assemble(jets: list[dict], stem: str, substructure) -> dict:
    n = len(jets)
    out: dict = {}
    for name, t in schema.branch_types().items():
        if name.startswith("label_"):
            continue
        if t.startswith("var * "):
            dt = np.dtype(t.split()[-1])
            counts = np.array([len(j[name]) for j in jets], dtype=np.int64)
            flat = np.concatenate([np.asarray(j[name]) for j in jets]).astype(dt) if n else np.zeros(0, dt)
            out[name] = ak.unflatten(flat, counts)
        elif name in ("jet_sdmass", "jet_tau1", "jet_tau2", "jet_tau3", "jet_tau4"):
            continue
        else:
            out[name] = np.array([j[name] for j in jets], dtype=np.dtype(t))
    sub = substructure(out["part_px"], out["part_py"], out["part_pz"], out["part_energy"])
    out["jet_sdmass"] = sub["sdmass"].astype(np.float32)
    for k in range(1, 5):
        out[f"jet_tau{k}"] = sub[f"tau{k}"].astype(np.float32)
    own = schema.label_of(stem)
    for lab in schema.LABELS:
        out[lab] = np.full(n, lab == own, dtype=schema.LABEL_DTYPES[lab])
    return out


def _run_task(task: FileTask) -> tuple[Path, int, float]:
    from partx.datagen.io import write_jetclass

    t0 = time.perf_counter()
    arrays = generate_arrays(task)
    write_jetclass(task.path, arrays)
    return task.path, task.n_jets, time.perf_counter() - t0


def generate(out_dir, jets_per_class, *, seed=0, workers=1, splits=("train", "val", "test"), classes=None,
             detector=True, fast=False, progress=True, log=print) -> list[Path]:
    """Generate (or complete) a JetClass-format dataset; returns the paths of all planned files.

    Files that already exist under their final name are complete (written atomically) and skipped if
    they were made with the same parameters; otherwise GenerationMismatch is raised before any work.
    ``log`` receives one line on what a re-run keeps, and one per damaged file generated again.
    """
    if int(jets_per_class) < 1:
        raise ValueError(f"jets_per_class must be >= 1, got {jets_per_class}")
    tasks = plan(out_dir, jets_per_class, seed=seed, splits=splits, classes=classes, detector=detector, fast=fast)
    manifest = read_manifest(out_dir)
    from partx.datagen.io import stale_temp_files

    for d in {t.path.parent for t in tasks if t.path.parent.is_dir()}:  # left by an interrupted run
        for stale in stale_temp_files(d):
            stale.unlink(missing_ok=True)
    key = {t.path: t.path.relative_to(Path(out_dir) / "Pythia").as_posix() for t in tasks}
    todo = [t for t in tasks if not (t.path.exists() and _existing_matches(t, key[t.path], manifest, log))]
    if len(todo) < len(tasks):
        kept = len(tasks) - len(todo)
        log(f"resuming: {kept} of {len(tasks)} files already generated with these parameters are kept"
            + (f", {len(todo)} to generate" if todo else "; nothing to generate"))
    records = {key[t.path]: _record(t) for t in tasks}

    def record(path: Path) -> dict:
        return {**records[key[path]], _SIZE: path.stat().st_size}

    adopted = {key[t.path]: record(t.path) for t in tasks
               if key[t.path] not in manifest and t.path.exists() and t not in todo}
    if adopted:
        manifest.update(adopted)
        _write_manifest(out_dir, manifest)

    def done(path: Path) -> None:
        manifest[key[path]] = record(path)
        _write_manifest(out_dir, manifest)

    todo.sort(key=lambda t: -t.n_jets * _COST.get(t.stem, 1.0))
    bar = None
    if progress:
        from tqdm import tqdm

        tqdm.monitor_interval = 0  # no monitor thread (the pool may fork)
        bar = tqdm(total=len(todo), desc="jetclass files", unit="file")
    try:
        if workers <= 1 or len(todo) <= 1:
            for t in todo:
                path, _, _ = _run_task(t)
                done(path)
                if bar is not None:
                    bar.set_postfix_str(path.name)
                    bar.update()
        else:
            # fork after importing the heavy modules once: workers start in milliseconds instead of
            # re-importing pythia8mc / fastjet / uproot (each worker builds its own Pythia instances)
            import fastjet  # noqa: F401
            import pythia8mc  # noqa: F401
            import uproot  # noqa: F401

            methods = mp.get_all_start_methods()
            ctx = mp.get_context("fork" if "fork" in methods else "spawn")
            # workers ignore Ctrl-C: the parent alone handles it (one line, pool terminated on exit)
            with ctx.Pool(min(workers, len(todo)), initializer=_ignore_sigint) as pool:
                for path, _, _ in pool.imap_unordered(_run_task, todo):
                    done(path)
                    if bar is not None:
                        bar.set_postfix_str(path.name)
                        bar.update()
    except BaseException:
        # the pool's workers were terminated mid-file: their hidden temporary files are removed here
        # (a rerun would remove them too); finished files and their records stay. A worker may have
        # renamed its finished file into place before the parent received its result: record it too
        # (a final name only ever holds a complete file, partx.datagen.io writes atomically).
        late = {key[t.path]: record(t.path) for t in todo if t.path.exists() and key[t.path] not in manifest}
        if late:
            manifest.update(late)
            _write_manifest(out_dir, manifest)
        for d in {t.path.parent for t in todo if t.path.parent.is_dir()}:
            for stale in stale_temp_files(d):
                stale.unlink(missing_ok=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    return [t.path for t in tasks]


def _ignore_sigint() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def default_workers() -> int:
    return max(1, min(len(os.sched_getaffinity(0)), 8))
