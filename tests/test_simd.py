"""Every SIMD level's kernels against the scalar reference and float64 numpy.

The scalar level is the definition; AVX2 / AVX-512 / NEON only reorder the
float sums (and use FMA), so they must agree within a few ulps of the sum of
|products|.
"""
import numpy as np
import pytest

import nearly
from nearly import _nearly

LEVELS = nearly.simd_levels_supported()
DIMS = [1, 3, 7, 8, 15, 16, 17, 31, 32, 33, 100, 384, 1000]


def tolerance(a, b):
    """Bound on float32 rounding of a sum of products: eps * d * sum|a_i b_i|."""
    return 4e-7 * a.shape[-1] * (np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64)).T) + 1e-30


def at_level(name, fn, *args):
    before = nearly.simd_level()
    nearly.set_simd_level(name)
    try:
        return fn(*args)
    finally:
        nearly.set_simd_level(before)


def test_levels_reported():
    assert "scalar" in LEVELS
    assert nearly.simd_level() == LEVELS[-1] or nearly.simd_level() in LEVELS
    with pytest.raises(ValueError):
        nearly.set_simd_level("sse9")


@pytest.mark.parametrize("d", DIMS)
def test_single_pair_kernels(level, d):
    rng = np.random.default_rng(d)
    x, y = rng.standard_normal((2, d)).astype(np.float32)
    ip64 = float(x.astype(np.float64) @ y.astype(np.float64))
    l264 = float(((x.astype(np.float64) - y) ** 2).sum())
    tol = tolerance(x[None], y[None])[0, 0]
    assert abs(_nearly.fvec_inner_product(x, y) - ip64) <= tol
    assert abs(_nearly.fvec_inner_product(x, y) - at_level("scalar", _nearly.fvec_inner_product, x, y)) <= 2 * tol
    assert abs(_nearly.fvec_L2sqr(x, y) - l264) <= 4e-7 * d * l264 + 1e-30


@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("ny", [0, 1, 3, 4, 5, 9, 100])
def test_ny_kernels(level, d, ny):
    rng = np.random.default_rng(1000 * d + ny)
    q = rng.standard_normal(d).astype(np.float32)
    X = rng.standard_normal((ny, d)).astype(np.float32)
    ip = _nearly.fvec_inner_products_ny(q, X)
    l2 = _nearly.fvec_L2sqr_ny(q, X)
    assert ip.shape == (ny,) and l2.shape == (ny,)
    ref_ip = at_level("scalar", _nearly.fvec_inner_products_ny, q, X)
    ref_l2 = at_level("scalar", _nearly.fvec_L2sqr_ny, q, X)
    tol = tolerance(q[None], X)[0] if ny else 0
    np.testing.assert_array_less(np.abs(ip - ref_ip), 2 * tol + 1e-30)
    l2_64 = ((X.astype(np.float64) - q) ** 2).sum(1)
    np.testing.assert_array_less(np.abs(l2 - l2_64), 4e-7 * d * l2_64 + 1e-30)
    np.testing.assert_array_less(np.abs(l2 - ref_l2), 8e-7 * d * l2_64 + 1e-30)


@pytest.mark.parametrize("nq,nx,d", [(1, 1, 1), (5, 33, 17), (12, 32, 384), (13, 65, 100), (30, 200, 384),
                                     (7, 1000, 64), (64, 129, 31)])
def test_gemm_micro_kernel(level, nq, nx, d):
    """The packed micro-kernel path, with ragged tiles on both sides."""
    rng = np.random.default_rng(nq * 7 + nx)
    Q = rng.standard_normal((nq, d)).astype(np.float32)
    X = rng.standard_normal((nx, d)).astype(np.float32)
    out = _nearly.gemm_ip(Q, X)
    ref = Q.astype(np.float64) @ X.astype(np.float64).T
    assert out.shape == (nq, nx) and out.dtype == np.float32
    np.testing.assert_array_less(np.abs(out - ref), tolerance(Q, X))
    scalar = at_level("scalar", _nearly.gemm_ip, Q, X)
    np.testing.assert_array_less(np.abs(out - scalar), 2 * tolerance(Q, X))


@pytest.mark.parametrize("nq,nx", [(1000, 64), (3001, 45), (700, 300)])
def test_gemm_on_the_pool_gives_the_same_bits(level, nq, nx, restore_threads):
    """Large products are split by row ranges over the threads: the same bits as one thread, and the reference."""
    rng = np.random.default_rng(nq + nx)
    Q = rng.standard_normal((nq, 384)).astype(np.float32)
    X = rng.standard_normal((nx, 384)).astype(np.float32)
    outs = []
    for threads in (1, 2, 3):
        nearly.omp_set_num_threads(threads)
        outs.append(_nearly.gemm_ip(Q, X))
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])
    ref = Q.astype(np.float64) @ X.astype(np.float64).T
    np.testing.assert_array_less(np.abs(outs[0] - ref), tolerance(Q, X))


