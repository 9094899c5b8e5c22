"""Differential tests of IndexBinaryHNSW and IndexBinaryIVF against faiss-cpu:
recall of the graph on real sign codes (faiss's at the same parameters), the
inverted file's exact ids and distances at every nprobe, padding, dtypes,
factory strings, persistence and exception types."""
import pickle

import numpy as np
import pytest

import nearly
from _hnswutil import real_data

faiss = pytest.importorskip("faiss")

LIBS = [faiss, nearly]
PAD = 2147483647


def sign_codes(x):
    return np.packbits(x > 0, axis=1)


@pytest.fixture(scope="module")
def real_codes():
    base, queries = real_data()
    return sign_codes(base[:20000]), sign_codes(queries[:200])


@pytest.fixture(scope="module")
def exact(real_codes):
    xb, xq = real_codes
    index = faiss.IndexBinaryFlat(384)
    index.add(xb)
    return index.search(xq, 10)


def hamming(a, b):
    return np.unpackbits(np.bitwise_xor(a, b), axis=-1).sum(-1)


def tie_recall(D, Dtrue):
    """Share of the k results within the true k-th distance (Hamming has many
    ties, so a results' distances are what can be compared, not ids)."""
    return float((D <= Dtrue[:, -1:]).mean())


# ---- IndexBinaryHNSW ---------------------------------------------------------------


@pytest.fixture(scope="module")
def hnsw_pair(real_codes):
    xb, _ = real_codes
    out = []
    for lib in LIBS:
        index = lib.IndexBinaryHNSW(384, 32)
        index.add(xb)
        out.append(index)
    return out


@pytest.mark.parametrize("ef", [16, 32, 64, 128])
def test_hnsw_recall_matches_faiss(real_codes, exact, hnsw_pair, ef):
    xb, xq = real_codes
    rec = []
    for index in hnsw_pair:
        index.hnsw.efSearch = ef
        D, I = index.search(xq, 10)
        assert D.dtype == np.int32 and I.dtype == np.int64 and D.shape == I.shape == (200, 10)
        assert (I >= 0).all()
        rec.append(tie_recall(D, exact[0]))
    fr, nr = rec
    assert nr >= fr - 0.02, (ef, fr, nr)
    # nearly's distances are the Hamming distances of the ids, ascending
    D, I = hnsw_pair[1].search(xq, 10)
    np.testing.assert_array_equal(D, hamming(xq[:, None, :], xb[I]))
    assert (np.diff(D, axis=1) >= 0).all()


def test_hnsw_attributes_and_errors(real_codes):
    xb, xq = real_codes
    for lib in LIBS:
        index = lib.IndexBinaryHNSW(384, 16)
        assert index.hnsw.efSearch == 16 and index.hnsw.efConstruction == 40
        assert index.is_trained and index.d == 384 and index.code_size == 48
        index.train(xb[:10])  # nothing to learn
        index.add(xb[:500])
        assert index.ntotal == 500
        np.testing.assert_array_equal(index.reconstruct(17), xb[17])
        with pytest.raises(RuntimeError, match="add_with_ids not implemented"):
            index.add_with_ids(xb[:3], np.arange(3))
        with pytest.raises(RuntimeError, match="remove_ids not implemented"):
            index.remove_ids(np.arange(3))
        with pytest.raises(AssertionError):
            index.add(xb[:5, :47])
        with pytest.raises(AssertionError):
            index.search(xq[:5, :40], 3)
        with pytest.raises(AssertionError):
            index.search(xq[:5], 0)
        with pytest.raises(TypeError):
            index.search(xq[:5].astype(np.float32), 3)
        with pytest.raises(RuntimeError):
            lib.IndexBinaryHNSW(100, 16)
        index.reset()
        assert index.ntotal == 0


