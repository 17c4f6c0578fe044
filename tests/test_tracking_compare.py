"""partx.studies.tracking_compare: the summary, the error-bar rule and the paper-ordering verdicts on hand-made
records (no training), and one-line errors for bad arguments."""

import math
import subprocess
import sys
from pathlib import Path

import pytest

from partx.studies import tracking_compare as C

REPO = Path(__file__).resolve().parents[1]


def rec(model, seed, acc, recall, dm=0.5):
    metrics = {k: 0.1 for k in C.METRICS}
    metrics.update({"accuracy@0.9": acc, "recall@0.9": recall, "dm_efficiency": dm})
    return {"model": model, "seed": seed, "wall_s": 10.0, "metrics": metrics}


def test_summary_mean_std_se_and_difference_to_hept():
    records = [rec("HEPT", s, a, 0.5) for s, a in zip((1, 2, 3), (0.50, 0.52, 0.54))]
    records += [rec("MambaA", s, a, 0.5) for s, a in zip((1, 2, 3), (0.60, 0.61, 0.62))]
    s = C.summarize(records)
    h, m = s["HEPT"]["accuracy@0.9"], s["MambaA"]["accuracy@0.9"]
    assert h["n"] == 3 and h["mean"] == pytest.approx(0.52) and h["std"] == pytest.approx(0.02)
    assert h["se"] == pytest.approx(0.02 / math.sqrt(3))
    assert m["diff_to_HEPT"] == pytest.approx(0.09)
    assert m["diff_se"] == pytest.approx(math.sqrt(0.02**2 / 3 + 0.01**2 / 3))


def test_paper_ordering_verdicts_follow_twice_the_standard_error():
    records = []
    for seed in (1, 2, 3):
        d = 0.001 * seed
        records += [rec("HEPT", seed, 0.50 + d, 0.60 + d), rec("MambaA", seed, 0.60 + d, 0.60 + d),
                    rec("MambaB", seed, 0.55 + d, 0.70 + d), rec("Mamba", seed, 0.505 + d, 0.50 + d)]
    claims = dict(C.paper_ordering(C.summarize(records)))
    assert claims["Mamba-a >= HEPT in accuracy@0.9"] == "holds"
    assert claims["Mamba-b best recall@0.9"] == "HEPT: holds; MambaA: holds; Mamba: holds"
    # Mamba is 0.005 above HEPT with a standard error of ~0.0008 per model: reversed, not "worst"
    assert claims["pure Mamba worst in accuracy@0.9"] == "HEPT: reversed; MambaA: holds; MambaB: holds"
    records = [r for r in records if r["model"] != "Mamba"] + [rec("Mamba", s, 0.45 + 0.05 * (s - 1), 0.5) for s in (1, 2, 3)]
    assert dict(C.paper_ordering(C.summarize(records)))["pure Mamba worst in accuracy@0.9"].startswith("HEPT: not distinguishable")


def test_markdown_and_plot(tmp_path):
    records = [rec(m, s, 0.5 + 0.01 * s, 0.6) for m in ("HEPT", "MambaB") for s in (1, 2)]
    paths = C.write_outputs(records, tmp_path, "t")
    text = paths["md"].read_text()
    assert "| HEPT " in text and "0.5150 ± 0.0071" in text and "Mamba-b best recall@0.9: HEPT: not distinguishable" in text
    assert paths["png"].is_file() and paths["json"].is_file()


@pytest.mark.parametrize("args, message", [
    (["--models", "HEPT,Nope"], "invalid model 'Nope'"),
    (["--set", "7k"], "invalid TrackML set '7k'"),
    (["--seeds", "1,1"], "seeds must be distinct"),
    ([], "no ROOT files in"),
])
def test_bad_arguments_one_line_exit_2(tmp_path, args, message):
    res = subprocess.run([sys.executable, str(REPO / "analysis/tracking_compare.py"), "--datadir", str(tmp_path), "--out", str(tmp_path / "o"), *args],
                         capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 2, res.stderr
    assert res.stderr.count("\n") == 1 and message in res.stderr and res.stderr.startswith("ERROR:")


def test_each_run_seeds_weaver_and_the_model(tmp_path, monkeypatch):
    """A (model, seed) run passes the seed to the model (-o seed) and to weaver (PARTX_SEED: data order)."""
    seen = {}

    def fake_training(cmd, cwd=None, env=None, stdout=None, stderr=None):
        seen.update(cmd=cmd, env=env)
        return subprocess.CompletedProcess(cmd, 3)

    monkeypatch.setattr(C, "run_training", fake_training)
    cfg = C.CompareConfig(datadir=tmp_path, out_dir=tmp_path / "out", models=["HEPT"], seeds=[2])
    with pytest.raises(C.RunFailed, match="HEPT seed 2: train_TrackML.sh exited 3"):
        C.run_one(cfg, "HEPT", 2, tmp_path / "out", quiet=True)
    assert seen["env"]["PARTX_SEED"] == "2"
    i = seen["cmd"].index("seed")
    assert seen["cmd"][i - 1:i + 2] == ["-o", "seed", "2"]
