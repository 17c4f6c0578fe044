"""partx.perf: FLOP counting (incl. the CPU SDPA pitfall), the benchmark harness and CLI, the profiler.

No timing assertions: latencies on a shared CPU are noise; only structure and counts are checked.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from partx.perf import flops, harness, inputs, memory, models, report, timing

REPO = Path(__file__).resolve().parents[1]
DATA_CONFIG = str(REPO / "data/JetClass/JetClass_full.yaml")
sys.path.insert(0, str(REPO / "analysis"))

FAST_TIMING = ["--warmup", "0", "--min-run-time", "0", "--max-seconds", "0.02"]
TINY_PART = ["-o", "ParT:num_layers=1", "-o", "ParT:embed_dims=[16,16]", "-o", "ParT:pair_embed_dims=[8]",
             "-o", "ParT:num_heads=2", "-o", "ParT:num_cls_layers=1"]


@pytest.fixture(scope="module")
def data_config():
    from weaver.utils.data.config import DataConfig

    return DataConfig.load(DATA_CONFIG, load_observers=False, load_reweight_info=False)


class TinyAttention(nn.Module):
    def __init__(self, dim=32, heads=4):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.out(y.transpose(1, 2).reshape(B, N, C))


def test_flops_match_analytic_and_math_backend_catches_sdpa():
    B, N, C, H = 2, 24, 32, 4
    model = TinyAttention(C, H).eval()
    x = torch.randn(B, N, C)
    linear = flops.linear_flops(B * N, C, 3 * C) + flops.linear_flops(B * N, C, C)
    attn = flops.attention_flops(B, H, N, N, C // H)
    assert flops.count_flops(model, (x,)) == linear + attn
    # the pitfall: without the MATH backend the fused CPU SDPA kernel is not counted at all
    naive = flops.count_flops(model, (x,), math_backend=False)
    assert naive == linear, "FlopCounterMode now counts CPU SDPA: update docs/benchmarks.md and flops.py"


def test_part_paper_macs(data_config):
    model = models.build_model(models.resolve_model("ParT"), data_config, 128)
    assert models.count_params(model) == 2_143_486
    x = inputs.synthetic_inputs(data_config, 128, 1)
    macs = flops.count_flops(model, inputs.as_forward_args(x, data_config.input_names)) / 2
    assert abs(macs - 335e6) / 335e6 < 0.10, macs


def test_synthetic_inputs_fill(data_config):
    x = inputs.synthetic_inputs(data_config, 50, 16, fill=0.4, seed=1)
    assert set(x) == set(data_config.input_names)
    assert x["pf_features"].shape == (16, 17, 50) and x["pf_vectors"].shape == (16, 4, 50)
    mask = x["pf_mask"][:, 0]
    n_real = mask.sum(1)
    assert 0.2 * 50 < n_real.mean() < 0.6 * 50
    # real first, padding after; padded 4-vectors zero
    assert torch.all(mask[:, :-1] >= mask[:, 1:])
    assert torch.all(x["pf_vectors"][..., :][mask[:, None, :].expand(-1, 4, -1) == 0] == 0)
    full = inputs.synthetic_inputs(data_config, 50, 4)
    assert torch.all(full["pf_mask"] == 1)
    assert torch.isfinite(full["pf_vectors"]).all()
    with pytest.raises(ValueError):
        inputs.parse_fill("1.5")


def test_file_inputs_override_length(tmp_path):
    from jetclass_fixture import write_dataset

    root = write_dataset(tmp_path, jets_per_file=6)
    files = sorted(str(p) for p in Path(root).rglob("*.root"))
    assert files
    x = inputs.file_inputs(DATA_CONFIG, files[0], 64, 8)
    assert x["pf_features"].shape == (8, 17, 64)
    assert x["pf_mask"].sum() > 0


def test_cpu_peak_memory_trace():
    m = nn.Sequential(nn.Linear(256, 1024), nn.GELU(), nn.Linear(1024, 256)).eval()
    x = torch.randn(512, 256)
    with torch.no_grad():
        peak = memory.peak_memory_bytes(lambda: m(x))
    # two 512x1024 fp32 activations live at once (Linear output and GELU output): 4 MiB
    assert 3.5 * 2**20 <= peak <= 6 * 2**20, peak


def test_crossover_and_slopes_from_rows():
    rows = []
    for n in (128, 256, 512, 1024):
        rows.append(dict(model="B", N=n, batch=1, dtype="fp32", latency_ms=1e-4 * n**2, status="ok"))
        rows.append(dict(model="L", N=n, batch=1, dtype="fp32", latency_ms=0.05 * n, status="ok"))
        rows.append(dict(model="S", N=n, batch=1, dtype="fp32", latency_ms=10 * n, status="ok"))
    harness.add_ratios(rows, "B")
    slopes = {s["model"]: s["latency_slope"] for s in harness.fit_scaling(rows)}
    assert slopes["B"] == pytest.approx(2.0) and slopes["L"] == pytest.approx(1.0)
    cross = {c["model"]: c for c in harness.find_crossovers(rows, "B")}
    assert cross["L"]["crossover_fit"] == pytest.approx(500.0, rel=1e-6)  # 1e-4 n^2 = 0.05 n
    assert cross["L"]["crossover_interp"] == pytest.approx(500.0, rel=1e-6)
    assert "none in range" in cross["S"]["verdict"]


def test_benchmark_end_to_end(tmp_path, capsys):
    import benchmark

    out = tmp_path / "bench"
    rc = benchmark.main(["--models", "ParT,PFN", *TINY_PART, "--lengths", "16,32", "--batch-sizes", "2",
                         "--dtypes", "fp32,int8,onnx", *FAST_TIMING, "--threads", "1",
                         "--no-progress", "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    for ext in ("csv", "json", "md"):
        assert (out / f"benchmark.{ext}").is_file() and str(out / f"benchmark.{ext}") in printed
    pngs = list(out.glob("*.png"))
    assert pngs and all(p.stat().st_size > 1000 for p in pngs)
    res = json.loads((out / "benchmark.json").read_text())
    rows = res["rows"]
    assert len(rows) == 2 * 2 * 3 and all(r["status"] == "ok" for r in rows), [r["status"] for r in rows]
    # ORT rows run on the real length, as torch's ParT does (partx.quant OrtModel.enable_trim), and say so
    assert all(r["ort_trim"].startswith("on") for r in rows if r["dtype"] == "onnx")
    assert not any("ort_trim" in r for r in rows if r["dtype"] != "onnx")
    part = [r for r in rows if r["model"] == "ParT" and r["dtype"] == "fp32"]
    assert all(r["macs"] > 0 and r["latency_ratio"] == 1.0 for r in part)
    assert all(r["latency_ms"] > 0 and r["repeats"] >= 1 and r["calls_per_repeat"] >= 1
               and r["latency_q25_ms"] <= r["latency_ms"] <= r["latency_q75_ms"] for r in rows)
    assert all(r["peak_mem_mb"] >= 0 for r in rows if r["dtype"] != "onnx")  # ORT's allocator is not traced
    assert {c["model"] for c in res["crossovers"]} == {"PFN"}
    md = (out / "benchmark.md").read_text()
    assert "| PFN " in md and "torch.utils.benchmark" in md and "ONNX Runtime padding trim" in md
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench"]  # the staging folder is gone


@pytest.mark.parametrize("argv, message", [
    (["--models", "NoSuchModel"], "unknown model"),
    (["--models", "PFN", "--lengths", "0"], ">= 1"),
    (["--models", "PFN", "--batch-sizes", "0"], ">= 1"),
    (["--models", "PFN", "--dtypes", "fp8"], "unknown dtype"),
    (["--models", "PFN", "--checkpoint", "PFN=/nonexistent/model.pt"], "checkpoint"),
])
def test_benchmark_bad_arguments(argv, message, capsys):
    import benchmark

    assert exit_code(benchmark.main, [*argv, "--out", "/nonexistent-never-written"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_profiler_writes_trace_and_breakdown(tmp_path, capsys):
    import profile_model

    out = tmp_path / "prof"
    rc = profile_model.main(["--model", "ParT", *[a for a in TINY_PART], "--length", "16", "--batch-size", "2",
                             "--peak-flops", "1e11", "--peak-bw", "1e10", "--threads", "1", "--out", str(out)])
    assert rc == 0
    trace = json.loads((out / "trace.json").read_text())
    assert trace.get("traceEvents")
    summary = json.loads((out / "profile.json").read_text())
    assert summary["ops"] and summary["modules"]
    assert all(op["bound"] in ("memory-bound", "compute-bound", "n/a") for op in summary["ops"])
    assert any(op["flops"] > 0 for op in summary["ops"])
    assert (out / "time_breakdown.png").stat().st_size > 1000
    assert math.isclose(summary["device"]["balance_flop_per_byte"], 10.0)


# ---------------------------------------------------------------- timing (torch.utils.benchmark), tables

def test_measure_counts_calls_and_uses_the_callers_threads():
    calls, threads_seen = [], set()

    def fn():
        calls.append(1)
        threads_seen.add(torch.get_num_threads())

    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        stats = timing.measure(fn, warmup=3, min_run_time=0.0, max_run_time=0.05)
    finally:
        torch.set_num_threads(old)
    # Timer's default num_threads is 1: measure must pass the caller's setting
    assert threads_seen == {2}
    assert stats.warmup == 3 and stats.repeats >= 1 and stats.calls_per_repeat >= 1
    assert len(calls) >= 3 + stats.repeats * stats.calls_per_repeat
    assert stats.min_s <= stats.q25_s <= stats.median_s <= stats.q75_s and stats.iqr_s >= 0


def test_measure_stops_at_max_run_time():
    import time

    stats = timing.measure(lambda: time.sleep(0.03), warmup=0, min_run_time=1.0, max_run_time=0.01)
    assert stats.repeats == 1 and stats.calls_per_repeat == 1  # one block, then the budget is spent


def test_markdown_table_is_github_pipes_and_keeps_cells():
    md = report.markdown_table(["model", "ratio", "note"], [["ParT", "0.30", "a|b"], ["PFN", 12, None]])
    lines = md.splitlines()
    assert len(lines) == 4 and all(line.startswith("|") and line.endswith("|") for line in lines)
    assert set(lines[1]) <= {"|", "-"}
    assert [c.strip() for c in lines[2].strip("|").split(" | ")] == ["ParT", "0.30", "a\\|b"]  # no number re-formatting
    assert lines[3].split("|")[1].strip() == "PFN"


def test_mamba_scan_flops_count(data_config):
    model = models.build_model(models.resolve_model("MambaParT"), data_config, 128)
    blocks = [m for m in model.modules() if hasattr(m, "d_inner") and hasattr(m, "d_state")]
    assert len(blocks) == 16 and {(b.d_inner, b.d_state) for b in blocks} == {(128, 16)}  # 8 layers x 2 directions
    # 6 FLOPs per token, channel and state (flops.scan_flops_estimate): 25.2 MFLOP = 12.6 M MACs per jet,
    # the figure docs/benchmarks.md quotes
    assert flops.scan_flops_estimate(model, 1, 128) == 16 * 128 * 6 * 128 * 16 == 25_165_824


# ---------------------------------------------------------------- failures publish nothing

def exit_code(main, argv) -> int:
    """A CLI's exit status whether it returns it (partx.cli.run_main) or argparse exits."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


