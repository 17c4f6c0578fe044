"""The ParT-variant accuracy protocol: every variant, several seeds, one shared large test set, paired errors.

Each (model, seed) run is one training of partx.studies.training_size (``train_JetClass.sh`` through its
``run_one``: same data view, budget, TensorBoard and metrics code) with ``PARTX_SEED=<seed>``
(partx.weaver_run: initial weights and weaver's data order). All runs are tested on the same test jets;
each run's per-jet correctness is kept (``runs/<run>/test_correct.npz``) so that the difference of two
models is *paired*: over seeds (the mean of acc_A(s) - acc_B(s)) and over jets (partx.studies.stats:
``paired_test_se``). The standard error of a difference to the baseline is
``sqrt(se_seed^2 + se_test^2)``; a difference is called larger than 2 SE or "not distinguishable".

Sizing (``--size demo``, the default): every model whose network takes the ParT block options is trained
at the README demo size (registry.PART_DEMO_OPTIONS: 4 blocks, [64,256,64], 4 heads, U from a 2x32 pair
embedding unless the registry entry sets ``pair_embed_dims`` itself, e.g. ParT-plain); whether a network
takes them is found by building it once with them (``probe``), so a newly registered variant needs no
entry here. Other models (PN, PFN, P-CNN) keep their registered size. ``--size registered`` trains every
model as registered.

A run is finished when its ``metrics.json`` exists (training_size), so a re-run skips it; ``collect``
(train=False) rebuilds the tables and plots from the finished runs.
"""

from __future__ import annotations

import csv
import io
import json
import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tabulate import tabulate

from partx import registry
from partx.atomic import atomic_write
from partx.cli import UserError, writable_dir
from partx.studies import stats
from partx.studies.training_size import (  # noqa: F401 - DATAOPTS: the CLI's default
    DATAOPTS, REPO, StudyConfig, build_view, run_name, run_one, validate as validate_study, write_json_atomic,
)

DEFAULT_BASELINE = "ParT"
#: models the Pareto plot always looks for beside the variants
PARETO_REFERENCE = ("ParT", "ParT-plain", "PN", "PFN", "PCNN")
#: the protocol's defaults (docs/variant_accuracy.md "Sizing"): 3 seeds, 10,000 training jets per class,
#: 10,000 test jets per class (100,000 shared test jets), 20 epochs
SEEDS = (1, 2, 3)
EPOCHS = 20
TARGET_SE = 0.005
ASSUMED_SEED_STD = 0.005
#: the shape options of the demo size (registry.PART_DEMO_OPTIONS without U) and its U
DEMO_SHAPE = {k: v for k, v in registry.PART_DEMO_OPTIONS.items() if k != "pair_embed_dims"}
DEMO_PAIR = {"pair_embed_dims": registry.PART_DEMO_OPTIONS["pair_embed_dims"]}
SIZES = ("demo", "registered")


class ProtocolError(UserError, ValueError):
    """Bad arguments or inputs (one line, exit 2)."""


def default_models() -> list[str]:
    """Every JetClass model of the registry but ParT-demo (ParT at the demo size is that model)."""
    return [n for n in registry.names("jetclass") if n != "ParT-demo"]


def _probe(name: str, options: dict) -> str | None:
    """None if ``name``'s network builds with ``options`` (CPU, the full data config), else the error."""
    from weaver.utils.data.config import DataConfig

    from partx.perf.models import build_model, resolve_model

    try:
        dc = DataConfig.load(str(REPO / "data/JetClass/JetClass_full.yaml"), load_observers=False)
        build_model(resolve_model(name, overrides=options), dc, length=128)
    except Exception as err:  # noqa: BLE001 - any failure means "does not take these options"
        return f"{type(err).__name__}: {' '.join(str(err).split())[:120]}"
    return None


