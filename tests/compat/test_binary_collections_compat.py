"""Binary indexes against faiss-cpu, the parts of faiss's API around them:
IndexBinaryShards / IndexBinaryReplicas, IndexBinary.assign, popcount64,
IndexBinaryIVF's reconstruct_n (no direct map), set_direct_map_type (any
ids), is_trained after filling the quantizer by hand, and faiss's search
switches use_heap / per_invlist_search (the same results either way)."""
import numpy as np
import pytest

import nearly
from _hnswutil import real_data

faiss = pytest.importorskip("faiss")

D_BITS = 384


@pytest.fixture(scope="module")
def codes():
    base, queries = real_data()
    return np.packbits(base[:6000] > 0, axis=1), np.packbits(queries[:100] > 0, axis=1)


def flat(lib, xb):
    index = lib.IndexBinaryFlat(D_BITS)
    index.add(xb)
    return index


def check_same(a, b):
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[0].dtype == b[0].dtype == np.int32 and a[1].dtype == b[1].dtype == np.int64


@pytest.mark.parametrize("fill", ["parts", "collection"])
@pytest.mark.parametrize("k", [1, 10, 50])
def test_shards_like_faiss(codes, fill, k):
    xb, xq = codes
    out = []
    for lib in (nearly, faiss):
        index = lib.IndexBinaryShards(D_BITS)
        for i in range(4):
            part = lib.IndexBinaryFlat(D_BITS)
            if fill == "parts":
                part.add(xb[i * 1500:(i + 1) * 1500])
            index.add_shard(part)
        if fill == "collection":
            index.add(xb)
        assert index.ntotal == len(xb) and index.code_size == 48 and index.d == D_BITS
        out.append(index.search(xq, k))
    # equal distances: nearly orders by id, faiss by shard; the sets agree
    np.testing.assert_array_equal(out[0][0], out[1][0])
    np.testing.assert_array_equal(out[0][0], flat(nearly, xb).search(xq, k)[0])
    check_same(out[0], flat(nearly, xb).search(xq, k))


def test_shards_with_ids_and_empty(codes):
    xb, xq = codes
    index = nearly.IndexBinaryShards(D_BITS, False, False)  # faiss's (d, threaded, successive_ids)
    for _ in range(3):
        index.add_shard(nearly.IndexBinaryIDMap(nearly.IndexBinaryFlat(D_BITS)))
    D, I = index.search(xq, 5)
    assert (I == -1).all() and (D == 2147483647).all() and D.dtype == np.int32
    ids = np.arange(len(xb), dtype=np.int64) * 7 + 3
    index.add_with_ids(xb, ids)
    ref = nearly.IndexBinaryIDMap(nearly.IndexBinaryFlat(D_BITS))
    ref.add_with_ids(xb, ids)
    check_same(index.search(xq, 10), ref.search(xq, 10))


@pytest.mark.parametrize("fill", ["parts", "collection"])
def test_replicas_like_faiss(codes, fill):
    xb, xq = codes
    out = []
    for lib in (nearly, faiss):
        index = lib.IndexBinaryReplicas(False)
        for _ in range(3):
            part = lib.IndexBinaryFlat(D_BITS)
            if fill == "parts":
                part.add(xb)
            index.addIndex(part) if lib is faiss else index.add_replica(part)
        if fill == "collection":
            index.add(xb)
        assert index.ntotal == len(xb) and index.code_size == 48
        out.append(index.search(xq, 10))
    check_same(out[0], out[1])
    check_same(out[0], flat(nearly, xb).search(xq, 10))


def test_nested_collections(codes):
    xb, xq = codes
    inner = [nearly.IndexBinaryShards(D_BITS) for _ in range(2)]
    for shards in inner:
        for _ in range(2):
            shards.add_shard(nearly.IndexBinaryFlat(D_BITS))
    outer = nearly.IndexBinaryShards(D_BITS)
    for shards in inner:
        outer.add_shard(shards)
    outer.add(xb)
    check_same(outer.search(xq, 10), flat(nearly, xb).search(xq, 10))
    with pytest.raises(nearly.InvalidArgumentError):
        nearly.IndexShards(D_BITS).add_shard(inner[0])


def test_collections_refuse_wrong_input(codes):
    xb, _ = codes
    with pytest.raises(nearly.InvalidArgumentError):
        nearly.IndexBinaryShards(D_BITS).add_shard(nearly.IndexFlatL2(D_BITS))
    with pytest.raises(nearly.InvalidArgumentError):
        nearly.IndexShards(D_BITS).add_shard(nearly.IndexBinaryFlat(D_BITS))
    index = nearly.IndexBinaryShards(D_BITS)
    index.add_shard(nearly.IndexBinaryFlat(D_BITS))
    with pytest.raises(nearly.InvalidArgumentError):
        index.add(xb[:, :10])
    with pytest.raises(nearly.InvalidArgumentError):
        index.search(xb[:3], 0)
    with pytest.raises(nearly.InvalidArgumentError):
        nearly.IndexBinaryShards(D_BITS).add_shard(nearly.IndexBinaryFlat(256))


