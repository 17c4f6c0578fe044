"""One mixer per particle block (``block_mixers``) and the HybridParT variant: Mamba + attention-with-U."""

import sys
from pathlib import Path

import pytest
import torch
from weaver.nn.model.ParticleTransformer import PairEmbed, ParticleTransformer as WeaverParT

from partx import registry
from partx.models.part import ParticleTransformer
from partx.nn.mixers import build_mixer

sys.path.insert(0, str(Path(__file__).parent))
from test_part import SMALL, jets  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: Mamba, attention with U, Mamba: the smallest hybrid with a Mamba block on each side of the attention
HYBRID = dict(SMALL, num_layers=3, block_mixers=["mamba", "sdpa", "mamba"], mixer="mamba",
              mixer_options={"expand": 1, "d_state": 8}, ordering="pt")


def hybrid(**options) -> ParticleTransformer:
    torch.manual_seed(0)
    return ParticleTransformer(**dict(HYBRID, **options))


def count_pair_embed_calls(monkeypatch) -> list:
    calls = []
    original = PairEmbed.forward

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PairEmbed, "forward", counting)
    return calls


def biases_seen(model: ParticleTransformer) -> list:
    """Per forward, what each particle block received as U: None or a (B, H, N, N) tensor."""
    seen = []
    for block in model.blocks:
        block.register_forward_hook(lambda mod, args, out: seen.append(args[2] if len(args) > 2 else None))
    return seen


# --- the skeleton: one mixer per block ----------------------------------------------------------------------

def test_default_and_all_sdpa_block_mixers_stay_weavers_part():
    """block_mixers naming the default mixer in every block is weaver's ParT, and the same init draw."""
    options = dict(SMALL, num_layers=3)
    torch.manual_seed(0)
    ref = WeaverParT(**options).eval()
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    ours = ParticleTransformer(**options, block_mixers=["sdpa"] * 3).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x, v, mask = jets(F=7)
    with torch.no_grad():
        torch.testing.assert_close(ours(x, v, mask), ref(x, v, mask), atol=1e-5, rtol=0)
    torch.manual_seed(0)
    a = ParticleTransformer(**options).state_dict()
    torch.manual_seed(0)
    b = ParticleTransformer(**options, block_mixers=("sdpa", "sdpa", "sdpa")).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_each_block_gets_its_mixer_and_u_only_where_it_is_used():
    model = hybrid().eval()
    assert [type(b.attn).__name__ for b in model.blocks] == ["BiMambaMixer", "AttentionMixer", "BiMambaMixer"]
    assert model.blocks[0].attn.forward_block.d_state == 8  # mixer_options reach the blocks using ``mixer``
    seen = biases_seen(model)
    x, v, mask = jets(F=7)
    with torch.no_grad():
        model(x, v, mask)
    assert seen[0] is None and seen[2] is None
    assert seen[1] is not None and seen[1].shape == (4, 4, 40, 40)


def test_u_is_computed_once_and_only_if_some_block_receives_it(monkeypatch):
    calls = count_pair_embed_calls(monkeypatch)
    x, v, mask = jets(F=7)
    cases = [  # (options, PairEmbed built, calls per forward)
        (dict(block_mixers=["sdpa", "mamba", "sdpa"]), True, 1),  # two blocks take U: computed once
        (dict(block_mixers=["mamba"] * 3), False, 0),
        (dict(block_mixers=["sdpa", "mamba", "sdpa"], block_ids_with_attn_mask=[0]), True, 1),
        # weaver builds the pair embedding even if no block receives U (same state_dict); it is not computed
        (dict(block_mixers=["sdpa"] * 3, block_ids_with_attn_mask=[]), True, 0),
    ]
    for options, built, n in cases:
        model = hybrid(**options).eval()
        assert (model.pair_embed is not None) == built, options
        calls.clear()
        with torch.no_grad():
            model(x, v, mask)
        assert len(calls) == n, options


def test_block_ids_with_attn_mask_keeps_weavers_meaning():
    """Only the listed blocks receive U (negative ids count from the end); a listed block that cannot use U
    is an error, not a silent no-op."""
    model = hybrid(block_mixers=["sdpa", "mamba", "sdpa"], block_ids_with_attn_mask=[-1]).eval()
    assert model.block_uses_bias == [False, False, True]
    seen = biases_seen(model)
    x, v, mask = jets(F=7)
    with torch.no_grad():
        model(x, v, mask)
    assert seen[0] is None and seen[1] is None and seen[2] is not None
    with pytest.raises(ValueError, match="block_ids_with_attn_mask names block 0, whose mixer 'mamba' does not use U"):
        hybrid(block_ids_with_attn_mask=[1, 0])


@pytest.mark.parametrize("block_mixers,message", [
    (["mamba", "sdpa"], r"one mixer per particle block \(num_layers=3\)"),
    (["mamba", "sdpa", "mamba", "sdpa"], r"one mixer per particle block \(num_layers=3\)"),
    ("mamba", r"one mixer per particle block"),
    (["mamba", "bogus", "sdpa"], r"block_mixers\[1\]: unknown mixer 'bogus'"),
])
def test_bad_block_mixers_are_named(block_mixers, message):
    with pytest.raises(ValueError, match=message):
        hybrid(block_mixers=block_mixers)


def test_options_are_checked_against_every_blocks_mixer():
    with pytest.raises(ValueError, match="scale_attn_mask=True cannot be honoured by mixer 'mamba'"):
        hybrid(block_params=dict(scale_attn_mask=True))
    with pytest.raises(ValueError, match="use_qk_norm=True cannot be honoured by mixer 'mamba'"):
        hybrid(version=3.5)
    # qk-norm and gates reach the attention block of a hybrid whose other blocks are attention-like too
    model = hybrid(version=3.5, block_mixers=["linformer", "sdpa", "linformer"], max_len=40, mixer_options={})
    assert all(b.attn.q_norm is not None for b in model.blocks)


