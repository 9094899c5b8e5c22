"""k-means seeding against faiss-cpu: the same constants and defaults, and
the same picks from the same seed (faiss's std::mt19937_64 draws) for
RANDOM, k-means++ and AFK-MC2, with and without existing centroids, through
ClusteringInitialization and through Kmeans; on integer data (exact
distances) always, and on the real embeddings too."""
import numpy as np
import pytest

import nearly
from _hnswutil import real_data

faiss = pytest.importorskip("faiss")
if not hasattr(faiss, "ClusteringInitialization"):
    pytest.skip("this faiss has no ClusteringInitialization", allow_module_level=True)

METHODS = ["RANDOM", "KMEANS_PLUS_PLUS", "AFK_MC2"]


def integer_data(n, d, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.integers(-40, 41, size=(30, d))
    return (centres[rng.integers(0, 30, n)] + rng.integers(-3, 4, size=(n, d))).astype(np.float32)


def seeds(lib, method, x, k, seed, chain=None, existing=None):
    ci = lib.ClusteringInitialization(x.shape[1], k)
    ci.method = getattr(lib, "ClusteringInitMethod_" + method)
    ci.seed = seed
    if chain is not None:
        ci.afkmc2_chain_length = chain
    c = np.zeros((k, x.shape[1]), np.float32)
    if existing is None:
        ci.init_centroids(len(x), lib.swig_ptr(x), lib.swig_ptr(c))
    else:
        ci.init_centroids(len(x), lib.swig_ptr(x), lib.swig_ptr(c), len(existing), lib.swig_ptr(existing))
    return c


def test_constants_and_defaults_like_faiss():
    for m in METHODS:
        assert getattr(nearly, "ClusteringInitMethod_" + m) == getattr(faiss, "ClusteringInitMethod_" + m)
    a, b = nearly.ClusteringInitialization(8, 4), faiss.ClusteringInitialization(8, 4)
    for name in ("d", "k", "method", "seed", "afkmc2_chain_length"):
        assert getattr(a, name) == getattr(b, name), name
    a, b = nearly.ClusteringParameters(), faiss.ClusteringParameters()
    for name in ("init_method", "afkmc2_chain_length"):
        assert getattr(a, name) == getattr(b, name), name


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n,d", [(3000, 16), (40000, 32)])
@pytest.mark.parametrize("seed", [0, 42])
def test_same_picks_as_faiss_on_integer_data(method, n, d, seed):
    x = integer_data(n, d, seed)
    np.testing.assert_array_equal(seeds(nearly, method, x, 40, seed), seeds(faiss, method, x, 40, seed))


@pytest.mark.parametrize("method", METHODS[1:])
def test_same_picks_as_faiss_with_existing_centroids(method):
    x = integer_data(40000, 32, 3)
    existing = x[:7] + 0.5
    np.testing.assert_array_equal(seeds(nearly, method, x, 30, 5, existing=existing),
                                  seeds(faiss, method, x, 30, 5, existing=existing))


@pytest.mark.parametrize("chain", [1, 10, 200])
def test_same_afkmc2_chains_as_faiss(chain):
    x = integer_data(5000, 16, 1)
    np.testing.assert_array_equal(seeds(nearly, "AFK_MC2", x, 64, 7, chain),
                                  seeds(faiss, "AFK_MC2", x, 64, 7, chain))


@pytest.mark.parametrize("method", METHODS)
def test_same_picks_as_faiss_on_real_embeddings(method):
    x = np.array(real_data()[0])  # faiss's swig_ptr wants a writeable array
    np.testing.assert_array_equal(seeds(nearly, method, x, 64, 3), seeds(faiss, method, x, 64, 3))


@pytest.mark.parametrize("method", METHODS[1:])
def test_kmeans_seeding_like_faiss(method):
    """niter = 0: Kmeans keeps its seeds, which are faiss's (given centroids
    first, the rest seeded away from them); with iterations on the real
    embeddings the objectives follow faiss's."""
    x = integer_data(4000, 16, 2)
    given = x[:3] + 0.25
    for train_kwargs in ({}, {"init_centroids": given}):
        runs = []
        for lib in (nearly, faiss):
            km = lib.Kmeans(16, 24, niter=0, seed=9, init_method=getattr(lib, "ClusteringInitMethod_" + method))
            km.train(x, **train_kwargs)
            runs.append(km.centroids)
        np.testing.assert_array_equal(runs[0], runs[1])
    real = np.ascontiguousarray(real_data()[0][:8000, :64])
    objs = []
    for lib in (nearly, faiss):
        km = lib.Kmeans(64, 32, niter=10, seed=4, init_method=getattr(lib, "ClusteringInitMethod_" + method))
        km.train(real)
        objs.append(km.obj)
    np.testing.assert_allclose(objs[0], objs[1], rtol=1e-3)
