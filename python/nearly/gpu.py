"""faiss's GPU API on nearly's CUDA kernels.

``StandardGpuResources``, ``GpuIndexFlat(L2|IP)``, ``index_cpu_to_gpu``,
``index_gpu_to_cpu``, ``index_cpu_to_all_gpus``, ``knn_gpu``: the names and
signatures faiss's users call. Multi-vector search too: ``GpuIndexMuvera``
(IndexMuvera end to end on the GPU), ``chamfer_scores`` / ``chamfer_scores_batch``,
``fde_encode_documents`` / ``fde_encode_queries``. numpy in gives numpy out (copied through the
device inside the core); cupy or torch CUDA arrays in (anything with
``__cuda_array_interface__``, float32, C-contiguous) give device arrays of the
same library out, with no host copy. Work queued by cupy/torch on the legacy
default stream is ordered before ours; code that uses its own streams must
synchronise them before calling in.

Importing this module never needs a GPU: the classes exist everywhere and
raise RuntimeError when constructed without a CUDA build or a device.
"""
import os
import sys

import numpy as np

from . import _nearly
from ._nearly import (
    METRIC_INNER_PRODUCT,
    METRIC_L2,
    IndexFlat,
    IndexFlatIP,
    IndexFlatL2,
    IndexIVFFlat,
    InvalidArgumentError,
)
from .multivector import FDEConfig, IndexMuvera, _check_config, _check_k, _ragged, _sets

_CUDA = hasattr(_nearly, "_GpuResources")
GPU_MAX_SELECTION_K = 2048


def get_num_gpus():
    return _nearly.get_num_gpus()


def _require_gpu():
    if not _CUDA:
        raise RuntimeError("this build of nearly has no CUDA support (nvcc was not found when it was built)")
    if _nearly.get_num_gpus() == 0:
        raise RuntimeError("no CUDA GPU is available (get_num_gpus() == 0)")


_cublas_dirs_added = False


def _add_cublas_dirs():
    """Points the core at cuBLAS from the pip-installed NVIDIA wheels (torch and
    cupy bring them), which are not on the loader's path."""
    global _cublas_dirs_added
    if _cublas_dirs_added:
        return
    _cublas_dirs_added = True
    for base in sys.path:
        for sub in ("nvidia/cu13/lib", "nvidia/cublas/lib", "nvidia/cu12/lib"):
            d = os.path.join(base, sub)
            if os.path.isdir(d):
                _nearly._add_cublas_search_dir(d)


class StandardGpuResources:
    """One stream, one cuBLAS handle and a scratch-memory cache per device."""

    def __init__(self):
        _require_gpu()
        self._temp = None
        self._per_device = {}

    def _get(self, device):
        device = 0 if device is None or device < 0 else int(device)
        r = self._per_device.get(device)
        if r is None:
            _add_cublas_dirs()
            r = _nearly._GpuResources(device)
            if self._temp is not None:
                r.set_temp_memory(self._temp)
            self._per_device[device] = r
        return r

    def setTempMemory(self, size):
        """Scratch budget in bytes: bounds search tiles and the cache."""
        self._temp = int(size)
        for r in self._per_device.values():
            r.set_temp_memory(self._temp)

    def noTempMemory(self):
        self.setTempMemory(0)

    def setPinnedMemory(self, size):
        """Accepted for faiss compatibility; host copies use the caller's memory."""

    def setDefaultNullStreamAllDevices(self):
        """Accepted for faiss compatibility: nearly's stream already waits for
        the legacy default stream."""

    def syncDefaultStreamCurrentDevice(self):
        for r in self._per_device.values():
            r.synchronize()


class GpuIndexFlatConfig:
    def __init__(self):
        self.device = 0
        self.useFloat16 = False
        self.use_cuvs = False


class GpuClonerOptions:
    def __init__(self):
        self.useFloat16 = False
        self.useFloat16CoarseQuantizer = False
        self.usePrecomputed = False
        self.indicesOptions = 0
        self.verbose = False
        self.reserveVecs = 0
        self.storeTransposed = False
        self.use_cuvs = False


class GpuMultipleClonerOptions(GpuClonerOptions):
    def __init__(self):
        super().__init__()
        self.shard = False
        self.shard_type = 1


# ---- device arrays -----------------------------------------------------------

def _cai(x):
    return getattr(x, "__cuda_array_interface__", None)


def _device_matrix(x, d, what, typestr="<f4"):
    ci = x.__cuda_array_interface__
    shape = tuple(ci["shape"])
    if len(shape) != 2 or (d is not None and shape[1] != d):
        raise InvalidArgumentError(
            f"{what} must be a 2-D array of shape (n, {d if d is not None else 'd'}), got shape {shape}")
    if ci["typestr"] != typestr:
        kind = {"<f4": "float32", "<i8": "int64", "|u1": "uint8"}[typestr]
        raise InvalidArgumentError(f"{what} must be {kind} on the device (got typestr {ci['typestr']!r})")
    strides = ci.get("strides")
    item = int(typestr[-1])
    if strides is not None and shape[0] > 1 and tuple(strides) != (shape[1] * item, item):
        raise InvalidArgumentError(f"{what} must be C-contiguous on the device")
    return int(ci["data"][0]), shape[0], shape[1]


