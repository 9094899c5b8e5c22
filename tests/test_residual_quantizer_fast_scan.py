"""IndexResidualQuantizerFastScan (4-bit residual codes scanned with
quantized in-register tables) and the 2x4-bit residual norm (ST_norm_rq2x4)
against numpy references: the norm code is the nearest of its 256 sums, the
float-table path equals IndexResidualQuantizer exactly, the quantized scan's
distances stay within the tables' rounding of the exact ones, recall on real
embeddings, selectors, range search, persistence, bad input."""
import numpy as np
import pytest

import nearly
from _hnswutil import HEADER, real_data, reseal
from _testutil import METRIC_IP, METRIC_L2, blobs, randn

RQ = nearly.ResidualQuantizer
METRICS = [METRIC_L2, METRIC_IP]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    return blobs(rng, 4000, 16), blobs(rng, 60, 16)


def trained(metric, x, M=6, xb=None):
    st = RQ.ST_norm_rq2x4 if metric == METRIC_L2 else RQ.ST_LUT_nonorm
    index = nearly.IndexResidualQuantizerFastScan(x.shape[1], M, 4, metric, st)
    index.train(x)
    index.add(x if xb is None else xb)
    return index


def test_rq2x4_norm_code_is_the_nearest_sum(data):
    x, _ = data
    rq = RQ(16, 5, 4, RQ.ST_norm_rq2x4)
    assert rq.norm_bits == 8 and rq.code_size == (5 * 4 + 8 + 7) // 8
    rq.train(x)
    tabs = rq.norm_tabs
    assert tabs.shape == (32,)
    codes = rq.compute_codes(x[:500])
    norms = (rq.decode(codes).astype(np.float64) ** 2).sum(1)
    bits = np.unpackbits(codes, axis=1, bitorder="little")[:, 20:28]
    norm_code = (bits * (1 << np.arange(8))).sum(1)
    sums = (tabs[np.arange(256) & 15] + tabs[16 + (np.arange(256) >> 4)]).astype(np.float64)
    err = np.abs(norms[:, None] - sums[None, :])
    chosen = err[np.arange(len(norms)), norm_code]
    np.testing.assert_allclose(chosen, err.min(1), rtol=1e-5, atol=1e-4)
    # the flat RQ index searches with that norm too (L2 through tables)
    index = nearly.IndexResidualQuantizer(16, 5, 4, METRIC_L2, RQ.ST_norm_rq2x4)
    index.train(x)
    index.add(x)
    q = x[:5]
    D, I = index.search(q, 3)
    dec = index.reconstruct_batch(I.ravel()).reshape(5, 3, 16).astype(np.float64)
    lut = np.einsum("qd,qkd->qk", q.astype(np.float64), dec)
    c = np.array([index.rq.compute_codes(index.reconstruct(int(i))[None])[0] for i in I.ravel()])
    stored = sums[(np.unpackbits(index.codes.reshape(-1, index.code_size)[I.ravel()], axis=1,
                                 bitorder="little")[:, 20:28] * (1 << np.arange(8))).sum(1)]
    expect = (q.astype(np.float64) ** 2).sum(1)[:, None] - 2 * lut + stored.reshape(5, 3)
    np.testing.assert_allclose(D, expect, rtol=1e-4, atol=1e-3)
    assert c.shape[0] == 15


