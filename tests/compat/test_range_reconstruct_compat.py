"""range_search on the indexes that lacked it (IndexPQ, IndexScalarQuantizer,
their fast-scan and fp16 forms, IndexHNSWFlat) and IndexIVF.reconstruct_n
without a direct map, against faiss-cpu and exact references."""
import numpy as np
import pytest

import nearly
from _hnswutil import real_data
from _testutil import METRIC_IP, METRIC_L2, randn

faiss = pytest.importorskip("faiss")

D = 16


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(31)
    return randn(rng, 6000, D), randn(rng, 40, D)


def sets(lims, I):
    return [set(I[lims[i]:lims[i + 1]].tolist()) for i in range(len(lims) - 1)]


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP], ids=["L2", "IP"])
@pytest.mark.parametrize("fs", ["SQ8", "SQfp16", "PQ4np", "PQ8x4fs"])
def test_flat_codes_range_search(data, fs, metric):
    x, xq = data
    index = nearly.index_factory(D, fs, metric)
    index.train(x)
    index.add(x)
    rec = index.reconstruct_n(0, index.ntotal)
    S = xq.astype(np.float64) @ rec.T.astype(np.float64)
    if metric == METRIC_L2:
        S = (xq.astype(np.float64) ** 2).sum(1)[:, None] + (rec.astype(np.float64) ** 2).sum(1)[None] - 2 * S
    radius = float(np.quantile(S, 0.01 if metric == METRIC_L2 else 0.99))
    lims, Dr, Ir = index.range_search(xq, radius)
    inside = S < radius if metric == METRIC_L2 else S > radius
    near = np.abs(S - radius) < 1e-4 * max(1, abs(radius))
    for i, got in enumerate(sets(lims, Ir)):
        must = set(np.flatnonzero(inside[i] & ~near[i]).tolist())
        assert must <= got <= must | set(np.flatnonzero(near[i]).tolist())
    # each distance is the one to the decoded vector
    q_of = np.repeat(np.arange(len(xq)), np.diff(lims.astype(np.int64)))
    np.testing.assert_allclose(Dr, S[q_of, Ir], rtol=1e-4, atol=1e-4)
    sel = nearly.SearchParameters(sel=nearly.IDSelectorRange(0, 1000))
    l2, _, I2 = index.range_search(xq, radius, params=sel)
    assert (I2 < 1000).all() and len(I2) == sum(len(s & set(range(1000))) for s in sets(lims, Ir))


@pytest.mark.parametrize("fs", ["SQ8", "PQ4np"])
def test_flat_codes_range_search_like_faiss(data, fs):
    x, xq = data
    out = {}
    for lib, mod in (("faiss", faiss), ("nearly", nearly)):
        index = mod.index_factory(D, fs)
        index.train(x)
        if lib == "nearly" and "PQ" in fs:  # faiss's codebooks (a near tie in k-means can move one)
            index.pq.centroids = out["faiss_pq"]
        if lib == "faiss" and "PQ" in fs:  # a copy: the swig vector dies with its index
            out["faiss_pq"] = faiss.vector_to_array(index.pq.centroids)
        index.add(x)
        out[lib] = sets(*index.range_search(xq, 12.0)[::2])
    diff = sum(len(a ^ b) for a, b in zip(out["faiss"], out["nearly"]))
    assert diff <= 0.01 * sum(len(a) for a in out["faiss"]) + 1


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP], ids=["L2", "IP"])
def test_hnsw_range_search_finds_the_range(metric):
    xb, xq = real_data()
    xb, xq = np.ascontiguousarray(xb[:20000]), np.ascontiguousarray(xq[:100])
    exact = nearly.IndexFlat(384, metric)
    exact.add(xb)
    radius = float(np.median(exact.search(xq, 40)[0][:, -1]))
    truth = sets(*exact.range_search(xq, radius)[::2])
    got = {}
    for lib, mod in (("faiss", faiss), ("nearly", nearly)):
        h = mod.IndexHNSWFlat(384, 16, metric)
        h.hnsw.efConstruction = 80
        h.add(xb)
        h.hnsw.efSearch = 32
        lims, Dr, Ir = h.range_search(xq, radius)
        got[lib] = sets(lims, Ir)
        if lib == "nearly":
            assert ((Dr < radius) if metric == METRIC_L2 else (Dr > radius)).all()
            for i in range(len(xq)):  # best first
                d = Dr[lims[i]:lims[i + 1]]
                assert (np.diff(d) >= -1e-6).all() if metric == METRIC_L2 else (np.diff(d) <= 1e-6).all()
    total = sum(len(t) for t in truth)
    recall = {lib: sum(len(g & t) for g, t in zip(got[lib], truth)) / total for lib in got}
    assert all(g <= t for g, t in zip(got["nearly"], truth))  # no false hits (exact distances)
    assert recall["nearly"] >= 0.97 and recall["nearly"] >= recall["faiss"]


