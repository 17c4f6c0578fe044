"""Tracking-model comparison: HEPT, Mamba, Mamba-a, Mamba-b trained with the same budget and several seeds.

Every (model, seed) run goes through ``./train_TrackML.sh MODEL SET`` on one preprocessed TrackML set
(``DATADIR_TrackML``) with the same knobs (epochs, training rows per epoch, validation rows, batch size)
and ``-o seed <seed>`` (initialisation, InfoNCE random pairs and LSH projections) and ``PARTX_SEED=<seed>``
(weaver's shuffling and loader workers, ``partx.weaver_run``), so a run repeats. Each run is tested on the set's whole test split; its metrics are the tracking metrics
JSON the evaluate hook writes (``partx.train.tracking``: HEPT's acc@k / precision / recall at
pT > 0, 0.5, 0.9, DBSCAN tracks with DM / LHC efficiencies, fake rates, TrackML score).

The summary is mean ± standard deviation over seeds per model, the standard error of the mean
(std / sqrt(n)), and for each model the difference to HEPT with the standard error of that difference
(sqrt(se_a^2 + se_b^2)); a difference is called *distinguishable* when it exceeds twice its standard
error. The seed paper's ordering (Mamba-a >= HEPT in acc@0.9; Mamba-b best recall@0.9; pure Mamba
worst in acc@0.9) is checked with that rule (``paper_ordering``).

A run is finished when its ``record.json`` exists (written atomically, last), so a re-run skips it.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tabulate import tabulate

from partx import registry
from partx.atomic import atomic_write
from partx.cli import UserError, writable_dir
from partx.dataset_layouts import TRACKML
from partx.studies.stats import combined_se, distinguishable, summary as stat_summary
from partx.studies.training_size import REPO, RunFailed, run_training, write_json_atomic

SCRIPT = REPO / TRACKML.script
DEFAULT_MODELS = ("HEPT", "Mamba", "MambaA", "MambaB")
#: metrics summarised (keys of the tracking metrics JSON)
METRICS = ("accuracy@0.9", "precision@0.9", "recall@0.9", "accuracy@0.0", "dm_efficiency", "lhc_efficiency",
           "dm_fake_rate", "trackml_score_unit_weights")
#: what the table shows
SHOWN = ("accuracy@0.9", "recall@0.9", "precision@0.9", "dm_efficiency", "lhc_efficiency", "trackml_score_unit_weights")


class CompareError(UserError, ValueError):
    """Bad arguments or inputs (one line, exit 2)."""


@dataclass
class CompareConfig:
    datadir: Path                       # DATADIR_TrackML: holds processed/<set>/{train,val,test}
    out_dir: Path
    tracking_set: str = "3k"
    models: list[str] = field(default_factory=lambda: list(DEFAULT_MODELS))
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3])
    epochs: int = 4
    samples_per_epoch: int = 200        # training rows (events or sectors) per epoch
    samples_per_epoch_val: int = 40
    batch_size: int = 4
    size: str = "S"
    extra: tuple[str, ...] = ()         # more weaver args for every run


def validate(cfg: CompareConfig) -> None:
    for name in cfg.models:
        try:
            registry.get(name, "trackml")
        except registry.RegistryError as err:
            raise CompareError(str(err)) from None
    if cfg.tracking_set not in TRACKML.features:
        raise CompareError(f"invalid TrackML set {cfg.tracking_set!r}: choose {', '.join(TRACKML.features)}")
    for key in ("epochs", "samples_per_epoch", "samples_per_epoch_val", "batch_size"):
        if getattr(cfg, key) < 1:
            raise CompareError(f"{key} must be >= 1, got {getattr(cfg, key)}")
    if not cfg.seeds or len(set(cfg.seeds)) != len(cfg.seeds):
        raise CompareError(f"seeds must be distinct and at least one, got {cfg.seeds}")
    if cfg.size not in ("S", "M", "L"):
        raise CompareError(f"invalid size {cfg.size!r}: choose S, M, L")
    for split in (TRACKML.train, TRACKML.val, TRACKML.test):
        d = Path(TRACKML.for_features(cfg.tracking_set).split_dir(str(cfg.datadir), split))
        if not any(d.glob("*.root")):
            raise CompareError(f"no ROOT files in {d}: preprocess the set first "
                               f"(python -m partx.readers.trackml preprocess --raw RAW --out {cfg.datadir} --sets {cfg.tracking_set})")


def _settings(cfg: CompareConfig) -> dict:
    return {"set": cfg.tracking_set, "epochs": cfg.epochs, "samples_per_epoch": cfg.samples_per_epoch,
            "samples_per_epoch_val": cfg.samples_per_epoch_val, "batch_size": cfg.batch_size, "size": cfg.size,
            "extra": list(cfg.extra), "datadir": str(Path(cfg.datadir).resolve())}


def run_one(cfg: CompareConfig, model: str, seed: int, out: Path, quiet: bool = False, train: bool = True) -> dict | None:
    """Train + test one (model, seed) through train_TrackML.sh, or load its finished record."""
    run_dir = out / "runs" / f"{model}_seed{seed}"
    rec_path = run_dir / "record.json"
    if rec_path.is_file():
        rec = json.loads(rec_path.read_text())
        if rec.get("settings") != _settings(cfg):
            raise CompareError(f"{rec_path} is a finished run with other settings; remove it or use another --out")
        if not quiet:
            print(f"[skip] {model} seed {seed}: finished ({rec_path})", flush=True)
        return rec
    if not train:
        return None
    if run_dir.exists():
        shutil.rmtree(run_dir)  # an unfinished run: start clean
    run_dir.mkdir(parents=True)
    env = dict(os.environ, DATADIR_TrackML=str(Path(cfg.datadir).resolve()), NUM_EPOCHS=str(cfg.epochs),
               SAMPLES_PER_EPOCH=str(cfg.samples_per_epoch), SAMPLES_PER_EPOCH_VAL=str(cfg.samples_per_epoch_val),
               BATCH_SIZE=str(cfg.batch_size), GPUS=os.environ.get("GPUS", ""), PARTX_SEED=str(seed))
    env.pop("DDP_NGPUS", None)
    cmd = ["bash", str(SCRIPT), model, cfg.tracking_set, "-o", "seed", str(seed), "-o", "size", repr(cfg.size), *cfg.extra,
           "--model-prefix", str((run_dir / "net").resolve()), "--log", str((run_dir / "train.log").resolve()),
           "--predict-output", "pred.parquet", "--tensorboard", f"_compare_{model}_seed{seed}"]
    if not quiet:
        print(f"[run ] {model} seed {seed}: {cfg.epochs} x {cfg.samples_per_epoch} rows -> {run_dir}", flush=True)
    t0 = time.perf_counter()
    with open(run_dir / "stdout.log", "w") as logf:
        logf.write(shlex.join(cmd) + "\n")
        logf.flush()
        res = run_training(cmd, cwd=REPO, env=env, stdout=logf, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - t0
    metrics_path = run_dir / "predict_output" / "pred.metrics.json"
    if res.returncode != 0 or not metrics_path.is_file():
        tail = (run_dir / "stdout.log").read_text(errors="replace")[-2000:]
        raise RunFailed(f"{model} seed {seed}: train_TrackML.sh exited {res.returncode} (log {run_dir / 'stdout.log'}):\n{tail}")
    metrics = json.loads(metrics_path.read_text())
    rec = {"model": model, "seed": seed, "settings": _settings(cfg), "wall_s": round(wall, 1),
           "metrics": {k: metrics.get(k) for k in sorted(metrics)}, "run_dir": str(run_dir)}
    write_json_atomic(rec_path, rec)
    if not quiet:
        print(f"[done] {model} seed {seed}: acc@0.9 {metrics['accuracy@0.9']:.4f}  recall@0.9 {metrics['recall@0.9']:.4f}  "
              f"wall {wall:.0f} s", flush=True)
    return rec


def summarize(records: list[dict], baseline: str = "HEPT") -> dict:
    """Per model and metric: n, mean, std, se; and the difference to ``baseline`` with its standard error."""
    by_model: dict[str, list[dict]] = {}
    for r in records:
        by_model.setdefault(r["model"], []).append(r)
    out = {}
    for model, runs in by_model.items():
        out[model] = {}
        for key in METRICS:
            out[model][key] = stat_summary(r["metrics"].get(key) for r in runs)
    if baseline in out:
        for model, stats in out.items():
            for key, s in stats.items():
                b = out[baseline][key]
                s["diff_to_" + baseline] = s["mean"] - b["mean"]
                s["diff_se"] = combined_se(s["se"], b["se"]) if model != baseline else math.nan
    return out


def _distinct(a: dict, b: dict) -> bool:
    """``a`` and ``b`` (summary cells) differ by more than twice the standard error of the difference."""
    return distinguishable(a["mean"] - b["mean"], combined_se(a["se"], b["se"]))


def paper_ordering(summary: dict) -> list[tuple[str, str]]:
    """The seed paper's three claims, each with a verdict: "holds", "reversed" or "not distinguishable"."""
    def verdict(better: str, worse: str, key: str) -> str:
        a, b = summary[better][key], summary[worse][key]
        if not _distinct(a, b):
            return "not distinguishable"
        return "holds" if a["mean"] > b["mean"] else "reversed"

    claims = []
    if {"MambaA", "HEPT"} <= summary.keys():
        claims.append(("Mamba-a >= HEPT in accuracy@0.9", verdict("MambaA", "HEPT", "accuracy@0.9")))
    if "MambaB" in summary:
        others = [m for m in summary if m != "MambaB"]
        vs = [f"{m}: {verdict('MambaB', m, 'recall@0.9')}" for m in others]
        claims.append(("Mamba-b best recall@0.9", "; ".join(vs)))
    if "Mamba" in summary:
        others = [m for m in summary if m != "Mamba"]
        vs = [f"{m}: {verdict(m, 'Mamba', 'accuracy@0.9')}" for m in others]
        claims.append(("pure Mamba worst in accuracy@0.9", "; ".join(vs)))
    return claims


