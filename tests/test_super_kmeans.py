"""SuperKMeans: k-means whose assignments skip most distances (ADSampling's
chi-squared test in a rotated space). Checked against exact assignments
(numpy), plain k-means (the objective) and scipy's chi-squared quantiles."""
import numpy as np
import pytest

import nearly
from _testutil import blobs


def exact_assign(x, y):
    d = ((x.astype(np.float64)[:, None, :] - y.astype(np.float64)[None]) ** 2).sum(-1)
    return d.argmin(1), d


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    return blobs(rng, 6000, 96, centers=40)


def test_thresholds_are_chi_squared_quantiles():
    stats = pytest.importorskip("scipy.stats")
    d = 384
    for eps in (1.0 / d, 0.01):
        coeff = np.array(nearly.precompute_ad_thresholds(d, eps))
        assert coeff.shape == (d + 1,) and coeff[0] == 0
        p = np.arange(16, d + 1)
        ref = stats.chi2.ppf(1 - eps, p) / d
        np.testing.assert_allclose(coeff[16:], ref, rtol=0.02)  # Wilson-Hilferty
        assert (np.diff(coeff[1:]) > 0).all()
    with pytest.raises(ValueError):
        nearly.precompute_ad_thresholds(d, 0)
    with pytest.raises(ValueError):
        nearly.precompute_ad_thresholds(0, 0.1)


def rotated_problem(seed, n=1500, d=64, k=50):
    rng = np.random.default_rng(seed)
    x = blobs(rng, n, d, centers=k)
    y = x[rng.choice(n, k, replace=False)] + rng.standard_normal((k, d)).astype(np.float32) * 0.1
    # the state an iteration starts from: the assignment to centroids that
    # have since moved (here: the nearest of a noisy copy), its exact distance
    a = exact_assign(x, y + rng.standard_normal(y.shape).astype(np.float32) * 0.5)[0].astype(np.int32)
    tau = ((x - y[a]) ** 2).sum(1).astype(np.float32)
    return x, y, a, tau


@pytest.mark.parametrize("d_prime", [8, 16, 40])
def test_assign_iteration_without_pruning_is_exact(d_prime):
    x, y, a, tau = rotated_problem(1)
    d = x.shape[1]
    coeff = np.full(d + 1, np.inf, dtype=np.float32)  # never prune
    cp = nearly.SuperKMeansParameters()
    cp.x_batch, cp.y_batch, cp.pdx_block_size = 500, 16, 7  # tails in every tiling
    total, pruned = nearly.super_kmeans_assign_iteration(x, y, tau, a, d_prime, coeff, cp)
    assert (total, pruned) == (len(x) * len(y), 0)
    ref, dist = exact_assign(x, y)
    np.testing.assert_array_equal(a, ref)
    np.testing.assert_allclose(tau, dist[np.arange(len(x)), ref], rtol=1e-5, atol=1e-4)


def test_assign_iteration_prunes_and_stays_exact_where_it_changes():
    x, y, a0, tau0 = rotated_problem(2, n=3000, d=128, k=64)
    d = x.shape[1]
    coeff = np.array(nearly.precompute_ad_thresholds(d, 1.0 / d), dtype=np.float32)
    a, tau = a0.copy(), tau0.copy()
    cp = nearly.SuperKMeansParameters()
    total, pruned = nearly.super_kmeans_assign_iteration(x, y, tau, a, 16, coeff, cp)
    assert total == len(x) * len(y) and pruned > 0.5 * total
    ref, dist = exact_assign(x, y)
    assert (a0 != ref).mean() > 0.01  # there was something to correct
    # tau is always the exact distance to the assignment, never worse than before
    np.testing.assert_allclose(tau, dist[np.arange(len(x)), a], rtol=1e-5, atol=1e-4)
    assert (tau <= tau0 + 1e-4).all()
    assert (a == ref).mean() > 0.99
    # the tiling does not change the answer
    for xb, yb, blk in ((97, 5, 64), (4096, 1024, 13)):
        cp2 = nearly.SuperKMeansParameters()
        cp2.x_batch, cp2.y_batch, cp2.pdx_block_size = xb, yb, blk
        a2, tau2 = a0.copy(), tau0.copy()
        nearly.super_kmeans_assign_iteration(x, y, tau2, a2, 16, coeff, cp2)
        if blk == 64:
            np.testing.assert_array_equal(a2, a)
        else:
            assert (a2 == ref).mean() > 0.99


