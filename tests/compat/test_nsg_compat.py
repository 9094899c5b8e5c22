"""IndexNSGFlat against faiss-cpu's on the real embeddings: the recall of
faiss's graph at every search_L (within 0.015), the same distances and
factory strings (padding is tested in tests/test_nsg.py: faiss's NSG
refuses or loops on sets that small)."""
import numpy as np
import pytest

import nearly
from _hnswutil import exact_knn, real_data, recall

faiss = pytest.importorskip("faiss")


@pytest.fixture(scope="module", params=[1, 0], ids=["L2", "IP"])
def built(request):
    metric = request.param
    xb, xq = real_data()
    xb = xb[:10_000]
    out = {}
    for lib in (faiss, nearly):
        index = lib.IndexNSGFlat(xb.shape[1], 32, metric)
        index.add(xb)
        out[lib] = index
    return out, xb, xq, metric


@pytest.mark.parametrize("L", [16, 32, 64])
def test_recall_like_faiss(built, L):
    idx, xb, xq, metric = built
    true = exact_knn(xq, xb, 10, metric)
    got = {}
    for lib, index in idx.items():
        index.nsg.search_L = L
        got[lib] = index.search(xq, 10)
    r = {lib.__name__: recall(I, true) for lib, (D, I) in got.items()}
    assert r["nearly"] >= r["faiss"] - 0.015, r
    (Dn, In), (Df, If) = got[nearly], got[faiss]
    for q in range(len(xq)):  # the same distance for an id both return
        a, b = dict(zip(In[q], Dn[q])), dict(zip(If[q], Df[q]))
        for i in set(a) & set(b):
            assert abs(a[i] - b[i]) <= 1e-4 * max(1.0, abs(b[i]))


def test_factory_like_faiss():
    for desc in ("NSG32", "NSG16,Flat", "NSG", "NSG24_Flat"):
        a, b = faiss.index_factory(16, desc), nearly.index_factory(16, desc)
        assert type(a).__name__ == type(b).__name__ == "IndexNSGFlat"
        assert a.nsg.R == b.nsg.R and a.nsg.search_L == b.nsg.search_L and a.GK == b.GK


@pytest.mark.parametrize("metric", [1, 0], ids=["L2", "IP"])
def test_build_from_a_given_knn_graph(metric):
    xb, xq = real_data()
    xb = xb[:5_000]
    true = exact_knn(xq, xb, 10, metric)
    flat = nearly.IndexFlat(xb.shape[1], metric)
    flat.add(xb)
    knn = flat.search(xb, 33)[1][:, 1:]  # the node itself left out
    knn_bad = knn.copy()
    knn_bad[:300, 5] = -111  # faiss's test: a few invalid entries are left out
    knn_bad[300:400, 7] = len(xb) + 3
    r = {}
    for lib in (faiss, nearly):
        for name, graph in (("good", knn), ("bad", knn_bad)):
            index = lib.IndexNSGFlat(xb.shape[1], 32, metric)
            index.build(xb, graph)
            assert index.is_built and index.ntotal == len(xb)
            index.nsg.search_L = 32
            r[lib.__name__, name] = recall(index.search(xq, 10)[1], true)
            with pytest.raises(RuntimeError, match="already built"):
                index.build(xb, graph)
            with pytest.raises(RuntimeError, match="incremental addition"):
                index.add(xb)
    for name in ("good", "bad"):
        assert r["nearly", name] >= r["faiss", name] - 0.015, r
    # built from the exact graph, as add() builds it: the same recall
    added = nearly.IndexNSGFlat(xb.shape[1], 32, metric)
    added.GK = 32
    added.add(xb)
    added.nsg.search_L = 32
    assert abs(recall(added.search(xq, 10)[1], true) - r["nearly", "good"]) < 0.01
    with pytest.raises(ValueError, match="knn_graph"):
        nearly.IndexNSGFlat(xb.shape[1], 32, metric).build(xb, knn[:10])
    knn_bad[:600, 3] = -1  # n / 10 invalid entries or more: a wrong graph, refused by both
    for lib in (faiss, nearly):
        with pytest.raises(RuntimeError, match="too many invalid entries"):
            lib.IndexNSGFlat(xb.shape[1], 32, metric).build(xb, knn_bad)