def _device_empty(like, shape, dtype):
    if type(like).__module__.startswith("torch"):
        import torch
        return torch.empty(shape, dtype={np.float32: torch.float32, np.int64: torch.int64, np.int32: torch.int32}[dtype],
                           device=like.device)
    import cupy
    return cupy.empty(shape, dtype=dtype)


def _device_out(out, like, shape, dtype, what):
    if out is None:
        return _device_empty(like, shape, dtype)
    ptr, n, m = _device_matrix(out, shape[1], what, "<f4" if dtype == np.float32 else "<i8")
    if n != shape[0]:
        raise InvalidArgumentError(f"{what} must have shape {shape}")
    return out


def _ptr(a):
    ci = _cai(a)
    return int(ci["data"][0]) if ci is not None else a.ctypes.data


def _as_k(k):
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
        raise InvalidArgumentError(f"k must be an integer, got {k!r}")
    if k <= 0:
        raise InvalidArgumentError(f"k must be > 0, got {k}")
    return int(k)


# ---- indexes -----------------------------------------------------------------

def _base(name):
    return getattr(_nearly, name) if _CUDA else object


class _DeviceArrays:
    """add / train / search taking cupy or torch device arrays as well as numpy."""

    def add(self, x):
        if _cai(x) is None:
            return super().add(x)
        ptr, n, _ = _device_matrix(x, self.d, "x")
        self._add_ptr(n, ptr)

    def search(self, x, k, *, params=None, D=None, I=None):
        if _cai(x) is None:
            return super().search(x, k, params=params, D=D, I=I)
        if params is not None and getattr(params, "sel", None) is not None:
            raise RuntimeError("GPU indexes do not filter with an IDSelector; search the CPU index for filtered queries")
        k = _as_k(k)
        ptr, n, _ = _device_matrix(x, self.d, "x")
        D = _device_out(D, x, (n, k), np.float32, "D")
        I = _device_out(I, x, (n, k), np.int64, "I")
        extra = ()
        if hasattr(self, "nprobe"):
            extra = (int(getattr(params, "nprobe", 0) or 0),)
        elif hasattr(self, "efSearch"):
            extra = (int(getattr(params, "efSearch", 0) or 0),)
        self._search_ptr(n, ptr, k, _ptr(D), _ptr(I), *extra)
        return D, I


_FlatBase = _base("_GpuIndexFlat")


class GpuIndexFlat(_DeviceArrays, _FlatBase):
    """Exact search on the GPU. ``GpuIndexFlat(res, d, metric, config)`` or
    ``GpuIndexFlat(res, cpu_flat_index, config)`` (a copy of its vectors)."""

    def __init__(self, res, arg, metric=METRIC_L2, config=None):
        _require_gpu()
        cpu = None
        if isinstance(arg, IndexFlat):
            cpu = arg
            if isinstance(metric, GpuIndexFlatConfig):
                config = metric
            metric = cpu.metric_type
            d = cpu.d
        else:
            d = int(arg)
        config = config or GpuIndexFlatConfig()
        _FlatBase.__init__(self, res._get(config.device), d, int(metric), bool(config.useFloat16))
        self._resources = res  # keeps the stream alive as long as the index
        if cpu is not None:
            self.copyFrom(cpu)


class GpuIndexFlatL2(GpuIndexFlat):
    def __init__(self, res, arg, config=None):
        if isinstance(arg, IndexFlat) and arg.metric_type != METRIC_L2:
            raise InvalidArgumentError("GpuIndexFlatL2 needs an L2 index")
        GpuIndexFlat.__init__(self, res, arg, METRIC_L2, config)


class GpuIndexFlatIP(GpuIndexFlat):
    def __init__(self, res, arg, config=None):
        if isinstance(arg, IndexFlat) and arg.metric_type != METRIC_INNER_PRODUCT:
            raise InvalidArgumentError("GpuIndexFlatIP needs an inner-product index")
        GpuIndexFlat.__init__(self, res, arg, METRIC_INNER_PRODUCT, config)


class GpuIndexIVFFlatConfig:
    def __init__(self):
        self.device = 0
        self.indicesOptions = 0
        self.use_cuvs = False


class GpuIndexIVFPQConfig(GpuIndexIVFFlatConfig):
    def __init__(self):
        super().__init__()
        self.useFloat16LookupTables = False
        self.usePrecomputedTables = True


class _DeviceTrainAndIds(_DeviceArrays):
    """train / add_with_ids taking device arrays as well."""

    def train(self, x):
        if _cai(x) is None:
            return super().train(x)
        ptr, n, _ = _device_matrix(x, self.d, "x")
        self._train_ptr(n, ptr)

    def add_with_ids(self, x, ids):
        if _cai(x) is None:
            return super().add_with_ids(x, ids)
        ptr, n, _ = _device_matrix(x, self.d, "x")
        if _cai(ids) is None:
            ids = np.ascontiguousarray(ids, dtype=np.int64)
            if ids.shape != (n,):
                raise InvalidArgumentError(f"ids must be a 1-D array of {n} int64 ids")
        else:
            ci = ids.__cuda_array_interface__
            if tuple(ci["shape"]) != (n,) or ci["typestr"] != "<i8" or ci.get("strides") not in (None, (8,)):
                raise InvalidArgumentError(f"ids must be a contiguous 1-D array of {n} int64 ids")
        self._add_with_ids_ptr(n, ptr, _ptr(ids))


