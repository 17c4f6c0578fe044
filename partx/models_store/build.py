"""``make models``: generate the data, train every recipe through train_JetClass.sh, evaluate, write cards.

    python -m partx.models_store build [NAME ...] [--datadir datasets/JetClass] [--force]

Per recipe (partx.models_store.recipes): the weaver training runs through the launcher (the command a
user would type, recorded on the card) into ``training/models/<name>/``; the best-validation checkpoint
is then loaded through the card being written, evaluated on the whole generated test split and on the
fixed check subset, and ``models/<name>.pt`` and ``models/<name>.yaml`` are written atomically (weights
first; the card, which carries their sha256, last). A finished training is reused on a re-run; a
checkpoint whose card exists is skipped unless ``--force``.
"""

from __future__ import annotations

import glob
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

from partx import registry
from partx.atomic import atomic_path, atomic_write
from partx.cli import UserError
from partx.models_store.card import read_card, sha256sum, write_card
from partx.models_store.recipes import CHECK, DATA, KNOBS, RECIPES, Recipe

REPO = Path(__file__).resolve().parents[2]
DATA_CONFIG = "data/JetClass/JetClass_full.yaml"


def _run(cmd: list[str], env: dict | None = None) -> None:
    print("+ " + shlex.join(cmd), flush=True)
    rc = subprocess.call(cmd, cwd=REPO, env=env)
    if rc != 0:
        raise UserError(f"command failed (exit {rc}): {shlex.join(cmd)}")


def generate(datadir: Path, checkdir: Path, workers: int = 2) -> None:
    """The training data and the check subset (partx.datagen skips files it already made identically)."""
    _run([sys.executable, "-m", "partx.datagen", "jetclass", "--out", str(datadir), "--preset", DATA["preset"],
          "--seed", str(DATA["seed"]), "--workers", str(workers), "--quiet"])
    _run([sys.executable, "-m", "partx.datagen", "jetclass", "--out", str(checkdir), "--jets-per-class",
          str(CHECK["jets_per_class_arg"]), "--splits", CHECK["split"], "--seed", str(CHECK["seed"]),
          "--workers", str(workers), "--quiet"])


def card_options(recipe: Recipe) -> dict:
    """Every -o option the network gets: the registry entry's and the recipe's."""
    return dict(registry.get(recipe.model).options, **recipe.options)


def train_command(recipe: Recipe, run: Path) -> list[str]:
    opts = [a for k, v in recipe.options.items() for a in ("-o", k, repr(v))]
    return ["./train_JetClass.sh", recipe.model, DATA["features"], *opts, "--model-prefix", f"{run}/net",
            "--log", f"{run}/train.log", "--tensorboard", ""]


