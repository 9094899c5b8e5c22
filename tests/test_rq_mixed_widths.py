"""Residual quantizers whose codebooks have different widths (faiss's
ResidualQuantizer(d, nbits), "RQ1x16_6x8", "RCQ1x3_1x4_1x5"): codes equal
faiss's, searches equal brute force over the decoded vectors, the tables
follow faiss's layouts, persistence round-trips, and what needs one width
(local search, product mode, fast-scan) refuses clearly."""
import numpy as np
import pytest

import faiss
import nearly

RQ = nearly.ResidualQuantizer
WIDTHS = [6, 4, 5]  # codebook offsets 0, 64, 80, 112; 15 index bits


def data(n, d=24, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d)).astype("float32")


def faiss_widths(widths):
    v = faiss.UInt64Vector()
    for b in widths:
        v.push_back(b)
    return v


def trained(widths=WIDTHS, st=RQ.ST_decompress, d=24):
    rq = RQ(d, widths, st)
    rq.train_type = RQ.Train_default
    rq.train(data(3000, d))
    return rq


def test_shape():
    rq = RQ(24, WIDTHS)
    assert rq.M == 3 and list(rq.nbits) == WIDTHS
    assert list(rq.codebook_offsets) == [0, 64, 80, 112] and rq.total_codebook_size == 112
    assert rq.code_size == 2 and rq.tot_bits == 15
    assert RQ(24, WIDTHS, RQ.ST_norm_qint8).code_size == 3  # 15 + 8 bits
    assert RQ(24, [8, 8]).code_size == RQ(24, 2, 8).code_size
    with pytest.raises(RuntimeError):
        RQ(24, [8, 17])
    with pytest.raises(ValueError):
        RQ(24, [])
    with pytest.raises(ValueError):
        RQ(24, [8, 0])


@pytest.mark.parametrize("st", [RQ.ST_decompress, RQ.ST_norm_from_LUT, RQ.ST_norm_qint8, RQ.ST_norm_qint4])
def test_training_and_codes_equal_faiss(st):
    # Plain k-means training (faiss's Train_default) gives faiss's codebooks
    # to float rounding, and the beam search faiss's codes.
    xt, xb = data(3000), data(500, seed=1)
    ours = RQ(24, WIDTHS, st)
    theirs = faiss.ResidualQuantizer(24, faiss_widths(WIDTHS), st)
    for q in (ours, theirs):
        q.train_type = RQ.Train_default
        q.train(xt)
    np.testing.assert_allclose(ours.codebooks.ravel(), faiss.vector_to_array(theirs.codebooks), atol=1e-5)
    np.testing.assert_array_equal(ours.compute_codes(xb), theirs.compute_codes(xb))
    np.testing.assert_allclose(ours.decode(ours.compute_codes(xb)), theirs.decode(theirs.compute_codes(xb)),
                               atol=1e-5)


def test_unpacked_codes_and_decode():
    rq = trained()
    xb = data(200, seed=2)
    codes = rq.compute_codes(xb)
    cb = rq.codebooks.reshape(-1, 24)
    off = list(rq.codebook_offsets)
    # The bit string: 6, then 4, then 5 bits, least significant first.
    bits = np.unpackbits(codes, axis=1, bitorder="little")
    idx = [bits[:, s:s + w] @ (1 << np.arange(w)) for s, w in zip((0, 6, 10), WIDTHS)]
    for m, w in enumerate(WIDTHS):
        assert idx[m].max() < (1 << w)
    expect = sum(cb[off[m] + idx[m]] for m in range(3))
    np.testing.assert_allclose(rq.decode(codes), expect, atol=1e-5)
    # pack_codes of the same indexes gives the same codes; one out of its codebook's range is refused.
    unpacked = np.stack(idx, axis=1).astype("int32")
    packed = np.zeros_like(codes)
    rq.pack_codes(len(xb), unpacked, packed)
    np.testing.assert_array_equal(packed, codes)
    unpacked[0, 1] = 16  # codebook 1 has 16 words
    with pytest.raises(IndexError):
        rq.pack_codes(len(xb), unpacked, packed)


