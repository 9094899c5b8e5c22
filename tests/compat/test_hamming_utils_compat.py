"""faiss's Hamming utilities (hammings, hammings_knn_hc / _mc,
generalized_hammings_knn_hc, hamming_count_thres, crosshamming_count_thres,
match_hamming_thres) and heap arrays, in faiss's pointer style, against
faiss-cpu on the same codes (binarized real embeddings and random bytes),
and against numpy references; sizes large enough to take the threaded
paths, and bad input."""
import numpy as np
import pytest

import nearly
from _hnswutil import real_data

faiss = pytest.importorskip("faiss")


def popcount_xor(a, b):
    return np.unpackbits(np.bitwise_xor(a[:, None, :], b[None, :, :]), axis=-1).sum(-1).astype(np.int32)


@pytest.fixture(scope="module")
def codes():
    base, queries = real_data()
    return np.packbits(base[:3000] > 0, axis=1), np.packbits(queries[:70] > 0, axis=1)


def run_both(fn):
    return fn(nearly), fn(faiss)


@pytest.mark.parametrize("ncodes", [1, 7, 8, 24, 48])
def test_hammings_like_faiss(codes, ncodes):
    xb, xq = codes[0][:, :ncodes].copy(), codes[1][:, :ncodes].copy()

    def go(lib):
        dis = np.empty((len(xq), len(xb)), np.int32)
        lib.hammings(lib.swig_ptr(xq), lib.swig_ptr(xb), len(xq), len(xb), ncodes, lib.swig_ptr(dis))
        return dis

    ours, theirs = run_both(go)
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(ours, popcount_xor(xq, xb))


@pytest.mark.parametrize("ncodes,ht", [(8, 20), (16, 50), (32, 115), (48, 170)])
def test_thresholds_like_faiss(codes, ncodes, ht):
    # faiss implements the thresholds for 4, 8, 16 and 32 bytes; nearly for any size
    libs = (nearly, faiss) if ncodes in (4, 8, 16, 32) else (nearly,)
    xb, xq = codes[0][:, :ncodes].copy(), codes[1][:, :ncodes].copy()
    full = popcount_xor(xq, xb)
    assert 0 < (full <= ht).sum() < full.size  # neither vacuous nor everything

    def count(lib):
        c = np.zeros(1, np.uint64)
        lib.hamming_count_thres(lib.swig_ptr(xq), lib.swig_ptr(xb), len(xq), len(xb), ht, ncodes, lib.swig_ptr(c))
        return int(c[0])

    assert [count(lib) for lib in libs] == [int((full <= ht).sum())] * len(libs)

    def cross(lib):
        c = np.zeros(1, np.uint64)
        lib.crosshamming_count_thres(lib.swig_ptr(xb[:800]), 800, ht, ncodes, lib.swig_ptr(c))
        return int(c[0])

    self_full = popcount_xor(xb[:800], xb[:800])
    assert [cross(lib) for lib in libs] == [int(np.triu(self_full <= ht, k=1).sum())] * len(libs)

    def match(lib):
        m = int((full <= ht).sum())
        idx, dis = np.empty(2 * m, np.int64), np.empty(m, np.int32)
        got = lib.match_hamming_thres(lib.swig_ptr(xq), lib.swig_ptr(xb), len(xq), len(xb), ht, ncodes,
                                      lib.swig_ptr(idx), lib.swig_ptr(dis))
        return got, idx, dis

    n1, i1, d1 = match(nearly)
    ii, jj = np.nonzero(full <= ht)  # row-major: (i, j) order
    assert n1 == len(ii)
    np.testing.assert_array_equal(i1, np.stack([ii, jj], axis=1).reshape(-1))
    np.testing.assert_array_equal(d1, full[ii, jj])
    if faiss in libs:
        n2, i2, d2 = match(faiss)
        assert n1 == n2
        np.testing.assert_array_equal(i1, i2)  # the same pairs in the same order
        np.testing.assert_array_equal(d1, d2)


