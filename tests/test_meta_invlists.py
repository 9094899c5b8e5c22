"""faiss's meta inverted lists (nearly/meta_invlists.py): stop-words and
capped lists over an index's own lists limit what its searches scan (checked
against a twin index from which the skipped entries were removed: the same
results bit for bit, in every IVF family, for k-NN, range search and sorted
id ranges), and sliced, stacked and masked lists read other lists through a
rule (checked against the lists they read and against indexes built
directly)."""
import threading

import numpy as np
import pytest

import nearly
from _testutil import ivf_built, randn

D = 24
FAMILIES = ["IVF32,Flat", "IVF32,PQ8", "IVF32,SQ8", "IVF32,PQ8x4fs", "IVF32,RaBitQ", "PCA16,IVF32,SQ4",
            "IVF32,RQ4x4fs_Nrq2x4", "IVF32,FlatPanorama4"]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(12)
    return randn(rng, 6000, D), randn(rng, 3000, D), randn(rng, 60, D)


def built(spec, xt, xb):
    return ivf_built(spec, D, xt, xb)


def twin_without(index, keep):
    """A copy of index holding, per list, only the entries keep(list, ids) marks."""
    twin = nearly.clone_index(index)
    ivf = nearly.extract_index_ivf(twin)
    drop = [ids[~keep(l, ids)] for l in range(ivf.nlist) for ids in [ivf.invlists.get_ids(l)]]
    drop = np.concatenate(drop)
    if drop.size:
        ivf.remove_ids(nearly.IDSelectorBatch(drop))
    return twin


def assert_same_results(a, b, xq, **kw):
    for batch in (xq, xq[:1], xq[1:3]):
        Da, Ia = a.search(batch, 10, **kw)
        Db, Ib = b.search(batch, 10, **kw)
        np.testing.assert_array_equal(Ia, Ib)
        np.testing.assert_array_equal(Da, Db)


@pytest.mark.parametrize("spec", FAMILIES)
def test_stop_words_and_cap_limit_the_search(data, spec):
    xt, xb, xq = data
    index = built(spec, xt, xb)
    plain = nearly.clone_index(index)  # the twins are made from it (a limited index is not written)
    ivf = nearly.extract_index_ivf(index)
    own = ivf.invlists
    sizes = np.array([own.list_size(l) for l in range(ivf.nlist)])
    Dref, Iref = index.search(xq, 10)

    # Above every list's size: nothing changes.
    ivf.replace_invlists(nearly.StopWordsInvertedLists(own, int(sizes.max()) + 1))
    assert_same_results(index, twin_without(plain, lambda l, ids: np.ones(len(ids), bool)), xq)
    np.testing.assert_array_equal(index.search(xq, 10)[1], Iref)

    stop = int(np.median(sizes))
    ivf.replace_invlists(nearly.StopWordsInvertedLists(own, stop))
    assert isinstance(ivf.invlists, nearly.StopWordsInvertedLists) and ivf.invlists.maxsize == stop
    assert [ivf.invlists.list_size(l) for l in range(ivf.nlist)] == [s if s < stop else 0 for s in sizes]
    assert ivf.ntotal == len(xb)  # the lists are all there
    assert_same_results(index, twin_without(plain, lambda l, ids: np.full(len(ids), len(ids) < stop)), xq)

    cap = int(sizes.min()) // 2 + 3  # not a multiple of a fast-scan block
    ivf.replace_invlists(nearly.CappedInvertedLists(own, cap))
    assert ivf.invlists.real_list_size(0) == sizes[0] and ivf.invlists.list_size(0) == min(sizes[0], cap)
    assert_same_results(index, twin_without(plain, lambda l, ids: np.arange(len(ids)) < cap), xq)

    # Nested, innermost first: a cap, then stop words over the capped sizes.
    ivf.replace_invlists(nearly.StopWordsInvertedLists(nearly.CappedInvertedLists(own, cap + 40), cap + 40))
    assert ivf._list_limits == [(False, cap + 40), (True, cap + 40)]
    assert_same_results(index, twin_without(plain, lambda l, ids: np.zeros(len(ids), bool) if len(ids) >= cap + 40
                                            else np.ones(len(ids), bool)), xq)

    # The index's own lists lift the limits.
    ivf.replace_invlists(own)
    assert ivf._list_limits == [] and type(ivf.invlists) is type(own)
    np.testing.assert_array_equal(index.search(xq, 10)[1], Iref)


