"""TurboQuant's full codes (faiss's QT_2bit_tq .. QT_5bit_tq; nearly/turboquant.h):
an MSE code of b - 1 bits per dimension plus the QJL signs of its residual,
scored by the paper's unbiased estimate (faiss 1.15 shrinks its QJL term by
sqrt(pd); see turboquant.h).
Checked against a float64 numpy reference of the encoder, the decoder and the
inner-product estimate (the randomized Hadamard transform as a Sylvester
Hadamard matrix, the signs from MT19937 as numpy's legacy RandomState draws
them), at every SIMD level, and for the estimate's defining property: it is
unbiased over the random signs."""
import numpy as np
import pytest

import nearly
from _testutil import randn

SQ = nearly.ScalarQuantizer
TQ = {b: getattr(SQ, f"QT_{b}bit_tq") for b in (2, 3, 4, 5)}
LEVELS = [lvl for lvl in ("scalar", "avx2", "avx512") if lvl in nearly.simd_levels_supported()]


@pytest.fixture(autouse=True)
def restore_simd():
    level = nearly.simd_level()
    yield
    nearly.set_simd_level(level)


def hadamard(n):
    """The Sylvester Hadamard matrix of order n (a power of two): the matrix
    of the unnormalized Walsh-Hadamard transform."""
    H = np.ones((1, 1))
    while H.shape[0] < n:
        H = np.block([[H, H], [H, -H]])
    return H


def padded(d):
    pd = 1
    while pd < d:
        pd *= 2
    return pd


class Reference:
    """float64 TurboQuant of faiss's layout, from a trained quantizer."""

    def __init__(self, sq):
        self.d, self.b = sq.d, sq.bits
        t = np.asarray(sq.trained)
        k = 2 ** (self.b - 1)
        self.c, self.mid = t[:k].astype(np.float64), t[k:2 * k - 1].astype(np.float64)
        seed = int(t[2 * k - 1:2 * k + 1].view(np.uint64)[0])
        self.pd = padded(self.d)
        raw = np.random.RandomState(seed & 0xFFFFFFFF).randint(0, 2 ** 32, size=self.pd, dtype=np.uint64)
        self.signs = np.where(raw % 2 == 0, 1.0, -1.0)
        self.H = hadamard(self.pd)
        self.pb = (self.d + 7) // 8

    def project(self, v):
        buf = np.zeros(self.pd)
        buf[:self.d] = v
        return (self.H @ (buf * self.signs))[:self.d]

    def encode(self, x):
        x = x.astype(np.float64)
        norm = max(np.linalg.norm(x), 1e-30)
        v = x / norm
        idx = np.searchsorted(self.mid, v * np.sqrt(self.d), side="right")
        r = v - self.c[idx] / np.sqrt(self.d)
        return idx, self.project(r) > 0, norm, np.linalg.norm(r)

    def unpack(self, code):
        pl = [np.unpackbits(code[p * self.pb:(p + 1) * self.pb], bitorder="little")[:self.d]
              for p in range(self.b)]
        idx = sum(pl[p].astype(np.int64) << p for p in range(self.b - 1))
        norm, gamma = code[self.b * self.pb:].view(np.float32)
        return idx, pl[-1].astype(bool), float(norm), float(gamma)

    def decode(self, code):
        idx, qjl, norm, gamma = self.unpack(code)
        s = np.zeros(self.pd)
        s[:self.d] = np.where(qjl, 1, -1)
        back = (self.H @ s) * self.signs
        coeff = np.sqrt(np.pi / 2) / self.d * gamma
        return norm * (self.c[idx] / np.sqrt(self.d) + coeff * back[:self.d])

    def inner_product(self, q, code):
        idx, qjl, norm, gamma = self.unpack(code)
        q = q.astype(np.float64)
        p = self.project(q)
        mse = q @ (self.c[idx] / np.sqrt(self.d))
        return norm * (mse + np.sqrt(np.pi / 2) / self.d * gamma * (2 * p[qjl].sum() - p.sum()))


def trained_sq(d, b, seed=None):
    sq = SQ(d, TQ[b])
    sq.train(np.zeros((1, d), np.float32))
    if seed is not None:
        t = sq.trained
        k = 2 ** (b - 1)
        t[2 * k - 1:2 * k + 1] = np.array([seed], dtype=np.uint64).view(np.float32)
        sq.trained = t
    return sq