def test_hnsw_padding(real_codes):
    xb, xq = real_codes
    for lib in LIBS:
        index = lib.IndexBinaryHNSW(384, 8)
        index.add(xb[:5])
        D, I = index.search(xq[:3], 8)
        assert D.dtype == np.int32 and I.dtype == np.int64
        np.testing.assert_array_equal(I[:, 5:], -1)
        assert sorted(I[0, :5]) == list(range(5))
        if lib is nearly:
            # faiss pads this index with INT_MIN (a float +inf cast to int);
            # nearly pads every binary index with 2147483647.
            np.testing.assert_array_equal(D[:, 5:], PAD)
        empty = lib.IndexBinaryHNSW(384, 8)
        D, I = empty.search(xq[:2], 3)
        np.testing.assert_array_equal(I, -1)


def test_hnsw_factory_and_idmap(real_codes):
    xb, xq = real_codes
    for lib in LIBS:
        index = lib.index_binary_factory(384, "BHNSW32")
        assert type(index).__name__ == "IndexBinaryHNSW"
        assert index.hnsw.nb_neighbors(0) == 64
        wrapped = lib.index_binary_factory(384, "IDMap,BHNSW32")
        assert type(wrapped).__name__ == "IndexBinaryIDMap"
        wrapped.add_with_ids(xb[:1000], np.arange(1000) * 7 + 3)
        D, I = wrapped.search(xb[:20], 1)
        np.testing.assert_array_equal(I[:, 0], np.arange(20) * 7 + 3)
        np.testing.assert_array_equal(D[:, 0], 0)


