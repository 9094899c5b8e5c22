import os
import sys

# numpy's OpenBLAS spins a thread per core; on a small shared machine that
# makes LAPACK calls (the BEBR trainer's SVDs) several times slower. One BLAS
# thread is plenty for test-sized problems. Set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import pytest

# Make tests/_testutil.py importable from every test directory (tests/compat, ...).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session", autouse=True)
def ctrl_c_raises_keyboard_interrupt():
    """The Ctrl-C tests send SIGINT to this process and expect Python's
    KeyboardInterrupt. A shell without job control starts background jobs
    with SIGINT ignored, and Python then leaves it ignored: restore the
    handler an interactive run has."""
    import signal
    before = signal.getsignal(signal.SIGINT) if hasattr(signal, "SIGINT") else None
    if before == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if before == signal.SIG_IGN:
        signal.signal(signal.SIGINT, before)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope="module")
def faiss_one_thread():
    """faiss on one OpenMP thread for a module: its threads spin-wait, and on a
    loaded 2-core machine its k-means took 50x longer with 2 threads than with 1."""
    faiss = pytest.importorskip("faiss")
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


@pytest.fixture
def faiss():
    """The reference implementation; tests using it are skipped without faiss-cpu."""
    return pytest.importorskip("faiss")


def _simd_levels():
    import nearly

    return nearly.simd_levels_supported()


@pytest.fixture(params=_simd_levels())
def level(request):
    """Runs the test once at each SIMD level this CPU supports (the scalar
    reference included), restoring the level afterwards."""
    import nearly

    before = nearly.simd_level()
    nearly.set_simd_level(request.param)
    yield request.param
    nearly.set_simd_level(before)


@pytest.fixture
def restore_threads():
    """Restore nearly's thread-pool size after a test that changes it."""
    import nearly

    n = nearly.omp_get_max_threads()
    yield n
    nearly.omp_set_num_threads(n)
