"""ScalarQuantizer (faiss's codec: every classic QuantizerType and RangeStat,
and the TurboQuant MSE types: a shared codebook, bits-wide cells packed low
bits first),
IndexScalarQuantizer and IndexIVFScalarQuantizer against numpy references:
ranges, codes and decoded vectors bit for bit (k-bit: code = int(t * (2^k - 1)),
decode = vmin + (c + 0.5) / (2^k - 1) * vdiff, 4 bits two per byte, 6 bits four
per three bytes; fp16 / bf16 halves; direct codes), the decoder the same at
every SIMD level, searches equal to exact search over the decoded vectors,
persistence, corrupt input, untrained use and NaN."""
import math
import pickle

import numpy as np
import pytest

import nearly
from _testutil import METRIC_IP, METRIC_L2, brute_force, distances64, randn, tolerance

SQ = nearly.ScalarQuantizer
QT8, QTF16 = SQ.QT_8bit, SQ.QT_fp16
QT_NAMES = ["QT_8bit", "QT_4bit", "QT_8bit_uniform", "QT_4bit_uniform", "QT_fp16", "QT_8bit_direct", "QT_6bit",
            "QT_bf16", "QT_8bit_direct_signed", "QT_1bit_tqmse", "QT_2bit_tqmse", "QT_3bit_tqmse", "QT_4bit_tqmse",
            "QT_8bit_tqmse"]
QTYPES = [getattr(SQ, n) for n in QT_NAMES]
QT_IDS = QT_NAMES
TRAINED = {SQ.QT_8bit, SQ.QT_4bit, SQ.QT_6bit, SQ.QT_8bit_uniform, SQ.QT_4bit_uniform}
UNIFORM = {SQ.QT_8bit_uniform, SQ.QT_4bit_uniform}
DIRECT = {SQ.QT_8bit_direct, SQ.QT_8bit_direct_signed}
TQ_BITS = {SQ.QT_1bit_tqmse: 1, SQ.QT_2bit_tqmse: 2, SQ.QT_3bit_tqmse: 3, SQ.QT_4bit_tqmse: 4, SQ.QT_8bit_tqmse: 8}
NEEDS_TRAINING = TRAINED | set(TQ_BITS)
LEVELS = {SQ.QT_8bit: 255, SQ.QT_8bit_uniform: 255, SQ.QT_4bit: 15, SQ.QT_4bit_uniform: 15, SQ.QT_6bit: 63}
METRICS = [METRIC_L2, METRIC_IP]
METRIC_IDS = ["L2", "IP"]


def code_size(qtype, d):
    if qtype in TQ_BITS:
        return (d * TQ_BITS[qtype] + 7) // 8
    if qtype in (SQ.QT_4bit, SQ.QT_4bit_uniform):
        return (d + 1) // 2
    if qtype == SQ.QT_6bit:
        return (d * 6 + 7) // 8
    if qtype in (QTF16, SQ.QT_bf16):
        return 2 * d
    return d


def data_for(qtype, rng, n, d, scale=1.0):
    """Vectors the type is meant for: integers in range for the direct types."""
    if qtype == SQ.QT_8bit_direct:
        return rng.integers(0, 256, (n, d)).astype(np.float32)
    if qtype == SQ.QT_8bit_direct_signed:
        return rng.integers(-128, 128, (n, d)).astype(np.float32)
    if qtype in TQ_BITS:  # unit vectors, times scale
        x = randn(rng, n, d)
        return (x / np.linalg.norm(x, axis=1, keepdims=True) * np.float32(scale)).astype(np.float32)
    return randn(rng, n, d) * np.float32(scale)


def tq_codebook(qtype, d):
    """The TurboQuant centroids and midpoints of (qtype, d): the normal law's
    Lloyd-Max levels over sqrt(d) (the levels are checked as the means of
    their cells in test_turboquant_codebook_is_lloyd_max)."""
    sq = SQ(d, qtype)
    sq.train(np.zeros((0, d), np.float32))
    k = 1 << TQ_BITS[qtype]
    return sq.trained[:k], sq.trained[k:]


# ---------------------------------------------------------------- numpy reference codec


def ref_range(v, rs, arg):
    """faiss's train_Uniform for min-max and quantiles (exact), mean-std (float64)."""
    v = np.asarray(v, np.float32).ravel()
    if rs == SQ.RS_minmax:
        lo, hi = v.min(), v.max()
        e = np.float32((hi - lo) * np.float32(arg))
        lo, hi = np.float32(lo - e), np.float32(hi + e)
    elif rs == SQ.RS_quantiles:
        n = len(v)
        o = int(np.float32(arg) * np.float32(n))
        o = max(o, 0)
        if o > n - o:
            o = n // 2
        srt = np.sort(v)
        lo, hi = srt[o], srt[n - 1 - o]
    else:
        mean = v.astype(np.float64).mean()
        sd = np.sqrt(max((v.astype(np.float64) ** 2).mean() - mean * mean, 0.0)) or 1.0
        lo, hi = np.float32(mean - sd * arg), np.float32(mean + sd * arg)
    return np.float32(lo), np.float32(np.float32(hi) - np.float32(lo))


