"""faiss's IVFlib helpers that report which inverted list things fall in:
search_centroid (the nearest list of each query) and
search_and_return_centroids (a search that also says each query's nearest
list and the list each result was found in), in faiss's pointer style,
and get_invlist_range / set_invlist_range (lists copied out of an index
and into one). The index may sit behind an IndexPreTransform, as in faiss."""
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
