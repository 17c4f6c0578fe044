"""Bad inputs for the per-entry-point bad-input suites, and the checks every suite makes.

Factories make a damaged copy of a good file (0-byte, half-truncated, tail-truncated ROOT file, a
renamed branch, NaN/inf in a branch, a zero-particle jet, a missing branch); ``run`` runs a command
line, optionally with some directories mounted read-only (root ignores chmod, so a bind mount in a
private mount namespace is the only honest read-only test; ``readonly_supported()`` says whether this
machine allows it); ``call`` runs a ``main(argv)`` in-process with the same result type (for cases
where a fresh process changes nothing); ``interrupt`` sends Ctrl-C to a command's process group once
it has started its work; ``assert_user_error`` checks the discipline of partx.cli (exit 2, one
``ERROR:`` line naming the problem, no traceback); ``snapshot`` lets a test assert that a good output
is byte-identical after a failed run; ``prediction_file`` writes a weaver ``--predict-output`` file.

    from bad_inputs import BadRoot, assert_user_error, run, snapshot
"""

from __future__ import annotations

import functools
import hashlib
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

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


def call(main: Callable[[list[str]], int], argv: list[str], capsys) -> subprocess.CompletedProcess:
    """``main(argv)`` in this process (argparse's SystemExit included), as ``run`` would report it."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return subprocess.CompletedProcess(argv, code, out.out, out.err)


def default_sigint() -> None:
    """Restore the default Ctrl-C behaviour in a child: a shell runs background jobs (``cmd &``, nohup)
    with SIGINT ignored and children inherit that, so a suite started that way would test nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt(cmd: list[str], started: Callable[[], bool], *, cwd: Path = REPO, env: dict | None = None,
              start_timeout: float = 120, stop_timeout: float = 15) -> tuple[subprocess.CompletedProcess, float]:
    """Start ``cmd`` in its own process group, send SIGINT to the group (a terminal's Ctrl-C) once
    ``started()`` is true; return its result and the seconds it took to exit after the signal.

    Fails if the command ends before ``started()`` or is still running ``stop_timeout`` s after SIGINT
    (then the group is killed).
    """
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    proc = subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, preexec_fn=default_sigint)
    try:
        deadline = time.monotonic() + start_timeout
        while not started():
            if proc.poll() is not None:
                out, err = proc.communicate()
                raise AssertionError(f"ended (exit {proc.returncode}) before its work started:\n{(out + err)[-3000:]}")
            assert time.monotonic() < deadline, "its work never started"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        t0 = time.monotonic()
        out, err = proc.communicate(timeout=stop_timeout)
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err), time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


def prediction_file(path: Path, labels: np.ndarray, names: list[str], drop: str | None = None, seed: int = 0) -> Path:
    """A file laid out as weaver's ``--predict-output``: ``score_<label>`` and one-hot ``<label>`` per jet,
    scores favouring the true class; ``drop`` leaves one branch out."""
    rng = np.random.default_rng(seed)
    scores = rng.dirichlet(np.ones(len(names)), size=len(labels))
    scores[np.arange(len(labels)), labels] += 1.0
    scores /= scores.sum(1, keepdims=True)
    branches = {**{f"score_{n}": scores[:, i] for i, n in enumerate(names)},
                **{n: (labels == i).astype(np.int32) for i, n in enumerate(names)}}
    branches.pop(drop, None)
    with uproot.recreate(path) as f:
        f.mktree("Events", {k: v.dtype for k, v in branches.items()}).extend(branches)
    return path


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
