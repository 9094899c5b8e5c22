"""k-means seeding (ClusteringInitialization, Clustering.init_method): the
picks against a plain-Python reference of the same draws (std::mt19937_64,
libstdc++'s distributions, exact distances on integer data), also where the
8-bit bound skips points; the D^2 distribution; properties on the real
embeddings; Kmeans integration; bad input, verbose, Ctrl-C. The comparison
with faiss-cpu is in tests/compat/test_clustering_initialization_compat.py."""
import os
import signal

import numpy as np
import pytest

import nearly
from _hnswutil import clustered, real_data
from _testutil import seconds_until_interrupted

RANDOM = nearly.ClusteringInitMethod_RANDOM
KPP = nearly.ClusteringInitMethod_KMEANS_PLUS_PLUS
AFK = nearly.ClusteringInitMethod_AFK_MC2
MASK64 = (1 << 64) - 1


class Mt19937_64:
    """std::mt19937_64, written from the standard's parameters."""

    def __init__(self, seed):
        self.mt = [seed & MASK64]
        for i in range(1, 312):
            prev = self.mt[-1]
            self.mt.append((6364136223846793005 * (prev ^ (prev >> 62)) + i) & MASK64)
        self.index = 312

    def __call__(self):
        if self.index >= 312:
            for i in range(312):
                y = (self.mt[i] & 0xFFFFFFFF80000000) | (self.mt[(i + 1) % 312] & 0x7FFFFFFF)
                self.mt[i] = self.mt[(i + 156) % 312] ^ (y >> 1) ^ (0xB5026F5AA96619E9 if y & 1 else 0)
            self.index = 0
        y = self.mt[self.index]
        self.index += 1
        y ^= (y >> 29) & 0x5555555555555555
        y ^= (y << 17) & 0x71D67FFFEDA60000 & MASK64
        y ^= (y << 37) & 0xFFF7EEE000000000 & MASK64
        return y ^ (y >> 43)


def uniform_below(gen, n):
    """libstdc++'s uniform_int_distribution<size_t>(0, n - 1): Lemire's method."""
    product = gen() * n
    if product & MASK64 < n:
        threshold = (-n) % n
        while product & MASK64 < threshold:
            product = gen() * n
    return product >> 64


def canonical(gen):
    r = float(gen()) / 2.0 ** 64
    return r if r < 1.0 else np.nextafter(1.0, 0.0)


def sample(cumsum, gen):
    if cumsum[-1] <= 0:
        return uniform_below(gen, len(cumsum))
    return min(int(np.searchsorted(cumsum, canonical(gen) * cumsum[-1], side="left")), len(cumsum) - 1)


def nearest_d2(x, centres):
    if len(centres) == 0:
        return np.full(len(x), np.inf)
    return ((x[:, None, :].astype(np.float64) - np.asarray(centres, np.float64)[None]) ** 2).sum(-1).min(1)


def start(x, k, existing, gen):
    """(first new index, distances, sum, [first pick]) as faiss's D^2 start."""
    if existing is not None and len(existing):
        dist = nearest_d2(x, existing)
        return 0, dist, float(np.cumsum(dist)[-1]), []
    first = uniform_below(gen, len(x))
    dist = nearest_d2(x, x[first:first + 1])
    return 1, dist, float(np.cumsum(dist)[-1]), [first]


def reference_kmeans_plus_plus(x, k, seed, existing=None):
    gen = Mt19937_64(seed)
    c0, dist, _, picks = start(x, k, existing, gen)
    for _ in range(c0, k):
        pick = sample(np.cumsum(dist), gen)
        picks.append(pick)
        dist = np.minimum(dist, nearest_d2(x, x[pick:pick + 1]))
    return x[picks]


