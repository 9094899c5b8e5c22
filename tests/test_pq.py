"""ProductQuantizer, IndexPQ and IndexIVFPQ without faiss: codes, tables and
ADC sums against numpy, the ADC kernel at every SIMD level against the scalar
reference, searches against brute force over the decoded vectors, bad input,
persistence and corrupt files, verbose output."""
import os
import pickle
import signal
import threading
import time

import numpy as np
import pytest

import nearly
from _testutil import METRIC_IP, METRIC_L2, randn


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def trained_pq(rng, d=32, M=8, nbits=8, n=3000):
    pq = nearly.ProductQuantizer(d, M, nbits)
    pq.cp.niter = 5
    x = randn(rng, n, d)
    pq.train(x)
    return pq, x


def nearest_codes(pq, x):
    """The centroid numbers by numpy brute force, (n, M)."""
    C = pq.centroids.reshape(pq.M, pq.ksub, pq.dsub).astype(np.float64)
    xs = x.reshape(len(x), pq.M, pq.dsub).astype(np.float64)
    dis = ((xs[:, :, None, :] - C[None]) ** 2).sum(-1)  # n, M, ksub
    return dis.argmin(-1)


def unpack(pq, codes):
    """faiss's bit strings: field m is bits m * nbits ... (m + 1) * nbits - 1,
    least significant first."""
    bits = np.unpackbits(codes, axis=1, bitorder="little")[:, :pq.M * pq.nbits]
    bits = bits.reshape(len(codes), pq.M, pq.nbits).astype(np.int64)
    return (bits << np.arange(pq.nbits)).sum(-1)


# ---- ProductQuantizer ------------------------------------------------------

def test_attributes_and_layout(rng):
    pq = nearly.ProductQuantizer(64, 16, 8)
    assert (pq.d, pq.M, pq.nbits, pq.dsub, pq.ksub, pq.code_size) == (64, 16, 8, 4, 256, 16)
    assert pq.centroids.shape == (16 * 256 * 4,) and pq.centroids.dtype == np.float32
    assert nearly.vector_to_array(pq.centroids).shape == (16 * 256 * 4,)
    pq4 = nearly.ProductQuantizer(64, 16, 4)
    assert (pq4.ksub, pq4.code_size) == (16, 8)
    assert pq.cp.niter == 25 and pq.cp.max_points_per_centroid == 256