@pytest.mark.parametrize("k", [1, 10, 100])
def test_knn_like_faiss(codes, k):
    xb, xq = codes
    ncodes = xb.shape[1]
    full = popcount_xor(xq, xb)
    kth = np.sort(full, axis=1)[:, :k]

    def mc(lib):
        D, I = np.empty((len(xq), k), np.int32), np.empty((len(xq), k), np.int64)
        lib.hammings_knn_mc(lib.swig_ptr(xq), lib.swig_ptr(xb), len(xq), len(xb), k, ncodes, lib.swig_ptr(D),
                            lib.swig_ptr(I))
        return D, I

    def hc(lib, ordered=True):
        D, I = np.empty((len(xq), k), np.int32), np.empty((len(xq), k), np.int64)
        heap = lib.int_maxheap_array_t()
        heap.k, heap.nh, heap.ids, heap.val = k, len(xq), lib.swig_ptr(I), lib.swig_ptr(D)
        lib.hammings_knn_hc(heap, lib.swig_ptr(xq), lib.swig_ptr(xb), len(xb), ncodes, ordered)
        return D, I

    for fn in (mc, hc):
        (D, I), (Df, _) = run_both(fn)
        np.testing.assert_array_equal(D, Df)  # ids may differ only among equal distances
        np.testing.assert_array_equal(D, kth)
        np.testing.assert_array_equal(np.take_along_axis(full, I, axis=1), D)
    # unordered: a heap (worst first); reorder() sorts it as faiss's does
    D, I = hc(nearly, ordered=False)
    assert (D[:, 0] == D.max(axis=1)).all()
    heap = nearly.int_maxheap_array_t()
    heap.k, heap.nh, heap.ids, heap.val = k, len(xq), nearly.swig_ptr(I), nearly.swig_ptr(D)
    heap.reorder()
    np.testing.assert_array_equal(D, kth)


def test_generalized_hammings_like_faiss():
    rs = np.random.RandomState(5)
    a = rs.randint(4, size=(40, 16)).astype(np.uint8)  # few byte values: many equal bytes
    b = rs.randint(4, size=(900, 16)).astype(np.uint8)
    ref = (a[:, None, :] != b[None, :, :]).sum(-1)
    for ordered in (True, False):
        def go(lib):
            D, I = np.empty((40, 7), np.int32), np.empty((40, 7), np.int64)
            heap = lib.int_maxheap_array_t()
            heap.k, heap.nh, heap.ids, heap.val = 7, 40, lib.swig_ptr(I), lib.swig_ptr(D)
            if not ordered:  # faiss's unordered call adds to the heaps as they are
                heap.heapify()
            lib.generalized_hammings_knn_hc(heap, lib.swig_ptr(a), lib.swig_ptr(b), 900, 16, ordered)
            if not ordered:
                heap.reorder()
            return D, I

        (D, I), (Df, _) = run_both(go)
        np.testing.assert_array_equal(D, Df)
        np.testing.assert_array_equal(D, np.sort(ref, axis=1)[:, :7])
        np.testing.assert_array_equal(np.take_along_axis(ref, I, axis=1), D)


def test_knn_hamming_with_selector(codes):
    xb, xq = codes
    sel = nearly.IDSelectorRange(1000, 2000)
    D, I = nearly.knn_hamming(xq, xb, 5, sel=sel)
    assert ((I >= 1000) & (I < 2000)).all()
    D2, I2 = nearly.knn_hamming(xq, xb[1000:2000], 5)
    np.testing.assert_array_equal(D, D2)
    np.testing.assert_array_equal(I, I2 + 1000)


@pytest.mark.parametrize("cls,keep_max,dtype", [("float_maxheap_array_t", False, np.float32),
                                                ("float_minheap_array_t", True, np.float32),
                                                ("int_maxheap_array_t", False, np.int32),
                                                ("int_minheap_array_t", True, np.int32)])
def test_heap_arrays_like_faiss(cls, keep_max, dtype):
    rs = np.random.RandomState(3)
    nh, k = 6, 5
    blocks = [rs.randint(50, size=(nh, 4)).astype(dtype) for _ in range(3)]

    def go(lib):
        D, I = np.empty((nh, k), dtype), np.empty((nh, k), np.int64)
        heap = getattr(lib, cls)()
        heap.k, heap.nh, heap.ids, heap.val = k, nh, lib.swig_ptr(I), lib.swig_ptr(D)
        heap.heapify()
        heap.addn(4, lib.swig_ptr(blocks[0]), 0)
        heap.addn(4, lib.swig_ptr(blocks[1][2:].copy()), 100, 2, nh - 2)  # heaps 2.. only
        ids = (np.arange(nh * 4, dtype=np.int64) + 1000).reshape(nh, 4)
        heap.addn_with_ids(4, lib.swig_ptr(blocks[2]), lib.swig_ptr(ids), 4)
        heap.reorder()
        return D, I

    (D, I), (Df, If) = run_both(go)
    np.testing.assert_array_equal(D, Df)
    # faiss keeps one of equal values by heap order; the values match, and
    # each id carries the value it was added with
    every = {}
    for i in range(nh):
        for j in range(4):
            every[(i, j)] = blocks[0][i, j]
            if i >= 2:
                every[(i, 100 + j)] = blocks[1][i, j]
            every[(i, 1000 + 4 * i + j)] = blocks[2][i, j]
    for i in range(nh):
        for d, id_ in zip(D[i], I[i]):
            assert every[(i, int(id_))] == d
    order = -D if keep_max else D
    assert (np.diff(order.astype(np.float64), axis=1) >= 0).all()


