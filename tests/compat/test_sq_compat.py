"""Differential tests of ScalarQuantizer, IndexScalarQuantizer and
IndexIVFScalarQuantizer against faiss-cpu on the real-embedding subset
(../shared/data), with the factory strings "SQ8", "SQ4", "SQ6", "SQfp16",
"SQbf16", "IVF1024,SQ8" / "SQ4" / "SQ6" / "SQfp16": the same codes from the
same data, reconstruction error within 2% of faiss's, recall within 1 point,
equal bytes per vector, the same exception types; every QuantizerType and
RangeStat byte-equal to faiss's ranges and codes. fp16 codes equal faiss's except at exact ties between two
halves (nearly rounds to nearest even, faiss's portable encoder away from
zero)."""
import numpy as np
import pytest

import nearly
from _hnswutil import real_data
from _testutil import METRIC_IP, METRIC_L2, brute_force, randn

faiss = pytest.importorskip("faiss")

METRICS = [METRIC_L2, METRIC_IP]
METRIC_IDS = ["L2", "IP"]
NITER = 6  # k-means iterations of the coarse quantizer, both libraries
FLAT_FS = ["SQ8", "SQfp16", "SQ4", "SQ6", "SQbf16"]
IVF_FS = ["IVF1024,SQ8", "IVF1024,SQfp16", "IVF1024,SQ4", "IVF1024,SQ6"]
QT_NAMES = ["QT_8bit", "QT_4bit", "QT_8bit_uniform", "QT_4bit_uniform", "QT_fp16", "QT_8bit_direct", "QT_6bit",
            "QT_bf16", "QT_8bit_direct_signed"]
MOD = {"faiss": faiss, "nearly": nearly}


def recall(I, gt):
    k = gt.shape[1]
    return np.mean([len(set(a[:k]) & set(b)) / k for a, b in zip(I, gt)])


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
        for fs in FLAT_FS + IVF_FS:
            for lib, mod in MOD.items():
                index = mod.index_factory(384, fs, metric)
                if "IVF" in fs:
                    ivf = mod.extract_index_ivf(index) if lib == "nearly" else faiss.extract_index_ivf(index)
                    ivf.cp.niter = NITER
                index.train(x)
                index.add(x)
                out[lib, fs, metric] = index
    return out


@pytest.mark.parametrize("qt", ["QT_8bit", "QT_fp16", "QT_4bit", "QT_6bit", "QT_8bit_uniform", "QT_4bit_uniform",
                                "QT_bf16"])
def test_same_codes_and_reconstruction_error(real, qt):
    x, _ = real
    codes, err = {}, {}
    for lib, mod in MOD.items():
        sq = mod.ScalarQuantizer(384, getattr(mod.ScalarQuantizer, qt))
        sq.train(x[:10000])
        c = sq.compute_codes(x)
        assert c.dtype == np.uint8 and c.shape == (len(x), sq.code_size)
        codes[lib] = c
        err[lib] = float(((sq.decode(c) - x) ** 2).sum(1).mean())
    same = codes["faiss"] == codes["nearly"]
    if qt == "QT_bf16":
        # faiss rounds an exact tie (low 16 bits 0x8000, common in these
        # float16-stored embeddings) up in its scalar code and to even in its
        # AVX512-BF16 code, so by CPU; nearly always up. Only ties may differ.
        ties = (np.ascontiguousarray(x).view(np.uint32) & 0xFFFF) == 0x8000
        differs = (codes["faiss"].view(np.uint16) != codes["nearly"].view(np.uint16))
        assert not (differs & ~ties).any()
        return
    assert same.mean() > 0.9999
    assert err["nearly"] <= 1.02 * err["faiss"], err


@pytest.mark.parametrize("qt", ["QT_8bit", "QT_fp16"])
def test_same_codes_on_wide_range_data(qt):
    """The real embeddings are stored as float16 (fp16 codes are lossless on
    them): also compare on Gaussian data over a wide range, where rounding
    to half matters."""
    rng = np.random.default_rng(0)
    x = randn(rng, 5000, 64) * np.logspace(-6, 4, 64, dtype=np.float32)
    codes, err = {}, {}
    for lib, mod in MOD.items():
        sq = mod.ScalarQuantizer(64, getattr(mod.ScalarQuantizer, qt))
        sq.train(x)
        codes[lib] = sq.compute_codes(x)
        err[lib] = float(((sq.decode(codes[lib]) - x) ** 2).sum(1).mean())
    if qt == "QT_8bit":
        np.testing.assert_array_equal(codes["faiss"], codes["nearly"])
    else:
        # nearly rounds to nearest even (IEEE, numpy, F16C); faiss's portable
        # encoder (this wheel) rounds exact ties away from zero: the codes
        # differ only at exact ties, by one unit in the last place.
        cf, cn = codes["faiss"].view(np.uint16), codes["nearly"].view(np.uint16)
        np.testing.assert_array_equal(cn, x.astype(np.float16).view(np.uint16))
        diff = np.nonzero(cf != cn)
        assert len(diff[0]) < 1e-4 * cf.size
        hf = cf[diff].view(np.float16).astype(np.float64)
        hn = cn[diff].view(np.float16).astype(np.float64)
        np.testing.assert_array_equal((hf + hn) / 2, x[diff].astype(np.float64))
    assert err["faiss"] > 0 and err["nearly"] <= 1.02 * err["faiss"], err


