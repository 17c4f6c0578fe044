"""What the per-particle / per-hit weaver hooks share (partx.train.tracking, partx.train.pileup).

  * ``crop_inputs``: a weaver batch (channel-first ``(B, C, L)``, every event padded to the data config's
    length) -> batch-first ``(B, N, C)`` tensors cropped to the longest event of the batch;
  * ``train_epoch``: weaver's ``train`` loop body (gradient clipping, AMP scaler, per-step scheduler,
    tqdm, TensorBoard, a non-finite loss stopped before it reaches the weights) around a task's step;
  * ``evaluate_events``: weaver's ``evaluate`` loop body (no grad, tqdm, step limit, observers at test time)
    around a task's per-batch step that returns its events;
  * ``predict_path``: where weaver writes ``--predict-output`` (metrics JSON and plots go beside it);
  * ``check_options``: ``-o`` options no hook reads -> one line (``UnknownNetworkOption``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

import torch
import tqdm

from partx.cli import UserError
from partx.losses.finite import NonFiniteLossError

try:  # log through weaver's logger when weaver runs us (its handlers print to the console and the log file)
    from weaver.utils.logger import _logger
except ImportError:  # pragma: no cover - weaver is a dependency, this only guards odd installs
    _logger = logging.getLogger("partx.train")

#: options weaver itself adds to ``get_model``'s keywords (``weaver/train.py`` ``model_setup``: --export-onnx,
#: --use-amp, --compile): accepted and not used by partx's encoders (weaver runs autocast itself)
WEAVER_OPTIONS = ("for_inference", "use_amp", "compile_model")


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (model initialisation, random pairs) for ``-o seed``."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def crop_inputs(X: dict, mask: str, names: tuple[str, ...] | list[str], dev) -> tuple[torch.Tensor, dict]:
    """(mask (B, N) bool, {name: (B, N, C)}) on ``dev``, N = the longest event of the batch (real entries
    must come first in each row, as weaver's constant padding puts them)."""
    m = X[mask][:, 0] > 0
    n = max(int(m.sum(1).max()), 1)
    return m[:, :n].to(dev), {k: X[k][..., :n].transpose(1, 2).to(dev) for k in names}


def train_epoch(model, opt, scheduler, train_loader, dev, epoch: int, step: Callable[[dict], tuple[torch.Tensor, int]],
                loss_name: str, steps_per_epoch=None, grad_scaler=None, tb_helper=None) -> float:
    """One weaver training epoch; ``step(X) -> (loss, n_events)`` computes the task's loss of a batch.

    Returns the mean loss (weaver logs it)."""
    model.train()
    clip = getattr(opt, "_clip_grad_norm", float("inf"))
    total, n_batches, n_events, start = 0.0, 0, 0, time.time()
    with tqdm.tqdm(train_loader) as tq:
        for X, _, _ in tq:
            opt.zero_grad()
            loss, n = step(X)
            if not bool(torch.isfinite(loss.detach())):
                raise NonFiniteLossError(
                    f"the training {loss_name} loss became {loss.item()} at step {n_batches + 1} of epoch {epoch}: "
                    "stopped before it reached the weights. Check the inputs (python -m partx.preflight "
                    "--mode full ... finds NaN/inf), or lower the learning rate / disable --use-amp")
            if grad_scaler is None:
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=clip)
                opt.step()
            else:
                grad_scaler.scale(loss).backward()
                grad_scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=clip)
                grad_scaler.step(opt)
                grad_scaler.update()
            if scheduler and getattr(scheduler, "_update_per_step", False):
                scheduler.step()
            total += loss.item()
            n_batches += 1
            n_events += n
            tq.set_postfix({"Loss": f"{loss.item():.5f}", "AvgLoss": f"{total / n_batches:.5f}"})
            if tb_helper:
                tb_helper.global_step += 1
                tb_helper.write_scalars([("Loss/train", loss.item(), tb_helper.global_step)])
            if steps_per_epoch is not None and n_batches >= steps_per_epoch:
                break
    _logger.info("Train: %d events in %.1f s, AvgLoss %.5f", n_events, time.time() - start, total / max(n_batches, 1))
    if scheduler and not getattr(scheduler, "_update_per_step", False):
        scheduler.step()
    return total / max(n_batches, 1)


def evaluate_events(model, test_loader, for_training: bool, steps_per_epoch, step: Callable[[dict], tuple[torch.Tensor | None, list]]
                    ) -> tuple[list, float, dict]:
    """weaver's evaluation loop: ``step(X) -> (loss or None, events of the batch)`` over ``test_loader`` (at
    most ``steps_per_epoch`` batches), in eval mode without gradients.

    Returns (events, mean loss (nan if no step gave one), weaver's observers collected at test time)."""
    import math

    import numpy as np

    model.eval()
    events, losses, observers, n_batches = [], [], {}, 0
    with torch.no_grad(), tqdm.tqdm(test_loader) as tq:
        for X, _, Z in tq:
            loss, batch_events = step(X)
            if loss is not None:
                losses.append(loss.item())
            events.extend(batch_events)
            if not for_training:
                for k, v in Z.items():
                    observers.setdefault(k, []).append(np.asarray(v))
            n_batches += 1
            if steps_per_epoch is not None and n_batches >= steps_per_epoch:
                break
    return events, float(np.mean(losses)) if losses else math.nan, observers


def predict_path(args) -> str | None:
    """Where weaver writes the predictions (weaver/train.py: a bare file name goes to
    ``<model_prefix dir>/predict_output/``); the metrics JSON and plots go beside it."""
    out = getattr(args, "predict_output", None) if args is not None else None
    if out and not Path(out).parent.name and getattr(args, "model_prefix", None):
        out = str(Path(args.model_prefix).parent / "predict_output" / out)
    return out


class UnknownNetworkOption(UserError, ValueError):
    """A ``-o`` option no hook of a network file reads, with a one-line message naming it and the valid ones.
    weaver calls ``get_model`` in its own process: ``partx.weaver_run`` (the launcher's weaver) prints a
    UserError as that one line and exits 2; plain ``python -m weaver.train`` shows it as a ValueError traceback."""


def check_options(kwargs: dict, valid: tuple[str, ...], what: str, error: type[UnknownNetworkOption] = UnknownNetworkOption) -> dict:
    """``kwargs`` unchanged, or ``error`` naming the unknown keys and the valid ones (weaver's own excluded)."""
    unknown = [k for k in kwargs if k not in valid]
    if unknown:
        shown = [k for k in valid if k not in WEAVER_OPTIONS]  # the message lists what a user may set
        raise error(f"unknown {what} network option(s) {', '.join(map(repr, unknown))} (-o); valid: {', '.join(sorted(shown))}")
    return kwargs


def weaver_outputs(scores: list, labels: dict[str, list], observers: dict[str, list], test_loader) -> tuple:
    """(scores, labels, observers) as weaver's test-time ``evaluate`` returns them: per-event jagged arrays
    (awkward) for scores and labels, observers concatenated. weaver's ROOT writer (save_root) looks up the
    config's label names: each is filled with the first label so it finds one; parquet (the default of the
    per-particle datasets, partx.dataset_layouts) keeps each event's array whole."""
    import awkward as ak
    import numpy as np

    out_labels = {k: ak.Array(v) for k, v in labels.items()}
    config = getattr(getattr(test_loader, "dataset", None), "config", None)
    first = next(iter(out_labels.values()))
    for name in getattr(config, "label_names", ()):
        out_labels.setdefault(name, first)
    return ak.Array(scores), out_labels, {k: np.concatenate(v) for k, v in observers.items()}