@pytest.mark.parametrize("spec", ["IVF32,Flat", "IVF32,SQ8", "IVF32,PQ8x4fs"])
def test_limits_in_range_search_and_sorted_ranges(data, spec):
    xt, xb, xq = data
    index = built(spec, xt, xb)
    cap = 37
    twin = twin_without(index, lambda l, ids: np.arange(len(ids)) < cap)
    index.replace_invlists(nearly.CappedInvertedLists(index.invlists, cap))
    radius = float(np.quantile(index.search(xq, 20)[0][:, -1], 0.5))
    la, Da, Ia = index.range_search(xq, radius)
    lb, Db, Ib = twin.range_search(xq, radius)
    np.testing.assert_array_equal(la, lb)
    np.testing.assert_array_equal(Ia, Ib)
    np.testing.assert_array_equal(Da, Db)
    # Ids added in order: a sorted range is searched by bisection, within the cap.
    params = nearly.SearchParametersIVF(sel=nearly.IDSelectorRange(1000, 2500, True), nprobe=8)
    assert_same_results(index, twin, xq, params=params)


def test_adds_and_removals_under_the_limits(data):
    xt, xb, xq = data
    index = built("IVF32,Flat", xt, xb[:2000])
    own = index.invlists
    plain = nearly.clone_index(index)
    index.replace_invlists(nearly.CappedInvertedLists(own, 50))
    index.add(xb[2000:])  # writes reach the lists; the cap stays
    plain.add(xb[2000:])
    assert index.ntotal == len(xb) and index.invlists.compute_ntotal() == sum(min(own.list_size(l), 50)
                                                                              for l in range(32))
    assert_same_results(index, twin_without(plain, lambda l, ids: np.arange(len(ids)) < 50), xq)
    index.remove_ids(nearly.IDSelectorRange(0, 500))
    plain.remove_ids(nearly.IDSelectorRange(0, 500))
    assert_same_results(index, twin_without(plain, lambda l, ids: np.arange(len(ids)) < 50), xq)
    # Capped lists of their own take writes, and the cap reads them.
    il = nearly.CappedInvertedLists(nearly.ArrayInvertedLists(4, 2), 3)
    il.add_entries(1, 5, np.arange(5), np.zeros((5, 2), np.uint8))
    assert il.list_size(1) == 3 and il.real_list_size(1) == 5
    np.testing.assert_array_equal(il.get_ids(1), [0, 1, 2])


def test_the_stop_words_test_of_faiss(data):
    """faiss's own use: stop words over the index's lists hide a list made
    too long by repeated adds, and come back after the list grew."""
    xt, xb, xq = data
    index = built("IVF32,Flat", xt, xb)
    index.nprobe = 4
    Dref, Iref = index.search(xq[:1], 10)
    il = index.invlists
    maxsz = max(il.list_size(i) for i in range(il.nlist))
    il2 = nearly.StopWordsInvertedLists(il, maxsz + 1)
    index.replace_invlists(il2, False)
    np.testing.assert_array_equal(index.search(xq[:1], 10)[1], Iref)
    index.replace_invlists(il, False)
    i = int(Iref[0, 0])
    index.add(np.vstack([xb[i]] * (maxsz + 10)))
    index.replace_invlists(il2, False)
    assert i not in index.search(xq[:1], 10)[1].ravel()


def test_limited_index_is_not_written(data, tmp_path):
    xt, xb, xq = data
    index = built("IVF32,Flat", xt, xb)
    own = index.invlists
    index.replace_invlists(nearly.StopWordsInvertedLists(own, 10))
    with pytest.raises(RuntimeError, match="cannot be written"):
        nearly.write_index(index, str(tmp_path / "x.index"))
    with pytest.raises(RuntimeError, match="cannot be written"):
        nearly.serialize_index(index)
    with pytest.raises(RuntimeError, match="StopWordsInvertedLists"):
        nearly.index_cpu_to_gpu(None, 0, index)  # checked before any GPU is looked for
    index.replace_invlists(own)
    nearly.write_index(index, str(tmp_path / "x.index"))
    assert nearly.read_index(str(tmp_path / "x.index")).ntotal == len(xb)


@pytest.mark.parametrize("spec", ["IVF32,Flat", "IVF32,PQ8", "IVF32,PQ8x4fs", "IVF32,RaBitQ"])
def test_slices_stacked_into_another_index(data, spec):
    """faiss's test_slice_vstack in every family: three slices of an index's
    lists stacked again and handed to an empty twin search as the index."""
    xt, xb, xq = data
    index = built(spec, xt, xb)
    il0 = index.invlists
    ilv = nearly.InvertedListsPtrVector()
    for s in range(3):
        ilv.push_back(nearly.SliceInvertedLists(il0, s * 10, min(s * 10 + 10, 32) if s < 2 else 32))
    il2 = nearly.VStackInvertedLists(ilv.size(), ilv.data())
    assert il2.nlist == 32 and il2.compute_ntotal() == len(xb)
    for l in (0, 9, 10, 25, 31):
        np.testing.assert_array_equal(il2.get_ids(l), il0.get_ids(l))
        np.testing.assert_array_equal(il2.get_codes(l), il0.get_codes(l))
        np.testing.assert_array_equal(il2._entry_codes(l), il0._entry_codes(l))
    twin = nearly.clone_index(index)
    twin.reset()
    twin.replace_invlists(il2)
    assert twin.ntotal == index.ntotal
    assert_same_results(index, twin, xq)
    # a copy: the twin's lists are its own
    twin.add(xb[:10])
    assert index.ntotal == len(xb) and il2.compute_ntotal() == len(xb)


