"""4-bit PQ fast-scan: the block kernels at every SIMD level against numpy,
the table quantization, and IndexPQFastScan / IndexIVFPQFastScan against a
numpy scan of the same quantized tables (exact: the sums are integers)."""
import pickle

import numpy as np
import pytest

import nearly
from nearly import _nearly
from _testutil import METRIC_IP, METRIC_L2, randn

LEVELS = nearly.simd_levels_supported()


def block_sums(codes, lut):
    """Reference sums of (nblocks, npairs * 32) codes, modulo 2^16."""
    npairs = lut.shape[0] // 2
    lut = lut.astype(np.int64)
    out = np.zeros((codes.shape[0], 32), np.int64)
    for p in range(npairs):
        c = codes[:, p * 32:(p + 1) * 32]
        out += lut[2 * p][c & 15] + lut[2 * p + 1][c >> 4]
    return out % 65536


@pytest.mark.parametrize("npairs", [1, 2, 3, 5, 24, 48, 129, 300])
@pytest.mark.parametrize("thr", [0, 700, 9000, 65535])
def test_scan_block_matches_numpy(level, npairs, thr):
    rng = np.random.default_rng(npairs * 7 + thr)
    lut = rng.integers(0, 256, (2 * npairs, 16), dtype=np.uint8)
    codes = rng.integers(0, 256, (9, npairs * 32), dtype=np.uint8)
    sums, masks = _nearly.pq4_scan_blocks(codes, lut, thr)
    ref = block_sums(codes, lut)
    np.testing.assert_array_equal(sums, ref)  # 300 pairs wrap modulo 2^16: checked too
    ref_masks = ((ref <= thr) * (1 << np.arange(32, dtype=np.int64))).sum(1)
    np.testing.assert_array_equal(masks.astype(np.int64), ref_masks)


@pytest.mark.parametrize("nq", [2, 3, 4, 5, 9])
@pytest.mark.parametrize("npairs", [1, 3, 24, 129])
def test_scan_block_several_queries_matches_numpy(level, nq, npairs):
    """Queries scanned together (one load of the codes, each its own table
    and threshold) give each query's own sums and mask."""
    rng = np.random.default_rng(nq * 100 + npairs)
    luts = rng.integers(0, 256, (nq, 2 * npairs, 16), dtype=np.uint8)
    codes = rng.integers(0, 256, (5, npairs * 32), dtype=np.uint8)
    thr = rng.integers(0, min(65536, 256 * 2 * npairs), nq)
    sums, masks = _nearly.pq4_scan_blocks(codes, luts, thr)
    assert sums.shape == (nq, 5, 32) and masks.shape == (nq, 5)
    for q in range(nq):
        ref = block_sums(codes, luts[q])
        np.testing.assert_array_equal(sums[q], ref)
        ref_masks = ((ref <= thr[q]) * (1 << np.arange(32, dtype=np.int64))).sum(1)
        np.testing.assert_array_equal(masks[q].astype(np.int64), ref_masks)


def tail_sums(codes, lut, mult):
    """block_sums with the last len(mult) pairs' lookups multiplied (PQ4Tail)."""
    npairs, ntail = lut.shape[0] // 2, len(mult)
    lut = lut.astype(np.int64)
    out = np.zeros((codes.shape[0], 32), np.int64)
    for p in range(npairs):
        c = codes[:, p * 32:(p + 1) * 32]
        m = mult[p - (npairs - ntail)] if p >= npairs - ntail else (1, 1)
        out += lut[2 * p][c & 15] * m[0] + lut[2 * p + 1][c >> 4] * m[1]
    return out % 65536


TAILS = {"one": [(3, 3)], "two": [(1, 2), (2, 2)], "mixed": [(7, 1), (1, 255)]}


@pytest.mark.parametrize("npairs,tail", [(n, t) for n in (1, 2, 3, 4, 5, 24, 129) for t in TAILS
                                         if len(TAILS[t]) <= n])
