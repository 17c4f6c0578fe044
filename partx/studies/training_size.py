"""Training-set-size study: the same models, the same budget, growing training sets, one test set.

For every training-set size (jets per class) a *dataset view* is built, a directory in the layout
``train_JetClass.sh`` expects::

    VIEW/Pythia/train_100M/<Stem>_NNN.root  -> symlinks to that size's training files
    VIEW/Pythia/val_5M                      -> symlink to the ONE shared validation directory
    VIEW/Pythia/test_20M                    -> symlink to the ONE shared test directory

so every (model, size) run is validated and tested on the same jets. Each run goes through
``./train_JetClass.sh MODEL FEATURES`` with the same budget: ``epochs`` full passes over its training
set (``SAMPLES_PER_EPOCH`` = all training jets), batch size 128, the in-memory data options of the
demo; models, their options, learning rates and optimizer come from partx.registry. Metrics come from
``partx.metrics`` on weaver's test-split predictions (best-validation epoch). Nothing is read from
weaver's text log: the study times each run itself, and reads the per-epoch validation accuracy
(weaver's validation metric for classification) and the epoch wall times from the TensorBoard
scalars weaver writes (``Acc/eval (epoch)``, ``Acc/train (epoch)``). A run is finished when its
``metrics.json`` exists (written atomically, last), so a re-run skips it; an unfinished run (stopped by
Ctrl-C or a failure) is trained again from the start, and the re-run says so. Every training and
evaluation file is checked by ``partx.preflight`` (the training launcher's check) before any training.
Ctrl-C stops the training it is running (its own process group: SIGINT, then SIGKILL after
``STOP_GRACE_S``), so no weaver process outlives the study.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tabulate import tabulate

from partx import registry
from partx.atomic import atomic_write
from partx.cli import UserError, writable_dir
from partx.dataset_layouts import JETCLASS

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / JETCLASS.script
#: where weaver's TensorBoard writer puts its runs: ``runs/`` in the working directory of the
#: weaver process, which train_JetClass.sh sets to the repository root
TENSORBOARD_ROOT = REPO / "runs"
SAMPLE = JETCLASS.sample
TRAIN, VAL, TEST = JETCLASS.train, JETCLASS.val, JETCLASS.test

#: registry names trained by default: the demo-sized ParT (CPU budget) and PFN
DEFAULT_MODELS = ("ParT-demo", "PFN")
BATCH_SIZE = 128
DATAOPTS = "--num-workers 1 --fetch-step 1 --in-memory"
FEATURES = JETCLASS.features
_FILE_RE = re.compile(r"^(?P<stem>[A-Za-z0-9]+)_(?P<num>\d+)\.root$")


#: seconds a training gets to stop after Ctrl-C before its process group is killed
STOP_GRACE_S = 30.0


class StudyError(UserError, ValueError):
    """Bad arguments or inputs (partx.cli: one line, exit 2)."""


class RunFailed(RuntimeError):
    """train_JetClass.sh or the evaluation failed for one (model, size)."""


@dataclass(frozen=True)
class ModelSpec:
    name: str                 # registry name: row label and first argument of train_JetClass.sh
    opts: tuple[str, ...]     # extra weaver args (-o key value ...) after the registry's options

    @property
    def options(self) -> str:
        """Every model option of the run: the registry's, then the study's (a key given again wins)."""
        return shlex.join([*registry.get(self.name).weaver_options(), *self.opts])


def resolve_models(names: list[str], overrides: dict[str, str] | None = None) -> list[ModelSpec]:
    """Study model specs; ``overrides`` maps a model name to a shell-quoted option string added after
    its registry options (e.g. ``{"ParT-demo": "-o num_layers 1"}``)."""
    overrides = dict(overrides or {})
    if not names:
        raise StudyError("no models given")
    if len(set(names)) != len(names):
        raise StudyError(f"duplicate models in {names}")
    specs = []
    for name in names:
        if name not in registry.names(JETCLASS.family):
            raise StudyError(f"unknown model {name!r}: choose from {', '.join(registry.names(JETCLASS.family))}")
        opts: tuple[str, ...] = ()
        if name in overrides:
            try:
                opts = tuple(shlex.split(overrides.pop(name)))
            except ValueError as err:
                raise StudyError(f"--model-opts for {name}: {err}") from None
        specs.append(ModelSpec(name, tuple(opts)))
    if overrides:
        raise StudyError(f"--model-opts for model(s) not in the study: {', '.join(overrides)}")
    return specs


def split_files(split_dir: Path) -> dict[str, list[Path]]:
    """<Stem>_NNN.root files of one split directory, grouped by stem (hidden temp files ignored)."""
    from partx.datagen import schema

    out: dict[str, list[Path]] = {}
    if not split_dir.is_dir():
        return out
    for p in sorted(split_dir.iterdir()):
        m = _FILE_RE.match(p.name)
        if m and m["stem"] in schema.STEMS:
            out.setdefault(m["stem"], []).append(p)
    return out


def count_jets(files: list[Path]) -> int:
    import uproot

    from partx.datagen import schema

    n = 0
    for f in files:
        try:
            with uproot.open(f) as fh:
                n += fh[schema.TREE_NAME].num_entries
        except Exception as err:  # noqa: BLE001 - any unreadable file is a user error here
            raise StudyError(f"{f}: unreadable ({type(err).__name__}: {err})") from None
    return n


@dataclass
class SizeData:
    """The training files of one size, checked: every class present with exactly ``size`` jets."""
    size: int
    dirs: list[Path]
    files: dict[str, list[Path]] = field(default_factory=dict)

    @property
    def n_train(self) -> int:
        return self.size * len(self.files)


def check_size_data(size: int, dirs: list[Path]) -> SizeData:
    from partx.datagen import schema

    if size < 1:
        raise StudyError(f"training-set size must be >= 1 jet per class, got {size}")
    if not dirs:
        raise StudyError(f"no data directory for size {size}")
    files: dict[str, list[Path]] = {s: [] for s in schema.STEMS}
    for d in dirs:
        split = Path(d) / SAMPLE / TRAIN
        if not split.is_dir():
            raise StudyError(f"size {size}: {split} is not a directory (expected a JetClass-layout dataset)")
        found = split_files(split)
        if not found:
            raise StudyError(f"size {size}: no <Stem>_NNN.root training files in {split}")
        for stem, fs in found.items():
            files[stem].extend(fs)
    missing = [s for s, fs in files.items() if not fs]
    if missing:
        raise StudyError(f"size {size}: no training files for {', '.join(missing)} in {', '.join(map(str, dirs))}")
    seen: set[Path] = set()
    for stem, fs in files.items():
        real = {f.resolve() for f in fs}
        if len(real) != len(fs) or real & seen:
            raise StudyError(f"size {size}: the same training file is listed twice ({stem}); give distinct directories")
        seen |= real
        n = count_jets(fs)
        if n != size:
            raise StudyError(f"size {size}: class {stem} has {n} training jets in {', '.join(map(str, dirs))}, "
                             f"expected exactly {size} (jets per class)")
    return SizeData(size, [Path(d) for d in dirs], files)


@dataclass
class EvalData:
    dir: Path
    n_val: int
    n_test: int


def check_files(features: str, files: list[Path]) -> None:
    """The training launcher's file check (partx.preflight: readable, the tree and every branch the data
    config of ``features`` needs) on the study's files, before the first training instead of in each."""
    from partx.preflight import PreflightError
    from partx.preflight import check_files as preflight_files

    try:
        preflight_files(str(REPO / JETCLASS.data_config.format(features=features)), [str(f) for f in files])
    except PreflightError as err:
        raise StudyError(str(err)) from None