def ref_train(x, qtype=QT8, rs=SQ.RS_minmax, arg=0.0):
    x = np.asarray(x, np.float32)
    if qtype in UNIFORM:
        return ref_range(x, rs, arg)
    cols = [ref_range(x[:, j], rs, arg) for j in range(x.shape[1])]
    return np.array([c[0] for c in cols], np.float32), np.array([c[1] for c in cols], np.float32)


def ref_encode(x, qtype, vmin=None, vdiff=None):
    x = np.asarray(x, np.float32)
    n, d = x.shape
    if qtype in TQ_BITS:
        bits = TQ_BITS[qtype]
        mid = tq_codebook(qtype, d)[1]
        # Midpoints at or below x (a value on a midpoint goes up), as faiss-cpu.
        cell = np.searchsorted(mid, x, side="right")
        bit = np.zeros((n, code_size(qtype, d) * 8), np.uint8)
        for b in range(bits):
            bit[:, np.arange(d) * bits + b] = (cell >> b) & 1
        return np.packbits(bit, axis=1, bitorder="little")
    if qtype == QTF16:
        with np.errstate(over="ignore"):  # overflow to inf, as intended
            h = x.astype(np.float16)
        return np.ascontiguousarray(h).view(np.uint8).reshape(n, -1)
    if qtype == SQ.QT_bf16:
        u = x.view(np.uint32).astype(np.uint64)
        return ((u + 0x8000) >> 16).astype(np.uint16).view(np.uint8).reshape(n, -1)
    if qtype in DIRECT:
        shift = np.float32(0 if qtype == SQ.QT_8bit_direct else 128)
        return np.clip(np.trunc(x + shift), 0, 255).astype(np.uint8)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (x - vmin) / vdiff
    t = np.where(vdiff != 0, np.clip(t, np.float32(0), np.float32(1)), np.float32(0)).astype(np.float32)
    levels = LEVELS[qtype]
    if levels == 255:
        return (np.float32(255) * t).astype(np.int32).astype(np.uint8)  # a float product, as faiss
    c = (t.astype(np.float64) * levels).astype(np.int64)  # a double product, as faiss
    if levels == 15:
        c = np.concatenate([c, np.zeros((n, d % 2), np.int64)], axis=1)
        return (c[:, 0::2] | (c[:, 1::2] << 4)).astype(np.uint8)
    c = np.concatenate([c, np.zeros((n, -d % 4), np.int64)], axis=1)
    w = c[:, 0::4] | (c[:, 1::4] << 6) | (c[:, 2::4] << 12) | (c[:, 3::4] << 18)  # 24 bits per 4 dimensions
    b = np.stack([w & 255, (w >> 8) & 255, (w >> 16) & 255], axis=2).reshape(n, -1).astype(np.uint8)
    return b[:, :code_size(qtype, d)]


def ref_decode(codes, qtype, vmin=None, vdiff=None, d=None):
    n = len(codes)
    if qtype in TQ_BITS:
        bits = TQ_BITS[qtype]
        bit = np.unpackbits(np.asarray(codes, np.uint8), axis=1, bitorder="little").astype(np.int64)
        cell = sum(bit[:, np.arange(d) * bits + b] << b for b in range(bits))
        return tq_codebook(qtype, d)[0][cell]
    if qtype == QTF16:
        return np.ascontiguousarray(codes).view(np.float16).astype(np.float32)
    if qtype == SQ.QT_bf16:
        return (np.ascontiguousarray(codes).view(np.uint16).astype(np.uint32) << 16).view(np.float32)
    if qtype == SQ.QT_8bit_direct:
        return codes.astype(np.float32)
    if qtype == SQ.QT_8bit_direct_signed:
        return codes.astype(np.float32) - np.float32(128)
    d = d if d is not None else len(np.atleast_1d(vmin))
    levels = LEVELS[qtype]
    c = codes.astype(np.int64)
    if levels == 255:
        v = c
    elif levels == 15:
        v = np.stack([c & 15, c >> 4], axis=2).reshape(n, -1)[:, :d]
    else:
        c = np.concatenate([c, np.zeros((n, -c.shape[1] % 3), np.int64)], axis=1)
        w = c[:, 0::3] | (c[:, 1::3] << 8) | (c[:, 2::3] << 16)
        v = np.stack([(w >> s) & 63 for s in (0, 6, 12, 18)], axis=2).reshape(n, -1)[:, :d]
    unit = (v.astype(np.float32) + np.float32(0.5)) / np.float32(levels)
    return (vmin + unit * vdiff).astype(np.float32)


def trained_of(qtype, vmin, vdiff):
    return np.concatenate([np.atleast_1d(vmin), np.atleast_1d(vdiff)]).astype(np.float32)


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
    assert QT_NAMES == [n for n, _ in sorted(((n, getattr(SQ, n)) for n in QT_NAMES), key=lambda t: t[1])]
    assert QTYPES == list(range(9)) + list(range(10, 15))  # faiss's values
    assert (SQ.RS_minmax, SQ.RS_meanstd, SQ.RS_quantiles, SQ.RS_optim) == (0, 1, 2, 3)
    for qtype in QTYPES:
        for d in (1, 5, 37):
            assert SQ(d, qtype).code_size == code_size(qtype, d)
            assert nearly.IndexScalarQuantizer(d, qtype).code_size == code_size(qtype, d)
    assert SQ(37, SQ.QT_6bit).bits == 6 and SQ(37, SQ.QT_4bit).bits == 4 and SQ(37, QTF16).bits == 16


