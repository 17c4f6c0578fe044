"""Building a benchmarked model for a given input length, by registry name or network file path.

A name is either registered (partx.registry: network file, get_model options, whether it takes
``max_len``), a checkpoint of models/ (partx.models_store: network, options and weights from its card),
or a path to any weaver network file (a registered file given by path keeps its entry's
``needs_max_len``; any other file gets only the overrides given). ``get_model(data_config, **kw)``
is called exactly as weaver calls it, so what is benchmarked is what ``train_JetClass.sh`` trains.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from partx import registry


@dataclass
class ModelSpec:
    """What to build: a network file, its get_model overrides, and whether get_model takes ``max_len``."""

    name: str
    network: Path
    overrides: dict = field(default_factory=dict)
    checkpoint: Path | None = None
    needs_max_len: bool = False


def parse_overrides(items) -> dict:
    """``["num_layers=1", "embed_dims=[16,16]"]`` -> dict (values ``literal_eval``-ed, as weaver's ``-o``)."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"model option {item!r} is not KEY=VALUE")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            out[key.strip()] = value.strip()
    return out


def resolve_model(name: str, checkpoint: str | os.PathLike | None = None, overrides: dict | None = None) -> ModelSpec:
    """A ModelSpec for a registered name or a network file path; raises ValueError / FileNotFoundError."""
    card = None if name in registry.MODELS else _card(name)
    if name in registry.MODELS:
        entry = registry.get(name)
        spec = ModelSpec(name, entry.network_path, dict(entry.options), needs_max_len=entry.needs_max_len)
    elif card is not None:  # a checkpoint of models/: network, options and weights from its card
        from partx.models_store.loader import network_path, read_weights

        read_weights(card)  # missing or changed weights: CardError (a UserError) naming the file
        entry = registry.MODELS.get(card.get("model", ""))
        spec = ModelSpec(card.name, network_path(card), card.options, checkpoint=card.weights_path,
                         needs_max_len=bool(entry and entry.needs_max_len))
        if checkpoint is not None:
            raise ValueError(f"model {name!r} is a model card with its own weights: give no checkpoint for it")
    elif name.endswith(".py") or os.sep in name:
        path = Path(name)
        if not path.is_file():
            raise FileNotFoundError(f"network file {name!r} does not exist")
        entry = registry.find_by_network(path)
        spec = ModelSpec(path.stem.removeprefix("example_"), path, needs_max_len=bool(entry and entry.needs_max_len))
    else:
        from partx.models_store.loader import available

        cards = ", ".join(available()) or "none"
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(registry.names())}, a model card of models/ "
                         f"({cards}) or give a network file path")
    if not spec.network.is_file():
        raise FileNotFoundError(f"network file for {name!r} not found: {spec.network}")
    spec.overrides.update(overrides or {})
    if checkpoint is not None:
        ck = Path(checkpoint)
        if not ck.is_file():
            raise FileNotFoundError(f"checkpoint for {name!r} not found: {checkpoint}")
        spec.checkpoint = ck
    return spec


def _card(name: str):
    """The model card ``name`` refers to (partx.models_store), or None."""
    from partx.models_store.card import CardError
    from partx.models_store.loader import card_for

    try:
        return card_for(name)
    except CardError:
        return None


def load_network_module(path: Path):
    key = "partx_perf_net_" + hashlib.md5(str(path.resolve()).encode()).hexdigest()[:10]
    spec = importlib.util.spec_from_file_location(key, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_model(spec: ModelSpec, data_config, length: int, device="cpu") -> torch.nn.Module:
    """get_model(data_config, **overrides) in eval mode on ``device``, checkpoint loaded if given."""
    kwargs = dict(spec.overrides)
    if spec.needs_max_len:
        kwargs.setdefault("max_len", int(length))
    module = load_network_module(spec.network)
    model, info = module.get_model(data_config, **kwargs)
    model.partx_model_info = info  # weaver's model_info: ONNX input names / dynamic axes (onnx_dynamic_length)
    if spec.checkpoint is not None:
        state = torch.load(spec.checkpoint, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
            state = state["model"]
        model.load_state_dict(state)
    settle_trimmers(model)
    return model.to(device).eval()


def onnx_dynamic_length(model: torch.nn.Module) -> bool:
    """Whether the model's ONNX graph may take any particle count (weaver model_info declares axis 2 dynamic);
    False for graphs traced at the data config's length (Mamba's unrolled scan). True if unknown."""
    info = getattr(model, "partx_model_info", None)
    if not info or not info.get("dynamic_axes"):
        return True
    axes = [info["dynamic_axes"].get(n, {}) for n in info.get("input_names", [])]
    return all(2 in (a if isinstance(a, dict) else dict.fromkeys(a)) for a in axes)


def settle_trimmers(model: torch.nn.Module) -> None:
    """Put weaver SequenceTrimmers past their warm-up so every timed call behaves like steady-state inference.

    weaver's trimmer leaves the first 5 calls untrimmed; afterwards (in eval) it cuts trailing padding.
    Without this the FLOP count and the first timed calls would see a different length than the rest.
    """
    for mod in model.modules():
        if type(mod).__name__ == "SequenceTrimmer" and hasattr(mod, "_counter"):
            mod._counter.fill_(int(getattr(mod, "warmup_steps", 0)))


class Probabilities(torch.nn.Module):
    """Softmax over ``model``'s logits: what ``for_inference=True`` adds, on a model built as weaver evaluates it.

    ``for_inference`` (the ONNX export mode) also switches off weaver ParT's padding trimmer and its sparse pair
    embedding, so a torch model built that way runs every jet at the full padded length with the dense U:
    a slower torch than users run. Torch rows of a comparison use this wrapper instead (same outputs).
    """

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(*args), dim=1)


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
