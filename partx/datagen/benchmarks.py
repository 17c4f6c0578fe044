"""Quark-gluon and top-tagging jets, written in the public originals' formats (npz / HDF5).

The same machinery as the JetClass generator (Pythia 8 event source, truth walk, fastjet clustering,
Delphes-lite detector of partx.datagen) makes small look-alikes of the two benchmarks, written in the
ORIGINAL formats, so that the same conversion (partx.readers.quarkgluon / toplandscape) runs on generated
and on real data:

* ``quarkgluon``: EnergyFlow's Pythia 8 quark/gluon set (arXiv:1810.05165): Z(->nu nu) + g and Z(->nu nu)
  + (u, d, s) at 14 TeV, generator-level final-state particles (no detector, neutrinos removed), the
  leading anti-kT R = 0.4 jet with 500 < pT < 550 GeV and |y| < 1.7. Files ``QG_jets.npz``, ``QG_jets_1.npz``,
  ...: ``X`` (N, M, 4) = (pt, rapidity, phi in [0, 2 pi), pdgid) zero-padded to the file's largest M,
  ``y`` (N,) 1 quark / 0 gluon, both classes shuffled together (as the originals).
* ``toplandscape``: the top tagging landscape set (arXiv:1902.09914): all-hadronic ttbar against QCD dijets
  at 14 TeV without MPI, Delphes-lite E-flow candidates (partx's CMS-like card; the original used Delphes'
  ATLAS card), anti-kT R = 0.8 jets with 550 < pT < 650 GeV and |eta| < 2; top jets matched to a
  hadronic top with its decay quarks inside the jet (partx.datagen.jets.select_jets, as JetClass).
  Files ``train.h5``, ``val.h5``, ``test.h5``: a pandas DataFrame under key ``table`` with E_i, PX_i, PY_i,
  PZ_i (200 leading constituents, zero-padded), truthE/PX/PY/PZ (the top, with m = 172.5 GeV; 0 for
  QCD), ttv (0 train, 1 test, 2 val) and is_signal_new.

Determinism: each file has its own ``SeedSequence((seed, dataset, file))``; workers do not change the output.
A re-run keeps files already written with the same parameters (``partx_datagen.json``) and refuses
others (GenerationMismatch), as the JetClass generator.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
from dataclasses import dataclass
from pathlib import Path

import awkward as ak
import numpy as np

from partx.datagen.jetclass import GenerationMismatch, _ignore_sigint

DATASETS = ("quarkgluon", "toplandscape")
#: jets per dataset (QG: all files together; TL: the training file; val / test get 1/3 of it each)
PRESETS = {"tiny": 400, "small": 6000}
QG_FILES = {"tiny": 10, "small": 10}   # the original has 20 files of 100k jets; the converter keeps 90% for training
QG_R, QG_PT, QG_YMAX = 0.4, (500.0, 550.0), 1.7
TL_PT, TL_ETAMAX, TL_PARTICLES = (550.0, 650.0), 2.0, 200
TOP_MASS = 172.5
TL_SPLITS = {"train": 0, "test": 1, "val": 2}   # the originals' ttv codes
MANIFEST = "partx_datagen.json"


@dataclass(frozen=True)
class BenchTask:
    dataset: str
    name: str        # output file name
    index: int       # file number (seeds)
    n_jets: int
    seed: int
    fast: bool
    path: Path

    def rng_states(self, n: int) -> list[int]:
        ss = np.random.SeedSequence((self.seed, DATASETS.index(self.dataset), self.index))
        return [int(s) for s in ss.generate_state(n)]


def plan(dataset: str, out_dir, n_jets: int, *, seed: int = 0, files: int | None = None, fast: bool = False) -> list[BenchTask]:
    """The files of one generated dataset (QG: ``files`` npz files of ~n/files jets; TL: train/val/test)."""
    out = Path(out_dir)
    if dataset == "quarkgluon":
        files = files or max(2, math.ceil(n_jets / 100_000))
        sizes = [n_jets // files + (1 if i < n_jets % files else 0) for i in range(files)]
        names = ["QG_jets.npz"] + [f"QG_jets_{i}.npz" for i in range(1, files)]
        return [BenchTask(dataset, nm, i, n, seed, fast, out / nm) for i, (nm, n) in enumerate(zip(names, sizes))]
    if dataset == "toplandscape":
        sizes = {"train": n_jets, "val": max(2, n_jets // 3), "test": max(2, n_jets // 3)}
        return [BenchTask(dataset, f"{s}.h5", TL_SPLITS[s], n, seed, fast, out / f"{s}.h5") for s, n in sizes.items()]
    raise ValueError(f"unknown benchmark {dataset!r}: choose from {', '.join(DATASETS)}")


def _half(n: int, k: int) -> int:
    return n // 2 + (1 if k < n % 2 else 0)


def _events(stem: str, seed: int, fast: bool, quota: int, select) -> list:
    """``quota`` jets of process ``stem``: batches of events -> ``select(batch)`` (a list of jets)."""
    from partx.datagen.events import EventSource

    src = EventSource(stem, 0, seed, fast=fast)
    got: list = []
    n_events = 0
    while len(got) < quota:
        eff = (len(got) + 1) / (n_events + 2)  # running jets / event, as the JetClass generator
        batch = src.next(int(np.clip(math.ceil((quota - len(got)) / eff * 1.2), 8, 256)))
        n_events += batch.n_events
        got += select(batch)
    return got[:quota]


def _qg_select(light_quark: bool):
    """Leading R = 0.4 jet per event at generator level: (pt, y, phi, pid) of its particles."""
    from partx.datagen.jets import _cluster

    def select(b) -> list[np.ndarray]:
        jets, cidx = _cluster(b, b.n_events, r=QG_R, min_pt=QG_PT[0] - 100.0)
        offsets = np.concatenate([[0], np.cumsum(np.bincount(b.evt, minlength=b.n_events))])
        out = []
        for ev in range(b.n_events):
            if len(jets[ev]) == 0:
                continue
            k = int(np.argmax(ak.to_numpy(np.hypot(jets[ev].px, jets[ev].py))))
            j = jets[ev][k]
            pt = math.hypot(j.px, j.py)
            y = 0.5 * math.log((j.E + j.pz) / (j.E - j.pz))
            if not (QG_PT[0] < pt < QG_PT[1] and abs(y) < QG_YMAX):
                continue
            partons = b.truth[ev]
            if light_quark and not any(abs(int(g.pid[0])) <= 3 for g in partons):
                continue  # q g -> Z q with a c or b quark: EnergyFlow's set has u, d, s only
            idx = offsets[ev] + ak.to_numpy(cidx[ev][k]).astype(np.int64)
            px, py, pz, e = b.px[idx], b.py[idx], b.pz[idx], b.e[idx]
            out.append(np.stack([np.hypot(px, py), 0.5 * np.log((e + pz) / (e - pz)),
                                 np.mod(np.arctan2(py, px), 2 * np.pi), b.pid[idx].astype(np.float64)], axis=1))
        return out

    return select


def _tl_select(top: bool, rng: np.random.Generator):
    """R = 0.8 jets after the detector (partx.datagen.jets.select_jets), 550-650 GeV: rows of the HDF5 table."""
    from partx.datagen.detector import apply_detector
    from partx.datagen.jets import select_jets

    def select(b) -> list[np.ndarray]:
        out = []
        for j in select_jets(apply_detector(b, rng), b, qcd=not top):
            if not (TL_PT[0] < j["jet_pt"] < TL_PT[1] and abs(j["jet_eta"]) < TL_ETAMAX):
                continue
            row = np.zeros(4 * TL_PARTICLES + 4)
            n = min(len(j["part_px"]), TL_PARTICLES)  # already pT-ordered
            row[0:4 * n:4], row[1:4 * n:4] = j["part_energy"][:n], j["part_px"][:n]
            row[2:4 * n:4], row[3:4 * n:4] = j["part_py"][:n], j["part_pz"][:n]
            if top:  # the matched top (first truth object), on shell
                pt, eta, phi = j["aux_genpart_pt"][0], j["aux_genpart_eta"][0], j["aux_genpart_phi"][0]
                p = np.array([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)])
                row[-4:] = [math.sqrt(p @ p + TOP_MASS ** 2), *p]
            out.append(row)
        return out

    return select


def generate_arrays(task: BenchTask) -> dict:
    """The content of one file: QG {"X", "y"}; TL {"table": rows (N, 804), "label": (N,)}."""
    s_sig, s_bkg, s_det, s_mix = task.rng_states(4)
    n_sig, n_bkg = _half(task.n_jets, 0), _half(task.n_jets, 1)
    mix = np.random.default_rng(s_mix)
    if task.dataset == "quarkgluon":
        jets = (_events("QG_Quark", s_sig, task.fast, n_sig, _qg_select(True))
                + _events("QG_Gluon", s_bkg, task.fast, n_bkg, _qg_select(False)))
        y = np.r_[np.ones(n_sig), np.zeros(n_bkg)]
        m = max(len(j) for j in jets)
        X = np.zeros((len(jets), m, 4))
        for i, j in enumerate(jets):
            X[i, :len(j)] = j
        order = mix.permutation(len(jets))
        return {"X": X[order], "y": y[order]}
    det = np.random.default_rng(s_det)
    rows = (_events("TL_Top", s_sig, task.fast, n_sig, _tl_select(True, det))
            + _events("TL_QCD", s_bkg, task.fast, n_bkg, _tl_select(False, det)))
    label = np.r_[np.ones(n_sig, dtype=np.int64), np.zeros(n_bkg, dtype=np.int64)]
    order = mix.permutation(len(rows))
    return {"table": np.asarray(rows)[order], "label": label[order], "ttv": task.index}


def write(task: BenchTask, arrays: dict) -> Path:
    """Write one file in the original format, atomically."""
    from partx.atomic import atomic_path

    with atomic_path(task.path) as tmp:
        if task.dataset == "quarkgluon":
            with open(tmp, "wb") as f:  # np.savez would append .npz to a temporary name
                np.savez_compressed(f, X=arrays["X"], y=arrays["y"])
        else:
            import pandas as pd

            cols = [f"{p}_{i}" for i in range(TL_PARTICLES) for p in ("E", "PX", "PY", "PZ")]
            df = pd.DataFrame(arrays["table"].astype(np.float32), columns=cols + ["truthE", "truthPX", "truthPY", "truthPZ"])
            df["ttv"] = np.full(len(df), arrays["ttv"], dtype=np.int64)
            df["is_signal_new"] = arrays["label"]
            df.to_hdf(tmp, key="table", mode="w")  # pandas' HDF5 (PyTables), as the originals
    return task.path


def _run(task: BenchTask) -> Path:
    return write(task, generate_arrays(task))


def _record(task: BenchTask) -> dict:
    return {"jets": task.n_jets, "seed": task.seed, "fast": task.fast}


def generate(dataset: str, out_dir, n_jets: int | None = None, *, preset: str = "tiny", seed: int = 0,
             files: int | None = None, workers: int = 1, fast: bool = False, progress: bool = True,
             log=print) -> list[Path]:
    """Generate (or complete) one benchmark in its original format under ``out_dir``; returns the files."""
    from partx.atomic import atomic_write

    n = PRESETS[preset] if n_jets is None else int(n_jets)
    if n < 2:
        raise ValueError(f"need at least 2 jets (one per class), got {n}")
    if dataset == "quarkgluon" and files is None:
        files = QG_FILES.get(preset) if n_jets is None else None
    tasks = plan(dataset, out_dir, n, seed=seed, files=files, fast=fast)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    mpath = Path(out_dir) / MANIFEST
    manifest = json.loads(mpath.read_text()) if mpath.exists() else {}
    todo = []
    for t in tasks:
        if t.path.exists():
            if manifest.get(t.name) == _record(t):
                continue
            raise GenerationMismatch(f"{t.path} exists and was not generated with jets={t.n_jets}, seed={t.seed}, "
                                     f"fast={t.fast}: choose another --out, or delete it to regenerate")
        todo.append(t)
    if len(todo) < len(tasks):
        log(f"resuming: {len(tasks) - len(todo)} of {len(tasks)} files already generated with these parameters are kept")
    bar = None
    if progress:
        from tqdm import tqdm

        tqdm.monitor_interval = 0
        bar = tqdm(total=len(todo), desc=f"{dataset} files", unit="file")

    def done(path: Path) -> None:
        manifest[path.name] = _record(next(t for t in tasks if t.path == path))
        atomic_write(mpath, json.dumps(dict(sorted(manifest.items())), indent=1))
        if bar is not None:
            bar.update()

    try:
        if workers <= 1 or len(todo) <= 1:
            for t in todo:
                done(_run(t))
        else:
            import fastjet  # noqa: F401 - imported once before forking (see partx.datagen.jetclass)
            import pythia8mc  # noqa: F401

            ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
            with ctx.Pool(min(workers, len(todo)), initializer=_ignore_sigint) as pool:
                for path in pool.imap_unordered(_run, todo):
                    done(path)
    finally:
        if bar is not None:
            bar.close()
    return [t.path for t in tasks]
