"""Where one weaver run writes, decided before it starts: run folder, resume, staged predictions.

weaver-core writes checkpoints under ``--model-prefix`` and predictions under
``dirname(model_prefix)/predict_output/`` (or ``--predict-output`` with a folder), straight into the
final names. This module makes a launch safe to interrupt and to repeat:

* ``{auto}`` in ``--model-prefix`` / ``--log`` is resolved here, with weaver's own naming
  (``%Y%m%d-%H%M%S_<network>[_<md5 of -o options>]_<optimizer>_lr<lr>_batch<batch>``, weaver/train.py
  ``main``), so the launcher knows the run folder and can say how to resume it;
* a training never writes into a folder that already holds another training's checkpoints, and a
  prediction never replaces existing prediction files, unless ``--force`` is given;
* predictions are written to a hidden staging folder and moved into place only when weaver exits 0
  (an interrupted or failed test step leaves nothing that evaluate_jets.py would read);
* ``RESUME=<run folder>`` reruns the command recorded in ``<run folder>/partx_launch.json`` with
  weaver's ``--load-epoch N``, N the last epoch whose two checkpoint files are complete.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from partx.atomic import atomic_write
from partx.cli import UserError

RECORD = "partx_launch.json"
_EPOCH = re.compile(r"^(?P<prefix>.+)_epoch-(?P<epoch>\d+)_state\.pt$")


class RunFolderError(UserError):
    """The run folder cannot be used as asked (would overwrite, nothing to resume, ...)."""


def parse_weaver_args(args: list[str]):
    """weaver-core's own argument parser over ``args`` (its semantics: last value wins, ``--opt=value``).

    An argument weaver rejects raises RunFolderError with weaver's message (instead of weaver's usage
    text and exit 2 minutes later, after the data checks).
    """
    from weaver.train import parser

    def error(message):
        raise RunFolderError(f"weaver argument error: {message}")

    parser.error = error  # this (launcher) process only: weaver itself parses again, unpatched
    return parser.parse_args(args)


def auto_name(args) -> str:
    """weaver's ``{auto}`` run name for parsed weaver ``args`` (weaver-core 0.5.3, train.py ``main``)."""
    name = time.strftime("%Y%m%d-%H%M%S") + "_" + os.path.basename(args.network_config).replace(".py", "")
    if args.network_option:
        name += "_" + hashlib.md5(str(args.network_option).encode("utf-8")).hexdigest()
    return name + f"_{args.optimizer}_lr{args.start_lr}_batch{args.batch_size}"


def set_option(cmd: list[str], flag: str, value: str | None) -> list[str]:
    """``cmd`` with every ``flag`` occurrence (``--flag v`` or ``--flag=v``) removed and ``flag value`` appended."""
    out, skip = [], False
    for a in cmd:
        if skip:
            skip = False
        elif a == flag:
            skip = True
        elif not a.startswith(flag + "="):
            out.append(a)
    return out + ([flag, value] if value is not None else [])


def _complete(path: Path) -> bool:
    import torch

    try:
        torch.load(path, map_location="cpu", weights_only=True)
        return True
    except Exception:  # a file cut by an interrupt (older runs, written without partx.weaver_run)
        return False


def checkpoints(run_dir: Path) -> dict[str, list[int]]:
    """Epoch numbers with a state checkpoint, per model-prefix basename, in ``run_dir``."""
    found: dict[str, list[int]] = {}
    for p in run_dir.glob("*_epoch-*_state.pt"):
        m = _EPOCH.match(p.name)
        if m:
            found.setdefault(m["prefix"], []).append(int(m["epoch"]))
    return {k: sorted(v) for k, v in found.items()}


def last_complete_epoch(prefix: Path) -> int | None:
    """The last epoch N with ``<prefix>_epoch-N_state.pt`` and ``_optimizer.pt`` both loadable."""
    for epoch in reversed(checkpoints(prefix.parent).get(prefix.name, [])):
        state = Path(f"{prefix}_epoch-{epoch}_state.pt")
        opt = Path(f"{prefix}_epoch-{epoch}_optimizer.pt")
        if opt.is_file() and _complete(state) and _complete(opt):
            return epoch
    return None


def prediction_names(base: str, test_args: list[str]) -> list[str]:
    """File names weaver writes for ``--predict-output base`` and these ``--data-test`` arguments."""
    stem, ext = os.path.splitext(base)
    names = []
    for arg in test_args:
        group = arg.split(":", 1)[0] if ":" in arg else ""
        group = group.split("%", 1)[0] + ("_*" if "%" in group else "")
        names.append(f"{stem}_{group}{ext}" if group else base)
    return list(dict.fromkeys(names))


