"""faiss's inverted-list objects against faiss-cpu's: the same code run on
both libraries (ArrayInvertedLists written list by list, contrib's
get_invlist reading an index's lists, ivflib's get_invlist_range /
set_invlist_range assembling an index from ranges, fast-scan's
orig_invlists, the meta lists: stop words and caps over an index's lists,
slices stacked again, shards' lists concatenated) gives the same lists and
the same neighbours, over the same coarse centroids, on the real embeddings."""
import numpy as np
import pytest

import nearly
from _hnswutil import real_data

faiss = pytest.importorskip("faiss")
inspect_tools = pytest.importorskip("faiss.contrib.inspect_tools")


@pytest.fixture(scope="module")
def setup():
    base, queries = real_data()
    xb, xq = base[:8000], queries[:100]
    km = faiss.Kmeans(xb.shape[1], 48, niter=10, seed=5)
    km.train(xb[:5000])
    return xb, xq, km.centroids


def ivf_flat(lib, centroids, xb, ids=None):
    quantizer = lib.IndexFlatL2(centroids.shape[1])
    quantizer.add(centroids)
    index = lib.IndexIVFFlat(quantizer, centroids.shape[1], len(centroids))
    if ids is None:
        index.add(xb)
    else:
        index.add_with_ids(xb, ids)
    index.nprobe = 6
    return index


def read_lists(lib, il):
    """contrib's get_invlist over every list (pointers on faiss, arrays on nearly)."""
    out = []
    for l in range(il.nlist):
        n = il.list_size(l)
        ids = lib.rev_swig_ptr(il.get_ids(l), n).copy() if n else np.zeros(0, dtype=np.int64)
        codes = lib.rev_swig_ptr(il.get_codes(l), n * il.code_size).copy() if n else np.zeros(0, dtype=np.uint8)
        out.append((ids, codes))
    return out


def array_lists_flow(lib):
    """add_entries, add_entry, update_entries, resize and merge_from, as faiss code calls them."""
    rng = np.random.default_rng(3)
    a, b = lib.ArrayInvertedLists(5, 6), lib.ArrayInvertedLists(5, 6)
    for l in range(5):
        n = int(rng.integers(0, 9))
        ids = rng.integers(0, 1000, n).astype(np.int64)
        codes = rng.integers(0, 256, (n, 6)).astype(np.uint8)
        a.add_entries(l, n, lib.swig_ptr(ids), lib.swig_ptr(codes))
        b.add_entries(l, n, lib.swig_ptr(ids[::-1].copy()), lib.swig_ptr(codes[::-1].copy()))
    a.add_entry(2, 4242, lib.swig_ptr(np.full(6, 7, dtype=np.uint8)))
    a.update_entries(2, 0, 1, lib.swig_ptr(np.array([77], dtype=np.int64)), lib.swig_ptr(np.zeros(6, dtype=np.uint8)))
    a.resize(3, 1)
    a.merge_from(b, 10000)
    return read_lists(lib, a), read_lists(lib, b), a.compute_ntotal()


def test_array_inverted_lists_like_faiss():
    ours, theirs = array_lists_flow(nearly), array_lists_flow(faiss)
    for mine, ref in zip(ours[:2], theirs[:2]):
        for (ia, ca), (ib, cb) in zip(mine, ref):
            np.testing.assert_array_equal(ia, ib)
            np.testing.assert_array_equal(ca, cb)
    assert ours[2] == theirs[2]


def test_index_lists_and_ranges_like_faiss(setup):
    xb, xq, centroids = setup
    ref, ours = ivf_flat(faiss, centroids, xb), ivf_flat(nearly, centroids, xb)
    for l in range(ref.nlist):
        ids_f, codes_f = inspect_tools.get_invlist(ref.invlists, l)
        ids_n, codes_n = ours.invlists.get_ids(l), ours.invlists.get_codes(l).reshape(-1, ours.code_size)
        np.testing.assert_array_equal(ids_f, ids_n)
        np.testing.assert_array_equal(codes_f, codes_n)
    results = []
    for lib, index in ((faiss, ref), (nearly, ours)):
        # faiss's distributed idiom: ranges of lists copied out, set into an empty twin.
        twin = ivf_flat(lib, centroids, xb[:0])
        for i0, i1 in ((0, 20), (20, 48)):
            lib.set_invlist_range(twin, i0, i1, lib.get_invlist_range(index, i0, i1))
        twin.ntotal = index.ntotal  # faiss leaves ntotal to the caller; nearly's already follows
        results.append(twin.search(xq, 10))
    np.testing.assert_array_equal(results[0][1], results[1][1])
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5)


