"""Tests for get_datasets.py / partx.download against a local HTTP server.

Only 127.0.0.1 is ever contacted: the registry is injected and every file URL
points at the local server (directly or through the mirror override).
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from partx import download as dl

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "get_datasets.py"

ENV_TEMPLATE = """#!/bin/bash
# Dataset locations, sourced by the train_*.sh scripts.

export DATADIR_JetClass=./datasets/JetClass
export DATADIR_QuarkGluon=./datasets/QuarkGluon
export DATADIR_TopLandscape=./datasets/TopLandscape
export DATADIR_TrackML=./datasets/TrackML
export DATADIR_Pileup=./datasets/Pileup
"""


# --------------------------------------------------------------------------- #
# local server
# --------------------------------------------------------------------------- #
class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        st = self.server.state
        st.requests.append({"path": self.path, "range": self.headers.get("Range")})
        data = st.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start, status = 0, 200
        rng = self.headers.get("Range")
        if rng and not st.ignore_range:
            m = re.fullmatch(r"bytes=(\d+)-", rng)
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = data[start:]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if st.drop_after is not None:  # send a prefix, then hang up
            n, st.drop_after = st.drop_after, None
            self.wfile.write(body[:n])
            self.wfile.flush()
            self.close_connection = True
            return
        if st.stall_after is not None:  # send a prefix, then go silent (bounded) without hanging up
            n, st.stall_after = st.stall_after, None
            self.wfile.write(body[:n])
            self.wfile.flush()
            st.release.wait(timeout=20)
            self.close_connection = True
            return
        self.wfile.write(body)


class LocalServer:
    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.requests: list[dict] = []
        self.drop_after: int | None = None
        self.stall_after: int | None = None
        self.release = threading.Event()  # ends a stall
        self.ignore_range = False
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.state = self
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def add(self, name: str, data: bytes) -> str:
        self.files["/" + name] = data
        return f"{self.url}/{name}"

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = LocalServer()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _no_mirror_env(monkeypatch):
    monkeypatch.delenv(dl.MIRROR_ENV, raising=False)


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #
PAYLOAD = random.Random(1234).randbytes(300_000)  # incompressible, several chunks


def make_tar(files: dict[str, bytes], symlinks: dict[str, str] | None = None,
             hardlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tf.addfile(info)
        for name, target in (hardlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.LNKTYPE
            info.linkname = target
            tf.addfile(info)
    return buf.getvalue()


def make_zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


GOOD_TAR = make_tar({"val_5M/HToBB_100.root": PAYLOAD, "val_5M/readme.txt": b"toy\n"})


def registry(url: str, checksum: str | None, name: str = "toy_val.tar", extract_to: str = "Pythia"):
    """A one-file 'JetClass' registry (so the real DATADIR_JetClass line gets updated)."""
    return {
        "JetClass": dl.DatasetSpec(
            name="JetClass",
            files=(dl.RemoteFile(name=name, url=url, md5=checksum, subset="val",
                                 extract_to=extract_to),),
            offline_hint="offline? run: python -m partx.datagen jetclass --out {dsdir_rel} --preset small",
        )
    }


@pytest.fixture
def env_copy(tmp_path) -> Path:
    src = REPO / "env.sh"
    dst = tmp_path / "env.sh"
    if src.exists():
        shutil.copyfile(src, dst)
    else:
        dst.write_text(ENV_TEMPLATE)
    return dst


def fetch(reg, tmp_path, env, **kw):
    kw.setdefault("retry_wait", 0)
    kw.setdefault("progress", False)
    kw.setdefault("log", lambda msg: None)
    return dl.fetch_dataset("JetClass", tmp_path / "datasets", registry=reg, env_file=env, **kw)


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".partx-extract-")
            or p.name.endswith(".part") or p.name.endswith(".tmp")]


# --------------------------------------------------------------------------- #
# download + extract + env.sh
# --------------------------------------------------------------------------- #
def test_good_checksum_extracts_and_updates_env(server, tmp_path, env_copy):
    before = env_copy.read_text()
    server.add("toy_val.tar", GOOD_TAR)
    # official URL points at a closed local port: the mirror must be what is used
    reg = registry(f"http://127.0.0.1:{closed_port()}/toy_val.tar", md5(GOOD_TAR))

    dsdir = fetch(reg, tmp_path, env_copy, mirror=server.url, progress=True)

    assert dsdir == (tmp_path / "datasets" / "JetClass").resolve()
    root_file = dsdir / "Pythia" / "val_5M" / "HToBB_100.root"
    assert root_file.read_bytes() == PAYLOAD
    assert (dsdir / "Pythia" / "val_5M" / "readme.txt").read_text() == "toy\n"
    assert not (dsdir / "toy_val.tar").exists()          # archive removed after extraction
    assert (dsdir / ".toy_val.tar.done").read_text().strip() == md5(GOOD_TAR)
    assert leftovers(tmp_path) == []

    after = env_copy.read_text()
    assert f"export DATADIR_JetClass={dsdir}\n" in after
    old = [l for l in before.splitlines() if not l.startswith("export DATADIR_JetClass=")]
    new = [l for l in after.splitlines() if not l.startswith("export DATADIR_JetClass=")]
    assert old == new                                     # everything else untouched
    assert after.count("DATADIR_JetClass=") == 1

    # second run: nothing is fetched again
    n = len(server.requests)
    fetch(reg, tmp_path, env_copy, mirror=server.url)
    assert len(server.requests) == n


def test_mirror_from_environment_and_registry_url(server, tmp_path, env_copy, monkeypatch):
    server.add("toy_val.tar", GOOD_TAR)
    monkeypatch.setenv(dl.MIRROR_ENV, server.url)
    reg = registry(f"http://127.0.0.1:{closed_port()}/toy_val.tar", md5(GOOD_TAR))
    fetch(reg, tmp_path / "a", env_copy)
    assert server.requests[-1]["path"] == "/toy_val.tar"

    monkeypatch.delenv(dl.MIRROR_ENV)
    reg = registry(f"{server.url}/toy_val.tar", md5(GOOD_TAR))  # plain registry URL
    fetch(reg, tmp_path / "b", env_copy)
    assert (tmp_path / "b/datasets/JetClass/Pythia/val_5M/HToBB_100.root").exists()


def test_archive_copied_by_hand_is_used_without_network(tmp_path, env_copy):
    dsdir = tmp_path / "datasets" / "JetClass"
    dsdir.mkdir(parents=True)
    (dsdir / "toy_val.tar").write_bytes(GOOD_TAR)
    reg = registry(f"http://127.0.0.1:{closed_port()}/toy_val.tar", md5(GOOD_TAR))
    fetch(reg, tmp_path, env_copy, keep_archives=True)
    assert (dsdir / "Pythia/val_5M/HToBB_100.root").read_bytes() == PAYLOAD
    assert (dsdir / "toy_val.tar").exists()


def test_bad_checksum_raises_and_leaves_nothing(server, tmp_path, env_copy):
    before = env_copy.read_text()
    server.add("toy_val.tar", GOOD_TAR)
    wrong = "0" * 32
    with pytest.raises(dl.ChecksumError) as ei:
        fetch(registry(f"{server.url}/toy_val.tar", wrong), tmp_path, env_copy)
    msg = str(ei.value)
    assert "toy_val.tar" in msg and wrong in msg and md5(GOOD_TAR) in msg
    dsdir = tmp_path / "datasets" / "JetClass"
    assert not (dsdir / "toy_val.tar").exists()
    assert not (dsdir / "toy_val.tar.part").exists()
    assert not (dsdir / "Pythia").exists()
    assert env_copy.read_text() == before


def test_checksum_override_is_applied(server, tmp_path, env_copy):
    server.add("toy_val.tar", GOOD_TAR)
    with pytest.raises(dl.ChecksumError):
        fetch(registry(f"{server.url}/toy_val.tar", md5(GOOD_TAR)), tmp_path, env_copy,
              checksums={"toy_val.tar": "f" * 32})


def test_unknown_md5_downloads_with_warning(server, tmp_path, env_copy, capsys):
    server.add("toy_val.tar", GOOD_TAR)
    dsdir = fetch(registry(f"{server.url}/toy_val.tar", None), tmp_path, env_copy)
    err = capsys.readouterr().err
    assert "NOT verified" in err and md5(GOOD_TAR) in err
    assert (dsdir / "Pythia/val_5M/HToBB_100.root").exists()
    assert (dsdir / ".toy_val.tar.done").read_text().strip() == "unverified"


# --------------------------------------------------------------------------- #
# resume
# --------------------------------------------------------------------------- #
def test_interrupted_transfer_resumes_on_rerun(server, tmp_path, env_copy):
    server.add("toy_val.tar", GOOD_TAR)
    server.drop_after = 100_000
    reg = registry(f"{server.url}/toy_val.tar", md5(GOOD_TAR))
    dsdir = tmp_path / "datasets" / "JetClass"

    with pytest.raises(dl.TransferInterruptedError) as ei:
        fetch(reg, tmp_path, env_copy, retries=0)
    assert "re-run" in str(ei.value)
    part = dsdir / "toy_val.tar.part"
    assert part.stat().st_size == 100_000
    assert not (dsdir / "toy_val.tar").exists()

    fetch(reg, tmp_path, env_copy, retries=0)
    assert server.requests[-1]["range"] == "bytes=100000-"
    assert len(server.requests) == 2
    assert (dsdir / "Pythia/val_5M/HToBB_100.root").read_bytes() == PAYLOAD
    assert not part.exists()


def test_interrupted_transfer_retries_automatically(server, tmp_path):
    url = server.add("blob.bin", PAYLOAD)
    server.drop_after = 12_345
    out = dl.download_file(url, tmp_path / "blob.bin", md5(PAYLOAD), retries=1, retry_wait=0,
                           progress=False, log=lambda m: None)
    assert out.read_bytes() == PAYLOAD
    assert [r["range"] for r in server.requests] == [None, "bytes=12345-"]


def test_stalled_transfer_hits_read_timeout_and_resumes(server, tmp_path):
    url = server.add("blob.bin", PAYLOAD)
    server.stall_after = 200_000                              # connection stays open, silent
    t0 = time.monotonic()
    out = dl.download_file(url, tmp_path / "blob.bin", md5(PAYLOAD), retries=1, retry_wait=0,
                           read_timeout=0.5, progress=False, log=lambda m: None)
    assert time.monotonic() - t0 < 10
    assert out.read_bytes() == PAYLOAD
    first, second = server.requests
    assert first["range"] is None
    assert 0 < int(re.fullmatch(r"bytes=(\d+)-", second["range"])[1]) <= 200_000


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    url = server.add("blob.bin", PAYLOAD)
    server.ignore_range = True
    (tmp_path / "blob.bin.part").write_bytes(b"garbage" * 1000)
    out = dl.download_file(url, tmp_path / "blob.bin", md5(PAYLOAD), progress=False,
                           log=lambda m: None)
    assert server.requests[-1]["range"] == "bytes=7000-"   # asked to resume ...
    assert out.read_bytes() == PAYLOAD                       # ... got 200 and restarted
    assert not (tmp_path / "blob.bin.part").exists()


def test_corrupt_partial_is_caught_by_md5(server, tmp_path):
    url = server.add("blob.bin", PAYLOAD)
    (tmp_path / "blob.bin.part").write_bytes(b"x" * 5000)   # wrong prefix, resumed
    with pytest.raises(dl.ChecksumError):
        dl.download_file(url, tmp_path / "blob.bin", md5(PAYLOAD), progress=False,
                         log=lambda m: None)
    assert not (tmp_path / "blob.bin.part").exists()
    assert not (tmp_path / "blob.bin").exists()
    out = dl.download_file(url, tmp_path / "blob.bin", md5(PAYLOAD), progress=False,
                           log=lambda m: None)
    assert out.read_bytes() == PAYLOAD


def test_complete_partial_file_416(server, tmp_path):
    url = server.add("blob.bin", PAYLOAD)
    (tmp_path / "blob.bin.part").write_bytes(PAYLOAD)       # fully downloaded, not renamed
    out = dl.download_file(url, tmp_path / "blob.bin", md5(PAYLOAD), progress=False,
                           log=lambda m: None)
    assert out.read_bytes() == PAYLOAD


# --------------------------------------------------------------------------- #
# safe extraction
# --------------------------------------------------------------------------- #
def test_tar_with_parent_member_is_refused(server, tmp_path, env_copy):
    before = env_copy.read_text()
    evil = make_tar({"ok.txt": b"fine", "../evil": b"pwned"})
    server.add("evil.tar", evil)
    reg = registry(f"{server.url}/evil.tar", md5(evil), name="evil.tar", extract_to=".")
    with pytest.raises(dl.UnsafeArchiveError, match=r"\.\./evil"):
        fetch(reg, tmp_path, env_copy)
    dsdir = tmp_path / "datasets" / "JetClass"
    assert not (tmp_path / "datasets" / "evil").exists()
    assert not (tmp_path / "evil").exists()
    assert not (dsdir / "ok.txt").exists()                  # nothing half-extracted
    assert leftovers(tmp_path) == []
    assert env_copy.read_text() == before


@pytest.mark.parametrize("kind", [
    "dotdot_nested", "symlink_out", "symlink_abs", "hardlink_out",
    "symlink_chain", "zip_dotdot", "zip_absolute",
])
def test_safe_extract_refuses(tmp_path, kind):
    target = tmp_path / "target"
    outside = tmp_path / "outside.txt"
    if kind == "dotdot_nested":
        data, suffix = make_tar({"a/b/../../../outside.txt": b"x"}), ".tar"
    elif kind == "symlink_out":
        data, suffix = make_tar({}, symlinks={"sub/link": "../../outside.txt"}), ".tar"
    elif kind == "symlink_abs":
        data, suffix = make_tar({}, symlinks={"link": str(outside)}), ".tar"
    elif kind == "hardlink_out":
        data, suffix = make_tar({}, hardlinks={"link": "../outside.txt"}), ".tar"
    elif kind == "symlink_chain":  # each link looks harmless on its own
        data, suffix = make_tar({}, symlinks={"here": ".", "up": "here/.."}), ".tar"
    elif kind == "zip_dotdot":
        data, suffix = make_zip({"../outside.txt": b"x"}), ".zip"
    else:
        data, suffix = make_zip({str(outside): b"x"}), ".zip"
    archive = tmp_path / f"bad{suffix}"
    archive.write_bytes(data)
    with pytest.raises(dl.UnsafeArchiveError):
        dl.safe_extract(archive, target)
    assert not outside.exists()
    assert not any(p.is_symlink() for p in tmp_path.rglob("*"))
    assert leftovers(tmp_path) == []


def test_safe_extract_tar_absolute_member_stays_inside(tmp_path):
    """tarfile's data filter strips the leading '/' of an absolute member: it lands in the target."""
    outside = tmp_path / "outside.txt"
    archive = tmp_path / "abs.tar"
    archive.write_bytes(make_tar({str(outside): b"x"}))
    dl.safe_extract(archive, tmp_path / "target")
    assert not outside.exists()
    assert (tmp_path / "target" / str(outside).lstrip("/")).read_bytes() == b"x"
    assert leftovers(tmp_path) == []