@pytest.mark.parametrize("fs", FLAT_FS + IVF_FS)
def test_index_reconstruction_error_within_2_percent(built, real, fs):
    x, _ = real
    err = {}
    ids = np.arange(0, len(x), 7)
    for lib in MOD:
        index = built[lib, fs, METRIC_L2]
        if "IVF" in fs:
            index.make_direct_map()
        rec = np.stack([index.reconstruct(int(i)) for i in ids])
        err[lib] = float(((rec - x[ids]) ** 2).sum(1).mean())
    assert err["nearly"] <= 1.02 * err["faiss"], err


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
@pytest.mark.parametrize("fs", FLAT_FS)
def test_index_sq_recall_within_one_point(built, real, fs, metric):
    _, xq = real
    rec = {}
    for lib in MOD:
        D, I = built[lib, fs, metric].search(xq, 10)
        assert D.dtype == np.float32 and I.dtype == np.int64 and I.shape == (len(xq), 10)
        rec[lib] = recall(I, built["gt", metric])
    assert rec["nearly"] >= rec["faiss"] - 0.01, rec
    # Same codes, same decoded vectors: the same results.
    If = built["faiss", fs, metric].search(xq, 10)[1]
    In = built["nearly", fs, metric].search(xq, 10)[1]
    assert np.mean(If == In) > 0.98


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
@pytest.mark.parametrize("fs", IVF_FS)
@pytest.mark.parametrize("nprobe", [1, 8, 32])
def test_ivf_sq_recall_within_one_point(built, real, fs, metric, nprobe):
    _, xq = real
    rec = {}
    for lib in MOD:
        index = built[lib, fs, metric]
        index.nprobe = nprobe
        D, I = index.search(xq, 10)
        assert D.dtype == np.float32 and I.dtype == np.int64
        rec[lib] = recall(I, built["gt", metric])
    assert rec["nearly"] >= rec["faiss"] - 0.01, rec


@pytest.mark.parametrize("fs", FLAT_FS + IVF_FS)
def test_same_bytes_per_vector_and_attributes(fs):
    f, n = faiss.index_factory(384, fs), nearly.index_factory(384, fs)
    assert type(f).__name__ == type(n).__name__
    if "IVF" in fs:
        f = faiss.downcast_index(faiss.extract_index_ivf(f))
        n = nearly.extract_index_ivf(n)
        assert f.by_residual == n.by_residual and f.nlist == n.nlist
    assert f.code_size == n.code_size and f.sq.code_size == n.sq.code_size
    assert f.is_trained == n.is_trained


@pytest.mark.parametrize("fs", FLAT_FS + IVF_FS)
def test_serialized_bytes_per_vector(built, fs):
    """Bytes a stored vector takes in the serialized index (code, plus its id
    for IVF): equal to faiss's."""
    per = {}
    for lib, mod in MOD.items():
        copy = mod.deserialize_index(mod.serialize_index(built[lib, fs, METRIC_L2]))
        if "IVF" in fs:
            copy.make_direct_map(False)  # faiss stores its direct map as ids: not the vectors' bytes
        n, full = copy.ntotal, len(mod.serialize_index(copy))
        copy.reset()
        per[lib] = round((full - len(mod.serialize_index(copy))) / n)
    assert per["faiss"] == per["nearly"] == nearly.index_factory(384, fs).code_size + (8 if "IVF" in fs else 0), per


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


def test_untrained_use_raises_like_faiss():
    x = randn(np.random.default_rng(0), 100, 16)
    for ctor in (lambda m: m.IndexScalarQuantizer(16, m.ScalarQuantizer.QT_8bit),
                 lambda m: m.IndexIVFScalarQuantizer(m.IndexFlatL2(16), 16, 4, m.ScalarQuantizer.QT_8bit)):
        assert ctor(faiss).is_trained == ctor(nearly).is_trained is False
        errs = raises_same(lambda: ctor(faiss).add(x), lambda: ctor(nearly).add(x))
        assert "is_trained" in str(errs[1]) and "is_trained" in str(errs[0])
        raises_same(lambda: ctor(faiss).search(x, 1), lambda: ctor(nearly).search(x, 1))
    assert faiss.IndexScalarQuantizer(16, faiss.ScalarQuantizer.QT_fp16).is_trained
    assert nearly.IndexScalarQuantizer(16, nearly.ScalarQuantizer.QT_fp16).is_trained


