"""IndexFlat results equal a float64 numpy brute force.

Random Gaussian data is compared within a float32 tolerance. Small-integer data
makes every float32 operation exact, so there the results (distances, ids and
the order of ties: smaller id first) must be identical to the reference.
"""
import numpy as np
import pytest

import nearly
from _testutil import (
    METRIC_IP,
    METRIC_L2,
    assert_knn_valid,
    brute_force,
    check_result_arrays,
    distances64,
    randn,
)

METRICS = [METRIC_L2, METRIC_IP]
METRIC_IDS = ["L2", "IP"]


def flat(d, metric):
    return nearly.IndexFlat(d, metric)


def int_data(seed, n, d, lo=-3, hi=3):
    """Small integers: all sums of products are exact in float32, so many exact ties."""
    rng = np.random.default_rng(seed)
    return rng.integers(lo, hi + 1, size=(n, d)).astype(np.float32)


@pytest.fixture(params=[1, 2], ids=["threads1", "threads2"])
def nthreads(request, restore_threads):
    nearly.omp_set_num_threads(request.param)
    assert nearly.omp_get_max_threads() == request.param
    return request.param


@pytest.fixture(scope="module")
def gauss():
    rng = np.random.default_rng(2024)
    return randn(rng, 1000, 32), randn(rng, 300, 32)


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
@pytest.mark.parametrize("nq", [1, 2, 300])
@pytest.mark.parametrize("k", [1, 10, 500])
def test_random_data_matches_brute_force(gauss, metric, nq, k, nthreads):
    xb, xq_all = gauss
    xq = xq_all[:nq]
    index = flat(32, metric)
    index.add(xb)
    D, I = index.search(xq, k)
    assert_knn_valid(D, I, xq, xb, k, metric)


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
@pytest.mark.parametrize("nq", [1, 2, 300])
@pytest.mark.parametrize("k", [1, 7, 500, 1200])
def test_integer_data_exact(metric, nq, k, nthreads):
    xb = int_data(1, 1000, 16)
    xq = int_data(2, nq, 16)
    index = flat(16, metric)
    index.add(xb)
    D, I = index.search(xq, k)
    check_result_arrays(D, I, nq, k)
    Dref, Iref = brute_force(xq, xb, k, metric)
    np.testing.assert_array_equal(D, Dref.astype(np.float32))
    np.testing.assert_array_equal(I, Iref)


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
@pytest.mark.parametrize("nq", [1, 2, 64])
def test_duplicates_tie_by_smaller_id(metric, nq, nthreads):
    rng = np.random.default_rng(3)
    base = int_data(4, 5, 8)
    # 200 vectors, each of the 5 base vectors repeated 40 times in shuffled positions
    xb = base[rng.permutation(np.repeat(np.arange(5), 40))]
    xq = int_data(5, nq, 8)
    index = flat(8, metric)
    index.add(xb)
    D, I = index.search(xq, 100)
    Dref, Iref = brute_force(xq, xb, 100, metric)
    np.testing.assert_array_equal(D, Dref.astype(np.float32))
    np.testing.assert_array_equal(I, Iref)
    # within each run of equal distances the ids increase
    for q in range(nq):
        for j in range(99):
            if D[q, j] == D[q, j + 1]:
                assert I[q, j] < I[q, j + 1], (q, j, D[q], I[q])


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_all_identical_vectors(metric):
    xb = np.ones((50, 4), dtype=np.float32)
    index = flat(4, metric)
    index.add(xb)
    for nq in (1, 2, 40):
        D, I = index.search(np.ones((nq, 4), np.float32), 20)
        np.testing.assert_array_equal(I, np.tile(np.arange(20), (nq, 1)))
        expected = 0.0 if metric == METRIC_L2 else 4.0
        assert (D == expected).all()


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_batch_and_single_query_paths_agree(metric, nthreads):
    xb = int_data(6, 700, 24)
    xq = int_data(7, 300, 24)
    index = flat(24, metric)
    index.add(xb)
    Db, Ib = index.search(xq, 15)
    for q in range(0, 300, 37):
        Ds, Is = index.search(xq[q:q + 1], 15)
        np.testing.assert_array_equal(Ds[0], Db[q])
        np.testing.assert_array_equal(Is[0], Ib[q])
        D2, I2 = index.search(xq[q:q + 2], 15)
        np.testing.assert_array_equal(I2, Ib[q:q + 2])


