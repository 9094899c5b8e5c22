"""faiss's meta inverted lists against faiss-cpu's: the same code run on
both libraries (stop words and caps over an index's lists, slices stacked
again, shards' lists concatenated, handed to an index with replace_invlists)
returns the same neighbours over the same coarse centroids, on the real
embeddings."""
import numpy as np
import pytest

import nearly
from _hnswutil import real_data

faiss = pytest.importorskip("faiss")


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
    return index, quantizer


def limited_searches(lib, centroids, xb, xq):
    """faiss's idioms: limits set and lifted on an index's own lists."""
    index, _ = ivf_flat(lib, centroids, xb)
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
    index, quantizer = ivf_flat(lib, centroids, xb)
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
    shards = [ivf_flat(lib, centroids, xb[i0:i1], np.arange(i0, i1))[0] for i0, i1 in ((0, 3000), (3000, 8000))]
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
