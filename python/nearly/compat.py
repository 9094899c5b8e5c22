"""Small faiss helpers that user code calls; no-ops or plain copies here."""
import time
import weakref

import numpy as np

from . import _nearly


def downcast_index(index):
    """faiss returns the generic Index type from some accessors; nearly always
    returns the concrete class, so this is the identity."""
    return index


def downcast_IndexBinary(index):
    """Like downcast_index, for binary indexes."""
    return index


def downcast_VectorTransform(transform):
    """Like downcast_index: transforms already come out as their own class
    (OPQMatrix, NormalizationTransform, ...)."""
    return transform


def vector_to_array(v):
    """faiss's std::vector -> numpy copy; nearly already exposes numpy arrays."""
    if isinstance(v, _Vector):
        return v._data[: v._n].copy()
    if type(v).__name__.startswith("AlignedTable"):
        return v.get().copy()
    return np.array(v, copy=True)


class _Vector:
    """faiss's typed std::vector wrappers (Float32Vector, Int64Vector, ...):
    push_back, size, at, resize, clear; numpy sees the values."""

    dtype = None

    def __init__(self):
        self._data = np.empty(4, dtype=self.dtype)
        self._n = 0

    def _reserve(self, n):
        if n > len(self._data):
            grown = np.empty(max(n, 2 * len(self._data)), dtype=self.dtype)
            grown[: self._n] = self._data[: self._n]
            self._data = grown

    def push_back(self, value):
        self._reserve(self._n + 1)
        self._data[self._n] = value
        self._n += 1

    def resize(self, n):
        self._reserve(int(n))
        if n > self._n:
            self._data[self._n:n] = 0
        self._n = int(n)

    def assign(self, values):
        values = np.asarray(values, dtype=self.dtype).ravel()
        self.resize(len(values))
        self._data[: self._n] = values

    def at(self, i):
        if not 0 <= i < self._n:
            raise IndexError(f"vector index {i} out of range (size {self._n})")
        return self._data[i].item()

    def size(self):
        return self._n

    def empty(self):
        return self._n == 0

    def clear(self):
        self._n = 0

    def swap(self, other):
        """Exchanges the contents of two vectors of the same type."""
        if type(other) is not type(self):
            raise TypeError(f"swap: a {type(self).__name__} with a {type(other).__name__}")
        self._data, other._data = other._data, self._data
        self._n, other._n = other._n, self._n

    def __len__(self):
        return self._n

    def __getitem__(self, i):
        return self._data[: self._n][i]

    def __iter__(self):
        return iter(self._data[: self._n].tolist())

    def __array__(self, dtype=None, copy=None):
        out = self._data[: self._n].copy()
        return out if dtype is None else out.astype(dtype)

    def __repr__(self):
        return f"<nearly.{type(self).__name__} size={self._n}>"


class ObjectVector(list):
    """A list that also answers faiss's std::vector calls (size, at,
    push_back, clear, resize): faiss code walks such attributes
    (OperatingPoints.optimal_pts, ...) as `v.at(i) for i in range(v.size())`."""

    def size(self):
        return len(self)

    def at(self, i):
        if not 0 <= i < len(self):
            raise IndexError(f"vector index {i} out of range (size {len(self)})")
        return self[i]

    def push_back(self, item):
        self.append(item)

    def empty(self):
        return not self


def _vector_class(name, dtype):
    return type(name, (_Vector,), {"dtype": np.dtype(dtype), "__doc__": f"faiss's {name}: a growable {dtype} vector."})


Float32Vector = _vector_class("Float32Vector", "float32")
Float64Vector = _vector_class("Float64Vector", "float64")
Int8Vector = _vector_class("Int8Vector", "int8")
Int16Vector = _vector_class("Int16Vector", "int16")
Int32Vector = _vector_class("Int32Vector", "int32")
Int64Vector = _vector_class("Int64Vector", "int64")
UInt8Vector = _vector_class("UInt8Vector", "uint8")
UInt16Vector = _vector_class("UInt16Vector", "uint16")
UInt32Vector = _vector_class("UInt32Vector", "uint32")
UInt64Vector = _vector_class("UInt64Vector", "uint64")
LongVector = _vector_class("LongVector", "int64")
IDXVector = Int64Vector

# Attributes that faiss exposes as std::vectors inside an object come out of
# nearly as numpy copies. copy_array_to_vector(a, obj.attr) is how faiss code
# fills them, so such a copy remembers where it came from (while it lives) and
# the copy goes back through the attribute's setter: never a silent no-op.
_ORIGINS = {}


def _remember_origin(array, owner, name):
    key = id(array)
    _ORIGINS[key] = (weakref.ref(array, lambda _ref, key=key: _ORIGINS.pop(key, None)), owner, name)
    return array


def _origin_of(array):
    entry = _ORIGINS.get(id(array))
    if entry is None or entry[0]() is not array:
        return None
    return entry[1], entry[2]


def _track_vector_attribute(cls, name):
    prop = cls.__dict__[name]
    getter, setter = prop.fget, prop.fset
    setattr(cls, name, property(lambda self: _remember_origin(getter(self), self, name), setter, doc=prop.__doc__))


def copy_array_to_vector(a, v):
    """faiss.copy_array_to_vector: fills v with the values of a. v is one of
    the typed vectors, or an attribute read from a nearly object (lt.A,
    pq.centroids, clus.centroids, ...), which is then set on that object."""
    a = np.asarray(a)
    if a.ndim != 1:
        raise AssertionError(f"copy_array_to_vector: a must be 1-D, got shape {a.shape}")
    if isinstance(v, _Vector):
        v.assign(a)
        return
    origin = _origin_of(v) if isinstance(v, np.ndarray) else None
    if origin is None:
        raise TypeError("copy_array_to_vector: v must be a nearly vector (Float32Vector, ...) or an attribute of a "
                        f"nearly object read just before (got {type(v).__name__}); to replace an attribute, assign it")
    owner, name = origin
    setattr(owner, name, a.reshape(v.shape) if a.size == v.size else a)
    if a.size == v.size:
        np.copyto(v, a.reshape(v.shape), casting="unsafe")


