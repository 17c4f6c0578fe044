"""weaver network file: P-CNN baseline (1D residual CNN over pT-ordered particles)."""

from partx.models.jet_network import jet_network
from partx.models.pcnn import ParticleCNN

get_model, get_loss = jet_network(ParticleCNN, inputs=("features", "mask"), dim_arg="input_dims")