def sized_options(name: str, size: str, probe=_probe) -> tuple[dict, str]:
    """(options added after the registry's, a note saying why) for ``name`` at ``size``."""
    if size == "registered":
        return {}, "registered size"
    entry = registry.get(name, "jetclass")
    demo = dict(DEMO_SHAPE)
    if "pair_embed_dims" not in entry.options:  # ParT-plain keeps its None (no U)
        demo.update(DEMO_PAIR)
    if all(entry.options.get(k) == v for k, v in demo.items()):
        return {}, "demo size (registered)"
    err = probe(name, dict(entry.options, **demo))
    if err is not None:
        return {}, f"registered size (its network takes no ParT block options: {err.split(':')[0]})"
    return demo, "demo size"


def _weaver_opts(options: dict) -> str:
    return shlex.join([a for k, v in options.items() for a in ("-o", k, repr(v))])


@dataclass
class ProtocolConfig:
    jets_per_class: int                    # training jets per class in train_dirs
    train_dirs: list[Path]
    eval_dir: Path                         # its val_5M / test_20M: the ONE shared test set
    out_dir: Path
    models: list[str] = field(default_factory=default_models)
    baseline: str = DEFAULT_BASELINE
    seeds: list[int] = field(default_factory=lambda: list(SEEDS))
    epochs: int = EPOCHS
    batch_size: int = 128
    features: str = "full"
    size: str = "demo"
    model_opts: dict[str, str] = field(default_factory=dict)   # user options, after the sized ones
    dataopts: str = DATAOPTS
    title: str = ""
    target_se: float = TARGET_SE
    assumed_seed_std: float = ASSUMED_SEED_STD


@dataclass
class Plan:
    study: StudyConfig
    notes: dict[str, str]                  # model -> how it is sized
    sized: dict[str, dict]                 # model -> sizing options (for the benchmark command)
    specs: list
    size_data: object
    eval_data: object


def plan(cfg: ProtocolConfig, probe=_probe) -> Plan:
    """Every check before training (ProtocolError / training_size.StudyError), and the per-model options."""
    if cfg.size not in SIZES:
        raise ProtocolError(f"invalid --size {cfg.size!r}: choose {', '.join(SIZES)}")
    if not cfg.seeds or len(set(cfg.seeds)) != len(cfg.seeds) or min(cfg.seeds) < 0:
        raise ProtocolError(f"seeds must be distinct non-negative integers, at least one; got {cfg.seeds}")
    if cfg.baseline not in cfg.models:
        raise ProtocolError(f"the baseline {cfg.baseline!r} is not among the models ({', '.join(cfg.models)})")
    if not 0 < cfg.target_se < 1 or not 0 <= cfg.assumed_seed_std < 1:
        raise ProtocolError("target SE and assumed seed std are accuracy fractions, e.g. 0.005")
    for name in cfg.models:
        if name not in registry.names("jetclass"):
            raise ProtocolError(f"unknown model {name!r}: choose from {', '.join(registry.names('jetclass'))}")
    notes, sized, opts = {}, {}, {}
    for name in cfg.models:
        sized[name], notes[name] = sized_options(name, cfg.size, probe)
        text = " ".join(t for t in (_weaver_opts(sized[name]) if sized[name] else "", cfg.model_opts.get(name, "")) if t)
        if text:
            opts[name] = text
    unknown = set(cfg.model_opts) - set(cfg.models)
    if unknown:
        raise ProtocolError(f"--model-opts for model(s) not in the protocol: {', '.join(sorted(unknown))}")
    study = StudyConfig(data={cfg.jets_per_class: list(cfg.train_dirs)}, eval_dir=cfg.eval_dir, out_dir=cfg.out_dir,
                        models=list(cfg.models), model_opts=opts, epochs=cfg.epochs, features=cfg.features,
                        batch_size=cfg.batch_size, dataopts=cfg.dataopts, title=cfg.title)
    specs, sets, ev = validate_study(study)
    return Plan(study, notes, sized, specs, sets[0], ev)