@pytest.mark.parametrize("nbits", [8, 4, 1, 3, 6, 10])
def test_codes_decode_and_tables_match_numpy(rng, nbits):
    pq, x = trained_pq(rng, nbits=nbits)
    codes = pq.compute_codes(x[:500])
    assert codes.shape == (500, pq.code_size) and codes.dtype == np.uint8
    want = nearest_codes(pq, x[:500])
    got = unpack(pq, codes)
    assert (got == want).mean() > 0.999  # ties within float rounding may differ
    C = pq.centroids.reshape(pq.M, pq.ksub, pq.dsub)
    dec = pq.decode(codes)
    ref = np.concatenate([C[m][got[:, m]] for m in range(pq.M)], axis=1)
    np.testing.assert_array_equal(dec, ref)
    q = x[:3]
    tl2 = pq.compute_distance_tables(q)
    tip = pq.compute_inner_prod_tables(q)
    qs = q.reshape(3, pq.M, 1, pq.dsub).astype(np.float64)
    np.testing.assert_allclose(tl2, ((qs - C[None]) ** 2).sum(-1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tip, (qs * C[None]).sum(-1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("d, M, nbits", [(24, 3, 12), (16, 4, 16), (15, 5, 7), (12, 3, 2)])
def test_wide_and_odd_codes_pack_as_bit_strings(rng, d, M, nbits):
    """Codes of any width from assigned centroids (12 and 16 bits would need
    4,096 / 65,536 training points per subspace): the nearest centroid by
    numpy, packed least significant bit first into ceil(M * nbits / 8) bytes,
    the padding bits zero; the table scans of IndexPQ read them back."""
    pq = nearly.ProductQuantizer(d, M, nbits)
    assert (pq.ksub, pq.code_size) == (1 << nbits, (M * nbits + 7) // 8)
    pq.centroids = randn(rng, M * pq.ksub * pq.dsub, 1).ravel()
    x = randn(rng, 300, d)
    codes = pq.compute_codes(x)
    assert codes.shape == (300, pq.code_size)
    want = nearest_codes(pq, x)
    assert (unpack(pq, codes) == want).mean() > 0.999
    packed = np.zeros((300, pq.code_size), np.uint8)
    for i, row in enumerate(want):
        v = sum(int(c) << (m * nbits) for m, c in enumerate(row))
        packed[i] = np.frombuffer(v.to_bytes(pq.code_size, "little"), np.uint8)
    same = (unpack(pq, codes) == want).all(1)
    np.testing.assert_array_equal(codes[same], packed[same])
    C = pq.centroids.reshape(M, pq.ksub, pq.dsub)
    np.testing.assert_array_equal(pq.decode(packed), np.concatenate([C[m][want[:, m]] for m in range(M)], 1))
    # Tables (computed in column blocks of 1,024 words, a block for all
    # queries at once): numpy's values, and a query's table alone equal to
    # its table in a batch.
    q = x[:5]
    qs = q.reshape(5, M, 1, pq.dsub).astype(np.float64)
    for fn, ref in ((pq.compute_distance_tables, ((qs - C[None]) ** 2).sum(-1)),
                    (pq.compute_inner_prod_tables, (qs * C[None]).sum(-1))):
        t = fn(q)
        np.testing.assert_allclose(t, ref, rtol=1e-5, atol=1e-4)
        np.testing.assert_array_equal(fn(q[3:4])[0], t[3])
    index = nearly.IndexPQ(d, M, nbits, METRIC_L2)
    index.pq.centroids = pq.centroids
    index.is_trained = True
    index.add(x)
    np.testing.assert_array_equal(index.codes.reshape(300, -1), codes)
    D, I = index.search(x[:10], 5)
    dec = pq.decode(codes).astype(np.float64)
    ref = ((x[:10, None, :] - dec[None]) ** 2).sum(-1)
    np.testing.assert_allclose(D, np.sort(ref, 1)[:, :5], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.take_along_axis(ref, I, 1), D, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("nbits", list(range(1, 17)))
def test_adc_scan_equals_its_reference_every_width(rng, nbits):
    """The scan (four codes side by side, 8-byte field loads, the last codes
    byte by byte) against the one-field-at-a-time reference: bit-equal
    sums, for code counts around the fast/safe boundary and odd M."""
    for M in (1, 3, 7):
        pq = nearly.ProductQuantizer(M * 2, M, nbits)
        tab = randn(rng, M * pq.ksub, 1).ravel()
        for n in (0, 1, 3, 4, 5, 9, 33):
            codes = rng.integers(0, 256, (n, pq.code_size), dtype=np.uint8)
            got, ref = pq._adc(tab, codes), pq._adc(tab, codes, reference=True)
            np.testing.assert_array_equal(got, ref)
            fields = unpack(pq, codes) if n else np.zeros((0, M), np.int64)
            want = np.array([sum(np.float32(tab[m * pq.ksub + f[m]]) for m in range(M)) for f in fields], np.float32)
            np.testing.assert_allclose(ref, want.reshape(-1), rtol=1e-5, atol=1e-5)


def test_is_trained_by_hand_needs_finite_centroids():
    index = nearly.IndexPQ(16, 4, 6)
    c = np.ones(16 * 64, np.float32)
    c[5] = np.nan
    index.pq.centroids = c
    with pytest.raises(ValueError):
        index.is_trained = True
    assert not index.is_trained
    c[5] = 0
    index.pq.centroids = c
    index.is_trained = True
    assert index.is_trained


def test_nbits_limits():
    with pytest.raises(RuntimeError, match="not implemented"):
        nearly.ProductQuantizer(16, 4, 17)
    with pytest.raises(RuntimeError, match="not practical"):
        nearly.ProductQuantizer(16, 4, 25)
    with pytest.raises(ValueError):
        nearly.ProductQuantizer(16, 4, 0)
    with pytest.raises(RuntimeError, match="not implemented"):
        nearly.IndexIVFPQ(nearly.IndexFlatL2(16), 16, 4, 4, 17)


def test_centroids_can_be_assigned(rng):
    pq, x = trained_pq(rng)
    other = nearly.ProductQuantizer(pq.d, pq.M, 8)
    other.centroids = pq.centroids
    np.testing.assert_array_equal(other.compute_codes(x[:50]), pq.compute_codes(x[:50]))
    with pytest.raises(ValueError):
        other.centroids = np.zeros(5, dtype=np.float32)


def _adc_case(M, n):
    rng = np.random.default_rng(M * 1000 + n)
    return rng.standard_normal((M, 256)).astype(np.float32), rng.integers(0, 256, (n, M), dtype=np.uint8)


def _adc_scalar(tab, codes):
    before = nearly.simd_level()
    nearly.set_simd_level("scalar")
    try:
        return nearly.pq_adc_scan(tab, codes)
    finally:
        nearly.set_simd_level(before)


ADC_M = [1, 3, 4, 5, 6, 7, 8, 48, 50]
ADC_N = [0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 100]


@pytest.mark.parametrize("M", ADC_M)
@pytest.mark.parametrize("n", ADC_N)
def test_adc_kernel_every_level_equals_scalar(level, M, n):
    tab, codes = _adc_case(M, n)
    got = nearly.pq_adc_scan(tab, codes)
    np.testing.assert_array_equal(got, _adc_scalar(tab, codes))  # only additions, in the same order: same bits
    exact = tab.astype(np.float64)[np.arange(M)[None, :], codes.astype(np.int64)].sum(1)
    np.testing.assert_allclose(got, exact, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("ip", [False, True], ids=["L2", "IP"])
@pytest.mark.parametrize("dsub", [1, 2, 3, 4, 5, 8, 12, 16, 17, 24])
@pytest.mark.parametrize("M", [1, 2, 3, 48])
def test_sdc_kernel_every_level_matches_float64(level, M, dsub, ip):
    """The code to code kernel (HNSWPQ's pruning) against a float64 reference
    at every level; the vector levels split dsub into 8-, 4- and 1-float
    steps, so widths that are not multiples of 8 take every path."""
    rng = np.random.default_rng(M * 100 + dsub)
    C = rng.standard_normal((M, 256, dsub)).astype(np.float32)
    a, b = rng.integers(0, 256, (2, 40, M), dtype=np.uint8)
    a[0] = b[0]  # a code against itself: L2 exactly 0
    got = nearly.pq_sdc_scores(C, a, b, ip=ip)
    x = C.astype(np.float64)[np.arange(M)[None, :], a.astype(np.int64)]
    y = C.astype(np.float64)[np.arange(M)[None, :], b.astype(np.int64)]
    want = (x * y).sum((1, 2)) if ip else ((x - y) ** 2).sum((1, 2))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    if not ip:
        assert got[0] == 0.0
    with pytest.raises(ValueError):
        nearly.pq_sdc_scores(C, a[:, :M - 1] if M > 1 else a[:0], b)


@pytest.mark.skipif("avx512" not in nearly.simd_levels_supported(), reason="needs AVX-512")
@pytest.mark.parametrize("M", ADC_M)
@pytest.mark.parametrize("n", ADC_N)
def test_adc_gather_kernel_equals_scalar(M, n):
    """The AVX-512 level picks gathers or plain loads by timing both; each must give the scalar bits."""
    tab, codes = _adc_case(M, n)
    before = nearly.simd_level()
    nearly.set_simd_level("avx512")
    try:
        got = nearly.pq_adc_scan(tab, codes, gathers=True)
    finally:
        nearly.set_simd_level(before)
    np.testing.assert_array_equal(got, _adc_scalar(tab, codes))


@pytest.mark.parametrize("d", [1, 2, 8, 16])
@pytest.mark.parametrize("k", [1, 5, 8, 16, 17, 40, 100, 256, 1024])
def test_nearest_transposed_every_level_equals_scalar(level, d, k):
    rng = np.random.default_rng(d * 1000 + k)
    x = rng.standard_normal((50, d)).astype(np.float32)
    c = rng.standard_normal((k, d)).astype(np.float32)
    c[k // 2] = c[0]  # a tie: the first index must win at every level
    x[0] = c[0]
    norms = (c.astype(np.float64) ** 2).sum(1).astype(np.float32)
    ct = np.ascontiguousarray(c.T)
    idx, s = nearly.nearest_transposed(x, ct, norms)
    before = nearly.simd_level()
    nearly.set_simd_level("scalar")
    try:
        ridx, rs = nearly.nearest_transposed(x, ct, norms)
        zidx, zs = nearly.nearest_transposed(x, ct, np.zeros(k, np.float32))
    finally:
        nearly.set_simd_level(before)
    np.testing.assert_array_equal(idx, ridx)
    np.testing.assert_array_equal(s, rs)
    assert idx[0] == 0
    ref = ((x[:, None, :].astype(np.float64) - c[None]) ** 2).sum(-1)
    best = ref.min(1)
    assert (ref[np.arange(50), idx] <= best + 1e-4 * (1 + best)).all()
    iz, sz = nearly.nearest_transposed(x, ct, np.zeros(k, np.float32))
    np.testing.assert_array_equal(iz, zidx)
    ip = x.astype(np.float64) @ c.T.astype(np.float64)
    assert (ip[np.arange(50), iz] >= ip.max(1) - 1e-4 * (1 + np.abs(ip).max(1))).all()


# ---- bad input --------------------------------------------------------------

def test_bad_parameters_raise():
    with pytest.raises(RuntimeError, match="multiple of the number of subquantizers"):
        nearly.ProductQuantizer(30, 8, 8)
    with pytest.raises(RuntimeError, match="not implemented"):
        nearly.ProductQuantizer(32, 8, 20)
    with pytest.raises(RuntimeError, match="multiple of the number of subquantizers"):
        nearly.IndexPQ(30, 8, 8)
    with pytest.raises(RuntimeError, match="not implemented"):
        nearly.IndexIVFPQ(nearly.IndexFlatL2(32), 32, 16, 8, 18)
    with pytest.raises(ValueError):
        nearly.IndexPQ(32, 0, 8)


def test_too_few_points_and_nan_raise(rng):
    pq = nearly.ProductQuantizer(16, 4, 8)
    with pytest.raises(RuntimeError, match=r"Number of training points \(100\) should be at least as large as "
                                           r"number of clusters \(256\)"):
        pq.train(randn(rng, 100, 16))
    x = randn(rng, 1000, 16)
    x[5, 3] = np.nan
    with pytest.raises(ValueError):
        pq.train(x)
    index = nearly.IndexIVFPQ(nearly.IndexFlatL2(16), 16, 4, 4, 8)
    with pytest.raises(ValueError):
        index.train(x)
    with pytest.raises(ValueError):
        nearly.IndexPQ(16, 4, 8).train(x)


def test_untrained_use_raises(rng):
    x = randn(rng, 10, 16)
    for index in (nearly.IndexPQ(16, 4, 8), nearly.IndexIVFPQ(nearly.IndexFlatL2(16), 16, 4, 4, 8)):
        assert not index.is_trained
        with pytest.raises(RuntimeError, match="is_trained"):
            index.add(x)
        with pytest.raises(RuntimeError, match="is_trained"):
            index.search(x, 1)
    # A trained quantizer alone does not make an IVFPQ trained: the PQ is not.
    q = nearly.IndexFlatL2(16)
    q.add(randn(rng, 4, 16))
    assert not nearly.IndexIVFPQ(q, 16, 4, 4, 8).is_trained


def test_wrong_shapes_raise(rng):
    pq, x = trained_pq(rng)
    with pytest.raises(ValueError):
        pq.compute_codes(x[:, :5])
    with pytest.raises(ValueError):
        pq.decode(np.zeros((3, pq.code_size + 1), dtype=np.uint8))


# ---- IndexPQ ----------------------------------------------------------------

@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP], ids=["L2", "IP"])
@pytest.mark.parametrize("nbits", [8, 4, 5, 10])
def test_index_pq_is_exact_over_decoded_vectors(rng, metric, nbits):
    d, M = 32, 8
    x = randn(rng, 3000, d)
    index = nearly.IndexPQ(d, M, nbits, metric)
    index.pq.cp.niter = 5
    index.train(x)
    index.add(x[:1500])
    assert index.ntotal == 1500 and index.code_size == index.pq.code_size
    dec = index.pq.decode(index.codes.reshape(1500, -1)).astype(np.float64)
    xq = randn(rng, 20, d)
    D, I = index.search(xq, 10)
    ref = ((xq[:, None, :] - dec[None]) ** 2).sum(-1) if metric == METRIC_L2 else xq @ dec.T
    order = np.argsort(ref if metric == METRIC_L2 else -ref, axis=1, kind="stable")[:, :10]
    np.testing.assert_allclose(D, np.take_along_axis(ref, order, 1), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.take_along_axis(ref, I, 1), D, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(index.reconstruct(3), dec[3], rtol=0, atol=0)


def test_index_pq_selector_remove_reset(rng):
    d = 16
    x = randn(rng, 1000, d)
    index = nearly.IndexPQ(d, 4, 8)
    index.pq.cp.niter = 3
    index.train(x)
    index.add(x)
    params = nearly.SearchParameters(sel=nearly.IDSelectorRange(100, 200))
    D, I = index.search(x[:5], 5, params=params)
    assert ((I >= 100) & (I < 200)).all()
    D, I = index.search(x[:2], 2000)
    assert (I[:, 1000:] == -1).all() and (D[:, 1000:] == np.finfo(np.float32).max).all()
    codes = index.codes.reshape(1000, -1)
    assert index.remove_ids(nearly.IDSelectorRange(0, 500)) == 500
    assert index.ntotal == 500
    np.testing.assert_array_equal(index.codes.reshape(500, -1), codes[500:])  # renumbered, like faiss
    index.reset()
    assert index.ntotal == 0 and index.is_trained


# ---- IndexIVFPQ -------------------------------------------------------------

def ivfpq(d=32, nlist=16, M=8, metric=METRIC_L2):
    q = nearly.IndexFlatL2(d) if metric == METRIC_L2 else nearly.IndexFlatIP(d)
    index = nearly.IndexIVFPQ(q, d, nlist, M, 8, metric)
    index.cp.niter = 5
    index.pq.cp.niter = 5
    return index


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP], ids=["L2", "IP"])
@pytest.mark.parametrize("precomputed", [0, -1])
def test_ivfpq_all_lists_is_exact_over_decoded_vectors(rng, metric, precomputed):
    d = 32
    x = randn(rng, 4000, d)
    index = ivfpq(d, 16, 8, metric)
    index.use_precomputed_table = precomputed
    index.train(x)
    assert index.is_trained and index.by_residual and index.code_size == 8
    assert index.use_precomputed_table == (1 if metric == METRIC_L2 and precomputed == 0 else precomputed)
    index.add(x[:2000])
    index.make_direct_map()
    dec = np.stack([index.reconstruct(i) for i in range(2000)]).astype(np.float64)
    index.nprobe = 16
    xq = randn(rng, 20, d)
    D, I = index.search(xq, 10)
    ref = ((xq[:, None, :] - dec[None]) ** 2).sum(-1) if metric == METRIC_L2 else xq @ dec.T
    np.testing.assert_allclose(np.take_along_axis(ref, I, 1), D, rtol=1e-4, atol=1e-4)
    order = np.argsort(ref if metric == METRIC_L2 else -ref, axis=1)[:, :10]
    np.testing.assert_allclose(D, np.take_along_axis(ref, order, 1), rtol=1e-4, atol=1e-4)
    # range search agrees with the k-NN scores
    radius = float(np.median(D[:, -1]))
    lims, RD, RI = index.range_search(xq, radius)
    for q in range(len(xq)):
        want = set(np.nonzero(ref[q] < radius if metric == METRIC_L2 else ref[q] > radius)[0])
        got = set(RI[lims[q]:lims[q + 1]])
        assert len(got ^ want) <= 1  # a score within rounding of the radius may fall either way


def test_ivfpq_ids_remove_params_lists(rng):
    d = 32
    x = randn(rng, 3000, d)
    index = ivfpq(d)
    index.train(x)
    ids = np.arange(3000, dtype=np.int64) * 7 + 11
    index.add_with_ids(x, ids)
    assert index.ntotal == 3000
    sizes = [index.invlists.list_size(l) for l in range(16)]
    assert sum(sizes) == 3000 and index.invlists.code_size == 8
    assert index.invlists.get_codes(0).shape == (sizes[0] * 8,)
    D, I = index.search(x[:10], 5, params=nearly.SearchParametersIVF(nprobe=16))
    assert np.isin(I, ids).all() and (I[:, 0] == ids[:10]).mean() >= 0.8
    assert index.remove_ids(nearly.IDSelectorBatch(ids[:1000])) == 1000
    D, I = index.search(x[:10], 5, params=nearly.SearchParametersIVF(nprobe=16))
    assert not np.isin(I, ids[:1000]).any()
    params = nearly.SearchParametersIVF(nprobe=16, sel=nearly.IDSelectorBatch(ids[2000:2100]))
    D, I = index.search(x[:5], 5, params=params)
    assert np.isin(I[I >= 0], ids[2000:2100]).all()
    index.nprobe = 1000  # clipped to nlist like faiss
    index.search(x[:2], 3)
    with pytest.raises(RuntimeError, match="by_residual"):
        index.by_residual = False


def test_ivfpq_rebuilt_from_lists_and_codebook(rng):
    """What the GPU copy-back does: a new index with the same quantizer gets
    the codebook and every list's codes and ids, and searches the same."""
    d = 32
    x = randn(rng, 3000, d)
    for metric in (METRIC_L2, METRIC_IP):
        a = ivfpq(d, 16, 8, metric)
        a.train(x)
        a.add(x)
        a.nprobe = 4
        b = nearly.IndexIVFPQ(a.quantizer, d, 16, 8, 8, metric)
        assert not b.is_trained
        b.set_pq_centroids(a.pq.centroids)
        assert b.is_trained and b.use_precomputed_table == a.use_precomputed_table
        for l in range(16):
            b.add_entries(l, a.invlists.get_codes(l), a.list_ids(l))
        assert b.ntotal == 3000
        b.nprobe = 4
        Da, Ia = a.search(x[:20], 5)
        Db, Ib = b.search(x[:20], 5)
        np.testing.assert_array_equal(Ia, Ib)
        np.testing.assert_array_equal(Da, Db)


def test_ivfpq_by_residual_changed_after_training(rng):
    """faiss lets by_residual change on a trained, empty index (its codes
    then follow the new setting, the precomputed table too); once codes
    are stored it is refused, since they would be read the other way."""
    d = 32
    x = randn(rng, 3000, d)
    for metric in (METRIC_L2, METRIC_IP):
        a = ivfpq(d, 16, 8, metric)
        a.train(x)
        b = nearly.IndexIVFPQ(a.quantizer, d, 16, 8, 8, metric)
        b.by_residual = False
        b.set_pq_centroids(a.pq.centroids)  # the residual-trained codebook, coding raw vectors
        a.by_residual = False
        assert not a.by_residual and a.is_trained
        for index in (a, b):
            index.add(x)
            index.nprobe = 4
        for u, v in zip(a.search(x[:20], 5), b.search(x[:20], 5)):
            np.testing.assert_array_equal(u, v)
        with pytest.raises(RuntimeError, match="by_residual"):
            a.by_residual = True
        a.by_residual = False  # no change: fine
        a.reset()
        a.by_residual = True  # empty again
        a.add(x)
        ref = ivfpq(d, 16, 8, metric)
        ref.train(x)
        ref.add(x)
        ref.nprobe = a.nprobe = 4
        for u, v in zip(a.search(x[:20], 5), ref.search(x[:20], 5)):
            np.testing.assert_array_equal(u, v)


def test_ivfpq_not_by_residual(rng):
    d = 32
    x = randn(rng, 3000, d)
    index = ivfpq(d)
    index.by_residual = False
    index.train(x)
    index.add(x)
    index.nprobe = 16
    D, I = index.search(x[:20], 1)
    assert (I[:, 0] == np.arange(20)).mean() >= 0.8


@pytest.mark.parametrize("factory,cls,attrs", [
    ("PQ8", "IndexPQ", {"code_size": 8}),
    ("PQ8x8", "IndexPQ", {"code_size": 8}),
    ("PQ8x4", "IndexPQ", {"code_size": 4}),
    ("IVF16,PQ8", "IndexIVFPQ", {"code_size": 8, "nlist": 16}),
    ("IVF16,PQ8x8", "IndexIVFPQ", {"code_size": 8, "nlist": 16}),
])
def test_factory(factory, cls, attrs):
    index = nearly.index_factory(32, factory)
    assert type(index).__name__ == cls
    for k, v in attrs.items():
        assert getattr(index, k) == v


def test_factory_refine_over_ivfpq(rng):
    x = randn(rng, 3000, 32)
    index = nearly.index_factory(32, "IVF16,PQ8,RFlat")
    assert type(index).__name__ == "IndexRefineFlat"
    nearly.extract_index_ivf(index).cp.niter = 5
    index.train(x)
    index.add(x)
    nearly.extract_index_ivf(index).nprobe = 16
    index.k_factor = 4
    D, I = index.search(x[:20], 5)
    assert (I[:, 0] == np.arange(20)).all()
    np.testing.assert_allclose(D[:, 0], 0, atol=1e-4)


# ---- persistence ------------------------------------------------------------

def built_indexes(rng):
    x = randn(rng, 3000, 32)
    out = []
    for metric in (METRIC_L2, METRIC_IP):
        a = ivfpq(32, 16, 8, metric)
        a.train(x)
        a.add(x)
        a.nprobe = 4
        a.make_direct_map()
        b = nearly.IndexPQ(32, 8, 8, metric)
        b.pq.cp.niter = 3
        b.train(x)
        b.add(x)
        out += [a, b]
    return out, x


def test_persistence_round_trip(rng, tmp_path):
    indexes, x = built_indexes(rng)
    for i, index in enumerate(indexes):
        D, I = index.search(x[:20], 5)
        path = str(tmp_path / f"{i}.idx")
        nearly.write_index(index, path)
        for c in (nearly.read_index(path), pickle.loads(pickle.dumps(index)),
                  nearly.deserialize_index(nearly.serialize_index(index))):
            assert type(c) is type(index)
            assert (c.ntotal, c.metric_type, c.is_trained, c.code_size) == (index.ntotal, index.metric_type, True,
                                                                             index.code_size)
            np.testing.assert_array_equal(c.pq.centroids, index.pq.centroids)
            D2, I2 = c.search(x[:20], 5)
            np.testing.assert_array_equal(I, I2)
            np.testing.assert_array_equal(D, D2)
        if isinstance(index, nearly.IndexIVFPQ):
            assert c.nprobe == 4 and c.has_direct_map() and c.use_precomputed_table == index.use_precomputed_table
            np.testing.assert_array_equal(c.reconstruct(5), index.reconstruct(5))


def test_untrained_round_trip():
    for index in (nearly.IndexPQ(16, 4, 8), nearly.IndexIVFPQ(nearly.IndexFlatL2(16), 16, 4, 4, 8)):
        c = nearly.deserialize_index(nearly.serialize_index(index))
        assert type(c) is type(index) and not c.is_trained


def test_corrupt_files_raise(rng):
    indexes, _ = built_indexes(rng)
    for index in indexes:
        data = nearly.serialize_index(index)
        with pytest.raises(nearly.IndexFileError):
            nearly.deserialize_index(data[: len(data) // 2])
        bad = data.copy()
        bad[len(bad) // 2] ^= 0x40
        with pytest.raises(nearly.IndexFileError):
            nearly.deserialize_index(bad)


# ---- verbose, Ctrl-C, concurrency -----------------------------------------

def test_verbose_training(rng, capfd):
    x = randn(rng, 2000, 16)
    index = ivfpq(16, 8, 4)
    index.verbose = True
    index.train(x)
    index.add(x)
    out = capfd.readouterr().out
    assert "Training level-1 quantizer" in out
    assert "Training IVF residual" in out
    assert "Training PQ slice 0/4" in out and "Training PQ slice 3/4" in out
    assert "IndexIVFPQ::add_core: added 2000 / 2000 vectors" in out


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name != "posix", reason="needs POSIX signals")
def test_ctrl_c_interrupts_pq_training():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200_000, 64)).astype(np.float32)
    index = nearly.IndexPQ(64, 64, 8)
    index.pq.cp.niter = 1000  # minutes uninterrupted
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    t0 = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        index.train(x)
    elapsed = time.perf_counter() - t0
    timer.cancel()
    assert elapsed < 20, f"the interrupt took {elapsed:.1f}s to land"
    assert not index.is_trained


def test_searches_during_adds(rng):
    x = randn(rng, 6000, 32)
    index = ivfpq(32)
    index.train(x[:3000])
    index.add(x[:1000])
    index.nprobe = 4
    errors = []

    def searcher():
        try:
            for _ in range(20):
                D, I = index.search(x[:50], 5)
                assert (I >= -1).all() and (I < 6000).all()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    t = threading.Thread(target=searcher)
    t.start()
    for i in range(1000, 6000, 1000):
        index.add(x[i:i + 1000])
    t.join()
    assert not errors and index.ntotal == 6000


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP])
@pytest.mark.parametrize("by_residual", [True, False])
def test_ivfpq_batch_tables_equal_one_query_tables(metric, by_residual):
    """A search's scanners compute their queries' tables four at a time
    (subspace by subspace); 13 queries (three groups and a partial one) give
    what each query alone gives, and the batched tables equal one-query
    tables bit for bit."""
    rng = np.random.default_rng(31)
    d, M = 32, 8
    x = rng.standard_normal((3000, d)).astype(np.float32)
    xq = rng.standard_normal((13, d)).astype(np.float32)
    index = nearly.IndexIVFPQ(nearly.IndexFlat(d, metric), d, 16, M, 8, metric)
    index.by_residual = by_residual
    index.train(x)
    index.add(x)
    index.nprobe = 5
    D, I = index.search(xq, 10)
    for q in range(len(xq)):
        Dq, Iq = index.search(xq[q:q + 1], 10)
        np.testing.assert_array_equal(I[q], Iq[0])
        if by_residual:  # a batch's coarse distances (matrix multiply) may differ from one query's in the last bit
            np.testing.assert_allclose(D[q], Dq[0], rtol=1e-6)
        else:
            np.testing.assert_array_equal(D[q], Dq[0])
    tabs = index.pq.compute_inner_prod_tables(xq) if metric == METRIC_IP else index.pq.compute_distance_tables(xq)
    for q in range(len(xq)):
        one = (index.pq.compute_inner_prod_tables if metric == METRIC_IP else index.pq.compute_distance_tables)(xq[q:q + 1])
        np.testing.assert_array_equal(tabs[q], one[0])