def check_eval_data(eval_dir: Path, train_sets: list[SizeData]) -> EvalData:
    eval_dir = Path(eval_dir)
    counts = {}
    for split in (VAL, TEST):
        d = eval_dir / SAMPLE / split
        fs = split_files(d)
        if not fs:
            raise StudyError(f"no validation/test files in {d} (expected a JetClass-layout dataset)")
        counts[split] = count_jets([f for v in fs.values() for f in v])
        used = {f.resolve() for v in fs.values() for f in v}
        for sd in train_sets:
            overlap = used & {f.resolve() for v in sd.files.values() for f in v}
            if overlap:
                raise StudyError(f"{d}: file(s) also used for training size {sd.size}: {sorted(map(str, overlap))[:3]}")
    return EvalData(eval_dir, counts[VAL], counts[TEST])


def build_view(view_dir: Path, data: SizeData, eval_dir: Path) -> Path:
    """(Re)create ``view_dir`` as symlinks: this size's training files + the shared val/test dirs."""
    view_dir = Path(view_dir)
    root = view_dir / SAMPLE
    train = root / TRAIN
    if train.exists():
        shutil.rmtree(train)
    train.mkdir(parents=True)
    for stem, fs in data.files.items():
        for i, f in enumerate(fs):  # renumber: several source dirs may all hold <Stem>_000.root
            os.symlink(f.resolve(), train / f"{stem}_{i:03d}.root")
    for split in (VAL, TEST):
        link = root / split
        if link.is_symlink() or link.is_file():
            link.unlink()
        elif link.exists():
            shutil.rmtree(link)
        os.symlink((Path(eval_dir) / SAMPLE / split).resolve(), link, target_is_directory=True)
    return view_dir


