"""Small faiss helpers that user code calls; no-ops or plain copies here."""
import time

import numpy as np

from . import _nearly


def downcast_index(index):
    """faiss returns the generic Index type from some accessors; nearly always
    returns the concrete class, so this is the identity."""
    return index


def downcast_VectorTransform(transform):
    """Like downcast_index: transforms already come out as their own class
    (OPQMatrix, NormalizationTransform, ...)."""
    return transform


def vector_to_array(v):
    """faiss's std::vector -> numpy copy; nearly already exposes numpy arrays."""
    return np.array(v, copy=True)


# faiss's typed spellings of the same copy
vector_float_to_array = vector_to_array


def extract_index_ivf(index):
    """The IVF index inside wrappers (IDMap, PreTransform, RefineFlat), like
    faiss's; RuntimeError when there is none."""
    seen = index
    while True:
        if hasattr(seen, "nprobe") and hasattr(seen, "quantizer"):
            return seen
        inner = getattr(seen, "base_index", None) or getattr(seen, "index", None)
        if inner is None or inner is seen:
            raise RuntimeError(f"extract_index_ivf: {type(index).__name__} does not contain an IVF index")
        seen = inner


def rev_swig_ptr(ptr, n):
    """faiss turns a C pointer into an array of n values; nearly's accessors
    (IndexFlat.get_xb, ...) already return arrays: their first n values."""
    if not isinstance(ptr, np.ndarray):
        raise TypeError(f"rev_swig_ptr: nearly has no raw pointers; pass an array (got {type(ptr).__name__})")
    flat = ptr.reshape(-1)
    if not 0 <= n <= flat.size:
        raise ValueError(f"rev_swig_ptr: n = {n} outside an array of {flat.size} values")
    return flat[:n]


class DirectMap:
    """faiss's direct map kinds, for IndexIVF.set_direct_map_type. nearly keeps
    one kind of map (id -> list and offset, any ids): Array and Hashtable both
    turn it on."""
    NoMap = 0
    Array = 1
    Hashtable = 2


def _set_direct_map_type(self, type):
    if type not in (DirectMap.NoMap, DirectMap.Array, DirectMap.Hashtable):
        raise ValueError(f"set_direct_map_type: unknown DirectMap type {type}")
    self.make_direct_map(type != DirectMap.NoMap)


_nearly.IndexIVF.set_direct_map_type = _set_direct_map_type


def try_extract_index_ivf(index):
    """extract_index_ivf, but None where there is no IVF index."""
    try:
        return extract_index_ivf(index)
    except RuntimeError:
        return None


def get_compile_options():
    """faiss's build summary, in its words: "OPTIMIZE DD" (SIMD chosen at run
    time), the instruction sets in use (NEARLY_SIMD can lower them), "GPU"
    when the CUDA module is built in."""
    level = _nearly.simd_level()
    isas = {"scalar": "GENERIC", "avx2": "AVX2", "avx512": "AVX2 AVX512", "neon": "NEON"}.get(level, level.upper())
    from .gpu import _CUDA

    return "OPTIMIZE DD " + isas + (" GPU" if _CUDA else "") + " "


def clone_index(index):
    """A deep copy (faiss's clone_index), made by a round trip through the
    serialized form, so every index type that persists can be cloned."""
    from .persistence import deserialize_index, serialize_index

    if isinstance(index, _nearly.IndexBinary):
        return clone_binary_index(index)
    return deserialize_index(serialize_index(index))


def clone_binary_index(index):
    from ._nearly import deserialize_index_binary, serialize_index_binary

    return deserialize_index_binary(serialize_index_binary(index))


def rand(n, seed=12345):
    """faiss.rand: uniform float32 in [0, 1], the same values as faiss for the
    same seed; n is a size or a shape."""
    res = np.empty(n, dtype="float32")
    _nearly._float_rand(res, seed)
    return res


def randn(n, seed=12345):
    """faiss.randn: standard normal float32, the same values as faiss."""
    res = np.empty(n, dtype="float32")
    _nearly._float_randn(res, seed)
    return res


def randint(n, seed=12345, vmax=None):
    """faiss.randint: int64 in [0, 2^62), or in [0, vmax), the same values as faiss."""
    res = np.empty(n, dtype="int64")
    if vmax is None:
        _nearly._int64_rand(res, seed)
    else:
        _nearly._int64_rand_max(res, int(vmax), seed)
    return res


