"""faiss idioms of user code that reach into an index: the stored floats by
rev_swig_ptr(index.get_xb(), n), direct maps by type, transforms saved on
their own. Each runs the same way on faiss and on nearly."""
import gc
import os

import numpy as np
import pytest

import faiss
import nearly


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).standard_normal((2000, 16)).astype(np.float32)


def test_get_xb_through_rev_swig_ptr(x):
    out = {}
    for lib in (faiss, nearly):
        index = lib.IndexFlatL2(16)
        index.add(x)
        xb = lib.rev_swig_ptr(index.get_xb(), index.ntotal * index.d).reshape(index.ntotal, index.d)
        out[lib.__name__] = np.array(xb)
    np.testing.assert_array_equal(out["nearly"], out["faiss"])
    np.testing.assert_array_equal(out["nearly"], x)
    index = nearly.IndexFlatIP(16)
    assert nearly.rev_swig_ptr(index.get_xb(), 0).shape == (0,)  # empty
    with pytest.raises(TypeError):
        nearly.rev_swig_ptr(12345, 4)  # no raw pointers here
    with pytest.raises(ValueError):
        nearly.rev_swig_ptr(index.get_xb(), 1)


@pytest.mark.parametrize("kind", ["Array", "Hashtable"])
def test_direct_map_types(x, kind):
    out = {}
    for lib in (faiss, nearly):
        index = lib.index_factory(16, "IVF16,Flat")
        index.train(x)
        index.add(x)
        index.set_direct_map_type(getattr(lib.DirectMap, kind))
        out[lib.__name__] = index.reconstruct(1234)
        index.set_direct_map_type(lib.DirectMap.NoMap)
        with pytest.raises(RuntimeError):
            index.reconstruct(1234)
    np.testing.assert_array_equal(out["nearly"], out["faiss"])
    with pytest.raises(ValueError):
        nearly.index_factory(16, "IVF16,Flat").set_direct_map_type(7)


def test_vector_transform_files(x, tmp_path):
    for lib in (faiss, nearly):
        pca = lib.PCAMatrix(16, 8)
        pca.train(x)
        fname = os.fspath(tmp_path / f"pca.{lib.__name__}")
        lib.write_VectorTransform(pca, fname)
        again = lib.read_VectorTransform(fname)
        assert again.d_in == 16 and again.d_out == 8 and again.is_trained
        np.testing.assert_array_equal(again.apply(x[:50]), pca.apply(x[:50]))
    fname = os.fspath(tmp_path / "flat.index")
    nearly.write_index(nearly.IndexFlatL2(16), fname)
    with pytest.raises(nearly.IndexFileError):
        nearly.read_VectorTransform(fname)  # an index, not a transform


@pytest.mark.parametrize("desc", ["IVF32,Flat", "PCA8,IVF32,Flat", "IVF32,PQ4"])
def test_search_with_parameters_matches_faiss(x, desc):
    """faiss's IVFlib helpers: the index's nprobe by default, or params'; a
    pre-transform applied first; ndis counts the codes of every probed list."""
    xq = x[:40] + 0.01
    out = {}
    for lib in (faiss, nearly):
        index = lib.index_factory(16, desc)
        index.train(x)
        index.add(x)
        lib.extract_index_ivf(index).nprobe = 3
        D, I, st = lib.search_with_parameters(index, xq, 5, output_stats=True)
        D2, I2 = lib.search_with_parameters(index, xq, 5, params=lib.SearchParametersIVF(nprobe=7))
        radius = float(np.median(D))
        lims, Dr, Ir, st2 = lib.range_search_with_parameters(index, xq, radius,
                                                               params=lib.SearchParametersIVF(nprobe=7),
                                                               output_stats=True)
        lims0, _, Ir0 = lib.range_search_with_parameters(index, xq, radius)
        assert set(st) == set(st2) == {"ndis", "pre_transform_ms", "coarse_quantizer_ms", "invlist_scan_ms"}
        assert all(v >= 0 for v in st.values())
        Dref, Iref = index.search(xq, 5)
        np.testing.assert_array_equal(I, Iref)  # nprobe 3, the index's own
        out[lib.__name__] = (I, I2, int(st["ndis"]), int(st2["ndis"]), lims, Ir, lims0)
    o, t = out["nearly"], out["faiss"]
    assert o[2] == t[2] and o[3] == t[3]
    np.testing.assert_array_equal(o[1], t[1])
    np.testing.assert_array_equal(o[4], t[4])
    for q in range(40):  # range results per query, as sets (scan order may differ)
        assert set(o[5][o[4][q]:o[4][q + 1]]) == set(t[5][t[4][q]:t[4][q + 1]])
    np.testing.assert_array_equal(o[6], t[6])


