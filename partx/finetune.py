"""Fine-tuning a jet model from a JetClass checkpoint: which pretrained weights transfer.

The ``<model>-FineTune`` entries of ``train_QuarkGluon.sh`` / ``train_TopLandscape.sh`` follow the
official ParT scripts: weaver builds the model for the new data config (2 classes), initialises it
from the checkpoint (``--load-model-weights``) except the classification head (``--exclude-model-weights``
with the registry's ``head`` regex), and trains the new head with a 50x learning rate
(``--optimizer-option lr_mult``). The official scripts move the head out of the backbone in separate
``*_finetune.py`` network files; partx instead names the head of each registered model, so one
mechanism serves every variant (partx.registry ``ModelEntry.head``).

Before weaver starts, :func:`check_pretrained` builds the model and compares it with the checkpoint:
one summary line plus the lists (new head, shape mismatches, missing, unexpected). Shape mismatches
outside the head (a checkpoint of another feature set or model size) and checkpoints that share no
weight with the model are user errors: weaver would fail on them deep inside ``load_state_dict``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from partx.cli import UserError


class FineTuneError(UserError, ValueError):
    """An unusable pretrained checkpoint (one ``ERROR:`` line, exit 2)."""


@dataclass
class TransferReport:
    """How a checkpoint maps onto a model's state dict (names are state-dict keys)."""

    loaded: list[str] = field(default_factory=list)       # same name and shape, outside the head
    head: list[str] = field(default_factory=list)         # model keys of the (re-initialised) head
    mismatched: list[tuple[str, tuple, tuple]] = field(default_factory=list)  # (key, checkpoint, model) shapes
    missing: list[str] = field(default_factory=list)      # model keys outside the head absent from the checkpoint
    unexpected: list[str] = field(default_factory=list)   # checkpoint keys outside the head unknown to the model

    def summary(self, path: str | Path = "") -> str:
        total = len(self.loaded) + len(self.mismatched) + len(self.missing)
        return (f"pretrained {path}: loaded {len(self.loaded)}/{total} tensors outside the head; new head "
                f"({len(self.head)} tensors) re-initialised; {len(self.mismatched)} shape mismatches, "
                f"{len(self.missing)} missing, {len(self.unexpected)} unexpected")

    def lines(self) -> list[str]:
        out = [f"  new head: {', '.join(self.head) or '(none)'}"]
        out += [f"  shape mismatch: {k} checkpoint {list(a)} model {list(b)}" for k, a, b in self.mismatched]
        out += [f"  missing from the checkpoint (kept at initialisation): {k}" for k in self.missing]
        out += [f"  in the checkpoint, not in the model (ignored): {k}" for k in self.unexpected]
        return out


def compare(model_state: Mapping, pretrained: Mapping, head: str) -> TransferReport:
    """Args: model_state / pretrained: state dicts (name -> tensor); head: regex (``re.match``) of the head keys."""
    rep = TransferReport()
    is_head = re.compile(head).match
    for key, tensor in model_state.items():
        if is_head(key):
            rep.head.append(key)
        elif key not in pretrained:
            rep.missing.append(key)
        elif tuple(pretrained[key].shape) != tuple(tensor.shape):
            rep.mismatched.append((key, tuple(pretrained[key].shape), tuple(tensor.shape)))
        else:
            rep.loaded.append(key)
    rep.unexpected = [k for k in pretrained if k not in model_state and not is_head(k)]
    return rep


def load_state(path: str | Path) -> dict:
    """A weaver checkpoint (``net_best_epoch_state.pt``: a state dict) read on the CPU."""
    import torch

    p = Path(path)
    if not p.is_file():
        raise FineTuneError(f"pretrained checkpoint {path} does not exist")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for a foreign or truncated file
        raise FineTuneError(f"pretrained checkpoint {path} is not readable ({type(err).__name__}: "
                            f"{' '.join(str(err).split())[:200]})") from None
    if not isinstance(state, Mapping) or not state or not all(hasattr(v, "shape") for v in state.values()):
        raise FineTuneError(f"pretrained checkpoint {path} is not a model state dict (weaver's *_state.pt)")
    return dict(state)


def build_model(network: str | Path, options: Mapping, data_config: str | Path):
    """The model weaver will build: ``get_model`` of the network file for the data config."""
    from weaver.utils.data.config import DataConfig
    from weaver.utils.import_tools import import_module

    cfg = DataConfig.load(str(data_config), load_observers=False, load_reweight_info=False)
    return import_module(str(network), "_partx_finetune_network").get_model(cfg, **dict(options))[0]


def check_pretrained(path: str | Path, network: str | Path, options: Mapping, data_config: str | Path,
                     head: str, log=print) -> TransferReport:
    """Compare the checkpoint with the model; print the summary and lists; raise FineTuneError if unusable."""
    pretrained = load_state(path)
    rep = compare(build_model(network, options, data_config).state_dict(), pretrained, head)
    log(rep.summary(path))
    for line in rep.lines():
        log(line)
    if rep.mismatched:
        k, a, b = rep.mismatched[0]
        raise FineTuneError(f"pretrained checkpoint {path} does not fit this model outside the head: "
                            f"{len(rep.mismatched)} shape mismatches (first {k}: checkpoint {list(a)}, model {list(b)}); "
                            "was it trained with another JetClass feature set or other model options?")
    if not rep.loaded:
        raise FineTuneError(f"pretrained checkpoint {path} shares no weight with this model "
                            f"({len(rep.unexpected)} unknown tensors): is it a checkpoint of this model?")
    return rep