def reference_afkmc2(x, k, seed, chain, existing=None):
    gen = Mt19937_64(seed)
    c0, dist, total, picks = start(x, k, existing, gen)
    q = (0.5 * dist / total if total > 0 else 0.0) + 0.5 / len(x)
    q_cumsum = np.cumsum(q)
    ex = [] if existing is None else list(existing)

    def d2(i):
        return float(nearest_d2(x[i:i + 1], [x[p] for p in picks] + ex)[0])

    for _ in range(c0, k):
        cur = sample(q_cumsum, gen)
        while cur in picks:
            cur = sample(q_cumsum, gen)
        cur_d, cur_q = d2(cur), q[cur]
        for _ in range(chain):
            prop = sample(q_cumsum, gen)
            if prop in picks:
                continue
            prop_d, prop_q = d2(prop), q[prop]
            accept = 0.0 if cur_d <= 0 else min(1.0, prop_d * cur_q / (cur_d * prop_q))
            if canonical(gen) < accept:
                cur, cur_d, cur_q = prop, prop_d, prop_q
        picks.append(cur)
    return x[picks]


def integer_data(n, d, seed=0):
    """Clusters of small integers: every squared distance and running sum is
    exact, so any summation order gives the same picks (and most points are
    skipped by the 8-bit bound once each cluster has a centroid)."""
    rng = np.random.default_rng(seed)
    centres = rng.integers(-40, 41, size=(30, d))
    return (centres[rng.integers(0, 30, n)] + rng.integers(-3, 4, size=(n, d))).astype(np.float32)


def init(method, d, k, seed=1234, chain=None):
    ci = nearly.ClusteringInitialization(d, k)
    ci.method = method
    ci.seed = seed
    if chain is not None:
        ci.afkmc2_chain_length = chain
    return ci


def test_defaults_and_constants():
    ci = nearly.ClusteringInitialization(8, 4)
    assert (ci.d, ci.k, ci.method, ci.seed, ci.afkmc2_chain_length) == (8, 4, RANDOM, 1234, 50)
    assert (RANDOM, KPP, AFK) == (0, 1, 2)
    cp = nearly.ClusteringParameters()
    assert (cp.init_method, cp.afkmc2_chain_length) == (RANDOM, 50)


@pytest.mark.parametrize("n,d", [(3000, 16), (40000, 32)])  # the second is large enough for the 8-bit bound
@pytest.mark.parametrize("seed", [1, 77])
def test_kmeans_plus_plus_picks_the_reference_points(n, d, seed):
    x = integer_data(n, d, seed)
    got = init(KPP, d, 24, seed).init_centroids(x)
    np.testing.assert_array_equal(got, reference_kmeans_plus_plus(x, 24, seed))


@pytest.mark.parametrize("n,d", [(3000, 16), (40000, 32)])
def test_kmeans_plus_plus_with_existing_centroids_picks_the_reference_points(n, d):
    x = integer_data(n, d, 3)
    existing = x[:5] + 0.5
    got = init(KPP, d, 20, 9).init_centroids(x, existing)  # 19 passes: the 8-bit bound at (40000, 32)
    np.testing.assert_array_equal(got, reference_kmeans_plus_plus(x, 20, 9, existing))


@pytest.mark.parametrize("chain", [0, 1, 10, 50])
def test_afkmc2_picks_the_reference_points(chain):
    x = integer_data(2000, 8, 5)
    got = init(AFK, 8, 12, 21, chain).init_centroids(x)
    np.testing.assert_array_equal(got, reference_afkmc2(x, 12, 21, chain))


def test_afkmc2_with_existing_centroids_picks_the_reference_points():
    x = integer_data(2000, 8, 6)
    existing = x[10:14] * 0.5
    got = init(AFK, 8, 10, 4, 20).init_centroids(x, existing)
    np.testing.assert_array_equal(got, reference_afkmc2(x, 10, 4, 20, existing))


