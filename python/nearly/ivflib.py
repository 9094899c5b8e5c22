"""faiss's IVFlib helpers that report which inverted list things fall in:
search_centroid (the nearest list of each query) and
search_and_return_centroids (a search that also says each query's nearest
list and the list each result was found in), in faiss's pointer style,
and get_invlist_range / set_invlist_range (lists copied out of an index
and into one). The index may sit behind an IndexPreTransform, as in faiss.
shard_ivf_index_centroids / shard_binary_ivf_index_centroids split an IVF
index by centroid into shard files."""
import numpy as np

from . import _nearly
from .compat import extract_index_ivf, pointer_view


def _ivf_and_queries(index, x, n, what):
    """The IVF index and x (n queries of index.d) through its pre-transforms."""
    n = int(n)
    X = pointer_view(x, n * index.d, (np.float32,), what + " x").reshape(n, index.d)
    if isinstance(index, _nearly.IndexPreTransform):
        for i in range(index.chain.size()):
            X = index.chain.at(i).apply(X)
        index = index.index
    if not isinstance(index, _nearly.IndexIVF):
        raise RuntimeError("could not extract IVF index")
    return index, np.ascontiguousarray(X, dtype=np.float32)


def search_centroid(index, x, n, centroid_ids):
    """centroid_ids[i] = the inverted list query i is nearest to."""
    ivf, X = _ivf_and_queries(index, x, n, "search_centroid")
    out = pointer_view(centroid_ids, len(X), (np.int64,), "search_centroid centroid_ids", writeable=True)
    out[:] = ivf.quantizer.assign(X, 1).reshape(-1)


def search_and_return_centroids(index, n, xin, k, distances, labels, query_centroid_ids=None,
                                result_centroid_ids=None):
    """index's search of n queries at its nprobe (into distances, labels),
    with each query's nearest list (query_centroid_ids, n) and the list
    each result came from (result_centroid_ids, n * k; -1 for a missing
    result). Either id array may be None."""
    ivf, X = _ivf_and_queries(index, xin, n, "search_and_return_centroids")
    n, k = len(X), int(k)
    D = pointer_view(distances, n * k, (np.float32,), "search_and_return_centroids distances", True)
    I = pointer_view(labels, n * k, (np.int64,), "search_and_return_centroids labels", True)
    qc = None if query_centroid_ids is None else pointer_view(
        query_centroid_ids, n, (np.int64,), "search_and_return_centroids query_centroid_ids", True)
    rc = None if result_centroid_ids is None else pointer_view(
        result_centroid_ids, n * k, (np.int64,), "search_and_return_centroids result_centroid_ids", True)
    nprobe = min(int(ivf.nprobe), int(ivf.nlist))
    Dq, Iq = ivf.quantizer.search(X, nprobe)
    Dr, Ir = ivf.search_preassigned(X, k, Iq, Dq)
    D[:], I[:] = Dr.reshape(-1), Ir.reshape(-1)
    if qc is not None:
        qc[:] = Iq[:, 0]
    if rc is not None:
        # The list of each result: the probed list holding its id (ids read
        # once per probed list, looked up by binary search; an id stored in
        # several lists is resolved against its own query's probed lists).
        probed = np.unique(Iq[Iq >= 0])
        ids = [ivf.invlists.get_ids(int(l)) for l in probed]
        all_ids = np.concatenate(ids) if ids else np.zeros(0, np.int64)
        all_lists = np.repeat(probed, [len(a) for a in ids]) if ids else np.zeros(0, np.int64)
        order = np.argsort(all_ids, kind="stable")
        sids = np.append(all_ids[order], -1)  # a sentinel past the end: never found
        slists = np.append(all_lists[order], -1)
        pos = np.searchsorted(sids[:-1], Ir)
        found = (Ir >= 0) & (sids[pos] == Ir)
        out = np.where(found, slists[pos], -1)
        ok = ~found | (out[:, :, None] == Iq[:, None, :]).any(axis=2)
        for i, j in zip(*np.nonzero(~ok)):  # a duplicate id: the copy in this query's lists
            mine = (sids == Ir[i, j]) & np.isin(slists, Iq[i])
            out[i, j] = slists[mine][0] if mine.any() else -1
        rc[:] = out.reshape(-1)