def test_safe_extract_allows_internal_links_and_zip(tmp_path):
    tar = tmp_path / "ok.tar"
    tar.write_bytes(make_tar({"d/a.txt": b"A"}, symlinks={"d/l": "a.txt"}))
    assert dl.safe_extract(tar, tmp_path / "t") == ["d"]
    assert (tmp_path / "t/d/l").read_bytes() == b"A"
    z = tmp_path / "ok.zip"
    z.write_bytes(make_zip({"processed/data.pt": b"Z"}))
    dl.safe_extract(z, tmp_path / "t")                        # merges into existing dir
    assert (tmp_path / "t/processed/data.pt").read_bytes() == b"Z"
    assert (tmp_path / "t/d/a.txt").exists()


# --------------------------------------------------------------------------- #
# network failure
# --------------------------------------------------------------------------- #
def test_unreachable_server_fails_fast(tmp_path, env_copy):
    port = closed_port()
    reg = registry(f"http://127.0.0.1:{port}/toy_val.tar", md5(GOOD_TAR))
    t0 = time.monotonic()
    with pytest.raises(dl.NetworkUnreachableError) as ei:
        fetch(reg, tmp_path, env_copy, mirror=f"http://127.0.0.1:{port}", connect_timeout=5)
    assert time.monotonic() - t0 < 5
    msg = str(ei.value)
    assert "network unreachable" in msg and f"127.0.0.1:{port}" in msg
    assert "partx.datagen jetclass" in msg                    # offline hint attached
    assert not (tmp_path / "datasets/JetClass/toy_val.tar.part").exists()


