"""weaver glue for every JetClass model: one wrapper, one ``get_model`` factory.

weaver calls a network file's ``get_model(data_config, **options)`` and ``get_loss``; JetClass data
configs feed four inputs ``(pf_points, pf_features, pf_vectors, pf_mask)``. A network file names its
model class, which inputs the model reads, and its defaults::

    get_model, get_loss = jet_network(ParticleFlowNetwork, inputs=("features", "mask"),
                                      dim_arg="input_dims", phi_sizes=(100, 100, 256))

``-o key value`` options given to weaver override these defaults.
"""

from __future__ import annotations

import torch

from partx.models.weaver_glue import jet_model_info, keep_input, num_classes, num_features

_WEAVER_INPUTS = ("points", "features", "vectors", "mask")


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
        return torch.nn.CrossEntropyLoss()

    return get_model, get_loss
