"""Helpers shared by the weaver network files in networks/ (kept here so those files stay thin)."""

from __future__ import annotations

import torch


def jet_model_info(data_config, output_name: str = "softmax", dynamic_length: bool = True) -> dict:
    """The ``model_info`` weaver needs for ONNX export: batch-dynamic inputs, and length-dynamic
    unless the model's traced graph is only valid at the data config's length (a scan unrolled in time)."""
    def axes(k):
        return {0: "N", 2: "n_" + k.split("_")[0]} if dynamic_length else {0: "N"}

    return {
        "input_names": list(data_config.input_names),
        "input_shapes": {k: ((1,) + s[1:]) for k, s in data_config.input_shapes.items()},
        "output_names": [output_name],
        "dynamic_axes": {**{k: axes(k) for k in data_config.input_names}, output_name: {0: "N"}},
    }


def num_features(data_config, input_name: str = "pf_features") -> int:
    if input_name not in data_config.input_dicts:
        raise KeyError(f"data config has no input group {input_name!r}; it has {list(data_config.input_dicts)}")
    return len(data_config.input_dicts[input_name])


def num_classes(data_config) -> int:
    return len(data_config.label_value)


def keep_input(t: torch.Tensor, unused: torch.Tensor) -> torch.Tensor:
    """Return ``t`` unchanged while making ``unused`` part of the traced graph.

    weaver feeds every input of the data config to ONNX Runtime, but the TorchScript exporter drops
    graph inputs the model never reads, and ORT then rejects the unknown feed name. A zero-width
    slice keeps the input in the graph at no cost; the result is exactly ``t``.
    """
    return t + unused[..., :0].sum()
