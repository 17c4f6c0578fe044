"""weaver network file: LinformerParT, low-rank (k=32) key/value projections along the particle axis.

U is projected along the key axis with the key projection (partx/nn/linformer.py). ``max_len`` must
cover the input length of the data config (128 for JetClass).
"""

from partx.models.part_network import part_network

get_model, get_loss = part_network(mixer="linformer", mixer_options={"k": 32}, max_len=128)
