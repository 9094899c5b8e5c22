"""faiss's ResultHeap: the k best results per query, accumulated over slices
of a dataset (sharded or streamed search), and the merge that IndexShards
uses too; faiss's heap arrays (float_maxheap_array_t, ...), the same over
arrays the caller owns."""
import numpy as np

_FLT_MAX = float(np.finfo(np.float32).max)
_NO_ID = np.iinfo(np.int64).max


def best_k(D, I, k, keep_max):
    """The k best columns of each row of (D, I), best first: equal scores by
    smaller id, missing results (id -1) last. Vectorized over rows."""
    key = -D if keep_max else D
    order = np.lexsort((np.where(I < 0, _NO_ID, I), I < 0, key), axis=1)[:, :k]
    return (np.ascontiguousarray(np.take_along_axis(D, order, axis=1)),
            np.ascontiguousarray(np.take_along_axis(I, order, axis=1)))


class ResultHeap:
    """Accumulate query results from a sliced dataset; the result is in
    self.D, self.I (nq x k, best first) after finalize(). keep_max: keep the
    largest values (inner product) instead of the smallest. Missing results
    are id -1 with FLT_MAX (-FLT_MAX with keep_max), as faiss's heaps leave
    them. Equal values keep the smaller id (faiss's heap keeps whichever came
    first)."""

    def __init__(self, nq, k, keep_max=False):
        if nq < 0 or k <= 0:
            raise ValueError(f"ResultHeap needs nq >= 0 and k > 0 (got nq={nq}, k={k})")
        self.nq, self.k, self.keep_max = int(nq), int(k), bool(keep_max)
        self.D = np.full((self.nq, self.k), -_FLT_MAX if keep_max else _FLT_MAX, dtype=np.float32)
        self.I = np.full((self.nq, self.k), -1, dtype=np.int64)

    def _merge(self, rows, D, I):
        cd = np.concatenate([self.D[rows], D], axis=1)
        ci = np.concatenate([self.I[rows], I], axis=1)
        self.D[rows], self.I[rows] = best_k(cd, ci, self.k, self.keep_max)

    def add_result(self, D, I):
        """Results for every query: D, I of shape (nq, nres), in any order."""
        D = np.ascontiguousarray(D, dtype=np.float32)
        I = np.ascontiguousarray(I, dtype=np.int64)
        if D.ndim != 2 or I.shape != D.shape or D.shape[0] != self.nq:
            raise ValueError(f"add_result: D and I must both be ({self.nq}, nres), got {D.shape} and {I.shape}")
        self._merge(slice(None), D, I)

    def add_result_subset(self, subset, D, I):
        """Results for the queries in subset: D (len(subset), nres) and I of the
        same shape, or 1-D (nres,) when every query saw the same ids."""
        subset = np.ascontiguousarray(subset, dtype=np.int64)
        D = np.ascontiguousarray(D, dtype=np.float32)
        I = np.ascontiguousarray(I, dtype=np.int64)
        if subset.ndim != 1 or D.ndim != 2 or D.shape[0] != len(subset):
            raise ValueError(f"add_result_subset: D must be (len(subset), nres), got {D.shape} for "
                             f"{len(subset)} queries")
        if I.ndim == 1:
            if I.shape != (D.shape[1],):
                raise ValueError(f"add_result_subset: 1-D I must have nres = {D.shape[1]} ids, got {I.shape}")
            I = np.broadcast_to(I, D.shape)
        elif I.shape != D.shape:
            raise ValueError(f"add_result_subset: I must match D {D.shape}, got {I.shape}")
        if len(subset) and (subset.min() < 0 or subset.max() >= self.nq):
            raise ValueError(f"add_result_subset: query numbers must be in [0, {self.nq})")
        if len(np.unique(subset)) != len(subset):
            raise ValueError("add_result_subset: a query appears twice in subset")
        self._merge(subset, D, I)

    def finalize(self):
        """faiss sorts its heaps here; these rows are kept sorted throughout."""


