"""partx.atomic: a failed or interrupted write leaves the old file/folder byte-identical and no temporary litter."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from partx.atomic import UnwritableOutput, atomic_dir, atomic_path, atomic_write


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every entry under ``root`` (hidden ones too): relative path -> file bytes (None for folders)."""
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes()) for p in sorted(root.rglob("*"))}


def good_folder(parent: Path) -> Path:
    out = parent / "out"
    (out / "sub").mkdir(parents=True)
    (out / "result.csv").write_text("a,b\n1,2\n")
    (out / "sub" / "plot.png").write_bytes(b"\x89PNG old")
    (out / "other_run.json").write_text("{}")
    return out


class Boom(Exception):
    pass


INTERRUPTS = [Boom, KeyboardInterrupt]


def test_atomic_write_text_and_bytes_with_normal_permissions(tmp_path):
    target = tmp_path / "deep" / "out.json"
    atomic_write(target, "first – utf-8")
    assert target.read_text(encoding="utf-8") == "first – utf-8"
    atomic_write(target, b"second")
    assert target.read_bytes() == b"second"
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~_umask()
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]
    atomic_write(target, "#!/bin/sh\n", mode=0o755)  # e.g. keeping an executable script's bits
    assert stat.S_IMODE(target.stat().st_mode) == 0o755


@pytest.mark.parametrize("exc", INTERRUPTS)
def test_atomic_path_failure_keeps_old_file(tmp_path, exc):
    target = tmp_path / "trace.json"
    target.write_text("good")
    before = snapshot(tmp_path)
    with pytest.raises(exc):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise exc()
    assert snapshot(tmp_path) == before


def test_atomic_path_for_writers_that_want_a_file_name(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    png, pt = tmp_path / "fig.png", tmp_path / "state.pt"
    with atomic_path(png) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".") and tmp.suffix == ".png"
        fig = plt.figure()
        fig.savefig(tmp)  # format chosen from the temporary name's suffix
        plt.close(fig)
    with atomic_path(pt) as tmp:
        torch.save({"w": torch.ones(3)}, tmp)
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert torch.load(pt)["w"].sum() == 3
    assert stat.S_IMODE(pt.stat().st_mode) == 0o666 & ~_umask()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.png", "state.pt"]


def test_atomic_dir_replaces_whole_folder_on_success(tmp_path):
    out = good_folder(tmp_path)
    with atomic_dir(out) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".") and not any(tmp.iterdir())
        assert stat.S_IMODE(tmp.stat().st_mode) == 0o777 & ~_umask()
        (tmp / "result.csv").write_text("new")
        assert (out / "result.csv").read_text() == "a,b\n1,2\n"  # nothing visible before success
    assert snapshot(out) == {"result.csv": b"new"}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~_umask()


def test_atomic_dir_creates_missing_folder(tmp_path):
    with atomic_dir(tmp_path / "a" / "new") as tmp:
        (tmp / "x").write_text("1")
    assert (tmp_path / "a" / "new" / "x").read_text() == "1"
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["new"]


@pytest.mark.parametrize("merge", [False, True])
@pytest.mark.parametrize("exc", INTERRUPTS)
def test_atomic_dir_failure_keeps_old_folder(tmp_path, merge, exc):
    out = good_folder(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(exc):
        with atomic_dir(out, merge=merge) as tmp:
            (tmp / "result.csv").write_text("build failed")
            (tmp / "sub").mkdir()
            (tmp / "sub" / "plot.png").write_bytes(b"half")
            raise exc()
    assert snapshot(tmp_path) == before  # byte-identical, no hidden temporary left


def test_atomic_dir_merge_keeps_other_results(tmp_path):
    out = good_folder(tmp_path)
    with atomic_dir(out, merge=True) as tmp:
        (tmp / "result.csv").write_text("new")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "extra.txt").write_text("x")
        (tmp / "added.md").write_text("md")
    assert snapshot(out) == {
        "added.md": b"md", "other_run.json": b"{}", "result.csv": b"new", "sub": None,
        "sub/extra.txt": b"x", "sub/plot.png": b"\x89PNG old",
    }
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_atomic_dir_on_a_file_fails_before_creating_anything(tmp_path):
    f = tmp_path / "out"
    f.write_text("I am a file")
    with pytest.raises(UnwritableOutput, match="not a directory"):
        with atomic_dir(f):
            pytest.fail("must not be entered")
    with pytest.raises(UnwritableOutput, match="cannot write"):
        with atomic_dir(f / "sub"):  # its parent is a file
            pytest.fail("must not be entered")
    with pytest.raises(UnwritableOutput, match="cannot write"):
        with atomic_path(f / "x.json"):
            pytest.fail("must not be entered")
    assert snapshot(tmp_path) == {"out": b"I am a file"}