class _GpuIVF(_DeviceTrainAndIds):
    def setNumProbes(self, nprobe):
        self.nprobe = int(nprobe)

    @property
    def quantizer(self):
        """The coarse centroids as a CPU IndexFlat (a copy)."""
        q = IndexFlatL2(self.d) if self.metric_type == METRIC_L2 else IndexFlatIP(self.d)
        if self.is_trained:
            q.add(self.centroids())
        return q


_IVFFlatBase = _base("_GpuIndexIVFFlat")


class GpuIndexIVFFlat(_GpuIVF, _IVFFlatBase):
    """``GpuIndexIVFFlat(res, d, nlist, metric, config)`` or
    ``GpuIndexIVFFlat(res, cpu_ivf_flat, config)`` (a copy)."""

    def __init__(self, res, arg, nlist=None, metric=METRIC_L2, config=None):
        _require_gpu()
        cpu = None
        if type(arg).__name__ == "IndexIVFFlatDedup":
            raise RuntimeError("GpuIndexIVFFlat: an IndexIVFFlatDedup's copies have no GPU twin")
        if isinstance(arg, IndexIVFFlat):
            cpu, config = arg, nlist if isinstance(nlist, GpuIndexIVFFlatConfig) else config
            d, nlist, metric = cpu.d, cpu.nlist, cpu.metric_type
        else:
            d = int(arg)
            if nlist is None:
                raise InvalidArgumentError("GpuIndexIVFFlat(res, d, nlist, metric): nlist is missing")
        config = config or GpuIndexIVFFlatConfig()
        _IVFFlatBase.__init__(self, res._get(config.device), d, int(nlist), int(metric))
        self._resources = res
        if cpu is not None:
            self.copyFrom(cpu)


_IVFPQBase = _base("_GpuIndexIVFPQ")


class GpuIndexIVFPQ(_GpuIVF, _IVFPQBase):
    """``GpuIndexIVFPQ(res, d, nlist, M, nbits, metric, config)`` or
    ``GpuIndexIVFPQ(res, cpu_ivfpq, config)`` (a copy). 8-bit codes, by
    residual, tables in shared memory."""

    def __init__(self, res, arg, nlist=None, M=None, nbits=8, metric=METRIC_L2, config=None):
        _require_gpu()
        cpu = None
        if type(arg).__name__ == "IndexIVFPQ":
            cpu = arg
            config = nlist if isinstance(nlist, GpuIndexIVFPQConfig) else config
            d, nlist, M, nbits, metric = cpu.d, cpu.nlist, cpu.pq.M, cpu.pq.nbits, cpu.metric_type
        else:
            d = int(arg)
            if nlist is None or M is None:
                raise InvalidArgumentError("GpuIndexIVFPQ(res, d, nlist, M, nbits, metric): nlist and M are needed")
        config = config or GpuIndexIVFPQConfig()
        _IVFPQBase.__init__(self, res._get(config.device), d, int(nlist), int(M), int(nbits), int(metric))
        self.use_float16_tables = bool(config.useFloat16LookupTables)
        self._resources = res
        if cpu is not None:
            self.copyFrom(cpu)

    def copyFrom(self, cpu):
        from .compat import vector_to_array
        if cpu.polysemous_ht != 0:  # faiss's refusal too: the GPU scan has no Hamming filter
            raise RuntimeError("GPU: polysemous codes not supported (set polysemous_ht = 0 before the copy)")
        self._copy_from(cpu, vector_to_array(cpu.pq.centroids))


_HNSWBase = _base("_GpuIndexHNSW")


class GpuIndexHNSW(_DeviceArrays, _HNSWBase):
    """HNSW on the GPU, two ways:

    ``GpuIndexHNSW(res, cpu_index)``: an IndexHNSWFlat's base layer searched on
    the GPU, many queries at once (one thread block each; CAGRA-style beam
    search from the entry node and random nodes). A read-only copy: add to the
    CPU index and copy it again.

    ``GpuIndexHNSW(res, d, M=32, metric=METRIC_L2)``: an empty index whose one
    ``add`` builds the whole graph on the GPU (k-NN lists pruned with HNSW's
    heuristic; ``build_knn_factor``, ``build_merge_factor``, ``build_far_factor``,
    ``build_n_lists``, ``build_n_probe``, ``build_exact_below``, ``verbose`` tune it).

    Either way ``efSearch`` is the beam (candidates kept, <= 512; <= 256 with
    ``search_merge = False``, the re-sorting kernel),
    ``search_width`` the nodes expanded per step, ``search_fp16 = True`` walks
    the graph over float16 copies of the rows (half the memory traffic; the
    final best are scored again in float32, so results keep exact scores), and
    index_gpu_to_cpu gives an IndexHNSWFlat with every level of the graph."""

    def __init__(self, res, index, M=32, metric=METRIC_L2, config=None):
        _require_gpu()
        if isinstance(M, GpuIndexFlatConfig):
            config, M = M, 32
        config = config or GpuIndexFlatConfig()
        if isinstance(index, (int, np.integer)):
            _HNSWBase.__init__(self, res._get(config.device), int(index), int(M), int(metric))
            self._source = None
        else:
            if type(index).__name__ not in ("IndexHNSWFlat",):
                raise RuntimeError(f"GpuIndexHNSW needs an IndexHNSWFlat, got {type(index).__name__}")
            _HNSWBase.__init__(self, res._get(config.device), index)
            self._source = _nearly.serialize_index(index)  # the upper layers, for index_gpu_to_cpu
        self._resources = res

    def add(self, x):
        if self._source is not None:
            raise RuntimeError("GpuIndexHNSW is a read-only copy: add to the CPU IndexHNSWFlat and copy it again")
        return super().add(x)


