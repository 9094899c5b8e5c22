"""faiss's IndexShards and IndexReplicas: several indexes behind one.

IndexShards splits the database: ``add`` gives each shard a successive slice
of the vectors, ``search`` asks every shard and merges their results (ids
shifted by the sizes of the shards before it when ``successive_ids``).
IndexReplicas holds copies of one database: ``add`` goes to every replica and
``search`` splits the queries among them. Each part is any nearly index; the
parts' native searches release the GIL, so ``threaded=True`` runs them side
by side in Python threads, as faiss runs them in its own.
IndexBinaryShards and IndexBinaryReplicas are the same over binary indexes
(d in bits, uint8 codes, int32 Hamming distances)."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import _nearly
from .result_heap import best_k

_FLT_MAX = float(np.finfo(np.float32).max)
_HAMMING_PAD = 2147483647  # a binary index's missing result


def _split(n, parts):
    """faiss's slices: part i gets rows [i * n // parts, (i + 1) * n // parts)."""
    return [(i * n // parts, (i + 1) * n // parts) for i in range(parts)]


class _IndexCollection:
    _binary = False

    def __init__(self, d, threaded):
        # d None: taken from the first index attached (faiss's constructors
        # without d: IndexShards(threaded, successive_ids), IndexReplicas(threaded)).
        if d is not None and int(d) <= 0:
            raise _nearly.InvalidArgumentError("d must be positive")
        self.d = None if d is None else int(d)
        self.threaded = bool(threaded)
        self.metric_type = None
        self.verbose = False
        self._parts = []

    def _matrix(self, x):
        """The rows of x: float32 (n, d), or uint8 codes (n, d / 8) when binary."""
        if self.d is None:
            raise _nearly.InvalidArgumentError("no index attached yet (d comes from the first one)")
        width = self.d // 8 if self._binary else self.d
        x = np.ascontiguousarray(x, dtype=np.uint8 if self._binary else np.float32)
        if x.ndim != 2 or x.shape[1] != width:
            raise _nearly.InvalidArgumentError(f"x must have shape (n, {width}), got {x.shape}")
        return x

    def _is_binary(self, index):
        return isinstance(index, _nearly.IndexBinary) or (isinstance(index, _IndexCollection) and index._binary)

    def _attach(self, index):
        if self._is_binary(index) != self._binary:
            raise _nearly.InvalidArgumentError(
                f"{type(self).__name__} takes {'binary' if self._binary else 'float'} indexes, "
                f"got {type(index).__name__}")
        if self.d is None:
            self.d = index.d
        if index.d != self.d:
            raise _nearly.InvalidArgumentError(f"index has d={index.d}, expected {self.d}")
        if self._parts and index.metric_type != self.metric_type:
            raise _nearly.InvalidArgumentError("all indexes must have the same metric")
        self.metric_type = index.metric_type
        self._parts.append(index)

    def _detach(self, index):
        for i, part in enumerate(self._parts):
            if part is index:
                del self._parts[i]
                return
        raise RuntimeError("index not found among the parts")

    def _run(self, fn, items):
        if self.threaded and len(items) > 1:
            with ThreadPoolExecutor(len(items)) as pool:
                return list(pool.map(fn, items))
        return [fn(item) for item in items]

    # faiss's ThreadedIndex names, on both collections
    def addIndex(self, index):
        self._attach(index)

    def removeIndex(self, index):
        self._detach(index)

    def at(self, i):
        return self._parts[i]

    def count(self):
        return len(self._parts)

    @property
    def is_trained(self):
        return all(p.is_trained for p in self._parts)

    def train(self, x):
        x = self._matrix(x)
        self._run(lambda p: p.train(x), self._parts)

    def reset(self):
        for p in self._parts:
            p.reset()

    def syncWithSubIndexes(self):  # faiss's name; ntotal is always read from the parts
        pass

    def _search_args(self, x, k):
        x = self._matrix(x)
        k = int(k)
        if k <= 0:
            raise _nearly.InvalidArgumentError("k must be positive")
        return x, k

    def _similarity(self):  # larger is better: inner product, Jaccard
        return not self._binary and self.metric_type in (_nearly.METRIC_INNER_PRODUCT, _nearly.METRIC_Jaccard)

    def _padded(self, n, k):
        if self._binary:
            return np.full((n, k), _HAMMING_PAD, dtype=np.int32), np.full((n, k), -1, dtype=np.int64)
        pad = -_FLT_MAX if self._similarity() else _FLT_MAX
        return np.full((n, k), pad, dtype=np.float32), np.full((n, k), -1, dtype=np.int64)


class IndexShards(_IndexCollection):
    def __init__(self, d=None, threaded=False, successive_ids=True):
        if isinstance(d, bool):  # faiss's IndexShards(threaded, successive_ids): d from the first shard
            d, threaded, successive_ids = None, d, threaded if isinstance(threaded, bool) else successive_ids
        super().__init__(d, threaded)
        self.successive_ids = bool(successive_ids)

    add_shard = _IndexCollection._attach
    remove_shard = _IndexCollection._detach

    @property
    def ntotal(self):
        return sum(p.ntotal for p in self._parts)

    def add(self, x):
        x = self._matrix(x)
        if not self.successive_ids:
            start = self.ntotal
            return self.add_with_ids(x, np.arange(start, start + len(x), dtype=np.int64))
        self._add(x, None)

    def add_with_ids(self, x, ids):
        if self.successive_ids:
            raise RuntimeError("IndexShards: it makes no sense to pass in ids and request them to be shifted "
                               "(successive_ids=True)")
        x = self._matrix(x)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if ids.shape != (len(x),):
            raise _nearly.InvalidArgumentError(f"ids must have shape ({len(x)},)")
        self._add(x, ids)

    def _add(self, x, ids):
        if not self._parts:
            raise RuntimeError("IndexShards: no shard to add to")
        slices = _split(len(x), len(self._parts))

        def add_part(i):
            a, b = slices[i]
            if b > a:
                if ids is None:
                    self._parts[i].add(x[a:b])
                else:
                    self._parts[i].add_with_ids(x[a:b], ids[a:b])

        self._run(add_part, list(range(len(self._parts))))

    def search(self, x, k, *, params=None):
        x, k = self._search_args(x, k)
        if not self._parts:
            return self._padded(len(x), k)
        return self._merge(self._run(lambda p: p.search(x, k, params=params), self._parts), k)

    def _merge(self, results, k):
        """The k best of the shards' (D, I) per query, ids shifted when successive_ids."""
        offsets = np.cumsum([0] + [p.ntotal for p in self._parts[:-1]])
        D = np.concatenate([r[0] for r in results], axis=1)
        I = np.concatenate([np.where(r[1] >= 0, r[1] + (off if self.successive_ids else 0), -1)
                            for r, off in zip(results, offsets)], axis=1)
        # The k best of all shards; equal distances by smaller id, missing (-1) last.
        return best_k(D, I, k, self._similarity())


class IndexShardsIVF(IndexShards):
    """faiss's IndexShardsIVF: shards of one IVF index (IVF indexes of the
    same nlist over the same centroids, each holding part of the database)
    behind one coarse quantizer. The quantizer is searched once per batch,
    for every shard: add() places each vector there and hands each shard its
    slice with its lists (add_preassigned); search() gives every shard the
    same probed lists (search_preassigned) and merges the results.
    train() trains the quantizer (k-means of nlist centroids unless it
    already holds them), gives each shard's own quantizer the centroids and
    trains the shards' encoders."""

    def __init__(self, quantizer, nlist, threaded=False, successive_ids=True):
        if not isinstance(quantizer, _nearly.Index):
            raise TypeError(f"IndexShardsIVF: the quantizer must be an index (got {type(quantizer).__name__})")
        nlist = int(nlist)
        if nlist <= 0:
            raise _nearly.InvalidArgumentError("IndexShardsIVF: nlist must be positive")
        super().__init__(quantizer.d, threaded, successive_ids)
        self.quantizer = quantizer
        self.nlist = nlist
        self.cp = _nearly.ClusteringParameters()
        self.cp.niter = 10  # faiss's Level1Quantizer

    def _attach(self, index):
        if not isinstance(index, _nearly.IndexIVF):
            raise _nearly.InvalidArgumentError(f"IndexShardsIVF: can only add IndexIVFs (got {type(index).__name__})")
        if index.nlist != self.nlist:
            raise _nearly.InvalidArgumentError(
                f"IndexShardsIVF: the shard has nlist = {index.nlist}, the collection {self.nlist}")
        super()._attach(index)

    add_shard = _attach
    addIndex = _attach

    @property
    def is_trained(self):
        return _nearly._quantizer_places_lists(self.quantizer, self.nlist) and all(p.is_trained for p in self._parts)

    def train(self, x):
        x = self._matrix(x)
        if not _nearly._quantizer_places_lists(self.quantizer, self.nlist):
            if self.verbose:
                print("Training level-1 quantizer")
            _nearly.Clustering(self.d, self.nlist, self.cp).train(x, self.quantizer)
        centroids = self.quantizer.reconstruct_n(0, self.nlist)
        for part in self._parts:  # faiss: one shard after the other
            sub = part.quantizer
            if sub is not self.quantizer and not (
                    sub.ntotal == self.nlist and np.array_equal(sub.reconstruct_n(0, self.nlist), centroids)):
                if not sub.is_trained:
                    sub.train(centroids)
                sub.reset()
                sub.add(centroids)
            part.train(x)

    def add_with_ids(self, x, ids):
        x = self._matrix(x)
        if self.successive_ids:
            raise RuntimeError("IndexShardsIVF: it makes no sense to pass in ids and request them to be shifted "
                               "(successive_ids=True)")
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if ids.shape != (len(x),):
            raise _nearly.InvalidArgumentError(f"ids must have shape ({len(x)},)")
        self._add(x, ids)

    def add(self, x):
        x = self._matrix(x)
        if self.successive_ids:
            if self.ntotal:
                raise RuntimeError("IndexShardsIVF: with successive_ids, only add() in a single pass is supported")
            return self._add(x, None)
        start = self.ntotal
        self._add(x, np.arange(start, start + len(x), dtype=np.int64))

    def _add(self, x, ids):
        if not self._parts:
            raise RuntimeError("IndexShardsIVF: no shard to add to")
        if not _nearly._quantizer_places_lists(self.quantizer, self.nlist):
            raise RuntimeError("IndexShardsIVF: the quantizer does not hold the nlist centroids: train() first")
        lists = self.quantizer.search(x, 1)[1].ravel()
        slices = _split(len(x), len(self._parts))

        def add_part(i):
            a, b = slices[i]
            if b > a:
                self._parts[i].add_preassigned(x[a:b], lists[a:b], None if ids is None else ids[a:b])

        self._run(add_part, list(range(len(self._parts))))

    def search(self, x, k, *, params=None):
        x, k = self._search_args(x, k)
        if not self._parts:
            return self._padded(len(x), k)
        if params is not None and not isinstance(params, _nearly.SearchParametersIVF):
            raise RuntimeError("IndexShardsIVF: IndexIVF params have incorrect type")
        nprobe = params.nprobe if params is not None else self._parts[0].nprobe
        if any(p.nprobe != nprobe for p in self._parts) and params is None:
            raise RuntimeError("IndexShardsIVF: inconsistent nprobe among the shards")
        nprobe = min(int(nprobe), self.nlist)
        Dq, Iq = self.quantizer.search(x, nprobe)
        return self._merge(self._run(lambda p: p.search_preassigned(x, k, Iq, Dq, params=params), self._parts), k)


class IndexReplicas(_IndexCollection):
    def __init__(self, d=None, threaded=True):
        if isinstance(d, bool):  # faiss's IndexReplicas(threaded): d from the first replica
            d, threaded = None, d
        super().__init__(d, threaded)

    add_replica = _IndexCollection._attach
    remove_replica = _IndexCollection._detach

    @property
    def ntotal(self):
        return self._parts[0].ntotal if self._parts else 0

    def add(self, x):
        x = self._matrix(x)
        self._run(lambda p: p.add(x), self._parts)

    def add_with_ids(self, x, ids):
        x = self._matrix(x)
        self._run(lambda p: p.add_with_ids(x, ids), self._parts)

    def search(self, x, k, *, params=None):
        x, k = self._search_args(x, k)
        D, I = self._padded(len(x), k)
        if not self._parts:
            return D, I
        slices = _split(len(x), len(self._parts))

        def search_part(i):
            a, b = slices[i]
            if b > a:
                D[a:b], I[a:b] = self._parts[i].search(x[a:b], k, params=params)

        self._run(search_part, list(range(len(self._parts))))
        return D, I


class IndexBinaryShards(IndexShards):
    _binary = True

    @property
    def code_size(self):
        return None if self.d is None else self.d // 8


class IndexBinaryReplicas(IndexReplicas):
    _binary = True
    code_size = IndexBinaryShards.code_size
