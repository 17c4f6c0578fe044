"""weaver network file: Particle Transformer (ParT), the partx skeleton with full attention.

Options (``-o key value`` on the weaver command line; all ParTConfig fields are accepted), e.g.
``-o mixer math`` for the explicit-softmax reference, ``-o pair_embed_dims None`` for ParT-plain.
"""

import torch

from partx.models.part import ParticleTransformer
from partx.models.weaver_glue import jet_model_info, keep_input, num_classes, num_features

DEFAULTS = dict(
    pair_input_dim=4, embed_dims=[128, 512, 128], pair_embed_dims=[64, 64, 64], num_heads=8, num_layers=8,
    num_cls_layers=2, fc_params=[], activation="gelu", trim=True, mixer="sdpa",
)


class ParTWrapper(torch.nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        self.mod = ParticleTransformer(**kwargs)

    @torch.jit.ignore
    def no_weight_decay(self):
        return {"mod.cls_token"}

    def forward(self, points, features, lorentz_vectors, mask):
        return self.mod(keep_input(features, points), v=lorentz_vectors, mask=mask)


def get_model(data_config, **kwargs):
    cfg = dict(DEFAULTS, input_dim=num_features(data_config), num_classes=num_classes(data_config))
    cfg.update(kwargs)
    return ParTWrapper(**cfg), jet_model_info(data_config)


def get_loss(data_config, **kwargs):
    return torch.nn.CrossEntropyLoss()