def train(recipe: Recipe, datadir: Path, runs: Path) -> dict:
    """Train (or reuse a finished training); returns the run record (command, seconds, run folder)."""
    run = runs / recipe.name
    done = run / "done.json"
    if done.is_file():
        print(f"{recipe.name}: reusing the finished training in {run}", flush=True)
        return json.loads(done.read_text())
    if run.exists():
        import shutil

        shutil.rmtree(run)  # an interrupted training of ours: start it again from scratch
    run.mkdir(parents=True)
    cmd = train_command(recipe, run.relative_to(REPO) if run.is_relative_to(REPO) else run)
    env = dict(os.environ, **KNOBS, DATADIR_JetClass=str(datadir), PYTHON=sys.executable)
    env.setdefault("OMP_NUM_THREADS", "1")
    shown = " ".join(f"{k}={shlex.quote(v)}" for k, v in KNOBS.items()) + " " + shlex.join(cmd)
    t0, load0, commit = time.time(), os.getloadavg()[0], _git_commit()  # the code that trains
    with open(run / "stdout.log", "w") as out:
        print(f"+ {shown}  (log: {run / 'stdout.log'})", flush=True)
        rc = subprocess.call(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.time() - t0
    if rc != 0:
        tail = (run / "stdout.log").read_text(errors="replace").splitlines()[-5:]
        raise UserError(f"training {recipe.name} failed (exit {rc}); see {run / 'stdout.log'}: {' | '.join(tail)}")
    record = dict(command=shown, seconds=round(seconds, 1), run=str(run), threads=env["OMP_NUM_THREADS"],
                  load_average_at_start=round(load0, 2), best_epoch=_best_epoch(run / "train.log"), partx_commit=commit)
    atomic_write(done, json.dumps(record, indent=1))
    return record


def _best_epoch(log: Path) -> int | None:
    """The epoch weaver kept as best (its last "Current validation metric ... (best: X)" that improved)."""
    best, epoch_best = None, None
    text = log.read_text(errors="replace") if log.is_file() else ""
    for m in re.finditer(r"Epoch #(\d+): Current validation metric: ([0-9.naN]+) \(best: ([0-9.naN]+)\)", text):
        if m[2] == m[3]:
            epoch_best = int(m[1])
        best = m[3]
    return epoch_best if best is not None else None


def _shown(path: Path) -> str:
    """``path`` relative to the repository when inside it (cards must not name one machine's folders)."""
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def _git_commit() -> str:
    try:
        head = subprocess.check_output(["git", "rev-parse", "HEAD"], cwd=REPO, text=True).strip()
        dirty = subprocess.call(["git", "diff", "--quiet", "HEAD", "--", "partx", "networks", "data"], cwd=REPO)
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _hardware(threads: str) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU {cpu}, {os.cpu_count()} cores (shared), OMP_NUM_THREADS={threads}, no GPU"


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("partx", "weaver-core", "torch", "pythia8mc"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def write_checkpoint(recipe: Recipe, record: dict, datadir: Path, checkdir: Path, models: Path) -> Path:
    """Copy the best weights into models/, evaluate them through the new card, write the card last."""
    import torch

    from partx.models_store.evaluate import card_metrics, evaluate_files
    from partx.models_store.loader import build
    from partx.models_store.card import ModelCard

    run = Path(record["run"])
    state = torch.load(run / "net_best_epoch_state.pt", map_location="cpu", weights_only=True)
    weights = models / f"{recipe.name}.pt"
    with atomic_path(weights) as tmp:
        torch.save(state, tmp)
    entry = registry.get(recipe.model)
    data = dict(
        name=recipe.name, about=recipe.about, model=recipe.model, network=entry.network,
        options=card_options(recipe), data_config=DATA_CONFIG, features=DATA["features"],
        weights=dict(file=weights.name, sha256=sha256sum(weights), bytes=weights.stat().st_size,
                     parameters=None),
        data=dict(DATA, jets_per_class=dict(DATA["jets_per_class"]),
                  command=f"python -m partx.datagen jetclass --out {_shown(datadir)} --preset {DATA['preset']} "
                          f"--seed {DATA['seed']}"),
        training=dict(command=record["command"], make="make models", epochs=int(KNOBS["NUM_EPOCHS"]),
                      samples_per_epoch=int(KNOBS["SAMPLES_PER_EPOCH"]), batch_size=int(KNOBS["BATCH_SIZE"]),
                      lr=entry.lr, optimizer="ranger", weaver_seed=int(KNOBS["PARTX_SEED"]),
                      best_epoch=record.get("best_epoch"), hardware=_hardware(record["threads"]),
                      load_average_at_start=record.get("load_average_at_start"), time_s=record["seconds"],
                      partx_commit=record.get("partx_commit") or _git_commit(), versions=_versions()),
    )
    card = ModelCard(models / f"{recipe.name}.yaml", data)
    model = build(card)
    data["weights"]["parameters"] = sum(p.numel() for p in model.parameters())  # trainable, as the README counts
    from partx.perf.harness import load_data_config

    dc = load_data_config(str(REPO / DATA_CONFIG))
    test_files = sorted(glob.glob(str(datadir / "Pythia" / "test_20M" / "*.root")))
    m, scores, labels, _ = evaluate_files(model, dc, test_files)
    data["metrics"] = dict(test_set=f"the generated test split (seed {DATA['seed']}), all jets", **card_metrics(m, scores, labels),
                           accuracy_se_method="binomial: sqrt(p (1 - p) / n_jets)",
                           auc_convention="macro one-vs-one (the ParT paper's)")
    m, scores, labels, _ = evaluate_files(build(card), dc, sorted(glob.glob(str(checkdir / "Pythia" / "test_20M" / "*.root"))))
    data["check"] = dict(
        about="a fixed small subset regenerated by tests/test_models_store.py; the test re-evaluates the weights on it",
        command=(f"python -m partx.datagen jetclass --out DIR --jets-per-class {CHECK['jets_per_class_arg']} "
                 f"--splits {CHECK['split']} --seed {CHECK['seed']}"),
        n_jets=m.n_jets, correct=int((scores.argmax(1) == labels).sum()), accuracy=round(m.accuracy, 4))
    path = write_card(card.path, data)
    read_card(path)  # what was written parses back
    print(f"{recipe.name}: accuracy {data['metrics']['accuracy']:.3f} ± {data['metrics']['accuracy_se']:.3f} "
          f"(AUC {data['metrics']['auc']:.3f}) on {data['metrics']['n_jets']} test jets; trained in "
          f"{record['seconds'] / 60:.1f} min -> {weights}, {path}", flush=True)
    return path


def build_all(names: list[str] | None, datadir: Path, checkdir: Path, runs: Path, models: Path,
              force: bool = False, workers: int = 2) -> list[Path]:
    unknown = [n for n in names or [] if n not in RECIPES]
    if unknown:
        from partx.models_store.recipes_tracking import RECIPES as TRACKING

        raise UserError(f"unknown checkpoint(s) {', '.join(unknown)}; make models builds: {', '.join(RECIPES)}; "
                        f"by name also the tracking ones: {', '.join(TRACKING)}")
    todo = [RECIPES[n] for n in names] if names else [r for r in RECIPES.values() if r.default]
    models.mkdir(parents=True, exist_ok=True)
    todo = [r for r in todo if force or not (models / f"{r.name}.yaml").is_file()]
    if not todo:
        print(f"every checkpoint is in {models} (--force to rebuild)")
        return []
    generate(datadir, checkdir, workers)
    written = []
    for recipe in todo:
        record = train(recipe, datadir, runs)
        written.append(write_checkpoint(recipe, record, datadir, checkdir, models))
    return written
