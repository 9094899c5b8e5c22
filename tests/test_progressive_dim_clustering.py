"""ProgressiveDimClustering: the steps it runs (dimensions d^((i+1)/steps),
warm starts, the PCA basis), against a numpy reference built from plain
Clustering runs; beside faiss-cpu on the real embeddings (the same
objective to 1%, both below plain k-means); Kmeans(progressive_dim_steps=);
the factory; bad input."""
import numpy as np
import pytest

import nearly
from _hnswutil import real_data
from _testutil import clustered


@pytest.fixture(scope="module")
def x():
    return clustered(np.random.default_rng(3), 4000, 16, nclusters=30)


def test_steps_against_reference(x):
    """The same centroids as running the steps by hand: PCA, k-means on the
    first d_i columns warm-started from the last step, rotated back."""
    n, d, k, steps = len(x), x.shape[1], 12, 4
    clus = nearly.ProgressiveDimClustering(d, k)
    clus.progressive_dim_steps = steps
    clus.niter = 6
    clus.train(n, x)
    pca = nearly.PCAMatrix(d, d)
    pca.train(x)
    xp = pca.apply(x)
    cent, iterations = None, 0
    for i in range(steps):
        di = int(d ** ((1 + i) / steps))
        cp = nearly.ClusteringParameters()
        cp.niter = 6
        ref = nearly.Clustering(di, k, cp)
        if cent is not None:
            warm = np.zeros((k, di), np.float32)
            warm[:, :cent.shape[1]] = cent[:, :di]
            ref.centroids = warm
        ref.train(np.ascontiguousarray(xp[:, :di]))
        cent = ref.centroids.reshape(k, di)
        iterations += ref.iteration_stats.size()  # up to 6: a step stops once its objective stands still
    back = pca.reverse_transform(cent)
    np.testing.assert_allclose(clus.centroids.reshape(k, d), back, rtol=1e-5, atol=1e-5)
    assert clus.iteration_stats.size() == iterations and clus.obj.shape == (iterations,)
    assert steps < iterations <= steps * 6


def test_factory_sets_each_step(x):
    d, k, steps = x.shape[1], 10, 5
    dims = []

    def factory(dim):
        dims.append(dim)
        return nearly.IndexHNSWFlat(dim, 16)  # not exact: assigns through its search

    clus = nearly.ProgressiveDimClustering(d, k)
    clus.progressive_dim_steps = steps
    clus.train(len(x), x, factory)
    assert dims == [int(d ** ((1 + i) / steps)) for i in range(steps)]
    exact = nearly.ProgressiveDimClustering(d, k)
    exact.progressive_dim_steps = steps
    exact.train(len(x), x, nearly.ProgressiveDimIndexFactory())
    assert clus.obj[-1] <= 1.05 * exact.obj[-1]


def test_kmeans_wrapper(x):
    plain = nearly.Kmeans(16, 20, niter=10)
    plain.train(x)
    prog = nearly.Kmeans(16, 20, progressive_dim_steps=5)
    assert isinstance(prog.cp, nearly.ProgressiveDimClusteringParameters) and prog.cp.niter == 10
    obj = prog.train(x)
    assert prog.centroids.shape == (20, 16) and len(prog.iteration_stats) == len(prog.obj) <= 50
    assert obj == prog.obj[-1] <= plain.obj[-1] * 1.01
    D, I = prog.assign(x[:5])
    assert D.shape == I.shape == (5,)
    with pytest.raises(ValueError, match="progressive_dim_steps"):
        prog.train(x, weights=np.ones(len(x), np.float32))


def test_real_data_beside_faiss():
    faiss = pytest.importorskip("faiss")
    base, _ = real_data()
    xt = np.array(base[:10000])  # writable: faiss's swig_ptr demands it
    d, k = xt.shape[1], 64
    objs = {}
    for lib in (nearly, faiss):
        clus = lib.ProgressiveDimClustering(d, k)
        clus.progressive_dim_steps = 5
        clus.train(len(xt), lib.swig_ptr(xt), lib.ProgressiveDimIndexFactory())
        st = clus.iteration_stats
        objs[lib] = st.at(st.size() - 1).obj
        plain = lib.Kmeans(d, k, niter=10)
        plain.train(xt)
        assert objs[lib] < plain.obj[-1]
    assert abs(objs[nearly] - objs[faiss]) <= 0.01 * objs[faiss]


def test_bad_input(x):
    clus = nearly.ProgressiveDimClustering(16, 8)
    clus.progressive_dim_steps = 0
    with pytest.raises(ValueError, match="progressive_dim_steps"):
        clus.train(len(x), x)
    clus.progressive_dim_steps = 3
    with pytest.raises(ValueError, match="factory"):
        clus.train(len(x), x, lambda dim: nearly.IndexFlatL2(dim + 1))
    with pytest.raises(ValueError, match="factory"):
        clus.train(len(x), x, lambda dim: "not an index")
    with pytest.raises(ValueError, match="values"):
        clus.train(len(x) + 1, x)
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError):
        clus.train(len(bad), bad)
    with pytest.raises(ValueError):
        nearly.ProgressiveDimClustering(0, 8)