@pytest.mark.parametrize("nq", [1, 3, 5])
def test_scan_block_tail_matches_numpy(level, npairs, tail, nq):
    """The multiplied tail pairs (norm_scale) at every level, with the main
    pairs grouped or not around them (AVX-512 takes two at a time), sums
    that wrap included."""
    mult = TAILS[tail]
    rng = np.random.default_rng(npairs * 13 + len(mult) * 5 + nq)
    luts = rng.integers(0, 256, (nq, 2 * npairs, 16), dtype=np.uint8)
    codes = rng.integers(0, 256, (6, npairs * 32), dtype=np.uint8)
    thr = rng.integers(0, 65536, nq)
    sums, masks = _nearly.pq4_scan_blocks(codes, luts, thr, tail=np.array(mult))
    for q in range(nq):
        ref = tail_sums(codes, luts[q], mult)
        np.testing.assert_array_equal(sums[q], ref)
        ref_masks = ((ref <= thr[q]) * (1 << np.arange(32, dtype=np.int64))).sum(1)
        np.testing.assert_array_equal(masks[q].astype(np.int64), ref_masks)


def test_scan_block_tail_refusals():
    lut = np.zeros((4, 16), np.uint8)
    codes = np.zeros((1, 64), np.uint8)
    for bad in ([(1, 1)] * 3, [(0, 1)], [(1, 256)], np.zeros((1, 3))):
        with pytest.raises(ValueError):
            _nearly.pq4_scan_blocks(codes, lut, 65535, tail=np.array(bad))


def test_scan_block_extremes(level):
    npairs = 4
    for fill in (0, 255):
        lut = np.full((2 * npairs, 16), fill, np.uint8)
        codes = np.random.default_rng(1).integers(0, 256, (2, npairs * 32), dtype=np.uint8)
        sums, masks = _nearly.pq4_scan_blocks(codes, lut, 65535)
        assert (sums == fill * 2 * npairs).all()
        assert (masks == 0xFFFFFFFF).all()


@pytest.mark.parametrize("M", [3, 4, 8, 9, 18])
def test_quantize_table_scaled_tail(M):
    """Tables from scaled_from on are quantized table_scale times coarser:
    their bytes times the scale (the tail's multipliers) stand for the same
    values, the other tables get the finer step, and the bias is unchanged."""
    rng = np.random.default_rng(M)
    tab = rng.standard_normal((M, 16)).astype(np.float32)
    tab[M - 2:] *= 6  # the wide norm tables
    q1, bias1, scale1, mult1 = _nearly.pq4_quantize_table(tab)
    assert mult1.shape == (0, 2)
    q, bias, scale, mult = _nearly.pq4_quantize_table(tab, scaled_from=M - 2, table_scale=4)
    assert np.isclose(bias, bias1, rtol=1e-6, atol=1e-5) and scale > 2 * scale1
    # multipliers per nibble: 4 on tables M-2, M-1 (and the zero padding table)
    per_table = np.ones(q.shape[0], np.int64)
    per_table[q.shape[0] - 2 * len(mult):] = np.asarray(mult).ravel()
    assert (per_table[M - 2:M] == 4).all() and (per_table[:M - 2] == 1).all()
    recon = tab.min(1, keepdims=True) + q[:M].astype(np.float64) * per_table[:M, None] / scale
    step = np.where(np.arange(M) >= M - 2, 4, 1) / scale
    assert (np.abs(recon - tab) <= step[:, None] * 0.5 + 1e-5).all()
    if M >= 6:
        with pytest.raises(ValueError):
            _nearly.pq4_quantize_table(tab, scaled_from=0, table_scale=4)  # more than the last four tables