@pytest.fixture
def faiss_one_thread():
    """faiss trains the per-dimension ranges of RS_meanstd / RS_quantiles /
    RS_optim in an OpenMP loop that shares one scratch vector between threads
    (a data race): compare against its single-threaded answer."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


@pytest.mark.parametrize("qt", [q for q in QT_NAMES if q != "QT_fp16"])  # fp16 ties: see above
@pytest.mark.parametrize("rs,arg", [(0, 0.0), (0, 0.2), (1, 1.5), (1, 3.0), (2, 0.01), (2, 0.2)],
                         ids=["minmax", "minmax0.2", "meanstd1.5", "meanstd3", "quantiles0.01", "quantiles0.2"])
@pytest.mark.parametrize("d", [5, 16, 33])
def test_every_type_and_range_statistic_byte_equal(faiss_one_thread, qt, rs, arg, d):
    rng = np.random.default_rng(d)
    xt = randn(rng, 600, d) * rng.uniform(0.1, 5, d).astype(np.float32)
    # faiss's transpose for the per-dimension statistics skips row 0 (it
    # trains on a zero there); a zero row makes both libraries see the same data.
    xt[0] = 0
    x = randn(rng, 300, d) * np.float32(4)
    if "direct" in qt:
        lo, hi = (-128, 127) if "signed" in qt else (0, 255)
        x = np.clip(np.round(x * 20 + (0 if "signed" in qt else 128)), lo, hi).astype(np.float32)
    out = {}
    for lib, mod in MOD.items():
        sq = mod.ScalarQuantizer(d, getattr(mod.ScalarQuantizer, qt))
        sq.rangestat, sq.rangestat_arg = rs, arg
        sq.train(xt)
        trained = faiss.vector_to_array(sq.trained) if lib == "faiss" else sq.trained
        codes = sq.compute_codes(x)
        out[lib] = trained, codes, sq.decode(codes), sq.code_size
    np.testing.assert_array_equal(out["nearly"][0], out["faiss"][0])
    np.testing.assert_array_equal(out["nearly"][1], out["faiss"][1])
    assert out["nearly"][3] == out["faiss"][3]
    # faiss decodes some types with SIMD code that rounds differently (at d % 8 == 0).
    np.testing.assert_allclose(out["nearly"][2], out["faiss"][2], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("qt", ["QT_4bit", "QT_6bit", "QT_4bit_uniform"])
def test_rs_optim_close_to_faiss_where_faiss_is_finite(faiss_one_thread, qt):
    """RS_optim sums in double where faiss sums in float: the same fit on
    well-conditioned data, up to faiss's rounding."""
    rng = np.random.default_rng(5)
    xt = randn(rng, 1000, 8) * rng.uniform(0.5, 2, 8).astype(np.float32)
    xt[0] = 0
    t = {}
    for lib, mod in MOD.items():
        sq = mod.ScalarQuantizer(8, getattr(mod.ScalarQuantizer, qt))
        sq.rangestat = mod.ScalarQuantizer.RS_optim
        sq.train(xt)
        t[lib] = faiss.vector_to_array(sq.trained) if lib == "faiss" else sq.trained
    assert np.isfinite(t["faiss"]).all()
    np.testing.assert_allclose(t["nearly"], t["faiss"], rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("token", ["SQ8_direct", "SQ8_direct_signed"])
@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_direct_types_search_like_faiss(real, token, metric):
    """uint8 / int8 data (the embeddings scaled to integers) stored as is: the
    results of an exact search, and faiss's."""
    x, xq = real
    shift = 128 if token == "SQ8_direct" else 0
    xi = np.clip(np.round(x[:5000] * 400) + shift, shift - 128, shift + 127).astype(np.float32)
    qi = np.clip(np.round(xq[:50] * 400) + shift, shift - 128, shift + 127).astype(np.float32)
    res = {}
    for lib, mod in MOD.items():
        index = mod.index_factory(384, token, metric)
        assert index.is_trained
        index.add(xi)
        res[lib] = index.search(qi, 10)
        np.testing.assert_array_equal(index.reconstruct(7), xi[7])
    Dr, Ir = brute_force(qi, xi, 10, metric)
    np.testing.assert_allclose(res["nearly"][0], Dr, rtol=1e-5)
    np.testing.assert_allclose(res["nearly"][0], res["faiss"][0], rtol=1e-5)
    assert np.mean(res["nearly"][1] == res["faiss"][1]) > 0.98


def test_every_faiss_qtype_named():
    """Every QuantizerType faiss has is named with faiss's value (code maps
    them to factory strings); the ones nearly lacks are refused clearly."""
    names = [n for n in dir(faiss.ScalarQuantizer) if n.startswith("QT_")]
    assert len(names) >= 28
    for n in names:
        assert getattr(nearly.ScalarQuantizer, n) == getattr(faiss.ScalarQuantizer, n), n
    with pytest.raises(RuntimeError, match="not implemented in nearly"):
        nearly.ScalarQuantizer(16, 99)
