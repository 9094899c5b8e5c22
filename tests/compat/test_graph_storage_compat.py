"""faiss's `index.storage` of the graph indexes: nearly's read-only view of
the vectors kept in the graph's nodes. Read beside faiss (code sizes, the
quantizer, exact search over the stored vectors), checked exactly against
numpy on the reconstructions, and refusing writes."""
import numpy as np
import pytest

import faiss
import nearly

D = 24


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    return (rng.standard_normal((1500, D)).astype(np.float32),
            rng.standard_normal((40, D)).astype(np.float32))


def brute_force(stored, ids, xq, k, metric):
    """Exact results of xq over `stored` (rows named by ids), float64 scores,
    ties by smaller id."""
    s64, q64 = stored.astype(np.float64), xq.astype(np.float64)
    if metric == nearly.METRIC_INNER_PRODUCT:
        key = -(q64 @ s64.T)
    else:
        key = ((q64[:, None, :] - s64[None, :, :]) ** 2).sum(-1)
    order = np.lexsort((np.broadcast_to(ids, key.shape), key), axis=1)[:, :k]
    return ids[order]


@pytest.mark.parametrize("desc", ["HNSW32", "HNSW32_SQ8", "HNSW32,SQfp16", "HNSW32_SQ4", "HNSW32_PQ4",
                                  "HNSW32,PQ6x12np", "NSG32", "NNDescent32"])
def test_code_size_and_quantizer_as_faiss(desc):
    ours = nearly.index_factory(D, desc)
    # faiss's factory has no NN-descent string
    theirs = faiss.IndexNNDescentFlat(D, 32) if desc == "NNDescent32" else faiss.index_factory(D, desc)
    theirs_storage = faiss.downcast_index(theirs.storage)
    storage = nearly.downcast_index(ours.storage)
    assert storage.sa_code_size() == theirs_storage.sa_code_size()
    assert (storage.d, storage.ntotal, storage.metric_type) == (D, 0, theirs_storage.metric_type)
    if "PQ" in desc:
        assert (storage.pq.M, storage.pq.nbits) == (theirs_storage.pq.M, theirs_storage.pq.nbits)
        # nearly never trains polysemous codes (faiss does unless "np")
        assert storage.do_polysemous_training is False
        assert theirs_storage.do_polysemous_training == (not desc.endswith("np"))
    else:
        with pytest.raises(AttributeError):
            storage.pq  # noqa: B018
    if desc == "HNSW32_SQ4":
        assert storage.sq.qtype == theirs_storage.sq.qtype


@pytest.mark.parametrize("metric", [nearly.METRIC_L2, nearly.METRIC_INNER_PRODUCT])
@pytest.mark.parametrize("desc", ["HNSW16", "HNSW16_SQ8", "HNSW16_SQ6", "HNSW16_PQ8", "NSG16", "NNDescent16"])
def test_exact_search_over_the_stored_vectors(data, desc, metric, monkeypatch):
    xb, xq = data
    index = nearly.index_factory(D, desc, metric)
    index.train(xb)
    index.add(xb)
    if desc.startswith("HNSW"):  # holes in the ids: the view names the graph's ids
        index.remove_ids(np.arange(0, 1500, 7))
    monkeypatch.setattr(nearly.graph_storage, "_BLOCK", 256)  # several blocks, merged
    storage = index.storage
    ids = index._ids() if hasattr(index, "_ids") else np.arange(index.ntotal)
    stored = index.reconstruct_batch(ids)
    assert storage.ntotal == index.ntotal == len(ids)
    np.testing.assert_array_equal(storage.get_xb().reshape(-1, D), stored)
    Ds, Is = storage.search(xq, 10)
    np.testing.assert_array_equal(Is, brute_force(stored, ids, xq, 10, metric))
    np.testing.assert_array_equal(storage.assign(xq, 10), Is)
    # the scores are those of the reconstructions
    ref = (xq[:, None, :] * stored[np.searchsorted(ids, Is)]).sum(-1) if metric == nearly.METRIC_INNER_PRODUCT \
        else ((xq[:, None, :] - stored[np.searchsorted(ids, Is)]) ** 2).sum(-1)
    np.testing.assert_allclose(Ds, ref, rtol=1e-4, atol=1e-3)
    # range search: exactly the stored vectors within the radius
    radius = float(np.median(Ds[:, 5]))
    lims, Dr, Ir = storage.range_search(xq, radius)
    for q in range(len(xq)):
        got = Ir[lims[q]:lims[q + 1]]
        scores = ref_scores = (stored @ xq[q]) if metric == nearly.METRIC_INNER_PRODUCT \
            else ((stored - xq[q]) ** 2).sum(-1)
        inside = scores > radius if metric == nearly.METRIC_INNER_PRODUCT else scores < radius
        margin = np.abs(ref_scores - radius) > 1e-3  # ignore float ties at the boundary
        assert set(got) & set(ids[margin]) == set(ids[inside & margin])


def test_padding_and_bad_input(data):
    xb, xq = data
    index = nearly.IndexHNSWFlat(D, 16)
    D0, I0 = index.storage.search(xq[:2], 3)  # empty
    assert (I0 == -1).all() and (D0 == np.finfo(np.float32).max).all()
    index.add(xb[:5])
    D5, I5 = index.storage.search(xq[:2], 8)  # k > ntotal pads, as IndexFlat does
    assert (I5[:, 5:] == -1).all() and sorted(I5[0, :5]) == list(range(5))
    with pytest.raises(ValueError):
        index.storage.search(xq, 0)
    with pytest.raises(ValueError):
        index.storage.search(xq[:, :5], 3)


def test_writes_are_refused(data):
    xb, _ = data
    index = nearly.IndexHNSWFlat(D, 16)
    index.add(xb[:100])
    storage = index.storage
    for call in (lambda: storage.add(xb[:3]), lambda: storage.reset(), lambda: storage.train(xb),
                 lambda: storage.add_with_ids(xb[:3], np.arange(3)), lambda: storage.remove_ids(np.arange(3))):
        with pytest.raises(RuntimeError, match="read-only"):
            call()
    with pytest.raises(ValueError, match="holds 0 vectors"):  # one vector per node, or nothing taken
        index.storage = nearly.IndexFlatL2(D)
    nsg = nearly.IndexNSGFlat(D, 16)
    with pytest.raises(RuntimeError, match="cannot be replaced"):
        nsg.storage = nearly.IndexFlatL2(D)
    assert index.ntotal == 100
    # the view follows the index
    index.add(xb[100:150])
    assert storage.ntotal == 150


def test_index_flat_codes_isinstance_as_faiss():
    descs = ["Flat", "PQ4", "SQ8", "RQ2x4", "LSH", "RaBitQ", "PQ4x4fs", "HNSW16", "IVF4,Flat", "IDMap,Flat"]
    for desc in descs:
        ours, theirs = nearly.index_factory(D, desc), faiss.index_factory(D, desc)
        assert isinstance(ours, nearly.IndexFlatCodes) == isinstance(theirs, faiss.IndexFlatCodes), desc
    assert issubclass(nearly.IndexFlatL2, nearly.IndexFlatCodes)
    assert not issubclass(nearly.IndexPQFastScan, nearly.IndexFlatCodes)
    with pytest.raises(TypeError):
        nearly.IndexFlatCodes(D)