def test_assign_iteration_bad_input():
    x, y, a, tau = rotated_problem(3, n=50, d=32, k=8)
    coeff = np.array(nearly.precompute_ad_thresholds(32, 1.0 / 32), dtype=np.float32)
    cp = nearly.SuperKMeansParameters()
    with pytest.raises(TypeError):
        nearly.super_kmeans_assign_iteration(x, y, tau, a.astype(np.int64), 8, coeff, cp)
    with pytest.raises(TypeError):
        nearly.super_kmeans_assign_iteration(x, y, tau.astype(np.float64), a, 8, coeff, cp)
    with pytest.raises(ValueError):
        nearly.super_kmeans_assign_iteration(x, y, tau[:-1], a, 8, coeff, cp)
    with pytest.raises(ValueError):
        nearly.super_kmeans_assign_iteration(x, y, tau, a, 8, coeff[:32], cp)
    with pytest.raises(ValueError):
        nearly.super_kmeans_assign_iteration(x, y, tau, a, 32, coeff, cp)
    with pytest.raises(ValueError):
        nearly.super_kmeans_assign_iteration(x, y[:, :16], tau, a, 8, coeff, cp)
    bad = a.copy()
    bad[3] = 8
    with pytest.raises(ValueError, match="out of range"):
        nearly.super_kmeans_assign_iteration(x, y, tau, bad, 8, coeff, cp)


def train(x, k, **kw):
    cp = nearly.SuperKMeansParameters()
    cp.seed = kw.pop("seed", 42)
    cp.niter = kw.pop("niter", 10)
    for name, v in kw.items():
        setattr(cp, name, v)
    sk = nearly.SuperKMeans(x.shape[1], k, cp)
    sk.train(x)
    return sk


def test_objective_close_to_plain_kmeans(data):
    x = data
    sk = train(x, 64)
    objs = [sk.iteration_stats.at(i).obj for i in range(sk.iteration_stats.size())]
    assert len(objs) == 10
    assert all(b <= a * 1.001 for a, b in zip(objs, objs[1:]))
    km = nearly.Kmeans(x.shape[1], 64, niter=10, seed=42)
    km.train(x)
    assert abs(objs[-1] - km.obj[-1]) / km.obj[-1] < 0.02
    rates = sk.gemm_pruning_rates
    assert rates.shape == (10,) and rates[0] == 0 and (rates[2:] > 0.3).all()
    # the centroids are in the original space: the objective is theirs
    ref, dist = exact_assign(x, sk.centroids.reshape(64, -1))
    assert abs(dist.min(1).sum() - objs[-1]) / objs[-1] < 0.05


def test_deterministic_and_tiling_free(data):
    x = data[:3000]
    a = train(x, 70, niter=5, seed=1234)
    b = train(x, 70, niter=5, seed=1234)
    np.testing.assert_array_equal(a.centroids, b.centroids)
    np.testing.assert_array_equal(a.gemm_pruning_rates, b.gemm_pruning_rates)
    c = train(x, 70, niter=5, seed=1234, y_batch=32, x_batch=1000)  # 70 % 32 = 6: a tail tile
    np.testing.assert_array_equal(c.centroids, a.centroids)
    threads = nearly.omp_get_max_threads()
    nearly.omp_set_num_threads(1)
    try:
        e = train(x, 70, niter=5, seed=1234)
    finally:
        nearly.omp_set_num_threads(threads)
    np.testing.assert_array_equal(e.centroids, a.centroids)


def test_empty_clusters_are_split():
    rng = np.random.default_rng(0)
    d, n = 64, 1000
    base = rng.standard_normal((n - 800 + 1, d)).astype(np.float32)
    x = np.concatenate([np.repeat(base[:1], 800, 0), base[1:]])
    sk = train(x, 16, niter=5)
    assert sum(sk.iteration_stats.at(i).nsplit for i in range(sk.iteration_stats.size())) > 0
    c = sk.centroids.reshape(16, d)
    assert len({row.tobytes() for row in c}) == 16


def test_bad_input(data):
    with pytest.raises(RuntimeError, match="at least as large"):
        nearly.SuperKMeans(96, 16).train(data[:10])
    x = data[:500].copy()
    x[3, 5] = np.nan
    with pytest.raises(ValueError):
        nearly.SuperKMeans(96, 16).train(x)
    with pytest.raises(ValueError):
        nearly.SuperKMeans(96, 16).train(data[:, :10])
    cp = nearly.SuperKMeansParameters()
    cp.d_prime_fraction = 0
    with pytest.raises(ValueError):
        nearly.SuperKMeans(96, 16, cp)
    with pytest.raises(ValueError):
        nearly.SuperKMeans(0, 16)


def test_small_d_and_verbose(data, capfd):
    # d below d_prime_min: d' is d - 1 (the test still runs, with little to prune)
    x = data[:2000, :12].copy()
    sk = train(x, 8, niter=4, verbose=True)
    assert sk.centroids.shape == (8 * 12,)
    assert "SuperKMeans" in capfd.readouterr().out


def test_python_wrapper_surface(data):
    x = data[:2000]
    km = nearly.SuperKmeans(96, 16, niter=5, seed=42)
    obj = km.train(x)
    assert km.centroids.shape == (16, 96) and km.obj.shape == (5,) and len(km.iteration_stats) == 5
    assert obj == km.obj[-1] and km.gemm_pruning_rates.shape == (5,)
    D, I = km.assign(x)
    assert I.shape == D.shape == (2000,) and ((I >= 0) & (I < 16)).all()
    ref, dist = exact_assign(x, km.centroids)
    np.testing.assert_array_equal(I, ref)
    with pytest.raises(AttributeError):
        nearly.SuperKmeans(96, 16, no_such_field=1)
