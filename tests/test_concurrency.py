"""Thread safety: concurrent searches on one index, searches concurrent with adds,
and changing the pool size while searches run. Nothing here measures speed."""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import nearly
from _testutil import METRIC_IP, METRIC_L2, distances64

NTHREADS = 8


def run_threads(fns):
    """Run callables in parallel threads, released together; return their results
    (re-raising the first exception)."""
    barrier = threading.Barrier(len(fns))

    def wrap(fn):
        barrier.wait()
        return fn()

    with ThreadPoolExecutor(max_workers=len(fns)) as ex:
        futs = [ex.submit(wrap, fn) for fn in fns]
        return [f.result(timeout=300) for f in futs]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(77)
    xb = rng.standard_normal((5000, 32)).astype(np.float32)
    xq = rng.standard_normal((400, 32)).astype(np.float32)
    return xb, xq


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP], ids=["L2", "IP"])
def test_parallel_searches_match_sequential(data, metric):
    xb, xq = data
    index = nearly.IndexFlat(32, metric)
    index.add(xb)
    # batch sizes that hit both the single-query and the batched path
    jobs = [(xq[:1], 5), (xq[1:3], 10), (xq[3:70], 20), (xq[70:370], 7),
            (xq[:300], 100), (xq[5:6], 300), (xq[100:117], 1), (xq[:2], 50)]
    expected = [index.search(q, k) for q, k in jobs]

    def worker(i):
        def fn():
            out = []
            for rep in range(4):
                q, k = jobs[(i + rep) % len(jobs)]
                out.append(((i + rep) % len(jobs), index.search(q, k)))
            return out
        return fn

    for results in run_threads([worker(i) for i in range(NTHREADS)]):
        for j, (D, I) in results:
            np.testing.assert_array_equal(I, expected[j][1])
            np.testing.assert_array_equal(D, expected[j][0])


def test_parallel_mixed_readers(data):
    """search, range_search, filtered search, reconstruct_n and serialize at once."""
    xb, xq = data
    index = nearly.IndexIDMap2(nearly.IndexFlatL2(32))
    ids = np.arange(5000, dtype=np.int64) * 3 + 1
    index.add_with_ids(xb, ids)
    sel = nearly.IDSelectorRange(3000, 9000)
    params = nearly.SearchParameters(sel=sel)
    calls = [
        lambda: index.search(xq[:50], 10),
        lambda: index.range_search(xq[:20], 40.0),
        lambda: index.search(xq[:30], 10, params=params),
        lambda: index.reconstruct(int(ids[1234])),
        lambda: bytes(nearly.serialize_index(index)),
        lambda: index.search(xq[:1], 25),
    ]
    expected = [c() for c in calls]

    def worker(i):
        return lambda: [(j, calls[j]()) for j in [(i + r) % len(calls) for r in range(6)]]

    def same(a, b):
        if isinstance(a, tuple):
            assert len(a) == len(b)
            for x, y in zip(a, b):
                np.testing.assert_array_equal(x, y)
        elif isinstance(a, bytes):
            assert a == b
        else:
            np.testing.assert_array_equal(a, b)

    for results in run_threads([worker(i) for i in range(NTHREADS)]):
        for j, r in results:
            same(expected[j], r)


def _check_prefix_result(D, I, dist_q, metric):
    """D, I: one row from a search with k >= final ntotal. The valid entries must be
    exactly the ids 0..m-1 (a prefix of what was added), with exact distances
    (integer data), ordered by distance then id."""
    valid = I != -1
    m = int(valid.sum())
    assert valid[:m].all() and not valid[m:].any(), "padding inside results"
    got = I[:m]
    assert np.array_equal(np.sort(got), np.arange(m)), f"not a prefix of the added vectors (m={m})"
    np.testing.assert_array_equal(D[:m], dist_q[got].astype(np.float32))
    key = dist_q[got] if metric == METRIC_L2 else -dist_q[got]
    order = np.lexsort((got, key))
    np.testing.assert_array_equal(order, np.arange(m))
    return m


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP], ids=["L2", "IP"])
def test_add_concurrent_with_search(metric):
    rng = np.random.default_rng(5)
    N, d, chunk = 4000, 16, 50
    xb = rng.integers(-3, 4, size=(N, d)).astype(np.float32)  # exact arithmetic
    xq = rng.integers(-3, 4, size=(3, d)).astype(np.float32)
    dist = distances64(xq, xb, metric)
    index = nearly.IndexFlat(d, metric)
    done = threading.Event()

    def writer():
        try:
            for a in range(0, N, chunk):
                index.add(xb[a:a + chunk])
                time.sleep(0.0005)  # let the readers interleave
        finally:
            done.set()
        return N

    def reader():
        seen = []
        last_ntotal = 0
        while True:
            finished = done.is_set()
            nt = index.ntotal
            assert nt >= last_ntotal, "ntotal went backwards"
            last_ntotal = nt
            D, I = index.search(xq, N)
            ms = [_check_prefix_result(D[q], I[q], dist[q], metric) for q in range(len(xq))]
            assert len(set(ms)) == 1, f"queries of one search saw different prefixes: {ms}"
            assert ms[0] >= nt, "search saw fewer vectors than ntotal reported before it"
            seen.append(ms[0])
            if finished:
                return seen

    results = run_threads([writer] + [reader] * 3)
    assert index.ntotal == N
    for seen in results[1:]:
        assert seen == sorted(seen), "a later search saw fewer vectors"
        assert seen[-1] == N
    D, I = index.search(xq, N)
    for q in range(len(xq)):
        assert _check_prefix_result(D[q], I[q], dist[q], metric) == N