_BinaryRecurrentBase = _base("_GpuIndexBinaryRecurrent")


class GpuIndexBinaryRecurrent(_DeviceTrainAndIds, _BinaryRecurrentBase):
    """An IndexBinaryRecurrent (BEBR codes scored by SDC) searched on the GPU,
    with the CPU index's D and I: ``GpuIndexBinaryRecurrent(res, cpu_index)``
    (a copy of its encoder, codes and ids). Queries and added vectors are
    encoded on the host by the CPU encoder; the codes are scanned on the
    device. add / add_with_ids / remove_ids / reset / train work as on the
    CPU index (ids that are not above every stored id cost a re-sort of the
    stored codes); no IDSelector; k <= 2048. m must be a multiple of 32."""

    def __init__(self, res, index, config=None):
        _require_gpu()
        if type(index).__name__ != "IndexBinaryRecurrent":
            raise InvalidArgumentError(f"GpuIndexBinaryRecurrent needs an IndexBinaryRecurrent, got {type(index).__name__}")
        config = config or GpuIndexFlatConfig()
        _BinaryRecurrentBase.__init__(self, res._get(config.device), index)
        self._resources = res


# ---- cloning -----------------------------------------------------------------

def index_cpu_to_gpu(res, device, index, options=None):
    """The GPU twin of a CPU index (a copy: later changes to either are not shared)."""
    options = options or GpuClonerOptions()
    if isinstance(index, _nearly.IndexIVF) and index._list_limits:
        raise RuntimeError("index_cpu_to_gpu: the index searches its lists through StopWordsInvertedLists / "
                           "CappedInvertedLists, which the GPU index does not; give it back its own lists first")
    if isinstance(index, IndexFlat):
        config = GpuIndexFlatConfig()
        config.device = device
        config.useFloat16 = bool(options.useFloat16)
        return GpuIndexFlat(res, index, config)
    # no GPU Panorama; a Dedup index's copies have no GPU twin
    if isinstance(index, IndexIVFFlat) and type(index).__name__ not in ("IndexIVFFlatPanorama", "IndexIVFFlatDedup"):
        config = GpuIndexIVFFlatConfig()
        config.device = device
        return GpuIndexIVFFlat(res, index, config)
    if type(index).__name__ == "IndexIVFPQ":
        config = GpuIndexIVFPQConfig()
        config.device = device
        return GpuIndexIVFPQ(res, index, config)
    if type(index).__name__ == "IndexHNSWFlat":
        config = GpuIndexFlatConfig()
        config.device = device
        return GpuIndexHNSW(res, index, config)
    if type(index).__name__ == "IndexBinaryRecurrent":
        config = GpuIndexFlatConfig()
        config.device = device
        return GpuIndexBinaryRecurrent(res, index, config)
    if isinstance(index, IndexMuvera):
        return GpuIndexMuvera(res, index, device, options)
    raise RuntimeError(f"index_cpu_to_gpu: {type(index).__name__} is not supported on the GPU "
                       "(supported: IndexFlat, IndexFlatL2, IndexFlatIP, IndexIVFFlat, IndexIVFPQ, IndexHNSWFlat, "
                       "IndexMuvera, IndexBinaryRecurrent)")


def index_gpu_to_cpu(index):
    """The CPU twin of a GPU index, with the same vectors, codes and ids."""
    if isinstance(index, GpuIndexFlat):
        cpu = IndexFlatL2(index.d) if index.metric_type == METRIC_L2 else IndexFlatIP(index.d)
        index.copyTo(cpu)
        return cpu
    if isinstance(index, GpuIndexIVFFlat):
        return index._to_cpu()
    if isinstance(index, GpuIndexIVFPQ):
        return _ivfpq_to_cpu(index)
    if isinstance(index, GpuIndexHNSW):
        return index._to_cpu() if index._source is None else _nearly.deserialize_index(index._source)
    if isinstance(index, GpuIndexMuvera):
        return index._source._copy()
    if isinstance(index, GpuIndexBinaryRecurrent):
        return index._to_cpu()
    if isinstance(index, _nearly.Index):
        return index  # already on the CPU, as faiss does
    raise RuntimeError(f"index_gpu_to_cpu: {type(index).__name__} is not a GPU index")


