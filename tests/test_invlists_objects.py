"""faiss's inverted-list objects: ArrayInvertedLists (lists of their own,
written with add_entries / update_entries / resize / merge_from, handed to
an index with replace_invlists), the classes index.invlists comes as
(ArrayInvertedLists, BlockInvertedLists for fast-scan, OnDiskInvertedLists),
ivflib's get_invlist_range / set_invlist_range, and fast-scan's
orig_invlists / reconstruct_orig_invlists. Every index built from lists is
checked against the index the lists came from."""
import threading

import numpy as np
import pytest

import nearly
from _testutil import ivf_built, randn

D = 24
FAMILIES = ["IVF32,Flat", "IVF32,PQ8", "IVF32,SQ8", "IVF32,PQ8x4fs", "IVF32,RaBitQ", "PCA16,IVF32,SQ4",
            "IVF32,RQ4x4fs_Nrq2x4"]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    return randn(rng, 6000, D), randn(rng, 3000, D), randn(rng, 50, D)


def built(spec, xt, xb):
    return ivf_built(spec, D, xt, xb)


def empty_twin(index):
    twin = nearly.clone_index(index)
    twin.reset()
    return twin


def contents(invlists):
    """Per list (ids, codes one entry per row), as contrib's get_invlist reads them."""
    out = []
    for l in range(invlists.nlist):
        ids = invlists.get_ids(l)
        if invlists.code_size == invlists.INVALID_CODE_SIZE:
            npb, bs = invlists.n_per_block, invlists.block_size
            blocks = invlists.get_codes(l).reshape(-1, bs // npb, npb)
            codes = blocks.transpose(0, 2, 1).reshape(-1, bs // npb)[:len(ids)]
        else:
            codes = invlists.get_codes(l).reshape(len(ids), invlists.code_size)
        out.append((ids, codes))
    return out


def assert_same_search(a, b, xq):
    Da, Ia = a.search(xq, 10)
    Db, Ib = b.search(xq, 10)
    np.testing.assert_array_equal(Ia, Ib)
    np.testing.assert_array_equal(Da, Db)


def test_array_invlists_writes():
    il = nearly.ArrayInvertedLists(4, 3)
    assert isinstance(il, nearly.InvertedLists) and il.nlist == 4 and il.code_size == 3
    codes = np.arange(15, dtype=np.uint8).reshape(5, 3)
    ids = np.arange(100, 105)
    assert il.add_entries(1, 5, nearly.swig_ptr(ids), nearly.swig_ptr(codes)) == 0
    assert il.add_entry(1, 7, np.array([9, 9, 9], dtype=np.uint8)) == 5
    assert il.list_size(1) == 6 and il.compute_ntotal() == 6 and not il.is_empty(1) and il.is_empty(0)
    np.testing.assert_array_equal(il.get_ids(1), [100, 101, 102, 103, 104, 7])
    np.testing.assert_array_equal(il.get_codes(1).reshape(6, 3)[:5], codes)
    assert il.get_single_id(1, 5) == 7
    np.testing.assert_array_equal(il.get_single_code(1, 2), codes[2])
    # add_entries takes the first n_entry of longer arrays, as faiss's pointers.
    il.add_entries(2, 2, ids, codes)
    np.testing.assert_array_equal(il.get_ids(2), ids[:2])
    il.update_entries(1, 1, 2, np.array([50, 51]), np.full((2, 3), 200, dtype=np.uint8))
    np.testing.assert_array_equal(il.get_ids(1), [100, 50, 51, 103, 104, 7])
    np.testing.assert_array_equal(il.get_codes(1).reshape(6, 3)[1:3], 200)
    il.update_entry(1, 0, 42, np.zeros(3, dtype=np.uint8))
    assert il.get_single_id(1, 0) == 42
    il.resize(1, 2)
    np.testing.assert_array_equal(il.get_ids(1), [42, 50])
    il.resize(1, 4)  # grown entries: id 0, zero codes
    np.testing.assert_array_equal(il.get_ids(1), [42, 50, 0, 0])
    np.testing.assert_array_equal(il.get_codes(1)[6:], 0)
    # faiss's vector-of-vectors fields.
    assert il.codes.size() == 4 and len(il.ids) == 4
    np.testing.assert_array_equal(il.ids.at(1), il.get_ids(1))
    np.testing.assert_array_equal(il.codes[2], il.get_codes(2))
    il.reset()
    assert il.compute_ntotal() == 0


def test_array_invlists_merge_from():
    a, b = nearly.ArrayInvertedLists(3, 2), nearly.ArrayInvertedLists(3, 2)
    a.add_entries(0, 1, np.array([1]), np.array([[1, 1]], dtype=np.uint8))
    b.add_entries(0, 2, np.array([5, 6]), np.array([[2, 2], [3, 3]], dtype=np.uint8))
    b.add_entries(2, 1, np.array([7]), np.array([[4, 4]], dtype=np.uint8))
    a.merge_from(b, 1000)
    np.testing.assert_array_equal(a.get_ids(0), [1, 1005, 1006])
    np.testing.assert_array_equal(a.get_codes(0), [1, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(a.get_ids(2), [1007])
    assert b.compute_ntotal() == 0  # emptied, as faiss's merge_from does
    with pytest.raises(ValueError, match="themselves"):
        a.merge_from(a, 0)
    with pytest.raises(ValueError, match="same nlist"):
        a.merge_from(nearly.ArrayInvertedLists(4, 2), 0)


def test_array_invlists_bad_input():
    with pytest.raises(ValueError, match="positive"):
        nearly.ArrayInvertedLists(0, 8)
    with pytest.raises(ValueError, match="positive"):
        nearly.ArrayInvertedLists(4, 0)
    il = nearly.ArrayInvertedLists(4, 8)
    with pytest.raises(ValueError, match="list number 4"):
        il.add_entries(4, 1, np.array([1]), np.zeros(8, dtype=np.uint8))
    with pytest.raises(ValueError, match="list number"):
        il.get_ids(7)
    with pytest.raises(ValueError, match="fewer than n_entry"):
        il.add_entries(0, 3, np.array([1, 2]), np.zeros(24, dtype=np.uint8))
    with pytest.raises(ValueError, match="bytes"):
        il.add_entries(0, 2, np.array([1, 2]), np.zeros(15, dtype=np.uint8))
    with pytest.raises(ValueError, match="numpy array"):
        il.add_entries(0, 1, np.array([1]), b"12345678")
    il.add_entries(0, 2, np.array([1, 2]), np.zeros(16, dtype=np.uint8))
    with pytest.raises(ValueError, match="past list"):
        il.update_entries(0, 1, 2, np.array([1, 2]), np.zeros(16, dtype=np.uint8))
    with pytest.raises(ValueError, match="past list"):
        il.update_entry(0, 2, 1, np.zeros(8, dtype=np.uint8))
    with pytest.raises(ValueError, match="past list"):
        il.get_single_code(0, 2)
    with pytest.raises(ValueError, match="non-negative"):
        il.resize(0, -1)
    assert il.compute_ntotal() == 2  # nothing half-done


@pytest.mark.parametrize("spec", FAMILIES)
def test_lists_copied_out_and_handed_to_an_empty_index(data, spec):
    """get_invlist_range(index, 0, nlist) + replace_invlists into an empty
    twin gives the same index: the same lists, the same search results."""
    xt, xb, xq = data
    index = built(spec, xt, xb)
    ivf = nearly.extract_index_ivf(index)
    il = nearly.get_invlist_range(index, 0, ivf.nlist)
    assert type(il) is nearly.ArrayInvertedLists and il.code_size == ivf.code_size
    assert il.compute_ntotal() == index.ntotal
    twin = empty_twin(index)
    tivf = nearly.extract_index_ivf(twin)
    tivf.replace_invlists(il, True)
    assert twin.ntotal == index.ntotal
    assert_same_search(index, twin, xq)
    for (ia, ca), (ib, cb) in zip(contents(ivf.invlists), contents(tivf.invlists)):
        np.testing.assert_array_equal(ia, ib)
        np.testing.assert_array_equal(ca, cb)
    # The object now reads the index's lists, and refuses writes.
    assert il.compute_ntotal() == twin.ntotal
    twin.add(xb[:10])
    assert il.compute_ntotal() == twin.ntotal
    with pytest.raises(RuntimeError, match="belong to an index"):
        il.add_entries(0, 1, np.array([1]), np.zeros(ivf.code_size, dtype=np.uint8))
    # Another index's lists are copied (faiss would share them between the two indexes).
    other = empty_twin(index)
    nearly.extract_index_ivf(other).replace_invlists(il)
    assert_same_search(twin, other, xq)
    other.add(xb[:5])
    assert other.ntotal == twin.ntotal + 5 and il.compute_ntotal() == twin.ntotal


@pytest.mark.parametrize("spec", ["IVF32,Flat", "IVF32,PQ8x4fs", "PCA16,IVF32,SQ4"])
def test_set_invlist_range_assembles_an_index(data, spec):
    """faiss's distributed idiom: the lists of an index cut in ranges, and
    the ranges set into an empty twin one by one (direct map kept)."""
    xt, xb, xq = data
    index = built(spec, xt, xb)
    ivf = nearly.extract_index_ivf(index)
    twin = empty_twin(index)
    tivf = nearly.extract_index_ivf(twin)
    tivf.make_direct_map(True)
    cuts = [0, 5, 17, 32]
    for i0, i1 in zip(cuts[:-1], cuts[1:]):
        part = nearly.get_invlist_range(index, i0, i1)
        assert part.nlist == i1 - i0
        nearly.set_invlist_range(twin, i0, i1, part)
        assert part.compute_ntotal() == sum(ivf.invlists.list_size(l) for l in range(i0, i1))  # kept
    assert twin.ntotal == index.ntotal
    assert_same_search(index, twin, xq)
    ivf.make_direct_map(True)
    for key in (0, 17, len(xb) - 1):
        np.testing.assert_array_equal(tivf.reconstruct(key), ivf.reconstruct(key))
    # A range replaced by empty lists removes its entries.
    removed = sum(ivf.invlists.list_size(l) for l in range(3, 9))
    nearly.set_invlist_range(twin, 3, 9, nearly.ArrayInvertedLists(6, ivf.code_size))
    assert twin.ntotal == index.ntotal - removed
    assert all(tivf.invlists.list_size(l) == 0 for l in range(3, 9))


def test_invlist_range_bad_input(data):
    xt, xb, xq = data
    index = built("IVF32,Flat", xt, xb)
    for i0, i1 in ((-1, 3), (3, 2), (0, 33)):
        with pytest.raises(ValueError, match="range"):
            nearly.get_invlist_range(index, i0, i1)
    with pytest.raises(ValueError, match="range"):
        nearly.set_invlist_range(index, 30, 34, nearly.ArrayInvertedLists(4, index.code_size))
    with pytest.raises(ValueError, match="hold 3 lists"):
        nearly.set_invlist_range(index, 0, 4, nearly.ArrayInvertedLists(3, index.code_size))
    with pytest.raises(ValueError, match="code_size"):
        nearly.set_invlist_range(index, 0, 4, nearly.ArrayInvertedLists(4, 8))
    with pytest.raises(RuntimeError, match="already belong"):
        nearly.set_invlist_range(index, 0, 32, index.invlists)
    with pytest.raises(ValueError, match="ArrayInvertedLists"):
        nearly.set_invlist_range(index, 0, 1, np.zeros(3))
    with pytest.raises(RuntimeError, match="IVF"):
        nearly.get_invlist_range(nearly.IndexFlatL2(D), 0, 1)
    assert index.ntotal == len(xb)
    pqr = built("IVF32,PQ8+8", xt, xb[:2000])
    with pytest.raises(RuntimeError, match="set_invlist_range"):
        nearly.set_invlist_range(pqr, 0, 1, nearly.get_invlist_range(pqr, 0, 1))


def test_index_views_are_their_classes(data, tmp_path):
    xt, xb, xq = data
    flat = built("IVF32,Flat", xt, xb)
    assert type(flat.invlists) is nearly.ArrayInvertedLists
    fs = built("IVF32,PQ8x4fs", xt, xb)
    il = fs.invlists
    assert type(il) is nearly.BlockInvertedLists and nearly.downcast_InvertedLists(il) is il
    assert il.code_size == il.INVALID_CODE_SIZE and il.n_per_block == 32 and il.block_size == 32 * fs.code_size
    for l in range(il.nlist):
        assert il.get_codes(l).size == (il.list_size(l) + 31) // 32 * il.block_size
    with pytest.raises(RuntimeError, match="change them through the index"):
        il.resize(0, 0)
    with pytest.raises(RuntimeError, match="change them through the index"):
        flat.invlists.reset()
    ivf = built("IVF32,PQ8", xt, xb)
    ivf.replace_invlists(nearly.OnDiskInvertedLists(32, ivf.code_size, str(tmp_path / "lists")))
    assert type(ivf.invlists) is nearly.OnDiskInvertedLists


@pytest.mark.parametrize("by_residual", [True, False])
def test_reconstruct_orig_invlists(data, by_residual):
    """faiss's fast-scan orig_invlists: the codes one after the other, as an
    IndexIVFPQ holds them; handed to an IndexIVFPQ it reconstructs alike."""
    xt, xb, xq = data
    index = nearly.IndexIVFPQFastScan(nearly.IndexFlatL2(D), D, 32, 12, 4)
    index.by_residual = by_residual
    index.train(xt)
    index.add(xb)
    index.make_direct_map(True)
    with pytest.raises(RuntimeError, match="orig_invlists"):
        index.reconstruct_orig_invlists()
    index.orig_invlists = nearly.ArrayInvertedLists(32, 8)
    with pytest.raises(ValueError, match="code_size"):
        index.reconstruct_orig_invlists()
    index.orig_invlists = nearly.ArrayInvertedLists(index.nlist, index.code_size)
    index.reconstruct_orig_invlists()
    assert index.orig_invlists.compute_ntotal() == index.ntotal
    with pytest.raises(ValueError, match="empty"):
        index.reconstruct_orig_invlists()
    pq = nearly.IndexIVFPQ(index.quantizer, D, 32, 12, 4)
    pq.by_residual = by_residual
    pq.pq = index.pq
    pq.is_trained = True
    pq.replace_invlists(index.orig_invlists, False)
    pq.make_direct_map(True)
    for key in (0, 123, len(xb) - 1):
        np.testing.assert_array_equal(index.reconstruct(key), pq.reconstruct(key))
    with pytest.raises(TypeError):
        index.orig_invlists = "lists"


def test_writes_and_reads_from_threads():
    """One thread appends while others read: every read sees whole entries."""
    il = nearly.ArrayInvertedLists(2, 16)
    stop = threading.Event()
    errors = []

    def read():
        while not stop.is_set():
            ids, codes = il.get_ids(0), il.get_codes(0)
            if codes.size % 16 or il.list_size(0) < len(ids):
                errors.append((len(ids), codes.size))

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    for i in range(300):
        il.add_entries(0, 4, np.arange(4) + 4 * i, np.full(64, i % 256, dtype=np.uint8))
    stop.set()
    for t in readers:
        t.join()
    assert not errors
    assert il.list_size(0) == 1200
    np.testing.assert_array_equal(il.get_ids(0), np.arange(1200))


@pytest.mark.parametrize("spec", ["IVF32,SQ8", "IVF32,PQ8", "IVF32,PQ8x4fs", "IVF32,RQ4x4fsr_Nrq2x4"])
def test_permute_invlists_with_the_quantizer(data, spec):
    """contrib's ivf_tools.sort_invlists_by_size: the quantizer's centroids
    and the lists permuted alike leave every search result as it was (what
    a family derives from the centroids is rebuilt: IVFPQ's precomputed
    tables, IVF-RQ's list tables)."""
    xt, xb, xq = data
    index = built(spec, xt, xb)
    index.make_direct_map(True)
    Dref, Iref = index.search(xq, 10)
    before = index.reconstruct(5)
    sizes = np.array([index.invlists.list_size(l) for l in range(index.nlist)])
    perm = np.argsort(sizes, kind="stable")
    index.quantizer.permute_entries(perm)
    nearly.downcast_InvertedLists(index.invlists).permute_invlists(nearly.swig_ptr(perm))
    new_sizes = np.array([index.invlists.list_size(l) for l in range(index.nlist)])
    np.testing.assert_array_equal(new_sizes, sizes[perm])
    assert (np.diff(new_sizes) >= 0).all()
    D, I = index.search(xq, 10)
    np.testing.assert_array_equal(I, Iref)
    np.testing.assert_allclose(D, Dref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(index.reconstruct(5), before, rtol=1e-6, atol=1e-6)


def test_permute_invlists_standalone_and_bad_maps(data, tmp_path):
    il = nearly.ArrayInvertedLists(3, 1)
    for l in range(3):
        il.add_entries(l, l + 1, np.full(l + 1, l), np.full(l + 1, l, dtype=np.uint8))
    il.permute_invlists(np.array([2, 0, 1]))
    assert [il.list_size(l) for l in range(3)] == [3, 1, 2]
    np.testing.assert_array_equal(il.get_ids(0), [2, 2, 2])
    for bad in ([0, 0, 1], [0, 1, 3], [0, 1], [-1, 0, 1]):
        with pytest.raises(ValueError, match="permut|entries"):
            il.permute_invlists(np.array(bad))
    assert [il.list_size(l) for l in range(3)] == [3, 1, 2]  # unchanged by the refusals
    xt, xb, xq = data
    index = built("IVF32,Flat", xt, xb)
    index.replace_invlists(nearly.OnDiskInvertedLists(32, index.code_size, str(tmp_path / "lists")))
    with pytest.raises(RuntimeError, match="in a file"):
        index.invlists.permute_invlists(np.arange(32))
