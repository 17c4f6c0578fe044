"""``python -m partx.models_store build <tracking name>``: train (or adopt) a tracking checkpoint, score it, write its card.

    python -m partx.models_store build HEPT-S_gen-mu40_3k [--trackml-dir datasets/TrackML_mu40] [--force]
    python -m partx.models_store build HEPT-S_gen-mu40_3k --from-run output/tracking_compare/runs/HEPT_seed1

Per recipe (partx.models_store.recipes_tracking): the training data are generated into ``--trackml-dir`` and
the model trained through ``./train_TrackML.sh MODEL 3k -o seed 1 -o size 'S'`` with the comparison's knobs
into ``training/models/<name>/`` -- or, with ``--from-run``, a finished ``analysis/tracking_compare.py`` run of
the same settings is adopted (its best-epoch weights and its command; nothing is trained). Then the weights are
copied to ``models/<name>.pt``, loaded through the card being written, scored on the test events (regenerated
on their own: events 1027-1029) and on the check subset (event 1029), and the card is written last.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

from partx import registry
from partx.atomic import atomic_path, atomic_write
from partx.cli import UserError
from partx.models_store.build import REPO, _best_epoch, _git_commit, _hardware, _run, _shown, _versions
from partx.models_store.card import read_card, sha256sum, write_card
from partx.models_store.recipes_tracking import (
    CHECK, CHECK_FILES, CHECK_TOLERANCE, DATA, KNOBS, REBUILD_SPREAD, RECIPES, TrackingRecipe, check_commands, data_commands,
)

DATA_CONFIG = f"data/TrackML/TrackML_{DATA['set']}.yaml"
#: the test events alone (the test split of DATA: same (seed, event id), so the same events)
TEST = dict(first_event=1027, events=3)


def _python(commands: list[str]) -> None:
    for c in commands:
        _run([sys.executable, *shlex.split(c)[1:], *(["--quiet"] if "datagen" in c else ["--no-progress"])])


def test_commands(out: str) -> list[str]:
    return [f"python -m partx.datagen trackml --out {out}/raw_events --events {TEST['events']} --first-event "
            f"{TEST['first_event']} --pileup {DATA['pileup']} --seed {DATA['seed']}",
            f"python -m partx.readers.trackml preprocess --raw {out}/raw_events --out {out} --sets {DATA['set']}"]


def train_command(recipe: TrackingRecipe, run: str) -> list[str]:
    """The launcher command of a recipe (the comparison's: ``-o seed 1 -o size 'S'``), outputs under ``run``."""
    opts = [a for k, v in recipe.options.items() for a in ("-o", k, repr(v))]
    return ["./train_TrackML.sh", recipe.model, DATA["set"], *opts, "--model-prefix", f"{run}/net", "--log", f"{run}/train.log",
            "--predict-output", "pred.parquet", "--tensorboard", ""]


def train(recipe: TrackingRecipe, datadir: Path, runs: Path) -> dict:
    """Train through train_TrackML.sh (or reuse a finished training); the run record."""
    run = runs / recipe.name
    done = run / "done.json"
    if done.is_file():
        return json.loads(done.read_text())
    if run.exists():
        import shutil

        shutil.rmtree(run)
    run.mkdir(parents=True)
    _python(data_commands(_shown(datadir)))
    cmd = train_command(recipe, _shown(run))
    env = dict(os.environ, **KNOBS, DATADIR_TrackML=str(datadir), PYTHON=sys.executable)
    env.setdefault("OMP_NUM_THREADS", "1")
    shown = " ".join(f"{k}={shlex.quote(v)}" for k, v in KNOBS.items()) + f" DATADIR_TrackML={_shown(datadir)} " + shlex.join(cmd)
    t0, load0, commit = time.time(), os.getloadavg()[0], _git_commit()
    with open(run / "stdout.log", "w") as out:
        print(f"+ {shown}  (log: {run / 'stdout.log'})", flush=True)
        rc = subprocess.call(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    if rc != 0:
        raise UserError(f"training {recipe.name} failed (exit {rc}); see {run / 'stdout.log'}")
    metrics = run / "predict_output" / "pred.metrics.json"
    record = dict(command=shown, seconds=round(time.time() - t0, 1), run=str(run), threads=env["OMP_NUM_THREADS"],
                  load_average_at_start=round(load0, 2), best_epoch=_best_epoch(run / "train.log"), partx_commit=commit,
                  weaver_test=json.loads(metrics.read_text()) if metrics.is_file() else None)
    atomic_write(done, json.dumps(record, indent=1))
    return record


def _portable(text: str, datadir: str, out: str) -> str:
    """A recorded command without this machine's folders: the data folder as D, the comparison's --out as OUT."""
    text = text.replace(datadir, "D").replace(out, "OUT") if datadir and out else text
    return re.sub(r"\S*/(train_TrackML\.sh)", r"./\1", text)


def adopt(recipe: TrackingRecipe, run: Path) -> dict:
    """The run record of a finished analysis/tracking_compare.py run with exactly the recipe's settings."""
    path = run / "record.json"
    if not path.is_file() or not (run / "net_best_epoch_state.pt").is_file():
        raise UserError(f"--from-run {run}: not a finished tracking_compare run (record.json / net_best_epoch_state.pt missing)")
    rec = json.loads(path.read_text())
    s = rec.get("settings", {})
    want = dict(set=DATA["set"], epochs=int(KNOBS["NUM_EPOCHS"]), samples_per_epoch=int(KNOBS["SAMPLES_PER_EPOCH"]),
                samples_per_epoch_val=int(KNOBS["SAMPLES_PER_EPOCH_VAL"]), batch_size=int(KNOBS["BATCH_SIZE"]),
                size=recipe.options["size"], extra=[])
    differ = {k: (s.get(k), v) for k, v in want.items() if s.get(k) != v}
    if rec.get("model") != recipe.model or rec.get("seed") != recipe.options["seed"] or differ:
        raise UserError(f"--from-run {run} is {rec.get('model')} seed {rec.get('seed')} with settings {s}; "
                        f"{recipe.name} needs {recipe.model} seed {recipe.options['seed']} and {want} (differs: {differ})")
    log = run / "stdout.log"
    first = log.read_text(errors="replace").splitlines()[0] if log.is_file() else ""
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(log.stat().st_mtime - float(rec.get("wall_s") or 0))) if log.is_file() else None
    try:  # the run does not record partx's commit: the repository's HEAD history at its start time stands in
        at_start = subprocess.check_output(["git", "log", "-1", f"--before={started} +0000", "--format=%h", "HEAD"], cwd=REPO,
                                           text=True).strip() if started else ""
    except (OSError, subprocess.CalledProcessError):
        at_start = ""
    knobs = " ".join(f"{k}={v}" for k, v in KNOBS.items())
    datadir, out = str(s.get("datadir") or ""), str(run.resolve().parent.parent)
    return dict(command=_portable(f"{knobs} DATADIR_TrackML={datadir} {first}".strip(), datadir, out),
                seconds=rec.get("wall_s"), run=str(run),
                study_command=(f"python analysis/tracking_compare.py --datadir D --out OUT --set {DATA['set']} --seeds "
                               f"{recipe.options['seed']} --models {recipe.model} --epochs {want['epochs']} --samples-per-epoch "
                               f"{want['samples_per_epoch']} --samples-per-epoch-val {want['samples_per_epoch_val']} "
                               f"--batch-size {want['batch_size']} --size {want['size']}"),
                threads=None, load_average_at_start=None, best_epoch=_best_epoch(run / "train.log"),
                partx_commit=f"not recorded by the run (started {started} UTC; the branch's last commit then: {at_start or 'unknown'})",
                weaver_test=rec.get("metrics"),
                data_note=("trained and weaver-tested on the files of the comparison's data folder, made by these commands with an earlier "
                           "state of the TrackML generator: regenerating an event now gives the same number of hits but different "
                           "cells (event 1029: 23,622 hits both ways, 16,577 instead of 16,576 pixel hits after preprocessing); the "
                           "metrics and the check below use events regenerated with this partx"))


def write_checkpoint(recipe: TrackingRecipe, record: dict, testdir: Path, checkdir: Path, models: Path) -> Path:
    """Copy the best weights into models/, score them through the new card, write the card last."""
    import torch

    from partx.models_store import tracking
    from partx.models_store.card import ModelCard
    from partx.models_store.loader import build
    from partx.perf.harness import load_data_config

    state = torch.load(Path(record["run"]) / "net_best_epoch_state.pt", map_location="cpu", weights_only=True)
    weights = models / f"{recipe.name}.pt"
    with atomic_path(weights) as tmp:
        torch.save(state, tmp)
    entry = registry.get(recipe.model, "trackml")
    weaver_test = {k: record["weaver_test"][k] for k in tracking.HEADLINE + ("n_events", "dbscan_eps", "dm_efficiency",
                                                                              "lhc_efficiency") if k in (record["weaver_test"] or {})}
    data = dict(
        name=recipe.name, family="tracking", about=recipe.about, model=recipe.model, network=entry.network,
        options=dict(recipe.options), data_config=DATA_CONFIG,
        weights=dict(file=weights.name, sha256=sha256sum(weights), bytes=weights.stat().st_size, parameters=None),
        data=dict(DATA, split=dict(DATA["split"]), commands=data_commands("D"),
                  **({"note": record["data_note"]} if record.get("data_note") else {})),
        training=dict(command=record["command"], **({"study_command": record["study_command"]} if "study_command" in record else {}),
                      make=f"python -m partx.models_store build {recipe.name}", epochs=int(KNOBS["NUM_EPOCHS"]),
                      samples_per_epoch=int(KNOBS["SAMPLES_PER_EPOCH"]), samples_per_epoch_val=int(KNOBS["SAMPLES_PER_EPOCH_VAL"]),
                      batch_size=int(KNOBS["BATCH_SIZE"]), lr=entry.lr, optimizer="adam", seed=recipe.options["seed"],
                      best_epoch=record.get("best_epoch"), time_s=record.get("seconds"),
                      hardware=_hardware(record["threads"]) if record.get("threads") else "CPU, 2 shared cores, no GPU",
                      partx_commit=record.get("partx_commit") or _git_commit(), versions=_versions(),
                      weaver_test=dict(about="weaver's own test pass at the end of training, on the training data's test split",
                                       **weaver_test),
                      rebuild=f"weaver's file order is not seeded: a rebuild gives other weights and accuracy@0.9 within "
                              f"about ±{REBUILD_SPREAD} (the std over seeds 1-3 of the comparison), not these numbers"),
    )
    card = ModelCard(models / f"{recipe.name}.yaml", data)
    dc = load_data_config(str(REPO / DATA_CONFIG))
    model = build(card, dc)
    data["weights"]["parameters"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    m = tracking.evaluate(model, dc, str(testdir / CHECK_FILES), batch_size=int(KNOBS["BATCH_SIZE"]))
    data["metrics"] = dict(test_set=f"the test events {DATA['split']['test']} (seed {DATA['seed']}), regenerated on their own, all sectors",
                           commands=test_commands("T"), files=f"T/{CHECK_FILES}", batch_size=int(KNOBS["BATCH_SIZE"]), **m,
                           convention="HEPT's acc@k / recall@K (K = 19) over the hits of particles with pT > 0.9 GeV, mean over sectors")
    c = tracking.evaluate(build(card, dc), dc, str(checkdir / CHECK_FILES), batch_size=CHECK["batch_size"], max_rows=CHECK["max_rows"])
    data["check"] = dict(about="a fixed small subset regenerated by tests/test_models_store_families.py; the weights re-scored "
                               "on it must agree within the tolerance",
                         commands=check_commands("DIR"), files=CHECK_FILES, max_rows=CHECK["max_rows"],
                         batch_size=CHECK["batch_size"], tolerance=CHECK_TOLERANCE,
                         metrics={k: c[k] for k in tracking.HEADLINE + ("n_events",)})
    path = write_card(card.path, data, made_by=f"`python -m partx.models_store build {recipe.name}`")
    read_card(path)
    print(f"{recipe.name}: accuracy@0.9 {m['accuracy@0.9']:.4f}, recall@0.9 {m['recall@0.9']:.4f} on {m['n_events']} test "
          f"sectors -> {weights}, {path}", flush=True)
    return path


def build_tracking(names: list[str], trackml_dir: Path, testdir: Path, checkdir: Path, runs: Path, models: Path,
                   force: bool = False, from_run: Path | None = None) -> list[Path]:
    if from_run is not None and len(names) != 1:
        raise UserError("--from-run adopts one run: name exactly one checkpoint")
    models.mkdir(parents=True, exist_ok=True)
    todo = [RECIPES[n] for n in names if force or not (models / f"{n}.yaml").is_file()]
    if not todo:
        print(f"every named checkpoint is in {models} (--force to rebuild)")
        return []
    _python(test_commands(str(testdir)))
    _python(check_commands(str(checkdir)))
    written = []
    for recipe in todo:
        record = adopt(recipe, from_run) if from_run is not None else train(recipe, trackml_dir, runs)
        written.append(write_checkpoint(recipe, record, testdir, checkdir, models))
    return written
