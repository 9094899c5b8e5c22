"""faiss API that user code and faiss's own test suite call around the
indexes: factory chains and suffixes, swig_ptr and typed vectors,
copy_array_to_vector into an object's arrays, SIMDConfig, small helpers.
Each runs the same calls on faiss and on nearly."""
import numpy as np
import pytest

import nearly

faiss = pytest.importorskip("faiss")
LIBS = [faiss, nearly]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 16)).astype("float32")
    x *= np.linspace(4, 0.5, 16, dtype="float32")  # skewed, so PCA has a clear answer
    return x[:2000], x[2000:2900], x[2900:]


def test_factory_transform_chain_is_one_pretransform(data):
    xt, xb, xq = data
    out = {}
    for lib in LIBS:
        index = lib.index_factory(16, "L2norm,PCA8,L2norm,Flat")
        assert index.chain.size() == 3
        assert [type(lib.downcast_VectorTransform(index.chain.at(i))).__name__ for i in range(3)] == [
            "NormalizationTransform", "PCAMatrix", "NormalizationTransform"]
        assert type(lib.downcast_index(index.index)).__name__.startswith("IndexFlat")
        index.train(xt)
        index.add(xb)
        out[lib] = index.search(xq, 10)
    np.testing.assert_allclose(out[nearly][0], out[faiss][0], atol=1e-4)
    assert (out[nearly][1] == out[faiss][1]).mean() > 0.97  # ties under float noise only


@pytest.mark.parametrize("desc", ["Flat,IDMap", "Flat,IDMap2", "IVF16,Flat,IDMap2", "PCA8,Flat,IDMap"])
def test_factory_idmap_suffix(data, desc):
    xt, xb, xq = data
    ids = np.arange(len(xb), dtype="int64") * 7 + 3
    out = {}
    for lib in LIBS:
        index = lib.index_factory(16, desc)
        assert type(index).__name__ == ("IndexIDMap2" if desc.endswith("IDMap2") else "IndexIDMap")
        index.train(xt)
        index.add_with_ids(xb, ids)
        out[lib] = index.search(xq, 5)[1]
    assert (out[nearly] == out[faiss]).mean() > 0.97
    assert np.isin(out[nearly], ids).all()


def test_pretransform_from_an_index_then_prepend(data):
    xt, xb, xq = data
    out = {}
    for lib in LIBS:
        index = lib.IndexPreTransform(lib.IndexFlatL2(8))
        assert index.chain.size() == 0 and index.d == 8
        index.prepend_transform(lib.PCAMatrix(16, 8))
        index.prepend_transform(lib.NormalizationTransform(16))
        assert index.chain.size() == 2 and index.d == 16 and not index.is_trained
        index.train(xt)
        index.add(xb)
        out[lib] = index.search(xq, 5)
    np.testing.assert_allclose(out[nearly][0], out[faiss][0], atol=1e-4)
    bad = nearly.IndexPreTransform(nearly.IndexFlatL2(8))
    with pytest.raises(ValueError, match="output dimension"):
        bad.prepend_transform(nearly.NormalizationTransform(16))
    plain = nearly.IndexPreTransform(nearly.IndexFlatL2(8))  # an empty chain searches the inner index
    plain.add(xb[:, :8].copy())
    np.testing.assert_array_equal(plain.search(xq[:, :8].copy(), 3)[1],
                                  faiss.knn(xq[:, :8].copy(), xb[:, :8].copy(), 3)[1])


def test_pretransform_chain_persists(tmp_path, data):
    xt, xb, xq = data
    index = nearly.index_factory(16, "L2norm,PCA8,Flat")
    index.train(xt)
    index.add(xb)
    path = str(tmp_path / "chain.index")
    nearly.write_index(index, path)
    back = nearly.read_index(path)
    assert back.chain.size() == 2
    np.testing.assert_array_equal(back.search(xq, 5)[1], index.search(xq, 5)[1])
    empty = nearly.IndexPreTransform(nearly.IndexFlatL2(16))
    empty.add(xb)
    back = nearly.deserialize_index(nearly.serialize_index(empty))
    assert back.chain.size() == 0
    np.testing.assert_array_equal(back.search(xq, 5)[1], empty.search(xq, 5)[1])