def test_quantize_table():
    rng = np.random.default_rng(3)
    for M in (1, 7, 48, 300):
        tab = rng.standard_normal((M, 16)).astype(np.float32)
        tab[0] *= 10  # one wide table sets the scale
        q, bias, scale, _ = _nearly.pq4_quantize_table(tab)
        assert q.shape == ((M + 1) // 2 * 2, 16)
        if M % 2:
            assert (q[M] == 0).all()  # padding table adds nothing
        q = q[:M].astype(np.float64)
        assert q.max() <= 255
        assert np.isclose(bias, tab.min(1).sum(), rtol=1e-5, atol=1e-5)
        recon = tab.min(1, keepdims=True) + q / scale
        assert np.abs(recon - tab).max() <= 0.5 / scale * 1.001 + 1e-6
        assert q.max(1).sum() <= 65535  # the largest possible sum fits 16 bits


def quantized_scores(pq, xq, codes, metric):
    """numpy scan: lower-is-better scores from the library's own quantized tables."""
    M = pq.M
    tabs = pq.compute_inner_prod_tables(xq) if metric == METRIC_IP else pq.compute_distance_tables(xq)
    if metric == METRIC_IP:
        tabs = -tabs
    sub = np.empty((codes.shape[0], M), np.int64)
    for m in range(M):
        byte = codes[:, m // 2]
        sub[:, m] = (byte >> 4) if m % 2 else (byte & 15)
    out = np.empty((len(xq), codes.shape[0]))
    for q in range(len(xq)):
        b, bias, scale, _ = _nearly.pq4_quantize_table(tabs[q])
        s = b[:M].astype(np.int64)[np.arange(M), sub].sum(1)
        out[q] = np.float32(bias) + s.astype(np.float32) * (np.float32(1) / np.float32(scale))
    return out


def topk(scores, k, ids):
    I = np.array([ids[np.lexsort((ids, row))[:k]] for row in scores])
    return I


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP])
@pytest.mark.parametrize("M", [8, 7])
def test_pq_fast_scan_equals_numpy_scan(level, metric, M):
    rng = np.random.default_rng(M)
    d = 8 * M // M * M if M == 8 else 28
    x = randn(rng, 3000, d)
    xq = randn(rng, 13, d)
    index = nearly.IndexPQFastScan(d, M, 4, metric)
    index.train(x)
    index.add(x[:1001])  # a partial last block
    index.add(x[1001:])
    D, I = index.search(xq, 10)
    codes = index.pq.compute_codes(x)
    scores = quantized_scores(index.pq, xq, codes, metric)
    ref = topk(scores, 10, np.arange(len(x)))
    np.testing.assert_array_equal(I, ref)
    want = np.take_along_axis(scores, ref, 1)
    np.testing.assert_allclose(D, -want if metric == METRIC_IP else want, rtol=1e-5, atol=1e-5)
    assert D.dtype == np.float32 and I.dtype == np.int64


def test_pq_fast_scan_same_at_every_level():
    rng = np.random.default_rng(5)
    x = randn(rng, 2000, 64)
    xq = randn(rng, 20, 64)
    index = nearly.IndexPQFastScan(64, 16, 4, METRIC_IP)
    index.train(x)
    index.add(x)
    before = nearly.simd_level()
    out = []
    try:
        for lvl in LEVELS:
            nearly.set_simd_level(lvl)
            out.append(index.search(xq, 25))
    finally:
        nearly.set_simd_level(before)
    for D, I in out[1:]:
        np.testing.assert_array_equal(I, out[0][1])
        np.testing.assert_array_equal(D, out[0][0])


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP])
def test_ivf_fast_scan_all_lists_equals_numpy_scan(metric):
    """Without residuals every list holds the vectors' own codes: probing all
    lists is a scan of every code with the same tables."""
    rng = np.random.default_rng(11)
    d, M = 32, 16
    x = randn(rng, 4000, d)
    xq = randn(rng, 9, d)
    index = nearly.IndexIVFPQFastScan(nearly.IndexFlat(d, metric), d, 20, M, 4, metric)
    assert index.by_residual is False and index.bbs == 32 and index.code_size == M // 2
    index.train(x)
    index.add(x)
    index.nprobe = 20
    D, I = index.search(xq, 15)
    scores = quantized_scores(index.pq, xq, index.pq.compute_codes(x), metric)
    ref = topk(scores, 15, np.arange(len(x)))
    np.testing.assert_array_equal(I, ref)
    want = np.take_along_axis(scores, ref, 1)
    np.testing.assert_allclose(D, -want if metric == METRIC_IP else want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP])