def test_hnsw_range_search_edge_cases():
    h = nearly.IndexHNSWFlat(8, 8)
    lims, Dr, Ir = h.range_search(np.zeros((3, 8), np.float32), 1.0)
    assert (lims == 0).all() and len(Ir) == 0
    x = randn(np.random.default_rng(2), 50, 8)
    h.add(x)
    lims, _, Ir = h.range_search(x[:2], 1e9)  # everything: k grows to ntotal
    assert lims[1] == 50 and set(Ir[:50].tolist()) == set(range(50))


@pytest.mark.parametrize("fs", ["IVF16,Flat", "IVF16,PQ4np", "IVF16,SQ8", "IVF16,PQ8x4fs"])
def test_ivf_reconstruct_n_without_direct_map(data, fs):
    x, _ = data
    out = {}
    for lib, mod in (("faiss", faiss), ("nearly", nearly)):
        index = mod.index_factory(D, fs)
        index.train(x)
        index.add(x)
        out[lib] = index.reconstruct_n(100, 300)
        if lib == "nearly":
            nearly.extract_index_ivf(index).make_direct_map()
            np.testing.assert_array_equal(index.reconstruct_n(100, 300), out[lib])
            nearly.extract_index_ivf(index).make_direct_map(False)
            index.remove_ids(np.array([150], dtype=np.int64))
            after = index.reconstruct_n(100, 300)
            assert np.isnan(after[50]).all() and not np.isnan(np.delete(after, 50, axis=0)).any()
            with pytest.raises(IndexError):
                index.reconstruct_n(5990, 20)
    if "PQ" not in fs:  # PQ codebooks may differ where k-means met a near tie
        np.testing.assert_allclose(out["nearly"], out["faiss"], rtol=1e-5, atol=1e-5)
    if fs == "IVF16,Flat":
        np.testing.assert_array_equal(out["nearly"], x[100:400])


@pytest.mark.parametrize("fs", ["LSH", "LSH32rt", "LSHt"])
def test_lsh_range_search_like_faiss(data, fs):
    """faiss's IndexLSH.range_search is IndexFlatCodes's: L2 from the query to
    each decoded code (not a Hamming radius); nearly answers the same."""
    x, xq = data
    out = {}
    radius = None
    for lib, mod in (("faiss", faiss), ("nearly", nearly)):
        index = mod.index_factory(D, fs)
        index.train(x)
        index.add(x)
        rec = index.reconstruct_n(0, index.ntotal).astype(np.float64)
        S = ((xq.astype(np.float64)[:, None, :] - rec[None]) ** 2).sum(-1)
        radius = radius or float(np.quantile(S, 0.02))
        out[lib] = index.range_search(xq, radius) + (S,)
    lims, Dr, Ir, S = out["nearly"]
    q_of = np.repeat(np.arange(len(xq)), np.diff(lims.astype(np.int64)))
    np.testing.assert_allclose(Dr, S[q_of, Ir], rtol=1e-4, atol=1e-4)
    # faiss's rotation differs in the last bits: only ties at the radius may differ
    near = np.abs(S - radius) < 1e-4 * radius
    for i, (a, b) in enumerate(zip(sets(*out["faiss"][:3:2]), sets(lims, Ir))):
        assert a ^ b <= set(np.flatnonzero(near[i]).tolist())
    empty = nearly.IndexLSH(D, 16)
    el, eD, eI = empty.range_search(xq, 1.0)
    assert (el == 0).all() and len(eD) == len(eI) == 0
