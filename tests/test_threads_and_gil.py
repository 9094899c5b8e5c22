"""Native calls release the GIL.

The check is deterministic rather than timing based: with a huge switch interval,
CPython only hands the GIL to another thread when the running thread blocks or
releases it explicitly. A counter thread is parked on an Event, woken just
before the call under test, and counts to a fixed limit. If the call releases
the GIL the counter runs (and finishes) while the call is in progress; if the call
holds the GIL the counter cannot take a single step before the call returns.
"""
import sys
import threading

import numpy as np
import pytest

import nearly

LIMIT = 20000


def counter_progress_during(call, attempts=5):
    """Return the counter value observed right after call() returns (max over a few
    attempts: 0 means the counter never ran while call() was executing)."""
    best = 0
    old = sys.getswitchinterval()
    try:
        for _ in range(attempts):
            go = threading.Event()
            state = {"count": 0}

            def count():
                go.wait()
                c = 0
                while c < LIMIT:
                    c += 1
                    state["count"] = c

            t = threading.Thread(target=count, daemon=True)
            t.start()
            sys.setswitchinterval(100.0)
            go.set()  # the counter is runnable now, but needs the GIL we hold
            call()
            seen = state["count"]  # read before anything else can release the GIL
            sys.setswitchinterval(old)
            t.join(timeout=60)
            best = max(best, seen)
            if best:
                break
    finally:
        sys.setswitchinterval(old)
    return best


def test_method_control_holding_the_gil():
    # negative control: a builtin that never releases the GIL
    assert counter_progress_during(lambda: sum(range(3_000_000))) == 0


def test_method_control_releasing_the_gil():
    # positive control: a call that releases the GIL
    import time
    assert counter_progress_during(lambda: time.sleep(0.05)) > 0


@pytest.fixture(scope="module")
def big_index():
    rng = np.random.default_rng(1)
    xb = rng.standard_normal((100_000, 64)).astype(np.float32)
    index = nearly.IndexFlatL2(64)
    index.add(xb)
    return index, xb, rng.standard_normal((64, 64)).astype(np.float32)


@pytest.mark.parametrize("nq", [1, 64])
def test_search_releases_gil(big_index, nq):
    index, _, xq = big_index
    assert counter_progress_during(lambda: index.search(xq[:nq], 10)) > 0


def test_range_search_releases_gil(big_index):
    index, _, xq = big_index
    assert counter_progress_during(lambda: index.range_search(xq[:16], 60.0)) > 0


def test_add_releases_gil(big_index):
    _, xb, _ = big_index
    index = nearly.IndexFlatIP(64)
    assert counter_progress_during(lambda: index.add(xb)) > 0


def test_knn_function_releases_gil(big_index):
    _, xb, xq = big_index
    assert counter_progress_during(lambda: nearly.knn(xq[:32], xb, 5)) > 0


def test_filtered_search_releases_gil(big_index):
    index, _, xq = big_index
    params = nearly.SearchParameters(sel=nearly.IDSelectorRange(0, 80_000))
    assert counter_progress_during(lambda: index.search(xq[:8], 10, params=params)) > 0


def test_serialize_releases_gil(big_index):
    index, _, _ = big_index
    assert counter_progress_during(lambda: nearly.serialize_index(index)) > 0


def test_searches_from_two_threads_and_a_python_loop(big_index):
    """Smoke check of the intended use: Python work keeps running while two
    threads search; results are unaffected."""
    index, _, xq = big_index
    ref = index.search(xq, 10)
    stop = threading.Event()
    ticks = [0]

    def spin():
        while not stop.is_set():
            ticks[0] += 1

    out = []

    def search():
        out.append(index.search(xq, 10))

    threads = [threading.Thread(target=search) for _ in range(2)]
    s = threading.Thread(target=spin)
    s.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    s.join()
    assert ticks[0] > 0
    for D, I in out:
        np.testing.assert_array_equal(I, ref[1])
        np.testing.assert_array_equal(D, ref[0])


def test_first_parallel_call_after_a_resize_uses_every_thread():
    """Workers started by a parallel call take part in that very call (they
    used to wait for the next one, so the first call after a resize, or in a
    new process, ran on one thread)."""
    import subprocess
    import sys

    code = ("import nearly; nearly.omp_set_num_threads(2); a = nearly._nearly._pool_threads_in_one_call(8); "
            "nearly.omp_set_num_threads(3); b = nearly._nearly._pool_threads_in_one_call(8); print(a, b)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["2", "2"]