@pytest.mark.parametrize("method,chain", [(KPP, None), (AFK, 300)])
def test_second_pick_follows_the_d2_distribution(method, chain):
    """Five points on a line, k = 2: given the first pick, the second is each
    point with probability d^2 / sum d^2 (AFK-MC2 with a long chain comes
    close to that)."""
    x = np.array([[0.0], [1.0], [2.0], [4.0], [8.0]], np.float32)
    counts = np.zeros((5, 5))
    for seed in range(3000):
        c = init(method, 1, 2, seed, chain).init_centroids(x)
        counts[np.flatnonzero(x[:, 0] == c[0, 0])[0], np.flatnonzero(x[:, 0] == c[1, 0])[0]] += 1
    for first in range(5):
        if counts[first].sum() < 300:
            continue
        d2 = (x[:, 0] - x[first, 0]) ** 2
        expected = d2 / d2.sum()
        observed = counts[first] / counts[first].sum()
        assert np.abs(observed - expected).max() < (0.05 if method == KPP else 0.08), (first, observed, expected)


@pytest.fixture(scope="module")
def real():
    return np.ascontiguousarray(real_data()[0])


@pytest.mark.parametrize("method", [RANDOM, KPP, AFK])
def test_real_data_picks_distinct_data_rows_deterministically(real, method, restore_threads):
    k = 64
    runs = []
    for threads in (1, 2):
        nearly.omp_set_num_threads(threads)
        runs.append(init(method, real.shape[1], k, 5).init_centroids(real))
    np.testing.assert_array_equal(runs[0], runs[1])
    c = runs[0]
    rows = {r.tobytes(): i for i, r in enumerate(real)}
    assert all(r.tobytes() in rows for r in c)
    assert len({r.tobytes() for r in c}) == k
    other = init(method, real.shape[1], k, 6).init_centroids(real)
    assert not np.array_equal(other, c)


def test_d2_seeding_starts_lower_than_random_points():
    """Well separated clusters: D^2 seeding covers them, random points miss
    some (mean over seeds of the objective of the seeds alone)."""
    x, _ = clustered(4, 20000, 0, d=16, nclusters=64, spread=0.05)
    obj = {}
    for method in (RANDOM, KPP, AFK):
        obj[method] = np.mean([nearest_d2(x[:5000], init(method, 16, 64, s).init_centroids(x)).sum()
                               for s in range(3)])
    assert obj[KPP] < 0.8 * obj[RANDOM] and obj[AFK] < 0.8 * obj[RANDOM], obj


def test_existing_centroids_are_kept_away_from():
    x, _ = clustered(0, 8000, 0, d=16, nclusters=40)
    existing = x[:10].copy()
    for method in (KPP, AFK):
        new = init(method, 16, 30, 2).init_centroids(x, existing)
        with_ex = nearest_d2(x, np.vstack([existing, new])).sum()
        blind = nearest_d2(x, np.vstack([existing, init(method, 16, 30, 2).init_centroids(x)])).sum()
        assert with_ex <= blind * 1.05
        assert nearest_d2(new, existing).min() > 0  # none of the existing points picked again


def test_faiss_pointer_form_fills_the_given_array():
    x = integer_data(3000, 16, 1)
    c = np.zeros((24, 16), np.float32)
    ci = init(KPP, 16, 24, 1)
    assert ci.init_centroids(len(x), nearly.swig_ptr(x), nearly.swig_ptr(c)) is None
    np.testing.assert_array_equal(c, ci.init_centroids(x))
    ex = x[:4].copy()
    c2 = np.zeros((24, 16), np.float32)
    ci.init_centroids(len(x), nearly.swig_ptr(x), nearly.swig_ptr(c2), 4, nearly.swig_ptr(ex))
    np.testing.assert_array_equal(c2, ci.init_centroids(x, ex))


@pytest.mark.parametrize("method", [KPP, AFK])
def test_kmeans_starts_from_the_seeding(method):
    """niter = 0 leaves the seeds: those of ClusteringInitialization with
    faiss's per-run seed (seed + 1 + redo * 15486557)."""
    x = integer_data(3000, 16, 2)
    km = nearly.Kmeans(16, 20, niter=0, seed=11, init_method=method)
    km.train(x)
    np.testing.assert_array_equal(km.centroids, init(method, 16, 20, 12).init_centroids(x))
    # given centroids come first and count as existing ones
    given = x[:3] + 0.25
    km = nearly.Kmeans(16, 20, niter=0, seed=11, init_method=method)
    km.train(x, init_centroids=given)
    np.testing.assert_array_equal(km.centroids[:3], given)
    np.testing.assert_array_equal(km.centroids[3:], init(method, 16, 17, 12).init_centroids(x, given))


