"""Each efficient ParT variant trains through train_JetClass.sh and exports to ONNX via weaver."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from partx import registry
from partx.metrics.predictions import load_weaver_predictions

sys.path.insert(0, str(Path(__file__).parent))
import jetclass_fixture  # noqa: E402
from test_jetclass_pipeline import REPO, load_network, run_script  # noqa: E402

VARIANTS = ["ParT", "ParTFlash", "LinformerParT", "ReformerParT", "LocalParT", "MambaParT", "HybridParT", "ParT-plain"]
#: ONNX graph unrolled over the data config's 128 particles (a Mamba scan): fixed length, documented
FIXED_LENGTH = ("MambaParT", "HybridParT")
TINY = {"num_layers": 1, "embed_dims": [32, 32], "num_heads": 4, "num_cls_layers": 1}


def tiny(model: str) -> dict:
    """Tiny options; those the registry fixes for the variant (ParT-plain's U off) stay as registered."""
    opts = dict(TINY)
    if model != "MambaParT":
        opts["pair_embed_dims"] = [16]
    if model == "HybridParT":
        opts["num_layers"] = 2  # a Mamba block, then the attention-with-U block (num_layers // 2)
    return {k: v for k, v in opts.items() if k not in registry.get(model).options}


def tiny_opts(model: str) -> list[str]:
    return [a for k, v in tiny(model).items() for a in ("-o", k, repr(v).replace(" ", ""))]


@pytest.fixture(scope="module")
def datadir(tmp_path_factory) -> Path:
    return jetclass_fixture.write_dataset(tmp_path_factory.mktemp("jetclass_variants"), jets_per_file=16)


@pytest.mark.slow
@pytest.mark.parametrize("model", VARIANTS)
def test_variant_trains_predicts_and_exports(model, datadir, tmp_path):
    prefix = tmp_path / "net"
    res = run_script([model, "kinpid", *tiny_opts(model), "--model-prefix", str(prefix)], datadir)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    scores, _, _ = load_weaver_predictions([str(tmp_path / "predict_output/pred_*.root")])
    assert scores.shape == (160, 10) and np.allclose(scores.sum(1), 1, atol=1e-5)

    # ONNX through weaver's own exporter, then onnxruntime == torch on random jets of two lengths
    yaml = REPO / "data/JetClass/JetClass_kinpid.yaml"
    onnx_path = tmp_path / "model.onnx"
    entry = registry.get(model)
    cmd = [sys.executable, "-m", "weaver.train", "--data-config", str(yaml),
           "--network-config", str(entry.network_path), *entry.weaver_options(), *tiny_opts(model),
           "--model-prefix", f"{prefix}_best_epoch_state.pt", "--export-onnx", str(onnx_path)]
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and onnx_path.is_file(), res.stderr[-3000:]

    from weaver.utils.data.config import DataConfig

    dc = DataConfig.load(str(yaml), load_observers=False, load_reweight_info=False)
    opts = {**entry.options, **tiny(model)}
    net, info = load_network(entry.network_path).get_model(dc, for_inference=True, **opts)
    net.load_state_dict(torch.load(f"{prefix}_best_epoch_state.pt", map_location="cpu"))
    net.eval()
    sess = ort.InferenceSession(str(onnx_path))
    g = torch.Generator().manual_seed(0)
    for n in ((128,) if model in FIXED_LENGTH else (128, 64)):
        mask = (torch.arange(n)[None, None, :] < torch.tensor([n, n // 2, 7])[:, None, None]).float()
        p3 = torch.randn(3, 3, n, generator=g) * 10
        inputs = {"pf_points": torch.randn(3, 2, n, generator=g) * 0.3 * mask,
                  "pf_features": torch.randn(3, 13, n, generator=g) * mask,
                  "pf_vectors": torch.cat([p3, p3.norm(dim=1, keepdim=True) + 1], 1) * mask, "pf_mask": mask}
        with torch.no_grad():
            ref = net(*[inputs[k] for k in info["input_names"]]).numpy()
        out = sess.run(None, {k: inputs[k].numpy() for k in info["input_names"]})[0]
        np.testing.assert_allclose(out, ref, atol=1e-4)
    if model in FIXED_LENGTH:  # another length is refused by ONNX Runtime, not silently wrong
        with pytest.raises(Exception, match="(?i)dimension|shape"):
            sess.run(None, {k: np.zeros((3, v.shape[1], 64), np.float32) for k, v in inputs.items()})
