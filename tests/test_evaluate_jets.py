"""analysis/evaluate_jets.py: metrics from weaver prediction files, one-line errors on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from bad_inputs import prediction_file  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NAMES = ["label_QCD", "label_Hbb", "label_Tbqq", "label_Tbl"]


def _pred_file(path: Path, labels: np.ndarray, names=NAMES, drop: str | None = None, seed: int = 0) -> Path:
    return prediction_file(path, labels, names, drop, seed)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "analysis/evaluate_jets.py"), *args],
                          capture_output=True, text=True, timeout=120)


def test_good_file_prints_the_papers_conventions(tmp_path):
    pred = _pred_file(tmp_path / "pred.root", np.repeat(np.arange(4), 50))
    res = _run(str(pred), "--json", str(tmp_path / "m.json"), "--plot", str(tmp_path / "roc.png"))
    assert res.returncode == 0, res.stderr
    assert "AUC (one-vs-one, as the paper)" in res.stdout and "label_Tbl    rejection @ 99.5%" in res.stdout
    assert "label_Tbqq   rejection @ 50%" in res.stdout
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["working_point"] == {"label_Hbb": 0.5, "label_Tbqq": 0.5, "label_Tbl": 0.995}
    assert (tmp_path / "roc.png").stat().st_size > 1000 and str(tmp_path / "roc.png") in res.stdout


@pytest.mark.parametrize("case,message", [
    ("missing_score", "truth branches without score branches: ['label_Tbl']"),
    ("one_class", "all 40 jets are of one class"),
    ("not_root", "unreadable"),
    ("no_file", "no prediction file matches"),
    ("json_is_dir", "metrics file"),
])
def test_bad_input_one_line_exit_2_and_good_output_kept(tmp_path, case, message):
    good_json = tmp_path / "m.json"
    good_json.write_text('{"good": true}')
    pred = tmp_path / "pred.root"
    json_out = good_json
    if case == "missing_score":
        _pred_file(pred, np.repeat(np.arange(4), 10), drop="score_label_Tbl")
    elif case == "one_class":
        _pred_file(pred, np.zeros(40, int))
    elif case == "not_root":
        pred.write_bytes(b"\0" * 100)
    elif case == "no_file":
        pred = tmp_path / "nothing_*.root"
    elif case == "json_is_dir":
        _pred_file(pred, np.repeat(np.arange(4), 10))
        json_out = tmp_path
    res = _run(str(pred), "--json", str(json_out))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert good_json.read_text() == '{"good": true}'


def test_no_qcd_is_said_and_no_plot(tmp_path):
    pred = _pred_file(tmp_path / "pred.root", np.repeat([1, 2, 3], 20))
    res = _run(str(pred), "--plot", str(tmp_path / "roc.png"))
    assert res.returncode == 0, res.stderr
    assert "no label_QCD jets: no rejection computed" in res.stdout and "no ROC plot" in res.stdout
    assert not (tmp_path / "roc.png").exists()
