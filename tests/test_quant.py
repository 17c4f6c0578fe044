"""partx.quant: int8 dynamic quantization keeps outputs close, shrinks Linear weights ~4x, runs through ParT."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from partx.perf import inputs, models
from partx.quant import linear_weight_bytes, model_size_bytes, quantizable_linears, quantize_int8

DATA_CONFIG = str(Path(__file__).resolve().parents[1] / "data/JetClass/JetClass_full.yaml")
REPO = Path(__file__).resolve().parents[1]


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


# --- the quantize() interface ---------------------------------------------------------------------------

def _tiny_part(data_config, length=32, seed=0):
    torch.manual_seed(seed)
    spec = models.resolve_model("ParT", overrides=dict(num_layers=2, embed_dims=[32, 32], pair_embed_dims=[16],
                                                       num_heads=4, num_cls_layers=1, for_inference=True))
    return models.build_model(spec, data_config, length)


@pytest.fixture(scope="module")
def tiny(data_config):
    model = _tiny_part(data_config)
    calib = [inputs.as_forward_args(inputs.synthetic_inputs(data_config, 32, 16, fill=0.6, seed=s), data_config.input_names)
             for s in range(3)]
    test = inputs.as_forward_args(inputs.synthetic_inputs(data_config, 32, 64, fill=0.6, seed=11), data_config.input_names)
    with torch.no_grad():
        ref = model(*test)
    return model, calib, test, ref


# Bounds for every int8 method on the tiny random model (softmax outputs, 10 classes): int8 rounds each weight /
# activation by at most half a step (1/255 of its range; 1/127 with torch's x86 reduce_range), and static
# scales also clip activations outside the calibrated range (3 x 16 calibration jets here). Through 2 blocks
# of 32-wide layers that moves logits by O(1e-2)-O(1e-1): observed max |dp| 0.02-0.06, mean < 3e-3. A wrong
# scale / zero-point or an un-dequantized tensor moves probabilities by O(0.1-1) on average.
PROB_MAX, PROB_MEAN = 0.15, 0.01


@pytest.mark.parametrize("method", ["dynamic", "static", "onnx-int8", "onnx-int8-dynamic"])
def test_int8_methods_close_to_fp32(tiny, data_config, method):
    from partx.quant import quantize

    model, calib, test, ref = tiny
    res = quantize(model, method, calib, input_names=list(data_config.input_names))
    with torch.no_grad():
        out = res.model(*test)
    assert out.shape == ref.shape and torch.isfinite(out).all()
    diff = (out - ref).abs()
    assert diff.max() < PROB_MAX and diff.mean() < PROB_MEAN, (diff.max(), diff.mean())
    assert diff.max() > 1e-6  # it did quantize something (fp32 would agree to ~1e-7)
    # the report names what became int8 and what stayed float; softmax/LayerNorm are never int8
    assert len(res.report.quantized) >= 10
    assert not any("norm" in n.lower() or "softmax" in n.lower() for n in res.report.quantized)
    assert 0 < res.report.size_bytes


def test_onnx_fp32_parity(tiny, data_config):
    """ONNX Runtime fp32 == torch within 1e-4 on jets of the export length and a shorter one."""
    from partx.quant import quantize

    model, calib, test, ref = tiny
    res = quantize(model, "onnx", calib, input_names=list(data_config.input_names))
    assert res.report.quantized == []
    with torch.no_grad():
        assert (res.model(*test) - ref).abs().max() <= 1e-4
        short = inputs.as_forward_args(inputs.synthetic_inputs(data_config, 20, 5, fill=0.7, seed=4), data_config.input_names)
        assert (res.model(*short) - model(*short)).abs().max() <= 1e-4


def test_quantized_model_saves_and_loads(tiny, tmp_path):
    """A dynamic int8 model round-trips through torch.save / load_state_dict onto a freshly quantized copy."""
    model, _, test, _ = tiny
    q = quantize_int8(model)
    torch.save(q.state_dict(), tmp_path / "q.pt")
    from weaver.utils.data.config import DataConfig

    other = _tiny_part(DataConfig.load(DATA_CONFIG, load_observers=False, load_reweight_info=False), seed=1)  # different fp32 weights: only the loaded state can make the outputs equal
    fresh = quantize_int8(other)
    with torch.no_grad():
        assert not torch.equal(fresh(*test), q(*test))
    fresh.load_state_dict(torch.load(tmp_path / "q.pt", weights_only=False))
    with torch.no_grad():
        assert torch.equal(fresh(*test), q(*test))
    assert (tmp_path / "q.pt").stat().st_size < model_size_bytes(model)


def test_onnx_int8_files_kept_in_workdir(tiny, data_config, tmp_path):
    from partx.quant import quantize
    from partx.quant.onnx_runtime import OrtModel

    model, calib, test, _ = tiny
    res = quantize(model, "onnx-int8", calib, input_names=list(data_config.input_names), workdir=tmp_path)
    path = tmp_path / "model_onnx-int8.onnx"
    assert path.is_file() and (tmp_path / "model_fp32.onnx").is_file()
    with torch.no_grad():
        assert torch.equal(OrtModel(path)(*test), res.model(*test))  # reloads to the same outputs


def test_class_attention_weight_slices_fold_into_weights(tiny, data_config, tmp_path):
    """The class block's packed W_q / W_kv (run-time Slices of in_proj) become weights: same outputs, now quantized."""
    import shutil

    from partx.quant import quantize
    from partx.quant.onnx_runtime import OrtModel, export_onnx, fold_weight_slices, weight_matmul_nodes

    model, calib, test, ref = tiny
    names = list(data_config.input_names)
    raw = export_onnx(model, calib[0], tmp_path / "raw.onnx", names)
    shutil.copy(raw, tmp_path / "folded.onnx")
    feeds = [{n: torch.cat([a] * k).numpy() for n, a in zip(names, calib[0])} for k in (1, 2)]
    folded = fold_weight_slices(tmp_path / "folded.onnx", feeds)
    assert len(folded) == 2 and all("cls_blocks.0/attn/Slice" in n for n in folded)  # W_q and W_kv of one block
    w_raw, _ = weight_matmul_nodes(raw)
    w_new, others = weight_matmul_nodes(tmp_path / "folded.onnx")
    assert set(w_new) - set(w_raw) == {"/mod/cls_blocks.0/attn/MatMul", "/mod/cls_blocks.0/attn/MatMul_1"}
    assert not any("cls_blocks" in n and n.endswith(("MatMul", "MatMul_1")) for n in others)
    with torch.no_grad():
        assert (OrtModel(tmp_path / "folded.onnx")(*test) - ref).abs().max() <= 1e-5  # exact rewrite
    assert fold_weight_slices(tmp_path / "folded.onnx", feeds) == []  # nothing left to fold
    res = quantize(model, "onnx-int8", calib, input_names=names)
    assert "/mod/cls_blocks.0/attn/MatMul" in res.report.quantized


