"""faiss's TimeoutGuard: the calls of a block stop with TimedOutError (a
RuntimeError, as faiss raises, and a TimeoutError) once the time is spent,
leave the index as Ctrl-C would, and bind only the thread that set it."""
import math
import threading
import time

import numpy as np
import pytest

import nearly


def long_kmeans(d=64, n=20_000, k=1000):
    x = np.random.default_rng(0).random((n, d), dtype=np.float32)
    cp = nearly.ClusteringParameters()
    cp.niter = 1_000_000_000
    cp.verbose = False
    return nearly.Clustering(d, k, cp), x, nearly.IndexFlatL2(d)


def test_faiss_test_timeout_kmeans():
    km, x, index = long_kmeans()
    t = time.perf_counter()
    with pytest.raises(RuntimeError) as e:
        with nearly.TimeoutGuard(0.05):
            km.train(x, index)
    assert time.perf_counter() - t < 3
    assert isinstance(e.value, nearly.TimedOutError) and isinstance(e.value, TimeoutError)
    # the deadline ends with the block
    km2 = nearly.Clustering(64, 10)
    km2.train(x[:2000], nearly.IndexFlatL2(64))
    assert nearly._nearly._thread_deadline() == 0


def test_search_times_out_and_the_index_is_intact():
    rng = np.random.default_rng(1)
    xb = rng.standard_normal((200_000, 64)).astype(np.float32)
    xq = rng.standard_normal((20_000, 64)).astype(np.float32)
    index = nearly.IndexFlatL2(64)
    index.add(xb)
    D0, I0 = index.search(xq[:50], 5)
    with pytest.raises(nearly.TimedOutError):
        with nearly.TimeoutGuard(0.02):
            index.search(xq, 100)
    D1, I1 = index.search(xq[:50], 5)
    np.testing.assert_array_equal(I0, I1)
    with nearly.TimeoutGuard(60):  # a generous guard changes nothing
        np.testing.assert_array_equal(index.search(xq[:50], 5)[1], I0)


def test_hnsw_add_keeps_its_done_prefix():
    rng = np.random.default_rng(2)
    xb = rng.standard_normal((200_000, 32)).astype(np.float32)
    index = nearly.IndexHNSWFlat(32, 32)
    index.hnsw.efConstruction = 200
    with pytest.raises(nearly.TimedOutError):
        with nearly.TimeoutGuard(0.3):
            index.add(xb)
    n = index.ntotal
    assert n < len(xb)
    index.add(xb[n:n + 1000])  # goes on as after Ctrl-C
    _, I = index.search(xb[:5], 1)
    assert (I[:, 0] >= 0).all()


def test_nested_guards_keep_the_earlier_deadline():
    km, x, index = long_kmeans()
    t = time.perf_counter()
    with pytest.raises(nearly.TimedOutError):
        with nearly.TimeoutGuard(0.05):
            with nearly.TimeoutGuard(100):
                km.train(x, index)
    assert time.perf_counter() - t < 3
    assert nearly._nearly._thread_deadline() == 0


def test_a_guard_binds_only_its_thread():
    results = {}

    def guarded():
        with nearly.TimeoutGuard(0.01):
            time.sleep(0.5)  # the deadline passes in this thread, doing nothing

    def worker():
        km = nearly.Clustering(32, 64)
        km.niter = 25
        x = np.random.default_rng(3).random((30_000, 32), dtype=np.float32)
        km.train(x, nearly.IndexFlatL2(32))
        results["done"] = True

    a = threading.Thread(target=guarded)
    b = threading.Thread(target=worker)
    a.start()
    b.start()
    a.join()
    b.join()
    assert results.get("done")


@pytest.mark.parametrize("bad", [0, -1, math.nan, math.inf, "soon"])
def test_bad_timeouts(bad):
    with pytest.raises((ValueError, TypeError)):
        nearly.TimeoutGuard(bad)
