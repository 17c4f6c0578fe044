"""Set ``export VAR=value`` in env.sh, the file the train_*.sh scripts source."""

from __future__ import annotations

import os
import re
import shlex
import stat
from pathlib import Path

from partx.atomic import atomic_write


def update_env_file(path: str | os.PathLike, var: str, value: str) -> Path:
    """Set ``export VAR=value`` in a shell env file atomically; return the file written.

    Every ``VAR=`` / ``export VAR=`` line is replaced (so a later duplicate cannot override it),
    or one is appended; every other byte, line endings included, and the file's mode are kept.
    A symlinked env file is updated at its target; a missing one is created.
    """
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var):
        raise ValueError(f"invalid variable name {var!r}")
    real = Path(os.path.realpath(path))
    text, mode = "", None
    if real.exists():
        text = real.read_bytes().decode("utf-8", "surrogateescape")
        mode = stat.S_IMODE(real.stat().st_mode)
    new = f"export {var}={shlex.quote(str(value))}"
    pattern = re.compile(rf"^[ \t]*(?:export[ \t]+)?{re.escape(var)}=")
    lines = text.splitlines(keepends=True)
    found = False
    for i, line in enumerate(lines):
        if pattern.match(line):
            lines[i] = new + line[len(line.rstrip("\r\n")):]
            found = True
    if not found:
        if lines and not lines[-1].endswith("\n"):
            lines.append("\n")
        lines.append(new + "\n")
    return atomic_write(real, "".join(lines).encode("utf-8", "surrogateescape"), mode=mode)
