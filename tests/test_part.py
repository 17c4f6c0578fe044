"""The ParT skeleton: weaver compatibility and whole-model semantics for every mixer."""

import logging

import pytest
import torch
from weaver.nn.model.ParticleTransformer import ParticleTransformer as WeaverParT

from partx.models.part import ParticleTransformer
from partx.nn.mixers import available_mixers, build_mixer

logging.getLogger("weaver").setLevel(logging.WARNING)

PAPER = dict(input_dim=17, num_classes=10, embed_dims=[128, 512, 128], pair_embed_dims=[64, 64, 64], num_heads=8,
             num_layers=8, num_cls_layers=2, fc_params=[], trim=False)
SMALL = dict(input_dim=7, num_classes=10, embed_dims=[32, 32], pair_embed_dims=[16], num_heads=4, num_layers=2,
             num_cls_layers=1, trim=False)


def jets(B=4, N=40, F=17, n_real=(40, 23, 5, 1), seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, F, N, generator=g)
    p3 = torch.randn(B, 3, N, generator=g) * 20
    v = torch.cat([p3, p3.norm(dim=1, keepdim=True) + 0.5], dim=1)
    mask = torch.zeros(B, 1, N)
    for b, n in enumerate(n_real):
        mask[b, :, :n] = 1
    return x * mask, v * mask, mask


def assert_loads_weaver_and_matches(options: dict, perturb: bool = False) -> ParticleTransformer:
    """weaver's ParT with ``options`` -> its state_dict loads (strict) into ours, same outputs on padded jets.

    ``perturb``: move every weaver parameter off its initial value first (LayerScale, per-head and residual
    scales start at constants), so that a parameter read by the wrong layer, or not at all, shows."""
    torch.manual_seed(0)
    ref = WeaverParT(**options).eval()
    if perturb:
        with torch.no_grad():
            for p in ref.parameters():
                p.add_(torch.randn_like(p) * 0.05)
    ours = ParticleTransformer(**options).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x, v, mask = jets(F=options["input_dim"])
    with torch.no_grad():
        torch.testing.assert_close(ours(x, v, mask), ref(x, v, mask), atol=1e-5, rtol=0)
    return ours


def test_loads_weaver_state_dict_and_matches_outputs():
    ours = assert_loads_weaver_and_matches(PAPER)
    assert sum(p.numel() for p in ours.parameters()) == 2_143_486  # the paper's 2.14M


def test_weaver_loads_ours_too_and_math_backend_agrees():
    torch.manual_seed(1)
    ours = ParticleTransformer(**PAPER, mixer="math").eval()
    ref = WeaverParT(**PAPER).eval()
    ref.load_state_dict(ours.state_dict(), strict=True)
    x, v, mask = jets(seed=3)
    with torch.no_grad():
        torch.testing.assert_close(ours(x, v, mask), ref(x, v, mask), atol=1e-5, rtol=0)


def test_for_inference_gives_probabilities():
    model = ParticleTransformer(**SMALL, for_inference=True).eval()
    x, v, mask = jets(F=7)
    with torch.no_grad():
        p = model(x, v, mask)
    torch.testing.assert_close(p.sum(1), torch.ones(4))


def test_part_plain_has_no_pair_embedding_and_ignores_vectors():
    model = ParticleTransformer(**dict(SMALL, pair_embed_dims=None)).eval()
    assert model.pair_embed is None
    x, v, mask = jets(F=7)
    with torch.no_grad():
        torch.testing.assert_close(model(x, v, mask), model(x, v * 3, mask))


def test_bias_free_mixer_skips_u():
    model = ParticleTransformer(**dict(SMALL, mixer="mamba", ordering="pt"))
    assert model.pair_embed is None


@pytest.mark.parametrize("mixer,ordering", [("sdpa", "none"), ("flex", "none"), ("linformer", "none"),
                                            ("reformer", "none"), ("mamba", "pt"), ("mamba2", "sfc")])
def test_whole_model_padding_invariance(mixer, ordering):
    torch.manual_seed(0)
    model = ParticleTransformer(**dict(SMALL, mixer=mixer, ordering=ordering, max_len=64)).eval()
    x, v, mask = jets(F=7, N=40)
    pad = 16
    x2, v2, mask2 = (torch.nn.functional.pad(t, (0, pad)) for t in (x, v, mask))
    x2[:, :, 40:] = torch.randn(4, 7, pad)  # garbage in padded slots must not matter
    with torch.no_grad():
        torch.testing.assert_close(model(x2, v2, mask2), model(x, v, mask), atol=2e-5, rtol=1e-4)


