"""Fixtures for the microbenchmarks in bench/ (run: python -m pytest bench --benchmark-only).

Kernel benchmarks are single-threaded by default, for every library, so that
they compare kernels and not thread pools: numpy's OpenBLAS is capped through
OPENBLAS_NUM_THREADS (set here, before numpy loads), nearly and faiss through
omp_set_num_threads.  NEARLY_BENCH_THREADS=N changes that.

This folder is never collected by `python -m pytest tests` (pyproject's
testpaths is tests/ only).
"""
import os
import sys

_THREADS = os.environ.get("NEARLY_BENCH_THREADS", "1")
if "numpy" not in sys.modules:  # OpenBLAS reads these once, at load time
    for _v in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_v, _THREADS)

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO_ROOT, "..", "shared", "data", "pypi-minilm-100k.npz")


def _nearly():
    try:
        import nearly
    except Exception as e:  # noqa: BLE001
        return None, f"nearly not importable: {type(e).__name__}: {e}"
    return nearly, ""


def pytest_generate_tests(metafunc):
    """Parametrize `simd` over nearly.simd_levels_supported()."""
    if "simd" not in metafunc.fixturenames:
        return
    nearly, why = _nearly()
    if nearly is None:
        metafunc.parametrize("simd", [pytest.param(None, marks=pytest.mark.skip(reason=why))], ids=["no-nearly"])
        return
    levels = list(nearly.simd_levels_supported())
    metafunc.parametrize("simd", levels, ids=levels, indirect=True)


@pytest.fixture
def simd(request):
    """Switch nearly to one SIMD level for the test, restore the previous one after."""
    import nearly

    before = nearly.simd_level()
    nearly.set_simd_level(request.param)
    assert nearly.simd_level() == request.param
    try:
        yield request.param
    finally:
        nearly.set_simd_level(before)


@pytest.fixture(scope="session")
def threads():
    return int(_THREADS)


@pytest.fixture
def nearly_mod(threads):
    nearly, why = _nearly()
    if nearly is None:
        pytest.skip(why)
    before = nearly.omp_get_max_threads()
    nearly.omp_set_num_threads(threads)
    try:
        yield nearly
    finally:
        nearly.omp_set_num_threads(before)


@pytest.fixture
def faiss_mod(threads):
    faiss = pytest.importorskip("faiss")
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        yield faiss
    finally:
        faiss.omp_set_num_threads(before)


@pytest.fixture(scope="session")
def data():
    """Real MiniLM embeddings (float32): base (100k, 384), queries (1000, 384)."""
    if not os.path.exists(DATA):
        pytest.skip(f"benchmark data not found: {DATA}")
    with np.load(DATA) as z:
        return {
            "base": np.ascontiguousarray(z["base"], dtype=np.float32),
            "queries": np.ascontiguousarray(z["queries"], dtype=np.float32),
        }
