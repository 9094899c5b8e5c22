"""Clustering.train_encoded: k-means over a codec's codes, decoded a block at
a time. Checked bit for bit against train() on the decoded points (every
option that changes the path: subsampling, weights, k-means++ seeding,
frozen input centroids, an HNSW assignment index, inner product, tiny
blocks, threads), against faiss-cpu's train_encoded, and on bad input."""
import numpy as np
import pytest

import nearly
from _hnswutil import clustered

D = 32


def codes_of(codec_string="SQ4", n=3000, seed=0):
    x = clustered(seed, n, 0, d=D, nclusters=25)[0]
    codec = nearly.index_factory(D, codec_string)
    codec.train(x)
    codes = codec.sa_encode(x)
    return codec, codes, codec.sa_decode(codes)


def clustering(k=20, **opts):
    clus = nearly.Clustering(D, k)
    clus.niter = 8
    for key, v in opts.items():
        setattr(clus, key, v)
    return clus


def assert_same_run(a, b):
    np.testing.assert_array_equal(a.centroids, b.centroids)
    np.testing.assert_array_equal(a.obj, b.obj)


@pytest.mark.parametrize("case", ["plain", "subsampled", "weights", "kmeans++", "frozen", "hnsw", "ip",
                                  "pq_codec"])
@pytest.mark.parametrize("block", [100, 1024, 32768])
def test_same_centroids_as_training_on_the_decoded_points(case, block, restore_threads):
    codec, codes, decoded = codes_of("PQ8" if case == "pq_codec" else "SQ4")
    opts, weights, make_index = {}, None, None
    if case == "subsampled":
        opts["max_points_per_centroid"] = 50  # 1,000 of the 3,000 points, the same draw
    if case == "weights":
        weights = np.random.default_rng(1).random(len(codes)).astype(np.float32)
    if case == "kmeans++":
        opts["init_method"] = nearly.ClusteringInitMethod_KMEANS_PLUS_PLUS
    if case == "hnsw":
        make_index = lambda: nearly.IndexHNSWFlat(D, 16)  # noqa: E731
    if case == "ip":
        make_index = lambda: nearly.IndexFlatIP(D)  # noqa: E731
    runs = []
    for encoded in (False, True):
        nearly.omp_set_num_threads(2 if encoded else 1)  # and the thread count changes nothing
        clus = clustering(**opts)
        if case == "frozen":
            clus.centroids = decoded[:5] + 0.01
            clus.frozen_centroids = True
        clus.decode_block_size = block
        index = make_index() if make_index else None
        if encoded:
            clus.train_encoded(codes, codec, index, weights=weights)
        else:
            clus.train(decoded, index, weights=weights)
        runs.append((clus, index))
    (a, ia), (b, ib) = runs
    assert_same_run(a, b)
    if ia is not None:
        assert ib.ntotal == 20
        np.testing.assert_array_equal(ia.reconstruct_n(0, 20), ib.reconstruct_n(0, 20))
    if case == "frozen":
        np.testing.assert_array_equal(b.centroids.reshape(20, D)[:5], decoded[:5] + 0.01)


def test_like_faiss():
    faiss = pytest.importorskip("faiss")
    x = clustered(3, 2000, 0, d=D, nclusters=25)[0]
    out = {}
    for lib in (faiss, nearly):
        codec = lib.IndexScalarQuantizer(D, lib.ScalarQuantizer.QT_8bit)
        codec.train(x)
        codes = codec.sa_encode(x)
        clus = lib.Clustering(D, 16)
        clus.niter = 0  # faiss's own check: the same random points as train() on the decoded data
        clus.decode_block_size = 120
        index = lib.IndexFlatL2(D)
        clus.train_encoded(codes, codec, index)
        out[lib.__name__] = (codes, lib.vector_to_array(clus.centroids).reshape(-1, D))
        clus = lib.Clustering(D, 16)
        clus.niter = 10
        clus.train_encoded(codes, codec, lib.IndexFlatL2(D))
        out[lib.__name__ + "10"] = lib.vector_to_array(clus.centroids).reshape(-1, D)
    np.testing.assert_array_equal(out["nearly"][0], out["faiss"][0])  # the same codes
    # the same starting points (the two SQ decoders round an ulp apart)
    np.testing.assert_allclose(out["nearly"][1], out["faiss"][1], rtol=1e-6, atol=1e-7)
    # after 10 iterations: the same clustering up to float rounding
    np.testing.assert_allclose(out["nearly10"], out["faiss10"], rtol=1e-4, atol=1e-5)


def test_verbose_and_bad_input(capfd):
    codec, codes, decoded = codes_of()
    clus = clustering(verbose=True)
    clus.train_encoded(codes, codec)
    assert "encoded in 16 bytes per vector" in capfd.readouterr().out
    with pytest.raises(ValueError, match="sa_code_size"):
        clustering().train_encoded(codes[:, :-1], codec)
    with pytest.raises(ValueError, match="sa_code_size"):
        clustering().train_encoded(codes.ravel(), codec)
    with pytest.raises(ValueError, match="dimension 16"):
        clustering().train_encoded(codes, codec, nearly.IndexFlatL2(16))
    other = nearly.index_factory(16, "SQ8")
    other.train(decoded[:, :16])
    with pytest.raises(ValueError):
        clustering().train_encoded(other.sa_encode(decoded[:, :16]), other)
    untrained = nearly.index_factory(D, "SQ4")
    with pytest.raises(RuntimeError, match="not trained"):
        clustering().train_encoded(np.zeros((100, 16), np.uint8), untrained)
    with pytest.raises(RuntimeError, match="at least as large"):
        clustering(k=20).train_encoded(codes[:10], codec)
    with pytest.raises(ValueError, match="weights"):
        clustering().train_encoded(codes, codec, weights=np.ones(5, np.float32))
    with pytest.raises(ValueError, match="decode_block_size"):
        clustering().decode_block_size = 0
    assert nearly.ClusteringParameters().decode_block_size == 32768
