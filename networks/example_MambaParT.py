"""weaver network file: MambaParT, bidirectional Mamba blocks over pT-ordered particles.

Mamba has no attention logits, so U is not computed (``uses_bias=False``); pairwise information
enters only through the class-attention blocks' view of the particle tokens. ``expand=1`` keeps the
model near ParT's size. ``-o ordering sfc`` / ``lsh`` scan an eta-phi Hilbert curve / LSH order,
``-o mixer mamba2`` uses Mamba-2 (SSD) blocks. mamba-ssm kernels run on CUDA when installed.
ONNX: the scan is unrolled over particles when traced, so the exported graph has a dynamic batch axis
but a fixed particle axis (the data config's length, 128, which weaver always pads to).
"""

from partx.models.weaver_net import MAMBA_PART_DEFAULTS, part_network

get_model, get_loss = part_network(**MAMBA_PART_DEFAULTS)