def test_hstack_and_masked_lists(data):
    xt, xb, xq = data
    whole = built("IVF32,PQ8", xt, xb)
    parts = []
    for i0, i1 in ((0, 1000), (1000, 3000)):
        p = nearly.clone_index(whole)
        p.reset()
        p.add_with_ids(xb[i0:i1], np.arange(i0, i1))
        parts.append(p)
    h = nearly.HStackInvertedLists(2, [p.invlists for p in parts])
    assert nearly.ConcatenatedInvertedLists is nearly.HStackInvertedLists
    for l in range(32):
        np.testing.assert_array_equal(h.get_ids(l), whole.invlists.get_ids(l))
        np.testing.assert_array_equal(h.get_codes(l), whole.invlists.get_codes(l))
    twin = nearly.clone_index(whole)
    twin.reset()
    twin.replace_invlists(h)
    assert_same_results(whole, twin, xq)

    # Masked: il0's lists where not empty, else il1's.
    il0 = nearly.ArrayInvertedLists(32, whole.code_size)
    il0.add_entries(3, 2, np.array([7, 8]), np.zeros((2, whole.code_size), np.uint8))
    m = nearly.MaskedInvertedLists(il0, whole.invlists)
    np.testing.assert_array_equal(m.get_ids(3), [7, 8])
    np.testing.assert_array_equal(m.get_ids(4), whole.invlists.get_ids(4))
    assert m.compute_ntotal() == len(xb) - whole.invlists.list_size(3) + 2


def test_bad_input(data):
    xt, xb, xq = data
    index = built("IVF32,Flat", xt, xb)
    il = index.invlists
    with pytest.raises(ValueError):
        nearly.SliceInvertedLists(il, 10, 40)
    with pytest.raises(ValueError):
        nearly.SliceInvertedLists(il, 5, 2)
    with pytest.raises(ValueError):
        nearly.VStackInvertedLists(3, [il])
    with pytest.raises(ValueError):
        nearly.VStackInvertedLists(2, [il, nearly.ArrayInvertedLists(4, 3)])
    with pytest.raises(ValueError):
        nearly.HStackInvertedLists(2, [il, nearly.ArrayInvertedLists(4, il.code_size)])
    with pytest.raises(TypeError):
        nearly.StopWordsInvertedLists(np.zeros(3), 4)
    with pytest.raises(ValueError):
        nearly.CappedInvertedLists(il, 0)
    with pytest.raises(ValueError):
        nearly.StopWordsInvertedLists(il, -1)
    s = nearly.SliceInvertedLists(il, 0, 4)
    with pytest.raises(ValueError):
        s.get_ids(4)
    with pytest.raises(RuntimeError, match="read-only"):
        s.add_entries(0, 1, np.array([1]), np.zeros(il.code_size, np.uint8))
    with pytest.raises(RuntimeError, match="read-only"):
        nearly.StopWordsInvertedLists(il, 3).add_entry(0, 1, np.zeros(il.code_size, np.uint8))
    with pytest.raises(ValueError, match="lists"):
        index.replace_invlists(s)  # 4 lists for 32
    # The index's own lists under a cap refuse writes, as the lists do.
    with pytest.raises(RuntimeError, match="belong to an index"):
        nearly.CappedInvertedLists(il, 4).add_entries(0, 1, np.array([1]), np.zeros(il.code_size, np.uint8))


def test_limits_change_beside_searches(data):
    """Searches in threads while another toggles the limits: each result is
    the limited or the unlimited one, never a mix or a crash."""
    xt, xb, xq = data
    index = built("IVF32,Flat", xt, xb)
    own = index.invlists
    full = index.search(xq[:5], 10)[1]
    capped = nearly.CappedInvertedLists(own, 20)
    index.replace_invlists(capped)
    limited = index.search(xq[:5], 10)[1]
    index.replace_invlists(own)
    assert not np.array_equal(full, limited)
    bad = []

    def searcher():
        for _ in range(100):
            I = index.search(xq[:5], 10)[1]
            if not (np.array_equal(I, full) or np.array_equal(I, limited)):
                bad.append(I)

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(200):
        index.replace_invlists(capped if i % 2 == 0 else own)
    for t in threads:
        t.join()
    assert not bad
