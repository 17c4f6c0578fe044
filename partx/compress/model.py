"""Whole-model low-rank compression: swap Linears for SVDLinear, penalise rank, materialise, save/load."""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass

import torch
from torch import nn

from partx.cli import UserError
from partx.compress.svd_linear import LowRankLinear, SVDLinear
from partx.quant.layers import quantizable_linears

__all__ = ["CompressError", "Compressed", "to_svd", "svd_layers", "rank_penalty", "materialise", "save_compressed",
           "load_compressed", "FORMAT"]

FORMAT = "partx-lowrank-v1"


class CompressError(UserError, ValueError):
    """A compressed checkpoint that cannot be read or does not fit the model: one line, exit 2."""


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)


def to_svd(model: nn.Module, min_features: int = 16, **svd_kw) -> list[str]:
    """Replace (in place) every Linear called as a module (``quantizable_linears``) whose smaller side is at
    least ``min_features`` by an ``SVDLinear``; returns the names. Tiny layers (the 17-feature input
    projection, the 10-class head) cannot gain from a factorisation and stay dense."""
    names = []
    for name in quantizable_linears(model):
        lin = model.get_submodule(name)
        if min(lin.in_features, lin.out_features) >= min_features:
            _set(model, name, SVDLinear(lin, **svd_kw))
            names.append(name)
    return names


def svd_layers(model: nn.Module) -> dict[str, SVDLinear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, SVDLinear)}


def rank_penalty(model: nn.Module) -> torch.Tensor:
    """Soft parameter fraction: sum_l soft_rank_l (in_l + out_l) / sum_l in_l out_l over the SVD layers
    (1 ~ as many parameters as the dense layers; the factorised cost of what the gates keep)."""
    layers = list(svd_layers(model).values())
    if not layers:
        raise ValueError("model has no SVDLinear layer (call to_svd first)")
    dense = sum(m.in_features * m.out_features for m in layers)
    return sum(m.soft_rank() * (m.in_features + m.out_features) for m in layers) / dense


def materialise(model: nn.Module) -> dict[str, dict]:
    """Replace (in place) each SVDLinear by its materialised module; returns per-layer
    {rank, full_rank, in, out, params_before, params_after, dense}."""
    info = {}
    for name, m in svd_layers(model).items():
        new = m.materialise()
        low = isinstance(new, LowRankLinear)
        r = new.rank if low else min(m.in_features, m.out_features)
        info[name] = dict(rank=r, kept_directions=m.hard_rank(), full_rank=min(m.in_features, m.out_features),
                          in_features=m.in_features, out_features=m.out_features,
                          params_before=m.in_features * m.out_features + m.out_features * (m.bias is not None),
                          params_after=sum(p.numel() for p in new.parameters()), dense=not low)
        _set(model, name, new)
    return info


@dataclass
class Compressed:
    model: nn.Module
    layers: dict[str, dict]

    def summary(self) -> str:
        low = {n: v for n, v in self.layers.items() if not v["dense"]}
        before = sum(v["params_before"] for v in self.layers.values())
        after = sum(v["params_after"] for v in self.layers.values())
        return (f"low-rank: {len(low)} of {len(self.layers)} layers factorised, their parameters "
                f"{before} -> {after} ({after / before:.2f}x)")


def save_compressed(path: str | os.PathLike, model: nn.Module, layers: dict[str, dict], meta: dict | None = None) -> None:
    from partx.atomic import atomic_path

    with atomic_path(path) as tmp:
        torch.save(dict(format=FORMAT, layers=layers, state_dict=model.state_dict(), meta=meta or {}), tmp)


def load_compressed(path: str | os.PathLike, fp32_model: nn.Module) -> Compressed:
    """The materialised model: a copy of ``fp32_model`` with the saved layers replaced, weights loaded."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling / zip error is the user's file
        raise CompressError(f"{path}: not a readable compressed checkpoint ({type(e).__name__})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise CompressError(f"{path}: not a {FORMAT} file (write it with `python -m partx.compress`)")
    model = copy.deepcopy(fp32_model)
    for name, v in blob["layers"].items():
        try:
            old = model.get_submodule(name)
        except AttributeError:
            raise CompressError(f"{path}: layer {name!r} does not exist in this model") from None
        if not isinstance(old, nn.Linear) or (old.in_features, old.out_features) != (v["in_features"], v["out_features"]):
            raise CompressError(f"{path}: layer {name!r} does not match this model's")
        if not v["dense"]:
            _set(model, name, LowRankLinear(v["in_features"], v["out_features"], v["rank"], old.bias is not None))
    try:
        model.load_state_dict(blob["state_dict"])
    except RuntimeError as e:
        raise CompressError(f"{path}: weights do not fit the model: {str(e).splitlines()[0][:200]}") from None
    return Compressed(model.eval(), blob["layers"])