@pytest.mark.parametrize("metric", [nearly.METRIC_L2, nearly.METRIC_INNER_PRODUCT])
@pytest.mark.parametrize("nq", [1, 3, 4, 50])
def test_search_same_at_every_level(level, metric, nq):
    """Whole searches (direct and blocked paths) give the same neighbours at every level."""
    rng = np.random.default_rng(nq)
    xb = rng.standard_normal((3000, 48)).astype(np.float32)
    xq = rng.standard_normal((nq, 48)).astype(np.float32)
    index = nearly.IndexFlat(48, metric)
    index.add(xb)
    D, I = index.search(xq, 20)
    Ds, Is = at_level("scalar", index.search, xq, 20)
    np.testing.assert_array_equal(I, Is)
    np.testing.assert_allclose(D, Ds, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("d", [1, 15, 16, 31, 32, 63, 64, 65, 127, 384, 1000])
def test_dot_i8_exact(level, d):
    """Integer kernel: bit-exact with the scalar reference, extremes included."""
    rng = np.random.default_rng(d)
    for a, b in [
        (rng.integers(-127, 128, d), rng.integers(-127, 128, d)),
        (np.full(d, 127), np.full(d, -127)),
        (np.full(d, -127), np.full(d, -127)),
    ]:
        a = a.astype(np.int8)
        b = b.astype(np.int8)
        expected = int(a.astype(np.int64) @ b.astype(np.int64))
        assert _nearly.dot_i8(a, b) == expected
        assert at_level("scalar", _nearly.dot_i8, a, b) == expected


@pytest.mark.parametrize("d", [1, 7, 16, 17, 100, 384])
@pytest.mark.parametrize("ny", [0, 1, 3, 4, 5, 37])
def test_l2sqr_4q_kernel(level, d, ny):
    """Four queries' squared L2 distances from the differences: within float
    rounding of float64, and each row the single-query kernel's bits."""
    rng = np.random.default_rng(d * 100 + ny + 7)
    Q = (rng.standard_normal((4, d)) + 30).astype(np.float32)  # far from 0: norms would cancel
    X = (rng.standard_normal((ny, d)) + 30).astype(np.float32)
    out = _nearly.l2sqr_4q(Q, X)
    ref = ((Q.astype(np.float64)[:, None, :] - X.astype(np.float64)[None, :, :]) ** 2).sum(-1)
    assert out.shape == (4, ny)
    if ny:
        # differences keep the precision the norm form loses (|x|^2 ~ 900 d here)
        np.testing.assert_allclose(out, ref, rtol=2e-5 * max(1, d) ** 0.5 / 4, atol=1e-4)
        scalar = at_level("scalar", _nearly.l2sqr_4q, Q, X)
        np.testing.assert_allclose(out, scalar, rtol=1e-5)


@pytest.mark.parametrize("d", [1, 7, 16, 17, 100, 384])
@pytest.mark.parametrize("ny", [0, 1, 3, 4, 5, 37])
def test_ip_4q_kernel(level, d, ny):
    """Four queries against many rows at once (small batches)."""
    rng = np.random.default_rng(d * 100 + ny)
    Q = rng.standard_normal((4, d)).astype(np.float32)
    X = rng.standard_normal((ny, d)).astype(np.float32)
    out = _nearly.ip_4q(Q, X)
    ref = Q.astype(np.float64) @ X.astype(np.float64).T
    assert out.shape == (4, ny)
    if ny:
        np.testing.assert_array_less(np.abs(out - ref), tolerance(Q, X))
        scalar = at_level("scalar", _nearly.ip_4q, Q, X)
        np.testing.assert_array_less(np.abs(out - scalar), 2 * tolerance(Q, X))


@pytest.mark.parametrize("d", [1, 3, 7, 8, 15, 16, 17, 24, 48, 100])
@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 9, 37])
def test_inner_products_rows_kernel(level, d, n):
    """Rows given by pointers, in any order, repeated: each the single-pair
    kernel's sum within rounding, and the scalar reference's."""
    rng = np.random.default_rng(d * 100 + n + 3)
    q = rng.standard_normal(d).astype(np.float32)
    X = rng.standard_normal((max(n, 1) * 2, d)).astype(np.float32)
    order = rng.integers(0, len(X), n)
    out = _nearly._inner_products_rows(q, X, order)
    ref = X[order].astype(np.float64) @ q.astype(np.float64)
    assert out.shape == (n,)
    if n:
        tol = tolerance(q[None], X[order])[0]
        np.testing.assert_array_less(np.abs(out - ref), tol)
        scalar = at_level("scalar", _nearly._inner_products_rows, q, X, order)
        np.testing.assert_array_less(np.abs(out - scalar), 2 * tol)
        np.testing.assert_array_equal(scalar, [at_level("scalar", _nearly.fvec_inner_product, q, X[r]) for r in order])


@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 100, 1024, 1031])
def test_select_within_kernel(level, n):
    """SuperKMeans's pair test: the same indexes and partial distances as
    the scalar reference (bit for bit) and as numpy, every tail length."""
    rng = np.random.default_rng(n + 7)
    ip = rng.standard_normal(n).astype(np.float32)
    yn = (rng.random(n) * 4).astype(np.float32)
    base = np.float32(1.5)
    for limit in (-np.inf, 0.0, 2.0, 4.0, np.inf):
        I, V = _nearly._select_within(ip, yn, base, limit)
        Is, Vs = at_level("scalar", _nearly._select_within, ip, yn, base, limit)
        np.testing.assert_array_equal(I, Is)
        np.testing.assert_array_equal(V, Vs)
        ref = (base + yn) - np.float32(2) * ip
        np.testing.assert_array_equal(I, np.nonzero(ref <= np.float32(limit))[0])
        np.testing.assert_array_equal(V, ref[I])
