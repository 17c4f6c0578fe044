"""weaver network file: P-CNN baseline (1D residual CNN over pT-ordered particles)."""

from partx.models.pcnn import ParticleCNN
from partx.models.weaver_net import jet_network

get_model, get_loss = jet_network(ParticleCNN, inputs=("features", "mask"), dim_arg="input_dims")
