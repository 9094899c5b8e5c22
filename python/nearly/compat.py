"""Small faiss helpers that user code calls; no-ops or plain copies here."""
import numpy as np

from . import _nearly
from .shards import IndexReplicas, IndexShards


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


class ParameterSpace:
    """faiss's ParameterSpace for what user code calls it for: setting search
    parameters by name on an index and whatever wraps it
    (``set_index_parameter(index, "nprobe", 16)``,
    ``set_index_parameters(index, "nprobe=16,efSearch=64")``), with faiss's
    names and rules: IDMap and pre-transforms pass every name to the index
    inside; a refine index takes ``k_factor_rf`` and passes the rest to its
    base; ``quantizer_<name>`` goes to an IVF index's quantizer; ``efSearch``
    and ``efConstruction`` on an IVF index reach an HNSW quantizer;
    ``verbose`` is set on every level. A name that applies nowhere raises
    RuntimeError, as in faiss. The auto-tuning (``explore``, operating
    points) is not provided."""

    def __init__(self):
        self.verbose = 0

    def set_index_parameters(self, index, description):
        if not isinstance(description, str):
            raise TypeError("set_index_parameters: nearly takes a string like 'nprobe=16,efSearch=64' "
                            "(not a combination number: the auto-tuning is not provided)")
        for item in description.split(","):
            item = item.strip()
            if not item:
                continue
            name, sep, value = item.partition("=")
            try:
                val = float(value)
            except ValueError:
                val = None
            if not sep or not name or val is None:
                raise RuntimeError(f"ParameterSpace::set_index_parameters: could not interpret parameters {description!r}")
            self.set_index_parameter(index, name.strip(), val)

    def set_index_parameter(self, index, name, val):
        if self.verbose > 1:
            print(f"    set_index_parameter {name}={val:g}")
        if name == "verbose":
            index.verbose = bool(int(val))  # and on the indexes inside, below
        if isinstance(index, (IndexShards, IndexReplicas)):  # every part
            for i in range(index.count()):
                self.set_index_parameter(index.at(i), name, val)
            return
        if isinstance(index, (_nearly.IndexIDMap, _nearly.IndexPreTransform, _nearly.IndexBinaryIDMap)):
            return self.set_index_parameter(index.index, name, val)
        if isinstance(index, _nearly.IndexRefine):
            if name == "k_factor_rf":
                index.k_factor = float(int(val))
                return
            return self.set_index_parameter(index.base_index, name, val)
        if name == "verbose":
            return
        ivf = isinstance(index, (_nearly.IndexIVF, _nearly.IndexBinaryIVF))
        if name == "nprobe" and ivf:
            index.nprobe = int(val)
            return
        fast_scan = isinstance(index, (_nearly.IndexPQFastScan, _nearly.IndexIVFPQFastScan))  # not PQ classes in faiss
        if name == "ht" and isinstance(index, (_nearly.IndexPQ, _nearly.IndexIVFPQ)) and not fast_scan:
            # faiss: ht >= the code's bit count means plain PQ search, the
            # only search nearly has; a smaller one asks for polysemous filtering.
            if val >= index.pq.code_size * 8:
                return
            raise RuntimeError("ParameterSpace::set_index_parameter: polysemous search (ht < code bits) "
                               "is not supported by nearly")
        if name in ("efSearch", "efConstruction"):
            target = index if hasattr(index, "hnsw") else None
            if target is None and ivf and hasattr(index.quantizer, "hnsw"):
                target = index.quantizer
            if target is not None:
                setattr(target.hnsw, name, int(val))
                return
        if name.startswith("quantizer_") and ivf:
            return self.set_index_parameter(index.quantizer, name[len("quantizer_"):], val)
        raise RuntimeError(f"ParameterSpace::set_index_parameter: could not set parameter {name}")


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
