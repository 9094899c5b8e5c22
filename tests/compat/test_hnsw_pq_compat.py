"""IndexHNSWPQ against faiss-cpu's: with the same codebooks, the same codes,
the same distances for the ids both return, the recall of faiss's graph at
every efSearch, the same padding and factory strings."""
import numpy as np
import pytest

import nearly
from _hnswutil import dist64, real_data, recall

faiss = pytest.importorskip("faiss")

NB = 10_000


@pytest.fixture(scope="module")
def built():
    xb_all, xq = real_data()
    xb = xb_all[:NB]
    out = {}
    for lib in (faiss, nearly):
        index = lib.IndexHNSWPQ(xb.shape[1], 48, 32)
        if lib is faiss:
            index.train(xb)
            centroids = faiss.vector_to_array(faiss.downcast_index(index.storage).pq.centroids)
        else:
            index.set_pq_centroids(centroids)
        index.add(xb)
        out[lib.__name__] = index
    return out, xb, xq


def test_same_codebooks_give_the_same_codes(built):
    idx, xb, _ = built
    np.testing.assert_allclose(idx["nearly"].reconstruct_n(0, NB), idx["faiss"].reconstruct_n(0, NB), rtol=0, atol=1e-6)


@pytest.mark.parametrize("ef", [16, 64, 128])
def test_recall_and_distances_match_faiss(built, ef):
    idx, xb, xq = built
    true = np.argsort(dist64(xq, xb, 1), axis=1)[:, :10]
    res = {}
    for name, index in idx.items():
        index.hnsw.efSearch = ef
        res[name] = index.search(xq, 10)
    r = {name: recall(I, true) for name, (D, I) in res.items()}
    assert r["nearly"] >= r["faiss"] - 0.01, r
    (Dn, In), (Df, If) = res["nearly"], res["faiss"]
    for q in range(len(xq)):
        dn, df = dict(zip(In[q], Dn[q])), dict(zip(If[q], Df[q]))
        for i in set(dn) & set(df):
            assert abs(dn[i] - df[i]) <= 1e-5 * max(1.0, abs(df[i])), (q, i, dn[i], df[i])


def test_padding_like_faiss(built):
    _, xb, xq = built
    for lib in (faiss, nearly):
        index = lib.IndexHNSWPQ(xb.shape[1], 48, 16)
        index.train(xb[:1000])
        index.add(xb[:3])
        D, I = index.search(xq[:2], 5)
        assert (I[:, 3:] == -1).all() and (I[:, :3] >= 0).all()
        assert (D[:, 3:] == np.finfo(np.float32).max).all()


@pytest.mark.parametrize("desc", ["HNSW32,PQ16", "HNSW16_PQ32", "HNSW,PQ8x4", "HNSW24,PQ16np"])
def test_factory_strings_like_faiss(desc):
    got = {}
    for lib in (faiss, nearly):
        index = lib.index_factory(64, desc)
        pq = faiss.downcast_index(index.storage).pq if lib is faiss else index.pq
        got[lib.__name__] = (type(index).__name__, pq.M, pq.nbits, index.hnsw.nb_neighbors(1))
    assert got["nearly"] == got["faiss"]
