"""Multi-vector retrieval: MUVERA Fixed Dimensional Encodings and Chamfer scores.

A document or query is a set of vectors (one per token, say). Collections of
sets are passed ragged: all vectors in one (total, d) float32 array plus the
number of vectors of each set; a list of (n_i, d) arrays (lengths=None) or a
3-D (n_sets, n, d) array is accepted too.

``fde_encode_documents`` / ``fde_encode_queries`` turn each set into one
vector (Dhulipala et al., "MUVERA", NeurIPS 2024) whose inner products
approximate the Chamfer similarity; the encodings are bit for bit those of
Google's reference implementation (google/graph-mining) for the same config.
``chamfer_scores`` computes the exact Chamfer (MaxSim) similarity.
"""
import operator

import numpy as np

from . import _nearly
from ._nearly import InvalidArgumentError

__all__ = ["FDEConfig", "fde_encode_queries", "fde_encode_documents", "chamfer_scores", "chamfer_scores_batch"]

_PROJECTIONS = ("identity", "ams_sketch")


def _as_int(name, value, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool):
        raise InvalidArgumentError(f"{name} must be an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise InvalidArgumentError(f"{name} must be an integer, got {value!r}") from None


class FDEConfig:
    """Parameters of a Fixed Dimensional Encoding, as in the reference's config proto.

    - dimension: d of the input vectors
    - num_repetitions: independent repetitions, concatenated
    - num_simhash_projections: k; space is cut into 2^k partitions (0 <= k < 31)
    - seed: repetition r draws its matrices from seed + r (int32)
    - projection_type: "identity" (blocks of d coordinates) or "ams_sketch"
      (blocks of projection_dimension coordinates)
    - fill_empty_partitions: documents only; an empty partition takes the point
      nearest to it (Hamming distance of the SimHash signs)
    - final_projection_dimension: None, or the size of a final Count-Sketch

    The encoding has ``fde_dim`` coordinates. Query and document encodings
    must use the same config. The random matrices are drawn once per config
    and reused; changing an attribute draws them again.
    """

    def __init__(self, dimension, num_repetitions=1, num_simhash_projections=0, seed=1,
                 projection_type="identity", projection_dimension=None, fill_empty_partitions=False,
                 final_projection_dimension=None):
        self.dimension = dimension
        self.num_repetitions = num_repetitions
        self.num_simhash_projections = num_simhash_projections
        self.seed = seed
        self.projection_type = projection_type
        self.projection_dimension = projection_dimension
        self.fill_empty_partitions = fill_empty_partitions
        self.final_projection_dimension = final_projection_dimension
        self._native()  # validates now rather than at the first encode

    _FIELDS = ("dimension", "num_repetitions", "num_simhash_projections", "seed", "projection_type",
               "projection_dimension", "fill_empty_partitions", "final_projection_dimension")

    def __setattr__(self, name, value):
        if name in self._FIELDS:
            self.__dict__.pop("_encoder", None)
        object.__setattr__(self, name, value)

    def _native(self):
        enc = self.__dict__.get("_encoder")
        if enc is None:
            enc = self._build()
            self.__dict__["_encoder"] = enc
        return enc

    def _build(self):
        if self.projection_type not in _PROJECTIONS:
            raise InvalidArgumentError(
                f"projection_type must be 'identity' or 'ams_sketch', got {self.projection_type!r}")
        seed = _as_int("seed", self.seed)
        if not -2 ** 31 <= seed < 2 ** 31:
            raise InvalidArgumentError(f"seed must fit in int32 like the reference's, got {seed}")
        proj = _as_int("projection_dimension", self.projection_dimension, allow_none=True)
        if self.projection_type == "ams_sketch" and proj is None:
            raise InvalidArgumentError("projection_type 'ams_sketch' needs projection_dimension")
        final = _as_int("final_projection_dimension", self.final_projection_dimension, allow_none=True)
        if final is not None and final <= 0:
            raise InvalidArgumentError(f"final_projection_dimension must be positive or None, got {final}")
        if not isinstance(self.fill_empty_partitions, (bool, np.bool_)):
            raise InvalidArgumentError("fill_empty_partitions must be True or False")
        ints = {name: _as_int(name, getattr(self, name))
                for name in ("dimension", "num_repetitions", "num_simhash_projections")}
        for name, v in ints.items():
            if not -2 ** 31 <= v < 2 ** 31:
                raise InvalidArgumentError(f"{name} is out of range: {v}")
        for name, v in (("projection_dimension", proj), ("final_projection_dimension", final)):
            if v is not None and not -2 ** 31 <= v < 2 ** 31:
                raise InvalidArgumentError(f"{name} is out of range: {v}")
        return _nearly._FdeEncoder(
            seed=seed, projection_type=self.projection_type,
            projection_dimension=proj if (proj is not None and self.projection_type == "ams_sketch") else 0,
            fill_empty_partitions=bool(self.fill_empty_partitions),
            final_projection_dimension=final or 0, **ints)

    @property
    def fde_dim(self):
        """Coordinates of one encoding."""
        return self._native().output_dimension

    def __repr__(self):
        args = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._FIELDS)
        return f"FDEConfig({args})"

    def __eq__(self, other):
        if not isinstance(other, FDEConfig):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self._FIELDS)

    __hash__ = None

    def __getstate__(self):
        return {f: getattr(self, f) for f in self._FIELDS}

    def __setstate__(self, state):
        for f in self._FIELDS:
            setattr(self, f, state[f])