def test_refine_over_filled_indexes(data):
    xt, xb, xq = data
    out = {}
    for lib in LIBS:
        base = lib.index_factory(16, "PQ4x4np")
        base.train(xt)
        base.add(xb)
        flat = lib.IndexFlatL2(16)
        flat.add(xb)
        index = lib.IndexRefine(base, flat)
        index.k_factor = 10
        assert index.ntotal == len(xb)
        out[lib] = index.search(xq, 10)
    np.testing.assert_allclose(out[nearly][0], out[faiss][0], rtol=1e-5)
    np.testing.assert_array_equal(out[nearly][1], out[faiss][1])
    base = nearly.IndexFlatL2(16)
    base.add(xb)
    with pytest.raises(ValueError, match="same number of vectors"):
        nearly.IndexRefine(base, nearly.IndexFlatL2(16))
    with pytest.raises(ValueError, match="same number of vectors"):
        nearly.IndexRefineFlat(base)


def test_swig_ptr_selectors_and_errors(data):
    _, xb, _ = data
    toremove = np.arange(0, 900, 3, dtype="int64")
    left = {}
    for lib in LIBS:
        index = lib.IndexFlatL2(16)
        index.add(xb)
        assert index.remove_ids(lib.IDSelectorBatch(len(toremove), lib.swig_ptr(toremove))) == len(toremove)
        sel = lib.IDSelectorArray(50, lib.swig_ptr(toremove[:100].copy()))
        assert sel.is_member(int(toremove[49])) and not sel.is_member(int(toremove[50]))
        left[lib] = index.ntotal
        a = np.arange(12, dtype="float32")
        np.testing.assert_array_equal(lib.rev_swig_ptr(lib.swig_ptr(a), 12), a)
        for bad in (None, [1, 2], a[::2]):
            with pytest.raises(ValueError):
                lib.swig_ptr(bad)
    assert left[nearly] == left[faiss] == len(xb) - len(toremove)


@pytest.mark.parametrize("name,dtype", [("Float32Vector", "float32"), ("Int64Vector", "int64"),
                                        ("UInt8Vector", "uint8"), ("Int32Vector", "int32")])
def test_typed_vectors(name, dtype):
    values = np.arange(1, 40).astype(dtype)
    for lib in LIBS:
        v = getattr(lib, name)()
        assert v.size() == 0
        for val in values[:5]:
            v.push_back(val.item())
        assert v.size() == 5 and v.at(4) == values[4]
        lib.copy_array_to_vector(values, v)
        assert v.size() == len(values)
        out = lib.vector_to_array(v)
        assert out.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(out, values)
        v.resize(3)
        np.testing.assert_array_equal(lib.vector_to_array(v), values[:3])
    with pytest.raises(IndexError):
        nearly.Int64Vector().at(0)


