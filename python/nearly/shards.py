"""faiss's IndexShards and IndexReplicas: several indexes behind one.

IndexShards splits the database: ``add`` gives each shard a successive slice
of the vectors, ``search`` asks every shard and merges their results (ids
shifted by the sizes of the shards before it when ``successive_ids``).
IndexReplicas holds copies of one database: ``add`` goes to every replica and
``search`` splits the queries among them. Each part is any nearly index; the
parts' native searches release the GIL, so ``threaded=True`` runs them side
by side in Python threads, as faiss runs them in its own."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import _nearly
from .result_heap import best_k

_FLT_MAX = float(np.finfo(np.float32).max)


def _matrix(x, d):
    if d is None:
        raise _nearly.InvalidArgumentError("no index attached yet (d comes from the first one)")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != d:
        raise _nearly.InvalidArgumentError(f"x must have shape (n, {d}), got {x.shape}")
    return x


def _split(n, parts):
    """faiss's slices: part i gets rows [i * n // parts, (i + 1) * n // parts)."""
    return [(i * n // parts, (i + 1) * n // parts) for i in range(parts)]


class _IndexCollection:
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

    def _attach(self, index):
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

    def at(self, i):
        return self._parts[i]

    def count(self):
        return len(self._parts)

    @property
    def is_trained(self):
        return all(p.is_trained for p in self._parts)

    def train(self, x):
        x = _matrix(x, self.d)
        self._run(lambda p: p.train(x), self._parts)

    def reset(self):
        for p in self._parts:
            p.reset()

    def syncWithSubIndexes(self):  # faiss's name; ntotal is always read from the parts
        pass

    def _search_args(self, x, k):
        x = _matrix(x, self.d)
        k = int(k)
        if k <= 0:
            raise _nearly.InvalidArgumentError("k must be positive")
        return x, k

    def _similarity(self):  # larger is better: inner product, Jaccard
        return self.metric_type in (_nearly.METRIC_INNER_PRODUCT, _nearly.METRIC_Jaccard)

    def _padded(self, n, k):
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
        x = _matrix(x, self.d)
        if not self.successive_ids:
            start = self.ntotal
            return self.add_with_ids(x, np.arange(start, start + len(x), dtype=np.int64))
        self._add(x, None)

    def add_with_ids(self, x, ids):
        if self.successive_ids:
            raise RuntimeError("IndexShards: it makes no sense to pass in ids and request them to be shifted "
                               "(successive_ids=True)")
        x = _matrix(x, self.d)
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
        results = self._run(lambda p: p.search(x, k, params=params), self._parts)
        offsets = np.cumsum([0] + [p.ntotal for p in self._parts[:-1]])
        D = np.concatenate([r[0] for r in results], axis=1)
        I = np.concatenate([np.where(r[1] >= 0, r[1] + (off if self.successive_ids else 0), -1)
                            for r, off in zip(results, offsets)], axis=1)
        # The k best of all shards; equal distances by smaller id, missing (-1) last.
        return best_k(D, I, k, self._similarity())


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
        x = _matrix(x, self.d)
        self._run(lambda p: p.add(x), self._parts)

    def add_with_ids(self, x, ids):
        x = _matrix(x, self.d)
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
