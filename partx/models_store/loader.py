"""``load(name_or_path) -> (model, card)``: a checkpoint of models/, rebuilt exactly as its card says.

A name is resolved in the models folder (``$PARTX_MODELS``, else ``models/`` beside the partx package):
``ParT_gen-small_full``, ``models/ParT_gen-small_full``, ``official/ParT_full``, or a path to the card
(``.yaml``) or to the weights (``.pt``, its card beside it). The network is built by its weaver network
file's ``get_model(data_config, **options)``, as weaver builds it, and the weights are loaded strictly:
a card whose network or options do not fit its weights is one CardError naming the first mismatches.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from partx import registry
from partx.models_store.card import CardError, ModelCard, read_card, sha256sum

#: where the official checkpoints' sha256 are recorded on first download (partx.models_store.official)
LOCK_NAME = "official.lock"


def models_dir() -> Path:
    env = os.environ.get("PARTX_MODELS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "models"


def available() -> list[str]:
    """Card names in the models folder (official ones as ``official/<name>``)."""
    base = models_dir()
    return sorted(str(p.relative_to(base).with_suffix("")) for p in base.glob("**/*.yaml")) if base.is_dir() else []


def resolve_card(name_or_path: str | os.PathLike) -> Path:
    """The card file for a name or path; CardError listing the available names if there is none."""
    text = str(name_or_path)
    path = Path(text)
    candidates = []
    if path.suffix == ".pt":
        candidates.append(path.with_suffix(".yaml"))
    elif path.suffix in (".yaml", ".yml"):
        candidates.append(path)
    else:
        candidates += [Path(text + ".yaml")]
        rel = Path(text)
        if rel.parts and rel.parts[0] == "models":
            rel = Path(*rel.parts[1:]) if len(rel.parts) > 1 else rel
        candidates.append(models_dir() / (str(rel) + ".yaml"))
    for c in candidates:
        if c.is_file():
            return c
    names = ", ".join(available()) or "none (run `make models`)"
    raise CardError(f"no model card for {text!r} (looked for {', '.join(map(str, dict.fromkeys(candidates)))}); "
                    f"available: {names}")


def network_path(card: ModelCard) -> Path:
    """The card's network file: a path as given if it exists, else the file of that name in networks/."""
    given = Path(card.network)
    if given.is_file():
        return given
    try:
        path = registry.networks_dir() / given.name
    except registry.RegistryError as err:
        raise CardError(str(err)) from None
    if not path.is_file():
        raise CardError(f"model card {card.path}: network file {card.network} not found (nor in {path.parent})")
    return path


def data_config_path(card: ModelCard) -> Path:
    """The card's data config, relative to the working directory or to the repository root."""
    given = Path(card.data_config)
    for p in (given, models_dir().parent / given, Path(__file__).resolve().parents[2] / given):
        if p.is_file():
            return p
    raise CardError(f"model card {card.path}: data config {card.data_config} not found")


def _official_sha256(card: ModelCard) -> str | None:
    from partx.models_store.official import read_lock

    return read_lock(card.path.parent.parent / LOCK_NAME).get(card.name, {}).get("sha256")


def read_weights(card: ModelCard) -> dict:
    """The card's state_dict, after checking it exists and its sha256 (card, or the official lock)."""
    path = card.weights_path
    if not path.is_file():
        hint = (f"run `python get_datasets.py models` (or python -m partx.models_store fetch {card.name})"
                if card.official else "run `make models` to train it")
        raise CardError(f"weights {path} of model card {card.path} are missing: {hint}")
    expected = card.sha256 or (_official_sha256(card) if card.official else None)
    if expected:
        actual = sha256sum(path)
        if actual != expected:
            raise CardError(f"weights {path} have sha256 {actual}, but {card.path.name if card.sha256 else LOCK_NAME} "
                            f"records {expected}: the file was changed or replaced")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - an unreadable file is the user's
        raise CardError(f"weights {path} cannot be read as a PyTorch state_dict: {' '.join(str(err).split())[:160]}") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise CardError(f"weights {path} hold a {type(state).__name__}, not a state_dict")
    return state