def write_json_atomic(path: Path, obj) -> Path:
    return atomic_write(path, json.dumps(obj, indent=2) + "\n")


def read_tensorboard(run: Path, n_train: int) -> dict:
    """Per-epoch validation accuracy and training speed from the TensorBoard scalars weaver wrote.

    Epoch k's training time is the wall time between the end of validation k-1 (``Acc/eval``) and the
    end of training k (``Acc/train``); epoch 0 has no start mark (data loading, model building), so
    the speed averages epochs >= 1 and is None for a one-epoch run.
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict = {"val_metric": [], "train_jets_per_s": None}
    if not run.is_dir():
        return out
    acc = EventAccumulator(str(run), size_guidance={"scalars": 0})
    acc.Reload()
    tags = set(acc.Tags().get("scalars", []))
    if "Acc/eval (epoch)" not in tags:
        return out
    val = {e.step: e for e in acc.Scalars("Acc/eval (epoch)")}
    out["val_metric"] = [round(val[k].value, 5) for k in sorted(val)]  # weaver logs 5 decimals
    train = {e.step: e for e in acc.Scalars("Acc/train (epoch)")} if "Acc/train (epoch)" in tags else {}
    speeds = [n_train / (train[k].wall_time - val[k - 1].wall_time)
              for k in sorted(train) if k >= 1 and k - 1 in val and train[k].wall_time > val[k - 1].wall_time]
    if speeds:
        out["train_jets_per_s"] = round(sum(speeds) / len(speeds), 1)
    return out


def _collect_tensorboard(comment: str, run_dir: Path) -> Path:
    """Move weaver's TensorBoard run (``runs/<time>_<host><comment>``) into ``run_dir/tensorboard``."""
    dest = run_dir / "tensorboard"
    for found in sorted(TENSORBOARD_ROOT.glob(f"*{comment}")):
        shutil.move(str(found), str(dest))
    return dest


def run_name(model: str, size: int, repeat: int = 0, seed: int | None = None) -> str:
    """``<model>_n<size>`` for the first training, ``<model>_n<size>_r<k>`` for repeat k >= 1,
    ``<model>_n<size>_s<seed>`` for a seeded training."""
    return f"{model}_n{size}" + (f"_r{repeat}" if repeat else "") + (f"_s{seed}" if seed is not None else "")


def run_training(cmd: list[str], cwd=None, env=None, stdout=None, stderr=None) -> subprocess.CompletedProcess:
    """``subprocess.run`` of one training in its own process group, stopped as a whole on Ctrl-C.

    ``subprocess.run`` would SIGKILL only ``bash train_JetClass.sh`` on KeyboardInterrupt and orphan its
    weaver process; here the group gets SIGINT (the launcher's own clean stop of weaver), then SIGKILL
    after ``STOP_GRACE_S`` seconds, and the interrupt is re-raised once the group is gone.
    """
    from partx.process_group import run_group

    rc = run_group(cmd, first=signal.SIGINT, grace=STOP_GRACE_S, cwd=cwd, env=env, stdout=stdout, stderr=stderr)
    return subprocess.CompletedProcess(cmd, rc)


