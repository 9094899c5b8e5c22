"""Differential tests of the 1-bit binary indexes against faiss-cpu: ids,
int32 distances, padding, dtypes and exception types."""
import pickle

import numpy as np
import pytest

import nearly
from _hnswutil import real_data

faiss = pytest.importorskip("faiss")

LIBS = [faiss, nearly]


def sign_codes(x):
    return np.packbits(x > 0, axis=1)


@pytest.fixture(scope="module")
def real_codes():
    base, queries = real_data()
    return sign_codes(base[:20000]), sign_codes(queries[:100])


def check_same(a, b):
    (Da, Ia), (Db, Ib) = a, b
    assert Da.dtype == Db.dtype == np.int32 and Ia.dtype == Ib.dtype == np.int64
    np.testing.assert_array_equal(Da, Db)
    np.testing.assert_array_equal(Ia, Ib)


@pytest.mark.parametrize("k", [1, 10, 100])
def test_flat_real(real_codes, k):
    xb, xq = real_codes
    out = []
    for lib in LIBS:
        index = lib.IndexBinaryFlat(384)
        index.add(xb)
        assert index.ntotal == 20000 and index.code_size == 48 and index.d == 384
        out.append(index.search(xq, k))
    check_same(*out)


@pytest.mark.parametrize("d", [8, 24, 64, 256, 520, 1024])
@pytest.mark.parametrize("nb", [0, 1, 5, 333])
def test_flat_random_with_padding(d, nb, rng):
    xb = rng.integers(0, 256, (nb, d // 8), dtype=np.uint8)
    xq = rng.integers(0, 256, (7, d // 8), dtype=np.uint8)
    out = []
    for lib in LIBS:
        index = lib.IndexBinaryFlat(d)
        index.add(xb)
        out.append(index.search(xq, 10))
    check_same(*out)
    if nb < 10:
        assert (out[1][0][:, nb:] == 2147483647).all() and (out[1][1][:, nb:] == -1).all()


def test_knn_hamming(real_codes):
    xb, xq = real_codes
    check_same(faiss.knn_hamming(xq, xb[:5000], 20), nearly.knn_hamming(xq, xb[:5000], 20))


def test_idmap_remove_reconstruct(real_codes):
    xb, xq = real_codes
    ids = np.arange(3000, dtype=np.int64) * 11 + 5
    out = []
    for lib in LIBS:
        index = lib.index_binary_factory(384, "IDMap,BFlat")
        assert isinstance(index, lib.IndexBinaryIDMap)
        index.add_with_ids(xb[:3000], ids)
        r1 = index.search(xq, 10)
        n = index.remove_ids(np.ascontiguousarray(ids[::3]))
        r2 = index.search(xq, 10)
        out.append((r1, r2, n, lib.vector_to_array(index.id_map)))
    check_same(out[0][0], out[1][0])
    check_same(out[0][1], out[1][1])
    assert out[0][2] == out[1][2]
    np.testing.assert_array_equal(out[0][3], out[1][3])
    flats = []
    for lib in LIBS:
        index = lib.IndexBinaryFlat(384)
        index.add(xb[:100])
        index.remove_ids(lib.IDSelectorRange(10, 20))
        flats.append((index.ntotal, index.reconstruct(15), index.reconstruct_n(0, 5), index.search(xq[:5], 5)))
    assert flats[0][0] == flats[1][0] == 90
    np.testing.assert_array_equal(flats[0][1], flats[1][1])
    np.testing.assert_array_equal(flats[0][2], flats[1][2])
    check_same(flats[0][3], flats[1][3])


def test_selector(real_codes):
    xb, xq = real_codes
    out = []
    for lib in LIBS:
        index = lib.IndexBinaryFlat(384)
        index.add(xb[:5000])
        params = lib.SearchParameters(sel=lib.IDSelectorRange(100, 900))
        out.append(index.search(xq, 10, params=params))
    check_same(*out)


def test_persistence(real_codes, tmp_path):
    xb, xq = real_codes
    for desc in ("BFlat", "IDMap,BFlat"):
        index = nearly.index_binary_factory(384, desc)
        if desc == "BFlat":
            index.add(xb[:1000])
        else:
            index.add_with_ids(xb[:1000], np.arange(1000, dtype=np.int64) + 77)
        want = index.search(xq, 5)
        path = str(tmp_path / "b.index")
        nearly.write_index_binary(index, path)
        for back in (nearly.read_index_binary(path), pickle.loads(pickle.dumps(index)),
                     nearly.deserialize_index_binary(nearly.serialize_index_binary(index))):
            assert type(back) is type(index)
            check_same(back.search(xq, 5), want)
        with pytest.raises(RuntimeError, match="binary index"):
            nearly.read_index(path)
    flat = nearly.IndexFlatL2(8)
    nearly.write_index(flat, str(tmp_path / "f.index"))
    with pytest.raises(RuntimeError, match="not a binary index"):
        nearly.read_index_binary(str(tmp_path / "f.index"))


def test_errors_match_faiss(rng):
    x = rng.integers(0, 256, (10, 8), dtype=np.uint8)
    for lib in LIBS:
        index = lib.IndexBinaryFlat(64)
        index.add(x)
        with pytest.raises(TypeError):
            index.add(x.astype(np.int32))
        with pytest.raises(TypeError):
            index.search(x.astype(np.float32), 3)
        with pytest.raises(AssertionError):
            index.add(x[:, :4])
        with pytest.raises(AssertionError):
            index.search(x[:, :7], 3)
        with pytest.raises(RuntimeError, match="add_with_ids not implemented"):
            index.add_with_ids(x, np.arange(10))
        with pytest.raises(RuntimeError):
            lib.IndexBinaryFlat(63)
        with pytest.raises(RuntimeError):
            lib.index_binary_factory(64, "Flat")
        assert index.ntotal == 10


@pytest.mark.parametrize("main", ["BFlat", "BHNSW16", "BIVF8"])
def test_binary_idmap2_reconstructs_by_id_like_faiss(faiss, main):
    rng = np.random.default_rng(3)
    xb = rng.integers(0, 256, (600, 16), dtype=np.uint8)
    ids = np.arange(600, dtype=np.int64) * 7 + 3
    out = {}
    for lib in (faiss, nearly):
        index = lib.index_binary_factory(128, "IDMap2," + main)
        assert type(index).__name__ == "IndexBinaryIDMap2"
        index.train(xb)
        if main.startswith("BIVF"):  # an IVF reconstructs through its direct map (both libraries)
            inner = index.index if lib is nearly else faiss.downcast_IndexBinary(index.index)
            inner.make_direct_map()
        index.add_with_ids(xb, ids)
        out[lib.__name__] = np.stack([index.reconstruct(int(i)) for i in ids[::37]])
        if lib is nearly:
            np.testing.assert_array_equal(out["nearly"], xb[::37])
            if main == "BFlat":  # removal keeps the others reachable by id (IVF/HNSW removal is their own)
                index.remove_ids(ids[:100])
                np.testing.assert_array_equal(index.reconstruct(int(ids[200])), xb[200])
                with pytest.raises(IndexError):
                    index.reconstruct(int(ids[50]))
            back = nearly.deserialize_index_binary(nearly.serialize_index_binary(index))
            assert type(back).__name__ == "IndexBinaryIDMap2"
            np.testing.assert_array_equal(back.reconstruct(int(ids[300])), xb[300])
            index.reset()
            with pytest.raises(IndexError):
                index.reconstruct(int(ids[300]))
    np.testing.assert_array_equal(out["nearly"], out["faiss"])
    plain = nearly.index_binary_factory(128, "IDMap," + main)
    assert type(plain).__name__ == "IndexBinaryIDMap"
    with pytest.raises(RuntimeError, match="not implemented"):
        plain.reconstruct(0)
