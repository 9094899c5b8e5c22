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

Two indexes search collections of sets:

- ``IndexMultiVectorFlat(d)``: exact Chamfer brute force (the ground truth),
  native and batched.
- ``IndexMuvera(d, fde_config, inner="HNSW32", k_factor=10)``: documents are
  encoded as FDEs into an inner single-vector inner-product index built by
  ``index_factory``; a search encodes the query sets, takes ``k * k_factor``
  candidates from the inner index and re-ranks them by exact Chamfer
  similarity on the stored token vectors (float32, or float16 with
  ``token_dtype="float16"``).
"""
import json
import operator
import struct
import sys
import time
import zlib

import numpy as np

from . import _nearly
from ._nearly import InvalidArgumentError

__all__ = ["FDEConfig", "fde_encode_queries", "fde_encode_documents", "chamfer_scores", "chamfer_scores_batch",
           "IndexMultiVectorFlat", "IndexMuvera"]

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


# ---------------------------------------------------------------------------
# Multi-vector indexes
# ---------------------------------------------------------------------------

def _sets(vectors, lengths, d, what):
    """Ragged input checked against d: (C-contiguous float32 (total, d), int64 lengths)."""
    x, n = _ragged(vectors, lengths, d, what)
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise InvalidArgumentError(f"{what} must be a 2-D array of shape (total, {d}), got shape {x.shape}")
    if x.shape[1] != d:
        raise InvalidArgumentError(f"{what} has {x.shape[1]} columns, expected d={d}")
    n = np.ascontiguousarray(n)
    if n.ndim != 1:
        raise InvalidArgumentError(f"{what}: lengths must be a 1-D array of per-set vector counts, "
                                   f"got shape {n.shape}")
    if n.dtype.kind not in "iu":
        if n.size and not np.all(np.isfinite(n)) or n.size and not np.all(n == np.round(n)):
            raise InvalidArgumentError(f"{what}: lengths must be integers")
    n = n.astype(np.int64, copy=False)
    if n.size and n.min() <= 0:
        i = int(np.argmin(n))
        raise InvalidArgumentError(f"{what}: set {i} has {int(n[i])} vectors; every set needs at least one")
    if int(n.sum()) != x.shape[0]:
        raise InvalidArgumentError(f"{what}: the lengths sum to {int(n.sum())} but there are {x.shape[0]} vectors")
    return x, n


def _check_k(k):
    if isinstance(k, (bool, np.bool_)):
        raise InvalidArgumentError("k must be an integer")
    try:
        k = operator.index(k)
    except TypeError:
        raise InvalidArgumentError(f"k must be an integer, got {k!r}") from None
    if k <= 0:
        raise InvalidArgumentError(f"k must be positive (got {k})")
    return k


def _empty_result(k):
    return np.zeros((0, k), dtype=np.float32), np.zeros((0, k), dtype=np.int64)


def _as_bytes(data):
    if isinstance(data, np.ndarray):
        return data.tobytes()
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise InvalidArgumentError(f"data must be bytes or a uint8 array, got {type(data).__name__}")


class _TokenStoreIndex:
    """What both multi-vector indexes expose about their stored token vectors."""

    read_only = False  # set by read_index with IO_FLAG_READ_ONLY / IO_FLAG_MMAP

    def _check_writable(self):
        if self.read_only:
            raise RuntimeError(f"this {type(self).__name__} was read with IO_FLAG_READ_ONLY "
                               "or IO_FLAG_MMAP and cannot be modified")

    @property
    def d(self):
        return self._store.d

    @property
    def ntotal(self):
        """Number of documents."""
        return self._store.n_docs

    @property
    def n_vectors(self):
        """Number of stored token vectors."""
        return self._store.n_vectors

    @property
    def token_dtype(self):
        return self._store.dtype


class IndexMultiVectorFlat(_TokenStoreIndex):
    """Exact Chamfer (MaxSim) brute force over multi-vector documents.

    ``add(vectors, lengths)`` / ``add_with_ids(vectors, lengths, ids)`` take
    ragged document sets; ``search(vectors, lengths, k)`` returns D float32
    (nq, k), the Chamfer scores in descending order, and I int64 (nq, k), the
    documents' ids (their add order by default), padded with -FLT_MAX / -1.
    Scoring runs in C++ (the packed SIMD matrix multiply of chamfer_scores,
    multi-threaded over blocks of queries and documents). ``ntotal`` counts
    documents. Picklable.
    """

    def __init__(self, d, token_dtype="float32"):
        d = _as_int("d", d)
        if d <= 0:
            raise InvalidArgumentError(f"d must be positive, got {d}")
        self._store = _nearly._MultiVectorStore(d, token_dtype)

    def add(self, vectors, lengths=None):
        self._check_writable()
        x, n = _sets(vectors, lengths, self.d, "vectors")
        self._store.add(x, n, None)

    def add_with_ids(self, vectors, lengths, ids):
        self._check_writable()
        x, n = _sets(vectors, lengths, self.d, "vectors")
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if ids.shape != n.shape:
            raise InvalidArgumentError(f"ids must be a 1-D array of {len(n)} int64 ids, got shape {ids.shape}")
        self._store.add(x, n, ids)

    def search(self, vectors, lengths, k):
        k = _check_k(k)
        q, qn = _sets(vectors, lengths, self.d, "query vectors")
        if len(qn) == 0:
            return _empty_result(k)
        return self._store.search(q, qn, k)

    def remove_ids(self, sel):
        """Removes documents by id (an id array or an IDSelector); returns how many."""
        self._check_writable()
        return len(self._store.remove_ids(sel))

    def reset(self):
        self._check_writable()
        self._store.reset()

    def serialize(self):
        """Versioned, checksummed bytes (uint8 array); see ``deserialize``."""
        return self._store.serialize()

    @classmethod
    def deserialize(cls, data):
        obj = cls.__new__(cls)
        obj._store = _nearly._MultiVectorStore.deserialize(_as_bytes(data))
        return obj

    def __reduce__(self):
        return IndexMultiVectorFlat.deserialize, (self.serialize().tobytes(),)

    def __repr__(self):
        return f"IndexMultiVectorFlat(d={self.d}, ntotal={self.ntotal}, token_dtype={self.token_dtype!r})"


_MUVERA_MAGIC = b"NEARLYMU"
_MUVERA_VERSION = 1


class IndexMuvera(_TokenStoreIndex):
    """Multi-vector search with MUVERA Fixed Dimensional Encodings.

    add: each document's vectors -> its FDE (``fde_encode_documents``) -> an
    inner single-vector index built as ``index_factory(fde_dim, inner,
    METRIC_INNER_PRODUCT)`` (e.g. "Flat", "HNSW32", "HNSW32,SQ8",
    "HNSW32,SQfp16", or PQ-compressed FDEs like the paper's "PQ256x8" or
    "IVF1024,PQ64"; those need ``train(vectors, lengths)`` on sample
    documents first). The token vectors are kept (float32, or IEEE fp16 with
    ``token_dtype="float16"``) for re-ranking.

    search: query sets -> query FDEs -> the inner index's top ``k *
    k_factor`` candidates (``params`` is passed to the inner search, e.g.
    ``SearchParametersHNSW(efSearch=...)``; ``k_factor`` may be overridden
    per call) -> exact Chamfer re-ranking of the candidates on the original
    query vectors -> top k: D float32 (nq, k) Chamfer scores descending, I
    int64 (nq, k) ids, padded with -FLT_MAX / -1.

    ball_carving=True clusters each query set greedily before encoding (a
    vector joins the most similar existing cluster whose first vector has
    cosine similarity >= ball_carving_tau, 0.7 by default, else it starts a
    cluster; each cluster is replaced by the sum of its vectors), as in the
    paper. Only the query FDE changes: re-ranking still uses every original
    query vector, so returned scores are exact Chamfer scores.

    The FDE config's fill_empty_partitions applies to documents only; queries
    are encoded with it off. Documents get internal keys (never reused) that
    serve as the inner index's ids, so remove_ids removes from both. Pickle
    and ``serialize``/``deserialize`` use a versioned, checksummed container
    (corrupt data raises nearly.IndexFileError). ``verbose`` prints progress.
    """

    def __init__(self, d, fde_config, inner="HNSW32", k_factor=10, *, token_dtype="float32",
                 ball_carving=False, ball_carving_tau=0.7, verbose=False):
        d = _as_int("d", d)
        if d <= 0:
            raise InvalidArgumentError(f"d must be positive, got {d}")
        _check_config(fde_config)
        if fde_config.dimension != d:
            raise InvalidArgumentError(f"fde_config.dimension is {fde_config.dimension} but the index has d={d}")
        if not isinstance(inner, str):
            raise InvalidArgumentError(f"inner must be an index_factory string, got {type(inner).__name__}")
        self.k_factor = k_factor
        self._check_k_factor(k_factor)
        tau = float(ball_carving_tau)
        if not -1.0 <= tau <= 1.0:
            raise InvalidArgumentError(f"ball_carving_tau must be in [-1, 1], got {ball_carving_tau}")
        self.ball_carving = bool(ball_carving)
        self.ball_carving_tau = tau
        self.verbose = bool(verbose)
        self.inner_description = inner
        self._set_config(fde_config)
        self._store = _nearly._MultiVectorStore(d, token_dtype)
        self.inner_index = self._build_inner(inner, self.fde_config.fde_dim)

    # -- construction helpers
    def _set_config(self, config):
        self.fde_config = FDEConfig(**config.__getstate__())  # our own copy: later edits don't change the index
        q = config.__getstate__()
        q["fill_empty_partitions"] = False
        self._query_config = FDEConfig(**q)

    @staticmethod
    def _build_inner(description, fde_dim):
        from .factory import index_factory
        index = index_factory(fde_dim, description, _nearly.METRIC_INNER_PRODUCT)
        if not isinstance(index, _nearly.IndexIDMap):
            index = _nearly.IndexIDMap(index)  # the documents' keys as ids, for remove_ids
        return index

    @staticmethod
    def _check_k_factor(k_factor):
        if isinstance(k_factor, (bool, np.bool_)) or not isinstance(k_factor, (int, np.integer)) or k_factor < 1:
            raise InvalidArgumentError(f"k_factor must be an integer >= 1, got {k_factor!r}")

    def _log(self, msg):
        if self.verbose:
            print(f"IndexMuvera: {msg}", file=sys.stderr, flush=True)

    # -- properties (d, ntotal, n_vectors, token_dtype: _TokenStoreIndex)
    @property
    def fde_dim(self):
        return self.fde_config.fde_dim

    # -- writes
    _ADD_BATCH = 16384  # documents per encoding batch (bounds memory, paces verbose progress)

    @property
    def is_trained(self):
        """False until train() when the inner index learns from data (PQ, IVF)."""
        return bool(self.inner_index.is_trained)

    def train(self, vectors, lengths=None):
        """Trains the inner index on the FDEs of these documents (PQ codebooks,
        IVF centroids); nothing is added."""
        self._check_writable()
        x, n = _sets(vectors, lengths, self.d, "vectors")
        if len(n) == 0:
            raise InvalidArgumentError("train needs at least one document")
        if not np.isfinite(x).all():
            raise InvalidArgumentError("the document vectors contain NaN or infinity")
        t0 = time.perf_counter()
        fde = fde_encode_documents(x, n, self.fde_config)
        self.inner_index.verbose = self.verbose
        self.inner_index.train(fde)
        self._log(f"trained the inner index ({self.inner_description}) on {len(n)} documents in "
                  f"{time.perf_counter() - t0:.2f} s")

    def add(self, vectors, lengths=None):
        self._add(vectors, lengths, None)

    def add_with_ids(self, vectors, lengths, ids):
        self._add(vectors, lengths, ids)

    def _add(self, vectors, lengths, ids):
        self._check_writable()
        x, n = _sets(vectors, lengths, self.d, "vectors")
        if ids is not None:
            ids = np.ascontiguousarray(ids, dtype=np.int64)
            if ids.shape != n.shape:
                raise InvalidArgumentError(f"ids must be a 1-D array of {len(n)} int64 ids, got shape {ids.shape}")
        if len(n) == 0:
            return
        if not self.is_trained:
            raise RuntimeError(f"IndexMuvera: the inner index ({self.inner_description}) is not trained; "
                               "call train(vectors, lengths) on sample documents first")
        if not np.isfinite(x).all():
            raise InvalidArgumentError("the document vectors contain NaN or infinity")
        offsets = np.zeros(len(n) + 1, dtype=np.int64)
        np.cumsum(n, out=offsets[1:])
        t0 = time.perf_counter()
        for s0 in range(0, len(n), self._ADD_BATCH):
            s1 = min(len(n), s0 + self._ADD_BATCH)
            xb, nb = x[offsets[s0]:offsets[s1]], n[s0:s1]
            fde = fde_encode_documents(xb, nb, self.fde_config)
            keys = self._store.add(xb, nb, None if ids is None else ids[s0:s1])
            self.inner_index.add_with_ids(fde, keys)
            self._log(f"added {s1}/{len(n)} documents ({offsets[s1]} vectors) in "
                      f"{time.perf_counter() - t0:.2f} s")

    def remove_ids(self, sel):
        """Removes documents by id (an id array or an IDSelector); returns how many."""
        self._check_writable()
        keys = self._store.remove_ids(sel)
        if len(keys):
            self.inner_index.remove_ids(keys)
        self._log(f"removed {len(keys)} documents")
        return len(keys)

    def reset(self):
        self._check_writable()
        self._store.reset()
        self.inner_index.reset()

    # -- search
    def encode_queries(self, vectors, lengths=None):
        """The query FDEs this index searches with (after ball carving when enabled)."""
        q, qn = _sets(vectors, lengths, self.d, "query vectors")
        return self._encode_queries(q, qn)

    def _encode_queries(self, q, qn):
        if self.ball_carving:
            q, qn = _nearly._ball_carve(q, qn, self.ball_carving_tau)
        return fde_encode_queries(q, qn, self._query_config)

    def search(self, vectors, lengths, k, *, params=None, k_factor=None):
        k = _check_k(k)
        if k_factor is None:
            k_factor = self.k_factor
        self._check_k_factor(k_factor)
        q, qn = _sets(vectors, lengths, self.d, "query vectors")
        if len(qn) == 0:
            return _empty_result(k)
        if not np.isfinite(q).all():
            raise InvalidArgumentError("the query vectors contain NaN or infinity")
        t0 = time.perf_counter()
        fde = self._encode_queries(q, qn)
        t1 = time.perf_counter()
        n_cand = k * int(k_factor)
        _, cand = self.inner_index.search(fde, n_cand, params=params)
        t2 = time.perf_counter()
        D, I = self._store.rerank(q, qn, cand, k)
        self._log(f"{len(qn)} queries: encode {t1 - t0:.3f} s, inner search ({n_cand} candidates) "
                  f"{t2 - t1:.3f} s, re-rank {time.perf_counter() - t2:.3f} s")
        return D, I

    def _copy(self):
        """An independent copy: the inner index cloned, the token store copied
        in memory (what a GPU copy keeps for index_gpu_to_cpu; much cheaper than
        a serialize round trip)."""
        from .compat import clone_index
        obj = IndexMuvera.__new__(IndexMuvera)
        obj.k_factor = self.k_factor
        obj.ball_carving = self.ball_carving
        obj.ball_carving_tau = self.ball_carving_tau
        obj.verbose = self.verbose
        obj.inner_description = self.inner_description
        obj._set_config(self.fde_config)
        obj.inner_index = clone_index(self.inner_index)
        obj._store = self._store.clone()
        return obj

    # -- persistence
    def _header(self):
        return {
            "d": self.d,
            "fde_config": self.fde_config.__getstate__(),
            "inner": self.inner_description,
            "k_factor": int(self.k_factor),
            "token_dtype": self.token_dtype,
            "ball_carving": self.ball_carving,
            "ball_carving_tau": self.ball_carving_tau,
        }

    def serialize(self):
        """The index as bytes: magic "NEARLYMU", u32 version, JSON header (config),
        the inner index (serialize_index), the token store (its own versioned,
        checksummed format), then a CRC-32 of everything before it."""
        header = json.dumps(self._header(), sort_keys=True).encode()
        inner = _nearly.serialize_index(self.inner_index).tobytes()
        store = self._store.serialize().tobytes()
        parts = [_MUVERA_MAGIC, struct.pack("<I", _MUVERA_VERSION)]
        for blob in (header, inner, store):
            parts += [struct.pack("<Q", len(blob)), blob]
        body = b"".join(parts)
        return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)

    @classmethod
    def deserialize(cls, data):
        data = _as_bytes(data)
        err = _nearly.IndexFileError

        def fail(why):
            raise err(f"cannot read IndexMuvera: {why}")

        if len(data) < 12 or data[:8] != _MUVERA_MAGIC:
            fail("not an IndexMuvera (bad magic)")
        (crc,) = struct.unpack("<I", data[-4:])
        if zlib.crc32(data[:-4]) & 0xFFFFFFFF != crc:
            fail("checksum mismatch (truncated or corrupt data)")
        (version,) = struct.unpack("<I", data[8:12])
        if version != _MUVERA_VERSION:
            fail(f"unsupported format version {version} (this build reads {_MUVERA_VERSION})")
        pos, blobs, end = 12, [], len(data) - 4
        for _ in range(3):
            if pos + 8 > end:
                fail("truncated data")
            (size,) = struct.unpack("<Q", data[pos:pos + 8])
            pos += 8
            if size > end - pos:
                fail("truncated data")
            blobs.append(data[pos:pos + size])
            pos += size
        if pos != end:
            fail("trailing bytes")
        try:
            h = json.loads(blobs[0].decode())
            config = FDEConfig(**h["fde_config"])
            obj = cls.__new__(cls)
            obj.k_factor = h["k_factor"]
            cls._check_k_factor(obj.k_factor)
            obj.ball_carving = bool(h["ball_carving"])
            obj.ball_carving_tau = float(h["ball_carving_tau"])
            obj.verbose = False
            obj.inner_description = str(h["inner"])
            obj._set_config(config)
            d = int(h["d"])
            token_dtype = h["token_dtype"]
        except err:
            raise
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
            fail(f"bad header ({type(e).__name__}: {e})")
        obj.inner_index = _nearly.deserialize_index(blobs[1])
        obj._store = _nearly._MultiVectorStore.deserialize(blobs[2])
        if config.dimension != d or obj._store.d != d or obj._store.dtype != token_dtype:
            fail("the header does not match the stored vectors")
        if obj.inner_index.d != config.fde_dim or obj.inner_index.ntotal != obj._store.n_docs:
            fail("the inner index does not match the documents")
        return obj

    def __reduce__(self):
        return IndexMuvera.deserialize, (self.serialize(),)

    def __repr__(self):
        return (f"IndexMuvera(d={self.d}, fde_dim={self.fde_dim}, inner={self.inner_description!r}, "
                f"k_factor={self.k_factor}, ntotal={self.ntotal}, token_dtype={self.token_dtype!r}, "
                f"ball_carving={self.ball_carving})")