def test_copy_array_to_vector_fills_object_arrays(data):
    xt, xb, xq = data
    rng = np.random.default_rng(3)
    A, b = rng.standard_normal(8 * 16).astype("float32"), rng.standard_normal(8).astype("float32")
    centroids = rng.standard_normal(4 * 16 * 4).astype("float32")
    out = {}
    for lib in LIBS:
        lt = lib.LinearTransform(16, 8, True)
        lib.copy_array_to_vector(A, lt.A)
        lib.copy_array_to_vector(b, lt.b)
        lt.is_trained = True
        pq = lib.ProductQuantizer(16, 4, 4)
        lib.copy_array_to_vector(centroids, pq.centroids)
        out[lib] = (lt.apply(xq), pq.compute_codes(xb))
    np.testing.assert_allclose(out[nearly][0], out[faiss][0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out[nearly][0], xq @ A.reshape(8, 16).T + b, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(out[nearly][1], out[faiss][1])
    lt = nearly.LinearTransform(16, 8, True)
    with pytest.raises(ValueError):  # the setter checks the size
        nearly.copy_array_to_vector(A[:5], lt.A)
    with pytest.raises(TypeError, match="assign"):  # a free-standing array: nothing to fill
        nearly.copy_array_to_vector(A, np.zeros_like(A))
    sq = nearly.ScalarQuantizer(16, nearly.ScalarQuantizer.QT_8bit)
    sq.train(xt)
    ranges = np.arange(32, dtype="float32") + 1
    nearly.copy_array_to_vector(ranges, sq.trained)  # faiss's idiom: ranges set by hand
    np.testing.assert_array_equal(sq.trained, ranges)
    with pytest.raises(ValueError):
        nearly.copy_array_to_vector(ranges[:5], sq.trained)


def test_clustering_centroids_through_copy_array_to_vector(data):
    xt = data[0]
    init = xt[:8] * 1.1
    out = {}
    for lib in LIBS:
        clus = lib.Clustering(16, 8)
        clus.niter = 4
        lib.copy_array_to_vector(init.ravel(), clus.centroids)
        clus.train(xt, lib.IndexFlatL2(16))
        out[lib] = lib.vector_to_array(clus.centroids)
    np.testing.assert_allclose(out[nearly], out[faiss], atol=1e-4)


def test_small_helpers():
    assign = np.random.default_rng(4).integers(0, 10, 1000).astype("int64")
    hist = np.bincount(assign, minlength=10).astype("int64")
    assert nearly.imbalance_factor(1000, 10, assign) == pytest.approx(
        faiss.imbalance_factor(1000, 10, faiss.swig_ptr(assign)), rel=1e-6)
    assert nearly.imbalance_factor(10, hist) == pytest.approx(faiss.imbalance_factor(10, faiss.swig_ptr(hist)), rel=1e-6)
    with pytest.raises(ValueError):
        nearly.imbalance_factor(1000, 5, assign)
    for m in (nearly.METRIC_L2, nearly.METRIC_INNER_PRODUCT, nearly.METRIC_L1, nearly.METRIC_Jaccard):
        assert nearly.is_similarity_metric(m) == faiss.is_similarity_metric(m)


def test_simd_config():
    S = nearly.SIMDConfig
    for name in ("NONE", "AVX2", "AVX512", "AVX512_SPR", "ARM_NEON", "ARM_SVE", "RISCV_RVV"):
        assert getattr(nearly, "SIMDLevel_" + name) == getattr(faiss, "SIMDLevel_" + name)
    assert S.is_simd_level_available(nearly.SIMDLevel_NONE)
    start = S.get_level()
    assert S.get_level_name() in ("NONE", "AVX2", "AVX512", "ARM_NEON")
    try:
        S.set_level(nearly.SIMDLevel_NONE)
        assert nearly.simd_level() == "scalar" and S.get_level() == nearly.SIMDLevel_NONE
        x = np.random.default_rng(5).standard_normal((50, 16)).astype("float32")
        ref = nearly.knn(x, x, 3)[1]
    finally:
        S.set_level(start)
    np.testing.assert_array_equal(nearly.knn(x, x, 3)[1], ref)
    with pytest.raises(RuntimeError, match="not available"):
        S.set_level(nearly.SIMDLevel_RISCV_RVV)
    assert S.get_level() == start


def test_binary_flat_range_search_matches_faiss():
    rng = np.random.default_rng(6)
    xb = rng.integers(0, 256, (3000, 8), dtype=np.uint8)
    xq = np.vstack([xb[:5], rng.integers(0, 256, (20, 8), dtype=np.uint8)])
    out = {}
    for lib in LIBS:
        index = lib.IndexBinaryFlat(64)
        index.add(xb)
        out[lib] = [index.range_search(xq, r) for r in (0, 1, 20, 26)]
        sel = lib.IDSelectorRange(100, 2000)
        out[lib].append(index.range_search(xq, 26, params=lib.SearchParameters(sel=sel)))
    for (ln, Dn, In), (lf, Df, If) in zip(out[nearly], out[faiss]):
        np.testing.assert_array_equal(ln, lf)
        assert Dn.dtype == np.int32 and In.dtype == np.int64
        for q in range(len(xq)):  # same hits; faiss's order within a query is not promised
            a, b = slice(ln[q], ln[q + 1]), slice(lf[q], lf[q + 1])
            assert sorted(zip(In[a], Dn[a])) == sorted(zip(If[b], Df[b]))
    lims, D, I = out[nearly][-1]
    assert ((I >= 100) & (I < 2000)).all()
    assert out[nearly][0][0][-1] == 0  # radius 0: nothing is < 0
    hnsw = nearly.IndexBinaryHNSW(64, 8)
    hnsw.add(xb[:100])
    with pytest.raises(RuntimeError, match="not implemented"):
        hnsw.range_search(xq, 10)
    flat = nearly.IndexBinaryFlat(64)
    flat.use_heap = False  # faiss's knob; the results do not depend on it
    flat.add(xb)
    np.testing.assert_array_equal(flat.search(xq, 5)[1], faiss_binary_knn(xb, xq, 5))


def faiss_binary_knn(xb, xq, k):
    index = faiss.IndexBinaryFlat(64)
    index.add(xb)
    return index.search(xq, k)[1]


def test_flat_codes_and_hnsw_attributes(data):
    xt, xb, xq = data
    for lib in LIBS:
        index = lib.IndexFlatL2(16)
        index.add(xb)
        assert index.code_size == 64
        codes = lib.vector_to_array(index.codes)
        assert codes.dtype == np.uint8 and codes.size == len(xb) * 64
        np.testing.assert_array_equal(codes.view("float32").reshape(-1, 16), xb)
        for metric, sim in ((lib.METRIC_L2, False), (lib.METRIC_INNER_PRODUCT, True)):
            h = lib.IndexHNSWFlat(16, 8, metric)
            assert h.hnsw.is_similarity == sim
            assert isinstance(h, lib.IndexHNSW)
        assert not isinstance(index, lib.IndexHNSW)
    h = nearly.IndexHNSW(nearly.IndexFlatIP(16), 12)
    assert type(h).__name__ == "IndexHNSWFlat" and h.metric_type == nearly.METRIC_INNER_PRODUCT and h.hnsw.M == 12
    assert isinstance(nearly.index_factory(16, "HNSW8,SQ4"), nearly.IndexHNSW)
    # over any other storage: the graph scored through the storage (faiss's generic IndexHNSW)
    assert type(nearly.IndexHNSW(nearly.IndexPQ(16, 4, 8))).__name__ == "IndexHNSWOnStorage"


def test_quantizer_params_reach_an_hnsw_quantizer():
    from _hnswutil import real_data

    base, queries = real_data()
    xb, xq = base[:20000], queries[:300]
    recalls = {}
    exact = np.argsort(-(xq @ xb.T), axis=1)[:, :10]
    for lib in LIBS:
        index = lib.index_factory(xb.shape[1], "IVF1024_HNSW32,Flat", lib.METRIC_INNER_PRODUCT)
        index.train(xb[:12000])
        index.add(xb)
        quantizer = lib.downcast_index(index.quantizer)
        quantizer.hnsw.efSearch = 16
        index.nprobe = 16  # faiss's search_preassigned wants lists of this width
        lists = {}
        for ef in (16, 400):
            params = lib.SearchParametersIVF(nprobe=16, quantizer_params=lib.SearchParametersHNSW(efSearch=ef))
            if lib is nearly:  # faiss hands back the base class here
                assert params.quantizer_params.efSearch == ef
            D, I = index.search(xq, 10, params=params)
            # exactly the search over the lists the quantizer finds with those parameters
            Dq, Iq = quantizer.search(xq, 16, params=lib.SearchParametersHNSW(efSearch=ef))
            D2, I2 = index.search_preassigned(xq, 10, Iq, Dq)
            np.testing.assert_array_equal(I, I2)
            lists[ef] = Iq
            recalls[lib, ef] = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I, exact)])
            lims, _, _ = index.range_search(xq[:20], 0.5, params=params)
            assert lims[-1] >= 0
        if lib is nearly:
            assert (lists[16] != lists[400]).any()  # the parameter really changes the walk
    for ef in (16, 400):  # the graphs differ; nearly's is at least as good at each efSearch
        assert recalls[nearly, ef] >= recalls[faiss, ef] - 0.01, recalls
    p = nearly.SearchParametersIVF(nprobe=4)
    assert p.quantizer_params is None
    p.quantizer_params = nearly.SearchParametersHNSW(efSearch=32)
    assert p.quantizer_params.efSearch == 32


