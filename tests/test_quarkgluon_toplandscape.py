"""QuarkGluon / TopLandscape: conversion from the public originals, the data configs, fine-tuning from
JetClass checkpoints (every registered jet model), the launcher's command and errors, and (slow) a
generated-data fine-tune run end to end through the train scripts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import torch

from partx import registry
from partx.dataset_layouts import QUARKGLUON, TOPLANDSCAPE
from partx.finetune import FineTuneError, check_pretrained
from partx.launcher import LaunchError, build_command
from partx.readers import jet_benchmarks, quarkgluon, toplandscape

sys.path.insert(0, str(Path(__file__).parent))
import jetclass_fixture  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[1]
FIX = REPO / "tests/fixtures/jet_benchmarks"
QG_CONFIGS = {f: REPO / f"data/QuarkGluon/qg_{f}.yaml" for f in ("kin", "kinpid", "kinpidplus")}
TL_CONFIG = REPO / "data/TopLandscape/top_kin.yaml"
JC_KIN = REPO / "data/JetClass/JetClass_kin.yaml"

# small versions of each model family (weaver -o options), as tests/test_jetclass_pipeline.py
TINY = {
    "ParT": {"num_layers": 1, "embed_dims": [32, 32], "pair_embed_dims": [16], "num_heads": 4},
    "PN": {"conv_params": [(4, (16, 16)), (4, (16, 16))], "fc_params": [(16, 0.1)]},
    "PFN": {},
    "PCNN": {},
}


def _tiny(name: str) -> dict:
    """Small options for a registered model: its family's TINY, then its own registry options (ParT-plain's U off)."""
    return {**TINY[name if name in TINY else "ParT"], **registry.get(name).options}


def _compare(mine: dict, reference: Path):
    exp = ak.from_parquet(reference)
    assert set(mine) == set(exp.fields)
    for k in exp.fields:
        a, b = ak.Array(mine[k]), exp[k]
        assert ak.to_list(ak.num(a, axis=-1)) == ak.to_list(ak.num(b, axis=-1)) if a.ndim > 1 else len(a) == len(b), k
        np.testing.assert_allclose(ak.to_numpy(ak.flatten(a, axis=None)).astype(float),
                                   ak.to_numpy(ak.flatten(b, axis=None)).astype(float), rtol=1e-4, atol=2e-5, err_msg=k)


# ------------------------------------------------------------------ conversion (reference: the official converters)
def test_quarkgluon_conversion_matches_the_official_converter():
    X, y = quarkgluon.read_npz(FIX / "QG_jets.npz")
    out = quarkgluon.transform(X, y)
    _compare(out, FIX / "qg_expected.parquet")
    # sorted by pT, padding removed, one label per jet
    pt = np.hypot(ak.to_numpy(ak.flatten(out["part_px"])), ak.to_numpy(ak.flatten(out["part_py"])))
    assert ak.sum(ak.num(out["part_px"])) == int((X[:, :, 0] > 0).sum()) == len(pt)
    assert all(np.all(np.diff(np.hypot(ak.to_numpy(a), ak.to_numpy(b))) <= 1e-3)
               for a, b in zip(out["part_px"], out["part_py"]))


def test_toplandscape_conversion_matches_the_official_converter():
    _compare(toplandscape.transform(toplandscape.read_h5(FIX / "top_tiny.h5")), FIX / "top_expected.parquet")


def test_converted_files_feed_the_data_configs(tmp_path):
    from weaver.utils.dataset import SimpleIterDataset

    src = tmp_path / "orig"
    src.mkdir()
    for name in ("QG_jets.npz", "QG_jets_1.npz", "QG_jets_10.npz", "QG_jets_2.npz"):  # natural order: 0, 1, 2, 10
        shutil.copy(FIX / "QG_jets.npz", src / name)
    written = quarkgluon.convert_dir(src, tmp_path / "qg", log=lambda m: None)
    assert [p.name for p in written] == ["train_file_0.parquet", "train_file_1.parquet", "train_file_2.parquet",
                                         "test_file_0.parquet"]
    tl = tmp_path / "tl"
    tl.mkdir()
    for s in ("train", "val", "test"):
        shutil.copy(FIX / "top_tiny.h5", tl / f"{s}.h5")
    toplandscape.convert_dir(tl, tl, log=lambda m: None)
    assert jet_benchmarks.converted(tmp_path / "qg", QUARKGLUON) and jet_benchmarks.converted(tl, TOPLANDSCAPE)
    assert [len(_data_config(QG_CONFIGS[f]).input_dicts["pf_features"]) for f in ("kin", "kinpid")] == [7, 13]
    cases = [(QG_CONFIGS["kinpidplus"], tmp_path / "qg/test_file_0.parquet", 13), (TL_CONFIG, tl / "test_file.parquet", 7)]
    for config, path, n_features in cases:
        ds = SimpleIterDataset({"_": [str(path)]}, str(config), for_training=False, fetch_by_files=True, fetch_step=1)
        X, y, _ = next(iter(torch.utils.data.DataLoader(ds, batch_size=8, num_workers=0)))
        assert X["pf_features"].shape == (8, n_features, 128) and X["pf_points"].shape == (8, 2, 128)
        assert torch.isfinite(X["pf_features"]).all()
        label = y["_label_"].numpy()
        assert sorted(np.bincount(label, minlength=2)) == [4, 4], config  # the fixture alternates 1, 0


def test_bad_originals_are_one_error_line(tmp_path):
    np.savez(tmp_path / "QG_jets.npz", X=np.zeros((3, 4, 3)), y=np.zeros(3))
    with pytest.raises(jet_benchmarks.ConversionError, match=r"X must be \(N, M, 4\)"):
        quarkgluon.read_npz(tmp_path / "QG_jets.npz")
    (tmp_path / "QG_jets_1.npz").write_bytes(b"not a zip")
    with pytest.raises(jet_benchmarks.ConversionError, match="not a readable .npz"):
        quarkgluon.read_npz(tmp_path / "QG_jets_1.npz")
    X = np.zeros((2, 4, 4))
    X[0, :2, 0] = 10.0
    with pytest.raises(jet_benchmarks.ConversionError, match="1 jets have no particles"):
        quarkgluon.transform(X, np.zeros(2))
    import pandas as pd

    pd.DataFrame({"E_0": [1.0]}).to_hdf(tmp_path / "bad.h5", key="table")
    with pytest.raises(jet_benchmarks.ConversionError, match="missing columns"):
        toplandscape.read_h5(tmp_path / "bad.h5")
    res = subprocess.run([sys.executable, "-m", "partx.readers.toplandscape", "-i", str(tmp_path), "-o", str(tmp_path / "o")],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stderr.startswith("ERROR:") and len(res.stderr.splitlines()) == 1, res.stderr


def test_data_hook_converts_originals_and_generates_only_the_default(tmp_path, capsys):
    d = tmp_path / "QuarkGluon"
    (d / "original").mkdir(parents=True)
    for name in ("QG_jets.npz", "QG_jets_1.npz"):
        shutil.copy(FIX / "QG_jets.npz", d / "original" / name)
    assert jet_benchmarks.quarkgluon_data_dir(str(d), "kin", "./elsewhere") == d
    assert jet_benchmarks.converted(d, QUARKGLUON) and "converting" in capsys.readouterr().err
    empty = tmp_path / "empty"
    assert jet_benchmarks.toplandscape_data_dir(str(empty), "kin", "./elsewhere") == empty and not empty.exists()
    # the default folder, dry run: says nothing is there, makes nothing
    assert jet_benchmarks.toplandscape_data_dir(str(empty), "kin", str(empty), dry_run=True) == empty
    assert not empty.exists()


# ------------------------------------------------------------------ fine-tuning
def _network(name: str):
    from weaver.utils.import_tools import import_module

    return import_module(str(registry.get(name).network_path), f"_net_{name}")


def _data_config(path: Path):
    from weaver.utils.data.config import DataConfig

    return DataConfig.load(str(path), load_observers=False, load_reweight_info=False)


@pytest.mark.parametrize("name", registry.names("jetclass"))
def test_registry_head_is_exactly_the_class_dependent_weights(name):
    """The declared head regex selects the weights whose shape depends on the number of classes (and only those)."""
    import re

    net, opts = _network(name), _tiny(name)
    a = net.get_model(_data_config(JC_KIN), **opts)[0].state_dict()
    b = net.get_model(_data_config(QG_CONFIGS["kin"]), **opts)[0].state_dict()
    assert a.keys() == b.keys()
    depends = {k for k in a if a[k].shape != b[k].shape}
    head = {k for k in a if re.match(registry.get(name).head, k)}
    assert depends and head == depends, (name, sorted(head), sorted(depends))


@pytest.fixture(scope="module")
def jetclass_batches(tmp_path_factory) -> dict:
    """One batch of JetClass-format fixture jets per data config (kin, full), read once per module."""
    from weaver.utils.dataset import SimpleIterDataset

    root = jetclass_fixture.write_dataset(tmp_path_factory.mktemp("jc"), jets_per_file=2)
    files = sorted(str(p) for p in (root / "Pythia/train_100M").glob("*.root"))
    out = {}
    for config in (JC_KIN, REPO / "data/JetClass/JetClass_full.yaml"):
        ds = SimpleIterDataset({"_": files}, str(config), for_training=False, fetch_by_files=True, fetch_step=len(files))
        out[config] = next(iter(torch.utils.data.DataLoader(ds, batch_size=20, num_workers=0)))[:2]
    return out


def _jetclass_checkpoint(name: str, path: Path, batches: dict, config: Path = JC_KIN) -> Path:
    """A JetClass model after two SGD steps on fixture jets (weights moved away from their initialisation)."""
    torch.manual_seed(0)
    model, info = _network(name).get_model(_data_config(config), **_tiny(name))
    X, y = batches[config]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(*[X[k] for k in info["input_names"]]), y["_label_"]).backward()
        opt.step()
    torch.save(model.state_dict(), path)
    return path


def _weaver_loaded_model(cmd: list[str]):
    """The model exactly as weaver sets it up from the launcher's command (weaver's parser and model_setup)."""
    from weaver import train as weaver_train

    args = weaver_train.parser.parse_args(cmd[cmd.index("--data-train"):])
    args.network_config = str(REPO / args.network_config)
    return weaver_train.model_setup(args, _data_config(REPO / args.data_config))[0]


@pytest.mark.parametrize("name", ["ParT", "ParT-plain", "PN", "PFN", "PCNN"])
def test_finetune_loads_every_pretrained_weight_but_the_head(name, tmp_path, capsys, jetclass_batches):
    ckpt = _jetclass_checkpoint(name, tmp_path / "jc.pt", jetclass_batches)
    pretrained = torch.load(ckpt)
    extra = [a for k, v in _tiny(name).items() for a in ("-o", k, repr(v))]
    env = {"DATADIR_TopLandscape": str(FIX), "PRETRAINED": str(ckpt), "GPUS": ""}
    layout = _fixture_layout(TOPLANDSCAPE)
    cmd, knobs = build_command(layout, [f"{name}-FineTune", "kin", *extra], env, has_cuda=False)
    rep = check_pretrained(*knobs.pretrained)
    out = capsys.readouterr().out
    head = registry.get(name).head
    assert f"loaded {len(rep.loaded)}/{len(rep.loaded)} tensors outside the head" in out and "new head" in out
    assert not rep.mismatched and not rep.missing and not rep.unexpected and len(rep.head) == 2
    model = _weaver_loaded_model(cmd)
    state = model.state_dict()
    import re

    for k, v in state.items():
        if re.match(head, k):
            assert v.shape[0] == 2 and pretrained[k].shape[0] == 10, k  # the new 2-class head
        else:
            torch.testing.assert_close(v, pretrained[k], msg=k)  # every other weight is the pretrained one
    assert len(rep.loaded) == len(state) - 2


def _fixture_layout(layout):
    """The TopLandscape layout reading the fixture folder (its parquet names) instead of a converted set."""
    import dataclasses

    return dataclasses.replace(layout, train="top_expected", val="top_expected", test="top_expected", find_data="")


def test_mismatched_or_foreign_checkpoints_are_reported(tmp_path, capsys, jetclass_batches):
    full = _jetclass_checkpoint("ParT", tmp_path / "full.pt", jetclass_batches, REPO / "data/JetClass/JetClass_full.yaml")
    net = str(registry.get("ParT").network_path)
    with pytest.raises(FineTuneError, match=r"shape mismatches \(first mod\."):
        check_pretrained(full, net, TINY["ParT"], QG_CONFIGS["kin"], registry.get("ParT").head)
    out = capsys.readouterr().out
    assert "shape mismatch: mod." in out and "checkpoint [17" in out  # 17 JetClass 'full' features vs 7 here
    pn = _jetclass_checkpoint("PFN", tmp_path / "pfn.pt", jetclass_batches)
    with pytest.raises(FineTuneError, match="shares no weight"):
        check_pretrained(pn, net, TINY["ParT"], QG_CONFIGS["kin"], registry.get("ParT").head)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(FineTuneError, match="not readable"):
        check_pretrained(tmp_path / "junk.pt", net, TINY["ParT"], QG_CONFIGS["kin"], registry.get("ParT").head)


def test_launcher_commands_follow_the_official_scripts(tmp_path):
    ckpt = tmp_path / "c.pt"
    ckpt.write_bytes(b"")
    env = {"DATADIR_TopLandscape": str(FIX), "PRETRAINED": str(ckpt), "GPUS": ""}
    layout = _fixture_layout(TOPLANDSCAPE)

    def opt(cmd, flag):
        return [cmd[i + 1:i + 3] for i, a in enumerate(cmd) if a == flag]

    part, _ = build_command(layout, ["ParT-FineTune"], env, has_cuda=False)
    assert part[part.index("--start-lr") + 1] == "0.0001" and part[part.index("--lr-scheduler") + 1] == "none"
    assert part[part.index("--load-model-weights") + 1] == str(ckpt)
    assert part[part.index("--exclude-model-weights") + 1] == r"mod\.fc\."
    assert opt(part, "--optimizer-option") == [["weight_decay", "0.01"], ["lr_mult", repr((r"mod\.fc\.", 50))]]
    assert part[part.index("--num-epochs") + 1] == "20" and part[part.index("--samples-per-epoch") + 1] == str(2400 * 512)
    pn, _ = build_command(layout, ["PN-FineTune"], env, has_cuda=False)
    assert pn[pn.index("--start-lr") + 1] == "0.001" and opt(pn, "--optimizer-option") == [["lr_mult", repr((r"mod\.fc\.1\.", 50))]]
    scratch, _ = build_command(layout, ["PFN"], env, has_cuda=False)
    assert "--load-model-weights" not in scratch and scratch[scratch.index("--batch-size") + 1] == "4096"
    # QuarkGluon: no validation files, weaver keeps 1/9 of the training jets; kinpidplus starts from kinpid
    for name in ("train_file_0.parquet", "test_file_0.parquet"):
        (tmp_path / name).write_bytes(b"")
    qg = build_command(QUARKGLUON, ["ParT", "kinpidplus"], {"DATADIR_QuarkGluon": str(tmp_path), "GPUS": "", "DRY_RUN": "1"},
                       has_cuda=False)[0]
    assert "--data-val" not in qg and qg[qg.index("--train-val-split") + 1] == "0.8889"
    assert qg[qg.index("--data-train") + 1] == f"{tmp_path}/train_file_*.parquet"
    with pytest.raises(LaunchError, match=r"JetClass checkpoint of ParT trained with the 'kinpid' features.*models/ParT_kinpid.pt"):
        build_command(QUARKGLUON, ["ParT-FineTune", "kinpidplus"], {"DATADIR_QuarkGluon": str(tmp_path), "GPUS": "",
                                                                    "DRY_RUN": "1"}, has_cuda=False)
    assert set(registry.names("quarkgluon")) == set(registry.names("topland"))
    assert {f"{n}-FineTune" for n in registry.names("jetclass")} <= set(registry.names("quarkgluon"))
    with pytest.raises(registry.RegistryError):
        registry.get("ParT-FineTune", "jetclass")


def test_unknown_model_or_features_is_one_line_exit_2(capsys):
    from partx import launcher

    assert launcher.main(["topland", "ParT", "kinpid"]) == 2
    err = capsys.readouterr().err
    assert err == "ERROR: invalid feature set 'kinpid': choose kin\n"
    assert launcher.main(["quarkgluon", "ParT-FineTune", "full"]) == 2
    assert capsys.readouterr().err.startswith("ERROR: invalid feature set 'full': choose kin, kinpid, kinpidplus")
    # through the script: one line, exit 2
    res = subprocess.run(["bash", str(REPO / "train_QuarkGluon.sh"), "BDT"], cwd=REPO, env=dict(os.environ),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and len(res.stderr.splitlines()) == 1 and "invalid model 'BDT'" in res.stderr, res.stderr


# ------------------------------------------------------------------ generated data, end to end
#: |pdgid| of stable visible particles (c tau > 10 mm stable, as the generator's Pythia settings)
PDG_FINAL = {11, 13, 22, 211, 321, 2212, 130, 2112, 310, 3122, 3112, 3222, 3312, 3322, 3334}

@pytest.mark.slow
def test_generated_toplandscape_finetunes_from_a_jetclass_run(tmp_path):
    """Generator (original HDF5 format) -> conversion on first use -> ParT trained on JetClass-format jets
    -> ParT-FineTune on TopLandscape through the train scripts; quark-gluon npz generation too."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GPUS": "", "NUM_EPOCHS": "1", "SAMPLES_PER_EPOCH": "64",
           "SAMPLES_PER_EPOCH_VAL": "64", "BATCH_SIZE": "8", "DATAOPTS": "--num-workers 0 --fetch-step 1 --in-memory"}
    tiny = [a for k, v in TINY["ParT"].items() for a in ("-o", k, repr(v))]

    def run(cmd, **extra):
        res = subprocess.run(cmd, cwd=REPO, env={**env, **extra}, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        return res

    tl = tmp_path / "TopLandscape"
    run([sys.executable, "-m", "partx.datagen", "toplandscape", "--out", str(tl / "original"), "--jets", "8", "--quiet"])
    import pandas as pd

    df = pd.read_hdf(tl / "original/train.h5", key="table")
    assert df.shape == (8, 806) and list(df.columns[:4]) == ["E_0", "PX_0", "PY_0", "PZ_0"]
    assert sorted(df["is_signal_new"]) == [0] * 4 + [1] * 4
    pt = np.hypot(df["PX_0"] + 0, df["PY_0"])
    assert (pt > 10).all()

    qg = tmp_path / "qg"  # one file (two Pythia set-ups): the npz format, and the jets the conversion makes of it
    run([sys.executable, "-m", "partx.datagen", "quarkgluon", "--out", str(qg), "--jets", "4", "--files", "1", "--quiet"])
    X, y = quarkgluon.read_npz(qg / "QG_jets.npz")
    assert X.shape[0] == 4 and sorted(y) == [0, 0, 1, 1] and set(np.abs(X[:, :, 3][X[:, :, 0] > 0])) <= PDG_FINAL
    jets = quarkgluon.transform(X, y)
    assert np.all((jets["jet_pt"] > 490) & (jets["jet_pt"] < 560))  # R = 0.4 jets of 500-550 GeV (massless approximation)

    jc = jetclass_fixture.write_dataset(tmp_path / "JetClass", jets_per_file=8)
    run(["bash", "train_JetClass.sh", "ParT", "kin", *tiny, "--model-prefix", str(tmp_path / "jc/net")], DATADIR_JetClass=str(jc))
    ckpt = tmp_path / "jc/net_best_epoch_state.pt"
    res = run(["bash", "train_TopLandscape.sh", "ParT-FineTune", "kin", *tiny, "--model-prefix", str(tmp_path / "tl/net")],
              DATADIR_TopLandscape=str(tl), PRETRAINED=str(ckpt))
    assert "converting the TopLandscape originals" in res.stderr
    assert "loaded 89/89 tensors outside the head; new head (2 tensors) re-initialised; 0 shape mismatches" in res.stdout
    log = res.stdout + res.stderr
    assert "Parameters with lr multiplied by 50" in log and "Missing: ['mod.fc.0.weight', 'mod.fc.0.bias']" in log
    assert (tmp_path / "tl/predict_output/pred.root").is_file()


def test_finetune_takes_weights_and_options_from_model_cards(tmp_path, monkeypatch):
    """With the official weights fetched (models/official/), ParT-FineTune starts from them by default and carries
    the card's options (official ParT: use_pre_activation_pair False, parameter-free, silently wrong if lost);
    PRETRAINED may name a card; a card of another model is refused."""
    models = tmp_path / "models"
    (models / "official").mkdir(parents=True)
    shutil.copy(REPO / "models/official/ParT_kin.yaml", models / "official/ParT_kin.yaml")
    monkeypatch.setenv("PARTX_MODELS", str(models))
    env = {"DATADIR_TopLandscape": str(FIX), "GPUS": ""}
    layout = _fixture_layout(TOPLANDSCAPE)
    with pytest.raises(LaunchError, match=r"models/ParT_kin.pt \(the default\) does not exist.*python get_datasets.py models"):
        build_command(layout, ["ParT-FineTune"], env, has_cuda=False)  # card, but its weights are not fetched
    (models / "official/ParT_kin.pt").write_bytes(b"")
    cmd, _ = build_command(layout, ["ParT-FineTune"], env, has_cuda=False)
    assert cmd[cmd.index("--load-model-weights") + 1] == str(models / "official/ParT_kin.pt")
    opts = [cmd[i + 1:i + 3] for i, a in enumerate(cmd) if a == "-o"]
    assert ["use_pre_activation_pair", "False"] in opts
    cmd, _ = build_command(layout, ["ParT-FineTune"], dict(env, PRETRAINED="official/ParT_kin"), has_cuda=False)
    assert cmd[cmd.index("--load-model-weights") + 1] == str(models / "official/ParT_kin.pt")
    with pytest.raises(LaunchError, match="is for model ParT, not PN"):
        build_command(layout, ["PN-FineTune"], dict(env, PRETRAINED="official/ParT_kin"), has_cuda=False)
