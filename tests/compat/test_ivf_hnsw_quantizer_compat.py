"""IVF{n}_HNSW{M}: the coarse quantizer is an HNSW graph over the centroids,
as in faiss; recall within a point of faiss's at the same parameters."""
import numpy as np
import pytest

import nearly


def clustered(rng, n, d=32, k=60):
    c = rng.standard_normal((k, d)).astype(np.float32) * 2
    return (c[rng.integers(0, k, n)] + 0.4 * rng.standard_normal((n, d))).astype(np.float32)


@pytest.mark.parametrize("desc", ["IVF64_HNSW16,Flat", "IVF64_HNSW16,PQ8"])
def test_ivf_with_hnsw_quantizer_matches_faiss(faiss, desc):
    rng = np.random.default_rng(2)
    xb, xq = clustered(rng, 20000), clustered(rng, 200)
    gt = np.argsort(((xq[:, None, :] - xb[None]) ** 2).sum(-1), axis=1)[:, :10]

    def recall(I):
        return np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I, gt)])

    ours = nearly.index_factory(32, desc)
    theirs = faiss.index_factory(32, desc)
    assert type(ours.quantizer).__name__ == "IndexHNSWFlat"
    for idx in (ours, theirs):
        idx.train(xb)
        idx.add(xb)
    for nprobe in (2, 8):
        ours.nprobe = theirs.nprobe = nprobe
        assert abs(recall(ours.search(xq, 10)[1]) - recall(theirs.search(xq, 10)[1])) <= 0.02, (desc, nprobe)
    # persistence keeps the graph quantizer
    back = nearly.deserialize_index(nearly.serialize_index(ours))
    np.testing.assert_array_equal(back.search(xq, 10)[1], ours.search(xq, 10)[1])


@pytest.mark.parametrize("desc", ["IVF1k,Flat", "IVF2k_HNSW,Flat", "IVF256_HNSW,PQ8x6", "IVF256_HNSW16,SQ8",
                                  "IVF1M,Flat"])
def test_factory_nlist_suffixes_and_default_graph_degree(faiss, desc):
    """faiss's IVF{n}[k|M][_HNSW[M]]: k and M scale nlist by 1024 and 1024^2,
    a bare _HNSW builds its graph with M = 32."""
    ours, theirs = nearly.index_factory(32, desc), faiss.index_factory(32, desc)
    assert type(ours).__name__ == type(theirs).__name__
    assert ours.nlist == theirs.nlist
    tq = faiss.downcast_index(theirs.quantizer)
    assert type(ours.quantizer).__name__ == type(tq).__name__
    if "HNSW" in desc:
        assert ours.quantizer.hnsw.nb_neighbors(1) == tq.hnsw.nb_neighbors(1)