@pytest.mark.parametrize("desc", ["IVF32,Flat", "HNSW16", "Flat"])
def test_python_callback_selector(data, desc):
    xt, xb, xq = data
    subset = np.random.default_rng(7).choice(len(xb), 60, replace=False)
    members = set(subset.tolist())
    out = {}
    for lib in LIBS:
        index = lib.index_factory(16, desc)
        index.train(xt)
        index.add(xb)
        kw = {"nprobe": 8} if desc.startswith("IVF") else {}
        P = lib.SearchParametersIVF if desc.startswith("IVF") else lib.SearchParameters
        ref = index.search(xq, 10, params=P(sel=lib.IDSelectorBatch(subset), **kw))
        got = index.search(xq, 10, params=P(sel=lib.PyCallbackIDSelector(lambda i: i in members), **kw))
        np.testing.assert_array_equal(got[1], ref[1])
        out[lib] = got[1]
    if desc != "HNSW16":  # the graphs differ; the flat and IVF scans do not
        np.testing.assert_array_equal(out[nearly], out[faiss])

    def boom(i):
        raise ValueError("no")

    index = nearly.IndexFlatL2(16)
    index.add(xb)
    with pytest.raises(RuntimeError, match="callback raised"):
        index.search(xq, 5, params=nearly.SearchParameters(sel=nearly.PyCallbackIDSelector(boom)))
    with pytest.raises(ValueError, match="callable"):
        nearly.PyCallbackIDSelector(42)
    assert index.search(xq[:2], 5)[1].shape == (2, 5)  # still usable