def test_cli_unreachable_is_one_clear_error(tmp_path):
    env = dict(os.environ, **{dl.MIRROR_ENV: f"http://127.0.0.1:{closed_port()}"})
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "JetClass", "--subsets", "val", "-d", str(tmp_path / "d"),
         "-e", str(tmp_path / "env.sh"), "--no-progress"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert time.monotonic() - t0 < 15
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "network unreachable" in proc.stderr
    assert "python -m partx.datagen jetclass" in proc.stderr
    assert not (tmp_path / "env.sh").exists()


# --------------------------------------------------------------------------- #
# CLI usage errors
# --------------------------------------------------------------------------- #
def test_cli_unknown_dataset_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "NoSuchData", "-e", str(tmp_path / "e.sh")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "unknown dataset 'NoSuchData'" in proc.stderr
    assert "JetClass" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "e.sh").exists()


def test_cli_unknown_subset_exit_2(tmp_path, capsys):
    import importlib.util
    spec = importlib.util.spec_from_file_location("get_datasets_cli", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rc = mod.run_main(mod.main, ["JetClass", "--subsets", "training", "-d", str(tmp_path), "--no-env"])
    assert rc == 2
    assert "unknown subset" in capsys.readouterr().err
    assert mod.main(["jetclass", "--list"]) == 0


VAL_TAR = "JetClass_Pythia_val_5M.tar"  # the real registry's file behind '--subsets val'

BAD_REQUESTS = {
    "no dataset": lambda t: [],
    "unknown subset": lambda t: ["JetClass", "--subsets", "training"],
    "negative connect timeout": lambda t: ["JetClass", "--connect-timeout", "-1"],
    "negative read timeout": lambda t: ["JetClass", "--read-timeout", "-5"],
    "zero read timeout": lambda t: ["JetClass", "--read-timeout", "0"],
    "negative retries": lambda t: ["JetClass", "--retries", "-1"],
    "malformed checksum": lambda t: ["JetClass", "--checksum", "nonsense"],
    "checksum for another file": lambda t: ["JetClass", "--checksum", "other.tar=" + "0" * 32],
    "data dir is a file": lambda t: ["JetClass", "-d", str(t / "afile")],
    "data dir below a file": lambda t: ["JetClass", "-d", str(t / "afile" / "sub")],
    "env file is a directory": lambda t: ["JetClass", "-e", str(t)],
}


def run_cli(args: list[str], cwd: Path, mirror: str, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, **{dl.MIRROR_ENV: mirror})
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60, **kw)


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_cli_bad_request_is_one_line_exit_2_before_download(server, tmp_path, case):
    server.add(VAL_TAR, GOOD_TAR)
    (tmp_path / "afile").write_text("not a directory\n")
    args = BAD_REQUESTS[case](tmp_path)
    defaults = ["--subsets", "val", "-d", str(tmp_path / "d"), "-e", str(tmp_path / "env.sh")]
    proc = run_cli(defaults + args, tmp_path, server.url)  # later options win
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("ERROR: ") and "Traceback" not in proc.stderr
    assert server.requests == []                              # refused before any download
    assert not (tmp_path / "env.sh").exists()
    assert (tmp_path / "afile").read_text() == "not a directory\n"


