"""The weaver launcher under every ``train_<Dataset>.sh``: knobs -> checks -> one weaver command.

    python -m partx.launcher DATASET MODEL [FEATURES] [weaver args...]     # DATASET: jetclass, ...

``train_JetClass.sh`` is this with ``DATASET=jetclass`` (after scripts/common.sh has found Python and
sourced env.sh). The command line follows the official ParT scripts; the dataset's file layout comes
from partx.dataset_layouts, the model's network file and defaults from partx.registry.

Knobs (environment; empty = default): NUM_EPOCHS, SAMPLES_PER_EPOCH, SAMPLES_PER_EPOCH_VAL,
BATCH_SIZE, DATAOPTS (weaver loading options), GPUS (weaver --gpus; default 0 with CUDA, else empty
= CPU), DDP_NGPUS (processes, through partx.ddp), COMMENT (run-name suffix), SKIP_PREFLIGHT=1,
DRY_RUN=1 (print the weaver command, run nothing), PREFLIGHT_MODE=auto|full|sample (partx.preflight),
RESUME=<run folder> (continue an interrupted training from its last complete epoch: give no other
arguments; NUM_EPOCHS may be raised), PRETRAINED=<JetClass checkpoint> (the ``MODEL-FineTune``
entries of QuarkGluon / TopLandscape; default models/<MODEL>_<kin|kinpid>.pt when it exists; see
partx.finetune). Arguments after FEATURES go to weaver last, so any weaver option
given again wins (argparse keeps the last); ``--force`` (partx's, not weaver's) allows writing into a
folder that already holds a training or predictions.

Every user error (unknown model, bad knob or weaver argument, missing or corrupt data, NaN inputs, an
existing run's folder) is one ``ERROR: ...`` line and exit status 2, before weaver starts. weaver runs
as its own process group (partx.process_group): Ctrl-C stops it within seconds with one line (exit
130) and says how to resume; predictions appear only when complete (partx.run_folder).
"""

from __future__ import annotations

import dataclasses
import glob
import importlib
import os
import re
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from partx import registry
from partx.cli import UserError
from partx.dataset_layouts import LAYOUTS, DatasetLayout

class LaunchError(UserError, ValueError):
    """A user error; the message is printed as one ``ERROR:`` line (exit 2)."""


def usage(layout: DatasetLayout) -> str:
    return (f"usage: ./{layout.script} MODEL [{'|'.join(layout.features + tuple(dict(layout.aliases)))}] [weaver args...]; "
            f"MODEL is one of: {' '.join(registry.names(layout.family))}")


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    """A positive integer knob (``name`` unset or empty: ``default``)."""
    text = env.get(name, "")
    if text == "":
        return default
    if not re.fullmatch(r"[0-9]+", text.strip()) or int(text) < 1:
        raise LaunchError(f"{name} must be a positive integer, got '{text}'")
    return int(text)


