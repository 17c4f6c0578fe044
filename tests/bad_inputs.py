"""Bad inputs for the per-entry-point bad-input suites, and the checks every suite makes.

Factories make a damaged copy of a good file (0-byte, half-truncated, tail-truncated ROOT file, a
renamed branch, NaN/inf in a branch, a zero-particle jet, a missing branch); ``run`` runs a command
line, optionally with some directories mounted read-only (root ignores chmod, so a bind mount in a
private mount namespace is the only honest read-only test; ``readonly_supported()`` says whether this
machine allows it); ``assert_user_error`` checks the discipline of partx.cli (exit 2, one ``ERROR:``
line naming the problem, no traceback); ``snapshot`` lets a test assert that a good output is
byte-identical after a failed run.

    from bad_inputs import BadRoot, assert_user_error, run, snapshot
"""

from __future__ import annotations

import functools
import hashlib
import os
import shlex
import subprocess
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------------
# damaged ROOT files


def _tree_name(f) -> str:
    names = [k.split(";")[0] for k, c in f.classnames().items() if c == "TTree"]
    assert len(names) == 1, names
    return names[0]


def _rewrite(src: Path, dst: Path, edit) -> Path:
    """Copy the single TTree of ``src`` to ``dst`` (classic TTree), after ``edit(arrays) -> arrays``."""
    with uproot.open(src) as f:
        name = _tree_name(f)
        tree = f[name]
        counters = {tree[k].count_branch.name for k in tree.keys() if tree[k].count_branch is not None}
        arrays = {k: tree[k].array() for k in tree.keys() if k not in counters}  # uproot rewrites counters
    arrays = edit(arrays)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with uproot.recreate(dst) as out:
        out.mktree(name, {k: v.type if isinstance(v, ak.Array) and v.ndim > 1 else np.asarray(v).dtype
                          for k, v in arrays.items()})
        out[name].extend({k: v if isinstance(v, ak.Array) and v.ndim > 1 else np.asarray(v) for k, v in arrays.items()})
    return dst


class BadRoot:
    """Damaged copies of a good ROOT file; every method writes ``dst`` and returns it."""

    @staticmethod
    def zero_byte(src: Path, dst: Path) -> Path:
        dst.write_bytes(b"")
        return dst

    @staticmethod
    def half_truncated(src: Path, dst: Path) -> Path:
        data = src.read_bytes()
        dst.write_bytes(data[: len(data) // 2])
        return dst

    @staticmethod
    def tail_truncated(src: Path, dst: Path, nbytes: int = 512) -> Path:
        """An interrupted copy missing its last ``nbytes``: uproot still opens it and most branches read."""
        data = src.read_bytes()
        dst.write_bytes(data[:-nbytes])
        return dst

    @staticmethod
    def renamed_branch(src: Path, dst: Path, old: str, new: str) -> Path:
        return _rewrite(src, dst, lambda a: {(new if k == old else k): v for k, v in a.items()})

    @staticmethod
    def missing_branch(src: Path, dst: Path, branch: str) -> Path:
        return _rewrite(src, dst, lambda a: {k: v for k, v in a.items() if k != branch})

    @staticmethod
    def nonfinite(src: Path, dst: Path, branch: str, value: float = float("nan"), entry: int = 1) -> Path:
        """``value`` (NaN, +inf, -inf) in the first element of ``branch`` at ``entry``."""

        def edit(a):
            arr = a[branch]
            if isinstance(arr, ak.Array) and arr.ndim > 1:
                flat = np.asarray(ak.flatten(arr)).copy()
                flat[int(ak.sum(ak.num(arr)[:entry]))] = value
                a[branch] = ak.unflatten(flat, ak.num(arr))
            else:
                arr = np.asarray(arr).copy()
                arr[entry] = value
                a[branch] = arr
            return a

        return _rewrite(src, dst, edit)

    @staticmethod
    def empty_jet(src: Path, dst: Path, entry: int = 0, prefix: str = "part_") -> Path:
        """Entry ``entry`` with zero particles in every jagged ``prefix*`` branch."""

        def edit(a):
            for k, v in a.items():
                if k.startswith(prefix) and isinstance(v, ak.Array) and v.ndim > 1:
                    counts = np.asarray(ak.num(v)).copy()
                    flat = np.asarray(ak.flatten(v))
                    start = int(counts[:entry].sum())
                    flat = np.concatenate([flat[:start], flat[start + counts[entry]:]])
                    counts[entry] = 0
                    a[k] = ak.unflatten(flat, counts)
            return a

        return _rewrite(src, dst, edit)


# ---------------------------------------------------------------------------------------------------
# running entry points


@functools.cache
def readonly_supported() -> bool:
    """Whether ``unshare -rm`` + a read-only bind mount works here (user namespaces may be disabled)."""
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount --bind -o ro /tmp /tmp && ! touch /tmp/.partx_ro_probe"],
                           capture_output=True)
    return probe.returncode == 0


def run(cmd: list[str], *, readonly: list[Path] = (), cwd: Path = REPO, env: dict | None = None,
        timeout: float = 600, input: str | None = None) -> subprocess.CompletedProcess:
    """Run ``cmd`` (text output); ``readonly`` directories are bind-mounted read-only for this command only."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    if readonly:
        mounts = " && ".join(f"mount --bind -o ro {shlex.quote(str(p))} {shlex.quote(str(p))}" for p in readonly)
        cmd = ["unshare", "-rm", "sh", "-c", f"{mounts} && exec {shlex.join(map(str, cmd))}"]
    return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout, input=input)


def python(*args: str | Path) -> list[str]:
    return [sys.executable, *map(str, args)]


def assert_user_error(res: subprocess.CompletedProcess, *needles: str) -> None:
    """Exit 2, no traceback, and an ``ERROR:`` line that mentions every needle (case-insensitive)."""
    out = res.stdout + res.stderr
    assert "Traceback" not in out, out[-3000:]
    assert res.returncode == 2, (res.returncode, out[-3000:])
    errors = [line for line in res.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1, res.stderr[-3000:]
    for needle in needles:
        assert needle.lower() in errors[0].lower(), (needle, errors[0])


def snapshot(path: Path) -> dict[str, str]:
    """sha256 of every file under ``path`` (or of ``path`` itself), to assert a good output is untouched."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p.relative_to(path) if p != path else p.name): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
