"""faiss's partitioning utilities (faiss/utils/partitioning.h) and the
AlignedTable they work on: partition_fuzzy (CMax_ / CMin_ float and uint16),
simd_histogram_8 / _16. Pointer-style like faiss's: swig_ptr and
AlignedTable.get() hand over the arrays themselves, which are changed in
place; sizes and values are checked here (faiss reads past short arrays and
indexes its histogram with out-of-range values)."""
import numpy as np

from .compat import memcpy, pointer_view


class _AlignedTable:
    """faiss's AlignedTable<T>: a resizable array; get() / data() give the
    array itself, as swig_ptr would."""

    _dtype = np.uint8

    def __init__(self, n=0):
        self._a = np.zeros(int(n), dtype=self._dtype)

    def size(self):
        return self._a.size

    def itemsize(self):
        return self._a.itemsize

    def nbytes(self):
        return self._a.nbytes

    def resize(self, n):
        """Keeps the first min(n, size) values; new ones are 0."""
        n = int(n)
        if n < 0:
            raise ValueError(f"AlignedTable.resize: n must be >= 0 (got {n})")
        if n != self._a.size:
            a = np.zeros(n, dtype=self._dtype)
            m = min(n, self._a.size)
            a[:m] = self._a[:m]
            self._a = a

    def clear(self):
        self._a = np.zeros(0, dtype=self._dtype)

    def get(self):
        return self._a

    data = get


class AlignedTableUint8(_AlignedTable):
    _dtype = np.uint8


class AlignedTableUint16(_AlignedTable):
    _dtype = np.uint16


class AlignedTableFloat32(_AlignedTable):
    _dtype = np.float32


def copy_array_to_AlignedTable(a, v):
    a = np.ascontiguousarray(a)
    if a.ndim != 1:
        raise AssertionError(f"copy_array_to_AlignedTable: a must be 1-D, got shape {a.shape}")
    if v.itemsize() != a.itemsize:
        raise AssertionError(f"copy_array_to_AlignedTable: {a.dtype} into a table of {v.itemsize()}-byte items")
    v.resize(a.size)
    if a.size:
        memcpy(v.get(), a, a.nbytes)


def array_to_AlignedTable(a):
    a = np.asarray(a)
    tables = {np.dtype(np.uint16): AlignedTableUint16, np.dtype(np.uint8): AlignedTableUint8,
              np.dtype(np.float32): AlignedTableFloat32}
    if a.dtype not in tables:
        raise AssertionError(f"array_to_AlignedTable: uint8, uint16 or float32, got {a.dtype}")
    v = tables[a.dtype](a.size)
    copy_array_to_AlignedTable(a.reshape(-1), v)
    return v


def AlignedTable_to_array(v):
    """A copy of an AlignedTable's values. faiss's fast-scan indexes keep
    their `codes` in an AlignedTable, nearly's hand out a uint8 array (the
    same bytes), which this copies too, so faiss's idiom
    AlignedTable_to_array(index.codes) runs unchanged."""
    if isinstance(v, np.ndarray):
        return v.reshape(-1).copy()
    if not isinstance(v, _AlignedTable):
        raise AssertionError(f"AlignedTable_to_array: an AlignedTable, got {type(v).__name__}")
    return v.get().copy()


def _view(ptr, n, dtypes, what):
    return pointer_view(ptr, n, dtypes, what, writeable=True)