def mismatch(model: torch.nn.Module, state: dict, limit: int = 3) -> str | None:
    """What keeps ``state`` from loading strictly into ``model`` (missing, unexpected, shapes), or None."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} in the weights vs {tuple(own[k].shape)} in the network"
              for k in own if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(own[k].shape)]
    parts = []
    for what, items in (("missing from the weights", missing), ("not in the network", unexpected), ("shape", shapes)):
        if items:
            more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
            parts.append(f"{len(items)} {what}: {', '.join(items[:limit])}{more}")
    return "; ".join(parts) or None


def build(card: ModelCard, data_config=None) -> torch.nn.Module:
    """The card's network with its weights, eval mode, on CPU (``data_config``: a loaded weaver DataConfig)."""
    from partx.perf.harness import BenchmarkError, load_data_config
    from partx.perf.models import load_network_module, settle_trimmers

    net = network_path(card)
    if data_config is None:
        try:
            data_config = load_data_config(str(data_config_path(card)))
        except BenchmarkError as err:
            raise CardError(str(err)) from None
    state = read_weights(card)
    module = load_network_module(net)
    try:
        model, _ = module.get_model(data_config, **card.options)
    except (ValueError, TypeError, KeyError, AssertionError) as err:
        raise CardError(f"model card {card.path}: {net.name} cannot be built with options {card.options}: "
                        f"{' '.join(str(err).split())[:200]}") from None
    why = mismatch(model, state)
    if why:
        raise CardError(f"model card {card.path} does not match its weights {card.weights_path.name}: network "
                        f"{net.name} with options {card.options} and data config {card.data_config} gives {why}")
    model.load_state_dict(state)
    settle_trimmers(model)
    return model.eval()


def load(name_or_path: str | os.PathLike, data_config=None) -> tuple[torch.nn.Module, ModelCard]:
    """(model in eval mode, its card) for a checkpoint name or path; CardError for any problem."""
    card = read_card(resolve_card(name_or_path))
    return build(card, data_config), card


def card_for(value: str | os.PathLike | None) -> ModelCard | None:
    """The card a ``--checkpoint`` / ``--model`` value names, or None for a plain weights file or network.

    A value names a card when it is a card (``.yaml``), a ``.pt`` with a card beside it, or a name found
    in the models folder (``ParT_gen-small_full``, ``models/...``, ``official/ParT_full``). A plain file
    (weaver's ``net_best_epoch_state.pt``, a network ``.py``) is not a card. A value that is neither a file
    nor a card raises CardError listing the available cards.
    """
    if value is None:
        return None
    path = Path(value)
    if path.suffix == ".pt":  # weights: a card only if one lies beside them (else the caller's own checks)
        return read_card(path.with_suffix(".yaml")) if path.with_suffix(".yaml").is_file() else None
    if path.suffix not in (".yaml", ".yml") and (path.is_file() or path.suffix):
        return None  # another file (or file name): not a card, the caller's own checks apply
    return read_card(resolve_card(value))


def cli_card(value: str | None, given: dict, families: tuple[str, ...] = ("jets",)) -> ModelCard | None:
    """``card_for`` for an analysis CLI: CardError if a card is combined with the arguments it replaces, or is
    of a family the tool does not handle (partx.models_store.families; the JetClass tools: jets).

    ``given``: flag -> value of the arguments a card supplies (network, options, data config); any that is
    set conflicts with a card."""
    card = card_for(value)
    if card is not None:
        from partx.models_store.families import family

        if family(card) not in families:
            raise CardError(f"--checkpoint {value} is a {family(card)} checkpoint; this tool takes {' or '.join(families)} "
                            f"ones (tracking / pileup: python -m partx.models_store evaluate, analysis/tracking_cost.py)")
        clash = [flag for flag, v in given.items() if v]
        if clash:
            raise CardError(f"--checkpoint {value} is a model card: it gives the network, options and data config, "
                            f"so drop {', '.join(clash)}")
    return card
