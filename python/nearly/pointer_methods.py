"""faiss's raw SWIG methods (`index.search_c(n, swig_ptr(x), k, swig_ptr(D),
swig_ptr(I))`, `add_c`, `range_search_c(n, x, radius, res)`, ...) and
RangeSearchResult, over nearly's array methods. faiss's Python wrappers are
built on these, and low-level faiss code (contrib, code written against
the C++ API) calls them directly. swig_ptr hands over the arrays
themselves, so sizes and dtypes are checked here: faiss would read or write
past them."""
import numpy as np

from . import _nearly
from .compat import pointer_view


def _flat(ptr, n, dtype, what, writeable=False):
    return pointer_view(ptr, n, (dtype,), what, writeable)


class RangeSearchResult:
    """faiss's RangeSearchResult(nq): a range search's results, lims (nq + 1
    offsets), distances and labels, filled by range_search_c and
    range_search_preassigned_c; read them with rev_swig_ptr as in faiss."""

    def __init__(self, nq, alloc_lims=True):
        self.nq = int(nq)
        if self.nq < 0:
            raise ValueError(f"RangeSearchResult: nq must be >= 0 (got {nq})")
        self.lims = np.zeros(self.nq + 1 if alloc_lims else 0, dtype=np.uint64)
        self.distances = np.zeros(0, dtype=np.float32)
        self.labels = np.zeros(0, dtype=np.int64)
        self.buffer_size = 1024 * 256

    def _fill(self, lims, D, I):
        self.lims = np.ascontiguousarray(lims, dtype=np.uint64)
        self.distances = np.ascontiguousarray(D)
        self.labels = np.ascontiguousarray(I, dtype=np.int64)

    def do_allocation(self):
        """faiss sizes its buffers from lims here; nearly's are filled whole."""


def _x(index, ptr, n, what):
    """n vectors of the index's kind: float rows, or binary codes."""
    if isinstance(index, _nearly.IndexBinary):
        cs = index.code_size
        return _flat(ptr, int(n) * cs, np.uint8, what).reshape(int(n), cs)
    return _flat(ptr, int(n) * index.d, np.float32, what).reshape(int(n), index.d)


def _dis_type(index):
    return np.int32 if isinstance(index, _nearly.IndexBinary) else np.float32


def add_c(self, n, x):
    self.add(_x(self, x, n, "add_c x"))


def add_with_ids_c(self, n, x, xids):
    self.add_with_ids(_x(self, x, n, "add_with_ids_c x"), _flat(xids, n, np.int64, "add_with_ids_c ids"))


def train_c(self, n, x):
    self.train(_x(self, x, n, "train_c x"))


def search_c(self, n, x, k, distances, labels, params=None):
    n, k = int(n), int(k)
    X = _x(self, x, n, "search_c x")
    D = _flat(distances, n * k, _dis_type(self), "search_c distances", True).reshape(n, k)
    I = _flat(labels, n * k, np.int64, "search_c labels", True).reshape(n, k)
    Dr, Ir = self.search(X, k, params=params)
    D[:], I[:] = Dr, Ir


def range_search_c(self, n, x, radius, result, params=None):
    if not isinstance(result, RangeSearchResult):
        raise TypeError("range_search_c: result must be a RangeSearchResult")
    result._fill(*self.range_search(_x(self, x, n, "range_search_c x"), radius, params=params))


def assign_c(self, n, x, labels, k=1):
    n, k = int(n), int(k)
    _flat(labels, n * k, np.int64, "assign_c labels", True)[:] = \
        self.assign(_x(self, x, n, "assign_c x"), k).reshape(-1)


def reconstruct_c(self, key, recons):
    out = self.reconstruct(int(key))
    _flat(recons, out.size, out.dtype, "reconstruct_c recons", True)[:] = out.reshape(-1)


def reconstruct_n_c(self, i0, ni, recons):
    out = self.reconstruct_n(int(i0), int(ni))
    _flat(recons, out.size, out.dtype, "reconstruct_n_c recons", True)[:] = out.reshape(-1)


def reconstruct_batch_c(self, n, keys, recons):
    out = self.reconstruct_batch(_flat(keys, n, np.int64, "reconstruct_batch_c keys"))
    _flat(recons, out.size, out.dtype, "reconstruct_batch_c recons", True)[:] = out.reshape(-1)


def remove_ids_c(self, sel):
    return self.remove_ids(sel)