@dataclass(frozen=True)
class Knobs:
    """The environment knobs, checked."""

    epochs: int
    samples_per_epoch: int
    samples_per_epoch_val: int
    batch_size: int
    dataopts: list[str]
    gpus: str
    nproc: int
    comment: str
    preflight: bool
    preflight_mode: str
    dry_run: bool
    checks: tuple = ()  # (data config, file patterns, test only) for partx.preflight
    pretrained: tuple = ()  # (checkpoint, network, options, data config, head regex) for partx.finetune

    @classmethod
    def from_env(cls, env: Mapping[str, str], layout: DatasetLayout, entry: registry.ModelEntry,
                 has_cuda: bool) -> Knobs:
        nproc = _count(env, "DDP_NGPUS", 1)
        gpus = env["GPUS"] if "GPUS" in env else ("0" if has_cuda else "")
        if not re.fullmatch(r"([0-9]+(,[0-9]+)*)?", gpus):
            raise LaunchError(f"GPUS must be comma-separated device ids or empty (CPU), got '{gpus}'")
        if gpus and not has_cuda and nproc == 1:
            raise LaunchError(f"GPUS={gpus} but CUDA is not available: set GPUS= (empty) to train on the CPU")
        try:
            dataopts = shlex.split(env.get("DATAOPTS") or layout.dataopts)
        except ValueError as err:
            raise LaunchError(f"DATAOPTS: {err}") from None
        return cls(
            epochs=_count(env, "NUM_EPOCHS", layout.epochs),
            samples_per_epoch=_count(env, "SAMPLES_PER_EPOCH", layout.samples_per_epoch // nproc),
            samples_per_epoch_val=_count(env, "SAMPLES_PER_EPOCH_VAL", layout.samples_per_epoch_val),
            batch_size=_count(env, "BATCH_SIZE", entry.batch_size),
            dataopts=dataopts, gpus=gpus, nproc=nproc, comment=env.get("COMMENT", ""),
            preflight=not env.get("SKIP_PREFLIGHT"), preflight_mode=env.get("PREFLIGHT_MODE") or "auto",
            dry_run=bool(env.get("DRY_RUN")),
        )


def _require(layout: DatasetLayout, what: str, pattern: str) -> list[str]:
    files = sorted(glob.glob(pattern))
    if not files:
        raise LaunchError(f"no {layout.name} {what} files match '{pattern}'. {_get_data_hint(layout)}")
    return files


def _get_data_hint(layout: DatasetLayout) -> str:
    return (f"Get the real data with ./get_datasets.py {layout.name} -d ./datasets, or generate a small set "
            f"with {layout.generate_hint} (the data directory is ${layout.datadir_var}, set in env.sh)")


def _groups(layout: DatasetLayout, datadir: str, split: str) -> list[tuple[str, str]]:
    """(weaver argument, glob) per group with files; ``name:glob`` arguments when the layout has groups."""
    if not layout.groups:
        pattern = layout.split_glob(datadir, split)
        return [(pattern, pattern)]
    out = []
    for group in layout.groups:
        pattern = layout.group_glob(datadir, split, group)
        if glob.glob(pattern):
            out.append((f"{group}:{pattern}", pattern))
    return out


def _relative(path: Path) -> str:
    """``path`` relative to the working directory when inside it (the command the official scripts print)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def build_command(layout: DatasetLayout, argv: list[str], env: Mapping[str, str], has_cuda: bool,
                  python: str = sys.executable) -> tuple[list[str], Knobs]:
    """Check everything and return the weaver command (run from the repository root) and the knobs."""
    if not argv:
        raise LaunchError(usage(layout))
    try:
        entry = registry.get(argv[0], layout.family)
        network = entry.network_path
    except registry.RegistryError as err:
        raise LaunchError(str(err)) from None
    # FEATURES may be left out before weaver options (``./train_Pileup.sh MambaB --num-epochs 2``): no
    # feature set starts with "-"
    if len(argv) > 1 and argv[1].startswith("-"):
        argv = [argv[0], layout.default_features, *argv[1:]]
    features = argv[1] if len(argv) > 1 else layout.default_features
    aliases = dict(layout.aliases)
    if features not in layout.features and features not in aliases:
        raise LaunchError(f"invalid {layout.features_name} '{features}': choose {', '.join(layout.features)}")
    extra = argv[2:]
    features = aliases.get(features, features)
    tag_sample = layout.sample_tag
    layout = layout.for_features(features)
    if not network.is_file():
        raise LaunchError(f"network file {network} for model '{entry.name}' is missing")
    data_config = layout.data_config.format(features=features)
    if not Path(data_config).is_file():
        raise LaunchError(f"data config {data_config} is missing (run from the repository root)")
    knobs = Knobs.from_env(env, layout, entry, has_cuda)
    predict = "--predict" in extra
    finetune = _finetune_options(layout, entry, features, extra, env) if entry.finetune and not predict else []
    decay = ["--optimizer-option", "weight_decay", repr(entry.weight_decay)] if layout.weight_decay and entry.weight_decay else []

    datadir = env.get(layout.datadir_var) or layout.default_datadir
    if layout.find_data:  # data made or converted on demand (TrackML: the generated default)
        module, func = layout.find_data.split(":")
        try:
            find = getattr(importlib.import_module(module), func)
        except (ImportError, AttributeError) as err:  # a dataset whose reader is not installed / not merged yet
            # processed files already in place need no reader (weaver reads them); anything else does
            if not glob.glob(layout.split_glob(datadir, layout.test)):
                raise LaunchError(f"{layout.name} data reader {layout.find_data} is not available ({type(err).__name__}: "
                                  f"{err}), and {layout.split_dir(datadir, layout.test)} holds no processed files: "
                                  f"this partx cannot make {layout.name} data yet") from None
            find = None
        if find is not None:
            datadir = str(find(datadir, features, layout.default_datadir, knobs.dry_run))
    made_later = bool(layout.find_data) and knobs.dry_run and not Path(datadir).is_dir()  # shown, not made
    if not Path(datadir).is_dir() and not made_later:
        raise LaunchError(f"{layout.name} data directory {datadir} does not exist. {_get_data_hint(layout)}")
    if not made_later:
        if not predict:
            _require(layout, "training", layout.split_glob(datadir, layout.train))
            if layout.val:
                _require(layout, "validation", layout.split_glob(datadir, layout.val))
        _require(layout, "test", layout.split_glob(datadir, layout.test))
    train, test = _groups(layout, datadir, layout.train), _groups(layout, datadir, layout.test)
    val = layout.split_glob(datadir, layout.val) if layout.val else None

    if knobs.nproc > 1:
        if predict:
            raise LaunchError("--predict runs in one process: unset DDP_NGPUS")
        for arg, pattern in train:  # weaver gives each process its own files of every group
            n = len(glob.glob(pattern))
            if n < knobs.nproc:
                raise LaunchError(f"DDP_NGPUS={knobs.nproc} needs at least {knobs.nproc} training files per class; "
                                  f"'{pattern}' matches {n}")

    patterns = [p for _, p in test] + ([] if predict else [p for _, p in train] + ([val] if val else []))
    knobs = dataclasses.replace(knobs, checks=(data_config, patterns, predict))
    if finetune:
        options = {**entry.options, **_network_options(finetune), **_network_options(extra)}  # -o given last win
        knobs = dataclasses.replace(knobs, pretrained=(_option(finetune + extra, "--load-model-weights"), str(network),
                                                       options, data_config, entry.head))
    if knobs.nproc > 1:
        backend = "nccl" if has_cuda and knobs.gpus else "gloo"
        prefix = [python, "-m", "partx.ddp", "--nproc", str(knobs.nproc), "--backend", backend]
    else:
        prefix = [python, "-m", "partx.weaver_run"]
    amp = ["--use-amp"] if entry.amp and has_cuda and knobs.gpus else []
    tag = "_".join(p for p in (tag_sample, features, entry.name) if p)
    run_dir = "/".join(p for p in ("training", layout.name, tag_sample, features, entry.name) if p)
    suffix = knobs.comment
    cmd = [
        *prefix,
        "--data-train", *(a for a, _ in train),
        *(["--data-val", val] if val else []),
        "--data-test", *(a for a, _ in test),
        "--data-config", data_config, "--network-config", _relative(network), *entry.weaver_options(), *amp,
        "--model-prefix", f"{run_dir}/{{auto}}{suffix}/net",
        *knobs.dataopts, "--batch-size", str(knobs.batch_size), "--start-lr", f"{entry.lr:g}",
        "--samples-per-epoch", str(knobs.samples_per_epoch), "--samples-per-epoch-val", str(knobs.samples_per_epoch_val),
        "--num-epochs", str(knobs.epochs), "--gpus", knobs.gpus, "--optimizer", layout.optimizer,
        "--log", f"logs/{layout.name}_{tag}_{{auto}}{suffix}.log", "--predict-output", layout.predict_output,
        "--tensorboard", f"{layout.name}_{tag}{suffix}",
        *decay, *finetune,
        *extra,
    ]
    return cmd, knobs


#: registry name -> the file-name stem of the official ParT repository's JetClass checkpoints (models/official/)
OFFICIAL_STEMS = {"ParT": "ParT", "PN": "ParticleNet"}


def _pretrained_card(value: str | None, base: str, features: str):
    """The model card behind a PRETRAINED value (a card name / path such as ``official/ParT_kin`` or
    ``models/PFN_gen-small_full``), or, with no value, the official card of ``base`` for ``features`` when
    its weights have been fetched (``python get_datasets.py models``); None for a plain checkpoint file."""
    from partx.models_store.card import CardError
    from partx.models_store.loader import resolve_card
    from partx.models_store.card import read_card

    if value is None:
        stem = OFFICIAL_STEMS.get(base)
        if stem is None:
            return None
        try:
            card = read_card(resolve_card(f"official/{stem}_{features}"))
        except CardError:
            return None
        return card if card.weights_path.is_file() else None
    if value.endswith(".pt") and not Path(value).with_suffix(".yaml").is_file():
        return None  # a weaver checkpoint of one's own (e.g. <run>/net_best_epoch_state.pt)
    try:
        card = read_card(resolve_card(value))
    except CardError as err:
        if Path(value).is_file():
            return None
        raise LaunchError(str(err)) from None
    model = card.get("model")
    if model is not None and model != base:
        raise LaunchError(f"PRETRAINED={value}: its card {card.path} is for model {model}, not {base}")
    return card


def _finetune_options(layout: DatasetLayout, entry: registry.ModelEntry, features: str, extra: list[str],
                      env: Mapping[str, str]) -> list[str]:
    """weaver options of a ``-FineTune`` entry: the checkpoint and the head left out of loading and trained 50x
    faster. The checkpoint: ``--load-model-weights`` among the extra arguments; else PRETRAINED (a file, or a
    model card of models/: its weights, and its ``-o`` options, e.g. the official ParT's
    ``use_pre_activation_pair False``, which has no parameters and would otherwise be lost silently); else the
    official checkpoint of ParT / PN for the features when fetched (models/official/, its card's options too);
    else models/<MODEL>_<features>.pt."""
    base = entry.name.removesuffix(registry.FINETUNE_SUFFIX)
    jetclass_features = dict(layout.pretrained).get(features, features)
    given = _option(extra, "--load-model-weights")
    card = None if given else _pretrained_card(env.get("PRETRAINED") or None, base, jetclass_features)
    if card is not None:
        path = str(card.weights_path)
        if not card.weights_path.is_file():
            hint = "python get_datasets.py models" if card.official else "make models"
            raise LaunchError(f"{entry.name}: the weights {path} of model card {card.path} are missing: run `{hint}`")
        if card.data_config and Path(card.data_config).name != f"JetClass_{jetclass_features}.yaml":
            print(f"warning: {card.path.name} was trained with {card.data_config}, not the '{jetclass_features}' "
                  "features: the input embedding will not fit", file=sys.stderr, flush=True)
        print(f"{entry.name}: pretrained weights from model card {card.path} ({path})", flush=True)
    else:
        path = given or env.get("PRETRAINED") or f"models/{base}_{jetclass_features}.pt"  # weaver args win, as everywhere
    if not Path(path).is_file():
        how = "--load-model-weights" if given else ("PRETRAINED" if env.get("PRETRAINED") else "the default")
        official = (f", or fetch the official one: python get_datasets.py models (-> models/official/"
                    f"{OFFICIAL_STEMS[base]}_{jetclass_features}.pt)") if base in OFFICIAL_STEMS else ""
        raise LaunchError(f"{entry.name} starts from a JetClass checkpoint of {base} trained with the "
                          f"'{jetclass_features}' features, but {path} ({how}) does not exist: set PRETRAINED=<run>/net_best_epoch_state.pt "
                          f"(e.g. from ./train_JetClass.sh {base} {jetclass_features}) or PRETRAINED=<model card>{official}")
    head = entry.head
    lr_mult = repr((head, registry.FINETUNE_HEAD_LR_MULT))
    card_opts = [a for k, v in (card.options.items() if card is not None else ()) for a in ("-o", k, repr(v))]
    out = ["--exclude-model-weights", head, "--optimizer-option", "lr_mult", lr_mult, "--lr-scheduler", "none"]
    return [*([] if given else ["--load-model-weights", path]), *card_opts, *out]


def check_pretrained(path: str, network: str, options: dict, data_config: str, head: str) -> None:
    """partx.finetune: which pretrained weights the model takes (summary line + lists), before weaver starts."""
    from partx.finetune import check_pretrained as check

    check(path, network, options, data_config, head, log=lambda m: print(m, flush=True))


def preflight(data_config: str, patterns: list[str], test_only: bool, mode: str) -> None:
    """partx.preflight over every input file: one clear error before weaver starts (see its docstring)."""
    from partx.preflight import check_files

    report = check_files(data_config, patterns, test_only=test_only, mode=mode, progress=True)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    print(report.summary(data_config), flush=True)


def _interrupted_message(plan, launch: dict) -> str:
    from partx.run_folder import last_complete_epoch, parse_weaver_args

    if not plan.training:
        return "interrupted (Ctrl-C): prediction stopped, nothing was written"
    epoch = last_complete_epoch(Path(parse_weaver_args(launch["weaver_args"]).model_prefix))
    if epoch is None:
        return f"interrupted (Ctrl-C) during the first epoch: no checkpoint in {plan.run_dir} to resume from"
    return (f"interrupted (Ctrl-C): epochs 0-{epoch} are saved in {plan.run_dir}; resume with: "
            f"RESUME={plan.run_dir} ./{launch['script']}")


def launch(layout: DatasetLayout, args: list[str], env: Mapping[str, str], has_cuda: bool) -> int:
    """Plan (checks, run folder), then run weaver as a supervised process group."""
    from partx import run_folder
    from partx.process_group import run_group

    force = "--force" in args
    args = [a for a in args if a != "--force"]
    resumed = None
    if env.get("RESUME"):
        if args:
            raise LaunchError(f"RESUME={env['RESUME']} reuses that run's recorded command: give no other arguments "
                              f"(got {' '.join(args)}); NUM_EPOCHS may be set to train longer")
        record, weaver_args, resumed = run_folder.resume(env["RESUME"], env.get("NUM_EPOCHS"))
        cmd = [sys.executable, *record["runner"], *weaver_args]
        plan = run_folder.plan(cmd, weaver_args, force=True)  # its own folder: staged predictions only
        record = dict(record, weaver_args=weaver_args)
    else:
        cmd, knobs = build_command(layout, args, env, has_cuda)
        runner_len = 3 if cmd[1:3] == ["-m", "partx.weaver_run"] else cmd.index("--data-train")
        weaver_args = cmd[runner_len:]
        plan = run_folder.plan(cmd, weaver_args, force=force)
        if knobs.dry_run:  # the command as it will run, with the user's prediction path
            shown = plan.cmd if not plan.staging_dir else run_folder.set_option(
                plan.cmd, "--predict-output", _option(weaver_args, "--predict-output"))
            print(shlex.join(shown))
            return 0
        if knobs.pretrained:
            check_pretrained(*knobs.pretrained)
        if knobs.preflight:
            preflight(*knobs.checks, mode=knobs.preflight_mode)
        record = {"script": layout.script, "argv": args, "runner": cmd[1:runner_len],
                  "weaver_args": plan.cmd[runner_len:]}
        if plan.staging_dir:  # the record keeps the user's prediction path, not this launch's staging folder
            record["weaver_args"] = run_folder.set_option(record["weaver_args"], "--predict-output",
                                                          _option(weaver_args, "--predict-output"))
    if plan.training:
        plan.record(record)
    if resumed is not None:
        print(f"resuming {plan.run_dir} from epoch {resumed} (its last complete checkpoint)", flush=True)
    Path("logs").mkdir(exist_ok=True)
    print("+ " + shlex.join(plan.cmd), file=sys.stderr, flush=True)
    try:
        rc = run_group(plan.cmd)
    except KeyboardInterrupt:
        plan.discard()
        # on a fresh line: weaver's progress bar was cut mid-line
        print("\n" + _interrupted_message(plan, record), file=sys.stderr, flush=True)
        return 130
    if rc != 0:
        plan.discard()
        return rc
    written = plan.commit()
    if written:
        names = ", ".join(p.name for p in written[:3]) + (f", ... ({len(written)} files)" if len(written) > 3 else "")
        print(f"predictions in {written[0].parent}: {names}", flush=True)
    return 0


def _network_options(args: list[str]) -> dict:
    """weaver ``-o KEY VALUE`` / ``--network-option KEY VALUE`` pairs, literal-evaluated as weaver does."""
    import ast

    out = {}
    for i, a in enumerate(args[:-2]):
        if a in ("-o", "--network-option"):
            try:
                out[args[i + 1]] = ast.literal_eval(args[i + 2])
            except (ValueError, SyntaxError):
                raise LaunchError(f"network option {args[i + 1]}: {args[i + 2]!r} is not a Python literal") from None
    return out


def _option(args: list[str], flag: str) -> str | None:
    value = None
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            value = args[i + 1]
        elif a.startswith(flag + "="):
            value = a.split("=", 1)[1]
    return value


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    families = ", ".join(LAYOUTS)
    if not argv or argv[0] not in LAYOUTS:
        print(f"ERROR: usage: python -m partx.launcher DATASET MODEL [FEATURES] [weaver args...]; "
              f"DATASET is one of: {families}", file=sys.stderr)
        return 2
    layout, args = LAYOUTS[argv[0]], argv[1:]
    if args and args[0] in ("-h", "--help"):
        print(usage(layout) + "\n\n" + __doc__.split("\n\n", 2)[2])
        return 0
    try:
        import torch

        return launch(layout, args, os.environ, torch.cuda.is_available())
    except UserError as err:  # LaunchError, RunFolderError, PreflightError
        print(f"ERROR: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # during the checks, before weaver started (launch handles it after)
        print("\ninterrupted (Ctrl-C) before training started: nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