def test_add_concurrent_with_small_and_batched_searches():
    """Same as above with queries of different batch sizes and k < ntotal."""
    rng = np.random.default_rng(6)
    N, d = 3000, 8
    xb = rng.integers(-2, 3, size=(N, d)).astype(np.float32)
    xq = rng.integers(-2, 3, size=(64, d)).astype(np.float32)
    index = nearly.IndexFlatL2(d)
    index.add(xb[:10])
    done = threading.Event()

    def writer():
        try:
            for a in range(10, N, 37):
                index.add(xb[a:a + 37])
                time.sleep(0.0005)
        finally:
            done.set()

    def reader(nq):
        def fn():
            count = 0
            while not done.is_set() or count == 0:
                nt_before = index.ntotal
                D, I = index.search(xq[:nq], 5)
                nt_after = index.ntotal
                assert (I >= 0).all() and (I < nt_after).all()
                # each result is the exact k-NN of some prefix xb[:m], nt_before <= m <= nt_after
                dist = distances64(xq[:nq], xb[:nt_after], METRIC_L2)
                for q in range(nq):
                    np.testing.assert_array_equal(D[q], dist[q, I[q]].astype(np.float32))
                    # everything visible before the search and closer than the kth is returned
                    closer = np.flatnonzero(dist[q, :nt_before] < D[q, -1])
                    assert set(closer.tolist()) <= set(I[q].tolist())
                count += 1
            return count
        return fn

    counts = run_threads([writer, reader(1), reader(2), reader(64)])
    assert all(c >= 1 for c in counts[1:])


def test_set_num_threads_during_searches(data, restore_threads):
    xb, xq = data
    index = nearly.IndexFlatL2(32)
    index.add(xb)
    ref = {nq: index.search(xq[:nq], 10) for nq in (1, 2, 300)}
    stop = threading.Event()

    def toggler():
        n = 0
        try:
            while not stop.is_set():
                for t in (1, 3, 2, 4, 1, 8):
                    nearly.omp_set_num_threads(t)
                    n += 1
        finally:
            nearly.omp_set_num_threads(restore_threads)
        return n

    def searcher(nq):
        def fn():
            for _ in range(15):
                D, I = index.search(xq[:nq], 10)
                np.testing.assert_array_equal(I, ref[nq][1])
                np.testing.assert_allclose(D, ref[nq][0], rtol=1e-5, atol=1e-4)
            return True
        return fn

    with ThreadPoolExecutor(max_workers=5) as ex:
        tog = ex.submit(toggler)
        futs = [ex.submit(searcher(nq)) for nq in (1, 2, 300, 300)]
        try:
            for f in futs:
                assert f.result(timeout=300)
        finally:
            stop.set()
        assert tog.result(timeout=60) > 0
    assert nearly.omp_get_max_threads() == restore_threads


def test_many_indexes_in_parallel(restore_threads):
    """Independent indexes built and searched from different threads."""
    def job(seed):
        def fn():
            rng = np.random.default_rng(seed)
            xb = rng.integers(-3, 4, size=(500, 12)).astype(np.float32)
            index = nearly.IndexFlatIP(12)
            for a in range(0, 500, 100):
                index.add(xb[a:a + 100])
            D, I = index.search(xb[:20], 3)
            dist = distances64(xb[:20], xb, METRIC_IP)
            for q in range(20):
                np.testing.assert_array_equal(D[q], dist[q, I[q]].astype(np.float32))
                assert D[q, 0] == dist[q].max()
            return True
        return fn

    assert all(run_threads([job(s) for s in range(NTHREADS)]))


@pytest.mark.parametrize("desc", ["Flat", "IVF16,Flat", "HNSW16", "HNSW16_FlatPanorama4"])
def test_write_and_serialize_while_adding(desc, tmp_path):
    """write_index sizes the file in a counting pass, then streams it: an add
    landing between the two passes makes it write again, so every file (and
    every serialized buffer) written while another thread adds holds one
    consistent state of the index: a prefix of the vectors added."""
    rng = np.random.default_rng(8)
    N, d, chunk = 6000, 16, 100
    xb = rng.standard_normal((N, d)).astype(np.float32)
    index = nearly.index_factory(d, desc)
    index.train(xb[:2000])
    index.add(xb[:chunk])
    done = threading.Event()

    def writer():
        try:
            for a in range(chunk, N, chunk):
                index.add(xb[a:a + chunk])
        finally:
            done.set()

    def saver():
        snapshots = []
        path = str(tmp_path / "live.index")
        while not done.is_set() or not snapshots:
            nearly.write_index(index, path)
            snapshots.append(nearly.read_index(path))
            snapshots.append(nearly.deserialize_index(nearly.serialize_index(index)))
        return snapshots

    _, snapshots = run_threads([writer, saver])
    for snap in snapshots:
        n = snap.ntotal
        assert n % chunk == 0 and chunk <= n <= N
        np.testing.assert_array_equal(snap.reconstruct_n(0, n), index.reconstruct_n(0, n))


