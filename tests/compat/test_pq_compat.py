"""Differential tests of ProductQuantizer, IndexPQ and IndexIVFPQ against
faiss-cpu on the real-embedding subset (../shared/data): the same parameters
on both sides, reconstruction error within 2%, recall within 1 point, equal
code sizes, the same attributes and exception types."""
import numpy as np
import pytest

import nearly
from _hnswutil import real_data
from _testutil import METRIC_IP, METRIC_L2, brute_force, randn

faiss = pytest.importorskip("faiss")

METRICS = [METRIC_L2, METRIC_IP]
METRIC_IDS = ["L2", "IP"]
NITER = 6  # both libraries, to keep the test short
NTRAIN = 10000
# "np": no polysemous training (a centroid renumbering for Hamming filtering
# that ADC searches do not use, and most of faiss's training time); polysemous
# codes have their own tests (test_polysemous_compat.py).
PQ, IVFPQ = "PQ24np", "IVF256,PQ24np"


def recall(I, gt):
    k = gt.shape[1]
    return np.mean([len(set(a[:k]) & set(b)) / k for a, b in zip(I, gt)])


def set_niter(index):
    ivf = None
    try:
        mod = faiss if "faiss" in type(index).__module__ else nearly
        ivf = mod.downcast_index(mod.extract_index_ivf(index))
    except Exception:
        pass
    if ivf is not None:
        ivf.cp.niter = NITER
        ivf.pq.cp.niter = NITER
    else:
        index.pq.cp.niter = NITER


@pytest.fixture(scope="module")
def real():
    base, queries = real_data()
    return np.ascontiguousarray(base[:20000]), np.ascontiguousarray(queries[:200])


@pytest.fixture(scope="module")
def built(real):
    x, xq = real
    out = {}
    for metric in METRICS:
        out["gt", metric] = brute_force(xq, x, 10, metric)[1]
        for fs in (PQ, IVFPQ):
            for lib in (faiss, nearly):
                index = lib.index_factory(384, fs, metric)
                set_niter(index)
                index.train(x[:NTRAIN])
                index.add(x)
                out[lib.__name__, fs, metric] = index
    return out


def test_reconstruction_error_within_2_percent(real):
    x, _ = real
    err = {}
    for lib in (faiss, nearly):
        pq = lib.ProductQuantizer(384, 24, 8)
        pq.cp.niter = NITER
        pq.train(x[:NTRAIN])
        rec = pq.decode(pq.compute_codes(x))
        err[lib.__name__] = float(((rec - x) ** 2).sum(1).mean())
    assert err["nearly"] <= 1.02 * err["faiss"], err


def test_same_codes_from_the_same_centroids(real):
    x, _ = real
    f = faiss.ProductQuantizer(384, 48, 8)
    f.cp.niter = 3
    f.train(x[:5000])
    n = nearly.ProductQuantizer(384, 48, 8)
    n.centroids = faiss.vector_to_array(f.centroids)
    cf, cn = f.compute_codes(x[:2000]), n.compute_codes(x[:2000])
    assert cf.shape == cn.shape and cf.dtype == cn.dtype
    assert (cf == cn).mean() > 0.999  # a tie within float rounding may go either way
    np.testing.assert_array_equal(f.decode(cf), n.decode(cf))
    np.testing.assert_allclose(nearly.vector_to_array(n.centroids), faiss.vector_to_array(f.centroids))


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_index_pq_recall_within_one_point(built, real, metric):
    _, xq = real
    rec = {}
    for lib in ("faiss", "nearly"):
        D, I = built[lib, PQ, metric].search(xq, 10)
        assert D.dtype == np.float32 and I.dtype == np.int64 and I.shape == (len(xq), 10)
        rec[lib] = recall(I, built["gt", metric])
    assert rec["nearly"] >= rec["faiss"] - 0.01, rec


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
@pytest.mark.parametrize("nprobe", [1, 8, 32])
def test_ivfpq_recall_within_one_point(built, real, metric, nprobe):
    _, xq = real
    rec = {}
    for lib in ("faiss", "nearly"):
        index = built[lib, IVFPQ, metric]
        index.nprobe = nprobe
        D, I = index.search(xq, 10)
        rec[lib] = recall(I, built["gt", metric])
    assert rec["nearly"] >= rec["faiss"] - 0.01, rec


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_ivfpq_search_params_like_faiss(built, real, metric):
    _, xq = real
    res = {}
    for lib, mod in (("faiss", faiss), ("nearly", nearly)):
        index = built[lib, IVFPQ, metric]
        index.nprobe = 1
        params = mod.SearchParametersIVF(nprobe=16, sel=mod.IDSelectorRange(0, 10000))
        D, I = index.search(xq, 10, params=params)
        assert ((I >= 0) & (I < 10000)).all()
        res[lib] = I
    agree = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(res["faiss"], res["nearly"])])
    assert agree > 0.8


@pytest.mark.parametrize("fs", ["PQ48", "PQ48x8", "PQ48x4", "IVF64,PQ48", "IVF64,PQ48x8", "IVF64,PQ16,RFlat", "PQ48np",
                                "IVF64,PQ48np"])