def test_search_with_parameters_refusals_and_selectors(x):
    index = nearly.index_factory(16, "IVF32,Flat")
    index.train(x)
    index.add(x)
    sel = nearly.SearchParametersIVF(nprobe=32, sel=nearly.IDSelectorRange(100, 200))
    D, I = nearly.search_with_parameters(index, x[:10], 5, params=sel)
    assert ((I >= 100) & (I < 200)).all()
    lims, Dr, Ir = nearly.range_search_with_parameters(index, x[:10], 1e9, params=sel)
    assert ((Ir >= 100) & (Ir < 200)).all() and len(Ir) == 10 * 100
    with pytest.raises(RuntimeError, match="IVF"):
        nearly.search_with_parameters(nearly.IndexFlatL2(16), x[:2], 1)
    with pytest.raises(ValueError):
        nearly.search_with_parameters(index, x[:2, :8], 1)
    # range_search_preassigned over the quantizer's own lists is range_search
    Dq, Iq = index.quantizer.search(x[:10], 4)
    a = index.range_search_preassigned(x[:10], 2.0, Iq, Dq, params=nearly.SearchParametersIVF(nprobe=4))
    b = index.range_search(x[:10], 2.0, params=nearly.SearchParametersIVF(nprobe=4))
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    c = index.range_search_preassigned(x[:10], 2.0, Iq)  # centroid scores computed
    np.testing.assert_array_equal(c[2], b[2])
    with pytest.raises(ValueError, match="list"):
        index.range_search_preassigned(x[:1], 2.0, np.array([[99]]))


def test_invlists_statistics_and_vector_float_to_array(x, capsys):
    """index.invlists.imbalance_factor() / compute_ntotal() / print_stats()
    and faiss.vector_float_to_array give faiss's values and text."""
    out = {}
    for lib in (faiss, nearly):
        index = lib.index_factory(16, "IVF32,Flat")
        index.train(x)
        index.add(x)
        il = index.invlists
        clus = lib.Clustering(16, 8)
        clus.niter = 3
        clus.train(x, lib.IndexFlatL2(16))
        cent = lib.vector_float_to_array(clus.centroids)
        sizes = [il.list_size(i) for i in range(32)]
        out[lib.__name__] = (il.imbalance_factor(), il.compute_ntotal(), sizes, cent.shape)
    assert out["nearly"][0] == pytest.approx(out["faiss"][0], rel=1e-12)
    assert out["nearly"][1:] == out["faiss"][1:]
    # faiss prints from C (not capturable here): its text, from the list sizes
    below = [sum(1 for s in out["faiss"][2] if s >> j == 0 and (j == 0 or s >> (j - 1) != 0)) for j in range(40)]
    expect = "".join(f"list size in < {1 << j}: {c} instances\n" for j, c in enumerate(below) if c)
    index.invlists.print_stats()
    assert capsys.readouterr().out == expect


def test_parallel_mode_is_kept_and_changes_nothing(x):
    index = nearly.index_factory(16, "IVF32,Flat")
    index.train(x)
    index.add(x)
    index.nprobe = 4
    D0, I0 = index.search(x[:50], 5)
    for mode in (0, 1, 2, 3):
        index.parallel_mode = mode
        assert index.parallel_mode == mode
        D, I = index.search(x[:50], 5)
        np.testing.assert_array_equal(I, I0)
        np.testing.assert_array_equal(D, D0)
    index.parallel_mode = 1024  # faiss's PARALLEL_MODE_NO_HEAP_INIT: plain searches are unchanged
    np.testing.assert_array_equal(index.search(x[:50], 5)[1], I0)
    with pytest.raises(ValueError):
        index.parallel_mode = 7


def build_with_handed_over_quantizer(lib, x):
    """The idiom of functions that return an IVF index built around a
    quantizer they made: the index takes the quantizer over."""
    quantizer = lib.IndexFlatL2(16)
    index = lib.IndexIVFFlat(quantizer, 16, 8)
    index.own_fields = True
    quantizer.this.disown()
    index.train(x)
    index.add(x)
    return index