def run_one(spec: ModelSpec, data: SizeData, ev: EvalData, view: Path, out_dir: Path, *, epochs: int,
            features: str = "full", batch_size: int = BATCH_SIZE, dataopts: str = DATAOPTS,
            python: str | None = None, quiet: bool = False, train: bool = True, repeat: int = 0,
            seed: int | None = None) -> dict | None:
    """Train + test one (model, size, repeat) through train_JetClass.sh, or load its finished result
    (``train=False``: only load; None if the run is not finished). ``seed``: ``PARTX_SEED`` of the weaver
    process (partx.weaver_run: initial weights, data order), recorded and part of the run's name."""
    from partx.metrics.jets import jet_metrics
    from partx.metrics.predictions import PredictionFileError, load_weaver_predictions

    run_dir = Path(out_dir) / "runs" / run_name(spec.name, data.size, repeat, seed)
    what = f"{spec.name} n={data.size}" + (f" seed {seed}" if seed is not None else "")
    metrics_path = run_dir / "metrics.json"
    if metrics_path.is_file():
        try:
            rec = json.loads(metrics_path.read_text())
        except (OSError, ValueError) as err:
            raise StudyError(f"{metrics_path}: unreadable ({err}); remove it to train this run again") from None
        if not isinstance(rec, dict):
            raise StudyError(f"{metrics_path}: not a study record; remove it to train this run again")
        want = {"model_options": spec.options, "n_train": data.n_train, "epochs": epochs,
                "batch_size": batch_size, "features": features, "seed": seed}
        diff = {k: (rec.get(k), v) for k, v in want.items() if rec.get(k) != v}
        if diff:
            raise StudyError(f"{metrics_path} is a finished run with other settings {diff} (found, wanted); "
                             f"remove it or use another output directory")
        if not quiet:
            print(f"[skip] {what}: finished ({metrics_path})", flush=True)
        return rec
    if not train:
        if not quiet:
            print(f"[miss] {what}: not run (no {metrics_path})", flush=True)
        return None
    if run_dir.exists():  # an unfinished run: start clean so no stale prediction is mixed in
        if not quiet:
            print(f"[redo] {what}: unfinished run in {run_dir} (interrupted or failed) "
                  "removed; training it again", flush=True)
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    env = dict(os.environ, DATADIR_JetClass=str(Path(view).resolve()), NUM_EPOCHS=str(epochs),
               SAMPLES_PER_EPOCH=str(data.n_train), SAMPLES_PER_EPOCH_VAL=str(ev.n_val),
               BATCH_SIZE=str(batch_size), DATAOPTS=dataopts, GPUS=os.environ.get("GPUS", ""))
    env.pop("DDP_NGPUS", None)
    if seed is not None:
        env["PARTX_SEED"] = str(seed)
    if python:
        env["PYTHON"] = python
    tb_comment = f"_partx-study-{uuid.uuid4().hex[:12]}"  # finds this run's writer among runs/
    cmd = ["bash", str(SCRIPT), spec.name, features, *spec.opts,
           "--model-prefix", str((run_dir / "net").resolve()), "--log", str((run_dir / "train.log").resolve()),
           "--tensorboard", tb_comment]
    if not quiet:
        print(f"[run ] {what}: {data.n_train} train jets x {epochs} epochs -> {run_dir}", flush=True)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    with open(run_dir / "stdout.log", "w") as logf:
        logf.write(shlex.join(cmd) + "\n")
        logf.flush()
        res = run_training(cmd, cwd=REPO, env=env, stdout=logf, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - t0
    tensorboard = _collect_tensorboard(tb_comment, run_dir)
    if res.returncode != 0:
        tail = (run_dir / "stdout.log").read_text(errors="replace")[-2000:]
        raise RunFailed(f"{what}: train_JetClass.sh exited {res.returncode} "
                        f"(log {run_dir / 'stdout.log'}):\n{tail}")
    try:
        scores, labels, names = load_weaver_predictions([str(run_dir / "predict_output" / "pred_*.root")])
        m = jet_metrics(scores, labels, names)
    except (PredictionFileError, ValueError) as err:
        raise RunFailed(f"{what}: evaluation failed: {err}") from None
    tb = read_tensorboard(tensorboard, data.n_train)
    rec = {
        "model": spec.name, "model_options": spec.options, "repeat": repeat, "seed": seed,
        "jets_per_class": data.size, "n_train": data.n_train, "n_val": ev.n_val, "n_test": m.n_jets,
        "epochs": epochs, "batch_size": batch_size, "features": features,
        "accuracy": m.accuracy, "auc": m.auc, "auc_ovr": m.auc_ovr,
        "rej_Hbb": m.rejection.get("label_Hbb"), "rej_Tbqq": m.rejection.get("label_Tbqq"),
        "rej_Tbl": m.rejection.get("label_Tbl"),
        "rejection": m.rejection, "working_point": m.working_point,
        "train_wall_s": round(wall, 1),
        "train_jets_per_s": tb["train_jets_per_s"],
        "val_metric_per_epoch": tb["val_metric"],
        "loadavg_1min_start": round(load0, 2), "loadavg_1min_end": round(os.getloadavg()[0], 2),
        "train_dirs": [str(d) for d in data.dirs], "eval_dir": str(ev.dir), "run_dir": str(run_dir),
    }
    write_json_atomic(metrics_path, rec)
    if not quiet:
        print(f"[done] {what}: acc {m.accuracy:.4f}  AUC {m.auc:.4f}  "
              f"wall {wall:.0f} s", flush=True)
    return rec


COLUMNS = ["model", "jets_per_class", "n_train", "epochs", "accuracy", "auc", "rej_Hbb", "rej_Tbqq", "rej_Tbl",
           "train_wall_s", "train_jets_per_s", "n_test"]


HEADERS = {"model": "model", "jets_per_class": "train jets / class", "n_train": "train jets", "epochs": "epochs",
           "accuracy": "accuracy", "auc": "AUC (ovo)", "rej_Hbb": "Hbb rej. @50%",
           "rej_Tbqq": "Tbqq rej. @50%", "rej_Tbl": "Tbl rej. @99.5%", "train_wall_s": "wall (s)", "train_jets_per_s": "train jets/s",
           "n_test": "test jets"}


def _fmt(v, col: str) -> str:
    if v is None:
        return "–"
    if col in ("accuracy", "auc", "auc_ovr"):
        return f"{v:.4f}"
    if col.startswith("rej_"):
        return "inf" if v == float("inf") else f"{v:.1f}"
    if isinstance(v, float):
        return f"{v:.0f}" if col == "train_wall_s" else f"{v:.1f}"
    return str(v)


#: columns averaged over repeated trainings (mean ± standard deviation of the runs)
AVERAGED = ("accuracy", "auc", "rej_Hbb", "rej_Tbqq", "rej_Tbl", "train_wall_s", "train_jets_per_s")


def _group(records: list[dict]) -> list[list[dict]]:
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["model"], r["jets_per_class"]), []).append(r)
    return list(groups.values())


