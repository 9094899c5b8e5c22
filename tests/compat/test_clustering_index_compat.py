"""faiss's clustering_index (IndexIVF, IndexBinaryIVF) and Clustering.train
through an approximate index: the k-means assigns through that index's
search. Checked against exact k-means (a flat index gives its centroids),
against a deliberately coarse index (an LSH one gives other centroids, so the
index is really used) and against faiss-cpu doing the same."""
import numpy as np
import pytest

import nearly
from _hnswutil import real_data

faiss = pytest.importorskip("faiss")


@pytest.fixture(scope="module")
def xt():
    return np.array(real_data()[0][:12000, :64])  # a 64-d slice keeps it quick


def ivf_centroids(lib, xt, clustering_index=None, nlist=64):
    index = lib.IndexIVFFlat(lib.IndexFlatL2(xt.shape[1]), xt.shape[1], nlist)
    if clustering_index is not None:
        index.clustering_index = clustering_index
    index.train(xt)
    return index.quantizer.reconstruct_n(0, nlist), index


def objective(x, c):
    return float(faiss.knn(x, c, 1)[0].astype(np.float64).sum())


def test_flat_clustering_index_gives_the_exact_centroids(xt):
    ref, _ = ivf_centroids(nearly, xt)
    flat = nearly.IndexFlatL2(xt.shape[1])
    got, index = ivf_centroids(nearly, xt, flat)
    assert index.clustering_index is flat
    np.testing.assert_allclose(got, ref, atol=1e-4)
    assert flat.ntotal == 64  # it held the last iteration's centroids


def test_approximate_clustering_index_is_used(xt):
    d = xt.shape[1]
    exact, _ = ivf_centroids(nearly, xt)
    hnsw, _ = ivf_centroids(nearly, xt, nearly.IndexHNSWFlat(d, 32))
    lsh, _ = ivf_centroids(nearly, xt, nearly.IndexLSH(d, 16))
    assert not np.array_equal(lsh, exact)
    # HNSW finds (nearly) the nearest centroid: about the exact objective;
    # 16-bit LSH codes assign badly: a clearly worse one
    assert objective(xt, hnsw) < 1.01 * objective(xt, exact)
    assert objective(xt, lsh) > 1.05 * objective(xt, exact)


def test_like_faiss(xt):
    d = xt.shape[1]
    objs = {}
    for lib in (nearly, faiss):
        c, _ = ivf_centroids(lib, xt, lib.IndexFlatL2(d))
        objs[lib.__name__] = objective(xt, c)
        c, _ = ivf_centroids(lib, xt, lib.IndexHNSWFlat(d, 32))
        objs[lib.__name__ + "_hnsw"] = objective(xt, c)
    assert abs(objs["nearly"] - objs["faiss"]) < 1e-3 * objs["faiss"]
    assert abs(objs["nearly_hnsw"] - objs["faiss_hnsw"]) < 1e-2 * objs["faiss_hnsw"]


def test_through_a_factory_index_and_search(xt):
    d = xt.shape[1]
    index = nearly.index_factory(d, "IVF64,PQ8")
    nearly.extract_index_ivf(index).clustering_index = nearly.IndexHNSWFlat(d, 16)
    index.train(xt)
    index.add(xt[:2000])
    index.nprobe = 64
    D, I = index.search(xt[:50], 1)
    assert (I[:, 0] >= 0).all()


def test_clustering_train_through_an_index(xt):
    d = xt.shape[1]
    runs = {}
    for name, index in (("flat", nearly.IndexFlatL2(d)), ("hnsw", nearly.IndexHNSWFlat(d, 32)),
                        ("lsh", nearly.IndexLSH(d, 16))):
        clus = nearly.Clustering(d, 50)
        clus.niter = 8
        clus.train(xt, index)
        assert index.ntotal == 50
        runs[name] = clus.centroids.reshape(50, d)
    assert objective(xt, runs["hnsw"]) < 1.01 * objective(xt, runs["flat"])
    assert objective(xt, runs["lsh"]) > 1.05 * objective(xt, runs["flat"])


def test_binary_ivf_clustering_index_like_faiss():
    """faiss's test_override: a flat L2 index gives the default centroids,
    an LSH one other centroids."""
    rng = np.random.default_rng(0)
    d = 256
    xt = rng.integers(0, 256, size=(3500, d // 8), dtype=np.uint8)

    def centroids(lib, override):
        index = lib.index_binary_factory(d, "BIVF10")
        if override is not None:
            index.clustering_index = override
        index.train(xt)
        return index.quantizer.reconstruct_n(0, 10)

    for lib in (nearly, faiss):
        ref = centroids(lib, None)
        np.testing.assert_array_equal(centroids(lib, lib.IndexFlatL2(d)), ref)
        assert not np.array_equal(centroids(lib, lib.IndexLSH(d, 16)), ref)
    np.testing.assert_array_equal(centroids(nearly, nearly.IndexFlatL2(d)), centroids(faiss, faiss.IndexFlatL2(d)))


def test_bad_clustering_index():
    index = nearly.IndexIVFFlat(nearly.IndexFlatL2(16), 16, 4)
    with pytest.raises(nearly.InvalidArgumentError, match="d=8"):
        index.clustering_index = nearly.IndexFlatL2(8)
    with pytest.raises(nearly.InvalidArgumentError, match="native"):
        index.clustering_index = nearly.IndexShards(16)
    with pytest.raises(nearly.InvalidArgumentError, match="own"):
        index.clustering_index = index
    index.clustering_index = nearly.IndexFlatL2(16)
    index.clustering_index = None
    assert index.clustering_index is None
    binary = nearly.IndexBinaryIVF(nearly.IndexBinaryFlat(64), 64, 4)
    with pytest.raises(nearly.InvalidArgumentError):
        binary.clustering_index = nearly.IndexFlatL2(8)