def test_tables_follow_faiss_layout():
    rq = trained(st=RQ.ST_norm_from_LUT)
    theirs = faiss.ResidualQuantizer(24, faiss_widths(WIDTHS))
    faiss.copy_array_to_vector(rq.codebooks.ravel(), theirs.codebooks)
    theirs.is_trained = True
    theirs.compute_codebook_tables()
    rq.compute_codebook_tables()
    np.testing.assert_allclose(nearly.vector_to_array(rq.codebook_cross_products),
                               faiss.vector_to_array(theirs.codebook_cross_products), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(nearly.vector_to_array(rq.centroid_norms),
                               faiss.vector_to_array(theirs.centroid_norms), rtol=1e-5)
    q = data(5, seed=3)
    lut = np.zeros((5, rq.total_codebook_size), "float32")
    rq.compute_LUT(5, q, lut)
    np.testing.assert_allclose(lut, q @ rq.codebooks.reshape(-1, 24).T, rtol=1e-4, atol=1e-4)


# (ST_LUT_nonorm under L2 is right on unit vectors only, faiss's definition.)
@pytest.mark.parametrize("metric,st", [(m, st) for m in (nearly.METRIC_L2, nearly.METRIC_INNER_PRODUCT)
                                       for st in (RQ.ST_decompress, RQ.ST_norm_from_LUT, RQ.ST_norm_float,
                                                  RQ.ST_LUT_nonorm)
                                       if not (m == nearly.METRIC_L2 and st == RQ.ST_LUT_nonorm)])
def test_flat_search_equals_brute_force_on_decoded(metric, st):
    xt, xb, xq = data(3000), data(1000, seed=1), data(20, seed=2)
    index = nearly.IndexResidualQuantizer(24, [8, 4, 6, 5], metric, st)
    index.rq.train_type = RQ.Train_default
    index.train(xt)
    index.add(xb)
    D, I = index.search(xq, 10)
    dec = index.rq.decode(index.rq.compute_codes(xb))
    if metric == nearly.METRIC_L2:
        ref = ((xq[:, None, :] - dec[None]) ** 2).sum(-1)
        order = np.argsort(ref, axis=1, kind="stable")[:, :10]
    else:
        ref = xq @ dec.T
        order = np.argsort(-ref, axis=1, kind="stable")[:, :10]
    np.testing.assert_allclose(D, np.take_along_axis(ref, order, 1), rtol=1e-3, atol=1e-3)
    assert (I == order).mean() > 0.97  # ties and rounding may swap near-equal neighbours


def test_factory_strings():
    index = nearly.index_factory(5, "RQ2x16_3x8_6x4")
    assert list(index.rq.nbits) == [16, 16, 8, 8, 8, 4, 4, 4, 4, 4, 4]
    index = nearly.index_factory(32, "IVF16,RQ1x8_2x4_Nqint8")
    assert isinstance(index, nearly.IndexIVFResidualQuantizer)
    assert list(index.rq.nbits) == [8, 4, 4] and index.rq.search_type == RQ.ST_norm_qint8
    assert index.code_size == 3
    rcq = nearly.index_factory(32, "RCQ1x3_1x4_1x5")
    assert list(rcq.rq.nbits) == [3, 4, 5]
    for bad in ("LSQ1x8_2x4", "RQ1x8_2x4fs", "RCQ1x8_1x0"):
        with pytest.raises((RuntimeError, ValueError, RuntimeError)):
            nearly.index_factory(32, bad)


def test_ivf_search_equals_brute_force():
    xt, xb, xq = data(4000, 32), data(2000, 32, 1), data(30, 32, 2)
    index = nearly.index_factory(32, "IVF16,RQ1x8_2x6_1x4_Nfloat")
    index.rq.train_type = RQ.Train_default
    index.train(xt)
    index.add(xb)
    index.nprobe = 16
    D, I = index.search(xq, 5)
    rec = index.reconstruct_n(0, index.ntotal)
    ref = ((xq[:, None, :] - rec[None]) ** 2).sum(-1)
    np.testing.assert_allclose(D, np.sort(ref, axis=1)[:, :5], rtol=1e-3, atol=1e-3)


def test_rcq_centroids_and_searches():
    xt, xq = data(3000, 16), data(40, 16, 1)
    rcq = nearly.ResidualCoarseQuantizer(16, [3, 4, 5])
    rcq.train(xt)
    assert rcq.ntotal == 4096
    cents = rcq.reconstruct_n(0, rcq.ntotal)
    cb = rcq.rq.codebooks.reshape(-1, 16)
    t = np.arange(4096)
    expect = cb[t & 7] + cb[8 + ((t >> 3) & 15)] + cb[24 + (t >> 7)]
    np.testing.assert_allclose(cents, expect, atol=1e-5)
    Dref, Iref = faiss.knn(xq, cents, 10)
    rcq.set_beam_factor(-1)
    D, I = rcq.search(xq, 10)
    np.testing.assert_array_equal(I, Iref)
    np.testing.assert_allclose(D, Dref, rtol=1e-4, atol=1e-4)
    # The quantizer's own exhaustive searches and norms of all 2^12 centroids.
    aq = rcq.rq
    norms = np.zeros(4096, "float32")
    aq.compute_centroid_norms(nearly.swig_ptr(norms))
    np.testing.assert_allclose(norms, (cents ** 2).sum(1), rtol=1e-5, atol=1e-5)
    for metric, fn in ((faiss.METRIC_INNER_PRODUCT, aq.knn_centroids_inner_product), (faiss.METRIC_L2, aq.knn_centroids_L2)):
        Dr, Ir = faiss.knn(xq, cents, 10, metric=metric)
        Dn, In = np.zeros_like(Dr), np.zeros_like(Ir)
        fn(len(xq), xq, 10, Dn, In)
        np.testing.assert_array_equal(In, Ir)
        np.testing.assert_allclose(Dn, Dr, rtol=1e-4, atol=1e-4)
    # The beam search finds the exact neighbours given a wide enough beam.
    rcq.set_beam_factor(64)
    D2, I2 = rcq.search(xq, 10)
    assert (I2 == Iref).mean() > 0.95


def test_rcq_takes_another_quantizer():
    ds = data(400, 16)
    index1 = nearly.index_factory(16, "RQ1x3_1x4,Refine(Flat)")
    index1.train(ds)
    irq = nearly.downcast_index(index1.base_index)
    irq.rq.max_beam_size = 4
    index2 = nearly.index_factory(16, "IVF128(RCQ1x3_1x4),Flat")
    index2.train(ds)
    quantizer = nearly.downcast_index(index2.quantizer)
    quantizer.rq = irq.rq
    np.testing.assert_array_equal(quantizer.rq.codebooks, irq.rq.codebooks)
    np.testing.assert_array_equal(index1.sa_encode(ds), index2.sa_encode(ds))
    with pytest.raises(ValueError):
        quantizer.rq = RQ(16, [4, 3])  # other widths: other centroids
    with pytest.raises(ValueError):
        quantizer.rq = RQ(8, [3, 4])


@pytest.mark.parametrize("fs", ["RQ1x8_2x4_Nqint8", "IVF8,RQ2x5_1x7", "RCQ2x3_1x5", "RQ1x6_1x9_Ncqint4"])
def test_persistence(fs, tmp_path):
    xt, xb, xq = data(2000, 16), data(300, 16, 1), data(10, 16, 2)
    index = nearly.index_factory(16, fs)
    index.train(xt)
    if not isinstance(index, nearly.ResidualCoarseQuantizer):
        index.add(xb)
    D, I = index.search(xq, 5)
    blob = nearly.serialize_index(index)
    back = nearly.deserialize_index(blob)
    assert list(nearly.downcast_index(back).rq.nbits) == list(index.rq.nbits)
    D2, I2 = back.search(xq, 5)
    np.testing.assert_array_equal(I, I2)
    np.testing.assert_array_equal(D, D2)
    path = str(tmp_path / "rq.index")
    nearly.write_index(index, path)
    raw = open(path, "rb").read()
    for cut in (len(raw) // 3, len(raw) - 9):
        open(path, "wb").write(raw[:cut])
        with pytest.raises((RuntimeError, ValueError, OSError)):
            nearly.read_index(path)


def test_uniform_widths_file_unchanged():
    # One width for all codebooks keeps the file as before (one nbits field),
    # so indexes of one width stay readable by older nearly versions.
    a = nearly.serialize_index(nearly.IndexResidualQuantizer(16, 3, 8))
    b = nearly.serialize_index(nearly.IndexResidualQuantizer(16, [8, 8, 8]))
    np.testing.assert_array_equal(a, b)
    c = nearly.serialize_index(nearly.IndexResidualQuantizer(16, [8, 8, 7]))
    assert len(c) == len(a) + 3 * 8  # the three widths follow a zero


def test_one_width_modes_refuse_mixed_widths():
    rq = RQ(16, [8, 4])
    with pytest.raises(RuntimeError):
        rq.local_search = True
    with pytest.raises(RuntimeError):
        rq.K
    index = nearly.IndexResidualQuantizer(16, [4, 4, 5], nearly.METRIC_L2, RQ.ST_norm_rq2x4)
    index.train(data(1000, 16))
    with pytest.raises(RuntimeError):
        nearly.IndexResidualQuantizerFastScan(index)
    ok = nearly.IndexResidualQuantizer(16, [4, 4, 4], nearly.METRIC_L2, RQ.ST_norm_rq2x4)
    ok.train(data(1000, 16))
    nearly.IndexResidualQuantizerFastScan(ok)  # one width of 4 bits converts


def test_mixed_widths_beat_their_uniform_budget_on_error():
    # 1x10_2x7 and 3x8 both spend 24 bits; the point of mixed widths is
    # choosing where: both must beat a 2x8 (16 bits) quantizer clearly.
    xt, xb = data(6000, 32), data(1000, 32, 1)

    def mse(widths):
        rq = RQ(32, widths)
        rq.train_type = RQ.Train_default
        rq.train(xt)
        return float(((xb - rq.decode(rq.compute_codes(xb))) ** 2).sum(1).mean())

    assert mse([10, 7, 7]) < 0.97 * mse([8, 8])
    assert mse([8, 8, 8]) < 0.97 * mse([8, 8])


def test_initialize_from_clips_a_quantizer():
    # faiss's initialize_from: the first codebooks, or the next ones, of a
    # trained quantizer; with a greedy beam (1) the clipped codes are the
    # full codes' prefix, and the rest's codes of the residual its suffix.
    xt, xb = data(3000, 16), data(300, 16, 1)
    rq = RQ(16, [6, 4, 5, 7])
    rq.train_type = RQ.Train_default
    rq.train(xt)
    rq.max_beam_size = 1
    bits = np.unpackbits(rq.compute_codes(xb), axis=1, bitorder="little")
    head = RQ(16, 2, 8)
    head.initialize_from(rq)
    assert list(head.nbits) == [6, 4] and head.is_trained and head.max_beam_size == 1
    codes2 = head.compute_codes(xb)
    np.testing.assert_array_equal(np.unpackbits(codes2, axis=1, bitorder="little")[:, :10], bits[:, :10])
    tail = RQ(16, 2, 8)
    tail.initialize_from(rq, 2)
    assert list(tail.nbits) == [5, 7]
    codes3 = tail.compute_codes(xb - head.decode(codes2))
    np.testing.assert_array_equal(np.unpackbits(codes3, axis=1, bitorder="little")[:, :12], bits[:, 10:22])
    with pytest.raises(ValueError):
        RQ(16, 3, 8).initialize_from(rq, 2)  # only two codebooks left
    with pytest.raises(RuntimeError):
        RQ(16, 2, 8, RQ.ST_norm_qint8).initialize_from(rq)  # a learnt norm coding


@pytest.mark.parametrize("widths,st", [([4, 4, 4], RQ.ST_decompress), ([6, 4, 5], RQ.ST_norm_qint8)])
def test_codebook_refinement_lowers_the_error(widths, st):
    # faiss's Train_refine_codebook / retrain_AQ_codebook: least-squares
    # codebooks for the codes; the error drops (faiss's test asks 5%).
    xt = data(2000, 32)
    plain = RQ(32, widths, st)
    plain.train_type = RQ.Train_default
    plain.train(xt)
    refined = RQ(32, widths, st)
    refined.train_type = RQ.Train_default | RQ.Train_refine_codebook
    refined.train(xt)

    def err(q):
        return float(((xt - q.decode(q.compute_codes(xt))) ** 2).sum())

    before = err(plain)
    assert before > 1.03 * err(refined)
    plain.retrain_AQ_codebook(len(xt), xt)  # one refit
    assert before > 1.01 * err(plain)
    # The least-squares fit itself: no other codebooks do better for the same codes.
    codes = np.stack([np.unpackbits(plain.compute_codes(xt), axis=1, bitorder="little")[:, s:s + w]
                      @ (1 << np.arange(w)) for s, w in zip(np.cumsum([0] + widths[:-1]), widths)], axis=1)
    onehot = np.zeros((len(xt), plain.total_codebook_size))
    off = np.array(list(plain.codebook_offsets)[:-1])
    onehot[np.arange(len(xt))[:, None], codes + off] = 1
    plain.update_codebooks(xt, codes.astype("int32"))
    fit = ((xt - onehot @ plain.codebooks.reshape(-1, 32)) ** 2).sum()
    best = np.linalg.lstsq(onehot, xt, rcond=None)
    best_fit = ((xt - onehot @ best[0]) ** 2).sum()
    assert fit <= best_fit * 1.001


def test_max_mem_distances_bounds_the_blocks_not_the_codes():
    xt, xb = data(2000, 16), data(500, 16, 1)
    rq = RQ(16, [6, 5, 7])
    rq.train_type = RQ.Train_default
    rq.train(xt)
    ref = rq.compute_codes(xb)
    rq.max_mem_distances = 2 * 5 * 16 * 4 * 7  # blocks of 7 vectors
    np.testing.assert_array_equal(rq.compute_codes(xb), ref)
    with pytest.raises(ValueError):
        rq.max_mem_distances = 0
