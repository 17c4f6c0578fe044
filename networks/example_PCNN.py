"""weaver network file: P-CNN baseline (1D residual CNN over pT-ordered particles)."""

import torch

from partx.models.pcnn import ParticleCNN
from partx.models.weaver_glue import jet_model_info, keep_input, num_classes, num_features


class PCNNWrapper(torch.nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        self.mod = ParticleCNN(**kwargs)

    def forward(self, points, features, lorentz_vectors, mask):
        return self.mod(keep_input(keep_input(features, points), lorentz_vectors), mask)


def get_model(data_config, **kwargs):
    cfg = dict(input_dims=num_features(data_config), num_classes=num_classes(data_config))
    cfg.update(kwargs)
    return PCNNWrapper(**cfg), jet_model_info(data_config)


def get_loss(data_config, **kwargs):
    return torch.nn.CrossEntropyLoss()