@pytest.mark.parametrize("inner", ["SQ8", "IVF16,Flat"])
def test_translated_selector_on_idmap(data, inner):
    xt, xb, xq = data
    rng = np.random.default_rng(8)
    ids = rng.choice(100000, size=len(xb), replace=False).astype("int64")
    mask = ids % 2 == 0
    out = {}
    for lib in LIBS:
        index = lib.index_factory(16, "IDMap," + inner)
        index.train(xt)
        index.add_with_ids(xb[mask], ids[mask])
        if "IVF" in inner:
            lib.extract_index_ivf(index).nprobe = 16
        ref = index.search(xq, 10)
        index.reset()
        index.add_with_ids(xb, ids)
        sel = lib.IDSelectorTranslated(index, lib.IDSelectorBatch(ids[mask]))
        params = lib.SearchParametersIVF(sel=sel, nprobe=16) if "IVF" in inner else lib.SearchParameters(sel=sel)
        got = index.search(xq, 10, params=params)
        np.testing.assert_array_equal(got[1], ref[1])
        np.testing.assert_allclose(got[0], ref[0], rtol=1e-5)
        out[lib] = got[1]
    np.testing.assert_array_equal(out[nearly], out[faiss])
    # over an array: position i passes when the inner selector passes id_map[i]
    flat = nearly.IndexFlatL2(16)
    flat.add(xb)
    sel = nearly.IDSelectorTranslated(ids, nearly.IDSelectorBatch(ids[mask]))
    assert [sel.is_member(i) for i in range(50)] == list(mask[:50])
    got = flat.search(xq, 10, params=nearly.SearchParameters(sel=sel))[1]
    assert mask[got[got >= 0]].all()