def test_same_bytes_per_vector_and_attributes(fs):
    f, n = faiss.index_factory(384, fs), nearly.index_factory(384, fs)
    assert type(f).__name__ == type(n).__name__
    fi, ni = (faiss.downcast_index(faiss.extract_index_ivf(f)), nearly.extract_index_ivf(n)) if "IVF" in fs else (f, n)
    assert fi.code_size == ni.code_size
    for a in ("M", "nbits", "ksub", "dsub", "code_size"):
        assert getattr(fi.pq, a) == getattr(ni.pq, a), a
    assert fi.pq.cp.niter == ni.pq.cp.niter and fi.pq.cp.max_points_per_centroid == ni.pq.cp.max_points_per_centroid
    assert fi.is_trained == ni.is_trained
    if "IVF" in fs:
        assert fi.by_residual == ni.by_residual and fi.nlist == ni.nlist and fi.cp.niter == ni.cp.niter
        assert fi.use_precomputed_table == ni.use_precomputed_table


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_precomputed_table_choice_like_faiss(built, metric):
    f, n = built["faiss", IVFPQ, metric], built["nearly", IVFPQ, metric]
    assert faiss.downcast_index(faiss.extract_index_ivf(f)).use_precomputed_table == n.use_precomputed_table


def raises_same(fn_f, fn_n):
    errs = []
    for fn in (fn_f, fn_n):
        try:
            fn()
            errs.append(None)
        except Exception as e:  # noqa: BLE001 - comparing the types
            errs.append(e)
    assert errs[0] is not None and errs[1] is not None, errs
    assert isinstance(errs[1], type(errs[0])), errs
    return errs


def test_bad_input_raises_like_faiss():
    rng = np.random.default_rng(0)
    errs = raises_same(lambda: faiss.IndexPQ(30, 8, 8), lambda: nearly.IndexPQ(30, 8, 8))
    assert "multiple of the number of subquantizers" in str(errs[1])
    raises_same(lambda: faiss.ProductQuantizer(30, 8, 8), lambda: nearly.ProductQuantizer(30, 8, 8))
    x = randn(rng, 100, 16)
    errs = raises_same(lambda: faiss.IndexPQ(16, 4, 8).train(x), lambda: nearly.IndexPQ(16, 4, 8).train(x))
    assert "should be at least as large as number of clusters" in str(errs[1])
    raises_same(lambda: faiss.IndexPQ(16, 4, 8).add(x), lambda: nearly.IndexPQ(16, 4, 8).add(x))
    raises_same(lambda: faiss.IndexPQ(16, 4, 8).search(x, 1), lambda: nearly.IndexPQ(16, 4, 8).search(x, 1))
    raises_same(lambda: faiss.IndexIVFPQ(faiss.IndexFlatL2(16), 16, 4, 4, 8).add(x),
                lambda: nearly.IndexIVFPQ(nearly.IndexFlatL2(16), 16, 4, 4, 8).add(x))
    raises_same(lambda: faiss.IndexIVFPQ(faiss.IndexFlatL2(16), 16, 4, 4, 8).search(x, 1),
                lambda: nearly.IndexIVFPQ(nearly.IndexFlatL2(16), 16, 4, 4, 8).search(x, 1))


@pytest.mark.parametrize("nbits", [4, 6, 8, 12])
def test_pointer_style_calls_like_faiss(nbits):
    """faiss's pointer forms (swig_ptr arrays filled in place) and extras on
    the same centroids: distance / inner-product tables, the SDC table,
    codes through an assign_index, clear_transposed_centroids."""
    rng = np.random.default_rng(nbits)
    d, M = 24, 6
    centroids = rng.standard_normal((M << nbits) * (d // M)).astype(np.float32)
    x = rng.standard_normal((50, d)).astype(np.float32)
    ours, theirs = nearly.ProductQuantizer(d, M, nbits), faiss.ProductQuantizer(d, M, nbits)
    ours.centroids = centroids
    faiss.copy_array_to_vector(centroids, theirs.centroids)
    for name in ("compute_distance_tables", "compute_inner_prod_tables"):
        got, want = (np.zeros((50, M, 1 << nbits), np.float32) for _ in range(2))
        assert getattr(ours, name)(50, nearly.swig_ptr(x), nearly.swig_ptr(got)) is None
        getattr(theirs, name)(50, faiss.swig_ptr(x), faiss.swig_ptr(want))
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(getattr(ours, name)(x), want, rtol=1e-4, atol=1e-4)
    if nbits <= 8:
        assert ours.sdc_table.size() == 0
        ours.compute_sdc_table()
        theirs.compute_sdc_table()
        np.testing.assert_allclose(nearly.vector_to_array(ours.sdc_table), faiss.vector_to_array(theirs.sdc_table),
                                   rtol=1e-4, atol=1e-4)
    codes = ours.compute_codes(x)
    np.testing.assert_array_equal(codes, theirs.compute_codes(x))
    ours.assign_index = nearly.IndexFlatL2(d // M)
    got = np.zeros_like(codes)
    ours.compute_codes_with_assign_index(nearly.swig_ptr(x), nearly.swig_ptr(got), 50)
    np.testing.assert_array_equal(got, codes)
    ours.clear_transposed_centroids()
    np.testing.assert_array_equal(ours.compute_codes(x), codes)
    ours.assign_index = nearly.IndexFlatL2(d // M + 1)
    with pytest.raises(RuntimeError, match="dimension"):
        ours.compute_codes_with_assign_index(x, got, 50)
    with pytest.raises(ValueError, match="tables must be"):
        ours.compute_distance_tables(50, x, np.zeros(10, np.float32))