def _good_out(tmp_path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    for name in ("benchmark.csv", "benchmark.json", "benchmark.md", "trace.json", "profile.md"):
        (out / name).write_text(f"good {name}\n")
    return out


def _tree(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else None for p in sorted(root.rglob("*"))}


def _nothing_measured(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("measured although the run should have stopped first")

    monkeypatch.setattr(timing, "measure", boom)


@pytest.fixture(scope="module")
def bad_checkpoints(tmp_path_factory):
    d = tmp_path_factory.mktemp("ck")
    (d / "corrupt.pt").write_bytes(b"PK\x03\x04 half a zip file")
    torch.save({"not_a_part_weight": torch.zeros(3)}, d / "wrong.pt")
    return d


@pytest.mark.parametrize("which, message", [("corrupt.pt", "cannot be read"), ("wrong.pt", "does not load into 'ParT'")])
def test_benchmark_bad_checkpoint_exits_2_and_keeps_out(tmp_path, capsys, monkeypatch, bad_checkpoints, which, message):
    import benchmark

    out = _good_out(tmp_path)
    before = _tree(tmp_path)
    _nothing_measured(monkeypatch)
    ck = bad_checkpoints / which
    assert exit_code(benchmark.main, ["--models", "ParT", "--checkpoint", f"ParT={ck}", "--no-progress", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(ck) in err and message in err and "Traceback" not in err
    assert _tree(tmp_path) == before


def test_benchmark_interrupt_and_unwritable_out_keep_out(tmp_path, capsys, monkeypatch):
    import benchmark

    out = _good_out(tmp_path)
    before = _tree(tmp_path)

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(harness, "_measure", interrupt)
    args = ["--models", "PFN", "--lengths", "8", "--no-memory", "--no-progress", *FAST_TIMING]
    assert benchmark.main([*args, "--out", str(out)]) == 130
    err = capsys.readouterr().err.strip()
    assert "interrupted" in err and len(err.splitlines()) == 1
    assert _tree(tmp_path) == before
    # a file where a folder is needed
    assert exit_code(benchmark.main, [*args, "--out", str(out / "benchmark.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a directory" in err and len(err.splitlines()) == 1
    assert _tree(tmp_path) == before


def test_profile_bad_checkpoint_and_interrupt_keep_out(tmp_path, capsys, monkeypatch, bad_checkpoints):
    import profile_model

    from partx.perf import profiler

    out = _good_out(tmp_path)
    before = _tree(tmp_path)
    base = ["--model", "ParT", *TINY_PART, "--length", "8", "--batch-size", "2", "--peak-flops", "1e11",
            "--peak-bw", "1e10", "--out", str(out)]
    assert exit_code(profile_model.main, [*base, "--checkpoint", str(bad_checkpoints / "corrupt.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "corrupt.pt" in err
    assert _tree(tmp_path) == before

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(profiler, "profile_model", interrupt)
    assert profile_model.main(base) == 130
    assert "interrupted" in capsys.readouterr().err
    assert _tree(tmp_path) == before  # no new trace.json beside the old results


# ---------------------------------------------------------------- CUDA (scripts/gpu_check.sh runs these)

@pytest.mark.cuda
def test_cuda_timing_and_memory():
    a = torch.randn(2048, 2048, device="cuda")
    stats = timing.measure(lambda: a @ a, warmup=2, max_run_time=0.5)
    # 2 * 2048^3 FLOP in less than 2 s would be < 10 GFLOP/s: only a missing sync could make it look
    # implausibly fast (> 2 PFLOP/s, beyond any current GPU)
    assert 2 * 2048**3 / stats.median_s < 2e15
    peak = memory.peak_memory_bytes(lambda: a @ a, device="cuda")
    assert peak >= 2048 * 2048 * 4


@pytest.mark.cuda
def test_cuda_benchmark_and_profile_end_to_end(tmp_path, capsys):
    import benchmark
    import profile_model

    out = tmp_path / "bench"
    rc = benchmark.main(["--models", "ParT,PFN", *TINY_PART, "--lengths", "16,32", "--batch-sizes", "2",
                         "--dtypes", "fp32,bf16", *FAST_TIMING, "--device", "cuda", "--no-progress", "--out", str(out)])
    assert rc == 0
    rows = json.loads((out / "benchmark.json").read_text())["rows"]
    assert len(rows) == 2 * 2 * 3 and all(r["status"] == "ok" for r in rows), [r["status"] for r in rows]
    # ORT rows run on the real length, as torch's ParT does (partx.quant OrtModel.enable_trim), and say so
    assert all(r["ort_trim"].startswith("on") for r in rows if r["dtype"] == "onnx")
    assert not any("ort_trim" in r for r in rows if r["dtype"] != "onnx")
    assert "gpu" in json.loads((out / "benchmark.json").read_text())["machine"]
    rc = profile_model.main(["--model", "ParT", *TINY_PART, "--length", "16", "--batch-size", "2", "--device", "cuda",
                             "--out", str(tmp_path / "prof")])
    assert rc == 0 and json.loads((tmp_path / "prof" / "trace.json").read_text()).get("traceEvents")


def test_benchmark_model_that_cannot_be_built_exits_2_before_measuring(tmp_path, capsys, monkeypatch):
    import benchmark

    out = _good_out(tmp_path)
    before = _tree(tmp_path)
    _nothing_measured(monkeypatch)
    argv = ["--models", "ParT", "-o", "ParT:num_layers=1", "-o", "ParT:embed_dims=[16,16]", "-o", "ParT:num_heads=3",
            "--lengths", "8", "--no-progress", "--out", str(out)]
    assert exit_code(benchmark.main, argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'ParT' cannot be built at N=8" in err and "Traceback" not in err
    assert _tree(tmp_path) == before