def swig_ptr(a):
    """faiss.swig_ptr: hands an array's memory to a C++ call. nearly's calls
    take arrays, so the "pointer" is the array itself (no copy): code such as
    IDSelectorBatch(n, swig_ptr(ids)) or rev_swig_ptr(swig_ptr(x), n) runs
    unchanged."""
    if not isinstance(a, np.ndarray):
        raise ValueError("input not a numpy array")
    if not a.flags.c_contiguous:
        raise ValueError("array is not C-contiguous")
    return a


def imbalance_factor(*args):
    """faiss.imbalance_factor(n, k, assign) or (k, hist): k * sum(size^2) / n^2,
    1 for perfectly balanced clusters."""
    if len(args) == 3:
        n, k, assign = int(args[0]), int(args[1]), np.asarray(args[2]).ravel()
        if n > assign.size:
            raise ValueError(f"imbalance_factor: n = {n} but assign holds {assign.size} values")
        assign = assign[:n]
        if n and (assign.min() < 0 or assign.max() >= k):
            raise ValueError(f"imbalance_factor: assignments must be in [0, {k})")
        hist = np.bincount(assign, minlength=k)
    elif len(args) == 2:
        k, hist = int(args[0]), np.asarray(args[1]).ravel()[: int(args[0])]
    else:
        raise TypeError("imbalance_factor(n, k, assign) or imbalance_factor(k, hist)")
    total = float(hist.sum())
    return float(k * np.square(hist.astype(np.float64)).sum() / (total * total)) if total else 0.0


def merge_knn_results(Dall, Iall, keep_max=False):
    """faiss.merge_knn_results: the k best of nshard sorted result lists per
    query. Dall, Iall are (nshard, n, k); a shard's list ends at its first
    id -1. Ties go to the lower shard (keep_max: the higher one), as faiss's
    heap merge orders them; missing results are -1 with the worst distance."""
    Dall, Iall = np.asarray(Dall), np.asarray(Iall)
    if Dall.shape != Iall.shape or Dall.ndim != 3:
        raise AssertionError(f"merge_knn_results: Dall and Iall must both be (nshard, n, k), got {Dall.shape} and "
                             f"{Iall.shape}")
    nshard, n, k = Dall.shape
    if Dall.dtype.kind == "f":
        worst = -np.finfo(Dall.dtype).max if keep_max else np.finfo(Dall.dtype).max
    else:
        worst = np.iinfo(Dall.dtype).min if keep_max else np.iinfo(Dall.dtype).max
    if k == 0 or nshard == 0:
        return np.full((n, k), worst, dtype=Dall.dtype), np.full((n, k), -1, dtype=Iall.dtype)
    live = np.cumprod(Iall >= 0, axis=2).astype(bool)  # up to each shard's first -1
    # (n, nshard * k) candidates, ordered by: live first, value, shard, position
    D = Dall.transpose(1, 0, 2).reshape(n, nshard * k)
    I = Iall.transpose(1, 0, 2).reshape(n, nshard * k)
    alive = live.transpose(1, 0, 2).reshape(n, nshard * k)
    shard = np.repeat(np.arange(nshard), k)
    pos = np.tile(np.arange(k), nshard)
    value = D.astype(np.float64)
    order = np.lexsort((np.broadcast_to(pos, D.shape), np.broadcast_to(-shard if keep_max else shard, D.shape),
                        -value if keep_max else value, ~alive), axis=-1)[:, :k]
    Dout = np.take_along_axis(D, order, axis=1).copy()
    Iout = np.take_along_axis(I, order, axis=1).copy()
    missing = ~np.take_along_axis(alive, order, axis=1)
    Dout[missing] = worst
    Iout[missing] = -1
    return Dout, Iout


def check_compatible_for_merge(index1, index2):
    """faiss's IVFlib check: the IVF indexes inside the two (through IDMap,
    pre-transforms, refine) can be merged; raises otherwise."""
    if isinstance(index1, _nearly.IndexPreTransform) != isinstance(index2, _nearly.IndexPreTransform):
        raise RuntimeError("check_compatible_for_merge: only one of the two indexes has a pre-transform")
    extract_index_ivf(index1).check_compatible_for_merge(extract_index_ivf(index2))


def get_mem_usage_kb():
    """The process's resident memory in kB (faiss's get_mem_usage_kb)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def is_similarity_metric(metric_type):
    """True where larger is closer (inner product, Jaccard), as in faiss."""
    return int(metric_type) in (_nearly.METRIC_INNER_PRODUCT, _nearly.METRIC_Jaccard)


# faiss's typed spellings of the same copy
vector_float_to_array = vector_to_array


def extract_index_ivf(index):
    """The IVF index inside wrappers (IDMap, PreTransform, RefineFlat), like
    faiss's; RuntimeError when there is none."""
    seen = index
    while True:
        if hasattr(seen, "nprobe") and hasattr(seen, "quantizer"):
            return seen
        inner = getattr(seen, "base_index", None) or getattr(seen, "index", None) or getattr(seen, "index_ivf", None)
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
_nearly.IndexBinaryIVF.set_direct_map_type = _set_direct_map_type


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


# faiss's SIMDLevel values; nearly has one level per instruction set, so the
# AVX-512 variants faiss splits out (SPR, VPOPCNT) are never available here.
SIMDLevel_NONE, SIMDLevel_AVX2, SIMDLevel_AVX512, SIMDLevel_AVX512_SPR = 0, 1, 2, 3
SIMDLevel_ARM_NEON, SIMDLevel_ARM_SVE, SIMDLevel_RISCV_RVV, SIMDLevel_AVX512_VPOPCNT = 4, 5, 6, 7
SIMDLevel_COUNT = 8
_LEVEL_BY_NAME = {"scalar": SIMDLevel_NONE, "avx2": SIMDLevel_AVX2, "avx512": SIMDLevel_AVX512,
                  "neon": SIMDLevel_ARM_NEON}
