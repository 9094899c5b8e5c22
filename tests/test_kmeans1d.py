"""Exact 1-D k-means (nearly/kmeans1d.h): SMAWK's row minima against
brute force on totally monotone matrices, kmeans1d's objective against an
O(k n^2) dynamic program in float64 (the optimum: never above Lloyd's
k-means), Clustering1D, bad input; beside faiss-cpu where it is installed."""
import numpy as np
import pytest

import nearly


def monge(rng, nrows, ncols):
    """A Monge (so totally monotone) matrix with ties: squared differences of
    sorted small integers, exact in float32."""
    a = np.sort(rng.integers(0, 40, nrows))
    b = np.sort(rng.integers(0, 40, ncols))
    return ((a[:, None] - b[None, :]) ** 2).astype(np.float32)


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (5, 9), (40, 13), (64, 64), (100, 300)])
def test_smawk_is_the_leftmost_row_minimum(shape):
    rng = np.random.default_rng(sum(shape))
    for _ in range(5):
        m = monge(rng, *shape)
        out = np.zeros(shape[0], np.int64)
        nearly.smawk(shape[0], shape[1], nearly.swig_ptr(m), nearly.swig_ptr(out))
        np.testing.assert_array_equal(out, m.argmin(axis=1))


def reference_objective(x, k):
    """The optimal k-means objective of 1-D values by the plain O(k n^2) dynamic program."""
    v = np.sort(x.astype(np.float64))
    n = len(v)
    s1 = np.concatenate([[0], np.cumsum(v)])
    s2 = np.concatenate([[0], np.cumsum(v * v)])

    def cost(j, i):
        s, c = s1[i + 1] - s1[j], i - j + 1
        return max(0.0, s2[i + 1] - s2[j] - s * s / c)

    prev = np.array([cost(0, i) for i in range(n)])
    for m in range(1, k):
        cur = np.full(n, np.inf)
        for i in range(m, n):
            cur[i] = min(prev[j - 1] + cost(j, i) for j in range(m, i + 1))
        prev = cur
    return prev[-1]


def objective(x, centroids):
    return float(((x[:, None].astype(np.float64) - centroids[None, :]) ** 2).min(1).sum())


@pytest.mark.parametrize("n,k", [(1, 1), (5, 5), (30, 1), (30, 4), (60, 7), (80, 20)])
def test_kmeans1d_is_optimal(n, k):
    rng = np.random.default_rng(n * 31 + k)
    for x in (rng.normal(size=n), rng.integers(0, 5, n).astype(float), rng.exponential(size=n)):
        x = x.astype(np.float32)
        c = np.zeros(k, np.float32)
        nearly.kmeans1d(x, n, k, c)
        assert np.all(np.diff(c) >= 0)
        assert objective(x, c) == pytest.approx(reference_objective(x, k), rel=1e-5, abs=1e-6)


def test_clustering1d_beats_lloyd_and_bad_input():
    rng = np.random.RandomState(123)
    for n, k in ((20, 20), (1000, 20), (1000, 256)):
        x = rng.uniform(size=(n, 1)).astype(np.float32)
        clus = nearly.Clustering1D(k)
        clus.train_exact(x)
        exact = objective(x[:, 0], clus.centroids)
        km = nearly.Kmeans(1, k)
        km.train(x)
        assert exact <= objective(x[:, 0], km.centroids.ravel()) * (1 + 1e-6)
        assert clus.iteration_stats.at(0).imbalance_factor >= 1.0
    with pytest.raises(RuntimeError, match="at least as large"):
        nearly.Clustering1D(10).train_exact(np.zeros((5, 1), np.float32))
    with pytest.raises(ValueError):
        nearly.Clustering1D(2).train_exact(np.array([[1.0], [np.nan], [2.0]], np.float32))
    with pytest.raises(ValueError):
        nearly.Clustering1D(2).train_exact(np.zeros((5, 2), np.float32))
    with pytest.raises(ValueError):
        nearly.smawk(3, 3, np.zeros(4, np.float32), np.zeros(3, np.int64))


def test_same_as_faiss():
    faiss = pytest.importorskip("faiss")
    rng = np.random.default_rng(5)
    x = rng.normal(size=2000).astype(np.float32)
    for k in (2, 16, 100):
        a, b = np.zeros(k, np.float32), np.zeros(k, np.float32)
        ua = nearly.kmeans1d(x, len(x), k, a)
        ub = faiss.kmeans1d(faiss.swig_ptr(x), len(x), k, faiss.swig_ptr(b))
        assert objective(x, a) <= objective(x, b) * (1 + 1e-6)
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
        assert ua == pytest.approx(ub, rel=1e-6)
    m = monge(rng, 30, 50)
    oa, ob = np.zeros(30, np.int64), np.zeros(30, np.int64)
    nearly.smawk(30, 50, nearly.swig_ptr(m), nearly.swig_ptr(oa))
    faiss.smawk(30, 50, faiss.swig_ptr(m), faiss.swig_ptr(ob))
    np.testing.assert_array_equal(oa, ob)