@pytest.mark.parametrize("qtype", QTYPES, ids=QT_IDS)
@pytest.mark.parametrize("d", [1, 5, 7, 64])
def test_codec_matches_numpy(qtype, d):
    rng = np.random.default_rng(d)
    xt = data_for(qtype, rng, 500, d) * (rng.uniform(0.1, 10, d).astype(np.float32) if qtype not in DIRECT else 1)
    if qtype in TRAINED and d > 1:
        xt[:, 1] = 3.0  # a constant dimension: vdiff 0, code 0
    sq = SQ(d, qtype)
    sq.train(xt)
    x = data_for(qtype, rng, 300, d, scale=3)  # some values outside the trained range: clamped
    if qtype in TQ_BITS:
        x[:7, 0] = 0.0  # on the middle midpoint of the codebook
    codes = sq.compute_codes(x)
    assert codes.dtype == np.uint8 and codes.shape == (300, code_size(qtype, d))
    vmin = vdiff = None
    if qtype in TRAINED:
        vmin, vdiff = ref_train(xt, qtype)
        np.testing.assert_array_equal(sq.trained, trained_of(qtype, vmin, vdiff))
    elif qtype in TQ_BITS:
        k = 1 << TQ_BITS[qtype]
        c = sq.trained[:k]
        assert sq.trained.size == 2 * k - 1 and (np.diff(c) >= 0).all()
        np.testing.assert_array_equal(c, -c[::-1])  # symmetric
        np.testing.assert_array_equal(sq.trained[k:], np.float32(0.5) * (c[1:] + c[:-1]))
    else:
        assert sq.trained.size == 0
    np.testing.assert_array_equal(codes, ref_encode(x, qtype, vmin, vdiff))
    np.testing.assert_array_equal(sq.decode(codes), ref_decode(codes, qtype, vmin, vdiff, d))
    if qtype in TRAINED:
        # The training points decode within one step of themselves.
        step = np.atleast_1d(vdiff) / LEVELS[qtype]
        assert (np.abs(sq.decode(sq.compute_codes(xt)) - xt) <= step * 1.0001 + 1e-6).all()
    elif qtype in DIRECT:
        np.testing.assert_array_equal(sq.decode(codes), x)  # integers in range are stored exactly


@pytest.mark.parametrize("qtype", [SQ.QT_8bit, SQ.QT_4bit, SQ.QT_6bit, SQ.QT_8bit_uniform, SQ.QT_4bit_uniform],
                         ids=["QT_8bit", "QT_4bit", "QT_6bit", "QT_8bit_uniform", "QT_4bit_uniform"])
@pytest.mark.parametrize("rs,arg", [(SQ.RS_minmax, 0.1), (SQ.RS_quantiles, 0.05), (SQ.RS_quantiles, 0.9),
                                    (SQ.RS_meanstd, 2.5)])