def test_cli_read_only_data_dir_exit_2(server, tmp_path):
    """root ignores permission bits: mount a read-only tmpfs in a private mount namespace."""
    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "-rm", "true"], capture_output=True).returncode != 0:
        pytest.skip("needs unshare -rm (user + mount namespaces) for a read-only mount")
    server.add(VAL_TAR, GOOD_TAR)
    ro = tmp_path / "ro"
    ro.mkdir()
    script = ('mount -t tmpfs -o ro tmpfs "$1" && shift && exec "$@"')
    env = dict(os.environ, **{dl.MIRROR_ENV: server.url})
    proc = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", str(ro), sys.executable, str(SCRIPT),
         "JetClass", "--subsets", "val", "-d", str(ro / "data"), "-e", str(tmp_path / "env.sh")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"ERROR: cannot create data directory {ro / 'data' / 'JetClass'}: Read-only file system"]
    assert server.requests == []


def test_cli_ctrl_c_keeps_partial_file_and_rerun_resumes(server, tmp_path):
    server.add(VAL_TAR, GOOD_TAR)
    server.stall_after = 200_000                              # then silent until released
    args = ["JetClass", "--subsets", "val", "-d", str(tmp_path / "d"), "-e", str(tmp_path / "env.sh"),
            "--no-progress", "--checksum", f"{VAL_TAR}={md5(GOOD_TAR)}"]
    env = dict(os.environ, **{dl.MIRROR_ENV: server.url})
    part = tmp_path / "d" / "JetClass" / f"{VAL_TAR}.part"
    proc = subprocess.Popen([sys.executable, str(SCRIPT), *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # not inherited SIG_IGN
    try:
        deadline = time.monotonic() + 15
        while not (part.exists() and part.stat().st_size > 0):
            assert time.monotonic() < deadline and proc.poll() is None, "download never started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "re-run the same command to resume" in err
    kept = part.stat().st_size
    assert 0 < kept <= 200_000
    assert not (tmp_path / "env.sh").exists()

    server.release.set()
    done = run_cli(args, tmp_path, server.url)
    assert done.returncode == 0, done.stderr
    assert server.requests[-1]["range"] == f"bytes={kept}-"
    assert (tmp_path / "d/JetClass/Pythia/val_5M/HToBB_100.root").read_bytes() == PAYLOAD
    assert not part.exists()


def test_registry_facts():
    jc = dl.REGISTRY["JetClass"]
    assert jc.subsets == ["train", "val", "test"]
    assert len(jc.select(["val", "test"])) == 2 and len(jc.select(None)) == 12
    assert all(f.md5 and len(f.md5) == 32 for f in jc.files)
    assert dl.REGISTRY["TrackML"].select(None)[0].name == "tracking-6k-processed.zip"
    assert {s.variable for s in dl.REGISTRY.values()} == {
        "DATADIR_JetClass", "DATADIR_QuarkGluon", "DATADIR_TopLandscape",
        "DATADIR_TrackML", "DATADIR_Pileup"}


# --------------------------------------------------------------------------- #
# env.sh
# --------------------------------------------------------------------------- #
def test_update_env_file_in_place(tmp_path):
    env = tmp_path / "env.sh"
    text = ("#!/bin/bash\n# keep me\nexport DATADIR_JetClass=old\r\n"
            "export OTHER=1\n  DATADIR_JetClass=dup\nexport DATADIR_JetClassX=keep")
    env.write_text(text, newline="")
    os.chmod(env, 0o750)
    dl.update_env_file(env, "DATADIR_JetClass", "/data/jet class")
    out = env.read_bytes().decode()
    assert out == ("#!/bin/bash\n# keep me\nexport DATADIR_JetClass='/data/jet class'\r\n"
                   "export OTHER=1\nexport DATADIR_JetClass='/data/jet class'\n"
                   "export DATADIR_JetClassX=keep")
    assert os.stat(env).st_mode & 0o777 == 0o750
    dl.update_env_file(env, "DATADIR_Pileup", "/p")
    assert env.read_text().endswith("export DATADIR_JetClassX=keep\nexport DATADIR_Pileup=/p\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["env.sh"]

    fresh = tmp_path / "sub" / "new.sh"
    dl.update_env_file(fresh, "DATADIR_TrackML", "/t")
    assert fresh.read_text() == "export DATADIR_TrackML=/t\n"


def test_repo_env_sh_has_all_variables():
    text = (REPO / "env.sh").read_text()
    for var in ("JetClass", "QuarkGluon", "TopLandscape", "TrackML", "Pileup"):
        assert re.search(rf"^export DATADIR_{var}=", text, re.M), var
