"""weaver network file: ParticleNet (dynamic graph CNN over (deta, dphi) kNN graphs), weaver-core's model."""

from weaver.nn.model.ParticleNet import ParticleNet

from partx.models.weaver_net import jet_network

# The ParT paper's JetClass configuration: three EdgeConv blocks with k=16, one 256-wide FC layer.
get_model, get_loss = jet_network(
    ParticleNet, inputs=("points", "features", "mask"), dim_arg="input_dims",
    conv_params=[(16, (64, 64, 64)), (16, (128, 128, 128)), (16, (256, 256, 256))], fc_params=[(256, 0.1)],
    use_fusion=False, use_fts_bn=True, use_counts=True,
)