def test_hnsw_persistence(real_codes, tmp_path):
    xb, xq = real_codes
    index = nearly.IndexBinaryHNSW(384, 16)
    index.hnsw.efConstruction = 60
    index.add(xb[:3000])
    index.hnsw.efSearch = 48
    ref = index.search(xq, 10)
    path = tmp_path / "b.index"
    nearly.write_index_binary(index, str(path))
    copies = [nearly.read_index_binary(str(path)),
              nearly.deserialize_index_binary(nearly.serialize_index_binary(index)),
              pickle.loads(pickle.dumps(index))]
    for c in copies:
        assert type(c).__name__ == "IndexBinaryHNSW"
        assert c.ntotal == 3000 and c.hnsw.efSearch == 48 and c.hnsw.efConstruction == 60
        D, I = c.search(xq, 10)
        np.testing.assert_array_equal(D, ref[0])
        np.testing.assert_array_equal(I, ref[1])
    # a graph read back keeps growing: new codes get the next ids and are found
    copies[0].add(xb[3000:3500])
    D, I = copies[0].search(xb[3000:3500], 1)
    assert (D[:, 0] == 0).all() and (I[:, 0] >= 3000).mean() > 0.95
    wrapped = nearly.index_binary_factory(384, "IDMap,BHNSW32")
    wrapped.add_with_ids(xb[:500], np.arange(500) + 10**9)
    back = pickle.loads(pickle.dumps(wrapped))
    np.testing.assert_array_equal(back.search(xq, 5)[1], wrapped.search(xq, 5)[1])
    # a truncated file is a clear error, not a crash
    raw = nearly.serialize_index_binary(index)
    with pytest.raises(RuntimeError):
        nearly.deserialize_index_binary(raw[: len(raw) // 2])


# ---- IndexBinaryIVF ----------------------------------------------------------------


@pytest.fixture(scope="module")
def ivf_pair(real_codes):
    xb, _ = real_codes
    out = []
    for lib in LIBS:
        index = lib.IndexBinaryIVF(lib.IndexBinaryFlat(384), 384, 64)
        assert not index.is_trained
        index.train(xb)
        assert index.is_trained and index.quantizer.ntotal == 64
        index.add(xb)
        out.append(index)
    return out


def test_ivf_same_centroids_as_faiss(ivf_pair):
    f, n = ivf_pair
    np.testing.assert_array_equal(n.quantizer.reconstruct_n(0, 64), f.quantizer.reconstruct_n(0, 64))
    for l in range(64):
        assert n.list_size(l) == f.invlists.list_size(l)


@pytest.mark.parametrize("nprobe", [1, 2, 4, 8, 16, 64])
@pytest.mark.parametrize("k", [1, 10, 100])
def test_ivf_same_results_as_faiss(real_codes, exact, ivf_pair, nprobe, k):
    _, xq = real_codes
    out = []
    for index in ivf_pair:
        index.nprobe = nprobe
        out.append(index.search(xq, k))
    (Df, If), (Dn, In) = out
    assert Dn.dtype == Df.dtype == np.int32 and In.dtype == If.dtype == np.int64
    np.testing.assert_array_equal(Dn, Df)
    np.testing.assert_array_equal(In, If)
    if k == 10:
        assert tie_recall(Dn, exact[0]) == tie_recall(Df, exact[0])


def test_ivf_search_params_nprobe(real_codes, ivf_pair):
    _, xq = real_codes
    f, n = ivf_pair
    n.nprobe = 1
    f.nprobe = 8
    Dp, Ip = n.search(xq, 10, params=nearly.SearchParametersIVF(nprobe=8))
    Df, If = f.search(xq, 10)
    np.testing.assert_array_equal(Ip, If)
    np.testing.assert_array_equal(Dp, Df)


def test_ivf_padding_remove_reconstruct(real_codes):
    xb, xq = real_codes
    out = []
    for lib in LIBS:
        index = lib.IndexBinaryIVF(lib.IndexBinaryFlat(384), 384, 16)
        index.train(xb[:5000])
        index.add_with_ids(xb[:2000], np.arange(2000) * 3)
        assert index.remove_ids(lib.IDSelectorRange(0, 300)) == 100
        assert index.ntotal == 1900
        index.nprobe = 1
        out.append(index.search(xq, 500))  # lists hold fewer than 500: padding
        plain = lib.IndexBinaryIVF(lib.IndexBinaryFlat(384), 384, 16)
        plain.train(xb[:5000])
        plain.add(xb[:300])
        with pytest.raises(RuntimeError, match="direct map"):
            plain.reconstruct(5)
        plain.make_direct_map()
        np.testing.assert_array_equal(plain.reconstruct(5), xb[5])
    (Df, If), (Dn, In) = out
    assert (In == -1).any()
    np.testing.assert_array_equal(In, If)
    np.testing.assert_array_equal(Dn, Df)
    np.testing.assert_array_equal(Dn[In == -1], PAD)


def test_ivf_errors_match_faiss(real_codes):
    xb, xq = real_codes
    for lib in LIBS:
        index = lib.IndexBinaryIVF(lib.IndexBinaryFlat(384), 384, 16)
        with pytest.raises(RuntimeError, match="is_trained"):
            index.add(xb[:10])
        with pytest.raises(AssertionError):
            index.train(xb[:100, :47])
        index.train(xb[:2000])
        with pytest.raises(AssertionError):
            index.add(xb[:10, :40])
        with pytest.raises(AssertionError):
            index.search(xq[:3, :47], 3)
        with pytest.raises(AssertionError):
            index.search(xq[:3], 0)
        with pytest.raises(TypeError):
            index.add(xb[:10].astype(np.float32))
        with pytest.raises(RuntimeError):
            lib.IndexBinaryIVF(lib.IndexBinaryFlat(256), 384, 16)
    # faiss searches an untrained IVF (its lists are empty); nearly says why
    # nothing can be found instead
    with pytest.raises(RuntimeError, match="not trained"):
        nearly.IndexBinaryIVF(nearly.IndexBinaryFlat(384), 384, 16).search(xq[:2], 3)


def test_ivf_clustering_parameters(real_codes):
    xb, xq = real_codes
    out = []
    for lib in LIBS:
        index = lib.IndexBinaryIVF(lib.IndexBinaryFlat(384), 384, 32)
        assert index.cp.niter == 10 and index.cp.seed == 1234
        index.cp.niter = 4
        index.cp.seed = 7
        index.train(xb[:8000])
        out.append(index.quantizer.reconstruct_n(0, 32))
    np.testing.assert_array_equal(out[0], out[1])


def test_ivf_factory(real_codes):
    xb, xq = real_codes
    out = []
    for lib in LIBS:
        index = lib.index_binary_factory(384, "BIVF32")
        assert type(index).__name__ == "IndexBinaryIVF" and index.nlist == 32
        assert type(lib.downcast_IndexBinary(index.quantizer) if lib is faiss else index.quantizer).__name__ == \
            "IndexBinaryFlat"
        index.train(xb[:5000])
        index.nprobe = 4
        wrapped = lib.index_binary_factory(384, "IDMap,BIVF32")
        assert type(wrapped).__name__ == "IndexBinaryIDMap"
        index.add(xb[:5000])
        out.append(index.search(xq, 10))
    np.testing.assert_array_equal(out[0][1], out[1][1])
    np.testing.assert_array_equal(out[0][0], out[1][0])


def test_ivf_persistence(real_codes, tmp_path, ivf_pair):
    _, xq = real_codes
    index = ivf_pair[1]
    index.nprobe = 8
    ref = index.search(xq, 10)
    path = tmp_path / "ivf.index"
    nearly.write_index_binary(index, str(path))
    copies = [nearly.read_index_binary(str(path)),
              nearly.deserialize_index_binary(nearly.serialize_index_binary(index)),
              pickle.loads(pickle.dumps(index))]
    for c in copies:
        assert type(c).__name__ == "IndexBinaryIVF"
        assert c.ntotal == index.ntotal and c.nprobe == 8 and c.nlist == 64 and c.is_trained
        D, I = c.search(xq, 10)
        np.testing.assert_array_equal(D, ref[0])
        np.testing.assert_array_equal(I, ref[1])
    ro = nearly.read_index_binary(str(path), nearly.IO_FLAG_READ_ONLY)
    with pytest.raises(RuntimeError):
        ro.add(xq[:1])
    raw = nearly.serialize_index_binary(index)
    with pytest.raises(RuntimeError):
        nearly.deserialize_index_binary(raw[:-40])


def test_bad_parameters(real_codes):
    xb, xq = real_codes
    with pytest.raises(nearly.InvalidArgumentError, match="M must be"):
        nearly.IndexBinaryHNSW(384, 1)
    index = nearly.IndexBinaryHNSW(384, 8)
    index.add(xb[:100])
    with pytest.raises(nearly.InvalidArgumentError, match="efSearch"):
        index.hnsw.efSearch = 0
    with pytest.raises(nearly.InvalidArgumentError, match="efSearch"):
        index.search(xq[:2], 3, params=nearly.SearchParametersHNSW(efSearch=0))
    # filtered search: a selective filter is answered exactly
    D, I = index.search(xq[:4], 5, params=nearly.SearchParameters(sel=nearly.IDSelectorRange(10, 20)))
    assert ((I >= 10) & (I < 20)).all()
    np.testing.assert_array_equal(D, hamming(xq[:4, None, :], xb[I]))
    ivf = nearly.IndexBinaryIVF(nearly.IndexBinaryFlat(384), 384, 4)
    with pytest.raises(nearly.InvalidArgumentError):
        ivf.nprobe = 0
    with pytest.raises(nearly.InvalidArgumentError):
        nearly.IndexBinaryIVF(nearly.IndexBinaryFlat(384), 384, 0)
    with pytest.raises((TypeError, nearly.InvalidArgumentError)):
        nearly.IndexBinaryIVF(None, 384, 4)
    ivf.train(xb[:1000])
    ivf.add(xb[:1000])
    with pytest.raises(nearly.InvalidArgumentError, match="nprobe"):
        ivf.search(xq[:2], 3, params=nearly.SearchParametersIVF(nprobe=0))
    D, I = ivf.search(xq[:4], 5, params=nearly.SearchParametersIVF(nprobe=4, sel=nearly.IDSelectorRange(0, 50)))
    assert ((I >= 0) & (I < 50)).all()