def test_ownership_idioms(x):
    out = {}
    for lib in (faiss, nearly):
        index = build_with_handed_over_quantizer(lib, x)
        gc.collect()  # the quantizer's Python object is gone; the index keeps it
        index.nprobe = 4
        out[lib.__name__] = index.search(x[:20], 5)
        assert index.own_fields and index.this.own()
        index.own_invlists = True
        refine = lib.IndexRefineFlat(lib.IndexFlatL2(16))
        refine.own_refine_index = True
    np.testing.assert_array_equal(out["nearly"][1], out["faiss"][1])
    np.testing.assert_allclose(out["nearly"][0], out["faiss"][0], rtol=1e-5)
    with pytest.raises(TypeError):
        nearly.IndexFlatL2(16).own_fields = "yes"
    # every object has the handle (selectors, transforms, distance computers)
    assert nearly.IDSelectorRange(0, 3).this.own() and nearly.PCAMatrix(16, 8).this.own()
    assert nearly.IndexFlatL2(16).get_distance_computer().this.own()


def test_bucket_sorts_equal_faiss():
    rng = np.random.default_rng(4)
    tab = rng.integers(0, 50, 3000)
    for lib in (faiss, nearly):
        lims, perm = lib.bucket_sort(tab, nt=2)
        assert lims[-1] == len(tab)
        for b in range(50):
            assert (tab[perm[lims[b]:lims[b + 1]]] == b).all()
    np.testing.assert_array_equal(nearly.bucket_sort(tab)[0], faiss.bucket_sort(tab)[0])
    for dtype in ("int32", "int64"):
        m = rng.integers(0, 30, (200, 7)).astype(dtype)
        got = {}
        for lib in (faiss, nearly):
            t = m.copy()
            lims = lib.matrix_bucket_sort_inplace(t, nbucket=30, nt=2)
            got[lib.__name__] = [set(t.ravel()[lims[b]:lims[b + 1]]) for b in range(30)], lims
        assert got["nearly"][0] == got["faiss"][0]
        np.testing.assert_array_equal(got["nearly"][1], got["faiss"][1])
    with pytest.raises(ValueError):
        nearly.bucket_sort(np.array([0, 5]), nbucket=3)


def test_block_search_idiom_of_big_batch_search(x):
    """contrib's big_batch_search scores a list's codes with a helper index:
    it sets the helper's pq / sq from the IVF index, writes the list's codes
    into helper.codes with copy_array_to_vector and sets ntotal by hand."""
    rng = np.random.default_rng(2)
    xq = rng.standard_normal((10, 16)).astype(np.float32)
    for key in ("IVF8,PQ4np", "IVF8,SQ8"):
        out = {}
        for lib in (faiss, nearly):
            index = lib.index_factory(16, key)
            index.by_residual = False
            index.train(x)
            index.add(x)
            if "PQ" in key:
                helper = lib.IndexPQ(16, index.pq.M, index.pq.nbits)
                helper.pq = index.pq
            else:
                helper = lib.IndexScalarQuantizer(16, index.sq.qtype)
                helper.sq = index.sq
            helper.is_trained = True
            invlists = lib.downcast_InvertedLists(index.invlists)
            l = int(np.argmax([invlists.list_size(i) for i in range(8)]))
            n = invlists.list_size(l)
            codes = np.zeros(n * invlists.code_size, dtype=np.uint8)
            ptr = invlists.get_codes(l)
            lib.memcpy(lib.swig_ptr(codes), ptr, codes.nbytes)
            invlists.release_codes(l, ptr)
            lib.copy_array_to_vector(codes, helper.codes)
            helper.ntotal = n
            out[lib.__name__] = helper.search(xq, 5)
        np.testing.assert_array_equal(out["nearly"][1], out["faiss"][1])
        np.testing.assert_allclose(out["nearly"][0], out["faiss"][0], rtol=1e-4)
    helper = nearly.IndexPQ(16, 4, 8)
    with pytest.raises(ValueError, match="ntotal follows"):
        helper.ntotal = 3
    with pytest.raises(ValueError):
        helper.pq = nearly.ProductQuantizer(16, 8, 8)  # another shape
    with pytest.raises(ValueError, match="whole codes"):
        helper._set_codes(np.zeros(7, np.uint8))
    helper.pq = nearly.ProductQuantizer(16, 4, 8)
    helper.train(x)
    helper.add(x[:10])
    with pytest.raises(RuntimeError, match="empty"):
        helper.pq = nearly.ProductQuantizer(16, 4, 8)
    flat = nearly.IndexFlatL2(16)
    nearly.copy_array_to_vector(x[:5].ravel().view(np.uint8), flat.codes)
    assert flat.ntotal == 5
    np.testing.assert_array_equal(flat.reconstruct_n(0, 5), x[:5])