@pytest.mark.parametrize("metric", METRICS, ids=["L2", "IP"])
def test_float_tables_equal_the_flat_rq_index(data, metric):
    x, xq = data
    st = RQ.ST_norm_rq2x4 if metric == METRIC_L2 else RQ.ST_LUT_nonorm
    ref = nearly.IndexResidualQuantizer(16, 6, 4, metric, st)
    ref.train(x)
    ref.add(x)
    fs = nearly.IndexAdditiveQuantizerFastScan(ref)
    assert isinstance(fs, nearly.IndexResidualQuantizerFastScan)
    assert fs.M == 6 + (2 if metric == METRIC_L2 else 0) and fs.bbs == 32 and fs.ntotal == ref.ntotal
    np.testing.assert_array_equal(fs.reconstruct_n(0, 100), ref.reconstruct_n(0, 100))
    fs.implem = 2
    for a, b in zip(fs.search(xq, 10), ref.search(xq, 10)):
        np.testing.assert_array_equal(a, b)
    # range search and the distance computer read the block layout
    radius = float(np.median(ref.search(xq, 20)[0][:, -1]))
    for a, b in zip(fs.range_search(xq, radius), ref.range_search(xq, radius)):
        np.testing.assert_array_equal(a, b)
    dc = fs.get_distance_computer()
    D, I = ref.search(xq[:3], 5)
    for q in range(3):
        dc.set_query(xq[q])
        np.testing.assert_allclose([dc(int(i)) for i in I[q]], D[q], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("metric", METRICS, ids=["L2", "IP"])
def test_quantized_scan_within_table_rounding(data, metric):
    """Each returned distance is the exact table sum of its code up to the
    byte rounding of M + 2 tables (half a step each), and no code outside the
    results beats the k-th by more than that."""
    x, xq = data
    index = trained(metric, x)
    D, I = index.search(xq, 10)
    index.implem = 2
    exact_all = index.search(xq, index.ntotal)
    index.implem = 0
    exact = np.empty_like(D)
    for q in range(len(xq)):
        pos = {int(i): j for j, i in enumerate(exact_all[1][q])}
        exact[q] = exact_all[0][q][[pos[int(i)] for i in I[q]]]
    # the step of the byte tables: the largest table span / 255, the norm's
    # spans counted norm_scale times narrower, their step norm_scale wider
    cb = index.rq.codebooks.reshape(6, 16, 16).astype(np.float64)
    lut = np.einsum("qd,mkd->qmk", xq.astype(np.float64), cb) * (-2 if metric == METRIC_L2 else -1)
    spans = lut.max(2) - lut.min(2)
    s = index.norm_scale if metric == METRIC_L2 else 1
    assert s >= 1 and (metric == METRIC_L2 or index.norm_scale == 1)
    if metric == METRIC_L2:
        tabs = index.rq.norm_tabs.reshape(2, 16).astype(np.float64)
        spans = np.concatenate([spans, np.broadcast_to(tabs.max(1) - tabs.min(1), (len(xq), 2)) / s], axis=1)
    step = spans.max(1) / 255
    bound = (6 * 0.5 + (2 * 0.5 * s if metric == METRIC_L2 else 0) + 1) * step
    assert (np.abs(D - exact) <= bound[:, None] + 1e-4).all()
    kth = exact_all[0][:, 9]
    worse = (exact[:, -1] - kth) if metric == METRIC_L2 else (kth - exact[:, -1])
    assert (worse <= 2 * bound + 1e-4).all()


def estimate_norm_scale(rq, x):
    """faiss's norm_scale estimate in numpy: the mean over the queries of the
    norm tables' widest span over the -2 x inner-product tables' widest,
    rounded, at least 1."""
    cb = rq.codebooks.reshape(rq.M, 16, -1).astype(np.float64)
    lut = -2 * np.einsum("qd,mkd->qmk", x.astype(np.float64), cb)
    ip_span = (lut.max(2) - lut.min(2)).max(1)
    tabs = rq.norm_tabs.reshape(2, 16).astype(np.float64)
    ratio = (tabs.max(1) - tabs.min(1)).max() / ip_span
    return int(np.floor(max(ratio.mean(), 1.0) + 0.5))


def spread_norms(data):
    """The rows scaled by 0.2 to 3: norms that span far wider than one
    codeword's inner products (norm_scale > 1)."""
    x, xq = data
    rng = np.random.default_rng(5)
    return (x * rng.uniform(0.2, 3, (len(x), 1)).astype(np.float32),
            xq * rng.uniform(0.2, 3, (len(xq), 1)).astype(np.float32))


def unpacked(rq, codes, M):
    """The M + 2 nibbles of each code (codebooks, then the norm byte)."""
    bits = np.unpackbits(codes, axis=1, bitorder="little")[:, :4 * (M + 2)].reshape(len(codes), M + 2, 4)
    return (bits * (1 << np.arange(4))).sum(2)


@pytest.mark.parametrize("key", ["RQ5x4fs_Nrq2x4", "LSQ6x4fs_Nlsq2x4", "IVF8,RQ5x4fs_Nrq2x4",
                                 "IVF8,RQ6x4fsr_Nrq2x4"])
def test_norm_scale_estimate_and_scan(data, key):
    """Training sets faiss's norm_scale; the scan then sums the norm's tables
    quantized norm_scale times coarser and multiplied back: every returned
    distance is that sum of its code exactly (the tables quantized by the
    kernels' reference, pq4_quantize_table), and the k best by it."""
    from nearly import _nearly
    x, xq = spread_norms(data)
    index = nearly.index_factory(16, key)
    index.train(x)
    index.add(x[:1500])
    rq, M = index.aq, index.aq.M
    assert index.norm_scale == estimate_norm_scale(rq, x) and index.norm_scale > 1 and index.rescale_norm
    if "IVF" in key:
        index.nprobe = 8  # every list: the scan is the flat one plus each list's offset
    D, I = index.search(xq, 10)
    if "fsr" in key:
        return  # residual codes: the per-list term is covered by the float-table tests
    codes = rq.compute_codes(x[:1500])  # what add() stored
    nib = unpacked(rq, codes, M)
    cb = rq.codebooks.reshape(M, 16, 16)
    for q in range(len(xq)):
        tab = np.concatenate([-2 * np.einsum("d,mkd->mk", xq[q], cb), rq.norm_tabs.reshape(2, 16)]).astype(np.float32)
        b, bias, scale, mult = _nearly.pq4_quantize_table(tab, scaled_from=M, table_scale=index.norm_scale)
        per_table = np.ones(b.shape[0], np.int64)
        per_table[b.shape[0] - 2 * len(mult):] = np.asarray(mult).ravel()
        sums = (b[np.arange(M + 2), nib].astype(np.int64) * per_table[:M + 2]).sum(1)
        scores = np.float32(xq[q] @ xq[q]) + (np.float32(bias) + sums.astype(np.float32) * np.float32(1 / scale))
        np.testing.assert_allclose(D[q], scores[I[q]], rtol=1e-5, atol=1e-4)
        assert D[q, -1] <= np.sort(scores)[9] * (1 + 1e-5) + 1e-4


def test_norm_scale_settings_and_persistence(data):
    x, xq = spread_norms(data)
    for key in ("RQ6x4fs_Nrq2x4", "IVF8,RQ6x4fs_Nrq2x4"):
        index = nearly.index_factory(16, key)
        index.train(x)
        index.add(x)
        scaled = index.norm_scale
        assert scaled > 1
        D, I = index.search(xq, 5)
        for bad in (0, -1, 256):
            with pytest.raises(ValueError, match="norm_scale"):
                index.norm_scale = bad
        assert index.norm_scale == scaled
        # rescale_norm off and norm_scale 1 are the same scan
        index.rescale_norm = False
        D0, I0 = index.search(xq, 5)
        index.rescale_norm, index.norm_scale = True, 1
        np.testing.assert_array_equal(index.search(xq, 5)[0], D0)
        index.norm_scale = scaled
        np.testing.assert_array_equal(index.search(xq, 5)[0], D)
        # kept by the file and by clone
        back = nearly.deserialize_index(nearly.serialize_index(index))
        assert back.norm_scale == scaled and back.rescale_norm
        np.testing.assert_array_equal(back.search(xq, 5)[1], I)
        index.rescale_norm = False
        back = nearly.deserialize_index(nearly.serialize_index(index))
        assert not back.rescale_norm
        np.testing.assert_array_equal(back.search(xq, 5)[1], I0)
        assert nearly.clone_index(index).norm_scale == scaled
        # a forged norm_scale (with a valid checksum) is refused: the fields
        # end the payload
        payload = bytes(nearly.serialize_index(index))[HEADER:-8]
        assert payload[-5:] == bytes([0]) + scaled.to_bytes(4, "little")
        for forged in (bytes([0]) + (0).to_bytes(4, "little"), bytes([0]) + (256).to_bytes(4, "little"),
                       bytes([2]) + scaled.to_bytes(4, "little")):
            with pytest.raises(nearly.IndexFileError, match="norm_scale"):
                nearly.deserialize_index(np.frombuffer(reseal(payload[:-5] + forged), np.uint8))
    # inner product has no norm tables: nothing to scale
    ip = nearly.index_factory(16, "RQ6x4fs", METRIC_IP)
    ip.train(x)
    assert ip.norm_scale == 1


@pytest.fixture(scope="module")
def embeddings():
    """20k real embeddings, 100 queries and their exact L2 top 10."""
    xb, xq = real_data()
    xb, xq = np.ascontiguousarray(xb[:20000]), np.ascontiguousarray(xq[:100])
    flat = nearly.IndexFlatL2(xb.shape[1])
    flat.add(xb)
    return xb, xq, flat.search(xq, 10)[1]


def recall_at_10(I, gt):
    return np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I, gt)])