@dataclass
class RunPlan:
    """The weaver command, finalised, and what to do with its outputs."""

    cmd: list[str]
    run_dir: Path
    predictions_dir: Path | None = None   # final folder of the prediction files
    staging_dir: Path | None = None        # where weaver writes them (moved on success)
    resumed_from: int | None = None
    training: bool = True
    notes: list[str] = field(default_factory=list)

    def record(self, launch: dict) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(self.run_dir / RECORD, json.dumps(launch, indent=1))

    def commit(self) -> list[Path]:
        """Move staged predictions into place (each file by one rename); return the final paths."""
        moved = []
        if self.staging_dir and self.staging_dir.is_dir():
            for p in sorted(self.staging_dir.iterdir()):
                target = self.predictions_dir / p.name
                os.replace(p, target)
                moved.append(target)
        self.discard()
        return moved

    def discard(self) -> None:
        """Drop staged predictions and checkpoint temporaries left by an interrupted weaver."""
        if self.staging_dir:
            shutil.rmtree(self.staging_dir, ignore_errors=True)
        for tmp in glob.glob(str(self.run_dir / ".*.tmp*")):
            Path(tmp).unlink(missing_ok=True)


def check_writable(path: Path, what: str) -> None:
    """RunFolderError unless ``path`` is (or can be created as) a writable folder; creates nothing."""
    probe = Path(os.path.abspath(path))
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise RunFolderError(f"{what} {path} cannot be created: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):  # EROFS on a read-only mount, even for root
        raise RunFolderError(f"{what} {path} is not writable ({probe} is read-only or not yours): choose another "
                             f"folder (--model-prefix / --predict-output)")


def plan(cmd: list[str], weaver_args: list[str], force: bool) -> RunPlan:
    """Resolve ``{auto}``, refuse to overwrite another run, stage predictions.

    ``cmd`` is the full command (interpreter + module + ``weaver_args``); ``weaver_args`` is its tail.
    """
    args = parse_weaver_args(weaver_args)
    head = cmd[: len(cmd) - len(weaver_args)]
    if "{auto}" in args.model_prefix or "{auto}" in (args.log or ""):
        name = auto_name(args)
        weaver_args = [a.replace("{auto}", name) for a in weaver_args]
        args = parse_weaver_args(weaver_args)
    prefix = Path(args.model_prefix)
    predict = bool(args.predict)
    training = not predict and "train" in args.run_mode
    run_dir = prefix.parent  # training: <run>/net; prediction: <run>/net_best_epoch_state.pt (or .onnx)
    out = RunPlan(cmd=head + weaver_args, run_dir=run_dir, training=training)

    if training:
        check_writable(run_dir, "run folder")
    if training and args.load_epoch is None:
        existing = checkpoints(run_dir).get(prefix.name)
        if existing and not force:
            raise RunFolderError(
                f"{run_dir} already holds a training ({prefix.name}_epoch-{existing[-1]}_state.pt): resume it with "
                f"RESUME={run_dir}, train into a new folder (the default {{auto}} names are new), or add --force to overwrite it")

    if args.predict_output and ("test" in args.run_mode or predict):
        base = os.path.basename(args.predict_output)
        folder = Path(os.path.dirname(args.predict_output) or run_dir / "predict_output")
        names = prediction_names(base, args.data_test or [])
        clash = sorted({p for n in names for p in glob.glob(str(folder / n))})
        if clash and not force:
            raise RunFolderError(
                f"predictions {', '.join(clash[:3])}{' ...' if len(clash) > 3 else ''} already exist: give "
                f"--predict-output another name or folder (e.g. --predict-output {folder}/new/pred.root), "
                f"or add --force to replace them")
        check_writable(folder, "prediction folder")
        out.predictions_dir = folder
        out.staging_dir = folder / f".partial-{os.getpid()}"
        out.cmd = set_option(out.cmd, "--predict-output", str(out.staging_dir / base))
    return out


def resume(run_dir: str, env_epochs: str | None) -> tuple[dict, list[str], int]:
    """The recorded launch of ``run_dir`` and its weaver command continued from the last complete epoch."""
    folder = Path(run_dir)
    record_path = folder / RECORD
    if not folder.is_dir():
        raise RunFolderError(f"RESUME={run_dir}: no such run folder")
    if not record_path.is_file():
        raise RunFolderError(f"RESUME={run_dir}: no {RECORD} there (only runs started by ./train_*.sh can be resumed; "
                             f"for others call weaver with --load-epoch yourself)")
    try:
        launch = json.loads(record_path.read_text())
        weaver_args = list(launch["weaver_args"])
    except (ValueError, KeyError, TypeError) as err:
        raise RunFolderError(f"RESUME={run_dir}: {record_path} is not a partx launch record ({err})") from None
    args = parse_weaver_args(weaver_args)
    epoch = last_complete_epoch(Path(args.model_prefix))
    if epoch is None:
        raise RunFolderError(f"RESUME={run_dir}: no complete epoch checkpoint there (the run stopped during its "
                             f"first epoch): start it again without RESUME")
    if env_epochs:
        weaver_args = set_option(weaver_args, "--num-epochs", env_epochs)
        args = parse_weaver_args(weaver_args)
    if epoch + 1 >= args.num_epochs:
        raise RunFolderError(f"RESUME={run_dir}: all {args.num_epochs} epochs are done (last checkpoint: epoch {epoch}); "
                             f"set NUM_EPOCHS higher to train on")
    return launch, set_option(weaver_args, "--load-epoch", str(epoch)), epoch