@pytest.mark.parametrize("key", ["PQ", "SQ"])
def test_shared_codebook_shards_idiom(x, key):
    """Distributed indexing: shards made with the master's quantizer and its
    trained pq / sq (`shard.pq = master.pq; shard.is_trained = True`), filled
    apart and merged, give the master's own results; as in faiss."""
    rng = np.random.default_rng(4)
    xq = rng.standard_normal((20, 16)).astype(np.float32)
    out = {}
    for lib in (faiss, nearly):
        quantizer = lib.IndexFlatL2(16)

        def make():
            if key == "PQ":
                return lib.IndexIVFPQ(quantizer, 16, 16, 4, 8)
            return lib.IndexIVFScalarQuantizer(quantizer, 16, 16, lib.ScalarQuantizer.QT_8bit)

        master = make()
        master.train(x)
        shards = []
        for part in np.array_split(np.arange(len(x)), 3):
            shard = make()
            if key == "PQ":
                shard.pq = master.pq
            else:
                shard.sq = master.sq
            shard.is_trained = True
            shard.add_with_ids(x[part], part)
            shards.append(shard)
        for shard in shards[1:]:
            shards[0].merge_from(shard, 0)
        master.add(x)
        master.nprobe = shards[0].nprobe = 4
        Dm, Im = master.search(xq, 10)
        Ds, Is = shards[0].search(xq, 10)
        np.testing.assert_array_equal(Is, Im)
        np.testing.assert_allclose(Ds, Dm, rtol=1e-5)
        out[lib.__name__] = Is
    np.testing.assert_array_equal(out["nearly"], out["faiss"])
    shard = nearly.IndexIVFPQ(nearly.IndexFlatL2(16), 16, 16, 4, 8)
    with pytest.raises(ValueError):
        shard.pq = nearly.ProductQuantizer(16, 8, 8)  # another shape
    sq_shard = nearly.IndexIVFScalarQuantizer(nearly.IndexFlatL2(16), 16, 16, nearly.ScalarQuantizer.QT_4bit)
    with pytest.raises(ValueError):
        sq_shard.sq = nearly.ScalarQuantizer(16, nearly.ScalarQuantizer.QT_8bit)  # another qtype
    full = nearly.index_factory(16, "IVF16,PQ4")
    full.train(x)
    full.add(x[:10])
    with pytest.raises(RuntimeError, match="empty"):
        full.pq = full.pq
    full = nearly.index_factory(16, "IVF16,SQ8")
    full.train(x)
    full.add(x[:10])
    with pytest.raises(RuntimeError, match="empty"):
        full.sq = full.sq


def test_idmap2_check_consistency(x):
    for lib in (faiss, nearly):
        index = lib.IndexIDMap2(lib.IndexFlatL2(16))
        index.add_with_ids(x[:100], np.arange(100) * 3)
        index.remove_ids(np.arange(0, 300, 6))
        index.check_consistency()  # raises on a broken reverse map
        assert index.ntotal == 50
        np.testing.assert_array_equal(index.reconstruct(9), x[3])  # by the reverse map


@pytest.mark.parametrize("key", ["IVF16,Flat", "IVF16,PQ4x8", "IVF16,SQ8", "IVF16,PQ8x4fs"])
def test_metric_type_set_before_training(x, key):
    """`index.metric_type = METRIC_INNER_PRODUCT` after building, before
    train() (faiss's test_index_accuracy does it on an IndexIVFPQ; the coarse
    quantizer keeps its own metric): the same results as faiss's, inner
    products best first."""
    xq = x[:20] + 0.1
    res = {}
    for lib in (faiss, nearly):
        index = lib.index_factory(16, key)
        lib.extract_index_ivf(index).cp.niter = 5
        index.metric_type = lib.METRIC_INNER_PRODUCT
        assert index.metric_type == lib.METRIC_INNER_PRODUCT
        index.train(x)
        index.add(x)
        lib.extract_index_ivf(index).nprobe = 16
        res[lib.__name__] = index.search(xq, 5)
    overlap = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(res["nearly"][1], res["faiss"][1])])
    assert overlap > 0.9  # fast-scan's quantized sums may order near ties differently
    assert (np.diff(res["nearly"][0], axis=1) <= 1e-5).all()  # inner products, best first