@pytest.mark.parametrize("desc", ["BIVF32", "BIVF32_BHNSW8", "IDMap2,BFlat", "BFlat,IDMap2", "BIVF32,IDMap"])
def test_binary_factory_strings_and_range_search(desc):
    rng = np.random.default_rng(9)
    xb = rng.integers(0, 256, (4000, 8), dtype=np.uint8)
    xq = np.vstack([xb[:5] ^ 1, rng.integers(0, 256, (15, 8), dtype=np.uint8)])
    ids = np.arange(len(xb), dtype="int64") * 3 + 11
    out = {}
    for lib in LIBS:
        index = lib.index_binary_factory(64, desc)
        index.train(xb)
        if "IDMap" in desc:
            index.add_with_ids(xb, ids)
        else:
            index.add(xb)
        ivf = index.index if "IDMap" in desc else index
        if "IVF" in desc:
            lib.downcast_IndexBinary(ivf).nprobe = 4
        first = (index.search(xq, 5), index.range_search(xq, 24))
        if "IVF" in desc:  # every list (faiss takes no parameters in a binary range search)
            lib.downcast_IndexBinary(ivf).nprobe = 32
        out[lib] = first + (index.range_search(xq, 24),)
        if lib is nearly and "IVF" in desc:  # nearly takes them: the same as the attribute
            lib.downcast_IndexBinary(ivf).nprobe = 1
            via = index.range_search(xq, 24, params=lib.SearchParametersIVF(nprobe=32))
            np.testing.assert_array_equal(via[0], out[lib][2][0])
    (Dn, In), *ranges_n = out[nearly]
    (Df, If), *ranges_f = out[faiss]
    if "HNSW" not in desc:  # an HNSW quantizer's graph differs from faiss's
        np.testing.assert_array_equal(Dn, Df)
        np.testing.assert_array_equal(In, If)
    else:
        assert (np.diff(Dn, axis=1) >= 0).all() and (Dn <= 64).all()
    for (ln, dn, i_n), (lf, df, i_f) in zip(ranges_n, ranges_f):
        assert dn.dtype == np.int32
        for q in range(len(xq)):
            a, b = slice(ln[q], ln[q + 1]), slice(lf[q], lf[q + 1])
            if "HNSW" in desc:  # the graph may probe other lists; what it finds is right
                assert (dn[a] < 24).all()
            else:
                assert sorted(zip(i_n[a], dn[a])) == sorted(zip(i_f[b], df[b]))
    if "IDMap" in desc:
        assert np.isin(ranges_n[0][2], ids).all()


@pytest.mark.parametrize("keep_max", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "int32"])
def test_merge_knn_results_like_faiss(keep_max, dtype):
    rng = np.random.default_rng(10)
    for nshard, n, k in ((1, 5, 3), (4, 200, 7), (3, 10, 1), (2, 3, 0)):
        D = np.sort(rng.integers(0, 6, (nshard, n, k)), axis=2).astype(dtype)  # many ties
        if keep_max:
            D = np.ascontiguousarray(D[:, :, ::-1])
        I = rng.integers(0, 10**6, (nshard, n, k)).astype("int64")
        I[rng.random(I.shape) < 0.15] = -1  # a shard's list ends at its first -1
        got, ref = nearly.merge_knn_results(D, I, keep_max), faiss.merge_knn_results(D, I, keep_max)
        for a, b in zip(got, ref):
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(a, b)
    with pytest.raises(AssertionError):
        nearly.merge_knn_results(np.zeros((2, 3, 4), "float32"), np.zeros((2, 3, 5), "int64"))


