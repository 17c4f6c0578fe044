"""partx.registry: one list of models, read by README, the launcher, the benchmark and the study."""

from __future__ import annotations

import ast
import os
import re
import subprocess
from pathlib import Path

import pytest

from partx import registry
from partx.dataset_layouts import JETCLASS, LAYOUTS

REPO = Path(__file__).resolve().parents[1]


def readme_model_table() -> list[tuple[str, str, str]]:
    """Rows (name, network file, what it is) of README's ``| model | network file | what it is |`` table."""
    lines = (REPO / "README.md").read_text().splitlines()
    start = lines.index("| model | network file | what it is |")
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows.append(tuple(c.strip("`") for c in cells))
    return rows


def test_readme_model_table_matches_registry():
    rows = readme_model_table()
    assert [r[0] for r in rows] == registry.names(), "README model table: same names, same order as partx.registry"
    for name, network, about in rows:
        entry = registry.get(name)
        assert network == f"networks/{entry.network}", name
        for key in entry.options:  # a variant made by options says which
            assert key in about, f"README row {name} should name its option {key}"


def test_every_entry_has_its_network_file_and_literal_options():
    for entry in registry.ENTRIES:
        assert entry.network_path.is_file(), entry.name
        assert entry.dataset in registry.DATASET_FAMILIES and entry.batch_size > 0 and entry.lr > 0
        args = entry.weaver_options()
        # weaver literal_eval-s every -o value: the round trip gives back the registry's options
        assert {k: ast.literal_eval(v) for k, v in zip(args[1::3], args[2::3])} == dict(entry.options)
    assert registry.get("ParT-plain").options == {"pair_embed_dims": None}
    assert registry.get("ParT-demo").network == registry.get("ParT").network


def test_unknown_name_and_missing_networks_dir(monkeypatch, tmp_path):
    with pytest.raises(registry.RegistryError, match="invalid model 'BDT': choose one of ParT "):
        registry.get("BDT")
    with pytest.raises(registry.RegistryError, match="choose one of"):
        registry.get("ParT", dataset="trackml")  # registered for JetClass only
    monkeypatch.setenv("PARTX_NETWORKS", str(tmp_path / "nowhere"))
    with pytest.raises(registry.RegistryError, match="PARTX_NETWORKS"):
        registry.get("ParT").network_path
    monkeypatch.setenv("PARTX_NETWORKS", str(REPO / "networks"))
    assert registry.get("PFN").network_path == REPO / "networks" / "example_PFN.py"


def test_names_are_unique_per_dataset_family():
    """The tracking encoders are registered for TrackML and pileup under the same names."""
    assert registry.names("pileup") == ["HEPT", "Mamba", "MambaA", "MambaB"]
    assert registry.get("MambaB", "pileup").network == "example_MambaBPileup.py"
    assert registry.get("MambaB", "trackml").network == "example_MambaB.py" == registry.get("MambaB").network
    keys = [(e.dataset, e.name) for e in registry.ENTRIES]
    assert len(keys) == len(set(keys)) and len(registry.names()) == len(set(registry.names()))
    assert registry.find_by_network(REPO / "networks/example_MambaBPileup.py").dataset == "pileup"
    with pytest.raises(registry.RegistryError, match="choose one of HEPT Mamba MambaA MambaB$"):
        registry.get("ParT", "pileup")


def test_needs_max_len_is_declared_and_found_by_path():
    from partx.perf import models

    assert {n for n, e in registry.MODELS.items() if e.needs_max_len} == {"LinformerParT", "ReformerParT"}
    by_path = models.resolve_model(str(REPO / "networks/example_LinformerParT.py"))
    assert by_path.needs_max_len and not models.resolve_model("ParT").needs_max_len
    assert models.resolve_model("ParT-plain").overrides == {"pair_embed_dims": None}


def test_layouts_cover_the_generator_classes():
    from partx.datagen import schema

    assert set(JETCLASS.groups) == set(schema.STEMS)
    assert all(layout.family in registry.DATASET_FAMILIES for layout in LAYOUTS.values())
    assert (REPO / JETCLASS.script).is_file()


def test_help_lists_the_registry():
    env = dict(os.environ)
    res = subprocess.run(["bash", str(REPO / "train_JetClass.sh"), "--help"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    listed = re.search(r"MODEL is one of: (.*)", res.stdout).group(1).split()
    assert listed == registry.names("jetclass")
    res = subprocess.run(["bash", str(REPO / "train_JetClass.sh")], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stderr.startswith("ERROR: usage:") and len(res.stderr.splitlines()) == 1
