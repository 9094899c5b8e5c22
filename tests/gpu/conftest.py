"""GPU tests: each compares a GPU path with its CPU twin. Skipped, cleanly,
where there is no CUDA build or no device (CI has neither)."""
import numpy as np
import pytest

import nearly

HAS_GPU = nearly.has_cuda_build and nearly.get_num_gpus() > 0


def pytest_configure(config):
    config.addinivalue_line("markers", "no_gpu: runs without a GPU as well (CPU-side checks of the GPU API)")


def pytest_collection_modifyitems(config, items):
    if HAS_GPU:
        return
    skip = pytest.mark.skip(reason="no CUDA GPU (nearly.get_num_gpus() == 0)")
    for item in items:
        if "tests/gpu/" in str(item.fspath).replace("\\", "/") and "no_gpu" not in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def res():
    return nearly.StandardGpuResources()


@pytest.fixture
def cupy():
    return pytest.importorskip("cupy")


@pytest.fixture
def rng():
    return np.random.default_rng(7)
