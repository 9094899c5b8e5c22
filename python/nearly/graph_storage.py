"""faiss's `index.storage` of a graph index (IndexHNSW*, IndexNSGFlat,
IndexNNDescentFlat): the stored vectors seen as the flat index faiss keeps
beside its graph.

nearly keeps each vector inside its graph node (one memory region per hop),
so there is no separate storage object to hand out. GraphStorage is a
read-only view over the graph index instead: its size, code size and
quantizer are read through, `reconstruct*` reads the stored vectors, and
`search` / `assign` / `range_search` are exact scans of the stored vectors
(their reconstructions: what faiss's IndexFlat / IndexPQ / IndexScalarQuantizer
storage scores), reconstructed block by block so memory stays bounded. Ids are
the graph index's own. Writes raise: the graph would not know of them (add to
the graph index itself)."""
import numpy as np

from . import _nearly
from .result_heap import ResultHeap

_BLOCK = 1 << 16  # rows reconstructed and scanned at a time


class GraphStorage:
    """Read-only `storage` of a graph index; see the module's docstring."""

    def __init__(self, index):
        self._index = index

    def __repr__(self):
        return f"<GraphStorage of {type(self._index).__name__}: d={self.d}, ntotal={self.ntotal}>"

    def sync_l2norms(self):
        """faiss's norm cache of the storage: nearly's graph scans need none."""

    clear_l2norms = sync_l2norms

    # Read through to the graph index.
    d = property(lambda self: self._index.d)
    ntotal = property(lambda self: self._index.ntotal)
    metric_type = property(lambda self: self._index.metric_type)
    metric_arg = property(lambda self: self._index.metric_arg)
    is_trained = property(lambda self: self._index.is_trained)
    verbose = property(lambda self: self._index.verbose)

    @property
    def index(self):
        """The graph index whose vectors this is."""
        return self._index

    def sa_code_size(self):
        """Bytes of one vector's code in faiss's storage of this kind: 4 d
        (Flat), the ScalarQuantizer's or the ProductQuantizer's code size."""
        index = self._index
        if hasattr(index, "pq"):
            return index.pq.code_size
        if hasattr(index, "sq"):
            return index.sq.code_size
        kind = getattr(index, "_storage_kind", 0)
        return index.d * (4, 1, 2, 2)[kind]

    code_size = property(sa_code_size)

    @property
    def pq(self):
        if not hasattr(self._index, "pq"):
            raise AttributeError(f"the storage of a {type(self._index).__name__} has no product quantizer")
        return self._index.pq

    @property
    def sq(self):
        if not hasattr(self._index, "sq"):
            raise AttributeError(f"the storage of a {type(self._index).__name__} has no ScalarQuantizer object")
        return self._index.sq

    @property
    def do_polysemous_training(self):
        """faiss's IndexPQ flag: nearly never trains polysemous codes."""
        self.pq  # noqa: B018  (the same AttributeError on storages without a PQ)
        return False

    def reconstruct(self, key):
        return self._index.reconstruct(key)

    def reconstruct_n(self, i0=0, ni=-1):
        if ni == -1:
            ni = self.ntotal - i0
        return self._index.reconstruct_n(i0, ni)

    def reconstruct_batch(self, keys):
        return self._index.reconstruct_batch(keys)

    def get_xb(self):
        """faiss's IndexFlat.get_xb: every stored vector, ntotal * d floats
        (a copy, in the graph's order of ids)."""
        return self._vectors_of(self._ids()).reshape(-1)

    def _ids(self):
        ids = getattr(self._index, "_ids", None)
        # NSG and NN-descent never remove: their ids are 0..ntotal-1.
        return ids() if ids is not None else np.arange(self.ntotal, dtype=np.int64)

    def _vectors_of(self, ids):
        return self._index.reconstruct_batch(ids) if len(ids) else np.zeros((0, self.d), dtype=np.float32)

    def _blocks(self):
        """(ids, a flat index over their vectors) for each block of rows."""
        ids = self._ids()
        for start in range(0, len(ids), _BLOCK):
            blk = ids[start:start + _BLOCK]
            flat = _nearly.IndexFlat(self.d, self.metric_type)
            if self.metric_type not in (_nearly.METRIC_L2, _nearly.METRIC_INNER_PRODUCT):
                flat.metric_arg = self.metric_arg
            flat.add(self._vectors_of(blk))
            yield blk, flat

    def _queries(self, x):
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.d:
            raise _nearly.InvalidArgumentError(f"x must be of shape (n, {self.d}), got {x.shape}")
        return x

    def search(self, x, k, *, params=None, D=None, I=None):
        """Exact k nearest stored vectors of each query (ids of the graph
        index), padded with id -1 as faiss's flat search is."""
        if params is not None:
            raise _nearly.InvalidArgumentError("GraphStorage.search takes no search parameters")
        x = self._queries(x)
        if int(k) <= 0:
            raise _nearly.InvalidArgumentError(f"k must be positive (got {k})")
        keep_max = self.metric_type in (_nearly.METRIC_INNER_PRODUCT, _nearly.METRIC_Jaccard)
        heap = ResultHeap(len(x), int(k), keep_max=keep_max)
        for blk, flat in self._blocks():
            Db, Ib = flat.search(x, min(int(k), len(blk)))
            heap.add_result(Db, np.where(Ib >= 0, blk[np.maximum(Ib, 0)], -1))
        heap.finalize()
        if D is not None:
            D[...] = heap.D
        if I is not None:
            I[...] = heap.I
        return heap.D, heap.I

    def assign(self, x, k=1, labels=None):
        I = self.search(x, k)[1]
        if labels is not None:
            labels[...] = I
        return I

    def range_search(self, x, radius, *, params=None):
        """Exact (lims, D, I) of the stored vectors within radius, each
        query's results in the graph's order of ids."""
        if params is not None:
            raise _nearly.InvalidArgumentError("GraphStorage.range_search takes no search parameters")
        x = self._queries(x)
        per_query_D = [[] for _ in range(len(x))]
        per_query_I = [[] for _ in range(len(x))]
        for blk, flat in self._blocks():
            lims, Db, Ib = flat.range_search(x, radius)
            for q in range(len(x)):
                per_query_D[q].append(Db[lims[q]:lims[q + 1]])
                per_query_I[q].append(blk[Ib[lims[q]:lims[q + 1]]])
        lims = np.zeros(len(x) + 1, dtype=np.uint64)
        lims[1:] = np.cumsum([sum(len(p) for p in parts) for parts in per_query_I])
        D = np.concatenate([a for parts in per_query_D for a in parts] or [np.zeros(0, np.float32)])
        I = np.concatenate([a for parts in per_query_I for a in parts] or [np.zeros(0, np.int64)])
        return lims, D.astype(np.float32, copy=False), I.astype(np.int64, copy=False)

    def _read_only(self, *args, **kwargs):
        raise RuntimeError(f"the storage of a {type(self._index).__name__} is a read-only view: nearly keeps the "
                           "vectors inside the graph's nodes, so add to (train, reset, remove from) the graph index "
                           "itself")

    add = add_with_ids = train = reset = remove_ids = merge_from = _read_only


    def _as_flat(self):
        """An IndexFlat of the stored vectors (their reconstructions), in
        slot order, with the graph index's metric: what clone_index gives."""
        flat = _nearly.IndexFlat(self.d, self.metric_type)
        if self.metric_type not in (_nearly.METRIC_L2, _nearly.METRIC_INNER_PRODUCT):
            flat.metric_arg = self.metric_arg
        flat.add(self.get_xb().reshape(-1, self.d))
        return flat