class _MeanOverLength(nn.Module):
    """A model whose output depends on the padded length (mean over all N, padding included), as P-CNN's does."""

    def forward(self, points, features, vectors, mask):
        pooled = [(x * mask).mean(dim=2).sum(1, keepdim=True) for x in (points, vectors)]  # keep every input
        return (features * mask).mean(dim=2) + pooled[0] + pooled[1]


def test_ort_padding_trim_exact_and_only_where_safe(tiny, data_config, tmp_path):
    """ORT runs on the batch's real length (as weaver's ParT does in torch), equal to the padded graph; a graph
    whose output depends on the padded length, or a fixed-length one, stays untrimmed."""
    from partx.quant import quantize
    from partx.quant.onnx_runtime import OrtModel, _trim_to_last_real, export_onnx

    model, calib, test, ref = tiny
    names = list(data_config.input_names)
    res = quantize(model, "onnx", calib, input_names=names)
    assert res.model.trim_status.startswith("on") and any("padding trim on" in n for n in res.report.notes)
    # jets of 5-9 real particles of 32, and one with a hole (real particles need not come first)
    padded = inputs.as_forward_args(inputs.synthetic_inputs(data_config, 32, 6, fill=0.2, seed=5), names)
    padded[3][0, 0, 12] = 1.0  # jet 0 gets a real particle at position 12, after padding
    for a in padded[:3]:
        a[0, :, 12] = a[1, :, 0]
    arrays = [a.numpy() for a in padded]
    assert _trim_to_last_real(arrays, 3)[0].shape[2] == 13  # cut after the last real particle of any jet
    with torch.no_grad():
        trimmed = res.model(*padded)
        res.model.trim_mask = None
        untrimmed = res.model(*padded)
        expected = model(*padded)
    assert (trimmed - untrimmed).abs().max() <= 1e-5 and (trimmed - expected).abs().max() <= 1e-4

    mean_path = export_onnx(_MeanOverLength(), calib[0], tmp_path / "mean.onnx", names)
    mean_model = OrtModel(mean_path)
    assert not mean_model.enable_trim(calib[0]) and "depends on the padded length" in mean_model.trim_status
    fixed = OrtModel(export_onnx(model, calib[0], tmp_path / "fixed.onnx", names, dynamic_length=False))
    assert not fixed.enable_trim(calib[0]) and "fixed" in fixed.trim_status


