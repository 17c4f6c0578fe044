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


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny tensors: one intra-op thread avoids thread-sync overhead on shared 2-core machines.
    Use per module with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