def _partition_fuzzy(vals, ids, n, q_min, q_max, q_out, dtype, keep_max, name):
    """Moves the q best of vals[:n] (q_min <= q <= q_max; the smallest, or
    the largest with keep_max) with their ids to the front, in their order;
    the rest of the first n is left undefined. Returns the threshold: the
    worst value kept. q, written to q_out[0] if given, is picked so that
    values equal to the threshold are not split where the range allows."""
    n, q_min, q_max = int(n), int(q_min), int(q_max)
    if n < 0 or q_min < 0 or q_max < q_min:
        raise ValueError(f"{name}: need n >= 0 and 0 <= q_min <= q_max (got n={n}, q_min={q_min}, q_max={q_max})")
    v = _view(vals, n, [dtype], f"{name} vals")
    i = _view(ids, n, [np.int64, np.int32] if dtype == np.uint16 else [np.int64], f"{name} ids")
    out = None if q_out is None else _view(q_out, 1, [np.uint64, np.int64], f"{name} q_out")
    if dtype == np.float32 and np.isnan(v).any():
        raise ValueError(f"{name}: vals holds NaN")
    info = np.finfo(dtype) if dtype == np.float32 else np.iinfo(dtype)
    if q_min == 0:  # nothing kept (faiss returns 0)
        q, thresh = 0, 0
    elif q_max >= n:  # everything kept; faiss reports q_max
        q, thresh = q_max, info.min if keep_max else info.max
    else:
        key = -v.astype(np.float64) if keep_max else v.astype(np.float64)
        s = np.sort(key)
        # the first q in [q_min, q_max] whose boundary is not inside a run of equal values
        cut = np.flatnonzero(s[q_min - 1:q_max] != s[q_min:q_max + 1])
        q = q_min + int(cut[0]) if cut.size else q_min
        t = s[q - 1]
        better = np.flatnonzero(key < t)
        equal = np.flatnonzero(key == t)[: q - better.size]
        keep = np.sort(np.concatenate([better, equal]))
        v[:q], i[:q] = v[keep], i[keep]
        thresh = -t if keep_max else t
    if out is not None:
        out[0] = q
    return dtype(thresh).item()


def CMax_float_partition_fuzzy(vals, ids, n, q_min, q_max, q_out=None):
    """The q_min..q_max smallest float32 values of vals[:n] (and their int64 ids) to the front."""
    return _partition_fuzzy(vals, ids, n, q_min, q_max, q_out, np.float32, False, "CMax_float_partition_fuzzy")


def CMin_float_partition_fuzzy(vals, ids, n, q_min, q_max, q_out=None):
    """The q_min..q_max largest float32 values of vals[:n] (and their int64 ids) to the front."""
    return _partition_fuzzy(vals, ids, n, q_min, q_max, q_out, np.float32, True, "CMin_float_partition_fuzzy")


def CMax_uint16_partition_fuzzy(vals, ids, n, q_min, q_max, q_out=None):
    """The q_min..q_max smallest uint16 values of vals[:n] (ids int64 or int32) to the front."""
    return _partition_fuzzy(vals, ids, n, q_min, q_max, q_out, np.uint16, False, "CMax_uint16_partition_fuzzy")


def CMin_uint16_partition_fuzzy(vals, ids, n, q_min, q_max, q_out=None):
    """The q_min..q_max largest uint16 values of vals[:n] (ids int64 or int32) to the front."""
    return _partition_fuzzy(vals, ids, n, q_min, q_max, q_out, np.uint16, True, "CMin_uint16_partition_fuzzy")


def _histogram(data, n, vmin, shift, hist, nbin, name):
    n, vmin, shift = int(n), int(vmin), int(shift)
    if n < 0 or not 0 <= vmin <= 65535:
        raise ValueError(f"{name}: need n >= 0 and 0 <= min <= 65535 (got n={n}, min={vmin})")
    x = pointer_view(data, n, [np.uint16], f"{name} data").astype(np.int64)
    h = _view(hist, nbin, [np.int32], f"{name} hist")
    if shift < 0:  # the values are the bins
        if n and x.max() >= nbin:
            raise ValueError(f"{name}: with shift < 0 every value must be < {nbin} (got {int(x.max())})")
        b = x
    else:  # (x - min) >> shift for min <= x, bins past the last ignored
        b = (x[x >= vmin] - vmin) >> shift
        b = b[b < nbin]
    h[:] = np.bincount(b, minlength=nbin)[:nbin]


def simd_histogram_8(data, n, min, shift, hist):
    """hist[b] = how many of data[:n] (uint16) have (x - min) >> shift == b, 8 bins."""
    _histogram(data, n, min, shift, hist, 8, "simd_histogram_8")


def simd_histogram_16(data, n, min, shift, hist):
    """The same with 16 bins."""
    _histogram(data, n, min, shift, hist, 16, "simd_histogram_16")
