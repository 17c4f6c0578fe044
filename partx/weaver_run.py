"""The weaver process as partx runs it: ``python -m partx.weaver_run [weaver-core train args]``.

This is ``weaver.train`` (weaver-core 0.5.3) with two additions installed first, in this process only:

* **Atomic checkpoints.** weaver writes ``net_epoch-N_state.pt`` / ``_optimizer.pt`` with plain
  ``torch.save`` and copies the best epoch with ``shutil.copy2``; an interrupt in the middle leaves a
  truncated file under the final name, which a resume would then load. Here both go to a temporary
  name in the same folder and are renamed when complete (partx.atomic).
* **One line for a non-finite loss.** ``partx.losses.finite.FiniteLoss`` (every partx ``get_loss``)
  raises ``NonFiniteLossError``; it is printed as one ``ERROR:`` line (exit status 3) instead of a
  traceback from deep inside weaver's loop.

partx.launcher (``./train_<Dataset>.sh``) and partx.ddp run weaver through this module.
"""

from __future__ import annotations

import os
import shutil
import sys
import types

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


def _atomic_copy2(src, dst, *, follow_symlinks=True):
    from partx.atomic import atomic_path

    with atomic_path(dst) as tmp:
        shutil.copy2(src, tmp, follow_symlinks=follow_symlinks)
    return dst


def _excepthook(previous):
    def hook(exc_type, exc, tb):
        from partx.losses.finite import NonFiniteLossError

        if issubclass(exc_type, NonFiniteLossError):
            print(f"ERROR: {exc}", file=sys.stderr, flush=True)
            os._exit(EXIT_NON_FINITE)  # data-loader workers are daemons; nothing left to flush
        previous(exc_type, exc, tb)

    return hook


def install() -> None:
    """Patch this process for weaver (idempotent): atomic checkpoints, one line for a non-finite loss."""
    import weaver.train

    _atomic_torch_save()
    if not isinstance(weaver.train.shutil, types.SimpleNamespace):
        names = {k: getattr(shutil, k) for k in dir(shutil) if not k.startswith("__")}
        weaver.train.shutil = types.SimpleNamespace(**dict(names, copy2=_atomic_copy2))  # weaver.train's name only
    if not getattr(sys.excepthook, "_partx", False):
        sys.excepthook = _excepthook(sys.excepthook)
        sys.excepthook._partx = True


def main() -> None:
    install()
    from weaver.train import main as weaver_main

    sys.argv[0] = "weaver"
    weaver_main()


if __name__ == "__main__":
    main()