def test_recall_on_real_embeddings(embeddings):
    xb, xq, gt = embeddings
    exact = nearly.IndexResidualQuantizer(xb.shape[1], 16, 4, METRIC_L2, RQ.ST_norm_rq2x4)
    exact.rq.max_beam_size = 1  # keeps the test quick; the same codes feed both
    exact.train(xb[:5000])
    exact.add(xb)
    fs = nearly.IndexAdditiveQuantizerFastScan(exact)
    r_exact, r_fs = recall_at_10(exact.search(xq, 10)[1], gt), recall_at_10(fs.search(xq, 10)[1], gt)
    assert r_exact > 0.3
    assert r_fs >= r_exact - 0.05, (r_fs, r_exact)


def test_selectors_persistence_and_updates(data, tmp_path):
    x, xq = data
    index = trained(METRIC_L2, x[:1000])
    sel = nearly.IDSelectorRange(100, 400)
    D, I = index.search(xq, 10, params=nearly.SearchParameters(sel=sel))
    assert ((I >= 100) & (I < 400)).all()
    full_D, full_I = index.search(xq, 300)
    for q in range(len(xq)):
        keep = (full_I[q] >= 100) & (full_I[q] < 400)
        assert set(I[q]) <= set(full_I[q][keep]) | set(range(100, 400))
    back = nearly.deserialize_index(nearly.serialize_index(index))
    assert type(back) is nearly.IndexResidualQuantizerFastScan
    for a, b in zip(back.search(xq, 10), index.search(xq, 10)):
        np.testing.assert_array_equal(a, b)
    path = str(tmp_path / "rqfs.index")
    nearly.write_index(index, path)
    data_bytes = open(path, "rb").read()
    open(path, "wb").write(data_bytes[: len(data_bytes) // 2])
    with pytest.raises(nearly.IndexFileError):
        nearly.read_index(path)
    # removal renumbers, as every flat-code index
    before = index.reconstruct(500)
    assert index.remove_ids(np.arange(0, 100)) == 100
    np.testing.assert_array_equal(index.reconstruct(400), before)
    index.reset()
    assert index.ntotal == 0 and (index.search(xq, 3)[1] == -1).all()


def test_factory_and_refusals(data):
    x, xq = data
    index = nearly.index_factory(16, "RQ5x4fs_64_Nrq2x4")
    assert isinstance(index, nearly.IndexResidualQuantizerFastScan) and index.bbs == 32
    assert nearly.downcast_AdditiveQuantizer(index.aq).search_type == nearly.AdditiveQuantizer.ST_norm_rq2x4
    assert isinstance(index.aq, nearly.AdditiveQuantizer) and index.M == 7
    ip = nearly.index_factory(16, "RQ5x4fs", METRIC_IP)
    assert ip.rq.search_type == RQ.ST_LUT_nonorm and ip.M == 5
    with pytest.raises(RuntimeError, match="rq2x4"):
        nearly.index_factory(16, "RQ5x4fs")  # L2 needs the norm codes, as in faiss
    # the norm's two 4-bit codebooks trained by local search instead (faiss's _Nlsq2x4)
    assert nearly.index_factory(16, "RQ5x4fs_Nlsq2x4").rq.search_type == RQ.ST_norm_lsq2x4
    with pytest.raises(RuntimeError, match="nbits"):
        nearly.IndexResidualQuantizerFastScan(16, 4, 8)
    with pytest.raises(ValueError, match="implem"):
        index.implem = 1
    with pytest.raises(RuntimeError, match="trained"):
        index.search(xq, 3)
    index.train(x)
    index.add(x[:100])
    with pytest.raises(ValueError):
        index.search(xq, 0)
    bad = xq.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        index.search(bad, 3)
    with pytest.raises(ValueError):
        index.search(xq[:, :8], 3)
    with pytest.raises(RuntimeError):
        nearly.IndexAdditiveQuantizerFastScan(nearly.IndexFlatL2(16))


@pytest.mark.parametrize("by_residual", [False, True], ids=["codes_of_x", "residual"])
@pytest.mark.parametrize("metric", METRICS, ids=["L2", "IP"])
def test_ivf_float_tables_equal_ivf_rq_and_quantized_close(data, metric, by_residual):
    """implem 1 gives IndexIVFResidualQuantizer's exact results on the same
    codes; the quantized scan finds nearly the same neighbours, its
    distances within the tables' rounding of the exact ones."""
    x, xq = data
    st = RQ.ST_norm_rq2x4 if metric == METRIC_L2 else RQ.ST_LUT_nonorm
    fs = nearly.IndexIVFResidualQuantizerFastScan(nearly.IndexFlat(16, metric), 16, 8, 6, 4, metric, st)
    fs.by_residual = by_residual
    fs.train(x)
    fs.add(x)
    fs.nprobe = 3
    assert fs.M == 6 + (2 if metric == METRIC_L2 else 0) and fs.bbs == 32
    D, I = fs.search(xq, 10)
    fs.implem = 1
    De, Ie = fs.search(xq, 10)
    # the same trained state as a plain IVF RQ index: the exact path equals it
    ref = nearly.IndexIVFResidualQuantizer(fs.quantizer, 16, 8, 6, 4, metric, st)
    ref.by_residual = by_residual
    ref.rq.train_type = fs.rq.train_type
    ref.train(x)  # the quantizer is trained: only the codebooks are learnt, deterministically
    ref.add(x)
    ref.nprobe = 3
    np.testing.assert_array_equal(fs.rq.codebooks, ref.rq.codebooks)
    Dr, Ir = ref.search(xq, 10)
    if metric == METRIC_L2 and by_residual:
        # the fast-scan codes store ||c + r||^2 (one table per query), the
        # plain IVF RQ ||r||^2: the same vectors, other norm codes
        xhat = fs.reconstruct_n(0, fs.ntotal)  # by id
        true = ((xq[:, None, :].astype(np.float64) - xhat[Ie].astype(np.float64)) ** 2).sum(-1)
        np.testing.assert_allclose(De, true, rtol=0.02, atol=0.02 * np.abs(true).max())
        assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(Ie, Ir)]) > 0.9
    else:
        for a, b in zip((De, Ie), (Dr, Ir)):
            np.testing.assert_array_equal(a, b)
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I, Ie)])
    assert overlap > 0.8, overlap
    # each quantized distance is close to its code's exact one
    fs.implem = 1
    Dall, Iall = fs.search(xq, fs.ntotal)
    scale = np.abs(Dall[Iall >= 0]).max()
    for q in range(len(xq)):
        exact = dict(zip(Iall[q], Dall[q]))
        for dist, i in zip(D[q], I[q]):
            assert abs(dist - exact[i]) <= 0.05 * scale + 1e-3
    # range search, reconstruction and persistence follow the block layout
    fs.implem = 0
    np.testing.assert_allclose(fs.reconstruct_n(0, 50), ref.reconstruct_n(0, 50), rtol=1e-5, atol=1e-5)
    back = nearly.deserialize_index(nearly.serialize_index(fs))
    assert type(back) is nearly.IndexIVFResidualQuantizerFastScan and back.by_residual == by_residual
    for a, b in zip(back.search(xq, 10), fs.search(xq, 10)):
        np.testing.assert_array_equal(a, b)
    sel = nearly.IDSelectorRange(0, 2000)
    Ds, Is = fs.search(xq, 10, params=nearly.SearchParametersIVF(sel=sel, nprobe=3))
    assert ((Is >= 0) & (Is < 2000) | (Is == -1)).all()