def markdown(summary: dict, records: list[dict]) -> str:
    heads = ["model", "seeds"] + list(SHOWN) + ["acc@0.9 - HEPT", "wall (s)"]
    rows = []
    for model, stats in summary.items():
        walls = [r["wall_s"] for r in records if r["model"] == model]
        row = [model, str(stats["accuracy@0.9"]["n"])]
        row += [f"{stats[k]['mean']:.4f} ± {stats[k]['std']:.4f}" if math.isfinite(stats[k]["std"]) else f"{stats[k]['mean']:.4f}"
                for k in SHOWN]
        d = stats["accuracy@0.9"]
        row.append("–" if model == "HEPT" or "diff_se" not in d else f"{d['diff_to_HEPT']:+.4f} ± {d['diff_se']:.4f}")
        row.append(f"{np.mean(walls):.0f}")
        rows.append(row)
    text = "Mean ± standard deviation over seeds; the difference to HEPT ± its standard error.\n\n"
    text += tabulate(rows, headers=heads, tablefmt="github", disable_numparse=True) + "\n\n"
    text += "\n".join(f"* {claim}: {v}" for claim, v in paper_ordering(summary)) + "\n"
    return text


def plot(summary: dict, records: list[dict], path: Path, title: str = "") -> Path:
    import matplotlib.pyplot as plt

    from partx.plotting import hep_style, save_figure

    hep_style()
    keys = ("accuracy@0.9", "recall@0.9", "dm_efficiency")
    fig, axes = plt.subplots(1, len(keys), figsize=(7 * len(keys), 6), gridspec_kw={"wspace": 0.4})
    models = list(summary)
    for ax, key in zip(axes, keys):
        for i, m in enumerate(models):
            vals = [r["metrics"].get(key) for r in records if r["model"] == m]
            ax.scatter([i] * len(vals), vals, color="grey", s=15, zorder=3)
            s = summary[m][key]
            ax.errorbar([i], [s["mean"]], yerr=[s["se"] if math.isfinite(s["se"]) else 0], marker="o", capsize=6, ms=9, zorder=4)
        ax.set_xticks(range(len(models)))
        ax.set_xticklabels(models, fontsize=15)
        ax.set_xlim(-0.6, len(models) - 0.4)
        ax.minorticks_off()
        ax.set_ylabel(f"{key} (mean ± s.e.; dots: seeds)", fontsize=16)
    if title:
        fig.suptitle(title, fontsize=14)
    return save_figure(fig, path)


def write_outputs(records: list[dict], out: Path, title: str = "", with_plot: bool = True) -> dict[str, Path]:
    summary = summarize(records)
    paths = {"json": write_json_atomic(out / "results.json", {"summary": summary, "ordering": paper_ordering(summary), "runs": records}),
             "md": atomic_write(out / "results.md", (f"{title}\n\n" if title else "") + markdown(summary, records))}
    if with_plot:
        paths["png"] = plot(summary, records, out / "tracking_compare.png", title)
    return paths


def run_compare(cfg: CompareConfig, quiet: bool = False, train: bool = True, title: str = "") -> tuple[list[dict], dict]:
    """Every (model, seed) not finished, seed by seed (a cut-short study stays balanced); outputs written."""
    validate(cfg)
    out = writable_dir(cfg.out_dir)
    records = []
    for seed in cfg.seeds:
        for model in cfg.models:
            rec = run_one(cfg, model, seed, out, quiet=quiet, train=train)
            if rec is not None:
                records.append(rec)
                write_outputs(records, out, title, with_plot=False)
    if not records:
        raise CompareError(f"no finished run in {out / 'runs'}")
    return records, write_outputs(records, out, title)
