"""ScalarQuantizer (faiss's QT_8bit / QT_fp16 codec), IndexScalarQuantizer and
IndexIVFScalarQuantizer against numpy references: codes and decoded vectors
bit for bit (8-bit: per-dimension min-max ranges, code = int(255 * t),
decode = vmin + (c + 0.5) / 255 * vdiff; fp16: IEEE halves), searches equal
to exact search over the decoded vectors, persistence, corrupt input,
untrained use and NaN."""
import pickle

import numpy as np
import pytest

import nearly
from _testutil import METRIC_IP, METRIC_L2, brute_force, randn, tolerance

QT8, QTF16 = nearly.ScalarQuantizer.QT_8bit, nearly.ScalarQuantizer.QT_fp16
QTYPES = [QT8, QTF16]
QT_IDS = ["QT_8bit", "QT_fp16"]
METRICS = [METRIC_L2, METRIC_IP]
METRIC_IDS = ["L2", "IP"]


# ---------------------------------------------------------------- numpy reference codec


def ref_train(x):
    x = np.asarray(x, np.float32)
    vmin = x.min(0)
    vdiff = (x.max(0) - vmin).astype(np.float32)
    return vmin, vdiff


def ref_encode(x, qtype, vmin=None, vdiff=None):
    x = np.asarray(x, np.float32)
    if qtype == QTF16:
        with np.errstate(over="ignore"):  # overflow to inf, as intended
            h = x.astype(np.float16)
        return np.ascontiguousarray(h).view(np.uint8).reshape(len(x), -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (x - vmin) / vdiff
    t = np.where(vdiff != 0, np.clip(t, np.float32(0), np.float32(1)), np.float32(0)).astype(np.float32)
    return (np.float32(255) * t).astype(np.int32).astype(np.uint8)


def ref_decode(codes, qtype, vmin=None, vdiff=None):
    if qtype == QTF16:
        return np.ascontiguousarray(codes).view(np.float16).astype(np.float32)
    c = codes.astype(np.float32)
    return vmin + ((c + np.float32(0.5)) / np.float32(255)) * vdiff


def check_search(D, I, xq, xb, k, metric):
    """D, I equal exact search over xb (ties may swap ids)."""
    Dr, Ir = brute_force(xq, xb, k, metric)
    tol = tolerance(xq, xb, metric, rel=1e-4)
    np.testing.assert_allclose(D, Dr, atol=tol, rtol=0)
    full = brute_force(xq, xb, len(xb), metric)
    for q in range(len(xq)):
        dist = dict(zip(full[1][q], full[0][q]))
        for j in range(k):
            if I[q, j] >= 0:
                assert abs(dist[I[q, j]] - D[q, j]) <= tol
    assert (np.mean(I == Ir)) > 0.95


# ---------------------------------------------------------------- codec


def test_constants_and_code_size():
    assert QT8 == 0 and QTF16 == 4
    assert nearly.ScalarQuantizer(37, QT8).code_size == 37
    assert nearly.ScalarQuantizer(37, QTF16).code_size == 74
    assert nearly.IndexScalarQuantizer(37, QT8).code_size == 37
    assert nearly.IndexScalarQuantizer(37, QTF16).code_size == 74


@pytest.mark.parametrize("d", [1, 7, 64])
def test_sq8_codec_matches_numpy(d):
    rng = np.random.default_rng(d)
    xt = randn(rng, 500, d) * rng.uniform(0.1, 10, d).astype(np.float32)
    xt[:, 0] = 3.0  # a constant dimension: vdiff 0, code 0
    sq = nearly.ScalarQuantizer(d, QT8)
    sq.train(xt)
    vmin, vdiff = ref_train(xt)
    np.testing.assert_array_equal(sq.trained, np.concatenate([vmin, vdiff]))
    x = randn(rng, 300, d) * 3  # some values outside the trained range: clamped
    codes = sq.compute_codes(x)
    assert codes.dtype == np.uint8 and codes.shape == (300, d)
    np.testing.assert_array_equal(codes, ref_encode(x, QT8, vmin, vdiff))
    np.testing.assert_allclose(sq.decode(codes), ref_decode(codes, QT8, vmin, vdiff), rtol=1e-6, atol=1e-6)
    # The training points decode within half a step of themselves.
    rec = sq.decode(sq.compute_codes(xt))
    assert (np.abs(rec - xt) <= vdiff / 255 * 1.0001 + 1e-6).all()


def test_sq8_extremes():
    sq = nearly.ScalarQuantizer(2, QT8)
    sq.train(np.array([[0, -1], [1, 1]], np.float32))
    codes = sq.compute_codes(np.array([[0, -1], [1, 1], [-5, 5], [0.5, 0]], np.float32))
    np.testing.assert_array_equal(codes, [[0, 0], [255, 255], [0, 255], [127, 127]])


@pytest.mark.parametrize("d", [1, 5, 48])
def test_fp16_codec_matches_numpy(d):
    rng = np.random.default_rng(d)
    x = randn(rng, 200, d) * np.float32(100)
    x[0, 0] = 1e-7  # subnormal half
    x[1, 0] = 70000  # overflows to inf, like numpy
    x[2, 0] = -0.0
    sq = nearly.ScalarQuantizer(d, QTF16)
    assert sq.trained.size == 0
    codes = sq.compute_codes(x)
    np.testing.assert_array_equal(codes, ref_encode(x, QTF16))
    np.testing.assert_array_equal(sq.decode(codes), ref_decode(codes, QTF16))


def test_fp16_every_half_round_trips():
    halves = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    finite = np.isfinite(halves)
    x = halves[finite].astype(np.float32).reshape(-1, 1)
    sq = nearly.ScalarQuantizer(1, QTF16)
    codes = sq.compute_codes(x)
    np.testing.assert_array_equal(codes.view(np.uint16).ravel(), halves[finite].view(np.uint16))
    np.testing.assert_array_equal(sq.decode(codes), x)


def test_bad_qtype_and_shapes():
    with pytest.raises(RuntimeError):
        nearly.ScalarQuantizer(8, 1)
    with pytest.raises(RuntimeError):
        nearly.IndexScalarQuantizer(8, 3)
    with pytest.raises(RuntimeError):
        nearly.IndexIVFScalarQuantizer(nearly.IndexFlatL2(8), 8, 4, 7)
    sq = nearly.ScalarQuantizer(8, QT8)
    with pytest.raises(Exception):
        sq.compute_codes(np.zeros((3, 8), np.float32))  # untrained
    sq.train(np.zeros((3, 8), np.float32))
    with pytest.raises(Exception):
        sq.compute_codes(np.zeros((3, 7), np.float32))
    with pytest.raises(Exception):
        sq.decode(np.zeros((3, 9), np.uint8))


# ---------------------------------------------------------------- IndexScalarQuantizer


@pytest.mark.parametrize("qtype", QTYPES, ids=QT_IDS)
@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_index_sq_search_is_exact_over_decoded(qtype, metric):
    rng = np.random.default_rng(1)
    d = 24
    xb, xq = randn(rng, 3000, d), randn(rng, 40, d)
    index = nearly.IndexScalarQuantizer(d, qtype, metric)
    assert index.is_trained == (qtype == QTF16)
    index.train(xb[:1000])
    assert index.is_trained
    index.add(xb)
    assert index.ntotal == 3000
    codes = index.codes.reshape(3000, -1)
    if qtype == QT8:
        vmin, vdiff = ref_train(xb[:1000])
        np.testing.assert_array_equal(codes, ref_encode(xb, QT8, vmin, vdiff))
        dec = ref_decode(codes, QT8, vmin, vdiff)
    else:
        np.testing.assert_array_equal(codes, ref_encode(xb, QTF16))
        dec = ref_decode(codes, QTF16)
    rec = np.stack([index.reconstruct(i) for i in range(0, 3000, 97)])
    np.testing.assert_allclose(rec, dec[::97], rtol=1e-6, atol=1e-6)
    for k in (1, 10, 3100):
        D, I = index.search(xq, k)
        assert D.dtype == np.float32 and I.dtype == np.int64 and D.shape == (40, k)
        if k > 3000:
            assert (I[:, 3000:] == -1).all()
            continue
        check_search(D, I, xq, dec, k, metric)


def test_index_sq_selector_remove_reset():
    rng = np.random.default_rng(2)
    xb, xq = randn(rng, 500, 16), randn(rng, 5, 16)
    index = nearly.index_factory(16, "SQ8")
    index.train(xb)
    index.add(xb)
    params = nearly.SearchParameters(sel=nearly.IDSelectorRange(100, 200))
    D, I = index.search(xq, 5, params=params)
    assert ((I >= 100) & (I < 200)).all()
    before = index.reconstruct(300)
    assert index.remove_ids(nearly.IDSelectorRange(0, 100)) == 100
    assert index.ntotal == 400
    np.testing.assert_array_equal(index.reconstruct(200), before)
    index.reset()
    assert index.ntotal == 0 and index.is_trained


def test_untrained_use_raises_like_faiss():
    x = np.zeros((10, 8), np.float32)
    index = nearly.IndexScalarQuantizer(8, QT8)
    assert not index.is_trained
    with pytest.raises(RuntimeError, match="'is_trained' failed"):
        index.add(x)
    with pytest.raises(RuntimeError, match="'is_trained' failed"):
        index.search(x, 1)
    ivf = nearly.IndexIVFScalarQuantizer(nearly.IndexFlatL2(8), 8, 2, QT8)
    assert not ivf.is_trained
    with pytest.raises(RuntimeError, match="is_trained"):
        ivf.add(x)
    with pytest.raises(RuntimeError, match="is_trained"):
        ivf.search(x, 1)


@pytest.mark.parametrize("fs", ["SQ8", "IVF4,SQ8", "SQfp16", "IVF4,SQfp16"])
def test_nan_raises(fs):
    rng = np.random.default_rng(3)
    x = randn(rng, 200, 8)
    bad = x.copy()
    bad[17, 3] = np.nan
    index = nearly.index_factory(8, fs)
    if fs != "SQfp16":
        with pytest.raises(Exception, match="(?i)nan|finite"):
            index.train(bad)
    index.train(x)
    with pytest.raises(Exception, match="(?i)nan|finite"):
        index.add(bad)
    with pytest.raises(Exception, match="(?i)nan|finite"):
        index.search(bad, 1)
    sq = nearly.ScalarQuantizer(8, QT8)
    with pytest.raises(Exception, match="(?i)nan|finite"):
        sq.train(bad)


# ---------------------------------------------------------------- IndexIVFScalarQuantizer


@pytest.mark.parametrize("qtype", QTYPES, ids=QT_IDS)
@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
@pytest.mark.parametrize("by_residual", [True, False])
def test_ivf_sq_full_probe_is_exact_over_decoded(qtype, metric, by_residual):
    rng = np.random.default_rng(4)
    d, nlist = 16, 8
    xb, xq = randn(rng, 2000, d), randn(rng, 30, d)
    index = nearly.IndexIVFScalarQuantizer(nearly.IndexFlat(d, metric), d, nlist, qtype, metric, by_residual)
    assert index.by_residual == by_residual and index.code_size == (d if qtype == QT8 else 2 * d)
    index.train(xb)
    assert index.is_trained
    index.add(xb)
    index.make_direct_map()
    dec = np.stack([index.reconstruct(i) for i in range(2000)])
    if qtype == QT8:
        # The codec was trained on the residuals (or the vectors) of all training points.
        cent = index.quantizer.reconstruct_n(0, nlist)
        _, assign = index.quantizer.search(xb, 1)
        xt = xb - cent[assign[:, 0]] if by_residual else xb
        vmin, vdiff = ref_train(xt)
        np.testing.assert_array_equal(index.sq.trained, np.concatenate([vmin, vdiff]))
        codes = np.concatenate([index.invlists.get_codes(l).reshape(-1, d) for l in range(nlist)])
        ids = np.concatenate([index.invlists.get_ids(l) for l in range(nlist)])
        np.testing.assert_array_equal(codes, ref_encode(xt[ids], QT8, vmin, vdiff))
    index.nprobe = nlist
    D, I = index.search(xq, 10)
    check_search(D, I, xq, dec, 10, metric)


@pytest.mark.parametrize("fs", ["IVF16,SQ8", "IVF16,SQfp16"])
def test_ivf_sq_nprobe_and_params(fs):
    rng = np.random.default_rng(5)
    xb, xq = randn(rng, 3000, 16), randn(rng, 20, 16)
    index = nearly.index_factory(16, fs)
    assert type(index) is nearly.IndexIVFScalarQuantizer and index.nlist == 16 and index.by_residual
    index.train(xb)
    index.add(xb)
    D1, _ = index.search(xq, 10)
    index.nprobe = 100  # clipped to nlist
    D16, I16 = index.search(xq, 10)
    assert (D16 <= D1 + 1e-5).all()
    index.nprobe = 1
    D, I = index.search(xq, 10, params=nearly.SearchParametersIVF(nprobe=16))
    np.testing.assert_array_equal(I, I16)


# ---------------------------------------------------------------- factory, persistence


@pytest.mark.parametrize("fs,cls,cs", [("SQ8", "IndexScalarQuantizer", 32), ("SQfp16", "IndexScalarQuantizer", 64),
                                       ("IVF1024,SQ8", "IndexIVFScalarQuantizer", 32),
                                       ("IVF1024,SQfp16", "IndexIVFScalarQuantizer", 64)])
def test_factory(fs, cls, cs):
    index = nearly.index_factory(32, fs, nearly.METRIC_INNER_PRODUCT)
    assert type(index).__name__ == cls and index.code_size == cs
    assert index.metric_type == nearly.METRIC_INNER_PRODUCT


def _built(fs, metric=METRIC_L2, n=300, d=8):
    rng = np.random.default_rng(6)
    x = randn(rng, n, d)
    index = nearly.index_factory(d, fs, metric)
    index.train(x)
    index.add(x)
    return index


FS = ["SQ8", "SQfp16", "IVF4,SQ8", "IVF4,SQfp16"]


def _same(a, b):
    assert type(a) is type(b)
    for attr in ("d", "ntotal", "metric_type", "is_trained", "code_size"):
        assert getattr(a, attr) == getattr(b, attr), attr
    xq = randn(np.random.default_rng(9), 7, a.d)
    for k in (1, 5, a.ntotal + 2):
        Da, Ia = a.search(xq, k)
        Db, Ib = b.search(xq, k)
        np.testing.assert_array_equal(Ia, Ib)
        np.testing.assert_array_equal(Da, Db)
    np.testing.assert_array_equal(a.sq.trained, b.sq.trained)


@pytest.mark.parametrize("fs", FS)
@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_round_trips(fs, metric, tmp_path):
    index = _built(fs, metric)
    if "IVF" in fs:
        index.nprobe = 3
        index.make_direct_map()
    path = str(tmp_path / "sq.index")
    nearly.write_index(index, path)
    for copy in (nearly.read_index(path), nearly.deserialize_index(nearly.serialize_index(index)),
                 pickle.loads(pickle.dumps(index))):
        _same(index, copy)
        if "IVF" in fs:
            assert copy.nprobe == 3 and copy.by_residual == index.by_residual and copy.has_direct_map()
            np.testing.assert_array_equal(copy.reconstruct(5), index.reconstruct(5))
        else:
            np.testing.assert_array_equal(copy.reconstruct(5), index.reconstruct(5))


@pytest.mark.parametrize("fs", ["SQ8", "IVF4,SQ8"])
def test_untrained_round_trip(fs):
    index = nearly.index_factory(8, fs)
    copy = nearly.deserialize_index(nearly.serialize_index(index))
    assert type(copy) is type(index) and not copy.is_trained
    x = randn(np.random.default_rng(0), 100, 8)
    copy.train(x)
    copy.add(x)
    assert copy.ntotal == 100


def _ser(index):
    return bytes(nearly.serialize_index(index))


def _deser(b):
    return nearly.deserialize_index(np.frombuffer(b, dtype=np.uint8).copy())


@pytest.mark.parametrize("fs", FS)
def test_truncated_and_flipped_rejected(fs):
    good = _ser(_built(fs, n=40, d=4))
    for n in range(len(good)):
        with pytest.raises(nearly.IndexFileError):
            _deser(good[:n])
    for pos in range(len(good)):
        bad = bytearray(good)
        bad[pos] ^= 0x80
        with pytest.raises(nearly.IndexFileError):
            _deser(bytes(bad))


@pytest.mark.parametrize("fs", FS)
def test_forged_payloads_rejected_or_consistent(fs):
    """Checksum-valid forgeries: rejected with IndexFileError or a usable index."""
    import test_io as tio

    good = _ser(_built(fs, n=30, d=4))
    payload = good[tio.HEADER:-8]
    variant = next((v for v in ("header+payload", "payload") if tio._reseal(payload, v) == good), None)
    if variant is None:
        pytest.skip("serialized format differs from the one test_io knows")
    for pos in range(len(payload)):
        for val in (0x00, 0xFF, 0x7F):
            bad = bytearray(payload)
            if bad[pos] == val:
                continue
            bad[pos] = val
            try:
                index = _deser(tio._reseal(bytes(bad), variant))
            except nearly.IndexFileError:
                continue
            assert index.d > 0 and index.ntotal >= 0
            D, I = index.search(np.ones((2, index.d), np.float32), 3)
            assert D.shape == I.shape == (2, 3)
