"""IndexBinaryHash / IndexBinaryMultiHash against faiss-cpu and a numpy
reference: the same buckets, the same distances; ids differ from faiss's
only among equal distances (nearly orders ties by id)."""
import numpy as np
import pytest

import nearly

faiss = pytest.importorskip("faiss")

D_BITS = 128


def popcount_rows(a):
    return np.unpackbits(a, axis=-1).sum(-1)


def hash_of(codes, first_bit, b):
    """faiss's bit strings: bit i of a code is bit i % 8 of byte i // 8."""
    bits = np.unpackbits(codes, axis=1, bitorder="little")[:, first_bit:first_bit + b].astype(np.uint64)
    return (bits << np.arange(b, dtype=np.uint64)).sum(1)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    xb = rng.integers(0, 256, (4000, D_BITS // 8), dtype=np.uint8)
    xq = rng.integers(0, 256, (60, D_BITS // 8), dtype=np.uint8)
    xq[:40] = xb[:40] ^ (rng.random((40, D_BITS // 8)) < 0.03).astype(np.uint8)  # near duplicates
    return xb, xq


def reference(xb, xq, nhash, b, nflip, k):
    """Each query's reachable codes (a bucket within nflip flips in any table),
    their k smallest (distance, id) and those under radius 45, by id."""
    out = []
    for q in xq:
        reach = np.zeros(len(xb), bool)
        for h in range(nhash):
            hb, hq = hash_of(xb, h * b, b), hash_of(q[None], h * b, b)[0]
            flips = np.array([bin(int(v)).count("1") for v in (hb ^ hq)])
            reach |= flips <= nflip
        ids = np.nonzero(reach)[0]
        dis = popcount_rows(xb[ids] ^ q)
        order = np.lexsort((ids, dis))[:k]
        out.append((dis[order], ids[order], ids[dis < 45], dis[dis < 45]))
    return out


def build(lib, nhash, b, xb, nflip):
    index = lib.IndexBinaryHash(D_BITS, b) if nhash == 0 else lib.IndexBinaryMultiHash(D_BITS, nhash, b)
    index.add(xb)
    index.nflip = nflip
    return index


@pytest.mark.parametrize("nhash,b", [(0, 10), (0, 7), (1, 10), (3, 8), (5, 7)])
@pytest.mark.parametrize("nflip", [0, 1, 2])
def test_equals_reference_and_faiss(data, nhash, b, nflip):
    xb, xq = data
    k = 10
    ours = build(nearly, nhash, b, xb, nflip)
    theirs = build(faiss, nhash, b, xb, nflip)
    D, I = ours.search(xq, k)
    Df, If = theirs.search(xq, k)
    lims, Dr, Ir = ours.range_search(xq, 45)
    limsf, Drf, Irf = theirs.range_search(xq, 45)
    np.testing.assert_array_equal(D, Df)
    np.testing.assert_array_equal(lims, limsf)
    assert ours.hashtable_size() == theirs.hashtable_size()
    for q, (rd, ri, rr, rrd) in enumerate(reference(xb, xq, max(nhash, 1), b, nflip, k)):
        found = I[q] >= 0
        np.testing.assert_array_equal(D[q][found], rd)
        np.testing.assert_array_equal(I[q][found], ri)  # ties by id
        assert (~found).sum() == k - len(ri) and (D[q][~found] == 2147483647).all()
        got = Ir[lims[q]:lims[q + 1]]
        np.testing.assert_array_equal(got, rr)  # in id order
        np.testing.assert_array_equal(Dr[lims[q]:lims[q + 1]], rrd)
        assert set(got) == set(Irf[limsf[q]:limsf[q + 1]])
        # faiss's ids differ only among equal distances
        for dist in set(Df[q][Df[q] < D[q, -1]]):
            assert set(I[q][D[q] == dist]) == set(If[q][Df[q] == dist])


def test_all_flips_is_exact_search(data):
    xb, xq = data
    flat = nearly.IndexBinaryFlat(D_BITS)
    flat.add(xb)
    for index in (nearly.IndexBinaryHash(D_BITS, 9), nearly.IndexBinaryMultiHash(D_BITS, 2, 9)):
        index.add(xb)
        index.nflip = 9  # every bucket: the table is scanned rather than 512 probes enumerated
        for a, b in zip(index.search(xq, 20), flat.search(xq, 20)):
            np.testing.assert_array_equal(a, b)
    # a wide hash with every flip allowed does not enumerate 2^40 values
    wide = nearly.IndexBinaryHash(D_BITS, 40)
    wide.add(xb[:500])
    wide.nflip = 40
    small = nearly.IndexBinaryFlat(D_BITS)
    small.add(xb[:500])
    for a, b in zip(wide.search(xq, 5), small.search(xq, 5)):
        np.testing.assert_array_equal(a, b)


def test_stats_ids_persistence_and_factory(data):
    xb, xq = data
    index = nearly.IndexBinaryHash(D_BITS, 10)
    ids = np.arange(len(xb), dtype=np.int64) * 7 + 3
    index.add_with_ids(xb, ids)
    index.nflip = 1
    stats = nearly.cvar.indexBinaryHash_stats
    stats.reset()
    D, I = index.search(xq, 5)
    assert stats.nq == len(xq) and stats.ndis > 0 and stats.nlist > 0
    assert set(I[I >= 0].ravel()) <= set(ids)
    for original in (index, build(nearly, 3, 8, xb, 2)):
        back = nearly.deserialize_index_binary(nearly.serialize_index_binary(original))
        assert type(back) is type(original) and back.nflip == original.nflip and back.ntotal == original.ntotal
        for a, b in zip(back.search(xq, 5), original.search(xq, 5)):
            np.testing.assert_array_equal(a, b)
        assert back.hashtable_size() == original.hashtable_size()
        data_ = nearly.serialize_index_binary(original)
        with pytest.raises(RuntimeError):
            nearly.deserialize_index_binary(data_[:len(data_) // 2])
    assert isinstance(nearly.index_binary_factory(D_BITS, "BHash12"), nearly.IndexBinaryHash)
    multi = nearly.index_binary_factory(D_BITS, "BHash4x12")
    assert isinstance(multi, nearly.IndexBinaryMultiHash) and (multi.nhash, multi.b) == (4, 12)
    multi.add(xb[:10])
    np.testing.assert_array_equal(multi.storage.reconstruct_n(0, 10), xb[:10])
    np.testing.assert_array_equal(multi.reconstruct(3), xb[3])
    multi.reset()
    assert multi.ntotal == 0 and multi.hashtable_size() == 0


def test_bad_input(data):
    xb, xq = data
    for args in ((D_BITS, 0), (D_BITS, 64), (16, 17)):
        with pytest.raises(ValueError):
            nearly.IndexBinaryHash(*args)
    with pytest.raises(ValueError, match="nhash"):
        nearly.IndexBinaryMultiHash(D_BITS, 20, 8)
    index = nearly.IndexBinaryHash(D_BITS, 8)
    with pytest.raises(ValueError, match="nflip"):
        index.nflip = 9
    with pytest.raises(ValueError, match="nflip"):
        index.nflip = -1
    index.add(xb[:100])
    with pytest.raises(ValueError):
        index.search(xq, 0)
    with pytest.raises(ValueError):
        index.search(xq[:, :8], 5)
    with pytest.raises(RuntimeError):
        nearly.IndexBinaryMultiHash(D_BITS, 2, 8).add_with_ids(xb[:3], np.arange(3))
    empty = nearly.IndexBinaryMultiHash(D_BITS, 2, 8)
    D, I = empty.search(xq, 3)
    assert (I == -1).all()


def test_bitvec_shuffle_equals_faiss():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (50, 32), dtype=np.uint8)  # 256 bits
    order = rng.permutation(256).astype(np.int32)[:96]
    out = {}
    for lib in (faiss, nearly):
        y = np.zeros((50, 12), dtype=np.uint8)
        lib.bitvec_shuffle(50, 256, 96, lib.swig_ptr(order), lib.swig_ptr(x), lib.swig_ptr(y))
        out[lib.__name__] = y
    np.testing.assert_array_equal(out["nearly"], out["faiss"])
    with pytest.raises(ValueError):
        nearly.bitvec_shuffle(50, 256, 96, np.full(96, 300), x, np.zeros((50, 12), np.uint8))
