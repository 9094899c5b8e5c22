"""faiss's IndexHNSWSQ for the ScalarQuantizer types nearly's int8 walk copy
does not serve (QT_4bit, QT_6bit, the uniform and direct types): the nodes
hold the codes (IndexHNSWSQCodes), differential-tested against faiss-cpu.

The ranges and the decoded vectors are faiss's; tiny indexes searched
exhaustively return faiss's ids and distances; on the real embeddings
(../shared/data) the recall is faiss's at every efSearch.
"""
import pickle

import numpy as np
import pytest

import nearly
from _hnswutil import real_data
from _testutil import METRIC_IP, METRIC_L2, distances64

faiss = pytest.importorskip("faiss")

SQ = nearly.ScalarQuantizer
CODES_TYPES = {"QT_4bit": 4, "QT_6bit": 6, "QT_8bit_uniform": 8, "QT_4bit_uniform": 4, "QT_8bit_direct": 8,
               "QT_8bit_direct_signed": 8}
FACTORY = {"SQ4": "QT_4bit", "SQ6": "QT_6bit", "SQ8_direct": "QT_8bit_direct",
           "SQ8_direct_signed": "QT_8bit_direct_signed"}
METRICS = [METRIC_L2, METRIC_IP]
METRIC_IDS = ["L2", "IP"]


def data_for(qtype, rng, n, d):
    """Float data for the trained types; integers in the direct types' range."""
    if qtype == "QT_8bit_direct":
        return rng.integers(0, 256, (n, d)).astype(np.float32)
    if qtype == "QT_8bit_direct_signed":
        return rng.integers(-128, 128, (n, d)).astype(np.float32)
    return rng.standard_normal((n, d)).astype(np.float32)


def build(lib, qtype, x, M=16, metric=METRIC_L2, efc=40):
    index = lib.IndexHNSWSQ(x.shape[1], getattr(lib.ScalarQuantizer, qtype), M, metric)
    index.hnsw.efConstruction = efc
    index.train(x)
    index.add(x)
    return index


@pytest.mark.parametrize("qtype", list(CODES_TYPES))
def test_class_attributes_and_ranges(qtype):
    rng = np.random.default_rng(1)
    x = data_for(qtype, rng, 500, 24)
    f = faiss.IndexHNSWSQ(24, getattr(faiss.ScalarQuantizer, qtype), 16)
    n = nearly.IndexHNSWSQ(24, getattr(SQ, qtype), 16)
    assert isinstance(n, nearly.IndexHNSWSQ) and type(n).__name__ == "IndexHNSWSQCodes"
    assert n.is_trained == f.is_trained  # the direct types need no training
    assert n.sq.qtype == getattr(SQ, qtype)
    assert n.code_size == faiss.downcast_index(f.storage).code_size
    f.train(x)
    n.train(x)
    assert n.is_trained and f.is_trained
    np.testing.assert_array_equal(n.sq.trained, faiss.vector_to_array(faiss.downcast_index(f.storage).sq.trained))


def test_int8_walk_types_keep_their_class():
    for qtype in (SQ.QT_8bit, SQ.QT_fp16, SQ.QT_bf16):
        index = nearly.IndexHNSWSQ(8, qtype, 16)
        assert type(index).__name__ == "IndexHNSWSQ" and isinstance(index, nearly.IndexHNSWSQ)
    assert issubclass(nearly.IndexHNSWSQCodes, nearly.IndexHNSWSQ)
    assert not isinstance(nearly.IndexHNSWFlat(8, 16), nearly.IndexHNSWSQ)


@pytest.mark.parametrize("token", list(FACTORY))
def test_factory(token):
    n = nearly.index_factory(32, f"HNSW16,{token}", METRIC_IP)
    f = faiss.index_factory(32, f"HNSW16,{token}", METRIC_IP)
    assert isinstance(n, nearly.IndexHNSWSQ) and n.sq.qtype == getattr(SQ, FACTORY[token])
    assert n.hnsw.M == 16 and n.metric_type == f.metric_type == METRIC_IP
    assert n.code_size == faiss.downcast_index(f.storage).code_size
    assert n.is_trained == f.is_trained
    assert isinstance(nearly.index_factory(32, f"HNSW32,{token},RFlat"), nearly.IndexRefineFlat)


