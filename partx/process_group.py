"""Run a child command as its own process group and stop the whole group on Ctrl-C, within seconds.

A training is a tree of processes (weaver, its data-loader workers, DDP ranks). Ctrl-C in a terminal
sends SIGINT to every one of them: each Python worker prints its own KeyboardInterrupt traceback
(thousands of lines) and weaver may wait on a worker that is already gone (a hang was seen once in
nine tries). Here the child runs in a new session, so only the parent sees the terminal's Ctrl-C;
the parent then sends ONE signal to the child's group (SIGTERM by default: Python dies on it without a
traceback), waits ``grace`` seconds, and SIGKILLs what is left. On Linux the child also gets SIGTERM if
the parent dies (PR_SET_PDEATHSIG), so a killed launcher leaves no orphaned training behind.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            pass


def stop_group(proc: subprocess.Popen, first: int = signal.SIGTERM, grace: float = 10.0) -> None:
    """Send ``first`` to ``proc``'s process group, then SIGKILL whatever is left after ``grace`` s."""
    try:
        os.killpg(proc.pid, first)
        proc.wait(timeout=grace)
    except (ProcessLookupError, subprocess.TimeoutExpired, KeyboardInterrupt):
        pass  # gone already / too slow / a second Ctrl-C: kill below
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # data-loader workers outlive their parent otherwise
        except ProcessLookupError:
            pass
        proc.wait()


def run_group(cmd: list[str], *, first: int = signal.SIGTERM, grace: float = 10.0, **popen) -> int:
    """Run ``cmd`` in its own process group; return its exit status.

    KeyboardInterrupt (Ctrl-C) and SIGTERM received by this process stop the group (``stop_group``) and
    are re-raised as KeyboardInterrupt once it is gone.
    """
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        proc = subprocess.Popen(cmd, start_new_session=True, preexec_fn=_die_with_parent, **popen)
        try:
            return proc.wait()
        except BaseException:
            stop_group(proc, first, grace)
            raise
    finally:
        signal.signal(signal.SIGTERM, previous)