def _storage(index):
    # None: read from a file written with IO_FLAG_SKIP_STORAGE (faiss's null storage).
    return GraphStorage(index) if getattr(index, "_has_vectors", True) else None


def _set_storage(index, value):
    """faiss's `index.storage = other`: IndexHNSWFlat and its SQ8 / fp16 /
    bf16, Cagra and Panorama kinds take the vectors of `other` (any index that
    reconstructs them, one per node, in the graph's slot order: the order of
    ids when they are 0 .. ntotal-1 and nothing was removed) into their nodes;
    the graph is kept. This is how an index written with IO_FLAG_SKIP_STORAGE
    gets its vectors back. The nodes are encoded from the vectors given: the
    original vectors give the same index bit for bit; the SQ8 and bf16 kinds'
    own reconstructions re-encode slightly differently."""
    if not hasattr(index, "_set_vectors"):
        raise RuntimeError(f"{type(index).__name__}.storage cannot be replaced: nearly keeps the vectors inside the "
                           "graph's nodes (build the index of the storage type you want: IndexHNSWFlat, IndexHNSWSQ, "
                           "IndexHNSWPQ)")
    if isinstance(value, GraphStorage) and value.index is index:
        return  # its own vectors
    if value is None or not hasattr(value, "reconstruct_n") or isinstance(value, _nearly.IndexBinary):
        raise RuntimeError(f"{type(index).__name__}.storage: give an index holding the vectors (an IndexFlat, ...), "
                           f"got {type(value).__name__}")
    if value.d != index.d:
        raise _nearly.InvalidArgumentError(f"the storage has d = {value.d}, the index d = {index.d}")
    if getattr(value, "metric_type", index.metric_type) != index.metric_type:
        raise _nearly.InvalidArgumentError(f"the storage's metric ({value.metric_type}) is not the index's "
                                           f"({index.metric_type})")
    index._set_vectors(value.reconstruct_n(0, value.ntotal) if value.ntotal else
                       np.zeros((0, index.d), dtype=np.float32))