def test_range_statistics(qtype, rs, arg):
    rng = np.random.default_rng(11)
    d = 6
    xt = randn(rng, 400, d) * rng.uniform(0.5, 4, d).astype(np.float32)
    sq = SQ(d, qtype)
    sq.rangestat, sq.rangestat_arg = rs, arg
    assert (sq.rangestat, sq.rangestat_arg) == (rs, np.float32(arg))
    sq.train(xt)
    vmin, vdiff = ref_train(xt, qtype, rs, arg)
    exact = rs != SQ.RS_meanstd  # mean-std sums in another order in numpy
    got = sq.trained
    want = trained_of(qtype, vmin, vdiff)
    if exact:
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    codes = sq.compute_codes(xt)
    np.testing.assert_array_equal(sq.decode(codes), ref_decode(codes, qtype, got[:len(got) // 2],
                                                                got[len(got) // 2:], d))


def grid_error(x, vmin, vdiff, levels):
    """faiss's RS_optim objective: squared distance to the nearest of the
    levels + 1 grid points vmin + i * step spanning [vmin, vmin + vdiff]."""
    step = np.float64(vdiff) / levels
    i = np.clip(np.floor((x - np.float64(vmin)) / step + 0.5), 0, levels)
    return float(((x - (vmin + i * step)) ** 2).sum())


@pytest.mark.parametrize("qtype", [SQ.QT_8bit, SQ.QT_4bit, SQ.QT_6bit, SQ.QT_4bit_uniform],
                         ids=["QT_8bit", "QT_4bit", "QT_6bit", "QT_4bit_uniform"])
def test_rs_optim_fits_its_grid(qtype):
    """RS_optim fits (vmin, step) by least squares: its grid error is below
    min-max's on heavy-tailed data, and a constant input stays finite (faiss's
    float sums return NaN ranges on the first of these)."""
    rng = np.random.default_rng(12)
    d = 3
    xt = randn(rng, 2000, d)
    xt[:, 0] = rng.standard_t(2, 2000).astype(np.float32)  # heavy tails: min-max wastes levels
    levels = LEVELS[qtype]
    fits = {}
    for rs in (SQ.RS_minmax, SQ.RS_optim):
        sq = SQ(d, qtype)
        sq.rangestat = rs
        sq.train(xt)
        assert np.isfinite(sq.trained).all()
        t = sq.trained
        if qtype in UNIFORM:
            fits[rs] = [grid_error(xt, t[0], t[1], levels)]
        else:
            fits[rs] = [grid_error(xt[:, j], t[j], t[d + j], levels) for j in range(d)]
    for opt, mm in zip(fits[SQ.RS_optim], fits[SQ.RS_minmax]):
        assert opt <= mm * 1.0001
    assert fits[SQ.RS_optim][0] < (0.8 if levels == 15 else 1.0) * fits[SQ.RS_minmax][0]
    sq = SQ(2, qtype)
    sq.rangestat = SQ.RS_optim
    sq.train(np.full((50, 2), 7.0, np.float32))
    assert np.isfinite(sq.trained).all()
    np.testing.assert_array_equal(sq.decode(sq.compute_codes(np.full((1, 2), 7.0, np.float32))), [[7.0, 7.0]])


@pytest.mark.parametrize("qtype", QTYPES, ids=QT_IDS)
def test_decoder_same_at_every_simd_level(qtype):
    rng = np.random.default_rng(13)
    d = 77  # a tail after every vector width
    sq = SQ(d, qtype)
    sq.train(data_for(qtype, rng, 300, d))
    codes = rng.integers(0, 256, (50, sq.code_size)).astype(np.uint8)
    if qtype == QTF16:
        codes = data_for(qtype, rng, 50, d).astype(np.float16).view(np.uint8)
    before = nearly.simd_level()
    outs = []
    try:
        for level in nearly.simd_levels_supported():
            nearly.set_simd_level(level)
            outs.append(sq.decode(codes))
    finally:
        nearly.set_simd_level(before)
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])
    if qtype in TRAINED:
        t = sq.trained
        np.testing.assert_array_equal(outs[0], ref_decode(codes, qtype, t[:len(t) // 2], t[len(t) // 2:], d))
    elif qtype in TQ_BITS:
        np.testing.assert_array_equal(outs[0], ref_decode(codes, qtype, d=d))


@pytest.mark.parametrize("qtype", QTYPES, ids=QT_IDS)
@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_code_scoring_kernels_at_every_level(qtype, metric):
    """Codes are scored without decoding (A + c B per dimension, c the integer
    code or the fp16 / bf16 value; 8 or 16 dimensions a step, 4 codes at a
    time): every level, every tail of dimensions and of codes, equals exact
    search over the decoded vectors."""
    rng = np.random.default_rng(14)
    before = nearly.simd_level()
    try:
        for level in nearly.simd_levels_supported():
            nearly.set_simd_level(level)
            for d in (1, 3, 7, 8, 9, 15, 16, 17, 24, 31, 33, 48, 77):
                n = 4 * 3 + (d % 4)
                xb, xq = data_for(qtype, rng, n, d), data_for(qtype, rng, 3, d)
                index = nearly.IndexScalarQuantizer(d, qtype, metric)
                index.train(xb)
                index.add(xb)
                vmin, vdiff = ref_train(xb, qtype) if qtype in TRAINED else (None, None)
                dec = ref_decode(ref_encode(xb, qtype, vmin, vdiff), qtype, vmin, vdiff, d)
                D, I = index.search(xq, n)
                Dr, Ir = brute_force(xq, dec, n, metric)
                tol = tolerance(xq, dec, metric, rel=1e-5)
                np.testing.assert_allclose(D, Dr, atol=tol, rtol=0, err_msg=f"{level} d={d}")
    finally:
        nearly.set_simd_level(before)


@pytest.mark.parametrize("qtype", QTYPES, ids=QT_IDS)
@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_queries_scored_in_groups_equal_one_at_a_time(level, qtype, metric):
    """Flat search scores its queries in groups that share each widened code
    (sq_scores_group): every group size, and a batch of 19 queries (tasks of
    8, groups of 4 and their remainders), gives each query the bits a search
    of that query alone gives."""
    rng = np.random.default_rng(23)
    d = 45
    xb, xq = data_for(qtype, rng, 1100, d), data_for(qtype, rng, 19, d)  # more than one block of 1,024 codes
    index = nearly.IndexScalarQuantizer(d, qtype, metric)
    index.train(xb)
    index.add(xb)
    D, I = index.search(xq, 7)
    for q in range(len(xq)):
        Dq, Iq = index.search(xq[q:q + 1], 7)
        np.testing.assert_array_equal(Dq[0], D[q])
        np.testing.assert_array_equal(Iq[0], I[q])
    for g in (2, 3, 4, 5):
        Dg, Ig = index.search(xq[:g], 7)
        np.testing.assert_array_equal(Dg, D[:g])
        np.testing.assert_array_equal(Ig, I[:g])
    dec = index.sa_decode(index.sa_encode(xb))
    Dr, _ = brute_force(xq, dec, 7, metric)
    np.testing.assert_allclose(D, Dr, atol=tolerance(xq, dec, metric, rel=1e-5), rtol=0)


def test_sq8_extremes():
    sq = SQ(2, QT8)
    sq.train(np.array([[0, -1], [1, 1]], np.float32))
    codes = sq.compute_codes(np.array([[0, -1], [1, 1], [-5, 5], [0.5, 0]], np.float32))
    np.testing.assert_array_equal(codes, [[0, 0], [255, 255], [0, 255], [127, 127]])


def test_sq4_and_sq6_packing():
    sq = SQ(5, SQ.QT_4bit)
    sq.train(np.array([[0] * 5, [1] * 5], np.float32))
    codes = sq.compute_codes(np.array([[1, 0, 0, 1, 1]], np.float32))
    np.testing.assert_array_equal(codes, [[0x0F, 0xF0, 0x0F]])
    sq = SQ(5, SQ.QT_6bit)
    sq.train(np.array([[0] * 5, [1] * 5], np.float32))
    assert sq.code_size == 4
    codes = sq.compute_codes(np.array([[1, 0, 1, 0, 1]], np.float32))  # 63, 0, 63, 0 | 63
    np.testing.assert_array_equal(codes, [[0x3F, 0xF0, 0x03, 0x3F]])


def test_direct_types_saturate():
    x = np.array([[-3.7, 0.9, 17.99, 255.5, 300, 1e9]], np.float32)
    np.testing.assert_array_equal(SQ(6, SQ.QT_8bit_direct).compute_codes(x), [[0, 0, 17, 255, 255, 255]])
    np.testing.assert_array_equal(SQ(6, SQ.QT_8bit_direct_signed).compute_codes(x - 128),
                                  [[0, 0, 17, 255, 255, 255]])


@pytest.mark.parametrize("qtype", sorted(DIRECT), ids=["direct", "direct_signed"])
@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_direct_codes_and_integer_queries_score_exactly(level, qtype, metric):
    """uint8 / int8 data queried with integers (BigANN-style) is scored in
    integer arithmetic: D is the exact integer distance (rounded once to
    float32), at every level and every tail of dimensions; a query that is
    not such integers takes the float kernels, within float rounding."""
    lo = 0 if qtype == SQ.QT_8bit_direct else -128
    for d in (1, 15, 16, 17, 33, 384):
        rng = np.random.default_rng(d)
        x = rng.integers(lo, lo + 256, (203, d)).astype(np.float32)
        q = rng.integers(lo, lo + 256, (5, d)).astype(np.float32)
        q[0] = lo + 255 if metric == METRIC_L2 else lo  # the range's ends
        index = nearly.IndexScalarQuantizer(d, qtype, metric)
        index.add(x)
        D, I = index.search(q, 203)
        xi, qi = x.astype(np.int64), q.astype(np.int64)
        exact = ((qi[:, None, :] - xi[None]) ** 2).sum(-1) if metric == METRIC_L2 else qi @ xi.T
        np.testing.assert_array_equal(D, np.take_along_axis(exact, I, 1).astype(np.float32), err_msg=f"d={d}")
        np.testing.assert_array_equal(np.sort(I, 1), np.tile(np.arange(203), (5, 1)))
        Df, If = index.search(q + np.float32(0.25), 10)  # not integers: the float path
        qf = (q + np.float32(0.25)).astype(np.float64)
        ef = ((qf[:, None, :] - x[None]) ** 2).sum(-1) if metric == METRIC_L2 else qf @ x.T.astype(np.float64)
        np.testing.assert_allclose(Df, np.take_along_axis(ef, If, 1), rtol=1e-5, atol=1e-2)


def test_bf16_codec():
    x = np.array([[1.0, -2.5, 3.14159, 1e-30, 3e38, 65504.0]], np.float32)
    sq = SQ(6, SQ.QT_bf16)
    codes = sq.compute_codes(x)
    np.testing.assert_array_equal(codes, ref_encode(x, SQ.QT_bf16))
    rec = sq.decode(codes)
    assert (np.abs(rec - x) <= np.abs(x) * 2 ** -8).all()


@pytest.mark.parametrize("d", [1, 5, 48])
def test_fp16_codec_matches_numpy(d):
    rng = np.random.default_rng(d)
    x = randn(rng, 200, d) * np.float32(100)
    x[0, 0] = 1e-7  # subnormal half
    x[1, 0] = 70000  # overflows to inf, like numpy
    x[2, 0] = -0.0
    sq = SQ(d, QTF16)
    assert sq.trained.size == 0
    codes = sq.compute_codes(x)
    np.testing.assert_array_equal(codes, ref_encode(x, QTF16))
    np.testing.assert_array_equal(sq.decode(codes), ref_decode(codes, QTF16))


def test_fp16_every_half_round_trips():
    halves = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    finite = np.isfinite(halves)
    x = halves[finite].astype(np.float32).reshape(-1, 1)
    sq = SQ(1, QTF16)
    codes = sq.compute_codes(x)
    np.testing.assert_array_equal(codes.view(np.uint16).ravel(), halves[finite].view(np.uint16))
    np.testing.assert_array_equal(sq.decode(codes), x)


def _normal_cell_mean(a, b):
    """E[X | a < X < b] for a standard normal X (b may be inf), in float64."""
    pdf = lambda x: 0.0 if math.isinf(x) else math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    tail = lambda x: 0.0 if math.isinf(x) else 0.5 * math.erfc(x / math.sqrt(2))  # P(X > x)
    return (pdf(a) - pdf(b)) / (tail(a) - tail(b))


@pytest.mark.parametrize("qtype", list(TQ_BITS), ids=[n for n in QT_NAMES if "tqmse" in n])
def test_turboquant_codebook_is_lloyd_max(qtype):
    """The codebook is the normal law's Lloyd-Max quantizer scaled by
    1/sqrt(d): each level is the mean of the law over its cell (between the
    midpoints to its neighbours), so the quantizer is at Lloyd's fixed point,
    and it scales exactly with d."""
    k = 1 << TQ_BITS[qtype]
    c1 = tq_codebook(qtype, 1)[0].astype(np.float64)
    half = c1[k // 2:]
    edges = [0.0] + list((half[1:] + half[:-1]) / 2) + [math.inf]
    means = np.array([_normal_cell_mean(edges[i], edges[i + 1]) for i in range(k // 2)])
    np.testing.assert_allclose(half, means, rtol=2e-7)  # float32 levels of a fixed point
    for d in (2, 37, 384, 1536):
        np.testing.assert_allclose(tq_codebook(qtype, d)[0], c1 / math.sqrt(d), rtol=1e-6)


def test_turboquant_quality_on_unit_vectors():
    """TurboQuant's MSE on random unit vectors in R^d is the normal Lloyd-Max
    quantizer's distortion (Max 1960: 0.3634, 0.1175, 0.03454, 0.009497 at 1
    to 4 bits; the TurboQuant paper's 0.36, 0.117, 0.03, 0.009)."""
    rng = np.random.default_rng(2)
    d = 256
    x = data_for(SQ.QT_4bit_tqmse, rng, 2000, d)
    mse = {}
    for qtype, bits in TQ_BITS.items():
        sq = SQ(d, qtype)
        sq.train(x)
        mse[bits] = float(((sq.decode(sq.compute_codes(x)) - x) ** 2).sum(1).mean())
    for bits, ref in ((1, 0.3634), (2, 0.1175), (3, 0.03454), (4, 0.009497)):
        assert abs(mse[bits] - ref) < 0.03 * ref, (bits, mse[bits])
    assert mse[8] < mse[4] / 100


@pytest.mark.parametrize("qtype", [SQ.QT_8bit, SQ.QT_4bit_uniform, SQ.QT_3bit_tqmse], ids=["8bit", "4bit_uniform", "tqmse3"])
def test_trained_set_by_hand(qtype):
    """sq.trained = values (faiss's idiom: ranges copied from another index,
    then is_trained = True): the codec and an IVF index use them; a wrong
    size or NaN is refused."""
    rng = np.random.default_rng(8)
    d = 12
    x = data_for(qtype, rng, 500, d)
    ref = SQ(d, qtype)
    ref.train(x)
    ivf = nearly.IndexIVFScalarQuantizer(nearly.IndexFlatL2(d), d, 1, qtype, METRIC_L2, False)
    ivf.quantizer.add(np.zeros((1, d), np.float32))
    ivf.sq.trained = ref.trained
    np.testing.assert_array_equal(ivf.sq.trained, ref.trained)
    ivf.is_trained = True
    ivf.add(x)
    np.testing.assert_array_equal(ivf.invlists.get_codes(0).reshape(500, -1), ref.compute_codes(x))
    with pytest.raises(ValueError):
        ivf.sq.trained = ref.trained[:-1]
    bad = ref.trained.copy()
    bad[0] = np.nan
    with pytest.raises(ValueError):
        ivf.sq.trained = bad


def test_bad_qtype_rangestat_and_shapes():
    for bad in (-1, 27):  # QT_count (QT_0bit, 9, is tests/compat/test_sq_zero_bit_compat.py's)
        with pytest.raises(RuntimeError, match="not implemented"):
            SQ(8, bad)
        with pytest.raises(RuntimeError, match="not implemented"):
            nearly.IndexScalarQuantizer(8, bad)
        with pytest.raises(RuntimeError, match="not implemented"):
            nearly.IndexIVFScalarQuantizer(nearly.IndexFlatL2(8), 8, 4, bad)
    sq = SQ(8, QT8)
    for rs in (-1, 4):
        with pytest.raises(ValueError):
            sq.rangestat = rs
    with pytest.raises(ValueError):
        sq.rangestat_arg = float("nan")
    with pytest.raises(Exception):
        sq.compute_codes(np.zeros((3, 8), np.float32))  # untrained
    with pytest.raises(Exception):
        sq.decode(np.zeros((3, 8), np.uint8))  # untrained
    sq.train(np.zeros((3, 8), np.float32))
    with pytest.raises(Exception):
        sq.compute_codes(np.zeros((3, 7), np.float32))
    with pytest.raises(Exception):
        sq.decode(np.zeros((3, 9), np.uint8))
    with pytest.raises(Exception):
        SQ(8, SQ.QT_4bit).train(np.zeros((0, 8), np.float32))


# ---------------------------------------------------------------- IndexScalarQuantizer


@pytest.mark.parametrize("qtype", QTYPES, ids=QT_IDS)
@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_index_sq_search_is_exact_over_decoded(qtype, metric):
    rng = np.random.default_rng(1)
    d = 24
    xb, xq = data_for(qtype, rng, 3000, d), data_for(qtype, rng, 40, d)
    index = nearly.IndexScalarQuantizer(d, qtype, metric)
    assert index.is_trained == (qtype not in NEEDS_TRAINING)
    index.train(xb[:1000])
    assert index.is_trained
    index.add(xb)
    assert index.ntotal == 3000
    codes = index.codes.reshape(3000, -1)
    vmin, vdiff = ref_train(xb[:1000], qtype) if qtype in TRAINED else (None, None)
    np.testing.assert_array_equal(codes, ref_encode(xb, qtype, vmin, vdiff))
    dec = ref_decode(codes, qtype, vmin, vdiff, d)
    rec = np.stack([index.reconstruct(i) for i in range(0, 3000, 97)])
    np.testing.assert_array_equal(rec, dec[::97])
    np.testing.assert_array_equal(index.sa_decode(index.sa_encode(xb[:50])), dec[:50])
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
    xb, xq = data_for(qtype, rng, 2000, d), data_for(qtype, rng, 30, d)
    index = nearly.IndexIVFScalarQuantizer(nearly.IndexFlat(d, metric), d, nlist, qtype, metric, by_residual)
    assert index.by_residual == by_residual and index.code_size == code_size(qtype, d)
    index.train(xb)
    assert index.is_trained
    index.add(xb)
    index.make_direct_map()
    dec = np.stack([index.reconstruct(i) for i in range(2000)])
    cent = index.quantizer.reconstruct_n(0, nlist)
    _, assign = index.quantizer.search(xb, 1)
    xt = xb - cent[assign[:, 0]] if by_residual else xb
    vmin, vdiff = ref_train(xt, qtype) if qtype in TRAINED else (None, None)
    if qtype in TRAINED:
        # The codec was trained on the residuals (or the vectors) of all training points.
        np.testing.assert_array_equal(index.sq.trained, trained_of(qtype, vmin, vdiff))
    codes = np.concatenate([index.invlists.get_codes(l).reshape(-1, index.code_size) for l in range(nlist)])
    ids = np.concatenate([index.invlists.get_ids(l) for l in range(nlist)])
    np.testing.assert_array_equal(codes, ref_encode(xt[ids], qtype, vmin, vdiff))
    index.nprobe = nlist
    D, I = index.search(xq, 10)
    check_search(D, I, xq, dec, 10, metric)


@pytest.mark.parametrize("qtype", QTYPES, ids=QT_IDS)
@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
@pytest.mark.parametrize("by_residual", [True, False])
def test_ivf_sq_list_batches_equal_query_by_query(level, qtype, metric, by_residual):
    """Many queries per list are scanned list by list, in groups of queries
    that widen each code once (scan_list_batch); each query's results are the
    bits the query-by-query scan gives it alone, with and without a selector."""
    rng = np.random.default_rng(6)
    d, nlist = 24, 4
    xb, xq = data_for(qtype, rng, 2500, d), data_for(qtype, rng, 21, d)
    index = nearly.IndexIVFScalarQuantizer(nearly.IndexFlat(d, metric), d, nlist, qtype, metric, by_residual)
    index.train(xb)
    index.add(xb)
    index.nprobe = 3
    sel = nearly.IDSelectorRange(100, 2000)
    for params in (None, nearly.SearchParametersIVF(nprobe=3, sel=sel)):
        D, I = index.search(xq, 9, params=params)  # 63 (query, list) pairs over 4 lists: by list
        for q in range(len(xq)):
            Dq, Iq = index.search(xq[q:q + 1], 9, params=params)  # 3 pairs: query by query
            if metric == METRIC_IP and by_residual:  # + <q, centroid>: the coarse search of 1 or 21 queries
                np.testing.assert_allclose(Dq[0], D[q], rtol=1e-6, atol=1e-6)
            else:
                np.testing.assert_array_equal(Dq[0], D[q])
            np.testing.assert_array_equal(Iq[0], I[q])
        if params is not None:
            assert ((I >= 100) & (I < 2000)).all()


@pytest.mark.parametrize("qtype", QTYPES, ids=QT_IDS)
@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_gathered_codes_score_as_codes_in_a_row(level, qtype, metric, restore_threads):
    """HNSW over the codes (IndexHNSWSQCodes) scores a node's neighbours
    together, codes at scattered addresses (sq_scores_gather): at every level
    and every tail of dimensions, each code gets the bits an inverted list
    scan of the same codes gives it (sq_scores), and both equal exact search
    over the decoded vectors."""
    nearly.omp_set_num_threads(1)
    rng = np.random.default_rng(31)
    for d in (1, 3, 7, 8, 9, 15, 16, 17, 24, 31, 33, 48, 77):
        n = 60
        xb, xq = data_for(qtype, rng, n, d), data_for(qtype, rng, 4, d)
        graph = nearly.IndexHNSWSQCodes(d, qtype, 16, metric)
        graph.hnsw.efConstruction = 100
        graph.train(xb)
        graph.add(xb)
        graph.hnsw.efSearch = 200  # every node of the (connected) tiny graph
        lists = nearly.IndexIVFScalarQuantizer(nearly.IndexFlat(d, metric), d, 1, qtype, metric, False)
        lists.train(xb)
        lists.add(xb)
        Dg, Ig = graph.search(xq, n)
        Dl, Il = lists.search(xq, n)
        found = Ig >= 0  # a degenerate graph (d = 1 under inner product) may not reach every node
        assert found.mean() > 0.5, f"d={d}"
        dec = graph.reconstruct_n(0, n)
        ref = distances64(xq, dec, metric)
        for q in range(len(xq)):
            ids = Ig[q][found[q]]
            by_id = dict(zip(Il[q].tolist(), Dl[q].tolist()))
            np.testing.assert_array_equal(Dg[q][found[q]], [by_id[i] for i in ids.tolist()], err_msg=f"d={d}")
            np.testing.assert_allclose(Dg[q][found[q]], ref[q, ids], atol=tolerance(xq, dec, metric, rel=1e-5),
                                       rtol=0, err_msg=f"d={d}")


@pytest.mark.parametrize("fs", ["IVF16,SQ8", "IVF16,SQfp16", "IVF16,SQ4", "IVF16,SQ6", "IVF16,SQbf16"])
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


FACTORY_SQ = {"SQ8": "QT_8bit", "SQ4": "QT_4bit", "SQ6": "QT_6bit", "SQfp16": "QT_fp16", "SQbf16": "QT_bf16",
              "SQ8_direct": "QT_8bit_direct", "SQ8_direct_signed": "QT_8bit_direct_signed",
              "SQtqmse1": "QT_1bit_tqmse", "SQtqmse2": "QT_2bit_tqmse", "SQtqmse3": "QT_3bit_tqmse",
              "SQtqmse4": "QT_4bit_tqmse", "SQtqmse8": "QT_8bit_tqmse"}


@pytest.mark.parametrize("token", list(FACTORY_SQ))
@pytest.mark.parametrize("ivf", [False, True])
def test_factory(token, ivf):
    fs = ("IVF1024," if ivf else "") + token
    index = nearly.index_factory(32, fs, nearly.METRIC_INNER_PRODUCT)
    qtype = getattr(SQ, FACTORY_SQ[token])
    assert type(index).__name__ == ("IndexIVFScalarQuantizer" if ivf else "IndexScalarQuantizer")
    assert index.code_size == code_size(qtype, 32) and index.sq.qtype == qtype
    assert index.metric_type == nearly.METRIC_INNER_PRODUCT
    assert nearly.index_factory(32, "IVF64_HNSW16," + token if ivf else token).sq.qtype == qtype


def test_factory_hnsw_sq_types():
    assert type(nearly.index_factory(16, "HNSW32,SQ8")).__name__ == "IndexHNSWSQ"  # the int8 walk copy
    assert type(nearly.index_factory(16, "HNSW32,SQ4")).__name__ == "IndexHNSWSQCodes"  # the codes alone
    assert type(nearly.index_factory(16, "HNSW32,SQtqmse4")).__name__ == "IndexHNSWSQCodes"
    with pytest.raises(RuntimeError):
        nearly.index_factory(16, "SQ5")
    with pytest.raises(RuntimeError):
        nearly.index_factory(16, "HNSW32,SQ5")


def _built(fs, metric=METRIC_L2, n=300, d=8):
    rng = np.random.default_rng(6)
    x = randn(rng, n, d)
    index = nearly.index_factory(d, fs, metric)
    index.train(x)
    index.add(x)
    return index


FS = ["SQ8", "SQfp16", "IVF4,SQ8", "IVF4,SQfp16", "SQ4", "SQ6", "SQbf16", "IVF4,SQ4", "IVF4,SQ6", "SQtqmse3",
      "IVF4,SQtqmse8", "HNSW8,SQtqmse4"]


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


@pytest.mark.parametrize("fs", ["SQ8", "IVF4,SQ8", "SQ4", "IVF4,SQ6"])
def test_untrained_round_trip(fs):
    """The range statistic travels with an untrained index and is used when it trains."""
    index = nearly.index_factory(8, fs)
    index.sq.rangestat, index.sq.rangestat_arg = SQ.RS_quantiles, 0.1
    copy = nearly.deserialize_index(nearly.serialize_index(index))
    assert type(copy) is type(index) and not copy.is_trained
    assert (copy.sq.rangestat, copy.sq.rangestat_arg) == (SQ.RS_quantiles, np.float32(0.1))
    x = randn(np.random.default_rng(0), 100, 8)
    copy.train(x)
    index.train(x)
    np.testing.assert_array_equal(copy.sq.trained, index.sq.trained)
    if "IVF" not in fs:
        vmin, vdiff = ref_train(x, copy.sq.qtype, SQ.RS_quantiles, 0.1)
        np.testing.assert_array_equal(copy.sq.trained, trained_of(copy.sq.qtype, vmin, vdiff))
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

    tio.forge_every_byte(_ser(_built(fs, n=30, d=4)))
