"""scripts/gpu_check.sh and gpu_wheels.sh: their CPU-side logic (syntax, plan, budget, arch patch, marker)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import sm_only  # noqa: E402


def run(script: str, env: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    full = dict(os.environ, DRY_RUN="1", GPU_CHECK_DIR=str(tmp_path / "res"), WHEELS_DIR=str(tmp_path / "whl"), **env)
    full.pop("OUT", None)
    return subprocess.run(["bash", str(REPO / "scripts" / script)], env=full, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("script", ["gpu_check.sh", "gpu_wheels.sh", "bench.sh"])
def test_scripts_parse(script):
    subprocess.run(["bash", "-n", str(REPO / "scripts" / script)], check=True)


def test_gpu_check_dry_run_plan(tmp_path):
    (tmp_path / "whl").mkdir()
    for name in ("mamba_ssm-2.3.2.post1.tar.gz", "causal_conv1d-1.7.0.tar.gz", "uproot-5.7.7-py3-none-any.whl"):
        (tmp_path / "whl" / name).write_bytes(b"")
    p = run("gpu_check.sh", {}, tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    out = p.stdout
    assert "TORCH_CUDA_ARCH_LIST=9.0" in out and "MAX_JOBS=16" in out
    assert "pytest -m cuda" in out and "--junitxml" in out
    assert "--device cuda" in out and "--models ParT,ParTFlash,MambaParT" in out and "--lengths 128,1024" in out
    assert "--dtypes fp32,bf16" in out
    steps = [line.split("\t")[0] for line in (tmp_path / "res" / "summary.tsv").read_text().splitlines()[1:]]
    assert steps == ["env", "wheels", "build mamba_ssm-2.3.2.post1", "build causal_conv1d-1.7.0", "pytest-cuda",
                     "pytest-cuda-mamba", "benchmark", "benchmark-rows"]
    assert (tmp_path / "res" / "summary.txt").is_file()


@pytest.mark.parametrize("env, reason", [({"SKIP_BUILD": "1"}, "SKIP_BUILD=1"), ({"BUDGET_S": "200"}, "no time")])
def test_gpu_check_skips_the_build_and_says_why(tmp_path, env, reason):
    (tmp_path / "whl").mkdir()
    (tmp_path / "whl" / "mamba_ssm-2.3.2.post1.tar.gz").write_bytes(b"")
    p = run("gpu_check.sh", env, tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "build: skipped" in p.stdout
    assert f"build\tskipped\t0\t{reason}" in (tmp_path / "res" / "summary.tsv").read_text()


def test_gpu_wheels_dry_run(tmp_path):
    p = run("gpu_wheels.sh", {}, tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = [line for line in p.stdout.splitlines() if line.startswith("+ ")]
    wheels = [line for line in lines if "--only-binary=:all:" in line]
    assert wheels and all("--python-version 3.12" in line and "--no-deps" in line for line in wheels)
    assert any(line.endswith(" weaver-core==0.5.3") for line in wheels)  # version from constraints.txt
    for pkg in ("uproot==", "awkward==", "mambapy==", "linformer==", "reformer-pytorch==", "mplhep=="):
        assert any(f" {pkg}" in line for line in wheels), pkg
    assert any("--no-binary=:all:" in line and "mamba-ssm==" in line for line in lines)
    assert any("--no-binary=:all:" in line and "causal-conv1d==" in line for line in lines)
    assert "summary" in p.stdout


SETUP = '''cc_flag = []
if True:
    cc_flag.append("-gencode")
    cc_flag.append("arch=compute_80,code=sm_80")
    if version >= 11.8:
        cc_flag.append("-gencode")
        cc_flag.append("arch=compute_90,code=sm_90")
    if version >= 12.8:
        cc_flag.append("-gencode")
        cc_flag.append("arch=compute_100,code=sm_100")
'''


def test_sm_only_keeps_one_architecture(tmp_path):
    setup = tmp_path / "setup.py"
    setup.write_text(SETUP)
    assert sm_only.main([str(setup), "90"]) == 0
    ns = {"version": 13.0}
    exec(setup.read_text(), ns)  # still valid Python: emptied if-blocks hold `pass`
    assert ns["cc_flag"] == ["-gencode", "arch=compute_90,code=sm_90"]
    assert sm_only.main([str(setup), "90"]) == 0  # idempotent
    setup.write_text(SETUP.replace("compute_90,code=sm_90", "compute_89,code=sm_89"))
    before = setup.read_text()
    assert sm_only.main([str(setup), "90"]) == 1 and setup.read_text() == before  # refuses, untouched


def test_cuda_marker_selects_every_cuda_test():
    p = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "cuda", "-p", "no:cacheprovider",
                        "tests/test_mamba.py", "tests/test_flex_attention.py", "tests/test_perf.py"],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    ids = [line for line in p.stdout.splitlines() if "::" in line]
    names = {i.split("::")[-1].split("[")[0] for i in ids}
    assert {"test_cuda_selective_scan_equals_reference", "test_cuda_ssd_scan_equals_reference",
            "test_cuda_mamba_ssm_block_equals_ours", "test_cuda_timing_and_memory",
            "test_cuda_benchmark_and_profile_end_to_end"} <= names, p.stdout + p.stderr
    assert sum("test_flex_attention.py" in i for i in ids) >= 2