def _cell(runs: list[dict], col: str) -> str:
    values = [r.get(col) for r in runs]
    if col not in AVERAGED or len(runs) == 1:
        return _fmt(values[0], col)
    finite = [float(v) for v in values if v is not None and v != float("inf")]
    if not finite:
        return _fmt(values[0], col)
    mean, std = float(np.mean(finite)), float(np.std(finite, ddof=1)) if len(finite) > 1 else float("nan")
    text = f"{_fmt(mean, col)} ± {_fmt(std, col)}"
    return text + (f" ({len(values) - len(finite)} inf)" if len(finite) < len(values) else "")


def markdown_table(records: list[dict]) -> str:
    """One row per (model, size); with repeated trainings, mean ± standard deviation over the runs."""
    groups = _group(records)
    repeated = any(len(g) > 1 for g in groups)
    cols = COLUMNS + (["runs"] if repeated else [])
    rows = [[str(len(g)) if c == "runs" else _cell(g, c) for c in cols] for g in groups]
    heads = [HEADERS.get(c, c) for c in cols]
    return tabulate(rows, headers=heads, tablefmt="github", disable_numparse=True) + "\n"


def plot_results(records: list[dict], path: Path, title: str = "") -> Path:
    import matplotlib.pyplot as plt

    from partx.plotting import hep_style, save_figure

    hep_style()
    fig, axes = plt.subplots(1, 2, figsize=(15, 6), gridspec_kw={"wspace": 0.35})
    models = list(dict.fromkeys(r["model"] for r in records))
    for model in models:
        groups = sorted((g for g in _group(records) if g[0]["model"] == model), key=lambda g: g[0]["jets_per_class"])
        x = [g[0]["jets_per_class"] for g in groups]
        for ax, key in zip(axes, ("accuracy", "auc")):
            mean = [float(np.mean([r[key] for r in g])) for g in groups]
            err = [float(np.std([r[key] for r in g], ddof=1)) if len(g) > 1 else 0.0 for g in groups]
            ax.errorbar(x, mean, yerr=err, marker="o", capsize=4, label=model)
    sizes = sorted({r["jets_per_class"] for r in records})
    for ax, lab in zip(axes, ("test accuracy", "test AUC (one-vs-one)")):
        ax.set_xscale("log")
        ax.set_xticks(sizes)
        ax.set_xticklabels([str(s) for s in sizes])
        ax.minorticks_off()
        ax.set_xlabel("training jets per class")
        ax.set_ylabel(lab)
        ax.legend(fontsize=14)
    if title:
        fig.suptitle(title, fontsize=14)
    return save_figure(fig, path)