def test_ivf_factory_and_recall_on_real_embeddings(embeddings):
    xb, xq, gt = embeddings
    index = nearly.index_factory(xb.shape[1], "IVF64,RQ16x4fsr_64_Nrq2x4")
    assert isinstance(index, nearly.IndexIVFResidualQuantizerFastScan) and index.by_residual
    assert not nearly.index_factory(xb.shape[1], "IVF64,RQ16x4fs_Nrq2x4").by_residual
    index.rq.max_beam_size = 1  # keeps the test quick
    index.train(xb[:5000])
    index.add(xb)
    index.nprobe = 16
    I = index.search(xq, 10)[1]
    index.implem = 1
    Ie = index.search(xq, 10)[1]
    r, r_exact = recall_at_10(I, gt), recall_at_10(Ie, gt)
    assert r_exact > 0.3
    assert r >= r_exact - 0.05, (r, r_exact)


def test_norm_scale_by_residual_is_estimated_on_whole_vectors(data):
    """With codes of residuals the search's tables are still those of the
    whole query, so the estimate is made on the training vectors, not on
    their residuals; a list whose one training vector is its centroid (a
    zero residual: flat tables) does not break it (faiss's comes out as
    INT_MIN there)."""
    x, _ = spread_norms(data)
    xt = np.ascontiguousarray(x[:150])
    index = nearly.index_factory(16, "IVF64,RQ6x4fsr_Nrq2x4")
    index.cp.min_points_per_centroid = 1
    index.train(xt)  # 150 points in 64 lists: some lists hold one point
    _, lists = index.quantizer.search(xt, 1)
    centroids = index.quantizer.reconstruct_n(0, 64)
    assert (np.abs(xt - centroids[lists[:, 0]]).max(1) == 0).any()
    assert 1 <= index.norm_scale <= 255
    assert index.norm_scale == estimate_norm_scale(index.aq, xt)