@pytest.mark.parametrize("by_residual", [False, True])
def test_ivf_fast_scan_lists_and_ops(metric, by_residual):
    rng = np.random.default_rng(2)
    d, M, nlist = 32, 8, 16
    x = randn(rng, 3000, d)
    xq = randn(rng, 30, d)
    index = nearly.IndexIVFPQFastScan(nearly.IndexFlat(d, metric), d, nlist, M, 4, metric)
    index.by_residual = by_residual
    index.train(x)
    ids = np.arange(len(x), dtype=np.int64) * 3 + 7
    index.add_with_ids(x, ids)
    index.nprobe = 4
    D, I = index.search(xq, 10)
    assert set(I.ravel()) <= set(ids)
    # Lists hold the codes of their vectors in blocks of 32 (faiss's
    # BlockInvertedLists): byte p of entry i at [i // 32, p, i % 32].
    invlists = index.invlists
    assert isinstance(invlists, nearly.BlockInvertedLists)
    assert invlists.code_size == invlists.INVALID_CODE_SIZE
    assert invlists.n_per_block == 32 and invlists.block_size == 32 * (M // 2)
    assert sum(invlists.list_size(l) for l in range(nlist)) == len(x)
    assign = index.quantizer.search(x, 1)[1][:, 0]
    resid = x - index.quantizer.reconstruct_n(0, nlist)[assign] if by_residual else x
    codes = index.pq.compute_codes(resid)
    pos = {int(i): n for n, i in enumerate(ids)}
    for l in range(nlist):
        lids = np.asarray(invlists.get_ids(l))
        assert (assign[[pos[int(i)] for i in lids]] == l).all()
        blocks = invlists.get_codes(l).reshape(-1, M // 2, 32)
        assert len(blocks) == (len(lids) + 31) // 32
        entries = blocks.transpose(0, 2, 1).reshape(-1, M // 2)[:len(lids)]
        np.testing.assert_array_equal(entries, codes[[pos[int(i)] for i in lids]])
        np.testing.assert_array_equal(invlists._entry_codes(l).reshape(-1, M // 2), entries)
    # Direct map + reconstruct decode the stored code.
    index.make_direct_map()
    r = index.reconstruct(int(ids[5]))
    assert r.shape == (d,) and np.linalg.norm(r - x[5]) < np.linalg.norm(x[5])
    # Removing ids keeps the others' results.
    removed = index.remove_ids(np.array(ids[:1000]))
    assert removed == 1000 and index.ntotal == 2000
    D2, I2 = index.search(xq, 10)
    assert not set(I2.ravel()) & set(ids[:1000])
    # Same results as a fresh index holding only the survivors.
    fresh = nearly.IndexIVFPQFastScan(nearly.IndexFlat(d, metric), d, nlist, M, 4, metric)
    fresh.by_residual = by_residual
    fresh.train(x)
    fresh.add_with_ids(x[1000:], ids[1000:])
    fresh.nprobe = 4
    D3, I3 = fresh.search(xq, 10)
    np.testing.assert_array_equal(I2, I3)
    np.testing.assert_allclose(D2, D3, rtol=1e-6, atol=1e-6)
    # Persistence and pickling give the same results.
    back = nearly.deserialize_index(nearly.serialize_index(index))
    assert type(back).__name__ == "IndexIVFPQFastScan" and back.by_residual == by_residual
    back.nprobe = 4
    np.testing.assert_array_equal(back.search(xq, 10)[1], I2)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(index)).search(xq, 10)[1], I2)
    # Range search uses the same scores.
    Dk, Ik = index.search(xq[:3], 5)
    radius = float(Dk[0, 2])
    lims, Dr, Ir = index.range_search(xq[:1], radius)
    got = set(Ir.tolist())
    inside = set(Ik[0][(Dk[0] > radius) if metric == METRIC_IP else (Dk[0] < radius)].tolist())
    assert inside <= got


def test_selector_filters(level):
    rng = np.random.default_rng(8)
    d = 32
    x = randn(rng, 2000, d)
    xq = randn(rng, 10, d)
    for index in (nearly.IndexPQFastScan(d, 8, 4, METRIC_L2),
                  nearly.IndexIVFPQFastScan(nearly.IndexFlat(d, METRIC_L2), d, 8, 8, 4, METRIC_L2)):
        index.train(x)
        index.add(x)
        if hasattr(index, "nprobe"):
            index.nprobe = 8
        sel = nearly.IDSelectorRange(100, 300)
        params = nearly.SearchParametersIVF(nprobe=8, sel=sel) if hasattr(index, "nprobe") else \
            nearly.SearchParameters(sel=sel)
        D, I = index.search(xq, 10, params=params)
        assert ((I >= 100) & (I < 300)).all()
        # The filtered results are the unfiltered scan restricted to the range.
        scores = quantized_scores(index.pq, xq, index.pq.compute_codes(x), METRIC_L2)[:, 100:300]
        np.testing.assert_array_equal(I, topk(scores, 10, np.arange(100, 300)))


def test_pq_fast_scan_remove_persist_codes():
    rng = np.random.default_rng(4)
    d = 16
    x = randn(rng, 500, d)
    index = nearly.IndexPQFastScan(d, 8)
    index.train(x)
    index.add(x)
    codes = index.pq.compute_codes(x)

    def stored():  # faiss's index.codes of a fast-scan index: whole blocks, read through its packer
        packer = index.get_CodePacker()
        assert (packer.nvec, packer.code_size) == (32, 4)
        blocks = index.codes.reshape(-1, packer.block_size)
        assert blocks.shape[0] == (index.ntotal + 31) // 32
        return np.array([packer.unpack_1(blocks, i) for i in range(index.ntotal)])

    np.testing.assert_array_equal(stored(), codes)
    np.testing.assert_allclose(index.reconstruct(7), index.pq.decode(codes[7:8])[0], rtol=1e-6)
    assert index.remove_ids(np.arange(0, 500, 2)) == 250
    np.testing.assert_array_equal(stored(), codes[1::2])
    xq = randn(rng, 5, d)
    back = nearly.deserialize_index(nearly.serialize_index(index))
    assert type(back).__name__ == "IndexPQFastScan"
    np.testing.assert_array_equal(back.search(xq, 7)[1], index.search(xq, 7)[1])


def test_bad_input():
    with pytest.raises(RuntimeError):
        nearly.IndexPQFastScan(32, 8, 8)
    with pytest.raises(RuntimeError):
        nearly.IndexIVFPQFastScan(nearly.IndexFlat(32), 32, 8, 8, 8)
    with pytest.raises(RuntimeError):
        nearly.IndexPQFastScan(30, 8, 4)
    for bad_bbs in (0, 16, 48):  # faiss's rule: a multiple of 32
        with pytest.raises(ValueError, match="multiple of 32"):
            nearly.IndexPQFastScan(32, 8, 4, nearly.METRIC_L2, bad_bbs)
    for cls, bad in ((nearly.IndexPQFastScan(32, 8), (1, 5, 10, 16, 102)),
                     (nearly.IndexIVFPQFastScan(nearly.IndexFlat(32), 32, 4, 8), (3, 4, 9, 16, 100, 116))):
        for implem in bad:
            with pytest.raises(ValueError, match=f"implem {implem} does not exist"):
                cls.implem = implem
        assert cls.implem == 0
    x = np.random.default_rng(0).standard_normal((100, 32)).astype(np.float32)
    for index in (nearly.IndexPQFastScan(32, 8),
                  nearly.IndexIVFPQFastScan(nearly.IndexFlat(32), 32, 4, 8)):
        with pytest.raises(RuntimeError, match="is_trained"):
            index.add(x)
        with pytest.raises(RuntimeError):
            index.search(x, 1)
        index.train(x)
        index.add(x)
        with pytest.raises(ValueError):
            index.search(x[:, :16], 1)
        with pytest.raises(ValueError):
            index.search(x, 0)
        bad = x[:2].copy()
        bad[0, 0] = np.nan
        with pytest.raises(ValueError):
            index.search(bad, 1)
        D, I = index.search(x[:2], 150)  # k > ntotal: padded like faiss
        assert (I[:, 100:] == -1).all()
    nan = x.copy()
    nan[3, 3] = np.nan
    with pytest.raises(ValueError):
        nearly.IndexIVFPQFastScan(nearly.IndexFlat(32), 32, 4, 8).train(nan)


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP])
@pytest.mark.parametrize("by_residual", [False, True])
def test_ivf_fast_scan_batch_equals_one_at_a_time(metric, by_residual):
    """A big batch is scanned list by list (several queries per load of the
    codes, lists in rounds of probe rank); one query alone walks its lists in
    order. Same ids and distances either way, at every k (k = 150 makes the
    reservoirs cut many times), with and without a selector."""
    rng = np.random.default_rng(21)
    d, M = 32, 16
    x = randn(rng, 6000, d)
    xq = randn(rng, 300, d)
    index = nearly.IndexIVFPQFastScan(nearly.IndexFlat(d, metric), d, 16, M, 4, metric)
    index.by_residual = by_residual
    index.train(x)
    index.add(x)
    sel = nearly.IDSelectorRange(1000, 5000)
    for k, params in ((10, nearly.SearchParametersIVF(nprobe=6)), (150, nearly.SearchParametersIVF(nprobe=9)),
                      (20, nearly.SearchParametersIVF(nprobe=5, sel=sel))):
        D, I = index.search(xq, k, params=params)
        for q in range(0, len(xq), 7):
            Dq, Iq = index.search(xq[q:q + 1], k, params=params)
            np.testing.assert_array_equal(I[q], Iq[0])
            # The coarse distances of a batch come from a matrix multiply, a
            # lone query's from a dot product: residual L2 scores, which
            # start from them, may differ in the last bit.
            np.testing.assert_allclose(D[q], Dq[0], rtol=1e-6)
        if params.sel is not None:
            assert ((I >= 1000) & (I < 5000)).all()


def test_ivf_fast_scan_ids_beyond_32_bits():
    """Reservoirs sort (score, id) packed in one integer when ids fit 32
    bits, with the pair comparator otherwise: the same order either way."""
    rng = np.random.default_rng(22)
    d, M = 32, 16
    x = randn(rng, 3000, d)
    xq = randn(rng, 200, d)
    out = []
    for offset in (0, 2**40):
        index = nearly.IndexIVFPQFastScan(nearly.IndexFlat(d, METRIC_L2), d, 16, M, 4, METRIC_L2)
        index.train(x)
        index.add_with_ids(x, np.arange(len(x), dtype=np.int64) + offset)
        D, I = index.search(xq, 50, params=nearly.SearchParametersIVF(nprobe=8))
        out.append((D, I - offset))
    np.testing.assert_array_equal(out[0][1], out[1][1])
    np.testing.assert_array_equal(out[0][0], out[1][0])


def _assert_same_k_best(D, I, Du, Iu, metric):
    for q in range(len(I)):
        valid = Iu[q] >= 0
        assert valid.sum() == (I[q] >= 0).sum()
        assert (Iu[q][valid.sum():] == -1).all()  # padding last
        order = np.lexsort((Iu[q][valid], Du[q][valid] if metric == METRIC_L2 else -Du[q][valid]))
        np.testing.assert_array_equal(Iu[q][valid][order], I[q][I[q] >= 0])
        np.testing.assert_array_equal(Du[q][valid][order], D[q][I[q] >= 0])


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP])
def test_pq_fast_scan_unordered_results_are_the_same_k_best(metric):
    rng = np.random.default_rng(24)
    x = randn(rng, 3000, 32)
    xq = randn(rng, 70, 32)
    index = nearly.IndexPQFastScan(32, 16, 4, metric)
    index.train(x)
    index.add(x)
    for k in (1, 10, 100, 4000):  # 4000 > ntotal: padded
        D, I = index.search(xq, k)
        Du, Iu = index._search_unordered(xq, k)
        _assert_same_k_best(D, I, Du, Iu, metric)


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP])
def test_ivf_fast_scan_unordered_results_are_the_same_k_best(metric):
    """Re-ranking asks the base index for its k best in any order (no sort):
    the same set as search(), ties included, padding last; and the refined
    results are those of re-ranking the sorted candidates."""
    rng = np.random.default_rng(23)
    d, M = 32, 16
    x = randn(rng, 4000, d)
    xq = randn(rng, 120, d)
    index = nearly.IndexIVFPQFastScan(nearly.IndexFlat(d, metric), d, 16, M, 4, metric)
    index.train(x)
    index.add(x)
    for k, nprobe in ((10, 4), (100, 6), (5000, 16)):  # 5000 > ntotal: padded
        params = nearly.SearchParametersIVF(nprobe=nprobe)
        D, I = index.search(xq, k, params=params)
        Du, Iu = index._search_unordered(xq, k, params=params)
        _assert_same_k_best(D, I, Du, Iu, metric)

    base = nearly.IndexIVFPQFastScan(nearly.IndexFlat(d, metric), d, 16, M, 4, metric)
    refine = nearly.IndexRefineFlat(base)
    refine.train(x)
    refine.add(x)
    params = nearly.SearchParametersIVF(nprobe=6)
    D, I = refine.search(xq, 10, params=nearly.IndexRefineSearchParameters(k_factor=4, base_index_params=params))
    _, cand = base.search(xq, 40, params=params)
    for q in range(len(xq)):
        c = cand[q][cand[q] >= 0]
        s = ((x[c] - xq[q]) ** 2).sum(1) if metric == METRIC_L2 else -(x[c] @ xq[q])
        best = c[np.lexsort((c, s))][:10]
        assert set(best) == set(I[q]) or np.allclose(np.sort(s)[9], np.sort(s)[10], rtol=1e-5)