def write_outputs(records: list[dict], out_dir: Path, title: str = "", plot: bool = True) -> dict[str, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = sorted(records, key=lambda r: (r["model"], r["jets_per_class"], r.get("repeat", 0)))
    paths = {"json": write_json_atomic(out_dir / "results.json", records)}
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=COLUMNS + ["model_options"], extrasaction="ignore")
    w.writeheader()
    w.writerows(records)
    paths["csv"] = atomic_write(out_dir / "results.csv", buf.getvalue())
    paths["md"] = atomic_write(out_dir / "results.md", markdown_table(records))
    if plot and records:
        paths["png"] = plot_results(records, out_dir / "training_size_study.png", title)
    return paths


@dataclass
class StudyConfig:
    data: dict[int, list[Path]]            # jets per class -> training directories
    eval_dir: Path                         # the shared val_5M / test_20M
    out_dir: Path
    models: list[str] = field(default_factory=lambda: list(DEFAULT_MODELS))
    model_opts: dict[str, str] = field(default_factory=dict)
    epochs: int = 3
    features: str = "full"
    batch_size: int = BATCH_SIZE
    dataopts: str = DATAOPTS
    title: str = ""
    repeats: int = 1                       # independent trainings per (model, size): weaver does not seed


def validate(cfg: StudyConfig) -> tuple[list[ModelSpec], list[SizeData], EvalData]:
    """Every check that needs no training; raises StudyError."""
    if cfg.epochs < 1:
        raise StudyError(f"epochs must be >= 1, got {cfg.epochs}")
    if cfg.repeats < 1:
        raise StudyError(f"repeats must be >= 1, got {cfg.repeats}")
    if cfg.batch_size < 1:
        raise StudyError(f"batch size must be >= 1, got {cfg.batch_size}")
    if cfg.features not in FEATURES:
        raise StudyError(f"invalid feature set {cfg.features!r}: choose {', '.join(FEATURES)}")
    specs = resolve_models(cfg.models, cfg.model_opts)
    if not cfg.data:
        raise StudyError("no training-set sizes given")
    for size in cfg.data:
        if size < 1:
            raise StudyError(f"training-set size must be >= 1 jet per class, got {size}")
    for size, dirs in cfg.data.items():
        for d in dirs:
            if not Path(d).is_dir():
                raise StudyError(f"size {size}: data directory {d} does not exist")
    if not Path(cfg.eval_dir).is_dir():
        raise StudyError(f"evaluation data directory {cfg.eval_dir} does not exist")
    sets = [check_size_data(s, cfg.data[s]) for s in sorted(cfg.data)]
    ev = check_eval_data(cfg.eval_dir, sets)
    eval_files = [f for split in (VAL, TEST) for fs in split_files(Path(cfg.eval_dir) / SAMPLE / split).values() for f in fs]
    check_files(cfg.features, [f for sd in sets for fs in sd.files.values() for f in fs] + eval_files)
    return specs, sets, ev


def run_study(cfg: StudyConfig, quiet: bool = False, train: bool = True) -> list[dict]:
    """Run every (model, size) of ``cfg`` that is not finished and write the outputs. ``train=False``
    only tabulates the finished runs of the grid (missing ones are left out and reported)."""
    specs, sets, ev = validate(cfg)
    out = writable_dir(cfg.out_dir)  # before any training: a file or a read-only folder is a user error
    records = []
    for sd in sets:
        view = build_view(out / "views" / f"n{sd.size}", sd, ev.dir)
        for repeat in range(cfg.repeats):  # every model once before any repeat: a cut-short study stays balanced
            for spec in specs:
                rec = run_one(spec, sd, ev, view, out, epochs=cfg.epochs, features=cfg.features, batch_size=cfg.batch_size,
                              dataopts=cfg.dataopts, quiet=quiet, train=train, repeat=repeat)
                if rec is not None:
                    records.append(rec)
                    write_outputs(records, out, cfg.title, plot=False)  # partial table after every run
    if not records:
        raise StudyError(f"no finished run in {out / 'runs'} for this grid")
    write_outputs(records, out, cfg.title)
    return records