def assert_same_ids_up_to_ties(D, Ia, Ib):
    """Equal distances in D: the same ids for each distance, except those
    tied with the last one (which of them make the k is arbitrary)."""
    for d, a, b in zip(D, Ia, Ib):
        keep = d != d[-1]
        assert sorted(zip(d[keep], a[keep])) == sorted(zip(d[keep], b[keep]))


@pytest.mark.parametrize("spec,metric,by_residual", [
    ("IVF8,RQ6x4", METRIC_IP, True), ("IVF8,RQ6x4", METRIC_IP, False), ("IVF8,RQ6x4_Nrq2x4", METRIC_L2, False),
    ("IVF8,LSQ6x4_Nlsq2x4", METRIC_L2, False), ("IVF8,PRQ2x3x4", METRIC_IP, True)])
def test_ivf_additive_quantizer_conversion(data, spec, metric, by_residual):
    """faiss's IndexIVFAdditiveQuantizerFastScan(orig): the same quantizer,
    codebooks and entries in blocks. The exact scan (implem 1) gives orig's
    results bit for bit; the quantized one nearly the same neighbours."""
    x, xq = data
    orig = nearly.index_factory(16, spec, metric)
    orig.by_residual = by_residual
    orig.train(x)
    orig.add(x[:3000])
    orig.nprobe = 4
    Dr, Ir = orig.search(xq, 10)
    fs = nearly.IndexIVFAdditiveQuantizerFastScan(orig)
    assert isinstance(fs, nearly.IndexIVFAdditiveQuantizerFastScan) and isinstance(fs, nearly.IndexIVFResidualQuantizerFastScan)
    assert not isinstance(orig, nearly.IndexIVFAdditiveQuantizerFastScan)
    assert fs.ntotal == orig.ntotal and fs.nprobe == 4 and fs.by_residual == by_residual and fs.is_trained
    assert fs.quantizer is orig.quantizer or fs.quantizer.ntotal == orig.quantizer.ntotal
    np.testing.assert_array_equal(fs.rq.codebooks, orig.rq.codebooks)
    assert fs.rq.local_search == orig.rq.local_search and fs.rq.nsplits == orig.rq.nsplits
    for l in range(8):  # the same entries, re-laid in blocks of 32
        np.testing.assert_array_equal(fs.invlists.get_ids(l), orig.invlists.get_ids(l))
        np.testing.assert_array_equal(fs.invlists._entry_codes(l), orig.invlists.get_codes(l))
    D, I = fs.search(xq, 10)
    fs.implem = 1
    De, Ie = fs.search(xq, 10)
    np.testing.assert_array_equal(De, Dr)
    assert_same_ids_up_to_ties(De, Ie, Ir)
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I, Ir)]) > 0.7
    fs.add(x[3000:])  # adds after the conversion encode as orig would
    orig.add(x[3000:])
    De, Ie = fs.search(xq, 10)
    Dr, Ir = orig.search(xq, 10)
    np.testing.assert_array_equal(De, Dr)
    assert_same_ids_up_to_ties(De, Ie, Ir)
    back = nearly.deserialize_index(nearly.serialize_index(fs))
    fs.implem = back.implem = 0
    np.testing.assert_array_equal(back.search(xq, 10)[1], fs.search(xq, 10)[1])


