"""Kmeans / Clustering: determinism, spherical centroids, empty clusters,
verbose output, bad input. The comparison with faiss is in tests/compat."""
import numpy as np
import pytest

import nearly
from _hnswutil import clustered


def data(n=4000, d=16, seed=0):
    return clustered(seed, n, 0, d=d, nclusters=20)[0]


def test_deterministic_given_seed(restore_threads):
    x = data()
    runs = []
    for threads in (1, 2, 1):
        nearly.omp_set_num_threads(threads)
        km = nearly.Kmeans(16, 32, niter=10, seed=42)
        runs.append((km.train(x), km.centroids.copy(), km.obj.copy()))
    for obj, c, o in runs[1:]:
        assert obj == runs[0][0]
        np.testing.assert_array_equal(c, runs[0][1])
        np.testing.assert_array_equal(o, runs[0][2])
    other = nearly.Kmeans(16, 32, niter=10, seed=43)
    other.train(x)
    assert not np.array_equal(other.centroids, runs[0][1])


def test_objective_decreases_and_matches_assignment():
    x = data()
    km = nearly.Kmeans(16, 20, niter=15)
    obj = km.train(x)
    assert obj == km.obj[-1]
    assert (np.diff(km.obj) <= 1e-3 * km.obj[0]).all()
    D, I = km.assign(x)
    assert D.shape == I.shape == (len(x),) and D.dtype == np.float32 and I.dtype == np.int64
    # the objective after the last update can only be lower than the last recorded one
    assert D.sum() <= obj * (1 + 1e-5)
    ref = ((x[:, None, :] - km.centroids[None]) ** 2).sum(-1).argmin(1)
    assert (I == ref).mean() > 0.999


def test_spherical_centroids_are_unit_norm():
    x = data()
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    km = nearly.Kmeans(16, 20, niter=10, spherical=True)
    obj = km.train(x)
    np.testing.assert_allclose(np.linalg.norm(km.centroids, axis=1), 1, atol=1e-5)
    assert isinstance(km.index, nearly.IndexFlatIP)
    assert (np.diff(km.obj) >= -1e-3 * abs(km.obj[0])).all()  # IP objective increases
    assert obj > 0


def test_empty_clusters_are_split():
    x = np.repeat(data(60), 10, axis=0)  # 60 distinct points, 100 clusters
    km = nearly.Kmeans(16, 100, niter=3, min_points_per_centroid=1)
    km.train(x)
    assert sum(s["nsplit"] for s in km.iteration_stats) > 0
    assert np.isfinite(km.centroids).all()


def test_n_less_than_k_raises():
    with pytest.raises(RuntimeError, match="should be at least as large as number of clusters"):
        nearly.Kmeans(16, 100).train(data(50))


def test_bad_input():
    km = nearly.Kmeans(16, 4)
    with pytest.raises(nearly.InvalidArgumentError):
        km.train(np.zeros((100, 15), np.float32))
    x = data(200)
    x[5, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        km.train(x)
    with pytest.raises(AssertionError):
        nearly.Kmeans(16, 4).assign(x)  # not trained


def test_verbose_prints_progress(capfd):
    km = nearly.Kmeans(16, 4, niter=3, verbose=True, max_points_per_centroid=100)
    km.train(data(1000))
    out = capfd.readouterr().out
    assert "Sampling a subset of 400 / 1000 for training" in out
    assert "Clustering 400 points in 16D to 4 clusters" in out
    assert "Iteration 2" in out


def test_clustering_object_fills_index():
    x = data()
    cp = nearly.ClusteringParameters()
    cp.niter = 5
    clus = nearly.Clustering(16, 8, cp)
    index = nearly.IndexFlatL2(16)
    clus.train(x, index)
    assert index.ntotal == 8
    np.testing.assert_array_equal(index.reconstruct_n(0, 8), clus.centroids.reshape(8, 16))
    assert len(clus.iteration_stats) == 5
