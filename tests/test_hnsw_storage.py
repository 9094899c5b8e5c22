"""HNSW storage variants (SQ8, fp16, bf16) and IndexRefineFlat re-ranking."""
import pickle

import numpy as np
import pytest

import nearly
from _hnswutil import real_data
from _testutil import distances64

IP = nearly.METRIC_INNER_PRODUCT


@pytest.fixture(scope="module")
def data():
    """Real embeddings (10k of them); recall claims need real data."""
    xb, xq = real_data()
    xb, xq = xb[:10_000], xq[:200]
    gt = np.argsort(-distances64(xq, xb, IP), axis=1)[:, :10]
    return xb, xq, gt


def recall(I, gt):
    return np.mean([len(set(a) & set(b)) / gt.shape[1] for a, b in zip(I, gt)])


def build(desc, xb):
    index = nearly.index_factory(xb.shape[1], desc, IP)
    base = index.base_index if isinstance(index, nearly.IndexRefineFlat) else index
    base.hnsw.efConstruction = 80
    base.hnsw.efSearch = 64
    index.add(xb)
    return index, base


@pytest.mark.parametrize("desc,cls", [("HNSW16,SQ8", "IndexHNSWSQ"), ("HNSW16,SQfp16", "IndexHNSWSQ"),
                                      ("HNSW16,SQbf16", "IndexHNSWSQ"),
                                      ("HNSW16,SQ8,RFlat", "IndexRefineFlat"), ("HNSW16,RFlat", "IndexRefineFlat")])
def test_variants_recall_and_distances(data, desc, cls):
    xb, xq, gt = data
    index, base = build(desc, xb)
    assert type(index).__name__ == cls
    D, I = index.search(xq, 10)
    assert recall(I, gt) >= 0.95
    exact = np.take_along_axis(distances64(xq, xb, IP), I, axis=1)
    # SQ8 scores on the int8 copy: close, not exact; fp16 and RFlat: exact up to float rounding;
    # bf16: exact on the bf16 copy (8 bits of mantissa)
    if desc == "HNSW16,SQbf16":
        on_copy = np.einsum("qd,qkd->qk", xq.astype(np.float64), bf16(xb)[I].astype(np.float64))
        np.testing.assert_allclose(D, on_copy, atol=1e-5)
    tol = {"HNSW16,SQ8": 0.01, "HNSW16,SQbf16": 0.01}.get(desc, 1e-5)
    np.testing.assert_allclose(D, exact, atol=tol)
    assert (np.diff(D, axis=1) <= 1e-6).all()  # IP descending


def bf16(x):
    """faiss's encode_bf16 (the top 16 bits, rounded half up on the bits), decoded."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    return (((u.astype(np.uint64) + 0x8000) >> 16) << 16).astype(np.uint32).view(np.float32)


def test_memory_of_variants(data):
    xb, _, _ = data
    flat = build("HNSW16", xb)[1].memory_bytes()
    sq8 = build("HNSW16,SQ8", xb)[1].memory_bytes()
    fp16 = build("HNSW16,SQfp16", xb)[1].memory_bytes()
    bf = build("HNSW16,SQbf16", xb[:2000])[1].memory_bytes()
    d = xb.shape[1]
    assert build("HNSW16", xb[:2000])[1].memory_bytes() - bf >= 2 * d * 2000 * 0.99
    assert flat - fp16 >= 2 * d * len(xb) * 0.99  # the float copy became fp16
    assert flat - sq8 >= 4 * d * len(xb) * 0.99  # and is gone for SQ8


def test_reconstruct_of_variants(data):
    xb, _, _ = data
    assert np.abs(build("HNSW16,SQ8", xb)[0].reconstruct(3) - xb[3]).max() < 0.01
    fp16 = build("HNSW16,SQfp16", xb)[0].reconstruct(3)
    np.testing.assert_array_equal(fp16, xb[3].astype(np.float16).astype(np.float32))
    index = build("HNSW16,SQbf16", xb[:1000])[0]
    np.testing.assert_array_equal(index.reconstruct_n(0, 1000), bf16(xb[:1000]))
    # the rounding at the edges: ties, the largest floats, signs, zero
    edge = np.array([[1.0 + 2.0 ** -8, 1.0 + 3 * 2.0 ** -8, -1.5, 3.0e38, -0.0, 1e-40, 65504.0, 7.0]], np.float32)
    one = nearly.IndexHNSWSQ(8, nearly.ScalarQuantizer.QT_bf16, 8)
    one.train(edge)
    one.add(edge)
    np.testing.assert_array_equal(one.reconstruct(0), bf16(edge)[0])


@pytest.mark.parametrize("desc", ["HNSW16,SQ8", "HNSW16,SQfp16", "HNSW16,SQbf16", "HNSW16,SQ8,RFlat"])
def test_round_trip(data, desc):
    xb, xq, _ = data
    index, _ = build(desc, xb[:1000])
    again = pickle.loads(pickle.dumps(index))
    assert type(again) is type(index)
    for a, b in zip(index.search(xq, 5), again.search(xq, 5)):
        np.testing.assert_array_equal(a, b)


def test_refine_parameters(data):
    xb, xq, gt = data
    index, base = build("HNSW16,SQ8,RFlat", xb)
    base.hnsw.efSearch = 16
    low = recall(index.search(xq, 10)[1], gt)
    params = nearly.IndexRefineSearchParameters(k_factor=4, base_index_params=nearly.SearchParametersHNSW(efSearch=64))
    high = recall(index.search(xq, 10, params=params)[1], gt)
    assert high >= low and high >= 0.95
    with pytest.raises(ValueError):
        nearly.IndexRefineSearchParameters(k_factor=0.5)
    with pytest.raises(ValueError):
        index.k_factor = 0


def test_sq_qtypes():
    # QT_8bit, fp16 and bf16: nearly's int8 walk copy; faiss's other types: the codes alone
    # (tests/compat/test_hnsw_sq_compat.py); types faiss does not have raise.
    for qtype in (1, 2, 3, 5, 6, 8):
        assert type(nearly.IndexHNSWSQ(8, qtype, 16)).__name__ == "IndexHNSWSQCodes"
    for qtype in (-1, 42):
        with pytest.raises(RuntimeError, match="not implemented"):
            nearly.IndexHNSWSQ(8, qtype, 16)
    with pytest.raises(RuntimeError, match="QT_0bit does not support standalone"):  # IVF only, as faiss
        nearly.IndexHNSWSQ(8, 9, 16)


def test_idmap_over_a_wrapped_graph_keeps_search_parameters():
    """IDMap translating a selector must keep the rest of the parameters
    (here efSearch) for the index it wraps."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((20000, 32)).astype(np.float32)
    q = rng.standard_normal((100, 32)).astype(np.float32)
    index = nearly.index_factory(32, "IDMap,L2norm,HNSW16")
    ids = np.arange(len(x)) * 7
    index.add_with_ids(x, ids)
    sel = nearly.IDSelectorRange(0, 7 * 10000)  # 50%: walked on the graph
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    gt = ids[:10000][np.argsort(((qn[:, None, :] - xn[None, :10000]) ** 2).sum(-1), axis=1)[:, :10]]

    def rec(ef):
        I = index.search(q, 10, params=nearly.SearchParametersHNSW(efSearch=ef, sel=sel))[1]
        assert ((I >= 0) & (I < 7 * 10000)).all()
        return np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I, gt)])

    assert rec(256) > rec(1) + 0.05