_NAME_BY_LEVEL = {v: k for k, v in _LEVEL_BY_NAME.items()}
_FAISS_LEVEL_NAMES = ["NONE", "AVX2", "AVX512", "AVX512_SPR", "ARM_NEON", "ARM_SVE", "RISCV_RVV",
                      "AVX512_VPOPCNT"]


class SIMDConfig:
    """faiss.SIMDConfig over nearly's runtime dispatch (NEARLY_SIMD sets the
    level at import; set_level changes it for every index at once)."""

    @staticmethod
    def get_level():
        return _LEVEL_BY_NAME[_nearly.simd_level()]

    get_dispatched_level = get_level

    @staticmethod
    def get_level_name():
        return _FAISS_LEVEL_NAMES[SIMDConfig.get_level()]

    @staticmethod
    def auto_detect_simd_level():
        return _LEVEL_BY_NAME[_nearly.simd_levels_supported()[-1]]

    @staticmethod
    def has_dynamic_dispatch():
        return True

    @staticmethod
    def is_simd_level_available(level):
        return _NAME_BY_LEVEL.get(level) in _nearly.simd_levels_supported()

    @staticmethod
    def set_level(level):
        if not SIMDConfig.is_simd_level_available(level):
            name = _FAISS_LEVEL_NAMES[level] if 0 <= level < len(_FAISS_LEVEL_NAMES) else str(level)
            raise RuntimeError(f"SIMDConfig::set_level: level {name} is not available")
        _nearly.set_simd_level(_NAME_BY_LEVEL[level])

    supported_simd_levels = staticmethod(
        lambda: [_LEVEL_BY_NAME[n] for n in _nearly.simd_levels_supported()])


def clone_index(index):
    """A deep copy (faiss's clone_index), made by a round trip through the
    serialized form, so every index type that persists can be cloned."""
    from .persistence import deserialize_index, serialize_index

    from .graph_storage import GraphStorage

    if isinstance(index, _nearly.IndexBinary):
        return clone_binary_index(index)
    if isinstance(index, GraphStorage):  # a graph index's storage: its vectors as an IndexFlat
        return index._as_flat()
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


def rand_smooth_vectors(n, d, seed=1234):
    """faiss.rand_smooth_vectors: (n, d) float32 vectors on a smooth 10-d
    manifold (sines of a random projection of normal draws), faiss's draws
    for the same seed (equal to float32 rounding: faiss sums with sgemm)."""
    n, d, d1 = int(n), int(d), 10
    x1 = randn(n * d1, seed).reshape(n, d1)
    rot = rand(d1 * d, seed + 1).reshape(d1, d)  # faiss's column-major d x d1
    scales = rand(d, seed + 2)
    return np.sin((x1 @ rot) * (scales * 4 + 0.1)).astype(np.float32)


def pointer_view(ptr, n, dtypes, what, writeable=False):
    """The first n values of an array that swig_ptr handed over (faiss's
    pointer-style calls), checked where faiss would read or write past it:
    a contiguous numpy array of one of dtypes (None: any), writeable when
    it is written to, of n values or more."""
    if not isinstance(ptr, np.ndarray) or not ptr.flags.c_contiguous:
        raise TypeError(f"{what}: a contiguous numpy array (swig_ptr(a)) expected, got {type(ptr).__name__}")
    if dtypes is not None and ptr.dtype not in [np.dtype(t) for t in dtypes]:
        names = " or ".join(np.dtype(t).name for t in dtypes)
        raise TypeError(f"{what}: {names} expected, got {ptr.dtype}")
    if writeable and not ptr.flags.writeable:
        raise TypeError(f"{what}: the array must be writeable (it is read-only)")
    flat = ptr.reshape(-1)
    n = int(n)
    if n < 0 or flat.size < n:
        raise ValueError(f"{what}: {n} values needed, the array holds {flat.size}")
    return flat[:n]


def _fill(x, n, what, arg="x"):
    """The first n values of x, which swig_ptr handed over (pointer-style calls)."""
    flat = np.asarray(x).reshape(-1)
    if not isinstance(x, np.ndarray) or not x.flags.c_contiguous or n > flat.size:
        raise ValueError(f"{what}: {arg} must be a contiguous array of at least {n} values")
    return flat[:n]


def float_rand(x, n, seed):
    """faiss.float_rand(swig_ptr(x), n, seed): fills x with rand(n, seed)."""
    _fill(x, int(n), "float_rand")[:] = rand(int(n), seed)


def float_randn(x, n, seed):
    """faiss.float_randn(swig_ptr(x), n, seed): fills x with randn(n, seed)."""
    _fill(x, int(n), "float_randn")[:] = randn(int(n), seed)


def popcount64(x):
    """faiss.popcount64: the number of 1 bits of a 64-bit word (a negative
    Python int counts as its two's complement, as a C uint64_t would)."""
    return bin(int(x) & 0xFFFFFFFFFFFFFFFF).count("1")


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
    """faiss.cvar: the library's global variables. indexIVF_stats, indexPQ_stats,
    hnsw_stats, indexBinaryHash_stats and indexPanorama_stats are the live counter objects: read
    their fields after searches, reset() them between measurements."""

    @property
    def indexIVF_stats(self):
        return _nearly._indexIVF_stats()

    @property
    def indexPQ_stats(self):
        return _nearly._indexPQ_stats()

    @property
    def hnsw_stats(self):
        return _nearly._hnsw_stats()

    @property
    def indexBinaryHash_stats(self):
        return _nearly._indexBinaryHash_stats()

    @property
    def indexPanorama_stats(self):
        return _nearly._indexPanorama_stats()

    bucket_sort_verbose = 0  # faiss's switch for bucket_sort's timings; nearly prints none

    def __repr__(self):
        return "<nearly.cvar: indexIVF_stats, indexPQ_stats, hnsw_stats, indexBinaryHash_stats, indexPanorama_stats>"


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
    qparams = getattr(params, "quantizer_params", None)
    Dq, Iq = index.quantizer.search(x, nprobe, params=qparams) if qparams is not None else index.quantizer.search(x, nprobe)
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