def eval_intersection(I1, I2):
    """faiss.eval_intersection: the sum over rows of how many distinct ids
    (-1 left out) two result tables share, e.g. a search's I against the
    ground truth's. Rows are compared a block at a time, vectorized."""
    I1 = np.ascontiguousarray(I1, dtype="int64")
    I2 = np.ascontiguousarray(I2, dtype="int64")
    if I1.ndim != 2 or I2.ndim != 2 or len(I1) != len(I2):
        raise _nearly.InvalidArgumentError("eval_intersection: two 2-D result tables with the same number of rows")
    k1, k2 = I1.shape[1], I2.shape[1]
    if k1 == 0 or k2 == 0:
        return 0
    B = np.sort(I2, axis=1)
    B[:, 1:][B[:, 1:] == B[:, :-1]] = -1  # each id once
    total = 0
    step = max(1, (1 << 24) // (k1 * k2))
    for i in range(0, len(I1), step):
        a, b = I1[i:i + step], B[i:i + step]
        hit = (a[:, :, None] == b[:, None, :]).any(axis=1) & (b != -1)
        total += int(hit.sum())
    return total


def merge_into(index0, index1, shift_ids):
    """faiss.merge_into: moves index1's vectors into index0 (index1 is left
    empty); with shift_ids, index1's ids are shifted by index0's ntotal."""
    index0.merge_from(index1, index0.ntotal if shift_ids else 0)


class _CVar:
    """faiss.cvar: the library's global variables. indexIVF_stats and
    hnsw_stats are the live counter objects (IndexIVFStats, HNSWStats): read
    their fields after searches, reset() them between measurements."""

    @property
    def indexIVF_stats(self):
        return _nearly._indexIVF_stats()

    @property
    def hnsw_stats(self):
        return _nearly._hnsw_stats()

    def __repr__(self):
        return "<nearly.cvar: indexIVF_stats, hnsw_stats>"


cvar = _CVar()


def _ivf_stages(index, x, params, what):
    """faiss's IVFlib search_with_parameters preamble: an IndexPreTransform's
    chain applied to x, then its IVF index; the probed lists, their centroid
    scores, the codes they hold and the time of each stage (ms)."""
    x = np.ascontiguousarray(x, dtype="float32")
    if x.ndim != 2 or x.shape[1] != index.d:
        raise _nearly.InvalidArgumentError(f"{what}: x must be (n, {index.d}) floats")
    t0 = time.perf_counter()
    if isinstance(index, _nearly.IndexPreTransform):
        for t in index.chain:
            x = t.apply(x)
        index = index.index
    t1 = time.perf_counter()
    if not isinstance(index, _nearly.IndexIVF):
        raise RuntimeError(f"{what}: {type(index).__name__} is not an IVF index (or one behind a pre-transform)")
    if params is None:  # faiss: the index's own nprobe
        params = _nearly.SearchParametersIVF(nprobe=index.nprobe)
    nprobe = getattr(params, "nprobe", index.nprobe)
    Dq, Iq = index.quantizer.search(x, nprobe)
    lists, counts = np.unique(Iq[Iq >= 0], return_counts=True)
    ndis = int(sum(index.get_list_size(int(l)) * int(c) for l, c in zip(lists, counts)))
    t2 = time.perf_counter()
    return index, x, params, Iq, Dq, ndis, (t0, t1, t2)


def _stats(ndis, t, t3):
    t0, t1, t2 = t
    return {"ndis": ndis, "pre_transform_ms": (t1 - t0) * 1e3, "coarse_quantizer_ms": (t2 - t1) * 1e3,
            "invlist_scan_ms": (t3 - t2) * 1e3}


def search_with_parameters(index, x, k, params=None, output_stats=False):
    """faiss's search_with_parameters: an IVF index (possibly behind an
    IndexPreTransform) searched with params (default: its own nprobe); with
    output_stats also {"ndis", "pre_transform_ms", "coarse_quantizer_ms",
    "invlist_scan_ms"}, ndis counting the codes of every probed list."""
    ivf, x, params, Iq, Dq, ndis, t = _ivf_stages(index, x, params, "search_with_parameters")
    D, I = ivf.search_preassigned(x, k, Iq, Dq, params=params)
    if not output_stats:
        return D, I
    return D, I, _stats(ndis, t, time.perf_counter())


def range_search_with_parameters(index, x, radius, params=None, output_stats=False):
    """faiss's range_search_with_parameters: (lims, D, I) [, stats] as
    search_with_parameters."""
    ivf, x, params, Iq, Dq, ndis, t = _ivf_stages(index, x, params, "range_search_with_parameters")
    lims, D, I = ivf.range_search_preassigned(x, radius, Iq, Dq, params=params)
    if not output_stats:
        return lims, D, I
    return lims, D, I, _stats(ndis, t, time.perf_counter())


class _IndexHNSWSQType(type):
    """One faiss class, two nearly classes: instances of either are
    IndexHNSWSQ, and calling it builds the one that serves the type."""

    def __instancecheck__(cls, obj):
        return isinstance(obj, (_nearly.IndexHNSWSQ, _nearly.IndexHNSWSQCodes))

    def __subclasscheck__(cls, sub):
        return issubclass(sub, (_nearly.IndexHNSWSQ, _nearly.IndexHNSWSQCodes))

    def __call__(cls, d, qtype, M=32, metric=_nearly.METRIC_L2):
        walk_copy = (_nearly.ScalarQuantizer.QT_8bit, _nearly.ScalarQuantizer.QT_fp16, _nearly.ScalarQuantizer.QT_bf16)
        if qtype in walk_copy:
            return _nearly.IndexHNSWSQ(d, qtype, M, metric)
        return _nearly.IndexHNSWSQCodes(d, qtype, M, metric)


class IndexHNSWSQ(metaclass=_IndexHNSWSQType):
    """faiss's IndexHNSWSQ(d, qtype, M=32, metric=METRIC_L2).

    QT_8bit, QT_fp16 and QT_bf16 give nearly's HNSW that walks on a per-vector
    int8 copy (and re-ranks on the fp16 / bf16 copy); every other type gives
    an IndexHNSWSQCodes, whose nodes hold the ScalarQuantizer codes alone
    (faiss's layout: d / 2 bytes a vector at 4 bits)."""
