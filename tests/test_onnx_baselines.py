"""The baselines (ParticleNet, PFN, P-CNN) export through weaver's --export-onnx, and ONNX Runtime gives
PyTorch's outputs on zero-padded jets of two lengths (the ParT variants: tests/test_part_variants.py)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

REPO = Path(__file__).resolve().parents[1]
YAML = REPO / "data/JetClass/JetClass_kinpid.yaml"
NETWORKS = {"PN": "ParticleNet", "PFN": "PFN", "PCNN": "PCNN"}


def _network(stem: str):
    spec = importlib.util.spec_from_file_location(f"onnx_net_{stem}", REPO / f"networks/example_{stem}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _jets(n: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    """Three jets of n slots with n, n/2 and 7 real particles, zeros in the padding (as weaver pads)."""
    mask = (torch.arange(n)[None, None, :] < torch.tensor([n, n // 2, 7])[:, None, None]).float()
    p3 = torch.randn(3, 3, n, generator=g) * 10
    return {"pf_points": torch.randn(3, 2, n, generator=g) * 0.3 * mask,
            "pf_features": torch.randn(3, 13, n, generator=g) * mask,
            "pf_vectors": torch.cat([p3, p3.norm(dim=1, keepdim=True) + 1], 1) * mask, "pf_mask": mask}


@pytest.mark.parametrize("model", list(NETWORKS))
def test_baseline_onnx_matches_torch(model, tmp_path):
    from weaver.utils.data.config import DataConfig

    dc = DataConfig.load(str(YAML), load_observers=False, load_reweight_info=False)
    torch.manual_seed(0)
    net, info = _network(NETWORKS[model]).get_model(dc, for_inference=True)
    net.eval()
    ckpt = tmp_path / "net.pt"
    torch.save(net.state_dict(), ckpt)
    onnx_path = tmp_path / "model.onnx"
    cmd = [sys.executable, "-m", "weaver.train", "--data-config", str(YAML),
           "--network-config", str(REPO / f"networks/example_{NETWORKS[model]}.py"),
           "--model-prefix", str(ckpt), "--export-onnx", str(onnx_path)]
    res = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and onnx_path.is_file(), res.stderr[-3000:]

    sess = ort.InferenceSession(str(onnx_path))
    assert [i.name for i in sess.get_inputs()] == info["input_names"]  # every weaver input kept
    g = torch.Generator().manual_seed(1)
    for n in (128, 64):
        inputs = _jets(n, g)
        with torch.no_grad():
            ref = net(*[inputs[k] for k in info["input_names"]]).numpy()
        out = sess.run(None, {k: inputs[k].numpy() for k in info["input_names"]})[0]
        assert np.allclose(ref.sum(1), 1, atol=1e-5)  # softmax scores, as weaver's predict writes them
        np.testing.assert_allclose(out, ref, atol=1e-4)
