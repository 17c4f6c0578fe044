"""Shared pytest hooks: tests marked ``cuda`` skip cleanly without a CUDA device.

One marker selects every GPU test (``pytest -m cuda``, as scripts/gpu_check.sh does) and one place
decides when they skip, instead of a ``skipif`` per test file.
"""

import pytest
import torch


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (run scripts/gpu_check.sh on a GPU machine)")
    for item in items:
        if item.get_closest_marker("cuda"):
            item.add_marker(skip)