def _ivfpq_to_cpu(index):
    from . import _nearly as n
    if not hasattr(n, "IndexIVFPQ"):
        raise RuntimeError("index_gpu_to_cpu: this build has no CPU IndexIVFPQ")
    q = IndexFlatL2(index.d) if index.metric_type == METRIC_L2 else IndexFlatIP(index.d)
    q.add(index.centroids())
    cpu = n.IndexIVFPQ(q, index.d, index.nlist, index.M, index.nbits, index.metric_type)
    cpu.set_pq_centroids(index.pq_centroids())
    for l in range(index.nlist):
        codes, ids = index.list_contents(l)
        if len(ids):
            cpu.add_entries(l, codes, ids)
    cpu.nprobe = index.nprobe
    return cpu


def index_cpu_to_all_gpus(index, co=None, ngpu=-1):
    n = get_num_gpus()
    if n == 0:
        _require_gpu()
    if ngpu == -1:
        ngpu = n
    if ngpu != 1:
        raise RuntimeError(f"index_cpu_to_all_gpus over {ngpu} GPUs is not supported yet (one GPU is)")
    return index_cpu_to_gpu(StandardGpuResources(), 0, index, co)


def index_cpu_to_gpus_list(index, co=None, gpus=None, ngpu=-1):
    gpus = list(gpus) if gpus is not None else [0]
    if len(gpus) != 1:
        raise RuntimeError("index_cpu_to_gpus_list over several GPUs is not supported yet (one GPU is)")
    return index_cpu_to_gpu(StandardGpuResources(), gpus[0], index, co)


# ---- functions ---------------------------------------------------------------

def knn_gpu(res, xq, xb, k, D=None, I=None, metric=METRIC_L2, device=-1, use_cuvs=False, vectorsMemoryLimit=0,
            queriesMemoryLimit=0, use_float16=False):
    """Exact k nearest neighbours of xq among xb on the GPU (faiss.knn_gpu).
    Host or device arrays; device outputs when xq is on the device."""
    _require_gpu()
    k = _as_k(k)
    r = res._get(device)
    arrays = []

    def matrix(x, d, what):
        if _cai(x) is not None:
            return _device_matrix(x, d, what)
        a = np.ascontiguousarray(x, dtype=np.float32)
        if a.ndim != 2 or (d is not None and a.shape[1] != d):
            raise InvalidArgumentError(f"{what} must be a 2-D array (n, {d if d is not None else 'd'}), "
                                       f"got shape {a.shape}")
        arrays.append(a)
        return a.ctypes.data, a.shape[0], a.shape[1]

    pq, nq, d = matrix(xq, None, "xq")
    pb, nb, _ = matrix(xb, d, "xb")
    if _cai(xq) is not None:
        D = _device_out(D, xq, (nq, k), np.float32, "D")
        I = _device_out(I, xq, (nq, k), np.int64, "I")
    else:
        D = np.empty((nq, k), np.float32) if D is None else D
        I = np.empty((nq, k), np.int64) if I is None else I
        if D.shape != (nq, k) or I.shape != (nq, k) or D.dtype != np.float32 or I.dtype != np.int64:
            raise InvalidArgumentError("D, I must be float32 / int64 arrays of shape (nq, k)")
    _nearly._knn_gpu_ptr(r, int(metric), pq, nq, pb, nb, d, k, _ptr(D), _ptr(I), bool(use_float16))
    return D, I


def select_k(res, x, k, largest=False, ids=None, device=0):
    """Top-k of each row of a (rows, cols) float32 matrix on the GPU: values and
    ids (column numbers, or the matching entries of ``ids``), best first. Any
    k >= 1; k <= 2048 takes the one-pass shared-memory path. Device arrays in,
    device arrays out; numpy goes through cupy."""
    _require_gpu()
    k = _as_k(k)
    if _cai(x) is None:
        import cupy
        x = cupy.asarray(np.ascontiguousarray(x, dtype=np.float32))
        if ids is not None:
            ids = cupy.asarray(np.ascontiguousarray(ids, dtype=np.int64))
    ptr, rows, cols = _device_matrix(x, None, "x")
    ids_ptr = 0
    if ids is not None:
        ids_ptr, r2, c2 = _device_matrix(ids, cols, "ids", "<i8")
        if r2 != rows:
            raise InvalidArgumentError("ids must have the shape of x")
    out = _device_empty(x, (rows, k), np.float32)
    out_ids = _device_empty(x, (rows, k), np.int64)
    _nearly._select_k_ptr(res._get(device), ptr, ids_ptr, rows, cols, k, bool(largest), _ptr(out), _ptr(out_ids))
    return out, out_ids


# ---- multi-vector ------------------------------------------------------------