for _cls, _name in [(_nearly.LinearTransform, "A"), (_nearly.LinearTransform, "b"),
                    (_nearly.ProductQuantizer, "centroids"), (_nearly.Clustering, "centroids"),
                    (_nearly.ScalarQuantizer, "trained"), (_nearly.ResidualQuantizer, "codebooks")]:
    _track_vector_attribute(_cls, _name)


_HNSW_CLASSES = tuple(getattr(_nearly, n) for n in ("IndexHNSWFlat", "IndexHNSWSQ", "IndexHNSWSQCodes", "IndexHNSWPQ",
                                                    "IndexHNSWOnStorage", "IndexHNSW2Level") if hasattr(_nearly, n))


class _IndexHNSWType(type):
    """faiss's IndexHNSW base class: isinstance holds for every HNSW index."""

    def __instancecheck__(cls, obj):
        return isinstance(obj, _HNSW_CLASSES)

    def __subclasscheck__(cls, sub):
        return issubclass(sub, _HNSW_CLASSES)

    def __call__(cls, storage, M=32):
        # faiss's IndexHNSW(storage, M). Over an empty Flat storage it is
        # IndexHNSWFlat (the vectors in the graph's nodes, an int8 walk);
        # over any other index, a graph scored by that index's distance
        # computer (IndexHNSWOnStorage, hnsw_on_storage.h).
        if isinstance(storage, _nearly.IndexFlat) and storage.ntotal == 0:
            return _nearly.IndexHNSWFlat(storage.d, M, storage.metric_type)
        if not isinstance(storage, _nearly.Index):
            raise TypeError(f"IndexHNSW(storage, M): storage must be an index, got {type(storage).__name__}")
        return _nearly.IndexHNSWOnStorage(storage, M)


class IndexHNSW(metaclass=_IndexHNSWType):
    """faiss's IndexHNSW: the common base of the HNSW indexes (for isinstance);
    IndexHNSW(IndexFlat(d), M) builds an IndexHNSWFlat, IndexHNSW(storage, M)
    over any other index an IndexHNSWOnStorage."""


# faiss's IndexFlatCodes.get_FlatCodesDistanceComputer: the same computer
# (it scores codes with the family's own tables / kernels).
for _name in ("IndexFlat", "IndexPQ", "IndexScalarQuantizer", "IndexResidualQuantizer"):
    getattr(_nearly, _name).get_FlatCodesDistanceComputer = _nearly.Index.get_distance_computer

_FLAT_CODES_CLASSES = tuple(getattr(_nearly, n) for n in ("IndexFlat", "IndexPQ", "IndexScalarQuantizer",
                                                          "IndexResidualQuantizer", "IndexLSH", "IndexRaBitQ",
                                                          "IndexLattice"))
# faiss derives its fast-scan indexes from IndexFastScan, not IndexFlatCodes.
_FAST_SCAN_CLASSES = tuple(getattr(_nearly, n) for n in ("IndexPQFastScan", "IndexRaBitQFastScan"))


class _IndexFlatCodesType(type):
    """faiss's IndexFlatCodes base class (one code of code_size bytes per
    vector, in order): isinstance holds for the same nearly classes."""

    def __instancecheck__(cls, obj):
        return isinstance(obj, _FLAT_CODES_CLASSES) and not isinstance(obj, _FAST_SCAN_CLASSES)

    def __subclasscheck__(cls, sub):
        return issubclass(sub, _FLAT_CODES_CLASSES) and not issubclass(sub, _FAST_SCAN_CLASSES)

    def __call__(cls, *args, **kwargs):
        raise TypeError("IndexFlatCodes is an abstract base class (use IndexFlat, IndexPQ, IndexScalarQuantizer, ...)")


class IndexFlatCodes(metaclass=_IndexFlatCodesType):
    """faiss's IndexFlatCodes: the common base of the flat code indexes (for
    isinstance): Flat, PQ, ScalarQuantizer, ResidualQuantizer, LSH, RaBitQ."""


class _SwigOwnership:
    """faiss's `obj.this` (SWIG's ownership handle). nearly's objects are
    reference-counted: an index handed to another one is kept alive by it,
    so faiss's idioms `sub.this.disown()` / `obj.this.own(False)` change
    nothing and `own()` reads True."""

    __slots__ = ()

    def own(self, value=None):
        return True

    def disown(self):
        pass

    def acquire(self):
        pass


_OWNERSHIP = _SwigOwnership()
for _cls in vars(_nearly).values():
    if isinstance(_cls, type) and _cls.__module__.startswith("nearly") and not hasattr(_cls, "this"):
        try:
            _cls.this = property(lambda self: _OWNERSHIP)
        except (TypeError, AttributeError):  # enum-like or immutable types
            pass


def _ownership_flag(name):
    """faiss's own_fields / own_invlists / own_refine_index: whether an index
    deletes its parts with itself. nearly's parts are reference-counted (a
    quantizer lives while anything holds it), so the flag reads True and
    setting it, which faiss code does to avoid a double free or an early
    one, changes nothing."""
    def set_flag(self, value):
        if not isinstance(value, (bool, int)):
            raise TypeError(f"{name} must be a bool")
    return property(lambda self: True, set_flag, doc=_ownership_flag.__doc__)


for _cls, _names in ((_nearly.Index, ("own_fields",)), (_nearly.IndexBinary, ("own_fields",)),
                     (_nearly.IndexIVF, ("own_invlists",)), (_nearly.IndexBinaryIVF, ("own_invlists",)),
                     (_nearly.IndexRefine, ("own_refine_index",))):
    for _name in _names:
        setattr(_cls, _name, _ownership_flag(_name))