def test_fast_scan_many_ties_keep_the_smallest_ids():
    """1,000 copies of one vector: every score ties, so the reservoirs keep
    exactly the k best by id (the partition path), sorted or not."""
    rng = np.random.default_rng(25)
    x = randn(rng, 1200, 32)
    x[200:] = x[0]
    index = nearly.IndexPQFastScan(32, 16, 4, METRIC_L2)
    index.train(x)
    index.add(x)
    xq = x[:1] + 1e-3
    for search in (index.search, index._search_unordered):
        D, I = search(xq, 150)
        copies = np.flatnonzero(D[0] == D[0].min())
        # the tied copies returned are the copies with the smallest ids
        tied = np.sort(I[0][copies])
        everyone = np.concatenate([[0], np.arange(200, 1200)])
        np.testing.assert_array_equal(tied, everyone[:len(tied)])
        assert len(set(I[0])) == 150


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP])
def test_implem_knob(metric):
    """faiss's implem: the float-table reference (flat 2, IVF 1) gives IndexPQ's /
    IndexIVFPQ's exact results; every kernel variant the quantized scan's."""
    rng = np.random.default_rng(7)
    d, M = 32, 16
    x = randn(rng, 3000, d)
    xq = randn(rng, 40, d)
    pq = nearly.IndexPQ(d, M, 4, metric)
    pq.train(x)
    pq.add(x)
    fs = nearly.IndexPQFastScan(pq)
    ref = fs.search(xq, 10)
    for implem in (0, 3, 4, 12, 13, 14, 15):
        fs.implem = implem
        for a, b in zip(fs.search(xq, 10), ref):
            np.testing.assert_array_equal(a, b)
    fs.implem = 2
    for a, b in zip(fs.search(xq, 10), pq.search(xq, 10)):
        np.testing.assert_array_equal(a, b)
    fs.qbs = 0x223  # faiss's batching knob: kept, the results are the same
    assert fs.qbs == 0x223

    for by_residual in (False, True):
        ivf = nearly.IndexIVFPQ(nearly.IndexFlat(d, metric), d, 16, M, 4, metric)
        ivf.by_residual = by_residual
        ivf.train(x)
        ivf.add(x)
        ivf.nprobe = 4
        fs = nearly.IndexIVFPQFastScan(ivf)
        ref = fs.search(xq, 10)
        for implem in (0, 2, 10, 11, 12, 13, 14, 15, 102, 112):
            fs.implem = implem
            for a, b in zip(fs.search(xq, 10), ref):
                np.testing.assert_array_equal(a, b)
        for implem in (1, 101):
            fs.implem = implem
            D, I = fs.search(xq, 10)
            Dr, Ir = ivf.search(xq, 10)
            np.testing.assert_array_equal(I, Ir)
            np.testing.assert_allclose(D, Dr, rtol=1e-5, atol=1e-5)
            # the exact path keeps selectors and range search
            sel = nearly.IDSelectorRange(100, 900)
            D, I = fs.search(xq, 10, params=nearly.SearchParametersIVF(sel=sel, nprobe=4))
            Dr, Ir = ivf.search(xq, 10, params=nearly.SearchParametersIVF(sel=sel, nprobe=4))
            np.testing.assert_array_equal(I, Ir)
            radius = float(np.median(Dr[:, 5]))
            lims, Dg, Ig = fs.range_search(xq, radius)
            limr, Dgr, Igr = ivf.range_search(xq, radius)
            np.testing.assert_array_equal(lims, limr)
            for q in range(len(xq)):
                np.testing.assert_array_equal(np.sort(Ig[lims[q]:lims[q + 1]]), np.sort(Igr[limr[q]:limr[q + 1]]))