for _name in ("IndexHNSWFlat", "IndexHNSWSQCodes", "IndexHNSWPQ", "IndexNSGFlat", "IndexNNDescentFlat"):
    if hasattr(_nearly, _name):
        getattr(_nearly, _name).storage = property(_storage, _set_storage, doc=GraphStorage.__doc__)


class VisitedTableVector:
    """faiss's VisitedTableVector(n): one visited flag per graph node, for
    `index.nsg.dfs(vt, root, cnt)` (which counts the nodes reachable from a
    node). `visited` is the flag array itself."""

    def __init__(self, n):
        if int(n) < 0:
            raise ValueError("VisitedTableVector: n must be non-negative")
        self.visited = np.zeros(int(n), np.uint8)

    def set(self, i):
        self.visited[i] = 1

    def get(self, i):
        return bool(self.visited[i])

    def advance(self):
        self.visited[:] = 0


class NSGGraph(np.ndarray):
    """`index.nsg.get_final_graph()`: the (ntotal, R) neighbour ids, -1
    padded, an int32 array that also answers faiss's nsg::Graph fields: N
    (nodes), K (links per node), `data` (the ids, for
    faiss.memcpy(swig_ptr(out), graph.data, nbytes)), at(i, j) and
    get_neighbors(i)."""

    N = property(lambda self: int(self.shape[0]))
    K = property(lambda self: int(self.shape[1]))
    data = property(lambda self: np.asarray(self).reshape(-1))

    def at(self, i, j):
        return int(np.asarray(self)[i, j])

    def get_neighbors(self, i, neighbors=None):
        """Node i's valid neighbours (faiss fills `neighbors` and returns
        their count; given an array, nearly does the same)."""
        row = np.asarray(self)[i]
        valid = row[row >= 0]
        if neighbors is None:
            return valid.copy()
        neighbors[:len(valid)] = valid
        return len(valid)


class _Count(int):
    """An int that can also be called, so that `a.size` (numpy's attribute)
    and `v.size()` (a faiss std::vector's method) both read it."""

    def __call__(self):
        return int(self)


class VectorArray(np.ndarray):
    """A 1-D numpy array that also answers a faiss std::vector's calls:
    `at(i)`, `size()`, `empty()` (the HNSW arrays: `hnsw.levels`,
    `cum_nneighbor_per_level`, ..., which faiss code and contrib read with
    `.at(1)`)."""

    @property
    def size(self):
        return _Count(np.ndarray.size.__get__(self))

    def at(self, i):
        n = np.ndarray.size.__get__(self)
        if not 0 <= int(i) < n:
            raise IndexError(f"vector index {i} out of range (size {n})")
        return np.asarray(self)[int(i)].item()

    def empty(self):
        return np.ndarray.size.__get__(self) == 0


def _as_vector_property(name):
    raw = getattr(_nearly.HNSW, name)
    return property(lambda self: raw.fget(self).view(VectorArray), doc=raw.__doc__)


for _name in ("levels", "assign_probas", "cum_nneighbor_per_level", "offsets", "neighbors"):
    setattr(_nearly.HNSW, _name, _as_vector_property(_name))


def _get_final_graph(nsg, _raw=_nearly.NSG.get_final_graph):
    return _raw(nsg).view(NSGGraph)


_get_final_graph.__doc__ = NSGGraph.__doc__
_nearly.NSG.get_final_graph = _get_final_graph