def test_matrix_stats_like_faiss():
    from _hnswutil import real_data

    base, _ = real_data()
    rng = np.random.default_rng(11)
    skewed = rng.standard_normal((500, 24)).astype("float32")
    skewed[:, 2] = 7.0  # constant
    skewed[:, 5] += 1e5  # a large mean for its spread
    skewed[10] = skewed[20] = skewed[30]  # copies
    skewed[40] = 0
    skewed[41, 3] = np.nan
    skewed[42, 4] = np.inf
    cases = [base[:2000], skewed, rng.standard_normal((50, 1100)).astype("float32"),
             np.vstack([rng.standard_normal((20, 8)), 1000 * rng.standard_normal((20, 8))]).astype("float32")]
    for x in cases:
        ours, theirs = nearly.MatrixStats(x), faiss.MatrixStats(x)
        a = [l for l in ours.comments.splitlines() if not l.startswith("hash value")]
        b = [l for l in theirs.comments.splitlines() if not l.startswith("hash value")]
        assert a == b
        assert ours.n_valid == theirs.n_valid and ours.n0 == theirs.n0
    stats = nearly.MatrixStats(skewed).per_dim_stats
    assert (stats[3].n_nan, stats[4].n_inf, stats[0].n_valid) == (1, 1, 500)
    with pytest.raises(ValueError):
        nearly.MatrixStats(np.zeros(5, "float32"))


def test_get_mem_usage_kb():
    import mmap

    before = nearly.get_mem_usage_kb()
    # 50 MiB of fresh pages, touched (an array could reuse heap memory that
    # earlier tests freed and that is still resident)
    block = mmap.mmap(-1, 50 * 2**20)
    block.write(b"\x01" * (50 * 2**20))
    after = nearly.get_mem_usage_kb()
    assert after - before > 40 * 1024
    assert abs(after - faiss.get_mem_usage_kb()) < 0.2 * after
    block.close()


def test_faiss_simd_level_environment_variable():
    import os
    import subprocess
    import sys

    def level(**env):
        full = {k: v for k, v in os.environ.items() if k not in ("NEARLY_SIMD", "FAISS_SIMD_LEVEL")}
        full.update(env)
        out = subprocess.run([sys.executable, "-c", "import nearly; print(nearly.simd_level(), "
                              "nearly.SIMDConfig.get_level_name())"], env=full, capture_output=True, text=True)
        return out.stdout.split(), out.stderr

    assert level(FAISS_SIMD_LEVEL="NONE")[0] == ["scalar", "NONE"]
    if "avx2" in nearly.simd_levels_supported():
        assert level(FAISS_SIMD_LEVEL="AVX2")[0] == ["avx2", "AVX2"]
        assert level(FAISS_SIMD_LEVEL="NONE", NEARLY_SIMD="avx2")[0][0] == "avx2"  # nearly's own wins
    got, err = level(FAISS_SIMD_LEVEL="NOPE")
    assert got[0] == nearly.simd_levels_supported()[-1] and "FAISS_SIMD_LEVEL" in err


