"""weaver glue for every ParT variant: ``part_network(mixer=..., ...)`` -> ``(get_model, get_loss)``.

    get_model, get_loss = part_network(mixer="linformer", mixer_options={"k": 32})

``-o key value`` options given to weaver override these defaults (any ParTConfig field).
"""

from __future__ import annotations

from partx.models.jet_network import jet_network
from partx.models.part import ParticleTransformer

#: The ParT paper configuration (JetClass): 2.14M parameters with the full feature set.
PART_DEFAULTS = dict(
    pair_input_dim=4, embed_dims=[128, 512, 128], pair_embed_dims=[64, 64, 64], num_heads=8, num_layers=8,
    num_cls_layers=2, fc_params=[], activation="gelu", trim=True, mixer="sdpa",
)


def part_network(onnx_dynamic_length: bool = True, **defaults):
    return jet_network(ParticleTransformer, inputs=("features", "vectors", "mask"), call="part",
                       onnx_dynamic_length=onnx_dynamic_length, **dict(PART_DEFAULTS, **defaults))