def get_invlist_range(index, i0, i1):
    """faiss's get_invlist_range: a copy of lists i0 .. i1 of the index's
    (behind wrappers too) as an ArrayInvertedLists of i1 - i0 lists, codes
    one after the other whatever the index's layout."""
    return _nearly._get_invlist_range(extract_index_ivf(index), int(i0), int(i1))


def set_invlist_range(index, i0, i1, src):
    """faiss's set_invlist_range: lists i0 .. i1 of the index's become the
    entries of src (an ArrayInvertedLists of i1 - i0 lists of the index's
    code_size); ntotal follows. src keeps its entries (faiss swaps the
    index's old lists into it)."""
    ivf = extract_index_ivf(index)
    _nearly._set_invlist_range(ivf, int(i0), int(i1), src)
    if index is not ivf and hasattr(index, "_refresh_from_inner"):
        index._refresh_from_inner()


class ShardingFunction:
    """faiss's ShardingFunction: shard_of(i, shard_count) -> the shard of
    centroid i. Subclass it and define __call__, or pass any callable."""

    def __call__(self, i, shard_count):
        raise NotImplementedError("ShardingFunction.__call__(i, shard_count) must be defined")


class DefaultShardingFunction(ShardingFunction):
    """Centroid i goes to shard i % shard_count (faiss's default)."""

    def __call__(self, i, shard_count):
        return i % shard_count


class PyCallbackShardingFunction(ShardingFunction):
    """A Python callable (i, shard_count) -> shard, as faiss wraps one."""

    def __init__(self, callback):
        if not callable(callback):
            raise TypeError("PyCallbackShardingFunction needs a callable (i, shard_count) -> shard")
        self.callback = callback

    def __call__(self, i, shard_count):
        return self.callback(i, shard_count)


def _shards_of_centroids(index, shard_count, sharding_function, filename_template, generate_ids, what):
    """The centroid numbers of each shard, checked as faiss checks its
    arguments (and the sharding function's answers, which faiss trusts)."""
    nc = int(index.quantizer.ntotal)
    if not generate_ids and index.ntotal > 0:
        raise RuntimeError(f"{what}: without generate_ids the shards number their centroids from 0, which no "
                           "longer matches the lists holding the index's vectors: pass generate_ids=True (or "
                           "shard an empty index)")
    if nc == 0:
        raise RuntimeError("No centroids to shard.")
    if not isinstance(filename_template, str) or "%d" not in filename_template:
        raise RuntimeError("Invalid filename_template. Must contain format specifier for shard count.")
    shard_count = int(shard_count)
    if shard_count < 1:
        raise ValueError(f"shard_count must be at least 1 (got {shard_count})")
    fn = DefaultShardingFunction() if sharding_function is None else sharding_function
    if not callable(fn):
        raise TypeError("sharding_function must be a callable (i, shard_count) -> shard, or None")
    members = [[] for _ in range(shard_count)]
    for i in range(nc):
        s = fn(i, shard_count)
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or not 0 <= int(s) < shard_count:
            raise ValueError(f"the sharding function put centroid {i} in shard {s!r}; "
                             f"shards are integers in [0, {shard_count})")
        members[int(s)].append(i)
    return members


def _shard_quantizers(q, rows, members, generate_ids, clone, idmap2):
    """Each shard's quantizer: one of q's kind holding the shard's centroids
    (rows of rows), in an IDMap2 under their list numbers when generate_ids,
    else numbered from 0."""
    bare = clone(q)
    bare.reset()
    for ids in members:
        sq = clone(bare)
        if generate_ids:
            sq = idmap2(sq)
            if ids:
                sq.add_with_ids(rows[ids], np.asarray(ids, dtype=np.int64))
        elif ids:
            sq.add(rows[ids])
        yield sq