def test_ordering_makes_mamba_permutation_invariant_at_jet_level():
    """With an explicit pT ordering the input order of particles no longer matters."""
    torch.manual_seed(0)
    model = ParticleTransformer(**dict(SMALL, mixer="mamba", ordering="pt")).eval()
    x, v, mask = jets(F=7, n_real=(40, 40, 40, 40))
    perm = torch.randperm(40)
    with torch.no_grad():
        torch.testing.assert_close(model(x[..., perm], v[..., perm], mask), model(x, v, mask), atol=1e-5, rtol=1e-4)


def test_ordering_needs_vectors():
    model = ParticleTransformer(**dict(SMALL, mixer="mamba", ordering="pt", pair_embed_dims=None))
    x, _, mask = jets(F=7)
    with pytest.raises(ValueError, match="needs the particle 4-vectors"):
        model(x, None, mask)


def test_unknown_option_and_mixer_are_clear_errors():
    with pytest.raises(TypeError, match="not_an_option"):
        ParticleTransformer(**SMALL, not_an_option=1)
    with pytest.raises(ValueError, match="unknown mixer 'bogus'"):
        ParticleTransformer(**dict(SMALL, mixer="bogus"))


def test_gradients_reach_every_parameter():
    model = ParticleTransformer(**SMALL).train()
    x, v, mask = jets(F=7)
    model(x, v, mask).logsumexp(1).sum().backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, dead


def test_training_trimmer_shuffle_is_undone_by_the_ordering():
    """weaver's trimmer shuffles particles in training only; an ordering restores pT order for the mixer."""
    torch.manual_seed(0)
    seen = []
    for ordering in ("none", "pt"):
        model = ParticleTransformer(**dict(SMALL, mixer="linformer", ordering=ordering, trim=True, max_len=64)).train()
        v_in = []
        model.pair_embed.register_forward_pre_hook(lambda mod, args, kw: v_in.append(args[0].detach()), with_kwargs=True)
        x, v, mask = jets(F=7, n_real=(40, 40, 40, 40))
        order = v[:, :2].norm(dim=1).argsort(dim=1, descending=True)  # inputs in pT order, as weaver's are
        x, v = (t.gather(2, order[:, None].expand_as(t)) for t in (x, v))
        for _ in range(7):  # past the trimmer's 5-step warm-up
            model(x, v, mask)
        pt = v_in[-1][:, :2].norm(dim=1)
        seen.append(bool((pt[:, :-1] >= pt[:, 1:]).all()))
    assert seen == [False, True]


# --- weaver ParT versions and constructor options: strict state_dict load, same outputs ----------------------

VERSION_CASES = [
    dict(version=1),
    dict(version=2),
    dict(version=3),
    dict(version=3.5),
    dict(version=3.6),
    dict(version=1, block_params=dict(scale_attn_mask=True, layer_scale_init_values=1e-1, headwise_attn_output_gate=True),
         fc_params=[(24, 0.1)]),
    dict(version=2, block_params=dict(use_qk_norm=True), block_ids_with_attn_mask=[0], fc_params=[(24, 0.1, "swiglu")]),
    dict(version=3, include_global_token=True, num_cls_layers=0, pair_input_type="ee", use_conv_embed=True),
    dict(version=1, num_cls_layers=0, remove_self_pair=True, weight_init="timm", fix_init=False),
]


def _case_id(case):
    return ",".join(f"{k}={v}" for k, v in case.items())


@pytest.mark.parametrize("for_inference", [False, True])
@pytest.mark.parametrize("case", VERSION_CASES, ids=_case_id)
def test_every_weaver_version_loads_and_matches(case, for_inference):
    """partx's ParT with the default mixer is weaver's ParT of the same version and options (eval, padded jets)."""
    assert_loads_weaver_and_matches(dict(SMALL, **case, for_inference=for_inference), perturb=True)


def test_version_defaults_follow_weaver():
    """The version switches of weaver's ParT, read through the blocks it builds."""
    def first_block(version, cls):
        return cls(**dict(SMALL, version=version)).blocks[0]

    for version in (1, 2, 3):
        ref, ours = first_block(version, WeaverParT), first_block(version, ParticleTransformer)
        assert (ours.fc1_g is None) == (ref.fc1_g is None) == (version == 1)
        assert type(ours.pre_attn_norm) is type(ref.pre_attn_norm)
        assert (ours.fc1.bias is None) == (ref.fc1.bias is None) == (version == 3)
        assert type(ours.drop_path1) is type(ref.drop_path1)


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("mixer,ordering", [("flex", "none"), ("linformer", "pt"), ("reformer", "none"),
                                            ("mamba", "pt"), ("mamba2", "pt")])