def design(seed_std: float, n_seeds: int, n_test: int, target: float) -> dict:
    """The sizing calculation (partx.studies.stats.design_se) with what the target needs."""
    d = stats.design_se(seed_std, n_seeds, n_test)
    d.update(assumed_seed_std=seed_std, n_seeds=n_seeds, n_test=n_test, target=target,
             seeds_needed=stats.seeds_needed(math.sqrt(2) * seed_std, d["test"], target),
             test_jets_needed=stats.test_jets_needed(d["seed"], target))
    return d


def benchmark_command(p: Plan, out: str = "benchmarks/cpu", stem: str = "variant_accuracy") -> str:
    """analysis/benchmark.py for the protocol's models at the protocol's sizes (and the Pareto references)."""
    models = list(dict.fromkeys([*p.study.models, *(m for m in PARETO_REFERENCE if m in registry.names("jetclass"))]))
    cmd = ["python", "analysis/benchmark.py", "--models", ",".join(models), "--lengths", "128", "--batch-sizes", "64",
           "--dtypes", "fp32", "--threads", "1", "--baseline", DEFAULT_BASELINE if DEFAULT_BASELINE in models else "none"]
    for name in models:
        for k, v in p.sized.get(name, {}).items():
            cmd += ["-o", f"{name}:{k}={v!r}".replace(" ", "")]
    return shlex.join(cmd + ["--out", out, "--stem", stem])


# ---- per-jet correctness ------------------------------------------------------------------------------

