"""The weaver glue for every ParT variant: one wrapper, one ``get_model`` factory.

A network file in networks/ picks a mixer and its defaults and exports the two functions weaver
looks for::

    get_model, get_loss = part_network(mixer="linformer", mixer_options={"k": 32})

``-o key value`` options given to weaver override these defaults (any ParTConfig field).
"""

from __future__ import annotations

import torch

from partx.models.part import ParticleTransformer
from partx.models.weaver_glue import jet_model_info, keep_input, num_classes, num_features

#: The ParT paper configuration (JetClass): 2.14M parameters with the full feature set.
PART_DEFAULTS = dict(
    pair_input_dim=4, embed_dims=[128, 512, 128], pair_embed_dims=[64, 64, 64], num_heads=8, num_layers=8,
    num_cls_layers=2, fc_params=[], activation="gelu", trim=True, mixer="sdpa",
)


class ParTWrapper(torch.nn.Module):
    """Maps weaver's JetClass inputs (points, features, lorentz_vectors, mask) onto the ParT skeleton."""

    def __init__(self, **kwargs):
        super().__init__()
        self.mod = ParticleTransformer(**kwargs)

    @torch.jit.ignore
    def no_weight_decay(self):
        return {"mod.cls_token"}

    def forward(self, points, features, lorentz_vectors, mask):
        return self.mod(keep_input(features, points), v=lorentz_vectors, mask=mask)


def part_network(**defaults):
    """Return weaver's ``(get_model, get_loss)`` for a ParT variant with these defaults."""
    base = dict(PART_DEFAULTS, **defaults)

    def get_model(data_config, **kwargs):
        cfg = dict(base, input_dim=num_features(data_config), num_classes=num_classes(data_config))
        cfg.update(kwargs)
        return ParTWrapper(**cfg), jet_model_info(data_config)

    def get_loss(data_config, **kwargs):
        return torch.nn.CrossEntropyLoss()

    return get_model, get_loss
