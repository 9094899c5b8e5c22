"""SDC and Hamming kernels: every SIMD level against the scalar reference and
the numpy definition S = 2^(2u) <b_q, b_x> = sum_k L_q(k) L_x(k)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nearly
from nearly import _nearly

LEVELS = nearly.simd_levels_supported()


def levels_np(codes, m, nb):
    """Integer levels L(k) = sum_i 2^(u-i) s_i(k) of canonical codes (n, nb*m/8)."""
    codes = np.atleast_2d(codes)
    bits = np.unpackbits(codes, axis=1, bitorder="little").reshape(len(codes), nb, m).astype(np.int64)
    w = 2 ** np.arange(nb - 1, -1, -1)
    return ((2 * bits - 1) * w[None, :, None]).sum(1)


def sdc_np(q, x, m, nb):
    return levels_np(x, m, nb) @ levels_np(q, m, nb)[0]


def random_codes(rng, n, m, nb):
    return rng.integers(0, 256, size=(n, nb * m // 8), dtype=np.uint8)


@pytest.mark.parametrize("nb", [1, 2, 3, 4])
@pytest.mark.parametrize("m", [8, 16, 24, 64, 384, 520, 4096])
@pytest.mark.parametrize("n", [1, 31, 32, 33, 100])
def test_sdc_scan_exact(level, nb, m, n):
    rng = np.random.default_rng(m * 10 + nb + n)
    q = random_codes(rng, 1, m, nb)
    x = random_codes(rng, n, m, nb)
    ref = sdc_np(q, x, m, nb)
    np.testing.assert_array_equal(_nearly.sdc_score_ref(q, x, m, nb), ref)
    np.testing.assert_array_equal(nearly.sdc_scan(q, x, m, nb), ref)
    np.testing.assert_array_equal(nearly.sdc_scan(q, x, m, nb, popcount=True), ref)


@pytest.mark.parametrize("nb", [1, 2, 3, 4])
def test_sdc_extremes_need_32_bits(level, nb):
    """All planes equal: S = m (2^nb - 1)^2, beyond int16 for large m."""
    m = 8192
    for fill in (0, 255):
        q = np.full((1, nb * m // 8), fill, np.uint8)
        x = np.vstack([np.full((1, nb * m // 8), 0, np.uint8), np.full((1, nb * m // 8), 255, np.uint8)])
        M = 2 ** nb - 1
        want = np.array([m * M * M if fill == 0 else -m * M * M, -m * M * M if fill == 0 else m * M * M])
        np.testing.assert_array_equal(nearly.sdc_scan(q, x, m, nb), want)
        np.testing.assert_array_equal(nearly.sdc_scan(q, x, m, nb, popcount=True), want)


@settings(max_examples=40, deadline=None)
@given(nb=st.integers(1, 4), m8=st.integers(1, 40), n=st.integers(1, 70), seed=st.integers(0, 2**31))
def test_sdc_hypothesis(nb, m8, n, seed):
    m = 8 * m8
    rng = np.random.default_rng(seed)
    q, x = random_codes(rng, 1, m, nb), random_codes(rng, n, m, nb)
    ref = sdc_np(q, x, m, nb)
    before = nearly.simd_level()
    try:
        for lv in LEVELS:
            nearly.set_simd_level(lv)
            np.testing.assert_array_equal(nearly.sdc_scan(q, x, m, nb), ref)
            np.testing.assert_array_equal(nearly.sdc_scan(q, x, m, nb, popcount=True), ref)
    finally:
        nearly.set_simd_level(before)


def test_sdc_bad_input():
    rng = np.random.default_rng(0)
    q = random_codes(rng, 1, 64, 2)
    with pytest.raises(ValueError, match="bits_per_dim"):
        nearly.sdc_scan(q, q, 64, 5)
    with pytest.raises(ValueError, match="bits_per_dim"):
        nearly.sdc_scan(q, q, 64, 0)
    with pytest.raises(ValueError, match="multiple of 8"):
        nearly.sdc_scan(q, q, 60, 2)
    with pytest.raises(ValueError, match="code_size"):
        nearly.sdc_scan(q, random_codes(rng, 3, 64, 3), 64, 2)
    with pytest.raises(TypeError, match="uint8"):
        nearly.sdc_scan(q, q.astype(np.int32), 64, 2)


@pytest.mark.parametrize("cs", [1, 3, 8, 16, 32, 48, 63, 64, 65, 96, 128, 200])
@pytest.mark.parametrize("n", [1, 2, 7, 8, 17, 35])  # AVX-512 takes codes of 8 to 64 bytes eight at a time
def test_hamming_kernels(level, cs, n):
    rng = np.random.default_rng(cs * 31 + n)
    q = rng.integers(0, 256, cs, dtype=np.uint8)
    x = rng.integers(0, 256, (n, cs), dtype=np.uint8)
    ref = np.unpackbits(q[None] ^ x, axis=1).sum(1)
    np.testing.assert_array_equal(nearly.hamming_ny(q, x), ref)


@pytest.mark.parametrize("nb", [1, 2, 3, 4])
@pytest.mark.parametrize("nq", [1, 2, 3, 4, 5, 7, 16])
@pytest.mark.parametrize("m", [8, 24, 384, 4096])
def test_sdc_multi_query_exact(level, nb, nq, m):
    rng = np.random.default_rng(nb * 1000 + nq * 10 + m)
    q = random_codes(rng, nq, m, nb)
    x = random_codes(rng, 70, m, nb)
    ref = levels_np(q, m, nb) @ levels_np(x, m, nb).T
    np.testing.assert_array_equal(nearly.sdc_scan_multi(q, x, m, nb), ref)


@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 100])
def test_next_at_least(level, n):
    rng = np.random.default_rng(n)
    s = rng.integers(-50, 50, n).astype(np.int32)
    for smin in (-60, -10, 0, 30, 49, 60):
        want = [j for j in range(n) if s[j] >= smin]
        assert list(_nearly.sdc_candidates(s, smin)) == want


@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 100])
def test_next_at_least_with_offsets(level, n):
    rng = np.random.default_rng(n + 7)
    s = rng.integers(-50, 50, n).astype(np.int32)
    off = rng.integers(-20, 20, n).astype(np.int32)
    for smin in (-80, -10, 0, 30, 60, 80):
        want = [j for j in range(n) if s[j] + off[j] >= smin]
        assert list(_nearly.sdc_candidates(s, smin, off)) == want


def test_popcount_kernel_per_level(level):
    """The popcount path runs a vector kernel at every SIMD level that has one
    (the exactness tests above then check that kernel, not the fallback)."""
    name = _nearly.sdc_popcount_kernel()
    if level == "scalar":
        assert name == "scalar"
    elif level == "avx2":
        assert name == "avx2_pshufb"
    elif level == "avx512":
        assert name == ("avx512_bitalg" if nearly.sdc_popcount_native() else "avx2_pshufb")


@pytest.mark.parametrize("nb", [1, 2, 3, 4])
def test_popcount_avx2_extremes_every_chunk(nb):
    """Codes long enough for several 16-bit flushes, with maximal byte sums
    (every popcount 8): the AVX2 byte / 16-bit accumulation must not wrap."""
    if "avx2" not in LEVELS:
        pytest.skip("no AVX2")
    before = nearly.simd_level()
    nearly.set_simd_level("avx2")
    try:
        rng = np.random.default_rng(nb)
        m = 8 * 3001
        q = np.zeros((1, nb * m // 8), np.uint8)
        x = np.vstack([np.full((1, nb * m // 8), 255, np.uint8), random_codes(rng, 40, m, nb)])
        np.testing.assert_array_equal(nearly.sdc_scan(q, x, m, nb, popcount=True), sdc_np(q, x, m, nb))
    finally:
        nearly.set_simd_level(before)
