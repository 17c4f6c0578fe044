"""partx.quant: int8 dynamic quantization keeps outputs close, shrinks Linear weights ~4x, runs through ParT."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from partx.perf import inputs, models
from partx.quant import linear_weight_bytes, model_size_bytes, quantizable_linears, quantize_int8

DATA_CONFIG = str(Path(__file__).resolve().parents[1] / "data/JetClass/JetClass_full.yaml")


@pytest.fixture(scope="module")
def data_config():
    from weaver.utils.data.config import DataConfig

    return DataConfig.load(DATA_CONFIG, load_observers=False, load_reweight_info=False)


def test_linear_weights_shrink_about_4x():
    torch.manual_seed(0)
    model = nn.Sequential(*[nn.Linear(256, 256) for _ in range(4)])
    q = quantize_int8(model)
    ratio = linear_weight_bytes(model) / linear_weight_bytes(q)
    assert 3.5 <= ratio <= 4.1, ratio
    assert model_size_bytes(q) < model_size_bytes(model)
    assert isinstance(model[0], nn.Linear)  # the original is untouched


def test_int8_part_close_to_fp32(data_config):
    torch.manual_seed(0)
    spec = models.resolve_model("ParT", overrides=dict(num_layers=2, embed_dims=[32, 32], pair_embed_dims=[16],
                                                       num_heads=4, num_cls_layers=1))
    model = models.build_model(spec, data_config, 32)
    q = quantize_int8(model)
    # the wrapper's Linear layers are replaced, except weaver's class-attention in_proj (read as .weight)
    names = quantizable_linears(model)
    assert names and not any(n.endswith("cls_blocks.0.attn.in_proj") for n in names)
    assert "quantized" in type(q.mod.blocks[0].fc1).__module__
    x = inputs.synthetic_inputs(data_config, 32, 64, seed=3)
    args = inputs.as_forward_args(x, data_config.input_names)
    with torch.no_grad():
        p32 = model(*args).softmax(1)
        p8 = q(*args).softmax(1)
    assert p8.shape == p32.shape and torch.isfinite(p8).all()
    # per-tensor int8 weights on a 32-wide random model: class probabilities move by a few 1e-2 at most
    assert (p32 - p8).abs().max() < 0.1
    assert (p32 - p8).abs().mean() < 0.01
    assert (p32.argmax(1) == p8.argmax(1)).float().mean() >= 0.9


def test_functional_linears_are_declared_not_guessed():
    """Linears whose weight a parent reads directly stay fp32: partx declares its own (MambaBlock.dt_proj),
    weaver's Attention (in_proj through F._in_projection_packed) is listed in partx.quant."""
    import inspect

    from weaver.nn.model.ParticleTransformer import Attention

    from partx.nn.mamba.block import MambaBlock
    from partx.quant import functional_linears

    block = MambaBlock(16, expand=1)
    assert functional_linears(block) == ("dt_proj",)
    names = quantizable_linears(nn.ModuleDict({"m": block}))
    assert "m.dt_proj" not in names and "m.in_proj" in names and "m.out_proj" in names
    attn = Attention(16, 2)
    assert functional_linears(attn) == ("in_proj",)
    # the entry still describes the installed weaver (fails if weaver stops reading in_proj.weight)
    assert "self.in_proj.weight" in inspect.getsource(Attention.forward)
    torch.manual_seed(0)
    q = quantize_int8(block)
    x = torch.randn(2, 5, 16)
    with torch.no_grad():
        assert torch.isfinite(q(x)).all()