def test_heap_array_partial_fill():
    D, I = np.empty((2, 4), np.float32), np.empty((2, 4), np.int64)
    heap = nearly.float_maxheap_array_t()
    heap.k, heap.nh, heap.ids, heap.val = 4, 2, nearly.swig_ptr(I), nearly.swig_ptr(D)
    heap.heapify()
    heap.addn(2, np.array([[3.0, 1.0], [2.0, 5.0]], np.float32))
    heap.reorder()
    np.testing.assert_array_equal(I, [[1, 0, -1, -1], [0, 1, -1, -1]])
    np.testing.assert_array_equal(D[:, :2], [[1, 3], [2, 5]])
    vals, ids = np.empty(2, np.float32), np.empty(2, np.int64)
    heap.per_line_extrema(vals, ids)
    np.testing.assert_array_equal(vals, [1, 2])
    np.testing.assert_array_equal(ids, [1, 0])


def test_bad_input(codes):
    xb, xq = codes
    sp = nearly.swig_ptr
    dis = np.empty((len(xq), 10), np.int32)
    with pytest.raises(ValueError, match="holds"):  # faiss would write past it
        nearly.hammings(sp(xq), sp(xb), len(xq), len(xb), 48, sp(dis))
    with pytest.raises(ValueError, match="need"):  # faiss would read past it
        nearly.hammings(sp(xq), sp(xb), len(xq), len(xb) + 1, 48, sp(np.empty((70, 3001), np.int32)))
    with pytest.raises(TypeError, match="int32"):
        nearly.hammings(sp(xq), sp(xb), 2, 2, 48, sp(np.empty(4, np.int64)))
    with pytest.raises(TypeError, match="uint8"):
        nearly.hammings(sp(xq.astype(np.int8)), sp(xb), 2, 2, 48, sp(np.empty(4, np.int32)))
    D, I = np.empty((70, 5), np.int32), np.empty((70, 5), np.int64)
    with pytest.raises(nearly.InvalidArgumentError, match="k must be positive"):
        nearly.hammings_knn_mc(sp(xq), sp(xb), 70, 3000, 0, 48, sp(D), sp(I))
    heap = nearly.int_maxheap_array_t()
    with pytest.raises(ValueError, match="k > 0"):
        nearly.hammings_knn_hc(heap, sp(xq), sp(xb), 3000, 48, True)
    heap.k, heap.nh, heap.ids, heap.val = 5, 70, sp(I), sp(D.astype(np.float32))
    with pytest.raises(TypeError, match="int32"):
        nearly.hammings_knn_hc(heap, sp(xq), sp(xb), 3000, 48, True)
    with pytest.raises(TypeError, match="int_maxheap_array_t"):
        nearly.hammings_knn_hc(nearly.float_maxheap_array_t(), sp(xq), sp(xb), 3000, 48, True)
    idx, d = np.empty(2, np.int64), np.empty(1, np.int32)
    with pytest.raises(ValueError, match="needed"):
        nearly.match_hamming_thres(sp(xq), sp(xb), 70, 3000, 200, 48, sp(idx), sp(d))
    with pytest.raises(TypeError, match="integer array"):
        nearly.hamming_count_thres(sp(xq), sp(xb), 70, 3000, 20, 48, sp(np.zeros(1, np.float32)))
    with pytest.raises(nearly.InvalidArgumentError, match="IDSelector"):
        nearly.knn_hamming(xq, xb, 5, sel="no")


@pytest.mark.parametrize("cs", [1, 7, 8, 16, 31, 32, 48, 64, 65])
def test_generalized_kernel_every_level(level, cs):
    """The generalized distance's SIMD kernels against the numpy reference,
    every code size path (32-byte, 16-byte and byte tails)."""
    rs = np.random.RandomState(cs)
    a = rs.randint(3, size=(9, cs)).astype(np.uint8)
    b = rs.randint(3, size=(150, cs)).astype(np.uint8)
    ref = (a[:, None, :] != b[None, :, :]).sum(-1)
    D, I = nearly._nearly._knn_generalized_hamming(a, b, 150)  # every code: all distances
    np.testing.assert_array_equal(np.take_along_axis(ref, I, axis=1), D)
    np.testing.assert_array_equal(D, np.sort(ref, axis=1))