def test_thread_count_does_not_change_results(restore_threads):
    rng = np.random.default_rng(8)
    xb, xq = randn(rng, 1500, 40), randn(rng, 257, 40)
    index = flat(40, METRIC_L2)
    index.add(xb)
    results = []
    for t in (1, 2, 3, 8):
        nearly.omp_set_num_threads(t)
        assert nearly.omp_get_max_threads() == t
        results.append(index.search(xq, 12))
    D0, I0 = results[0]
    for D, I in results[1:]:
        np.testing.assert_array_equal(I, I0)
        np.testing.assert_allclose(D, D0, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_k_equals_and_exceeds_ntotal(metric):
    xb = int_data(9, 37, 8)
    xq = int_data(10, 5, 8)
    index = flat(8, metric)
    index.add(xb)
    for k in (36, 37, 38, 500):
        D, I = index.search(xq, k)
        Dref, Iref = brute_force(xq, xb, k, metric)
        np.testing.assert_array_equal(I, Iref)
        np.testing.assert_array_equal(D, Dref.astype(np.float32))
        if k >= 37:
            assert sorted(I[0, :37].tolist()) == list(range(37))


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
@pytest.mark.parametrize("nq", [1, 2, 300])
def test_knn_function_exact(metric, nq, nthreads):
    xb = int_data(11, 400, 12)
    xq = int_data(12, nq, 12)
    D, I = nearly.knn(xq, xb, 9, metric=metric)
    Dref, Iref = brute_force(xq, xb, 9, metric)
    np.testing.assert_array_equal(D, Dref.astype(np.float32))
    np.testing.assert_array_equal(I, Iref)


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_pairwise_distances_exact(metric):
    xb = int_data(13, 50, 12)
    xq = int_data(14, 300, 12)
    P = nearly.pairwise_distances(xq, xb, metric=metric)
    assert P.dtype == np.float32 and P.shape == (300, 50)
    np.testing.assert_array_equal(P, distances64(xq, xb, metric).astype(np.float32))


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
@pytest.mark.parametrize("nq", [1, 2, 300])
def test_range_search_exact_and_strict(metric, nq, nthreads):
    xb = int_data(15, 500, 6)
    xq = int_data(16, nq, 6)
    index = flat(6, metric)
    index.add(xb)
    dist = distances64(xq, xb, metric)
    radius = 20.0 if metric == METRIC_L2 else 5.0  # many distances equal the radius exactly
    assert (dist == radius).any()
    lims, D, I = index.range_search(xq, radius)
    assert lims.shape == (nq + 1,) and lims[0] == 0
    assert D.dtype == np.float32 and I.dtype == np.int64
    for q in range(nq):
        a, b = int(lims[q]), int(lims[q + 1])
        inside = dist[q] < radius if metric == METRIC_L2 else dist[q] > radius
        got = dict(zip(I[a:b].tolist(), D[a:b].tolist()))
        assert len(got) == b - a
        assert set(got) == set(np.flatnonzero(inside).tolist()), q
        for i, v in got.items():
            assert v == dist[q, i]


def test_large_values_no_overflow_in_ordering():
    # big but finite coordinates: squared norms ~1e30 stay finite in float32
    rng = np.random.default_rng(17)
    xb = (randn(rng, 100, 8) * 1e14).astype(np.float32)
    xq = xb[:3] + np.float32(1e12)
    index = flat(8, METRIC_L2)
    index.add(xb)
    D, I = index.search(xq, 1)
    np.testing.assert_array_equal(I[:, 0], [0, 1, 2])
    assert np.isfinite(D).all()


def test_many_adds_then_search_exact():
    xb = int_data(18, 333, 10)
    xq = int_data(19, 20, 10)
    index = flat(10, METRIC_L2)
    for a in range(0, 333, 17):
        index.add(xb[a:a + 17])
    assert index.ntotal == 333
    D, I = index.search(xq, 50)
    Dref, Iref = brute_force(xq, xb, 50, METRIC_L2)
    np.testing.assert_array_equal(I, Iref)
    np.testing.assert_array_equal(D, Dref.astype(np.float32))


@pytest.mark.parametrize("nq", [1, 4, 7, 16])
def test_few_queries_l2_has_difference_precision(nq):
    """Small batches sum squared differences (faiss's direct path), so
    distances of far-from-zero data keep float32 precision; the norm form
    |q|^2 + |x|^2 - 2<q, x> would lose digits to cancellation."""
    rng = np.random.default_rng(1234)
    xb = rng.random((20000, 64), dtype=np.float32) + 3
    xq = rng.random((nq, 64), dtype=np.float32) + 3
    index = flat(64, METRIC_L2)
    index.add(xb)
    D, I = index.search(xq, 10)
    ref = ((xq[:, None, :].astype(np.float64) - xb[I].astype(np.float64)) ** 2).sum(-1)
    np.testing.assert_allclose(D, ref, rtol=0, atol=2e-5)
    exact = np.argsort(distances64(xq, xb, METRIC_L2), axis=1, kind="stable")[:, :10]
    assert (I == exact).mean() > 0.99
