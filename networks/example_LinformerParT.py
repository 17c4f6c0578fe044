"""weaver network file: LinformerParT, low-rank (k=32) key/value projections along the particle axis.

U is projected along the key axis with the key projection (partx/nn/linformer.py). ``max_len`` must
cover the input length of the data config (128 for JetClass).

Linformer's projections act on positions, so positions must mean the same thing in training and in
evaluation: weaver's sequence trimmer shuffles the particles of each jet during training (not at
evaluation), hence ``ordering="pt"`` re-sorts them by pT after it (a short CPU training: 0.183 test
accuracy without, 0.243 with; docs/mixers.md).
"""

from partx.models.weaver_net import part_network

get_model, get_loss = part_network(mixer="linformer", mixer_options={"k": 32}, max_len=128, ordering="pt")
