"""weaver network file: ParticleNet (dynamic graph CNN over (deta, dphi) kNN graphs), weaver-core's model."""

import torch
from weaver.nn.model.ParticleNet import ParticleNet

from partx.models.weaver_glue import jet_model_info, keep_input, num_classes, num_features

# The ParT paper's JetClass configuration: three EdgeConv blocks with k=16, one 256-wide FC layer.
DEFAULTS = dict(
    conv_params=[(16, (64, 64, 64)), (16, (128, 128, 128)), (16, (256, 256, 256))], fc_params=[(256, 0.1)],
    use_fusion=False, use_fts_bn=True, use_counts=True,
)


class ParticleNetWrapper(torch.nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        self.mod = ParticleNet(**kwargs)

    def forward(self, points, features, lorentz_vectors, mask):
        return self.mod(points, keep_input(features, lorentz_vectors), mask)


def get_model(data_config, **kwargs):
    cfg = dict(DEFAULTS, input_dims=num_features(data_config), num_classes=num_classes(data_config))
    cfg.update(kwargs)
    return ParticleNetWrapper(**cfg), jet_model_info(data_config)


def get_loss(data_config, **kwargs):
    return torch.nn.CrossEntropyLoss()