@pytest.mark.parametrize("b", [2, 3, 4, 5])
@pytest.mark.parametrize("d", [7, 20, 64, 100])
def test_codes_match_the_float64_reference(b, d):
    sq = trained_sq(d, b)
    assert sq.code_size == b * ((d + 7) // 8) + 8
    ref = Reference(sq)
    x = randn(np.random.default_rng(b * 100 + d), 200, d)
    codes = sq.compute_codes(x)
    idx_eq = qjl_eq = 0
    for i in range(len(x)):
        idx, qjl, norm, gamma = ref.encode(x[i])
        got = ref.unpack(codes[i])
        idx_eq += (got[0] == idx).sum()
        qjl_eq += (got[1] == qjl).sum()
        assert got[2] == pytest.approx(norm, rel=1e-5) and got[3] == pytest.approx(gamma, rel=1e-4, abs=1e-6)
    assert idx_eq >= 0.999 * x.size and qjl_eq >= 0.995 * x.size
    # Bits past d stay zero in every plane.
    if d % 8:
        pb = (d + 7) // 8
        for p in range(b):
            assert not (codes[:, p * pb + pb - 1] >> (d % 8)).any()


@pytest.mark.parametrize("b", [2, 3, 5])
def test_decode_matches_the_reference(b):
    d = 48
    sq = trained_sq(d, b)
    ref = Reference(sq)
    x = randn(np.random.default_rng(3), 50, d)
    codes = sq.compute_codes(x)
    dec = sq.decode(codes)
    for i in range(len(x)):
        np.testing.assert_allclose(dec[i], ref.decode(codes[i]), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("metric", [nearly.METRIC_L2, nearly.METRIC_INNER_PRODUCT], ids=["L2", "IP"])
@pytest.mark.parametrize("b", [2, 3, 4, 5])
@pytest.mark.parametrize("d", [9, 33, 128])
def test_scores_are_the_estimate_at_every_level(level, metric, b, d):
    nearly.set_simd_level(level)
    rng = np.random.default_rng(d + b)
    x, q = randn(rng, 300, d), randn(rng, 11, d)  # 11 queries: groups of 4 and a tail
    index = nearly.IndexScalarQuantizer(d, TQ[b], metric)
    index.train(x)
    index.add(x)
    D, I = index.search(q, len(x))
    ref = Reference(index.sq)
    codes = index.sa_encode(x)
    for i in range(len(q)):
        est = np.array([ref.inner_product(q[i], codes[j]) for j in I[i]])
        if metric == nearly.METRIC_L2:
            norms = np.array([ref.unpack(codes[j])[2] for j in I[i]])
            est = (q[i].astype(np.float64) ** 2).sum() + norms ** 2 - 2 * est
        np.testing.assert_allclose(D[i], est, rtol=2e-4, atol=2e-4 * np.abs(est).max())
        # The estimate is the inner product with the decoded vector.
        if metric == nearly.METRIC_INNER_PRODUCT:
            np.testing.assert_allclose(D[i], index.sq.decode(codes[I[i]]) @ q[i], rtol=1e-3, atol=1e-3)


def test_levels_agree_on_ids():
    rng = np.random.default_rng(9)
    x, q = randn(rng, 2000, 96), randn(rng, 20, 96)
    out = {}
    for level in LEVELS:
        nearly.set_simd_level(level)
        index = nearly.index_factory(96, "SQtq3")
        index.train(x)
        index.add(x)
        out[level] = index.search(q, 10)
    for level in LEVELS[1:]:
        np.testing.assert_allclose(out[level][0], out[LEVELS[0]][0], rtol=1e-4, atol=1e-4)
        assert (out[level][1] == out[LEVELS[0]][1]).mean() > 0.99


def test_estimate_is_unbiased_over_the_signs():
    """TurboQuant's guarantee: E<q, x_hat> = <q, x> over the random signs. The
    estimates of 400 vectors, each averaged over 40 sign seeds, regressed on
    the true inner products: slope 1 (the MSE code alone shrinks them to a
    slope near 2 / pi at one bit; faiss 1.15's estimate stays near it)."""
    d, b, nseeds = 64, 2, 40
    rng = np.random.default_rng(0)
    x, q = randn(rng, 400, d), randn(rng, 1, d)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    true = x.astype(np.float64) @ q[0].astype(np.float64)
    est = np.zeros(len(x))
    mse_only = np.zeros(len(x))
    for seed in range(nseeds):
        sq = trained_sq(d, b, seed=seed + 1)
        index = nearly.IndexScalarQuantizer(d, TQ[b], nearly.METRIC_INNER_PRODUCT)
        index.sq = sq
        index.add(x)
        D, I = index.search(q, len(x))
        est[I[0]] += D[0] / nseeds
        ref = Reference(sq)
        for i, code in enumerate(index.sa_encode(x)):
            idx, _, norm, _ = ref.unpack(code)
            mse_only[i] += norm * q[0] @ (ref.c[idx] / np.sqrt(d)) / nseeds
    slope = float(est @ true / (true @ true))
    slope_mse = float(mse_only @ true / (true @ true))
    assert abs(slope - 1) < 0.03, slope
    assert slope_mse < 0.8, slope_mse


def test_ivf_stores_the_vectors_themselves_and_searches_as_flat():
    rng = np.random.default_rng(4)
    x, q = randn(rng, 3000, 32), randn(rng, 10, 32)
    ivf = nearly.index_factory(32, "IVF16,SQtq4")
    assert ivf.by_residual is False  # faiss's rule for these types
    ivf.train(x)
    ivf.add(x)
    ivf.nprobe = 16
    flat = nearly.index_factory(32, "SQtq4")
    flat.train(x)
    flat.add(x)
    Di, Ii = ivf.search(q, 10)
    Df, If = flat.search(q, 10)
    np.testing.assert_allclose(Di, Df, rtol=1e-5, atol=1e-5)
    assert (Ii == If).mean() > 0.98
    params = nearly.IVFSQTurboQSearchParameters(nprobe=16, qb=4, int_qjl=True)
    assert params.qb == 4 and params.int_qjl
    np.testing.assert_array_equal(ivf.search(q, 10, params=params)[1], Ii)
    with pytest.raises(ValueError):
        params.qb = 9


def test_persistence_and_sa_codec():
    rng = np.random.default_rng(5)
    x, q = randn(rng, 500, 40), randn(rng, 5, 40)
    for key in ("SQtq2", "SQtq5", "IVF8,SQtq3"):
        index = nearly.index_factory(40, key)
        index.train(x)
        index.add(x)
        if hasattr(index, "nprobe"):
            index.nprobe = 8
        back = nearly.deserialize_index(nearly.serialize_index(index))
        np.testing.assert_array_equal(back.search(q, 5)[1], index.search(q, 5)[1])
    flat = nearly.index_factory(40, "SQtq3")
    flat.train(x)
    codes = flat.sa_encode(x)
    np.testing.assert_array_equal(codes, flat.sq.compute_codes(x))
    np.testing.assert_array_equal(flat.sa_decode(codes), flat.sq.decode(codes))


def test_bad_input():
    sq = trained_sq(16, 3)
    t = sq.trained
    bad = t.copy()
    bad[-1] = 2  # faiss's dense random rotation
    with pytest.raises(RuntimeError, match="projection type"):
        sq.trained = bad
    bad = t.copy()
    bad[0] = np.nan
    with pytest.raises(ValueError):
        sq.trained = bad
    bad = t.copy()
    bad[[0, 1]] = bad[[1, 0]]
    with pytest.raises(ValueError, match="ascend"):
        sq.trained = bad
    with pytest.raises(ValueError):
        sq.trained = t[:-1]
    np.testing.assert_array_equal(sq.trained, t)  # nothing taken
    with pytest.raises(RuntimeError, match="symmetric"):
        nearly.IndexHNSWSQ(16, TQ[3], 16)
    untrained = nearly.IndexScalarQuantizer(16, TQ[2])
    assert not untrained.is_trained
    with pytest.raises(RuntimeError):
        untrained.add(np.zeros((2, 16), np.float32))
    index = nearly.IndexScalarQuantizer(16, TQ[2])
    index.train(np.zeros((0, 16), np.float32))  # no data needed, as faiss
    x = randn(np.random.default_rng(1), 10, 16)
    x[3, 2] = np.nan
    with pytest.raises(ValueError):
        index.add(x)
    # A file whose trained vector names the rotation is refused.
    index.add(np.nan_to_num(x))
    clean = nearly.deserialize_index(nearly.serialize_index(index))
    np.testing.assert_array_equal(clean.sq.trained, index.sq.trained)


def test_zero_vector_and_tiny_d():
    for d in (1, 2, 8):
        index = nearly.IndexScalarQuantizer(d, TQ[2], nearly.METRIC_L2)
        index.train(np.zeros((1, d), np.float32))
        x = np.zeros((3, d), np.float32)
        x[1] = 1
        index.add(x)
        D, I = index.search(x, 3)
        assert np.isfinite(D).all() and I[1, 0] == 1