def _runs(lists):
    """Maximal runs [a, b) of consecutive numbers in a sorted list."""
    runs, start = [], None
    for j, l in enumerate(lists):
        if start is None:
            start = l
        if j + 1 == len(lists) or lists[j + 1] != l + 1:
            runs.append((start, l + 1))
            start = None
    return runs


def shard_ivf_index_centroids(index, shard_count=20, filename_template="shard.%d.index",
                              sharding_function=None, generate_ids=False):
    """faiss's shard_ivf_index_centroids: splits an IVF index by centroid into
    shard_count files (filename_template % shard). Centroid i of the
    quantizer goes to shard sharding_function(i, shard_count) (default i %
    shard_count); each shard is the index with the quantizer's type holding
    that shard's centroids.

    generate_ids=True (the form to search and add to): the shard's quantizer
    is an IndexIDMap2 that numbers its centroids as the whole index does, so
    a shard keeps nlist, its training and the entries of its own lists (faiss
    copies every list into every shard): adds place vectors among its
    centroids, and merging the shards' results probes, per query, a superset
    of the lists the whole index probes at the same nprobe.

    generate_ids=False: the centroids are numbered 0, 1, ... in a plain
    quantizer, as faiss writes them. The lists would not match, so the index
    must hold no vectors; such a shard (fewer than nlist centroids) reads
    back untrained in nearly."""
    from .compat import clone_index
    from .persistence import write_index

    if not isinstance(index, _nearly.IndexIVF):
        raise TypeError(f"shard_ivf_index_centroids needs an IndexIVF (got {type(index).__name__})")
    q = index.quantizer
    members = _shards_of_centroids(index, shard_count, sharding_function, filename_template, generate_ids,
                                   "shard_ivf_index_centroids")
    empty = clone_index(index)
    empty.reset()
    quantizers = _shard_quantizers(q, q.reconstruct_n(0, q.ntotal), members, generate_ids, clone_index,
                                   _nearly.IndexIDMap2)
    for shard, (ids, sq) in enumerate(zip(members, quantizers)):
        shard_index = clone_index(empty)
        shard_index.is_trained = False  # until its quantizer is in
        shard_index.quantizer = sq
        if index.is_trained and _nearly._quantizer_places_lists(sq, index.nlist):
            shard_index.is_trained = True
        if generate_ids:  # the entries of its lists (a centroid past nlist has none)
            for a, b in _runs([l for l in ids if l < index.nlist]):
                if any(index.invlists.list_size(l) for l in range(a, b)):
                    set_invlist_range(shard_index, a, b, get_invlist_range(index, a, b))
        write_index(shard_index, filename_template % shard)


def shard_binary_ivf_index_centroids(index, shard_count=20, filename_template="shard.%d.index",
                                     sharding_function=None, generate_ids=False):
    """shard_ivf_index_centroids for an IndexBinaryIVF: each shard's
    quantizer an IndexBinaryIDMap2 of its centroids under their list numbers
    (generate_ids=True; the shard keeps its lists' entries) or a plain one
    numbering them from 0 (an index holding no vectors only)."""
    from .compat import clone_binary_index
    from .persistence import write_index_binary

    if not isinstance(index, _nearly.IndexBinaryIVF):
        raise TypeError(f"shard_binary_ivf_index_centroids needs an IndexBinaryIVF (got {type(index).__name__})")
    q = index.quantizer
    members = _shards_of_centroids(index, shard_count, sharding_function, filename_template, generate_ids,
                                   "shard_binary_ivf_index_centroids")
    codes = np.vstack([q.reconstruct(i) for i in range(q.ntotal)]).reshape(-1, q.code_size)
    quantizers = _shard_quantizers(q, codes, members, generate_ids, clone_binary_index, _nearly.IndexBinaryIDMap2)
    for shard, (ids, sq) in enumerate(zip(members, quantizers)):
        kept = [l for l in ids if l < index.nlist] if generate_ids else []
        write_index_binary(index._shard(sq, kept), filename_template % shard)