def test_assign_like_faiss(codes):
    xb, xq = codes
    out = []
    for lib in (nearly, faiss):
        index = flat(lib, xb)
        I = index.assign(x=xq, k=3, labels=None)
        labels = np.zeros((len(xq), 3), np.int64)
        index.assign(xq, 3, labels)
        np.testing.assert_array_equal(I, labels)
        out.append(I)
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_array_equal(out[0], flat(nearly, xb).search(xq, 3)[1])
    index = flat(nearly, xb)
    with pytest.raises(nearly.InvalidArgumentError):
        index.assign(xq, 3, np.zeros((len(xq), 2), np.int64))
    with pytest.raises(nearly.InvalidArgumentError):
        index.assign(xq, 3, np.zeros((len(xq), 3), np.int32))
    with pytest.raises(nearly.InvalidArgumentError):
        index.assign(xq, 0)


@pytest.mark.parametrize("x", [0, 1, 0xFF, 2 ** 63, 2 ** 64 - 1, -1, -2 ** 63, 123456789012345])
def test_popcount64_like_faiss(x):
    if x < 0:  # faiss's SWIG takes uint64_t only
        assert nearly.popcount64(x) == faiss.popcount64(x & (2 ** 64 - 1))
    else:
        assert nearly.popcount64(x) == faiss.popcount64(x)


def ivf(lib, xb, nlist=8):
    index = lib.IndexBinaryIVF(lib.IndexBinaryFlat(D_BITS), D_BITS, nlist)
    index.cp.min_points_per_centroid = 5
    index.train(xb)
    return index


def test_ivf_reconstruct_n_without_direct_map(codes):
    xb, _ = codes
    out = []
    for lib in (nearly, faiss):
        index = ivf(lib, xb)
        index.add(xb)
        out.append(index.reconstruct_n(100, 500))
    np.testing.assert_array_equal(out[0], xb[100:600])
    np.testing.assert_array_equal(out[0], out[1])
    # faiss's test: one list, the quantizer filled by hand
    small = np.arange(3 * 8, dtype="uint8").reshape(3, 8)
    for lib in (faiss, nearly):
        quantizer = lib.IndexBinaryFlat(64)
        quantizer.add(np.zeros((1, 8), dtype="uint8"))
        index = lib.IndexBinaryIVF(quantizer, 64, 1)
        index.is_trained = True
        index.add(small)
        np.testing.assert_array_equal(index.reconstruct_n(0, 3), small)
    np.testing.assert_array_equal(index.reconstruct_n(), small)  # nearly's defaults: all of them
    with pytest.raises(IndexError):
        index.reconstruct_n(2, 5)


def test_ivf_is_trained_by_hand_needs_the_centroids():
    quantizer = nearly.IndexBinaryFlat(64)
    index = nearly.IndexBinaryIVF(quantizer, 64, 2)
    with pytest.raises(nearly.InvalidArgumentError, match="2 centroids"):
        index.is_trained = True
    quantizer.add(np.zeros((2, 8), dtype="uint8"))
    index.is_trained = True
    index.add(np.ones((4, 8), dtype="uint8"))
    with pytest.raises(nearly.InvalidArgumentError):
        index.is_trained = False
    assert index.is_trained and index.ntotal == 4


def test_ivf_direct_map_types(codes):
    xb, _ = codes
    index = ivf(nearly, xb)
    index.add(xb)
    index.set_direct_map_type(nearly.DirectMap.Array)
    for i in range(0, len(xb), 97):
        np.testing.assert_array_equal(index.reconstruct(i), xb[i])
    index = ivf(nearly, xb)
    ids = np.random.default_rng(123).choice(100000, size=len(xb), replace=False).astype(np.int64)
    index.add_with_ids(xb, ids)
    index.set_direct_map_type(nearly.DirectMap.Hashtable)
    for i in range(0, len(xb), 97):
        np.testing.assert_array_equal(index.reconstruct(int(ids[i])), xb[i])
    index.set_direct_map_type(nearly.DirectMap.NoMap)
    with pytest.raises(Exception):
        index.reconstruct(int(ids[0]))
    with pytest.raises(ValueError):
        index.set_direct_map_type(7)


def test_ivf_search_switches_keep_the_results(codes):
    xb, xq = codes
    index = ivf(nearly, xb, 10)
    index.add(xb)
    index.nprobe = 3
    ref = index.search(xq, 10)
    assert index.use_heap is True and index.per_invlist_search is False  # faiss's defaults
    f = ivf(faiss, xb, 10)
    assert (f.use_heap, f.per_invlist_search) == (True, False)
    for use_heap in (True, False):
        for per_list in (True, False):
            index.use_heap, index.per_invlist_search = use_heap, per_list
            check_same(index.search(xq, 10), ref)
    empty = ivf(nearly, xb)
    for use_heap in (True, False):
        empty.use_heap = use_heap
        D, I = empty.search(xq, 10)
        assert (I == -1).all() and (D == 2147483647).all()
