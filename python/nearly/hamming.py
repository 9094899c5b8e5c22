"""faiss's Hamming utilities (faiss/utils/hamming.h) with faiss's
pointer-style signatures: hammings, hammings_knn_hc / _mc,
generalized_hammings_knn_hc, hamming_count_thres, crosshamming_count_thres,
match_hamming_thres. swig_ptr hands over the arrays themselves, so sizes are
checked here (faiss would read or write past them); the scans are native."""
import numpy as np

from . import _nearly
from .compat import pointer_view
from .result_heap import int_maxheap_array_t


def _codes(ptr, n, ncodes, what):
    """The first n codes of ncodes bytes that swig_ptr handed over, (n, ncodes)."""
    n, ncodes = int(n), int(ncodes)
    if n < 0 or ncodes <= 0:
        raise ValueError(f"{what}: need n >= 0 and ncodes > 0 (got n={n}, ncodes={ncodes})")
    return pointer_view(ptr, n * ncodes, (np.uint8,), what).reshape(n, ncodes)


def _out(ptr, n, dtype, what):
    """The first n slots of an output array that swig_ptr handed over."""
    return pointer_view(ptr, n, (dtype,), what, writeable=True)


def _count_out(nptr, what):
    """faiss's size_t* count: any integer array of one value or more."""
    if not isinstance(nptr, np.ndarray) or nptr.dtype.kind not in "iu":
        raise TypeError(f"{what}: the count goes into an integer array (swig_ptr(np.zeros(1, 'uint64')))")
    return _out(nptr, 1, nptr.dtype, what)


def _threshold(ht):
    ht = int(ht)
    return max(min(ht, 2**31 - 1), -(2**31))


def hammings(a, b, na, nb, ncodes, dis):
    """dis[i * nb + j] = Hamming distance between codes a_i and b_j (int32)."""
    A, B = _codes(a, na, ncodes, "hammings"), _codes(b, nb, ncodes, "hammings")
    _nearly._hammings(A, B, _out(dis, A.shape[0] * B.shape[0], np.int32, "hammings"))


def _write_heap(ha, D, I, ordered):
    k, nh = int(ha.k), int(ha.nh)
    val, ids = ha._arrays()
    if not ordered:  # worst first: a valid max-heap, as faiss leaves it
        D, I = D[:, ::-1], I[:, ::-1]
    val[:], ids[:] = D.reshape(nh, k), I.reshape(nh, k)


def hammings_knn_hc(ha, a, b, nb, ncodes, ordered, approx_topk_mode=None, sel=None):
    """The ha.k nearest codes of b for each of the ha.nh codes of a, into the
    heap array ha (an int_maxheap_array_t over int32 val and int64 ids);
    ordered: best first, else in heap order. Ties go to the smaller id."""
    if not isinstance(ha, int_maxheap_array_t):
        raise TypeError("hammings_knn_hc: ha must be an int_maxheap_array_t")
    ha._arrays()  # checked before the scan
    A, B = _codes(a, ha.nh, ncodes, "hammings_knn_hc"), _codes(b, nb, ncodes, "hammings_knn_hc")
    D, I = _nearly.knn_hamming(A, B, int(ha.k), sel=sel)
    _write_heap(ha, D, I, ordered)


def hammings_knn_mc(a, b, na, nb, k, ncodes, distances, labels, sel=None):
    """The k nearest codes of b for each code of a, best first, into
    distances (int32, na * k) and labels (int64)."""
    A, B = _codes(a, na, ncodes, "hammings_knn_mc"), _codes(b, nb, ncodes, "hammings_knn_mc")
    n = A.shape[0] * int(k)
    D, I = _nearly.knn_hamming(A, B, int(k), "mc", sel=sel)
    _out(distances, n, np.int32, "hammings_knn_mc")[:] = D.reshape(-1)
    _out(labels, n, np.int64, "hammings_knn_mc")[:] = I.reshape(-1)


def generalized_hammings_knn_hc(ha, a, b, nb, code_size, ordered=True):
    """Like hammings_knn_hc for faiss's generalized Hamming distance: the
    number of bytes in which two codes differ. As faiss's, ordered=False
    adds to the heaps as they are (heapify() them first) and leaves them
    unsorted."""
    if not isinstance(ha, int_maxheap_array_t):
        raise TypeError("generalized_hammings_knn_hc: ha must be an int_maxheap_array_t")
    ha._arrays()
    A = _codes(a, ha.nh, code_size, "generalized_hammings_knn_hc")
    B = _codes(b, nb, code_size, "generalized_hammings_knn_hc")
    D, I = _nearly._knn_generalized_hamming(A, B, int(ha.k))
    if ordered:
        _write_heap(ha, D, I, True)
    else:
        ha._merge(slice(None), D, I)


def hamming_count_thres(bs1, bs2, n1, n2, ht, ncodes, nptr):
    """nptr[0] = how many pairs (i, j) are within Hamming distance ht (<= ht)."""
    A, B = _codes(bs1, n1, ncodes, "hamming_count_thres"), _codes(bs2, n2, ncodes, "hamming_count_thres")
    _count_out(nptr, "hamming_count_thres")[0] = _nearly._hamming_count_thres(A, B, _threshold(ht))


def crosshamming_count_thres(dbs, n, ht, ncodes, nptr):
    """nptr[0] = how many pairs i < j of the n codes are within ht."""
    X = _codes(dbs, n, ncodes, "crosshamming_count_thres")
    _count_out(nptr, "crosshamming_count_thres")[0] = _nearly._crosshamming_count_thres(X, _threshold(ht))


def match_hamming_thres(bs1, bs2, n1, n2, ht, ncodes, idx, dis):
    """The pairs within ht, in (i, j) order: idx gets i, j, i, j, ... (int64),
    dis the distances (int32). Returns how many. faiss writes past the arrays
    when they are too small; here that is a ValueError, nothing written."""
    A, B = _codes(bs1, n1, ncodes, "match_hamming_thres"), _codes(bs2, n2, ncodes, "match_hamming_thres")
    pairs, d = _nearly._match_hamming_thres(A, B, _threshold(ht))
    m = len(d)
    idx_out = _out(idx, 2 * m, np.int64, "match_hamming_thres")
    dis_out = _out(dis, m, np.int32, "match_hamming_thres")
    idx_out[:], dis_out[:] = pairs.reshape(-1), d
    return m
