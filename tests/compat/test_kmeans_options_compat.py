"""k-means options against faiss-cpu: weights, initial and frozen centroids,
integer centroids, early stopping, and faiss's iteration statistics objects.

Both libraries draw the same random numbers, so from the same data the runs
follow each other closely; the checks allow float summation-order noise.
"""
import numpy as np
import pytest

import nearly
from _hnswutil import real_data

faiss = pytest.importorskip("faiss")


@pytest.fixture(scope="module")
def x():
    base, _ = real_data()
    return np.ascontiguousarray(base[:6000, :64])  # a 64-d slice keeps it quick


def run(lib, x, k=32, train_kwargs=None, **cp):
    km = lib.Kmeans(x.shape[1], k, niter=cp.pop("niter", 12), seed=cp.pop("seed", 1234), **cp)
    obj = km.train(x, **(train_kwargs or {}))
    return obj, km


def test_weights_match_faiss(x):
    w = np.random.default_rng(0).uniform(0.1, 3.0, len(x)).astype("float32")
    fo, fk = run(faiss, x, train_kwargs={"weights": w})
    no, nk = run(nearly, x, train_kwargs={"weights": w})
    np.testing.assert_allclose(nk.obj, fk.obj, rtol=1e-3)
    np.testing.assert_allclose(nk.centroids, fk.centroids, atol=2e-3)
    # and they are really weighted: not the unweighted run
    _, plain = run(nearly, x)
    assert np.abs(plain.centroids - nk.centroids).max() > 1e-2


def test_uniform_weights_are_the_unweighted_run(x):
    _, plain = run(nearly, x)
    _, twice = run(nearly, x, train_kwargs={"weights": np.full(len(x), 2.0, "float32")})
    np.testing.assert_allclose(twice.centroids, plain.centroids, atol=1e-5)
    np.testing.assert_allclose(twice.obj, plain.obj, rtol=1e-6)


def test_weights_below_one_do_not_hang_on_empty_clusters():
    # Masses under 1 never pass faiss's donor draw; the biggest cluster splits.
    rng = np.random.default_rng(1)
    x = np.vstack([rng.normal(size=(500, 8)), rng.normal(size=(5, 8)) + 50]).astype("float32")
    km = nearly.Kmeans(8, 40, niter=5)
    km.train(x, weights=np.full(len(x), 1e-3, "float32"))
    assert np.isfinite(km.centroids).all()


def test_init_centroids_match_faiss(x):
    init = x[::200][:32] * 1.01
    fo, fk = run(faiss, x, train_kwargs={"init_centroids": init})
    no, nk = run(nearly, x, train_kwargs={"init_centroids": init})
    np.testing.assert_allclose(nk.obj, fk.obj, rtol=1e-3)
    np.testing.assert_allclose(nk.centroids, fk.centroids, atol=2e-3)


def test_frozen_partial_init_matches_faiss(x):
    init = x[::300][:10] * 1.5  # 10 of 32 given; the other 22 start at random points
    fo, fk = run(faiss, x, frozen_centroids=True, train_kwargs={"init_centroids": init})
    no, nk = run(nearly, x, frozen_centroids=True, train_kwargs={"init_centroids": init})
    np.testing.assert_array_equal(nk.centroids[:10], init)
    np.testing.assert_allclose(nk.obj, fk.obj, rtol=1e-3)
    np.testing.assert_allclose(nk.centroids, fk.centroids, atol=2e-3)
    _, moving = run(nearly, x, train_kwargs={"init_centroids": init})
    assert np.abs(moving.centroids[:10] - init).max() > 1e-2


def test_int_centroids_match_faiss():
    rng = np.random.default_rng(2)
    x = (rng.normal(size=(3000, 16)) * 20).astype("float32")
    fo, fk = run(faiss, x, k=16, int_centroids=True)
    no, nk = run(nearly, x, k=16, int_centroids=True)
    np.testing.assert_array_equal(nk.centroids, np.round(nk.centroids))
    np.testing.assert_array_equal(nk.centroids, fk.centroids)
    np.testing.assert_allclose(nk.obj, fk.obj, rtol=1e-5)


@pytest.mark.parametrize("threshold", [0.0, 1e-3, 0.05])
def test_early_stop_matches_faiss(x, threshold):
    fo, fk = run(faiss, x, niter=60, early_stop_threshold=threshold)
    no, nk = run(nearly, x, niter=60, early_stop_threshold=threshold)
    assert len(nk.obj) == len(fk.obj)
    np.testing.assert_allclose(nk.obj, fk.obj, rtol=1e-3)
    if threshold > 0:
        assert len(nk.obj) < 60
        rel = abs(nk.obj[-1] - nk.obj[-2]) / abs(nk.obj[-2])
        assert rel <= threshold


def test_iteration_stats_objects(x):
    for lib in (faiss, nearly):
        clus = lib.Clustering(x.shape[1], 16)
        clus.niter = 5
        index = lib.IndexFlatL2(x.shape[1])
        clus.train(x, index)
        stats = clus.iteration_stats
        assert stats.size() == 5
        last = stats.at(stats.size() - 1)
        assert last.obj > 0 and last.time >= last.time_search >= 0 and last.imbalance_factor >= 1
        km = lib.Kmeans(x.shape[1], 16, niter=5)
        km.train(x)
        assert [st["obj"] for st in km.iteration_stats] == list(km.obj)
        assert set(km.iteration_stats[0]) >= {"obj", "time", "time_search", "imbalance_factor", "nsplit"}


def test_bad_options_raise(x):
    km = nearly.Kmeans(x.shape[1], 8)
    with pytest.raises(ValueError, match="weights"):
        km.train(x, weights=np.ones(len(x) - 1, "float32"))
    with pytest.raises(ValueError, match="weights"):
        km.train(x, weights=-np.ones(len(x), "float32"))
    with pytest.raises(ValueError, match="weights"):
        km.train(x, weights=np.full(len(x), np.nan, "float32"))
    with pytest.raises(ValueError, match="init_centroids"):
        km.train(x, init_centroids=np.ones((8, 3), "float32"))
    clus = nearly.Clustering(x.shape[1], 8)
    with pytest.raises(ValueError, match="at most k x d"):
        clus.centroids = np.ones((9, x.shape[1]), "float32")
    with pytest.raises(IndexError):
        clus.iteration_stats.at(0)