def bitvec_shuffle(n, da, db, order, a, b):
    """faiss's bitvec_shuffle: for each of n rows of da bits in a, row i of b
    (db bits, db % 8 == 0) takes bit order[j] of a's row as its bit j (bits
    numbered least significant first within each byte). b is written in place."""
    n, da, db = int(n), int(da), int(db)
    order = np.asarray(order).ravel()
    a = np.asarray(a, dtype=np.uint8).reshape(-1)
    if db % 8 or da % 8 or order.size < db or a.size < n * da // 8:
        raise ValueError("bitvec_shuffle: da and db must be multiples of 8, order hold db entries, a n * da / 8 bytes")
    if not isinstance(b, np.ndarray) or b.dtype != np.uint8 or b.size < n * db // 8 or not b.flags.c_contiguous:
        raise ValueError("bitvec_shuffle: b must be a contiguous uint8 array of n * db / 8 bytes (written in place)")
    order = order[:db].astype(np.int64)
    if order.size and (order.min() < 0 or order.max() >= da):
        raise ValueError(f"bitvec_shuffle: order entries must be in 0..{da - 1}")
    bits = np.unpackbits(a[:n * da // 8].reshape(n, da // 8), axis=1, bitorder="little")
    b.reshape(-1)[:n * db // 8] = np.packbits(bits[:, order], axis=1, bitorder="little").ravel()


# Writing index.codes (contrib's big_batch_search: copy_array_to_vector(xb,
# index.codes)) replaces the stored codes; ntotal follows them.
def _with_codes_setter(cls, set_codes):
    prop = cls.__dict__["codes"]
    setattr(cls, "codes", property(prop.fget, set_codes, doc=prop.__doc__))
    _track_vector_attribute(cls, "codes")


def _set_flat_vectors(index, data):
    a = np.ascontiguousarray(data)
    if a.dtype != np.float32:
        a = a.view(np.float32) if a.dtype == np.uint8 else a.astype(np.float32)
    index.reset()
    index.add(a.reshape(-1, index.d))


_with_codes_setter(_nearly.IndexFlat, _set_flat_vectors)
_with_codes_setter(_nearly.IndexPQ, lambda index, data: index._set_codes(data))
_with_codes_setter(_nearly.IndexScalarQuantizer, lambda index, data: index._set_codes(data))


def _set_ntotal(index, value):
    """faiss code sets ntotal by hand after writing index.codes; in nearly
    ntotal follows the stored vectors, so only that value is accepted. One
    more: faiss's merge_ondisk sets an empty IVF index's ntotal to what the
    lists it then gives replace_invlists hold; the value is kept and checked
    by replace_invlists, which brings it."""
    if int(value) == index.ntotal:
        return
    try:
        ivf = extract_index_ivf(index)
    except RuntimeError:
        ivf = None
    if (isinstance(ivf, _nearly.IndexIVF) and ivf.ntotal == 0 and index.ntotal == 0 and int(value) > 0
            and isinstance(index, (_nearly.IndexIVF, _nearly.IndexPreTransform))):
        ivf._announced_ntotal = int(value)
        if index is not ivf:
            _ntotal_followers.setdefault(ivf, []).append(weakref.ref(index))
        return
    raise ValueError(f"ntotal follows the stored vectors ({index.ntotal}); write index.codes (or add) "
                         f"to change them, not ntotal (asked {int(value)})")


_nearly.Index.ntotal = property(_nearly.Index.ntotal.fget, _set_ntotal, doc="The number of stored vectors.")


def _pre_transform_ntotal(index):
    """An IndexPreTransform counts its inner index's vectors, also when they
    changed behind its back (replace_invlists, set_invlist_range on the
    inner IVF index)."""
    n = _nearly.Index.ntotal.fget(index)
    if n != index.index.ntotal:
        index._refresh_from_inner()
        n = _nearly.Index.ntotal.fget(index)
    return n


_nearly.IndexPreTransform.ntotal = property(_pre_transform_ntotal, _set_ntotal, doc=_pre_transform_ntotal.__doc__)
# The wrappers (IndexPreTransform) whose ntotal was set with their IVF
# index's: replace_invlists tells them the new count.
_ntotal_followers = weakref.WeakKeyDictionary()
_replace_invlists = _nearly.IndexIVF.replace_invlists


def _replace_invlists_and_tell(self, il, own=False):
    from .meta_invlists import replace_invlists  # the meta lists read compat's helpers
    replace_invlists(self, il, own, _replace_invlists)
    for ref in _ntotal_followers.pop(self, []):
        wrapper = ref()
        if wrapper is not None:
            wrapper._refresh_from_inner()


_replace_invlists_and_tell.__doc__ = _replace_invlists.__doc__
_nearly.IndexIVF.replace_invlists = _replace_invlists_and_tell


def bucket_sort(tab, nbucket=None, nt=0):
    """faiss's bucket_sort: (lims, perm), perm[lims[i]:lims[i + 1]] the
    positions of tab holding i, in increasing order (nt is accepted: numpy
    sorts on one thread)."""
    tab = np.ascontiguousarray(tab, dtype=np.int64).ravel()
    if nbucket is None:
        nbucket = int(tab.max()) + 1 if tab.size else 0
    if tab.size and (tab.min() < 0 or tab.max() >= nbucket):
        raise ValueError(f"bucket_sort: values must be in 0..{nbucket - 1}")
    lims = np.zeros(nbucket + 1, dtype=np.int64)
    np.cumsum(np.bincount(tab, minlength=nbucket), out=lims[1:])
    return lims, np.argsort(tab, kind="stable").astype(np.int64)


def matrix_bucket_sort_inplace(tab, nbucket=None, nt=0):
    """faiss's matrix_bucket_sort_inplace: tab (nrow, ncol) of bucket ids is
    overwritten so that tab.ravel()[lims[i]:lims[i + 1]] holds the rows of
    the entries of bucket i; returns lims."""
    if not isinstance(tab, np.ndarray) or tab.dtype not in (np.int32, np.int64) or tab.ndim != 2 \
            or not tab.flags.c_contiguous:
        raise AssertionError("matrix_bucket_sort_inplace: tab must be a C-contiguous 2-D int32 or int64 array")
    nrow, ncol = tab.shape
    lims, perm = bucket_sort(tab, nbucket, nt)
    tab.ravel()[:] = perm // ncol if ncol else perm
    return lims


# faiss's InvertedLists idioms of contrib's inspect_tools.get_invlist: the
# lists come back as numpy arrays, so releasing them is a no-op and
# faiss.memcpy copies between arrays.
_nearly.InvertedLists.release_ids = lambda self, list_no, ids: None
_nearly.InvertedLists.release_codes = lambda self, list_no, codes: None


class _ListVectors:
    """faiss's ArrayInvertedLists.codes / .ids (one vector per list):
    il.codes.at(l) is list l's codes as a numpy array (a copy)."""

    def __init__(self, lists, get):
        self._lists, self._get = lists, get

    def size(self):
        return self._lists.nlist

    __len__ = size

    def at(self, list_no):
        list_no = int(list_no)
        if not 0 <= list_no < self._lists.nlist:
            raise IndexError(f"list {list_no} out of range [0, {self._lists.nlist})")
        return self._get(self._lists, list_no)

    __getitem__ = at

    def __iter__(self):
        return (self.at(l) for l in range(self.size()))


_nearly.InvertedLists.codes = property(lambda self: _ListVectors(self, _nearly.InvertedLists.get_codes),
                                       doc="Per list, its codes (faiss's vector of vectors; copies).")
_nearly.InvertedLists.ids = property(lambda self: _ListVectors(self, _nearly.InvertedLists.get_ids),
                                     doc="Per list, its ids (faiss's vector of vectors; copies).")


def downcast_InvertedLists(invlists):
    """faiss's downcast_InvertedLists: index.invlists is already of its own
    class (ArrayInvertedLists, BlockInvertedLists for fast-scan,
    OnDiskInvertedLists for lists in a file)."""
    return invlists


def MaybeOwnedVectorUInt8(v):
    """faiss's MaybeOwnedVectorUInt8(vector): the bytes, copied (what
    `index_pq.codes = MaybeOwnedVectorUInt8(il.codes.at(0))` writes)."""
    return np.array(v, dtype=np.uint8).ravel()


# faiss's IndexIVFFastScan.orig_invlists / reconstruct_orig_invlists(): an
# ArrayInvertedLists the user sets, filled with the index's codes one after
# the other (the layout of the non-fast-scan family of the same codes).
_orig_invlists = weakref.WeakKeyDictionary()


def _set_orig_invlists(index, il):
    if il is not None and not isinstance(il, _nearly.InvertedLists):
        raise TypeError("orig_invlists must be an ArrayInvertedLists (or None)")
    _orig_invlists[index] = il


def _reconstruct_orig_invlists(index):
    il = _orig_invlists.get(index)
    if il is None:
        raise RuntimeError("reconstruct_orig_invlists: set index.orig_invlists = ArrayInvertedLists(nlist, "
                           "code_size) first")
    if il.nlist != index.nlist or il.code_size != index.code_size:
        raise ValueError(f"reconstruct_orig_invlists: orig_invlists must have nlist = {index.nlist} and "
                         f"code_size = {index.code_size} (got {il.nlist}, {il.code_size})")
    if il.compute_ntotal() != 0:
        raise ValueError("reconstruct_orig_invlists: orig_invlists must be empty")
    lists = index.invlists
    for l in range(index.nlist):
        ids = lists.get_ids(l)
        if ids.size:
            il.add_entries(l, ids.size, ids, lists._entry_codes(l))


def _with_orig_invlists(cls):
    cls.orig_invlists = property(lambda self: _orig_invlists.get(self), _set_orig_invlists,
                                 doc="faiss's orig_invlists: filled by reconstruct_orig_invlists().")
    cls.reconstruct_orig_invlists = _reconstruct_orig_invlists


for _cls in (_nearly.IndexIVFPQFastScan, _nearly.IndexIVFResidualQuantizerFastScan, _nearly.IndexIVFRaBitQFastScan):
    _with_orig_invlists(_cls)


class InvertedListsPtrVector(list):
    """faiss's InvertedListsPtrVector (what merge_ondisk hands to
    merge_from_multiple): a list of inverted lists; data() is the list itself."""

    def push_back(self, il):
        self.append(il)

    def size(self):
        return len(self)

    def at(self, i):
        return self[i]

    def data(self):
        return self


def memcpy(dst, src, nbytes):
    """faiss.memcpy(dst, src, nbytes) between arrays (swig_ptr gives the array
    itself, and nearly's pointers are arrays): the first nbytes of src's
    bytes into dst's."""
    if not isinstance(dst, np.ndarray) or not isinstance(src, np.ndarray):
        raise TypeError("memcpy: dst and src must be numpy arrays (swig_ptr(a) or an array nearly returned)")
    nbytes = int(nbytes)
    if nbytes < 0 or nbytes > dst.nbytes or nbytes > src.nbytes or not dst.flags.c_contiguous:
        raise ValueError(f"memcpy: {nbytes} bytes do not fit (dst {dst.nbytes}, src {src.nbytes}, dst contiguous)")
    dst.reshape(-1).view(np.uint8)[:nbytes] = np.ascontiguousarray(src).reshape(-1).view(np.uint8)[:nbytes]


def downcast_AdditiveQuantizer(aq):
    """Like downcast_index: quantizers already come out as their own class."""
    return aq


def downcast_Quantizer(q):
    """faiss's downcast_Quantizer (any Quantizer to its class): nearly's
    quantizers (PQ, SQ, RQ, LSQ, RaBitQ) already come out as their own class."""
    return q


def IndexAdditiveQuantizerFastScan(index, bbs=32):
    """faiss's conversion of a 4-bit additive-quantizer index to fast-scan:
    an IndexResidualQuantizer (nearly's only additive quantizer) becomes an
    IndexResidualQuantizerFastScan with the same quantizer and codes."""
    if not isinstance(index, _nearly.IndexResidualQuantizer) or isinstance(index, _nearly.IndexResidualQuantizerFastScan):
        raise RuntimeError(f"IndexAdditiveQuantizerFastScan: not implemented in nearly for a {type(index).__name__} "
                           "(an IndexResidualQuantizer with 4-bit codebooks is)")
    return _nearly.IndexResidualQuantizerFastScan(index, bbs)


class _AdditiveQuantizerType(type):
    """faiss's AdditiveQuantizer base class: isinstance holds for nearly's
    additive quantizer (ResidualQuantizer)."""

    def __instancecheck__(cls, obj):
        return isinstance(obj, _nearly.ResidualQuantizer)

    def __subclasscheck__(cls, sub):
        return issubclass(sub, _nearly.ResidualQuantizer)

    def __call__(cls, *args, **kwargs):
        raise TypeError("AdditiveQuantizer is an abstract base class (use ResidualQuantizer)")


class AdditiveQuantizer(metaclass=_AdditiveQuantizerType):
    """faiss's AdditiveQuantizer: the base of the additive quantizers (for
    isinstance) and the home of the search-type constants (ST_*)."""


for _name in dir(_nearly.ResidualQuantizer):
    if _name.startswith("ST_"):
        setattr(AdditiveQuantizer, _name, getattr(_nearly.ResidualQuantizer, _name))


# faiss's AdditiveQuantizer.nbits / codebook_offsets are std::vectors that
# its code walks with .at(m) / .size(): lists that also answer those.
for _attr in ("nbits", "codebook_offsets"):
    _prop = getattr(_nearly.ResidualQuantizer, _attr)
    setattr(_nearly.ResidualQuantizer, _attr,
            property(lambda q, _get=_prop.fget: ObjectVector(_get(q)), doc=_prop.__doc__))


def _as_float32_vector(a):
    v = Float32Vector()
    v.assign(a)
    return v


# Its float tables are std::vector<float>s too (.size(), vector_to_array).
for _attr in ("centroid_norms", "codebook_cross_products"):
    _prop = getattr(_nearly.ResidualQuantizer, _attr)
    setattr(_nearly.ResidualQuantizer, _attr,
            property(lambda q, _get=_prop.fget: _as_float32_vector(_get(q)), doc=_prop.__doc__))


def beam_search_encode_step(d, K, cent, n, beam_size, residuals, m, codes, new_beam_size, new_codes,
                            new_residuals, new_distances, assign_index=None, approx_topk_mode=None):
    """faiss's beam_search_encode_step: one codebook step of the residual
    quantizer's beam search. Each of n vectors has beam_size residuals (n x
    beam_size x d) and codes of m indexes; of the beam_size * K (residual -
    codeword of cent, K x d) the new_beam_size best are written, best first:
    new_codes (m + 1 indexes), new_residuals, new_distances (squared norms).
    With assign_index, the new_beam_size nearest codewords of each residual
    come from that index's search (the codewords are added to it when it is
    empty, as faiss does); approx_topk_mode is accepted for faiss's
    signature (the top-k is exact)."""
    if assign_index is None:
        return _nearly._beam_search_encode_step(d, K, cent, n, beam_size, residuals, m, codes, new_beam_size,
                                                new_codes, new_residuals, new_distances)
    if not (0 < new_beam_size <= beam_size * K):
        raise ValueError("beam_search_encode_step: new_beam_size must be in [1, beam_size * K]")
    cent = np.asarray(cent, dtype="float32").reshape(K, d)
    res = np.asarray(residuals, dtype="float32").reshape(n * beam_size, d)
    if assign_index.d != d:
        raise ValueError("beam_search_encode_step: assign_index has another dimension")
    if assign_index.ntotal == 0:
        assign_index.add(cent)
    elif assign_index.ntotal != K:
        raise ValueError("beam_search_encode_step: assign_index must hold the K codewords (or nothing)")
    kk = min(new_beam_size, K)
    D, I = assign_index.search(res, kk)
    D, I = D.reshape(n, beam_size * kk), I.reshape(n, beam_size * kk)
    order = np.argsort(D, axis=1, kind="stable")[:, :new_beam_size]
    rows = np.arange(n)[:, None]
    b, j = order // kk, I[rows, order]
    old = np.asarray(codes).reshape(n, beam_size, m)
    out_codes = new_codes.reshape(n, new_beam_size, m + 1)
    out_codes[:, :, :m] = old[rows, b]
    out_codes[:, :, m] = j
    new_residuals.reshape(n, new_beam_size, d)[:] = res.reshape(n, beam_size, d)[rows, b] - cent[j]
    new_distances.reshape(n, new_beam_size)[:] = D[rows, order]


# faiss's IndexHNSWFlatPanorama.cum_sums is a std::vector (tests call .size()).
_nearly.IndexHNSWFlatPanorama.cum_sums = property(
    lambda index: _as_float32_vector(index._cum_sums()),
    doc="A copy of the stored vectors' tail norms (pano.n_levels + 1 a vector) in the order of the ids (with "
        "removals: of the slots, as _ids()), as a Float32Vector.")


# ---- faiss's ProductQuantizer calls in pointer form, and its extras ----------


def _pq_table_method(name):
    native = getattr(_nearly.ProductQuantizer, name)

    def method(self, *args):
        if len(args) == 3:  # faiss's (n, swig_ptr(x), swig_ptr(tables)): fills tables
            n, x, out = int(args[0]), args[1], args[2]
            tab = native(self, _fill(x, n * self.d, name).reshape(n, self.d))
            _fill(out, tab.size, name, "tables")[:] = tab.ravel()
            return None
        return native(self, *args)

    method.__name__ = name
    method.__doc__ = (native.__doc__ or "") + "\nAlso faiss's (n, swig_ptr(x), swig_ptr(tables)) form, which fills tables."
    return method


for _name in ("compute_distance_tables", "compute_inner_prod_tables"):
    setattr(_nearly.ProductQuantizer, _name, _pq_table_method(_name))


def _pq_codes_with_assign_index(self, x, codes, n):
    """faiss's compute_codes_with_assign_index(swig_ptr(x), swig_ptr(codes), n):
    each subvector's code is its nearest centroid as found by pq.assign_index
    (an index of dimension dsub, given each subspace's centroids in turn, as
    faiss does), packed as compute_codes packs them."""
    index = self.__dict__.get("assign_index")
    if index is None or index.d != self.dsub:
        raise RuntimeError(f"compute_codes_with_assign_index: set pq.assign_index to an index of dimension {self.dsub}")
    n = int(n)
    xs = _fill(x, n * self.d, "compute_codes_with_assign_index").reshape(n, self.d)
    cent = self.centroids.reshape(self.M, self.ksub, self.dsub)
    assign = np.empty((n, self.M), dtype=np.int64)
    for m in range(self.M):
        index.reset()
        index.add(np.ascontiguousarray(cent[m]))
        assign[:, m] = index.search(np.ascontiguousarray(xs[:, m * self.dsub:(m + 1) * self.dsub]), 1)[1][:, 0]
    bits = ((assign[:, :, None] >> np.arange(self.nbits)) & 1).astype(np.uint8).reshape(n, self.M * self.nbits)
    bits = np.pad(bits, ((0, 0), (0, self.code_size * 8 - bits.shape[1])))
    _fill(codes, n * self.code_size, "compute_codes_with_assign_index", "codes")[:] = \
        np.packbits(bits, axis=1, bitorder="little").ravel()


def _pq_compute_sdc_table(self):
    """faiss's compute_sdc_table(): sdc_table[m, i, j] = squared L2 between
    centroids i and j of subspace m (M x ksub x ksub)."""
    cent = self.centroids.reshape(self.M, self.ksub, self.dsub).astype(np.float64)
    tab = np.empty((self.M, self.ksub, self.ksub), dtype=np.float32)
    for m in range(self.M):
        nrm = (cent[m] ** 2).sum(1)
        tab[m] = np.maximum(nrm[:, None] + nrm[None, :] - 2 * cent[m] @ cent[m].T, 0)
    v = Float32Vector()
    v.assign(tab)
    self.__dict__["_sdc_table"] = v


_nearly.ProductQuantizer.compute_codes_with_assign_index = _pq_codes_with_assign_index
_nearly.ProductQuantizer.compute_sdc_table = _pq_compute_sdc_table
_nearly.ProductQuantizer.sdc_table = property(
    lambda self: self.__dict__.get("_sdc_table", Float32Vector()),
    doc="The table compute_sdc_table() filled (empty before), a Float32Vector.")
_nearly.ProductQuantizer.clear_transposed_centroids = lambda self: None
_nearly.ProductQuantizer.clear_transposed_centroids.__doc__ = (
    "faiss frees its optional transposed centroid table here; nearly's PQ always encodes with its own (kept in "
    "sync with the centroids), so there is nothing to free and codes are the same either way.")


def _no_norm_cache(self):
    """faiss caches the vectors' squared norms for its L2 flat scans (HNSW
    storage); nearly's scans need no cache, so there is nothing to sync or
    clear: kept for code that calls them (results unchanged)."""


_nearly.IndexFlatL2.sync_l2norms = _no_norm_cache
_nearly.IndexFlatL2.clear_l2norms = _no_norm_cache


# faiss's search_preassigned(x, k, Iq, Dq, params=None, D=None, I=None):
# the results written into the caller's D and I; with the index's
# parallel_mode holding PARALLEL_MODE_NO_HEAP_INIT they are merged with what
# D and I already hold (faiss's way of scanning the lists a slice at a time
# into one ResultHeap: nearly's heaps are sorted arrays, best first).
_nearly.IndexIVF.PARALLEL_MODE_NO_HEAP_INIT = 1024
_search_preassigned = _nearly.IndexIVF.search_preassigned


def _search_preassigned_into(self, x, k, Iq, Dq=None, params=None, D=None, I=None, stats=None):
    Dr, Ir = _search_preassigned(self, x, k, Iq, Dq, params=params)
    if D is None and I is None:
        return Dr, Ir
    for name, out, dtype in (("D", D, np.float32), ("I", I, np.int64)):
        if not (isinstance(out, np.ndarray) and out.dtype == dtype and out.shape == Dr.shape
                and out.flags.c_contiguous and out.flags.writeable):
            raise ValueError(f"search_preassigned: {name} must be a writeable C-contiguous {np.dtype(dtype).name} "
                             f"array of shape {Dr.shape}")
    if self.parallel_mode & 1024:
        from .result_heap import best_k
        keep_max = self.metric_type == _nearly.METRIC_INNER_PRODUCT
        Dr, Ir = best_k(np.concatenate([D, Dr], axis=1), np.concatenate([I, Ir], axis=1), Dr.shape[1], keep_max)
    D[:], I[:] = Dr, Ir
    return D, I


_search_preassigned_into.__doc__ = _search_preassigned.__doc__
_nearly.IndexIVF.search_preassigned = _search_preassigned_into


def clone_Quantizer(quantizer):
    """faiss's clone_Quantizer: an independent copy of a ScalarQuantizer,
    ProductQuantizer, ResidualQuantizer (LSQ too) or RaBitQuantizer."""
    clone = getattr(quantizer, "_clone", None)
    if clone is None:
        raise RuntimeError(f"clone_Quantizer: not implemented for {type(quantizer).__name__}")
    return clone()


class CodeSet:
    """faiss's CodeSet(d): a set of codes of d bytes; insert(codes) adds
    them and says which were not in the set yet (the first of equal codes
    within the batch)."""

    def __init__(self, d):
        if int(d) < 1:
            raise ValueError("CodeSet: d must be positive")
        self.d = int(d)
        self._seen = set()

    def insert(self, codes, inserted=None):
        codes = np.ascontiguousarray(codes, dtype=np.uint8)
        if codes.ndim != 2 or codes.shape[1] != self.d:
            raise ValueError(f"CodeSet.insert: codes must be (n, {self.d}) uint8")
        out = np.zeros(len(codes), dtype=bool) if inserted is None else inserted
        if out.shape != (len(codes),):
            raise ValueError("CodeSet.insert: inserted must hold n booleans")
        for i, row in enumerate(codes):
            key = row.tobytes()
            out[i] = key not in self._seen
            self._seen.add(key)
        return out

    def __len__(self):
        return len(self._seen)