def test_block_size_multiple_of_32():
    """bbs=64 (faiss's AVX-512 tuning) is accepted: codes still lie in blocks of 32, same results."""
    rng = np.random.default_rng(8)
    x = randn(rng, 1000, 16)
    a = nearly.index_factory(16, "PQ8x4fs")
    b = nearly.index_factory(16, "PQ8x4fs_64")
    c = nearly.IndexPQFastScan(16, 8, 4, METRIC_L2, 64)
    d = nearly.index_factory(16, "IVF8,PQ8x4fsr_64")
    assert a.bbs == b.bbs == c.bbs == d.bbs == 32 and d.by_residual
    for index in (a, b, c):
        index.train(x)
        index.add(x)
    for a_, b_ in zip(a.search(x[:20], 5), b.search(x[:20], 5)):
        np.testing.assert_array_equal(a_, b_)
    np.testing.assert_array_equal(a.codes, c.codes)


def test_code_packer():
    packer = nearly.CodePackerPQ4(7, 32)  # 7 subquantizers: 4 bytes, the last nibble unused
    assert (packer.code_size, packer.nvec, packer.block_size) == (4, 32, 128)
    rng = np.random.default_rng(9)
    codes = rng.integers(0, 256, (70, 4), dtype=np.uint8)
    blocks = np.zeros((3, 128), np.uint8)
    for i, c in enumerate(codes):
        packer.pack_1(c, i, blocks)
    for i, c in enumerate(codes):
        np.testing.assert_array_equal(packer.unpack_1(blocks, i), c)
    np.testing.assert_array_equal(packer.unpack_all(blocks[1]), codes[32:64])
    np.testing.assert_array_equal(packer.pack_all(codes[32:64]), blocks[1])
    with pytest.raises(IndexError):
        packer.unpack_1(blocks, 96)
    with pytest.raises(ValueError):
        packer.unpack_1(blocks[:, :100], 0)
    flat = nearly.IndexPQ(16, 4, 8).get_CodePacker()
    assert (flat.code_size, flat.nvec, flat.block_size) == (4, 1, 4)