def correctness(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(correct (N,) bool, labels (N,)) of a finished run's test predictions, cached in test_correct.npz."""
    from partx.metrics.predictions import load_weaver_predictions

    cache = Path(run_dir) / "test_correct.npz"
    if cache.is_file():
        with np.load(cache) as z:
            return z["correct"].astype(bool), z["labels"]
    scores, labels, _ = load_weaver_predictions([str(Path(run_dir) / "predict_output" / "pred_*.root")])
    correct = scores.argmax(1) == labels
    buf = io.BytesIO()
    np.savez_compressed(buf, correct=correct.astype(np.uint8), labels=labels.astype(np.int16))
    atomic_write(cache, buf.getvalue())
    return correct, labels


# ---- statistics -------------------------------------------------------------------------------------

def summarize(records: list[dict], correct: dict[tuple[str, int], np.ndarray], baseline: str = DEFAULT_BASELINE,
              target: float = TARGET_SE) -> dict:
    """Per model: accuracy/AUC over seeds; the paired difference to ``baseline`` with its errors and verdict.

    Args:
        records: training_size run records (``model``, ``seed``, ``accuracy``, ``auc``, ...).
        correct: (model, seed) -> (N,) correctness on the shared test jets (same order for every run).
    """
    by_model: dict[str, dict[int, dict]] = {}
    for r in records:
        by_model.setdefault(r["model"], {})[r["seed"]] = r
    out: dict = {}
    for model, runs in by_model.items():
        acc = {s: r["accuracy"] for s, r in runs.items()}
        n_test = next(iter(runs.values()))["n_test"]
        s = stats.summary(acc.values())
        p = s["mean"]
        out[model] = {"seeds": sorted(runs), "accuracy": s, "auc": stats.summary(r["auc"] for r in runs.values()),
                      "binomial_se": math.sqrt(p * (1 - p) / n_test) if n_test else math.nan,
                      "train_jets_per_s": stats.summary(r.get("train_jets_per_s") for r in runs.values())["mean"],
                      "train_wall_s": stats.summary(r.get("train_wall_s") for r in runs.values())["mean"],
                      "model_options": next(iter(runs.values()))["model_options"]}
    if baseline not in by_model:
        return out
    base_acc = {s: r["accuracy"] for s, r in by_model[baseline].items()}
    for model, runs in by_model.items():
        if model == baseline:
            continue
        d = stats.paired_difference({s: r["accuracy"] for s, r in runs.items()}, base_acc)
        seeds = d["seeds"]
        se_test = (stats.paired_test_se(np.stack([correct[(model, s)] for s in seeds]),
                                        np.stack([correct[(baseline, s)] for s in seeds])) if seeds else math.nan)
        se = stats.combined_se(d["se"], se_test)
        out[model]["diff"] = {"mean": d["mean"], "std": d["std"], "n": d["n"], "seeds": seeds, "se_seed": d["se"],
                              "se_test": se_test, "se": se, "verdict": stats.verdict(d["mean"], se),
                              "seeds_needed": (stats.seeds_needed(d["std"], se_test, target)
                                               if math.isfinite(d["std"]) and math.isfinite(se_test) else None)}
    return out


def achieved(summary: dict, target: float) -> dict:
    """The SEs the runs achieved (largest, median over models), against the target."""
    ses = [v["diff"]["se"] for v in summary.values() if "diff" in v]
    finite = [s for s in ses if math.isfinite(s)]
    stds = [v["accuracy"]["std"] for v in summary.values() if math.isfinite(v["accuracy"]["std"])]
    return {"max_se": max(finite) if finite else math.nan, "median_se": float(np.median(finite)) if finite else math.nan,
            "n_differences": len(ses), "n_finite": len(finite), "target": target,
            "met": bool(finite) and len(finite) == len(ses) and max(finite) <= target,
            "seed_std_median": float(np.median(stds)) if stds else math.nan}


# ---- outputs ------------------------------------------------------------------------------------------

def _pm(s: dict, scale: float = 100.0, digits: int = 2) -> str:
    if not math.isfinite(s["mean"]):
        return "–"
    return f"{s['mean'] * scale:.{digits}f}" + (f" ± {s['std'] * scale:.{digits}f}" if math.isfinite(s["std"]) else "")


def _pct(x: float) -> str:
    return f"{x * 100:.2f}" if math.isfinite(x) else "–"


def markdown(summary: dict, ach: dict, baseline: str, des: dict | None = None, title: str = "") -> str:
    heads = ["model", "size", "seeds", "accuracy (%)", "AUC", f"Δ acc vs {baseline} (pp)", "SE (seed ⊕ test)",
             "verdict", "train jets/s"]
    rows = []
    for model, v in summary.items():
        d = v.get("diff")
        rows.append([model, v.get("size", ""), str(len(v["seeds"])), _pm(v["accuracy"]),
                     _pm(v["auc"], 1.0, 4),
                     "–" if d is None else f"{d['mean'] * 100:+.2f}",
                     "–" if d is None else f"{_pct(d['se'])} ({_pct(d['se_seed'])} ⊕ {_pct(d['se_test'])})",
                     "baseline" if model == baseline else (d["verdict"] if d else "no baseline runs"),
                     "–" if v["train_jets_per_s"] is None or not math.isfinite(v["train_jets_per_s"]) else f"{v['train_jets_per_s']:.0f}"])
    text = (f"{title}\n\n" if title else "")
    text += ("Accuracy: mean ± std over seeds (%). Δ: mean over seeds of the paired difference to "
             f"{baseline} (same seeds, same test jets), percentage points; its SE combines the seed-to-seed "
             "error of the paired difference (std/√n) and the paired test-set error over jets; a difference "
             "larger than 2 SE is called higher/lower, else \"not distinguishable\".\n\n")
    text += tabulate(rows, headers=heads, tablefmt="github", disable_numparse=True) + "\n\n"
    if des:
        text += (f"Design: assumed seed std {des['assumed_seed_std'] * 100:.2f} %, {des['n_seeds']} seeds, "
                 f"{des['n_test']} test jets -> expected SE of a difference {des['total'] * 100:.2f} % "
                 f"(seed {des['seed'] * 100:.2f}, test {des['test'] * 100:.2f}); target {des['target'] * 100:.2f} %.\n")
    text += (f"Achieved: largest SE of a difference {_pct(ach['max_se'])} %, median {_pct(ach['median_se'])} % "
             f"(target {ach['target'] * 100:.2f} %: {'met' if ach['met'] else 'NOT met'}{'' if ach['n_finite'] == ach['n_differences'] else '; a difference with one seed has no seed error'}); median seed-to-seed std of "
             f"the accuracies {_pct(ach['seed_std_median'])} %.\n")
    short = {m: v["diff"]["seeds_needed"] for m, v in summary.items()
             if "diff" in v and math.isfinite(v["diff"]["se"]) and v["diff"]["se"] > ach["target"]}
    if short:
        text += ("Seeds the target would need with the measured spreads: "
                 + ", ".join(f"{m} {n if n is not None else 'more test jets first'}" for m, n in short.items()) + ".\n")
    return text


def plot_accuracy(summary: dict, records: list[dict], baseline: str, path: Path, title: str = "") -> Path:
    import matplotlib.pyplot as plt

    from partx.plotting import hep_style, save_figure

    hep_style()
    models = list(summary)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(max(12.0, 1.3 * len(models)), 6.5), gridspec_kw={"wspace": 0.3})
    for i, m in enumerate(models):
        vals = [100 * r["accuracy"] for r in records if r["model"] == m]
        ax.scatter([i] * len(vals), vals, color="grey", s=15, zorder=3)
        s = summary[m]["accuracy"]
        ax.errorbar([i], [100 * s["mean"]], yerr=[100 * s["se"] if math.isfinite(s["se"]) else 0], marker="o",
                    capsize=6, ms=8, zorder=4)
        d = summary[m].get("diff")
        if d is not None:
            bx.errorbar([i], [100 * d["mean"]], yerr=[200 * d["se"] if math.isfinite(d["se"]) else 0], marker="o",
                        capsize=6, ms=8, color="C1" if d["verdict"] != "not distinguishable" else "C0")
    bx.axhline(0, color="k", lw=1)
    for a, lab in ((ax, "test accuracy (%): mean ± SE, dots: seeds"), (bx, f"accuracy − {baseline} (pp) ± 2 SE")):
        a.set_xticks(range(len(models)))
        a.set_xticklabels(models, rotation=45, ha="right", fontsize=13)
        a.set_xlim(-0.6, len(models) - 0.4)
        a.minorticks_off()
        a.set_ylabel(lab, fontsize=15)
    if title:
        fig.suptitle(title, fontsize=14)
    return save_figure(fig, path)