class _HeapArray:
    """faiss's HeapArray: nh heaps of k (val, id) pairs over the caller's
    arrays (val, ids: nh * k values, set with swig_ptr), written in place.
    Equal values keep the smaller id, missing results are id -1 with the
    worst value. The rows are kept as sets, not in heap order, so any
    sequence of heapify / addn / reorder gives faiss's results."""

    _dtype = np.float32
    _keep_max = False  # a max-heap keeps the smallest values

    def __init__(self):
        self.nh = 0
        self.k = 0
        self.val = None
        self.ids = None

    def _worst(self):
        info = np.finfo(self._dtype) if np.dtype(self._dtype).kind == "f" else np.iinfo(self._dtype)
        return info.min if self._keep_max else info.max

    def _arrays(self):
        """val and ids as (nh, k) views of the caller's arrays."""
        nh, k = int(self.nh), int(self.k)
        name = type(self).__name__
        if nh < 0 or k <= 0:
            raise ValueError(f"{name}: set nh >= 0 and k > 0 first (got nh={nh}, k={k})")
        views = []
        for arr, dtype, what in ((self.val, self._dtype, "val"), (self.ids, np.int64, "ids")):
            if not isinstance(arr, np.ndarray) or arr.dtype != dtype or not arr.flags.c_contiguous \
                    or not arr.flags.writeable:
                raise TypeError(f"{name}.{what} must be a writeable contiguous {np.dtype(dtype).name} array "
                                f"(swig_ptr(array))")
            if arr.size < nh * k:
                raise ValueError(f"{name}.{what} holds {arr.size} values, nh * k = {nh * k} are needed")
            views.append(arr.reshape(-1)[: nh * k].reshape(nh, k))
        return views

    def heapify(self):
        """Empties every heap."""
        val, ids = self._arrays()
        val[:], ids[:] = self._worst(), -1

    def _merge(self, rows, D, I):
        val, ids = self._arrays()
        live = ids[rows] >= 0
        cur_D = np.where(live, val[rows], self._worst()).astype(np.float64)
        cd = np.concatenate([cur_D, D.astype(np.float64)], axis=1)
        ci = np.concatenate([ids[rows], I], axis=1)
        bd, bi = best_k(cd, ci, int(self.k), self._keep_max)
        val[rows] = np.where(bi >= 0, bd, self._worst()).astype(self._dtype)
        ids[rows] = bi

    def _rows(self, nj, i0, ni):
        nh = int(self.nh)
        ni = nh - i0 if ni == -1 else int(ni)
        if nj < 0 or i0 < 0 or ni < 0 or i0 + ni > nh:
            raise ValueError(f"{type(self).__name__}: heaps [{i0}, {i0 + ni}) of {nh}, nj = {nj}")
        return slice(i0, i0 + ni), ni

    def addn(self, nj, vin, j0=0, i0=0, ni=-1):
        """Adds to heaps i0 ... i0+ni-1 the nj values of each row of vin
        (ni x nj) with ids j0 ... j0+nj-1."""
        nj, j0, i0 = int(nj), int(j0), int(i0)
        rows, ni = self._rows(nj, i0, ni)
        V = np.asarray(vin).reshape(-1)[: ni * nj].reshape(ni, nj)
        I = np.broadcast_to(np.arange(j0, j0 + nj, dtype=np.int64), V.shape)
        self._merge(rows, V, I)

    def addn_with_ids(self, nj, vin, id_in=None, id_stride=0, i0=0, ni=-1):
        """Like addn with the ids of id_in (a row of nj per heap, id_stride
        apart; stride 0: the same ids for every heap)."""
        nj, i0 = int(nj), int(i0)
        rows, ni = self._rows(nj, i0, ni)
        V = np.asarray(vin).reshape(-1)[: ni * nj].reshape(ni, nj)
        if id_in is None:
            I = np.broadcast_to(np.arange(nj, dtype=np.int64), V.shape)
        else:
            flat = np.asarray(id_in, dtype=np.int64).reshape(-1)
            stride = int(id_stride)
            I = np.stack([flat[i * stride: i * stride + nj] for i in range(ni)]) if ni else \
                np.zeros((0, nj), np.int64)
        self._merge(rows, V, I)

    def reorder(self):
        """Sorts every heap best first, missing results last."""
        val, ids = self._arrays()
        self._merge(slice(None), np.zeros((val.shape[0], 0)), np.zeros((val.shape[0], 0), np.int64))

    def per_line_extrema(self, vals_out, idx_out):
        """The best value of each heap and its id."""
        val, ids = self._arrays()
        D, I = best_k(np.where(ids >= 0, val, self._worst()).astype(np.float64), ids, 1, self._keep_max)
        np.asarray(vals_out).reshape(-1)[: len(D)] = D[:, 0]
        np.asarray(idx_out).reshape(-1)[: len(I)] = I[:, 0]

    def get_val(self, key):
        return self._arrays()[0][int(key)]

    def get_ids(self, key):
        return self._arrays()[1][int(key)]


class float_maxheap_array_t(_HeapArray):
    """Heaps keeping the k smallest float32 values (L2 search)."""


class float_minheap_array_t(_HeapArray):
    """Heaps keeping the k largest float32 values (inner product)."""
    _keep_max = True


class int_maxheap_array_t(_HeapArray):
    """Heaps keeping the k smallest int32 values (Hamming search)."""
    _dtype = np.int32


class int_minheap_array_t(_HeapArray):
    """Heaps keeping the k largest int32 values."""
    _dtype = np.int32
    _keep_max = True