def test_length_buckets_same_outputs_shorter_calls(tiny, data_config):
    """Length-sorted sub-batches give the whole batch's outputs in input order, each call cut at its own longest jet."""
    from partx.quant import quantize
    from partx.quant.length_buckets import LengthBuckets, mask_index, real_lengths

    model, calib, _, _ = tiny
    names = list(data_config.input_names)
    assert mask_index(names) == 3
    # 24 jets of 1-32 real particles, shuffled so that the sort matters
    args = inputs.as_forward_args(inputs.synthetic_inputs(data_config, 32, 24, fill=0.5, seed=9), names)
    perm = torch.randperm(24, generator=torch.Generator().manual_seed(0))
    args = [a[perm] for a in args]
    args[3][5, :, 1:] = 0.0  # a one-particle jet
    for a in args[:3]:
        a[5, :, 1:] = 0.0
    seen = []

    class Spy(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *xs):
            seen.append(int(real_lengths(xs[3]).max()))
            return self.inner(*xs)

    ort = quantize(model, "onnx", calib, input_names=names).model
    for runner, tol in ((model, 1e-5), (ort, 1e-5)):
        seen.clear()
        with torch.no_grad():
            whole = runner(*args)
            bucketed = LengthBuckets(Spy(runner), 3, size=8)(*args)
        assert bucketed.shape == whole.shape and (bucketed - whole).abs().max() <= tol
        lengths = real_lengths(args[3]).sort().values
        assert seen == [int(lengths[7]), int(lengths[15]), int(lengths[23])]  # each group cut at its own longest jet
    with torch.no_grad():
        assert torch.equal(LengthBuckets(model, 3, size=64)(*args), model(*args))  # one group: unchanged
    with pytest.raises(ValueError, match="particle mask"):
        LengthBuckets(model, 0, size=4)(args[0][:, 0], *args[1:])
    with pytest.raises(ValueError, match=">= 1 jet"):
        LengthBuckets(model, 3, size=0)
    with pytest.raises(ValueError, match="no input named"):
        mask_index(["pf_points", "pf_features"])


def test_torch_rows_run_as_weaver_evaluates(data_config):
    """analysis/quantize.py's torch rows: the model weaver evaluates (trimmed, sparse U) + softmax, not the export
    build (for_inference: untrimmed, dense U, a slower torch); same probabilities."""
    import dataclasses

    torch.manual_seed(0)
    spec = models.resolve_model("ParT", overrides=dict(num_layers=1, embed_dims=[16, 16], pair_embed_dims=[8],
                                                       num_heads=2, num_cls_layers=1))
    raw = models.build_model(spec, data_config, 32)
    export = models.build_model(dataclasses.replace(spec, overrides=dict(spec.overrides, for_inference=True)), data_config, 32)
    export.load_state_dict(raw.state_dict())
    assert raw.mod.trimmer.enabled and raw.mod.pair_embed.sparse_eval[1]
    assert not export.mod.trimmer.enabled and not export.mod.pair_embed.sparse_eval[1]
    x = inputs.as_forward_args(inputs.synthetic_inputs(data_config, 32, 16, fill=0.4, seed=2), data_config.input_names)
    with torch.no_grad():
        assert (models.Probabilities(raw)(*x) - export(*x)).abs().max() <= 1e-5


def test_u8s8_saturation_guard_follows_the_cpu_flags():
    """x86 without VNNI -> 7-bit weights (ORT's U8S8 int16 saturation); VNNI / AMX or ARM -> full range."""
    from partx.quant.onnx_runtime import u8s8_saturates

    assert u8s8_saturates(["fpu", "avx2", "fma"], "x86_64")
    assert u8s8_saturates([], "AMD64")                       # unknown flags on x86: the safe choice
    assert not u8s8_saturates(["avx2", "avx512f", "avx512_vnni"], "x86_64")
    assert not u8s8_saturates(["avx2", "avx_vnni"], "x86_64")
    assert not u8s8_saturates(["avx2"], "aarch64")


def test_bad_inputs(tiny):
    from partx.quant import QuantUnavailable, quantize

    model, calib, _, _ = tiny
    with pytest.raises(ValueError, match="unknown quantization method"):
        quantize(model, "int4")
    with pytest.raises(ValueError, match="needs calib_loader"):
        quantize(model, "static")
    with pytest.raises(ValueError, match="no batch"):
        quantize(model, "onnx-int8", [])
    if not torch.cuda.is_available():
        with pytest.raises(QuantUnavailable, match="CUDA"):
            quantize(model, "torchao")


# --- analysis/quantize.py ---------------------------------------------------------------------------------

TINY_OPTS = ["-o", "num_layers=1", "-o", "embed_dims=[16,16]", "-o", "pair_embed_dims=[8]", "-o", "num_heads=2",
             "-o", "num_cls_layers=1"]