@pytest.mark.parametrize("qtype", list(CODES_TYPES))
def test_reconstruct_decodes_as_faiss(qtype):
    rng = np.random.default_rng(2)
    x = data_for(qtype, rng, 300, 20)
    f, n = build(faiss, qtype, x), build(nearly, qtype, x)
    # faiss's SIMD decoder and nearly's may differ by an ulp
    np.testing.assert_allclose(n.reconstruct_n(0, 300), f.reconstruct_n(0, 300), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(n.reconstruct(7), f.reconstruct(7), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("qtype", list(CODES_TYPES))
@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_exhaustive_search_equals_faiss(qtype, metric, restore_threads):
    """efSearch above ntotal on a connected tiny graph visits every node: the
    same ids as faiss, the distances of the decoded vectors."""
    nearly.omp_set_num_threads(1)
    rng = np.random.default_rng(3)
    x, q = data_for(qtype, rng, 200, 16), data_for(qtype, rng, 12, 16)
    f, n = build(faiss, qtype, x, metric=metric, efc=200), build(nearly, qtype, x, metric=metric, efc=200)
    f.hnsw.efSearch = n.hnsw.efSearch = 400
    Df, If = f.search(q, 10)
    Dn, In = n.search(q, 10)
    dec = n.reconstruct_n(0, 200)
    ref = distances64(q, dec, metric)
    order = np.argsort(ref if metric == METRIC_L2 else -ref, axis=1, kind="stable")[:, :10]
    expect = np.take_along_axis(ref, order, axis=1)
    scale = np.abs(ref).max()
    np.testing.assert_allclose(Dn, expect, atol=1e-5 * scale, rtol=0)
    np.testing.assert_allclose(Df, expect, atol=1e-5 * scale, rtol=0)
    # ids equal but where decoded distances tie
    np.testing.assert_allclose(np.take_along_axis(ref, In, axis=1), np.take_along_axis(ref, If, axis=1),
                               atol=1e-5 * scale, rtol=0)


@pytest.fixture(scope="module")
def real():
    xb, xq = real_data()
    xb, xq = np.ascontiguousarray(xb[:10_000]), np.ascontiguousarray(xq[:200])
    gt = np.argsort(-distances64(xq, xb, METRIC_IP), axis=1)[:, :10]
    return xb, xq, gt


def recall(I, gt):
    return np.mean([len(set(a) & set(b)) / gt.shape[1] for a, b in zip(I, gt)])


@pytest.mark.parametrize("token", ["SQ4", "SQ6"])
@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_recall_of_faiss_on_real_data(real, token, metric):
    xb, xq, gt = real
    if metric == METRIC_L2:
        gt = np.argsort(distances64(xq, xb, METRIC_L2), axis=1)[:, :10]
    out = {}
    for lib in (faiss, nearly):
        index = lib.index_factory(xb.shape[1], f"HNSW32,{token}", metric)
        index.train(xb)
        index.add(xb)
        for ef in (16, 64, 256):
            index.hnsw.efSearch = ef
            out[lib.__name__, ef] = recall(index.search(xq, 10)[1], gt)
    for ef in (16, 64, 256):
        assert out["nearly", ef] >= out["faiss", ef] - 0.02, (ef, out)
    assert out["nearly", 256] >= {"SQ4": 0.85, "SQ6": 0.95}[token]


def test_memory_is_the_codes_and_links(real):
    xb, _, _ = real
    sq4 = nearly.index_factory(xb.shape[1], "HNSW16,SQ4")
    sq4.train(xb[:2000])
    sq4.add(xb[:2000])
    flat = nearly.IndexHNSWFlat(xb.shape[1], 16)
    flat.add(xb[:2000])
    d = xb.shape[1]
    # a float vector and its int8 walk copy became a d / 2-byte code
    assert flat.memory_bytes() - sq4.memory_bytes() >= 2000 * (4 * d + d - d // 2) * 0.99


@pytest.mark.parametrize("qtype", ["QT_4bit", "QT_6bit"])
def test_remove_filter_and_add_with_ids(qtype):
    rng = np.random.default_rng(4)
    x, q = data_for(qtype, rng, 3000, 32), data_for(qtype, rng, 20, 32)
    index = nearly.IndexHNSWSQ(32, getattr(SQ, qtype), 16)
    index.train(x)
    ids = np.arange(3000, dtype=np.int64) * 3 + 1
    index.add_with_ids(x, ids)
    index.hnsw.efSearch = 128
    assert index.remove_ids(nearly.IDSelectorRange(0, 3000)) == 1000
    assert index.ntotal == 2000
    _, I = index.search(q, 10)
    assert (I >= 3000).all()
    sel = nearly.IDSelectorBatch(ids[2000:2100])
    D, I = index.search(q, 5, params=nearly.SearchParametersHNSW(efSearch=64, sel=sel))
    assert np.isin(I, ids[2000:2100]).all()
    dec = np.stack([index.reconstruct(int(i)) for i in ids[2000:2100]])
    ref = distances64(q, dec, METRIC_L2)
    np.testing.assert_allclose(D, np.sort(ref, axis=1)[:, :5], rtol=1e-5, atol=1e-4)
    lims, Dr, Ir = index.range_search(q[:3], float(np.median(D[:, 0])))
    assert lims[-1] == len(Ir) and len(Ir) > 0
    # the freed slots take new vectors
    index.add_with_ids(x[:500], np.arange(500, dtype=np.int64) * 3 + 9001)
    assert index.ntotal == 2500
    index.reset()
    assert index.ntotal == 0 and index.is_trained


@pytest.mark.parametrize("qtype", list(CODES_TYPES))
def test_persistence_round_trip(qtype, tmp_path):
    rng = np.random.default_rng(5)
    x, q = data_for(qtype, rng, 500, 12), data_for(qtype, rng, 10, 12)
    index = build(nearly, qtype, x, metric=METRIC_IP)
    index.hnsw.efSearch = 33
    path = str(tmp_path / "hnsw_sq.index")
    nearly.write_index(index, path)
    for again in (nearly.read_index(path), pickle.loads(pickle.dumps(index)),
                  nearly.deserialize_index(nearly.serialize_index(index))):
        assert type(again) is type(index) and again.hnsw.efSearch == 33 and again.sq.qtype == index.sq.qtype
        for a, b in zip(index.search(q, 5), again.search(q, 5)):
            np.testing.assert_array_equal(a, b)
    blob = nearly.serialize_index(index)
    for cut in (len(blob) // 3, len(blob) - 9):
        with pytest.raises(Exception) as e:
            nearly.deserialize_index(blob[:cut])
        assert not isinstance(e.value, (SystemError, MemoryError))


def test_bad_input():
    index = nearly.IndexHNSWSQ(8, SQ.QT_4bit, 16)
    x = np.random.default_rng(6).standard_normal((100, 8)).astype(np.float32)
    assert not index.is_trained
    with pytest.raises(RuntimeError, match="not trained"):
        index.add(x)
    with pytest.raises(RuntimeError, match="is_trained"):
        index.search(x[:2], 1)
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError):
        index.train(bad)
    index.train(x)
    with pytest.raises(ValueError):
        index.add(bad)
    with pytest.raises(ValueError):
        index.add(x[:, :7])
    index.add(x)
    with pytest.raises(ValueError):
        index.train(x)  # new ranges would orphan the stored codes
    with pytest.raises(ValueError):
        index.search(x[:2], 0)
    with pytest.raises(ValueError):
        index.search(x[:2, :7], 1)
    with pytest.raises(RuntimeError, match="not implemented"):
        nearly.IndexHNSWSQ(8, 42, 16)
    with pytest.raises(RuntimeError, match="not implemented"):
        nearly.IndexHNSWSQ(8, SQ.QT_4bit, 16, nearly.METRIC_L1)


def test_parameter_space_sets_ef_search():
    index = nearly.index_factory(16, "HNSW16,SQ4")
    ps = nearly.ParameterSpace()
    ps.set_index_parameter(index, "efSearch", 77)
    assert index.hnsw.efSearch == 77
    ps.initialize(index)
    assert [pr.name for pr in ps.parameter_ranges] == ["efSearch"]
