"""The weaver process as partx runs it: ``python -m partx.weaver_run [weaver-core train args]``.

This is ``weaver.train`` (weaver-core 0.5.3) with these additions installed first, in this process only:

* **Atomic checkpoints.** weaver writes ``net_epoch-N_state.pt`` / ``_optimizer.pt`` with plain
  ``torch.save`` and copies the best epoch with ``shutil.copy2``; an interrupt in the middle leaves a
  truncated file under the final name, which a resume would then load. Here both go to a temporary
  name in the same folder and are renamed when complete (partx.atomic).
* **One line for a non-finite loss.** ``partx.losses.finite.FiniteLoss`` (every partx ``get_loss``)
  raises ``NonFiniteLossError``; it is printed as one ``ERROR:`` line (exit status 3) instead of a
  traceback from deep inside weaver's loop.
* **A best checkpoint always exists.** weaver writes ``net_best_epoch_state.pt`` only when validation
  beats 0 (a NaN or zero metric never does) and its test step then fails; the last epoch stands in, with
  a warning.
* **One line for a user error.** A ``partx.cli.UserError`` raised inside weaver (e.g. an unknown ``-o``
  option of a tracking network file, ``partx.train.tracking.UnknownTrackingOption``) is printed as one
  ``ERROR:`` line with exit status 2, as every partx command line does.
* **An optional seed.** weaver seeds nothing; with ``PARTX_SEED=<int>`` in the environment Python's,
  numpy's and torch's generators are seeded before weaver builds the model (its initial weights) and its
  data loaders (torch derives each loader worker's seed from it, and weaver seeds numpy in each worker
  from that). weaver also orders the classes it loads through a Python ``set`` of names, whose order
  changes with Python's per-process hash seed: with ``PARTX_SEED`` and no ``PYTHONHASHSEED``, the process
  re-executes itself once with ``PYTHONHASHSEED=<seed>`` so the loading order repeats too. On CPU two
  runs with the same seed and data then give identical weights (tests/test_variant_accuracy.py); on GPU
  some kernels (atomic adds) are not bit-reproducible. ``make models`` and analysis/variant_accuracy.py
  set it.

partx.launcher (``./train_<Dataset>.sh``) and partx.ddp run weaver through this module.
"""

from __future__ import annotations

import os
import shutil
import sys
import types
from pathlib import Path

EXIT_NON_FINITE = 3


def _atomic_torch_save():
    import torch

    from partx.atomic import atomic_path

    if getattr(torch.save, "_partx_atomic", False):
        return
    original = torch.save

    def save(obj, f, *args, **kwargs):
        if isinstance(f, (str, os.PathLike)):
            with atomic_path(f) as tmp:
                return original(obj, tmp, *args, **kwargs)
        return original(obj, f, *args, **kwargs)

    save._partx_atomic = True
    torch.save = save


_BEST = "_best_epoch_state.pt"


def _best_or_last_epoch(load):
    """``torch.load`` that, for a missing ``<prefix>_best_epoch_state.pt``, falls back to the last epoch.

    weaver keeps a "best" checkpoint only when the validation metric beats its initial best, 0 (or
    inf in regression): a short run whose metric stays 0 or is NaN (no validation queries) never writes
    one, and weaver's test step then dies on the missing file. The last epoch is copied to the best
    name (atomically) with a warning, which is what such a run has to offer.
    """

    def wrapped(f, *args, **kwargs):
        if isinstance(f, (str, os.PathLike)) and str(f).endswith(_BEST) and not os.path.exists(f):
            from partx.run_folder import checkpoints

            prefix = str(f)[: -len(_BEST)]
            epochs = checkpoints(Path(prefix).parent).get(Path(prefix).name, [])
            if epochs:
                last = f"{prefix}_epoch-{epochs[-1]}_state.pt"
                print(f"warning: no epoch improved on weaver's initial best validation metric (0, or NaN metrics): "
                      f"using the last epoch ({epochs[-1]}) as {os.path.basename(f)}", file=sys.stderr, flush=True)
                _atomic_copy2(last, f)
        return load(f, *args, **kwargs)

    wrapped._partx_best = True
    return wrapped


def _atomic_copy2(src, dst, *, follow_symlinks=True):
    from partx.atomic import atomic_path

    with atomic_path(dst) as tmp:
        shutil.copy2(src, tmp, follow_symlinks=follow_symlinks)
    return dst


def _excepthook(previous):
    def hook(exc_type, exc, tb):
        from partx.cli import EXIT_USER_ERROR, UserError
        from partx.losses.finite import NonFiniteLossError

        if issubclass(exc_type, NonFiniteLossError):
            print(f"ERROR: {exc}", file=sys.stderr, flush=True)
            os._exit(EXIT_NON_FINITE)  # data-loader workers are daemons; nothing left to flush
        if issubclass(exc_type, UserError):
            print("ERROR: " + " ".join(str(exc).split()), file=sys.stderr, flush=True)
            os._exit(EXIT_USER_ERROR)
        previous(exc_type, exc, tb)

    return hook


def install() -> None:
    """Patch this process for weaver (idempotent): atomic checkpoints, one line for a non-finite loss."""
    import weaver.train

    _atomic_torch_save()
    import torch

    if not getattr(torch.load, "_partx_best", False):
        torch.load = _best_or_last_epoch(torch.load)
    if not isinstance(weaver.train.shutil, types.SimpleNamespace):
        names = {k: getattr(shutil, k) for k in dir(shutil) if not k.startswith("__")}
        weaver.train.shutil = types.SimpleNamespace(**dict(names, copy2=_atomic_copy2))  # weaver.train's name only
    if not getattr(sys.excepthook, "_partx", False):
        sys.excepthook = _excepthook(sys.excepthook)
        sys.excepthook._partx = True


def seed_from_env(env=os.environ) -> int | None:
    """Seed random, numpy and torch from ``PARTX_SEED`` (unset or empty: nothing); returns the seed."""
    text = env.get("PARTX_SEED", "")
    if not text:
        return None
    if not text.strip().isdigit():
        from partx.cli import UserError

        raise UserError(f"PARTX_SEED must be a non-negative integer, got {text!r}")
    import random

    import numpy as np
    import torch

    seed = int(text)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return seed


def _hash_seed_env(env=os.environ) -> dict | None:
    """The environment to re-execute with (``PYTHONHASHSEED`` = the seed) when ``PARTX_SEED`` is set and the
    hash seed is not, else None. weaver's ``_SimpleIter.restart`` builds its per-class file dict from
    ``set(names)``: string hashes, so the order in which classes are concatenated (and then shuffled
    with the seeded numpy generator) differs between processes unless the hash seed is fixed."""
    text = env.get("PARTX_SEED", "")
    if not text.strip().isdigit() or env.get("PYTHONHASHSEED"):
        return None
    return dict(env, PYTHONHASHSEED=str(int(text) % 2**32))


def main() -> None:
    new_env = _hash_seed_env()
    if new_env is not None:  # before anything is imported or started: the hash seed is read at start-up
        os.execve(sys.executable, [sys.executable, "-m", "partx.weaver_run", *sys.argv[1:]], new_env)
    install()
    seed_from_env()
    from weaver.train import main as weaver_main

    sys.argv[0] = "weaver"
    weaver_main()


if __name__ == "__main__":
    main()
