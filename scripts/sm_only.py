#!/usr/bin/env python
"""Cut a CUDA extension's setup.py down to one GPU architecture (used by scripts/gpu_check.sh).

mamba-ssm's and causal-conv1d's setup.py hard-code one ``-gencode`` pair per architecture
(``cc_flag.append("-gencode")`` then ``cc_flag.append("arch=compute_XX,code=sm_XX")``; nine with CUDA 13)
and ignore TORCH_CUDA_ARCH_LIST for them, so a source build compiles every kernel nine times. This
replaces every pair except ``compute_<keep>`` by ``pass`` (the pairs sit inside ``if`` blocks, which must
not become empty), and refuses (exit 1, file untouched) unless exactly one pair is kept and the result
still compiles as Python.

    python scripts/sm_only.py path/to/setup.py 90
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

PAIR = re.compile(r'^([ \t]*)cc_flag\.append\("-gencode"\)\n[ \t]*cc_flag\.append\("arch=compute_(\w+),code=sm_\w+"\)\n', re.M)


def restrict(text: str, keep: str) -> tuple[str, int]:
    """``text`` with every -gencode pair but ``compute_<keep>`` replaced by ``pass``; and how many were kept."""
    kept = 0

    def sub(m: re.Match) -> str:
        nonlocal kept
        if m.group(2) == keep:
            kept += 1
            return m.group(0)
        return f"{m.group(1)}pass  # sm_only.py: sm_{keep} only\n"

    return PAIR.sub(sub, text), kept


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: sm_only.py SETUP_PY ARCH (e.g. 90)", file=sys.stderr)
        return 2
    path, keep = Path(argv[0]), argv[1]
    text, kept = restrict(path.read_text(), keep)
    if kept != 1:
        print(f"sm_only.py: {path}: expected one compute_{keep} -gencode pair, found {kept}; left unchanged", file=sys.stderr)
        return 1
    compile(text, str(path), "exec")
    path.write_text(text)
    print(f"{path}: -gencode for sm_{keep} only")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