def sa_encode_c(self, n, x, codes):
    out = self.sa_encode(_x(self, x, n, "sa_encode_c x"))
    _flat(codes, out.size, np.uint8, "sa_encode_c codes", True)[:] = out.reshape(-1)


def sa_decode_c(self, n, codes, x):
    n = int(n)
    cs = self.sa_code_size()
    out = self.sa_decode(_flat(codes, n * cs, np.uint8, "sa_decode_c codes").reshape(n, cs))
    _flat(x, out.size, np.float32, "sa_decode_c x", True)[:] = out.reshape(-1)


def fast_scan_compute_codes(self, codes, n, x):
    """faiss's IndexFastScan.compute_codes(swig_ptr(codes), n, swig_ptr(x)):
    the codes of n vectors one after the other, as sa_encode gives them."""
    out = self.sa_encode(_x(self, x, n, "compute_codes x"))
    _flat(codes, out.size, np.uint8, "compute_codes codes", True)[:] = out.reshape(-1)


def search_and_reconstruct_c(self, n, x, k, distances, labels, recons, params=None):
    n, k = int(n), int(k)
    Dr, Ir, Rr = self.search_and_reconstruct(_x(self, x, n, "search_and_reconstruct_c x"), k, params=params)
    _flat(distances, n * k, np.float32, "search_and_reconstruct_c distances", True)[:] = Dr.reshape(-1)
    _flat(labels, n * k, np.int64, "search_and_reconstruct_c labels", True)[:] = Ir.reshape(-1)
    _flat(recons, Rr.size, np.float32, "search_and_reconstruct_c recons", True)[:] = Rr.reshape(-1)


def _preassigned(self, n, assign, centroid_dis, what):
    n, nprobe = int(n), int(self.nprobe)
    lists = _flat(assign, n * nprobe, np.int64, what + " assign").reshape(n, nprobe)
    dis = None if centroid_dis is None else \
        _flat(centroid_dis, n * nprobe, _dis_type(self), what + " centroid_dis").reshape(n, nprobe)
    return lists, dis


def search_preassigned_c(self, n, x, k, assign, centroid_dis, distances, labels, store_pairs=False, params=None,
                         stats=None):
    if store_pairs:
        raise NotImplementedError("search_preassigned_c: store_pairs is not implemented in nearly")
    n, k = int(n), int(k)
    lists, dis = _preassigned(self, n, assign, centroid_dis, "search_preassigned_c")
    D = _flat(distances, n * k, _dis_type(self), "search_preassigned_c distances", True).reshape(n, k)
    I = _flat(labels, n * k, np.int64, "search_preassigned_c labels", True).reshape(n, k)
    Dr, Ir = self.search_preassigned(_x(self, x, n, "search_preassigned_c x"), k, lists, dis, params=params)
    D[:], I[:] = Dr, Ir


def range_search_preassigned_c(self, n, x, radius, assign, centroid_dis, result, store_pairs=False, params=None,
                               stats=None):
    if store_pairs:
        raise NotImplementedError("range_search_preassigned_c: store_pairs is not implemented in nearly")
    if not isinstance(result, RangeSearchResult):
        raise TypeError("range_search_preassigned_c: result must be a RangeSearchResult")
    lists, dis = _preassigned(self, n, assign, centroid_dis, "range_search_preassigned_c")
    result._fill(*self.range_search_preassigned(_x(self, x, n, "range_search_preassigned_c x"), radius, lists, dis,
                                                params=params))


_INDEX_METHODS = (add_c, add_with_ids_c, train_c, search_c, range_search_c, assign_c, reconstruct_c,
                  reconstruct_n_c, reconstruct_batch_c, remove_ids_c, sa_encode_c, sa_decode_c,
                  search_and_reconstruct_c)
for _fn in _INDEX_METHODS:
    setattr(_nearly.Index, _fn.__name__, _fn)
for _fn in (add_c, add_with_ids_c, train_c, search_c, range_search_c, assign_c, reconstruct_c, reconstruct_n_c,
            remove_ids_c):
    setattr(_nearly.IndexBinary, _fn.__name__, _fn)
for _cls in (_nearly.IndexIVF, _nearly.IndexBinaryIVF):
    _cls.search_preassigned_c = search_preassigned_c
    _cls.range_search_preassigned_c = range_search_preassigned_c
for _cls in (_nearly.IndexPQFastScan, _nearly.IndexRaBitQFastScan, _nearly.IndexResidualQuantizerFastScan):
    _cls.compute_codes = fast_scan_compute_codes