def test_ivf_additive_quantizer_conversion_refusals(data):
    x, _ = data
    l2_residual = nearly.index_factory(16, "IVF8,RQ6x4_Nrq2x4")
    l2_residual.train(x)
    with pytest.raises(RuntimeError, match="by_residual"):
        nearly.IndexIVFAdditiveQuantizerFastScan(l2_residual)
    l2_float_norm = nearly.index_factory(16, "IVF8,RQ6x4")
    l2_float_norm.by_residual = False
    with pytest.raises(ValueError, match="lsq2x4 or rq2x4"):
        nearly.IndexIVFAdditiveQuantizerFastScan(l2_float_norm)
    with pytest.raises(RuntimeError, match="nbits"):
        nearly.IndexIVFAdditiveQuantizerFastScan(nearly.index_factory(16, "IVF8,RQ4x8", METRIC_IP))
    with pytest.raises(ValueError, match="multiple of 32"):
        nearly.IndexIVFAdditiveQuantizerFastScan(nearly.index_factory(16, "IVF8,RQ6x4", METRIC_IP), 48)
    with pytest.raises(TypeError, match="converts"):
        nearly.IndexIVFAdditiveQuantizerFastScan(nearly.IndexFlatL2(16))


@pytest.mark.parametrize("key", ["IVF32,RQ6x4fs_Nrq2x4", "IVF32,RQ6x4fsr_Nrq2x4", "IVF32,LSQ6x4fs_Nlsq2x4",
                                 "IP:IVF32,RQ6x4fs", "IP:IVF32,RQ6x4fsr"])