def test_versions_with_every_mixer(version, mixer, ordering):
    """Every mixer builds and runs in every version; padding still changes nothing."""
    torch.manual_seed(0)
    model = ParticleTransformer(**dict(SMALL, version=version, mixer=mixer, ordering=ordering, max_len=64)).eval()
    x, v, mask = jets(F=7, N=40)
    x2, v2, mask2 = (torch.nn.functional.pad(t, (0, 8)) for t in (x, v, mask))
    with torch.no_grad():
        torch.testing.assert_close(model(x2, v2, mask2), model(x, v, mask), atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("mixer", ["linformer", "mamba"])
def test_global_token_with_other_mixers(mixer):
    model = ParticleTransformer(**dict(SMALL, mixer=mixer, ordering="pt", include_global_token=True, num_cls_layers=0,
                                       max_len=40)).eval()
    x, v, mask = jets(F=7, N=40)
    with torch.no_grad():
        assert torch.isfinite(model(x, v, mask)).all()


@pytest.mark.parametrize("mixer,option", [("mamba", "use_qk_norm"), ("mamba2", "elementwise_attn_output_gate"),
                                          ("mamba", "headwise_attn_output_gate"), ("reformer", "use_qk_norm"),
                                          ("mamba", "scale_attn_mask")])
def test_options_a_mixer_cannot_honour_raise(mixer, option):
    with pytest.raises(ValueError, match=f"{option}.*{mixer}"):
        ParticleTransformer(**dict(SMALL, mixer=mixer, block_params={option: True}))


def test_version_35_with_mamba_raises_and_bad_version_raises():
    with pytest.raises(ValueError, match="use_qk_norm.*'mamba'"):
        ParticleTransformer(**dict(SMALL, mixer="mamba", version=3.5))
    with pytest.raises(ValueError, match="version 4"):
        ParticleTransformer(**dict(SMALL, version=4))


def test_unknown_block_param_names_it_and_lists_valid():
    with pytest.raises(TypeError, match="'use_qknorm'.*use_qk_norm"):
        ParticleTransformer(**dict(SMALL, block_params={"use_qknorm": True}))
    with pytest.raises(TypeError, match="'not_an_option'.*valid options: input_dim"):
        ParticleTransformer(**SMALL, not_an_option=1)


@pytest.mark.parametrize("mixer,ordering", [("sdpa", "none"), ("mamba", "pt")])
def test_segmentation_gives_per_particle_outputs_in_input_order(mixer, ordering):
    torch.manual_seed(0)
    model = ParticleTransformer(**dict(SMALL, mixer=mixer, ordering=ordering, for_segmentation=True)).eval()
    x, v, mask = jets(F=7, n_real=(40, 40, 40, 40))
    perm = torch.randperm(40)
    with torch.no_grad():
        out = model(x, v, mask)
        out_perm = model(x[..., perm], v[..., perm], mask)
    assert out.shape == (4, 10, 40)
    torch.testing.assert_close(out_perm, out[..., perm], atol=1e-5, rtol=1e-4)  # equivariant: outputs follow inputs


def test_segmentation_matches_weaver():
    torch.manual_seed(0)
    options = dict(SMALL, for_segmentation=True)
    ref = WeaverParT(**options).eval()
    ours = ParticleTransformer(**options).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x, v, mask = jets(F=7)
    real = mask.bool().expand(-1, 10, -1)
    with torch.no_grad():
        torch.testing.assert_close(ours(x, v, mask)[real], ref(x, v, mask)[real], atol=1e-5, rtol=0)


# --- initialisation: each mixer keeps its own; the default attention gets weaver's --------------------------

INIT = dict(input_dim=7, num_classes=10, embed_dims=[64], pair_embed_dims=[16], num_heads=4, num_layers=2,
            num_cls_layers=1, trim=False, max_len=64)


def _built_mixers(monkeypatch, **options):
    """Build a ParT, recording each mixer's parameters as its own constructor left them."""
    import partx.models.part as part_module

    at_construction = []

    def recording_build_mixer(*args, **kwargs):
        mixer = build_mixer(*args, **kwargs)
        at_construction.append({k: t.detach().clone() for k, t in mixer.state_dict().items()})
        return mixer

    monkeypatch.setattr(part_module, "build_mixer", recording_build_mixer)
    model = ParticleTransformer(**dict(INIT, **options))
    return model, at_construction


def _same_distribution(name, a, b):
    """Two draws of one initialiser: equal if it is deterministic, else close in scale and range."""
    if a.numel() == 1 or a.std() == 0:
        torch.testing.assert_close(b, a, msg=name)
        return
    if a.numel() < 256:  # too few samples to compare (small Mamba-2 vectors: the exact check covers them)
        return
    assert 0.85 < (b.std() / a.std()).item() < 1.15, name
    assert abs((b.mean() - a.mean()).item()) < 0.15 * a.std().item(), name
    spread = (a.max() - a.min()).item()
    assert a.min() - 0.1 * spread <= b.min() and b.max() <= a.max() + 0.1 * spread, name


@pytest.mark.parametrize("mixer", available_mixers())
def test_mixer_inside_part_is_initialised_as_alone(mixer, monkeypatch):
    """Mixers that keep their own initialisation are untouched by the skeleton; those initialised as weaver's
    attention (the default) are re-drawn from the same distribution, with weaver's depth rescaling of out_proj."""
    model, at_construction = _built_mixers(monkeypatch, mixer=mixer)
    torch.manual_seed(1)
    alone = build_mixer(mixer, embed_dim=64, num_heads=4, dropout=0.1, max_len=64).state_dict()
    for layer_id, (block, own) in enumerate(zip(model.blocks, at_construction), start=1):
        inside = {k: t.detach().clone() for k, t in block.attn.state_dict().items()}
        if block.attn.weaver_init:
            inside["out_proj.weight"] *= (2.0 * layer_id) ** 0.5  # weaver's fix_init
        else:
            for k in own:
                assert torch.equal(inside[k], own[k]), f"the ParT skeleton re-initialised {mixer} {k}"
        assert inside.keys() == alone.keys()
        for k in alone:
            if alone[k].is_floating_point():
                _same_distribution(f"{mixer} {k}", alone[k], inside[k])


@pytest.mark.parametrize("mixer,bias_name", [("mamba", "dt_proj.bias"), ("mamba2", "dt_bias")])
def test_mamba_dt_inside_part_is_log_uniform_in_range(mixer, bias_name):
    """mamba-ssm's dt init: softplus(dt bias) log-uniform in [dt_min, dt_max] = [1e-3, 0.1] in every channel
    (weaver's init zeroed it once: softplus(0) = 0.693 everywhere)."""
    model = ParticleTransformer(**dict(INIT, mixer=mixer, ordering="pt"))
    dts = []
    for block in model.blocks:
        for direction in (block.attn.forward_block, block.attn.backward_block):
            dts.append(torch.nn.functional.softplus(direction.get_parameter(bias_name).detach()))
    dt = torch.cat(dts)
    assert (dt >= 1e-3 * (1 - 1e-4)).all() and (dt <= 0.1 * (1 + 1e-4)).all(), (dt.min(), dt.max())
    assert dt.log().std() > 0.5  # spread over the two decades, not one value


def test_default_attention_init_is_weavers():
    """Built alone or in ParT, the attention mixer's parameters follow weaver's ParT init (moco + fix_init)."""
    torch.manual_seed(0)
    ref = WeaverParT(**dict(PAPER, num_layers=3)).blocks
    ours = ParticleTransformer(**dict(PAPER, num_layers=3)).blocks
    for layer, (r, o) in enumerate(zip(ref, ours)):
        for k, t in r.attn.state_dict().items():
            _same_distribution(f"block {layer} attn {k}", t, o.attn.state_dict()[k])


def test_attention_options_reach_every_attention_mixer():
    """qk-norm and output gates (version 3.5) act inside flex / linformer; reformer takes the gates."""
    torch.manual_seed(0)
    options = dict(SMALL, version=3.5, max_len=40)
    sdpa = ParticleTransformer(**options).eval()
    flex = ParticleTransformer(**dict(options, mixer="flex")).eval()
    flex.load_state_dict(sdpa.state_dict(), strict=True)
    x, v, mask = jets(F=7)
    with torch.no_grad():
        torch.testing.assert_close(flex(x, v, mask), sdpa(x, v, mask), atol=1e-5, rtol=0)
    lin = ParticleTransformer(**dict(options, mixer="linformer")).blocks[0].attn
    assert lin.q_norm is not None and lin.gate_proj.out_features == 32 and lin.in_proj.bias is None
    ref = ParticleTransformer(**dict(SMALL, mixer="reformer", max_len=40, version=3,
                                     block_params=dict(headwise_attn_output_gate=True))).blocks[0].attn
    assert ref.gate_proj.out_features == 4 and ref.q_norm is None