def benchmark_throughput(bench: dict, batch: int | None = None, length: int = 128, dtype: str = "fp32") -> tuple[dict, str]:
    """{model: jets/s} from an analysis/benchmark.py JSON (rows of ``length``, ``dtype``; the largest batch
    unless ``batch``), and a one-line description of the rows used."""
    rows = [r for r in bench.get("rows", []) if r.get("status") == "ok" and r.get("N") == length
            and r.get("dtype") == dtype and r.get("throughput")]
    if not rows:
        raise ProtocolError(f"benchmark JSON: no successful rows at N={length}, dtype {dtype}")
    batch = batch or max(r["batch"] for r in rows)
    tp = {r["model"]: float(r["throughput"]) for r in rows if r["batch"] == batch}
    if not tp:
        raise ProtocolError(f"benchmark JSON: no rows with batch {batch} (have {sorted({r['batch'] for r in rows})})")
    threads = (bench.get("config") or {}).get("threads")
    return tp, f"CPU throughput, N={length}, batch {batch}, {dtype}" + (f", {threads} thread(s)" if threads else "")


def plot_pareto(summary: dict, throughput: dict, what: str, path: Path, title: str = "") -> tuple[Path, list[str]]:
    """Accuracy (mean ± SE) against benchmark throughput for every model in both; returns the missing ones."""
    import matplotlib.pyplot as plt

    from partx.plotting import hep_style, save_figure

    hep_style()
    fig, ax = plt.subplots(figsize=(10, 7))
    missing = []
    for i, (m, v) in enumerate(summary.items()):
        if m not in throughput:
            missing.append(m)
            continue
        s = v["accuracy"]
        ax.errorbar([throughput[m]], [100 * s["mean"]], yerr=[100 * s["se"] if math.isfinite(s["se"]) else 0],
                    marker="o" if m in PARETO_REFERENCE else "s", ms=8, capsize=4, color=f"C{i % 10}", label=m)
    ax.set_xscale("log")
    ax.set_xlabel(f"{what} (jets/s)", fontsize=15)
    ax.set_ylabel("test accuracy (%), mean ± SE over seeds", fontsize=15)
    ax.legend(fontsize=11, ncol=2)
    if title:
        ax.set_title(title, fontsize=13)
    return save_figure(fig, path), missing