def test_initialisation_per_block(monkeypatch):
    """Mamba blocks keep mamba-ssm's init untouched; the attention block gets weaver's, with fix_init at its depth."""
    import partx.models.part as part_module

    built = []

    def recording(*args, **kwargs):
        mixer = build_mixer(*args, **kwargs)
        built.append({k: t.detach().clone() for k, t in mixer.state_dict().items()})
        return mixer

    monkeypatch.setattr(part_module, "build_mixer", recording)
    model = hybrid(block_mixers=["mamba", "mamba", "sdpa"])
    for block, own in zip(model.blocks[:2], built[:2]):
        assert all(torch.equal(block.attn.state_dict()[k], t) for k, t in own.items())
    attn = model.blocks[2].attn
    assert attn.weaver_init
    assert not torch.equal(attn.out_proj.weight, built[2]["out_proj.weight"])  # re-drawn, then rescaled
    # weaver's moco init draws out_proj uniform(+-sqrt(6 / (fan_in + fan_out))), fix_init divides by sqrt(2 * 3)
    bound = (6 / (2 * 32)) ** 0.5 / (2 * 3) ** 0.5
    w = attn.out_proj.weight
    assert w.abs().max() <= bound and w.abs().max() > 0.8 * bound


# --- the whole hybrid: semantics ---------------------------------------------------------------------------

def test_hybrid_gradients_reach_every_parameter():
    model = hybrid().train()
    x, v, mask = jets(F=7)
    model(x, v, mask).logsumexp(1).sum().backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, dead


def test_hybrid_padding_invariance():
    model = hybrid().eval()
    x, v, mask = jets(F=7, N=40)
    pad = 16
    x2, v2, mask2 = (torch.nn.functional.pad(t, (0, pad)) for t in (x, v, mask))
    x2[:, :, 40:] = torch.randn(4, 7, pad)  # garbage in padded slots must not matter
    with torch.no_grad():
        torch.testing.assert_close(model(x2, v2, mask2), model(x, v, mask), atol=2e-5, rtol=1e-4)


def test_hybrid_jets_never_see_each_other():
    model = hybrid().eval()
    x, v, mask = jets(F=7)
    x2, v2 = x.clone(), v.clone()
    x2[1] += torch.randn_like(x2[1]) * mask[1]
    v2[1] *= 1.5  # changes U of jet 1
    with torch.no_grad():
        y, y2 = model(x, v, mask), model(x2, v2, mask)
    torch.testing.assert_close(y2[[0, 2, 3]], y[[0, 2, 3]], atol=1e-6, rtol=1e-6)
    assert not torch.allclose(y2[1], y[1])


def test_hybrid_is_permutation_invariant_with_an_ordering_only():
    """The pT ordering is applied once, before all blocks: attention (equivariant) and ordered Mamba blocks
    together give jet outputs independent of the input particle order; without an ordering they are not."""
    x, v, mask = jets(F=7, n_real=(40, 40, 40, 40))
    perm = torch.randperm(40, generator=torch.Generator().manual_seed(1))
    for ordering in ("pt", "none"):
        model = hybrid(ordering=ordering).eval()
        with torch.no_grad():
            y, yp = model(x, v, mask), model(x[..., perm], v[..., perm], mask)
        if ordering == "pt":
            torch.testing.assert_close(yp, y, atol=1e-5, rtol=1e-4)
        else:
            assert not torch.allclose(yp, y, atol=1e-4)


def test_hybrid_per_particle_outputs_follow_the_input_order():
    model = hybrid(for_segmentation=True).eval()
    x, v, mask = jets(F=7, n_real=(40, 40, 40, 40))
    perm = torch.randperm(40, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        y, yp = model(x, v, mask), model(x[..., perm], v[..., perm], mask)
    torch.testing.assert_close(yp, y[..., perm], atol=1e-5, rtol=1e-4)


# --- the registered variant ------------------------------------------------------------------------------

def _network():
    import importlib.util

    spec = importlib.util.spec_from_file_location("_net_HybridParT", registry.get("HybridParT").network_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _DataConfig:
    input_dicts = {"pf_features": list(range(7))}
    label_value = list(range(10))
    input_names = ["pf_points", "pf_features", "pf_vectors", "pf_mask"]
    input_shapes = {k: (1, 1, 128) for k in input_names}


def test_registered_hybrid_layout():
    net = _network()
    small = dict(embed_dims=[16], pair_embed_dims=[8], num_heads=2, num_cls_layers=1)
    layouts = {}
    for num_layers in (8, 4, 1):
        model = net.get_model(_DataConfig, num_layers=num_layers, **small)[0].mod
        layouts[num_layers] = [type(b.attn).__name__[0] for b in model.blocks]  # B(iMamba) / A(ttention)
        assert model.config.ordering == "pt" and model.pair_embed is not None
    assert layouts == {8: list("BBBBABBB"), 4: list("BBAB"), 1: ["A"]}
    first = ["sdpa"] + ["mamba"] * 3
    model = net.get_model(_DataConfig, num_layers=4, block_mixers=first, **small)[0].mod
    assert [type(b.attn).__name__[0] for b in model.blocks] == list("ABBB")
    with pytest.raises(ValueError, match="num_layers=4"):
        net.get_model(_DataConfig, num_layers=4, block_mixers=["sdpa"], **small)