def test_kmeans_plus_plus_iterations_reach_a_lower_objective():
    x, _ = clustered(1, 20000, 0, d=16, nclusters=100, spread=0.05)
    finals = {}
    for method in (RANDOM, KPP):
        finals[method] = np.mean([nearly.Kmeans(16, 100, niter=10, seed=s, init_method=method).train(x)
                                  for s in range(3)])
    assert finals[KPP] < finals[RANDOM], finals


def test_verbose_reports_the_seeding(capfd):
    x = integer_data(3000, 16, 2)
    nearly.Kmeans(16, 20, niter=2, verbose=True, init_method=KPP).train(x)
    assert "k-means++ initialization in" in capfd.readouterr().out
    nearly.Kmeans(16, 20, niter=2, verbose=True, init_method=AFK).train(x)
    assert "AFK-MC2 initialization in" in capfd.readouterr().out


def test_bad_input():
    x = integer_data(100, 8)
    ci = nearly.ClusteringInitialization(8, 10)
    for bad in (-1, 3, 255):
        with pytest.raises(nearly.InvalidArgumentError):
            ci.method = bad
        with pytest.raises(nearly.InvalidArgumentError):
            nearly.ClusteringParameters().init_method = bad
        with pytest.raises(nearly.InvalidArgumentError):
            nearly.Kmeans(8, 4, init_method=bad)
    for bad in (-1, 65536):
        with pytest.raises(nearly.InvalidArgumentError):
            ci.afkmc2_chain_length = bad
    with pytest.raises(nearly.InvalidArgumentError, match="number of centroids"):
        nearly.ClusteringInitialization(8, 200).init_centroids(x)
    with pytest.raises(nearly.InvalidArgumentError):
        ci.init_centroids(x[:, :4].copy())
    nan = x.copy()
    nan[3, 2] = np.nan
    for method in (KPP, AFK):  # they read every point
        ci.method = method
        with pytest.raises(nearly.InvalidArgumentError):
            ci.init_centroids(nan)
    ci.method = RANDOM  # reads the points it picks
    nan[:, 5] = np.inf
    with pytest.raises(nearly.InvalidArgumentError):
        ci.init_centroids(nan)
    ci.method = KPP
    with pytest.raises(nearly.InvalidArgumentError):
        ci.init_centroids(x, nan[:4])
    c = np.zeros((10, 8), np.float32)
    with pytest.raises(nearly.InvalidArgumentError):  # float64 centroids
        ci.init_centroids(100, nearly.swig_ptr(x), np.zeros((10, 8)))
    with pytest.raises(nearly.InvalidArgumentError):  # too small
        ci.init_centroids(100, nearly.swig_ptr(x), np.zeros((9, 8), np.float32))
    with pytest.raises(nearly.InvalidArgumentError):  # n beyond x
        ci.init_centroids(101, nearly.swig_ptr(x), c)
    ro = c.copy()
    ro.flags.writeable = False
    with pytest.raises(nearly.InvalidArgumentError):
        ci.init_centroids(100, nearly.swig_ptr(x), ro)
    with pytest.raises(nearly.InvalidArgumentError):  # existing count without the array
        ci.init_centroids(100, nearly.swig_ptr(x), c, 3)
    zero = nearly.ClusteringInitialization(8, 0)
    zero.method = KPP
    assert zero.init_centroids(x).shape == (0, 8)


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name != "posix", reason="needs POSIX signals")
def test_ctrl_c_interrupts_kmeans_plus_plus():
    x = np.random.default_rng(0).standard_normal((200_000, 32)).astype(np.float32)
    ci = init(KPP, 32, 100_000)  # minutes uninterrupted
    elapsed = seconds_until_interrupted(lambda: ci.init_centroids(x))
    assert elapsed < 5, f"the interrupt took {elapsed:.1f}s to land"