def _analysis():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "analysis/quantize.py"
    spec = importlib.util.spec_from_file_location("analysis_quantize", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, data_config):
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from jetclass_fixture import write_dataset

    root = tmp_path_factory.mktemp("quant_data")
    write_dataset(root, jets_per_file=6)
    torch.manual_seed(0)
    spec = models.resolve_model("ParT", overrides=dict(num_layers=1, embed_dims=[16, 16], pair_embed_dims=[8],
                                                       num_heads=2, num_cls_layers=1))
    ck = root / "net.pt"
    torch.save(models.build_model(spec, data_config, 128).state_dict(), ck)
    return root, ck


@pytest.mark.slow  # ~20 s CPU: weaver reads 120 jets twice, 3 methods exported / timed
def test_analysis_end_to_end(tiny_run, tmp_path, capsys):
    import json

    root, ck = tiny_run
    out = tmp_path / "out"
    rc = _analysis().main(["ParT", str(ck), str(root / "Pythia/test_20M/*.root"), "--calib-data",
                           str(root / "Pythia/val_5M/*.root"), *TINY_OPTS, "--methods", "dynamic,onnx,onnx-int8",
                           "--bench-batch", "8", "--calib-jets", "16", "--max-seconds", "0.1", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    result = json.loads((out / "quantize.json").read_text())
    rows = {r["method"]: r for r in result["rows"]}
    assert list(rows) == ["fp32", "dynamic", "onnx", "onnx-int8"]
    assert rows["fp32"]["n_jets"] == 60 and rows["fp32"]["flips"] == 0 and rows["fp32"]["speedup"] == 1
    assert rows["onnx"]["max_dlogit"] < 1e-3  # fp32 ONNX export: same model
    assert rows["dynamic"]["layers_int8"] > 0 and rows["dynamic"]["max_dlogit"] > 0
    assert (out / "quantize.md").read_text().count("| onnx-int8 |") == 3  # main, rejection and ORT-ratio tables
    assert (out / "quantize.png").stat().st_size > 0


@pytest.mark.parametrize("change,message", [
    (dict(ck="missing.pt"), "checkpoint not found"),
    (dict(methods="int4"), "unknown method"),
    (dict(data="nothing/*.root"), "DATA: no file matches"),
    (dict(ck="corrupt"), "cannot be read"),
])
def test_analysis_bad_inputs(tiny_run, tmp_path, capsys, change, message):
    root, ck = tiny_run
    if change.get("ck") == "corrupt":
        ck = tmp_path / "corrupt.pt"
        ck.write_bytes(b"garbage")
    elif "ck" in change:
        ck = tmp_path / change["ck"]
    data = str(root / "Pythia/test_20M/*.root") if "data" not in change else str(tmp_path / change["data"])
    rc = _analysis().main(["ParT", str(ck), data, *TINY_OPTS, "--methods", change.get("methods", "dynamic"),
                           "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("ERROR:") and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o" / "quantize.json").exists()


def test_analysis_takes_a_model_card(tiny_run, tmp_path, capsys):
    """--checkpoint models/<name>: network, options, weights and data config from the card; DATA only."""
    import json

    root, _ = tiny_run
    out = tmp_path / "out"
    rc = _analysis().main(["--checkpoint", "PFN_gen-small_full", str(root / "Pythia/test_20M/*.root"), "--methods", "dynamic",
                           "--bench-batch", "8", "--max-seconds", "0.1", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    result = json.loads((out / "quantize.json").read_text())
    assert result["checkpoint"] == "PFN_gen-small_full" and [r["method"] for r in result["rows"]] == ["fp32", "dynamic"]
    # a card replaces the options: giving both is one line
    rc = _analysis().main(["--checkpoint", "PFN_gen-small_full", str(root / "Pythia/test_20M/*.root"), "-o", "num_layers=2",
                           "--out", str(tmp_path / "o2")])
    err = capsys.readouterr().err
    assert rc == 2 and "model card" in err and len(err.strip().splitlines()) == 1, err
    rc = _analysis().main(["ParT", str(root / "Pythia/test_20M/*.root"), "--out", str(tmp_path / "o3")])  # no data after it
    err = capsys.readouterr().err
    assert rc == 2 and "MODEL CHECKPOINT DATA" in err, err


@pytest.mark.parametrize("argv,message", [(["Nope"], "unknown model 'Nope'"),
                                          (["ParT", "--batch-size", "0"], "not a positive integer"),
                                          (["ParT", "--checkpoint", "/no/such.pt"], "not found: /no/such.pt")])
def test_ort_op_profile_bad_inputs_one_line(argv, message, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("ort_op_profile", REPO / "scripts" / "ort_op_profile.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    try:
        rc = mod.main(argv)
    except SystemExit as stop:  # argparse's own errors exit from inside parse_args
        rc = stop.code
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err and err.count("ERROR") == 1