def test_concurrent_writes_to_one_path(tmp_path):
    """Each write_index goes to a temporary name of its own and is renamed
    into place: four threads writing four indexes to one path leave one of
    them whole, and nothing else."""
    rng = np.random.default_rng(9)
    indexes = []
    for i in range(4):
        index = nearly.IndexFlatL2(8)
        index.add(rng.standard_normal((100 * (i + 1), 8)).astype(np.float32))
        indexes.append(index)
    path = str(tmp_path / "one.index")

    def writer(index):
        def run():
            for _ in range(10):
                nearly.write_index(index, path)
        return run

    run_threads([writer(ix) for ix in indexes])
    back = nearly.read_index(path)
    match = [ix for ix in indexes if ix.ntotal == back.ntotal]
    assert len(match) == 1
    np.testing.assert_array_equal(back.reconstruct_n(0, back.ntotal), match[0].reconstruct_n(0, back.ntotal))
    assert [p.name for p in tmp_path.iterdir()] == ["one.index"]


def test_python_callback_selector_from_many_threads():
    """PyCallbackIDSelector takes the GIL on each call from the search
    threads; searches from several Python threads at once neither deadlock
    nor mix up results."""
    import threading

    rng = np.random.default_rng(21)
    xb = rng.standard_normal((5000, 16)).astype("float32")
    xq = rng.standard_normal((64, 16)).astype("float32")
    index = nearly.IndexFlatL2(16)
    index.add(xb)
    allowed = set(range(0, 5000, 3))
    ref = index.search(xq, 5, params=nearly.SearchParameters(sel=nearly.IDSelectorBatch(np.array(sorted(allowed)))))[1]
    params = nearly.SearchParameters(sel=nearly.PyCallbackIDSelector(lambda i: i in allowed))
    out, errors = [None] * 6, []

    def run(t):
        try:
            out[t] = index.search(xq, 5, params=params)[1]
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not any(th.is_alive() for th in threads), "deadlock"
    assert not errors, errors
    for got in out:
        np.testing.assert_array_equal(got, ref)


def test_mapped_hnsw_concurrent_searches(tmp_path):
    """An HNSW index mapped from its file serves searches from many threads
    with the results of the index it was written from."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(22)
    xb = rng.standard_normal((4000, 24)).astype("float32")
    index = nearly.IndexHNSWFlat(24, 16)
    index.add(xb)
    path = str(tmp_path / "h.index")
    nearly.write_index(index, path)
    mapped = nearly.read_index(path, nearly.IO_FLAG_MMAP)
    ref = index.search(xb[:200], 10)[1]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda s: mapped.search(xb[s:s + 50], 10)[1], [0, 50, 100, 150] * 4))
    for i, got in enumerate(results):
        s = [0, 50, 100, 150][i % 4]
        np.testing.assert_array_equal(got, ref[s:s + 50])


@pytest.mark.parametrize("key", ["IVF16,Flat", "IVF16,SQfp16"])
def test_update_vectors_is_one_write(key):
    """update_vectors moves id 5 between two far-apart vectors A and B while
    searches run; a search (both queries under one read) sees id 5 at A or
    at B, exactly once, never at neither and never at both."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((4000, 32)).astype(np.float32)
    a = np.full((1, 32), 40.0, np.float32)
    b = np.full((1, 32), -40.0, np.float32)
    index = nearly.index_factory(32, key)
    index.train(x)
    index.add(x)
    index.make_direct_map()
    index.nprobe = 16
    index.update_vectors(np.array([5]), b)
    queries = np.vstack([a, b])
    done = threading.Event()
    errors = []

    def updater():
        try:
            for i in range(300):
                index.update_vectors(np.array([5]), a if i % 2 == 0 else b)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
        finally:
            done.set()

    def searcher():
        seen = 0
        while not done.is_set():
            _, I = index.search(queries, 1)
            if (I[:, 0] == 5).sum() != 1:
                errors.append(AssertionError(f"id 5 found {(I[:, 0] == 5).sum()} times: {I[:, 0]}"))
                return
            seen += 1
        return seen

    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(searcher), pool.submit(searcher)]
        updater()
        counts = [f.result() for f in futures]
    assert not errors, errors[0]
    assert index.ntotal == len(x) and sum(c or 0 for c in counts) > 0