def test_docstrings_errors_naming_the_file_and_merge_check(data, tmp_path):
    xt, xb, xq = data
    for lib in LIBS:
        assert "Adds vectors to the index" in lib.IndexFlatL2(8).add.__doc__
    index = nearly.IndexFlatL2(16)
    index.add(xb)
    fname = str(tmp_path / "cut.index")
    nearly.write_index(index, fname)
    data_bytes = open(fname, "rb").read()
    open(fname, "wb").write(data_bytes[: len(data_bytes) // 2])
    for flags in (0, nearly.IO_FLAG_MMAP):
        with pytest.raises(RuntimeError) as e:
            nearly.read_index(fname, flags)
        assert fname in str(e.value)
    for lib in LIBS:
        a, b = lib.index_factory(16, "IVF8,Flat"), lib.index_factory(16, "IVF8,Flat")
        a.train(xt)
        b.train(xt)
        lib.check_compatible_for_merge(a, b)
        c = lib.index_factory(16, "IVF8,Flat")
        c.train(xt[::-1].copy())
        with pytest.raises(RuntimeError):
            lib.check_compatible_for_merge(a, c)


def test_operating_points_as_faiss_vectors():
    pts = [(0.5, 1.0, "a"), (0.6, 2.0, "b"), (0.6, 1.5, "c"), (0.55, 0.8, "d"), (0.9, 3.0, "e"), (0.9, 3.0, "f")]
    keys = {}
    for lib in LIBS:
        ops = lib.OperatingPoints()
        for perf, t, key in pts:
            ops.add(perf, t, key)
        keys[lib] = [ops.optimal_pts.at(i).key for i in range(ops.optimal_pts.size())]
        assert ops.all_pts.size() == len(pts)
    assert keys[nearly] == keys[faiss]
    with pytest.raises(IndexError):
        nearly.OperatingPoints().optimal_pts.at(5)


def test_random_helpers_like_faiss():
    for n, d, seed in ((1000, 24, 77), (5, 300, 1), (0, 8, 3)):
        a, b = nearly.rand_smooth_vectors(n, d, seed=seed), faiss.rand_smooth_vectors(n, d, seed=seed)
        assert a.dtype == b.dtype == np.float32 and a.shape == b.shape == (n, d)
        np.testing.assert_allclose(a, b, atol=2e-5)
    for fill, ref in (("float_rand", "rand"), ("float_randn", "randn")):
        for lib in LIBS:
            x = np.zeros(100, "float32")
            getattr(lib, fill)(lib.swig_ptr(x), 60, 42)
            np.testing.assert_array_equal(x[:60], getattr(lib, ref)(60, 42))
            assert (x[60:] == 0).all()
    with pytest.raises(ValueError):
        nearly.float_rand(np.zeros(10, "float32"), 20, 1)


def test_pretransform_trained_part_by_part(data):
    """faiss's contrib trains a pre-transform's chain and inner index one by
    one, then sets is_trained: accepted when every part is trained."""
    xt, xb, xq = data
    out = {}
    for lib in LIBS:
        index = lib.index_factory(16, "PCA8,IVF16,Flat")
        assert not index.is_trained
        xt2 = xt
        for i in range(index.chain.size()):
            vt = index.chain.at(i)
            vt.train(xt2)
            xt2 = vt.apply(xt2)
        inner = lib.downcast_index(index.index)
        inner.train(xt2)
        index.is_trained = True
        index.add(xb)
        inner.nprobe = 16
        out[lib] = index.search(xq, 5)[1]
    np.testing.assert_array_equal(out[nearly], out[faiss])
    half = nearly.index_factory(16, "PCA8,IVF16,Flat")
    half.chain.at(0).train(xt)
    with pytest.raises(RuntimeError, match="inner index is not trained"):
        half.is_trained = True
    none = nearly.index_factory(16, "PCA8,Flat")
    with pytest.raises(RuntimeError, match="transform 0"):
        none.is_trained = True


def test_code_set_clone_quantizer_and_l2norm_spelling():
    rng = np.random.default_rng(9)
    codes = rng.integers(0, 2, (1000, 8)).astype(np.uint8)
    for lib in (nearly, faiss):
        s = lib.CodeSet(8)
        first = s.insert(codes)
        np.testing.assert_array_equal(np.sort(np.unique(codes, axis=0), axis=None), np.sort(codes[first], axis=None))
        assert not s.insert(codes[:20]).any()  # the set remembers
    np.testing.assert_array_equal(nearly.CodeSet(8).insert(codes), faiss.CodeSet(8).insert(codes))
    x = rng.standard_normal((300, 16)).astype(np.float32)
    for make in (lambda lib: lib.ScalarQuantizer(16, lib.ScalarQuantizer.QT_4bit),
                 lambda lib: lib.ProductQuantizer(16, 4, 4),
                 lambda lib: lib.ResidualQuantizer(16, 2, 4)):
        q = make(nearly)
        q.train(x)
        c = nearly.clone_Quantizer(q)
        assert type(c) is type(q) and c is not q
        np.testing.assert_array_equal(c.compute_codes(x), q.compute_codes(x))
    for spec in ("PCAR8,L2Norm,PCAW4,LSHr", "L2norm,Flat"):
        a, b = nearly.index_factory(16, spec), faiss.index_factory(16, spec)
        assert a.chain.size() == b.chain.size()