def _fde_encode(res, vectors, lengths, config, documents, device):
    _require_gpu()
    enc = _check_config(config)
    # One device copy of the matrices per (resources, device, drawn matrices):
    # changing the config draws new CPU matrices, which invalidates it.
    key = (id(res), device)
    cache = config.__dict__.setdefault("_gpu_encoders", {})
    hit = cache.get(key)
    if hit is None or hit[0] is not enc:
        hit = (enc, _nearly._GpuFdeEncoder(res._get(device), enc))
        cache[key] = hit
    genc = hit[1]
    if _cai(vectors) is not None:
        ptr, n, _ = _device_matrix(vectors, config.dimension, "vectors")
        lengths = np.ascontiguousarray(lengths if _cai(lengths) is None else lengths.get(), dtype=np.int64)
        out = _device_empty(vectors, (len(lengths), genc.output_dimension), np.float32)
        genc._encode_ptr(documents, ptr, n, lengths, _ptr(out))
        return out
    x, n = _ragged(vectors, lengths, config.dimension, "vectors")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != config.dimension:
        raise InvalidArgumentError(f"vectors must be a 2-D array of shape (n, {config.dimension})")
    n = np.ascontiguousarray(n, dtype=np.int64)
    out = np.empty((len(n), genc.output_dimension), np.float32)
    genc._encode_ptr(documents, x.ctypes.data, len(x), n, out.ctypes.data)
    return out


def fde_encode_documents(res, vectors, lengths, config, device=0):
    """MUVERA document encodings on the GPU: bit for bit those of
    nearly.fde_encode_documents. Host or device arrays (device out for device in)."""
    return _fde_encode(res, vectors, lengths, config, True, device)


def fde_encode_queries(res, vectors, lengths, config, device=0):
    """MUVERA query encodings on the GPU, bit for bit nearly.fde_encode_queries."""
    return _fde_encode(res, vectors, lengths, config, False, device)


def _host_lengths(lengths, what):
    if _cai(lengths) is not None:  # cupy has .get(), torch .cpu()
        lengths = lengths.get() if hasattr(lengths, "get") else lengths.cpu().numpy()
    n = np.asarray(lengths)
    if n.ndim != 1 or (n.size and n.dtype.kind not in "iu"):
        raise InvalidArgumentError(f"{what}: lengths must be a 1-D array of integer per-set vector counts")
    return np.ascontiguousarray(n, dtype=np.int64)


def _vector_sets(vectors, lengths, d, what):
    """Ragged sets for a GPU call: (pointer, n_vectors, d, int64 lengths, keep-alive).
    Host input is checked and made a C-contiguous float32 array (a list of
    (n_i, d) arrays, a 3-D array, or vectors with lengths, as on the CPU);
    device arrays (cupy, torch: float32, C-contiguous) are used in place and
    need their lengths (the core checks them)."""
    if _cai(vectors) is not None:
        if lengths is None:
            raise InvalidArgumentError(f"{what}: a device array needs the lengths of its sets")
        ptr, n, dd = _device_matrix(vectors, d, what)
        return ptr, n, dd, _host_lengths(lengths, what), vectors
    x, n = _ragged(vectors, lengths, d, what)
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise InvalidArgumentError(f"{what} must be a 2-D (total, d) array with lengths, got shape {x.shape}")
    x, n = _sets(x, n, x.shape[1] if d is None else d, what)
    return x.ctypes.data, x.shape[0], x.shape[1], n, x


def chamfer_scores_batch(res, query_vectors, query_lengths, doc_vectors, doc_lengths=None, ids=None, device=0):
    """Exact Chamfer (MaxSim) scores on the GPU, like nearly.chamfer_scores_batch:
    float32 (n_queries, n_docs). With ids, an (n_queries, n_ids) int64 array of
    document numbers (0 .. n_docs - 1; -1 marks an empty slot, scored
    -FLT_MAX), only those documents are scored: the re-ranking primitive,
    (n_queries, n_ids) out. Host or device arrays; device out for device
    queries. Scores match the CPU within float rounding (about 1e-5 relative)."""
    _require_gpu()
    xp, xn, d, xl, xkeep = _vector_sets(doc_vectors, doc_lengths, None, "doc_vectors")
    qp, qn, _, ql, qkeep = _vector_sets(query_vectors, query_lengths, d, "query_vectors")
    nq, cand, cols = len(ql), 0, len(xl)
    if ids is not None:
        if _cai(ids) is not None:
            cand, rows, cols = _device_matrix(ids, None, "ids", "<i8")
        else:
            ids = np.asarray(ids)
            if ids.ndim != 2 or (ids.size and ids.dtype.kind not in "iu"):
                raise InvalidArgumentError(f"ids must be a 2-D integer array (n_queries, n_ids), got shape "
                                           f"{ids.shape} and dtype {ids.dtype}")
            ids = np.ascontiguousarray(ids, dtype=np.int64)
            cand, (rows, cols) = ids.ctypes.data, ids.shape
        if rows != nq:
            raise InvalidArgumentError(f"ids must have one row per query set ({nq}), got {rows}")
    if _cai(query_vectors) is not None:
        out = _device_empty(query_vectors, (nq, cols), np.float32)
    else:
        out = np.empty((nq, cols), np.float32)
    if nq and cols:
        _nearly._chamfer_scores_ptr(res._get(device), qp, qn, ql, xp, xn, xl, d, cand, cols if ids is not None else 0,
                                    _ptr(out))
    return out