def test_metric_type_refusals(x):
    index = nearly.index_factory(16, "IVF16,Flat")
    index.train(x)
    with pytest.raises(RuntimeError, match="before train"):
        index.metric_type = nearly.METRIC_INNER_PRODUCT
    index.metric_type = nearly.METRIC_L2  # the same metric: nothing changes
    with pytest.raises(ValueError):
        nearly.index_factory(16, "IVF16,Flat").metric_type = nearly.METRIC_L1  # to the constructor
    with pytest.raises(RuntimeError, match="fixed when the index is built"):
        nearly.IndexHNSWFlat(16, 8).metric_type = nearly.METRIC_INNER_PRODUCT
    with pytest.raises(RuntimeError, match="fixed when the index is built"):
        nearly.index_factory(16, "IVF16,RQ4x4").metric_type = nearly.METRIC_INNER_PRODUCT


@pytest.mark.parametrize("fast_scan", [False, True])
def test_ivfpq_inner_product_over_an_l2_quantizer(x, fast_scan):
    """An inner-product IVFPQ by residual over a quantizer that ranks by L2
    (IndexIVFPQ(IndexFlatL2(d), ..., METRIC_INNER_PRODUCT)): the list term
    <q, c> comes from the centroid, not from the coarse score (a distance),
    so the results are faiss's."""
    xq = x[:30] + 0.1
    res = {}
    for lib in (faiss, nearly):
        q = lib.IndexFlatL2(16)
        index = (lib.IndexIVFPQFastScan(q, 16, 16, 4, 4, lib.METRIC_INNER_PRODUCT) if fast_scan
                 else lib.IndexIVFPQ(q, 16, 16, 4, 8, lib.METRIC_INNER_PRODUCT))
        index.cp.niter = 5
        index.train(x)
        index.add(x)
        index.nprobe = 16
        res[lib.__name__] = index.search(xq, 10)
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(res["nearly"][1], res["faiss"][1])])
    assert overlap > 0.95  # fast-scan: quantized sums may order near ties differently
    if not fast_scan:
        np.testing.assert_array_equal(res["nearly"][1], res["faiss"][1])
    np.testing.assert_allclose(res["nearly"][0], res["faiss"][0], rtol=1e-2 if fast_scan else 1e-5)


@pytest.mark.parametrize("metric", [nearly.METRIC_L2, nearly.METRIC_INNER_PRODUCT])
def test_sequential_scan_into_one_result_heap(metric):
    """faiss's sequential scan (tests/test_ivflib.py): the lists searched a
    bucket at a time with search_preassigned(..., D=rh.D, I=rh.I) under
    PARALLEL_MODE_NO_HEAP_INIT, each call merged into the heap: the same
    results as one search."""
    rng = np.random.default_rng(4)
    xb = rng.standard_normal((3000, 20)).astype(np.float32)
    xq = rng.standard_normal((30, 20)).astype(np.float32)
    index = nearly.index_factory(20, "IVF40,SQ8", metric)
    index.train(xb)
    index.add(xb)
    index.nprobe = 8
    Dref, Iref = index.search(xq, 10)
    coarse_dis, assign = index.quantizer.search(xq, index.nprobe)
    rh = nearly.ResultHeap(len(xq), 10, keep_max=metric == nearly.METRIC_INNER_PRODUCT)
    index.parallel_mode |= index.PARALLEL_MODE_NO_HEAP_INIT
    for l0 in range(0, index.nlist, 7):
        sub = assign.copy()
        sub[(assign < l0) | (assign >= l0 + 7)] = -1
        index.search_preassigned(xq, 10, sub, coarse_dis, D=rh.D, I=rh.I)
    rh.finalize()
    np.testing.assert_array_equal(rh.I, Iref)
    np.testing.assert_allclose(rh.D, Dref, rtol=1e-6)
    # without the flag the arrays are overwritten
    index.parallel_mode = 0
    D, I = np.zeros((30, 10), np.float32), np.zeros((30, 10), np.int64)
    index.search_preassigned(xq, 10, assign, coarse_dis, D=D, I=I)
    np.testing.assert_array_equal(I, Iref)
    with pytest.raises(ValueError, match="writeable C-contiguous"):
        index.search_preassigned(xq, 10, assign, coarse_dis, D=D[:, :5], I=I)
    with pytest.raises(ValueError):
        index.parallel_mode = 4


@pytest.mark.parametrize("spec, attr", [("PQ8", "pq"), ("SQ8", "sq"), ("RQ2x4", "rq"), ("IVF8,RQ2x4fs_Nrq2x4", "aq")])
def test_downcast_quantizer_like_faiss(spec, attr):
    names = []
    for lib in (faiss, nearly):
        index = lib.index_factory(16, spec)
        q = lib.downcast_Quantizer(getattr(index, attr))
        names.append(type(q).__name__)
        assert q.d == 16
    assert names[0] == names[1]
