"""weaver network file: Particle Flow Network (Deep Sets) baseline; reads pf_features and pf_mask."""

from partx.models.pfn import ParticleFlowNetwork
from partx.models.weaver_net import jet_network

get_model, get_loss = jet_network(ParticleFlowNetwork, inputs=("features", "mask"), dim_arg="input_dims")