def _ragged(vectors, lengths, d, what):
    """(vectors as a (total, d) float32 array or array-like, lengths as int64)."""
    if lengths is not None:
        return vectors, np.asarray(lengths, dtype=np.int64) if not isinstance(lengths, np.ndarray) else lengths
    if isinstance(vectors, (list, tuple)):
        sets = []
        for i, s in enumerate(vectors):
            a = np.asarray(s, dtype=np.float32)
            if a.ndim != 2 or (d is not None and a.shape[1] != d):
                expected = "(n, d)" if d is None else f"(n, {d})"
                raise InvalidArgumentError(f"{what} set {i} must be a 2-D array of shape {expected}, "
                                           f"got shape {a.shape}")
            sets.append(a)
        if not sets:
            return np.zeros((0, d or 0), dtype=np.float32), np.zeros(0, dtype=np.int64)
        return np.concatenate(sets), np.array([len(s) for s in sets], dtype=np.int64)
    a = np.asarray(vectors, dtype=np.float32)
    if a.ndim == 3:  # (n_sets, n, d): sets of one size
        return a.reshape(-1, a.shape[2]), np.full(a.shape[0], a.shape[1], dtype=np.int64)
    if a.ndim == 2:  # one set
        return a, np.array([a.shape[0]], dtype=np.int64)
    raise InvalidArgumentError(f"{what}: pass a (total, d) array with lengths, a list of (n_i, d) arrays, "
                               f"or an (n_sets, n, d) array; got shape {a.shape}")


def _check_config(config):
    if not isinstance(config, FDEConfig):
        raise InvalidArgumentError(f"config must be a nearly.FDEConfig, got {type(config).__name__}")
    return config._native()


def fde_encode_queries(vectors, lengths, config):
    """Query encodings (partition sums): float32 array (n_sets, config.fde_dim)."""
    enc = _check_config(config)
    x, n = _ragged(vectors, lengths, config.dimension, "vectors")
    return enc.encode_queries(x, n)


def fde_encode_documents(vectors, lengths, config):
    """Document encodings (partition averages): float32 array (n_sets, config.fde_dim)."""
    enc = _check_config(config)
    x, n = _ragged(vectors, lengths, config.dimension, "vectors")
    return enc.encode_documents(x, n)


def chamfer_scores(query_vectors, doc_vectors, doc_lengths=None):
    """Exact Chamfer (MaxSim) similarity of one query set to each document.

    query_vectors: (m, d). Documents ragged (doc_vectors (total, d) with
    doc_lengths) or a list of (n_i, d) arrays. Returns float32 (n_docs,):
    sum over query vectors of the largest inner product with the document's.
    """
    q = np.asarray(query_vectors, dtype=np.float32)
    if q.ndim != 2:
        raise InvalidArgumentError(f"query_vectors must be a 2-D (m, d) array, got shape {q.shape}")
    if len(q) == 0:
        raise InvalidArgumentError("query_vectors is empty: a query needs at least one vector")
    x, n = _ragged(doc_vectors, doc_lengths, q.shape[1], "doc_vectors")
    return _nearly._chamfer_scores(q, np.array([len(q)], dtype=np.int64), x, n)[0]


def chamfer_scores_batch(query_vectors, query_lengths, doc_vectors, doc_lengths=None):
    """Exact Chamfer similarity of many query sets to many documents: float32 (n_queries, n_docs).

    Both sides ragged ((total, d) array plus lengths) or lists of (n_i, d) arrays.
    """
    q, qn = _ragged(query_vectors, query_lengths, None, "query_vectors")
    q = np.asarray(q, dtype=np.float32)
    d = q.shape[1] if q.ndim == 2 else None
    x, n = _ragged(doc_vectors, doc_lengths, d, "doc_vectors")
    return _nearly._chamfer_scores(q, qn, x, n)