def test_ivf_batches_grouped_by_list_equal_one_query_at_a_time(data, key):
    """A batch large enough is scanned list by list for all its queries
    (search_grouped); its results are those of the queries searched one by
    one (the per-query scanner), with a selector too."""
    x, xq = data
    metric = METRIC_IP if key.startswith("IP:") else METRIC_L2
    index = nearly.index_factory(16, key.split(":")[-1], metric)
    index.train(x)
    index.add(x)
    index.nprobe = 8
    queries = np.vstack([xq, x[:140] + 0.01]).astype(np.float32)  # 200 queries: 1,600 pairs on 32 lists
    params = [None, nearly.SearchParametersIVF(nprobe=8, sel=nearly.IDSelectorRange(500, 3000))]
    for p in params:
        D, I = index.search(queries, 10, params=p)
        for q in range(0, len(queries), 7):
            Dq, Iq = index.search(queries[q:q + 1], 10, params=p)
            # A lone query's coarse distances come from another kernel than a
            # batch's (a last-bit difference, which residual L2 scores carry).
            np.testing.assert_allclose(D[q], Dq[0], rtol=1e-6, atol=1e-4)
            keep = ~np.isclose(D[q], D[q, -1], rtol=1e-5, atol=1e-3)
            assert set(I[q][keep]) <= set(Iq[0])
        if p is not None:
            assert ((I >= 500) & (I < 3000) | (I == -1)).all()