def write_outputs(records: list[dict], correct: dict, out: Path, cfg: ProtocolConfig, notes: dict[str, str],
                  des: dict | None = None, bench: dict | None = None, bench_batch: int | None = None,
                  plots: bool = True) -> dict[str, Path]:
    summary = summarize(records, correct, cfg.baseline, cfg.target_se)
    for m, v in summary.items():
        v["size"] = notes.get(m, "").split(" (")[0]
    ach = achieved(summary, cfg.target_se)
    records = sorted(records, key=lambda r: (r["model"], r["seed"]))
    doc = {"baseline": cfg.baseline, "design": des, "achieved": ach, "summary": summary, "sizing": notes, "runs": records}
    paths = {"json": write_json_atomic(out / "results.json", doc),
             "md": atomic_write(out / "results.md", markdown(summary, ach, cfg.baseline, des, cfg.title))}
    buf = io.StringIO(newline="")
    cols = ["model", "seed", "accuracy", "auc", "n_test", "n_train", "epochs", "train_wall_s", "train_jets_per_s", "model_options"]
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    w.writerows(records)
    paths["csv"] = atomic_write(out / "results.csv", buf.getvalue())
    if plots:
        paths["png"] = plot_accuracy(summary, records, cfg.baseline, out / "variant_accuracy.png", cfg.title)
        if bench is not None:
            tp, what = benchmark_throughput(bench, bench_batch)
            paths["pareto"], missing = plot_pareto(summary, tp, what, out / "pareto.png", cfg.title)
            if missing:
                print(f"warning: no benchmark row for {', '.join(missing)} (not on the Pareto plot)", flush=True)
    return paths


def run_protocol(cfg: ProtocolConfig, quiet: bool = False, train: bool = True, bench: dict | None = None,
                 bench_batch: int | None = None, probe=_probe) -> tuple[dict, dict[str, Path]]:
    """Train every unfinished (model, seed), seed by seed (a cut-short protocol stays paired); write the outputs."""
    p = plan(cfg, probe)
    out = writable_dir(cfg.out_dir)
    view = build_view(out / "views" / f"n{p.size_data.size}", p.size_data, p.eval_data.dir)
    des = design(cfg.assumed_seed_std, len(cfg.seeds), p.eval_data.n_test, cfg.target_se)
    records, correct, labels0 = [], {}, None
    for seed in cfg.seeds:
        for spec in p.specs:
            rec = run_one(spec, p.size_data, p.eval_data, view, out, epochs=cfg.epochs, features=cfg.features,
                          batch_size=cfg.batch_size, dataopts=cfg.dataopts, quiet=quiet, train=train, seed=seed)
            if rec is None:
                continue
            c, labels = correctness(out / "runs" / run_name(spec.name, p.size_data.size, 0, seed))
            if labels0 is None:
                labels0 = labels
            elif not np.array_equal(labels, labels0):
                raise ProtocolError(f"{spec.name} seed {seed}: its test jets are not those of the other runs "
                                    "(labels differ): every run must be tested on the same test set")
            records.append(rec)
            correct[(spec.name, seed)] = c
            write_outputs(records, correct, out, cfg, p.notes, des, plots=False)  # partial table after every run
    if not records:
        raise ProtocolError(f"no finished run in {out / 'runs'} for this protocol")
    summary_paths = write_outputs(records, correct, out, cfg, p.notes, des, bench, bench_batch)
    return json.loads((out / "results.json").read_text()), summary_paths
