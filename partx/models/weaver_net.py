"""weaver glue for every jet model: one wrapper, one ``get_model`` / ``get_loss`` factory.

weaver calls a network file's ``get_model(data_config, **options)`` and ``get_loss``; JetClass data
configs feed four inputs ``(pf_points, pf_features, pf_vectors, pf_mask)``. A network file names its
model class, which inputs the model reads, and its defaults::

    get_model, get_loss = jet_network(ParticleFlowNetwork, inputs=("features", "mask"),
                                      dim_arg="input_dims", phi_sizes=(100, 100, 256))
    get_model, get_loss = part_network(mixer="linformer", mixer_options={"k": 32})   # any ParT variant

``-o key value`` options given to weaver override these defaults; they reach the model unchanged
(the model, not this glue, decides which options it accepts).
"""

from __future__ import annotations

import torch

from partx.losses.finite import FiniteLoss
from partx.models.part import ParticleTransformer

_WEAVER_INPUTS = ("points", "features", "vectors", "mask")

#: The ParT paper configuration (JetClass): 2.14M parameters with the full feature set.
PART_DEFAULTS = dict(
    pair_input_dim=4, embed_dims=[128, 512, 128], pair_embed_dims=[64, 64, 64], num_heads=8, num_layers=8,
    num_cls_layers=2, fc_params=[], activation="gelu", trim=True, mixer="sdpa",
)

#: MambaParT's Mamba blocks (also those of HybridParT): bidirectional Mamba-1, ``expand=1`` keeps the model
#: near ParT's size; the scan sees the particles in pT order; the ONNX graph has a fixed particle axis.
MAMBA_PART_DEFAULTS = dict(mixer="mamba", mixer_options={"expand": 1, "d_state": 16}, ordering="pt",
                           onnx_dynamic_length=False)


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


class JetModelWrapper(torch.nn.Module):
    """Calls ``model(*inputs)`` with the weaver inputs it reads, in the order named by ``inputs``.

    Every weaver input is threaded through the graph (``keep_input``, an exact no-op), also those a
    model or one of its configurations ignores (ParT-plain never reads the 4-vectors): weaver's ONNX
    prediction feeds every data-config input, and ONNX Runtime rejects inputs the graph lacks.
    """

    def __init__(self, model_cls: type[torch.nn.Module], inputs: tuple[str, ...], call: str | None, **kwargs):
        super().__init__()
        unknown = set(inputs) - set(_WEAVER_INPUTS)
        assert not unknown, f"unknown weaver inputs {unknown}; choose from {_WEAVER_INPUTS}"
        self.mod = model_cls(**kwargs)
        self.inputs, self.call = inputs, call

    @torch.jit.ignore
    def no_weight_decay(self):
        return {"mod." + n for n in getattr(self.mod, "no_weight_decay", lambda: set())()}

    def forward(self, points, features, lorentz_vectors, mask):
        given = dict(points=points, features=features, vectors=lorentz_vectors, mask=mask)
        first = self.inputs[0]
        for name, t in list(given.items()):
            if name != first:
                given[first] = keep_input(given[first], t)
        args = [given[name] for name in self.inputs]
        if self.call == "part":  # ParT's signature: (x, v=..., mask=...)
            return self.mod(args[0], v=args[1], mask=args[2])
        return self.mod(*args)


def jet_network(model_cls, inputs: tuple[str, ...], dim_arg: str = "input_dim", call: str | None = None,
                onnx_dynamic_length: bool = True, **defaults):
    """Return weaver's ``(get_model, get_loss)`` for ``model_cls`` with these defaults.

    ``onnx_dynamic_length=False`` declares the particle axis of the exported ONNX graph static (the
    data config's length), for models whose traced graph is only valid at that length.
    """

    def get_model(data_config, **kwargs):
        cfg = dict(defaults, **{dim_arg: num_features(data_config), "num_classes": num_classes(data_config)})
        cfg.update(kwargs)
        return JetModelWrapper(model_cls, inputs, call, **cfg), jet_model_info(data_config, dynamic_length=onnx_dynamic_length)

    def get_loss(data_config, **kwargs):
        return FiniteLoss(torch.nn.CrossEntropyLoss())  # stops at the first NaN/inf loss (partx.losses.finite)

    return get_model, get_loss


def part_network(onnx_dynamic_length: bool = True, **defaults):
    """``jet_network`` for ParT with the paper defaults; ``defaults`` override them (any ParTConfig field)."""
    return jet_network(ParticleTransformer, inputs=("features", "vectors", "mask"), call="part",
                       onnx_dynamic_length=onnx_dynamic_length, **dict(PART_DEFAULTS, **defaults))