def chamfer_scores(res, query_vectors, doc_vectors, doc_lengths=None, device=0):
    """Exact Chamfer similarity of one query set (m, d) to each document, on
    the GPU, like nearly.chamfer_scores: float32 (n_docs,)."""
    _require_gpu()
    if _cai(query_vectors) is not None:
        m = int(query_vectors.__cuda_array_interface__["shape"][0])
    else:
        query_vectors = np.asarray(query_vectors, dtype=np.float32)
        if query_vectors.ndim != 2:
            raise InvalidArgumentError(f"query_vectors must be a 2-D (m, d) array, got shape {query_vectors.shape}")
        m = len(query_vectors)
    if m == 0:
        raise InvalidArgumentError("query_vectors is empty: a query needs at least one vector")
    return chamfer_scores_batch(res, query_vectors, [m], doc_vectors, doc_lengths, device=device)[0]


def _muvera_candidates(k, k_factor, limit):
    """k * k_factor, the candidates a GPU IndexMuvera search asks of its inner
    index, checked against what that index can return."""
    IndexMuvera._check_k_factor(k_factor)
    n = k * int(k_factor)
    if n > limit:
        raise InvalidArgumentError(f"GpuIndexMuvera: k * k_factor = {k} * {int(k_factor)} = {n} candidates, but "
                                   f"the GPU inner index returns at most {limit} per query; lower k_factor or k, "
                                   "or search the CPU IndexMuvera")
    return n


class GpuIndexMuvera:
    """An IndexMuvera searched end to end on the GPU: ``GpuIndexMuvera(res,
    cpu_index, device=0, options=None)`` or ``index_cpu_to_gpu(res, device,
    cpu_index)``.

    A search encodes the query sets on the GPU (bit for bit the CPU's FDEs;
    ball carving, when the index uses it, runs on the host), takes ``k *
    k_factor`` candidates from the GPU copy of the inner index (Flat ->
    GpuIndexFlat, HNSW32 -> GpuIndexHNSW, IVF...,Flat / IVF...,PQ... ->
    GpuIndexIVF*; other inner indexes have no GPU copy and raise), scores
    them by exact Chamfer similarity on the token vectors held on the device
    (float32 or float16, as in the CPU index) and keeps the k best with
    select_k. ``search(vectors, lengths, k, *, params=None, k_factor=None)``
    is the CPU index's: D float32 (nq, k) Chamfer scores descending, I int64
    ids, padded with -FLT_MAX / -1; numpy in gives numpy out, cupy or torch
    device arrays (lengths on the host or the device) give device arrays of
    the same library. Scores match the CPU's within float rounding (about
    1e-5 relative); with a Flat inner index the ids are the CPU's wherever
    scores are not tied.

    A read-only copy, like GpuIndexHNSW: add, remove_ids, train and reset
    raise; add to the CPU index and copy it again. ``index_gpu_to_cpu`` gives
    back the CPU index as it was copied (a copy kept in host memory, the size
    of the CPU index). Limits: k * k_factor <= 2048 (256 with
    an HNSW inner index); no IDSelector filtering. ``inner_index`` is the GPU
    inner index (e.g. set ``inner_index.efSearch`` or ``nprobe`` there, or
    pass ``params``).
    """

    def __init__(self, res, index, device=0, options=None):
        _require_gpu()
        if not isinstance(index, IndexMuvera):
            raise RuntimeError(f"GpuIndexMuvera needs an IndexMuvera, got {type(index).__name__}")
        if not index.is_trained:
            raise RuntimeError("GpuIndexMuvera: the IndexMuvera's inner index is not trained")
        sub = index.inner_index.index
        inner = None
        if index.ntotal:
            try:
                inner = index_cpu_to_gpu(res, device, sub, options)
            except RuntimeError as e:
                raise RuntimeError(f"GpuIndexMuvera: the inner index {index.inner_description!r} "
                                   f"({type(sub).__name__}) cannot be copied to the GPU: {e}") from None
        self._index = _nearly._GpuIndexMuvera(res._get(device), index._query_config._native(), inner,
                                              index.inner_index, index._store, bool(index.ball_carving),
                                              float(index.ball_carving_tau))
        self._resources = res
        self.inner_index = inner
        self.inner_description = index.inner_description
        self.fde_config = FDEConfig(**index.fde_config.__getstate__())
        self.k_factor = index.k_factor
        self.ball_carving = index.ball_carving
        self.ball_carving_tau = index.ball_carving_tau
        self._source = index._copy()

    d = property(lambda self: self._index.d)
    ntotal = property(lambda self: self._index.ntotal, doc="Number of documents.")
    n_vectors = property(lambda self: self._index.n_vectors)
    fde_dim = property(lambda self: self._index.fde_dim)
    token_dtype = property(lambda self: self._index.token_dtype)
    is_trained = True

    def getDevice(self):
        return self._index.getDevice()

    @property
    def _candidate_limit(self):
        return 256 if isinstance(self.inner_index, GpuIndexHNSW) else GPU_MAX_SELECTION_K

    def search(self, vectors, lengths, k, *, params=None, k_factor=None):
        k = _check_k(k)
        n_cand = _muvera_candidates(k, self.k_factor if k_factor is None else k_factor, self._candidate_limit)
        ptr, n, _, ql, keep = _vector_sets(vectors, lengths, self.d, "query vectors")
        nq = len(ql)
        if _cai(vectors) is not None:
            D = _device_empty(vectors, (nq, k), np.float32)
            I = _device_empty(vectors, (nq, k), np.int64)
        else:
            D, I = np.empty((nq, k), np.float32), np.empty((nq, k), np.int64)
        if nq:
            self._index._search_ptr(ptr, n, ql, k, n_cand, params, _ptr(D), _ptr(I))
        return D, I

    def _read_only(self, *args, **kwargs):
        raise RuntimeError("GpuIndexMuvera is a read-only copy: change the CPU IndexMuvera and copy it again "
                           "(index_cpu_to_gpu)")

    add = add_with_ids = train = remove_ids = reset = _read_only

    def __repr__(self):
        return (f"GpuIndexMuvera(d={self.d}, fde_dim={self.fde_dim}, inner={self.inner_description!r}, "
                f"k_factor={self.k_factor}, ntotal={self.ntotal}, token_dtype={self.token_dtype!r}, "
                f"device={self.getDevice()})")