def test_orig_invlists_like_faiss(setup):
    xb, xq, centroids = setup
    d = xb.shape[1]
    codes = []
    for lib in (faiss, nearly):
        quantizer = lib.IndexFlatL2(d)
        quantizer.add(centroids)
        pq = lib.IndexIVFPQ(quantizer, d, len(centroids), 32, 4)
        pq.by_residual = False
        pq.train(xb[:4000])
        fs = lib.IndexIVFPQFastScan(pq)
        fs.add(xb[:3000])
        fs.orig_invlists = lib.ArrayInvertedLists(fs.nlist, fs.code_size)
        fs.reconstruct_orig_invlists()
        codes.append((pq.pq, read_lists(lib, fs.orig_invlists)))
    # The same ids per list; the codes of each entry the PQ's of its vector (each library's own PQ).
    for (ids_f, _), (ids_n, codes_n) in zip(codes[0][1], codes[1][1]):
        np.testing.assert_array_equal(np.sort(ids_f), np.sort(ids_n))
        if len(ids_n):
            np.testing.assert_array_equal(codes_n.reshape(len(ids_n), -1), codes[1][0].compute_codes(xb[ids_n]))


# faiss's meta inverted lists: stop words and caps over an index's lists,
# slices stacked again, shards' lists concatenated.
def limited_searches(lib, centroids, xb, xq):
    """faiss's idioms: limits set and lifted on an index's own lists."""
    index = ivf_flat(lib, centroids, xb)
    il = index.invlists
    sizes = [il.list_size(l) for l in range(il.nlist)]
    out = []
    index.own_invlists = False  # faiss would free the lists under the wrapper (nearly: no effect)
    stop = lib.StopWordsInvertedLists(il, int(np.median(sizes)))
    out.append([stop.list_size(l) for l in range(il.nlist)])
    index.replace_invlists(stop, False)
    out.append(index.search(xq, 10))
    capped = lib.CappedInvertedLists(il, 60)
    out.append([capped.list_size(l) for l in range(il.nlist)])
    index.replace_invlists(capped, False)
    out.append(index.search(xq, 10))
    index.add(xb[:500])  # through the cap
    out.append(index.search(xq, 10))
    index.replace_invlists(il, False)
    out.append(index.search(xq, 10))
    return out


def stacked_searches(lib, centroids, xb, xq):
    """Slices of an index's lists stacked again, and two shards' lists
    concatenated, each handed to an empty index over the same centroids."""
    index = ivf_flat(lib, centroids, xb)
    quantizer = index.quantizer
    keep = []  # faiss's objects must outlive the indexes reading them
    ilv = lib.InvertedListsPtrVector()
    for i0, i1 in ((0, 20), (20, 30), (30, 48)):
        sl = lib.SliceInvertedLists(index.invlists, i0, i1)
        keep.append(sl)
        ilv.push_back(sl)
    vstack = lib.VStackInvertedLists(ilv.size(), ilv.data())
    a = lib.IndexIVFFlat(quantizer, xb.shape[1], len(centroids))
    a.replace_invlists(vstack, False)
    a.ntotal = index.ntotal
    a.nprobe = 6
    shards = [ivf_flat(lib, centroids, xb[i0:i1], np.arange(i0, i1)) for i0, i1 in ((0, 3000), (3000, 8000))]
    hv = lib.InvertedListsPtrVector()
    for s in shards:
        hv.push_back(s.invlists)
    hstack = lib.HStackInvertedLists(hv.size(), hv.data())
    b = lib.IndexIVFFlat(quantizer, xb.shape[1], len(centroids))
    b.replace_invlists(hstack, False)
    b.ntotal = len(xb)
    b.nprobe = 6
    out = [a.search(xq, 10), b.search(xq, 10), [hstack.list_size(l) for l in range(48)]]
    keep.append((vstack, hstack, shards, index))
    return out


@pytest.mark.parametrize("flow", [limited_searches, stacked_searches])
def test_meta_lists_as_faiss(setup, flow):
    xb, xq, centroids = setup
    ours = flow(nearly, centroids, xb, xq)
    theirs = flow(faiss, centroids, xb, xq)
    for a, b in zip(ours, theirs):
        if isinstance(a, tuple):
            np.testing.assert_allclose(a[0], b[0], rtol=1e-5, atol=1e-4)
            assert (a[1] == b[1]).mean() > 0.999
        else:
            assert a == b
