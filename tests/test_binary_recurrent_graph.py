"""The graph and inverted-file forms of IndexBinaryRecurrent: an HNSW graph
walked on SDC scores ("HNSW{M},RBE{m}x{bits}") and inverted lists scanned by
SDC ("IVF{n},RBE{m}x{bits}"). Both report the flat index's estimates, so they
are checked against IndexBinaryRecurrent itself."""
import pickle

import numpy as np
import pytest

import nearly
from _hnswutil import real_data

METRICS = [nearly.METRIC_INNER_PRODUCT, nearly.METRIC_L2]
D = 384


@pytest.fixture(scope="module")
def data():
    base, queries = real_data()
    return np.ascontiguousarray(base[:8000]), np.ascontiguousarray(queries[:100])


def trained(description, x, metric):
    index = nearly.index_factory(D, description, metric)
    index.train(x[:3000])
    return index


def overlap(I, J):
    return np.mean([len(set(a) & set(b)) / len(a) for a, b in zip(I, J)])


@pytest.fixture(scope="module", params=METRICS, ids=["IP", "L2"])
def flat(request, data):
    x, _ = data
    index = trained("RBE128x2", x, request.param)
    index.add(x)
    return request.param, index


def test_same_codes_as_flat(data, flat):
    """The trainer is deterministic: every form holds the flat index's codes."""
    x, _ = data
    metric, ref = flat
    for desc in ("HNSW16,RBE128x2", "IVF32,RBE128x2"):
        index = trained(desc, x, metric)
        np.testing.assert_array_equal(index.binarizer.encode(x[:500]), ref.binarizer.encode(x[:500]))


def test_hnsw_scores_equal_flat(data, flat):
    x, q = data
    metric, ref = flat
    index = trained("HNSW16,RBE128x2", x, metric)
    assert type(index).__name__ == "IndexBinaryRecurrentHNSW" and index.hnsw.M == 16
    index.add(x[:2000])
    small = trained("RBE128x2", x, metric)
    small.add(x[:2000])
    index.hnsw.efSearch = 2000  # the walk reaches every node: the flat results
    Dh, Ih = index.search(q, 10)
    Df, If = small.search(q, 10)
    assert Dh.dtype == np.float32 and Ih.dtype == np.int64
    np.testing.assert_allclose(Dh, Df, rtol=1e-5, atol=1e-5)
    assert overlap(Ih, If) > 0.99


def test_hnsw_recall_against_flat_sdc(data, flat):
    x, q = data
    metric, ref = flat
    index = trained("HNSW32,RBE128x2", x, metric)
    index.add(x)
    _, If = ref.search(q, 10)
    rec = {}
    for ef in (16, 64, 256):
        index.hnsw.efSearch = ef
        _, Ih = index.search(q, 10)
        rec[ef] = overlap(Ih, If)
    assert rec[16] <= rec[64] + 0.01 <= rec[256] + 0.02
    assert rec[256] > 0.97 and rec[64] > 0.9, rec
    # search parameters override the index's efSearch
    _, Ip = index.search(q, 10, params=nearly.SearchParametersHNSW(efSearch=256))
    assert overlap(Ip, If) == rec[256]


def test_ivf_all_lists_equal_flat(data, flat):
    x, q = data
    metric, ref = flat
    index = trained("IVF32,RBE128x2", x, metric)
    assert type(index).__name__ == "IndexIVFBinaryRecurrent" and index.nlist == 32
    index.add(x)
    index.nprobe = 32
    Di, Ii = index.search(q, 10)
    Df, If = ref.search(q, 10)
    np.testing.assert_allclose(Di, Df, rtol=1e-5, atol=1e-5)
    assert overlap(Ii, If) > 0.99
    rec = []
    for nprobe in (1, 4, 16):
        index.nprobe = nprobe
        rec.append(overlap(index.search(q, 10)[1], If))
    assert rec[0] < rec[1] < rec[2] and rec[2] > 0.9, rec


def test_ids_remove_reconstruct(data):
    x, q = data
    for desc in ("HNSW16,RBE128x2", "IVF16,RBE128x2"):
        index = trained(desc, x, nearly.METRIC_INNER_PRODUCT)
        index.add_with_ids(x[:1000], np.arange(1000) * 10 + 7)
        if desc.startswith("IVF"):
            index.make_direct_map()
            index.nprobe = 16
        assert index.remove_ids(np.arange(100) * 10 + 7) == 100
        assert index.ntotal == 900
        D, I = index.search(x[100:150], 1)
        np.testing.assert_array_equal(I[:, 0], np.arange(100, 150) * 10 + 7)
        _, I = index.search(x[:100], 5)
        assert not np.isin(I, np.arange(100) * 10 + 7).any()
        rec = index.reconstruct(5007)
        np.testing.assert_allclose(rec, index.binarizer.decode(index.binarizer.encode(x[500:501]))[0], atol=1e-6)


def test_persistence(data, tmp_path):
    x, q = data
    for desc in ("HNSW16,RBE128x2", "IVF16,RBE128x2", "HNSW16,RBE128x2,RFlat"):
        index = trained(desc, x, nearly.METRIC_L2)
        index.add(x[:2000])
        ref = index.search(q, 10)
        path = str(tmp_path / "i.index")
        nearly.write_index(index, path)
        for c in (nearly.read_index(path), nearly.deserialize_index(nearly.serialize_index(index)),
                  pickle.loads(pickle.dumps(index))):
            assert type(c) is type(index) and c.ntotal == 2000
            Dc, Ic = c.search(q, 10)
            np.testing.assert_array_equal(Ic, ref[1])
            np.testing.assert_array_equal(Dc, ref[0])


def test_bad_input(data):
    x, q = data
    for desc in ("HNSW16,RBE128x2", "IVF16,RBE128x2"):
        index = nearly.index_factory(D, desc)
        assert not index.is_trained
        with pytest.raises(RuntimeError, match="train"):
            index.add(x[:10])
        with pytest.raises(RuntimeError, match="train"):
            index.search(q[:2], 3)
        index.train(x[:2000])
        with pytest.raises(AssertionError):
            index.add(x[:10, :100])
        with pytest.raises(AssertionError):
            index.search(q[:2, :100], 3)
        index.add(x[:100])
        with pytest.raises((AssertionError, ValueError, nearly.InvalidArgumentError)):
            index.search(q[:2], 0)
        Dp, Ip = index.search(q[:2], 200)  # more than stored: padded
        assert (Ip[:, 100:] == -1).all()
    with pytest.raises(nearly.InvalidArgumentError):
        nearly.index_factory(D, "HNSW16,RBE100x2")  # m not a multiple of 8
    with pytest.raises(nearly.InvalidArgumentError):
        nearly.index_factory(D, "IVF16,RBE128x5")  # bits_per_dim outside 1..4