# ---- binary codes ------------------------------------------------------------

def _codes(x, code_size, what):
    """(pointer, n, keep-alive) of a (n, code_size) uint8 array on the host or device."""
    if _cai(x) is not None:
        ptr, n, c = _device_matrix(x, code_size, what, "|u1")
        return ptr, n, x
    a = np.ascontiguousarray(x)
    if a.dtype != np.uint8:
        raise InvalidArgumentError(f"{what} must be uint8 codes, got {a.dtype}")
    if a.ndim != 2 or a.shape[1] != code_size:
        raise InvalidArgumentError(f"{what} must have shape (n, {code_size}), got {a.shape}")
    return a.ctypes.data, a.shape[0], a


class GpuIndexBinaryFlat:
    """faiss's GpuIndexBinaryFlat: exact Hamming search of d-bit codes on the
    GPU. ``GpuIndexBinaryFlat(res, d)`` or ``GpuIndexBinaryFlat(res, cpu_index)``.
    Distances are int32, padding 2147483647 / -1 like faiss."""

    def __init__(self, res, arg, config=None):
        _require_gpu()
        config = config or GpuIndexFlatConfig()
        cpu = None if isinstance(arg, (int, np.integer)) else arg
        d = int(arg) if cpu is None else cpu.d
        self._index = _nearly._GpuIndexBinaryFlat(res._get(config.device), d)
        self._resources = res
        if cpu is not None and cpu.ntotal:
            self.add(cpu.reconstruct_n(0, cpu.ntotal))

    d = property(lambda self: self._index.d)
    code_size = property(lambda self: self._index.code_size)
    ntotal = property(lambda self: self._index.ntotal)
    is_trained = True

    def add(self, x):
        ptr, n, keep = _codes(x, self.code_size, "x")
        self._index._add_ptr(n, ptr)

    def search(self, x, k):
        k = _as_k(k)
        ptr, n, keep = _codes(x, self.code_size, "x")
        if _cai(x) is not None:
            D = _device_empty(x, (n, k), np.int32)
            I = _device_empty(x, (n, k), np.int64)
        else:
            D, I = np.empty((n, k), np.int32), np.empty((n, k), np.int64)
        self._index._search_ptr(n, ptr, k, _ptr(D), _ptr(I))
        return D, I

    def reconstruct_n(self, n0=0, ni=-1):
        ni = self.ntotal - n0 if ni == -1 else ni
        out = np.empty((ni, self.code_size), np.uint8)
        self._index._reconstruct_n_ptr(n0, ni, out.ctypes.data)
        return out

    def reset(self):
        self._index.reset()


def sdc_knn(res, qcodes, xcodes, m, bits_per_dim, k, device=0):
    """The k best SDC scores (BEBR recurrent codes, canonical layout: bit
    planes of m bits each, m a multiple of 32) of each query code among xcodes,
    on the GPU: (int32 scores S = 2^(2u) <b_q, b_x>, largest first; int64 row
    numbers). Host or device arrays; device outputs for device queries."""
    _require_gpu()
    k = _as_k(k)
    cs = int(m) * int(bits_per_dim) // 8
    qp, nq, kq = _codes(qcodes, cs, "qcodes")
    xp, nx, kx = _codes(xcodes, cs, "xcodes")
    if _cai(qcodes) is not None:
        S = _device_empty(qcodes, (nq, k), np.int32)
        I = _device_empty(qcodes, (nq, k), np.int64)
    else:
        S, I = np.empty((nq, k), np.int32), np.empty((nq, k), np.int64)
    _nearly._sdc_knn_ptr(res._get(device), qp, nq, xp, nx, int(m), int(bits_per_dim), k, _ptr(S), _ptr(I))
    return S, I
