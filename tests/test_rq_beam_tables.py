"""The residual quantizer's beam search step by step (faiss's
beam_search_encode_step, beam_search_encode_step_tab) against numpy, and
the beam search through tables (refine_beam_LUT: the residual coarse
quantizer's search, use_beam_LUT encoding) against the beam search on
residuals."""
import numpy as np
import pytest

import faiss
import nearly

RQ = nearly.ResidualQuantizer


def ref_step(cent, residuals, codes, L):
    """numpy: the L best (residual - codeword) of each vector's beam, best first."""
    n, B, d = residuals.shape
    K = len(cent)
    dist = ((residuals[:, :, None, :] - cent[None, None]) ** 2).sum(-1).reshape(n, B * K)
    order = np.argsort(dist, axis=1, kind="stable")[:, :L]
    rows = np.arange(n)[:, None]
    b, k = order // K, order % K
    new_codes = np.concatenate([codes[rows, b], k[:, :, None]], axis=2)
    return new_codes, residuals[rows, b] - cent[k], dist[rows, order]


def run_step(cent, residuals, codes, L, assign_index=None):
    n, B, d = residuals.shape
    K, m = len(cent), codes.shape[2]
    new_codes = np.zeros((n, L, m + 1), "int32")
    new_res = np.zeros((n, L, d), "float32")
    new_dist = np.zeros((n, L), "float32")
    nearly.beam_search_encode_step(d, K, cent, n, B, residuals, m, codes.astype("int32"), L, new_codes, new_res,
                                   new_dist, assign_index)
    return new_codes, new_res, new_dist


@pytest.mark.parametrize("L", [1, 3, 10])
@pytest.mark.parametrize("with_index", [False, True])
def test_beam_search_encode_step_equals_numpy(L, with_index):
    rs = np.random.RandomState(5)
    n, d = 300, 16
    x = rs.rand(n, d).astype("float32")
    codes = np.zeros((n, 1, 0), "int32")
    res = x.reshape(n, 1, d)
    for K in (40, 24):  # two steps: beam 1, then L
        cent = rs.rand(K, d).astype("float32")
        ref = ref_step(cent, res, codes, L)
        got = run_step(cent, res, codes, L, nearly.IndexFlatL2(d) if with_index else None)
        np.testing.assert_array_equal(got[0], ref[0])
        np.testing.assert_allclose(got[1], ref[1], atol=1e-6)
        np.testing.assert_allclose(got[2], ref[2], rtol=1e-4, atol=1e-5)
        codes, res = got[0], got[1]


def test_beam_search_encode_step_refuses_bad_input():
    d, K, n = 8, 4, 5
    cent = np.ones((K, d), "float32")
    res = np.zeros((n, 1, d), "float32")
    codes = np.zeros((n, 1, 0), "int32")
    with pytest.raises(ValueError):  # more than beam_size * K kept
        run_step(cent, res, codes, K + 1)
    bad = res.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError):
        run_step(cent, bad, codes, 2)
    with pytest.raises(ValueError):  # an index holding other vectors
        idx = nearly.IndexFlatL2(d)
        idx.add(np.zeros((K + 1, d), "float32"))
        run_step(cent, res, codes, 2, idx)


def tables(rq, x):
    """The query's <x, word> table and the codebooks' cross products, numpy."""
    cb = rq.codebooks.reshape(-1, rq.d)
    off = list(rq.codebook_offsets)
    return x @ cb.T, cb, off


def test_beam_search_encode_step_tab_equals_numpy():
    rq = RQ(24, [5, 4, 6])
    rq.train_type = RQ.Train_default
    rq.train(np.random.default_rng(0).standard_normal((2000, 24)).astype("float32"))
    x = np.random.default_rng(1).standard_normal((200, 24)).astype("float32")
    qcp, cb, off = tables(rq, x)
    L = 7
    codes = np.zeros((len(x), 1, 0), "int32")
    dist = (x ** 2).sum(1, keepdims=True).astype("float32")
    res = x.reshape(len(x), 1, 24)
    for m in range(rq.M):
        K = 1 << rq.nbits[m]
        cent = cb[off[m]:off[m + 1]]
        cross = np.ascontiguousarray(cb[:off[m]] @ cent.T) if m else np.zeros((0, K), "float32")
        B = codes.shape[1]
        L2 = min(B * K, L)
        new_codes = np.zeros((len(x), L2, m + 1), "int32")
        new_dist = np.zeros((len(x), L2), "float32")
        nearly.beam_search_encode_step_tab(K, len(x), B, cross, K, np.array(off, "uint64"),
                                           np.ascontiguousarray(qcp[:, off[m]:off[m + 1]]), K,
                                           (cent ** 2).sum(1).astype("float32"), m, codes, dist, L2, new_codes,
                                           new_dist)
        ref_codes, res, ref_dist = ref_step(cent, res, codes, L2)
        np.testing.assert_array_equal(new_codes, ref_codes)
        np.testing.assert_allclose(new_dist, ref_dist, rtol=1e-4, atol=1e-3)
        codes, dist = new_codes, new_dist
    # A code naming a word its codebook does not have is refused.
    codes[0, 0, 0] = 40
    with pytest.raises(ValueError):
        nearly.beam_search_encode_step_tab(16, len(x), L, np.zeros((112, 16), "float32"), 16,
                                           np.array(off, "uint64"), np.zeros((len(x), 16), "float32"), 16,
                                           np.zeros(16, "float32"), 2, np.ascontiguousarray(codes[:, :, :2]),
                                           dist, 4, np.zeros((len(x), 4, 3), "int32"),
                                           np.zeros((len(x), 4), "float32"))


@pytest.mark.parametrize("widths", [[6, 6], [3, 4, 5]])
def test_rcq_beam_through_tables_equals_beam_on_residuals(widths):
    d = 32
    xt = np.random.default_rng(0).standard_normal((3000, d)).astype("float32")
    xq = np.random.default_rng(1).standard_normal((200, d)).astype("float32")
    rcq = nearly.ResidualCoarseQuantizer(d, widths)
    rcq.train(xt)
    assert len(nearly.vector_to_array(rcq.rq.codebook_cross_products)) > 0
    D, I = rcq.search(xq, 10)
    # Assigning the codebooks drops the cross products: the beam then runs
    # on the residuals; the same beams up to rounding of near ties.
    rcq2 = nearly.ResidualCoarseQuantizer(d, widths)
    rcq2.rq.codebooks = rcq.rq.codebooks
    rcq2.rq.is_trained = True
    rcq2.is_trained = True  # computes the tables
    rcq2.rq.codebooks = rcq.rq.codebooks  # and this drops them
    assert len(nearly.vector_to_array(rcq2.rq.codebook_cross_products)) == 0
    D2, I2 = rcq2.search(xq, 10)
    assert (I == I2).mean() > 0.99
    np.testing.assert_allclose(D, D2, rtol=1e-4, atol=1e-3)
    # And both equal faiss's beam (its own table search) given the same codebooks.
    nb = faiss.UInt64Vector()
    for w in widths:
        nb.push_back(w)
    fq = faiss.ResidualCoarseQuantizer(d, nb)
    faiss.copy_array_to_vector(rcq.rq.codebooks.ravel(), fq.rq.codebooks)
    fq.rq.is_trained = True
    fq.is_trained = True
    fq.ntotal = 1 << sum(widths)
    fq.set_beam_factor(rcq.beam_factor)
    Df, If = fq.search(xq, 10)
    assert (I == If).mean() > 0.99
    np.testing.assert_allclose(D, Df, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("widths", [[8, 8, 8], [10, 6, 5]])
def test_use_beam_lut_encodes_as_the_beam_search(widths):
    d = 48
    xt = np.random.default_rng(0).standard_normal((4000, d)).astype("float32")
    xb = np.random.default_rng(1).standard_normal((1000, d)).astype("float32")
    rq = RQ(d, widths, RQ.ST_norm_float)
    rq.train_type = RQ.Train_default
    rq.train(xt)
    ref = rq.compute_codes(xb)
    rq.use_beam_LUT = 1
    assert len(nearly.vector_to_array(rq.codebook_cross_products)) > 0
    got = rq.compute_codes(xb)
    idx_bytes = sum(widths) // 8  # the indexes; the float norm follows
    assert (got[:, :idx_bytes] == ref[:, :idx_bytes]).all(axis=1).mean() > 0.99
    err_ref = ((xb - rq.decode(ref)) ** 2).sum(1).mean()
    err_got = ((xb - rq.decode(got)) ** 2).sum(1).mean()
    assert err_got == pytest.approx(err_ref, rel=1e-3)
    # Trained with the setting on, the tables come with the training.
    rq2 = RQ(d, widths)
    rq2.use_beam_LUT = 1
    rq2.train_type = RQ.Train_default
    rq2.train(xt)
    assert len(nearly.vector_to_array(rq2.codebook_cross_products)) > 0


def test_beam_tables_are_skipped_when_too_large():
    # RCQ2x16's cross products would take 16 GiB: the beam runs on the
    # residuals instead, and still answers.
    rcq = nearly.ResidualCoarseQuantizer(8, [16, 16])
    cb = np.random.default_rng(0).standard_normal((2 * 65536, 8)).astype("float32")
    rcq.rq.codebooks = cb
    rcq.rq.is_trained = True
    rcq.is_trained = True
    assert len(nearly.vector_to_array(rcq.rq.codebook_cross_products)) == 0
    xq = np.random.default_rng(1).standard_normal((5, 8)).astype("float32")
    D, I = rcq.search(xq, 4)
    for q, row, dist in zip(xq, I, D):
        cents = np.stack([rcq.reconstruct(int(i)) for i in row])
        np.testing.assert_allclose(dist, ((cents - q) ** 2).sum(1), rtol=1e-4, atol=1e-4)


def test_coarse_quantizer_holds_beam_tables_only_while_it_beams():
    """The cross products are the beam's: a quantizer searching exhaustively
    builds none (knn_centroids_* make one per call), and turning the beam
    back on builds them, with the results of a quantizer that always had them."""
    rs = np.random.RandomState(2)
    x = rs.rand(3000, 24).astype("float32")
    xq = rs.rand(100, 24).astype("float32")
    beam = nearly.ResidualCoarseQuantizer(24, 2, 6)
    beam.train(x)
    assert nearly.vector_to_array(beam.rq.codebook_cross_products).size > 0
    exhaustive = nearly.ResidualCoarseQuantizer(24, 2, 6)
    exhaustive.set_beam_factor(-1)
    exhaustive.train(x)
    assert nearly.vector_to_array(exhaustive.rq.codebook_cross_products).size == 0
    np.testing.assert_array_equal(nearly.vector_to_array(exhaustive.rq.codebooks),
                                  nearly.vector_to_array(beam.rq.codebooks))
    exhaustive.set_beam_factor(4)
    assert nearly.vector_to_array(exhaustive.rq.codebook_cross_products).size > 0
    D0, I0 = beam.search(xq, 10)
    D1, I1 = exhaustive.search(xq, 10)
    np.testing.assert_array_equal(I0, I1)
    np.testing.assert_array_equal(D0, D1)


def test_read_skipping_precompute_tables(tmp_path):
    """faiss's IO_FLAG_SKIP_PRECOMPUTE_TABLE: a residual coarse quantizer is
    read without its beam's tables and searches every centroid (faiss's
    rule), an IVFPQ without its precomputed table, with the same results."""
    rs = np.random.RandomState(3)
    x = rs.rand(4000, 32).astype("float32")
    xq = rs.rand(100, 32).astype("float32")
    rcq = nearly.ResidualCoarseQuantizer(32, 2, 5)
    rcq.train(x)
    flags = nearly.IO_FLAG_SKIP_PRECOMPUTE_TABLE
    q2 = nearly.deserialize_index(nearly.serialize_index(rcq), flags)
    assert q2.beam_factor < 0
    assert nearly.vector_to_array(q2.rq.codebook_cross_products).size == 0
    exact = nearly.clone_index(rcq)
    exact.set_beam_factor(-1)
    np.testing.assert_array_equal(q2.search(xq, 10)[1], exact.search(xq, 10)[1])
    path = str(tmp_path / "rcq.index")
    nearly.write_index(rcq, path)
    assert nearly.read_index(path, flags).beam_factor < 0
    assert nearly.read_index(path).beam_factor == rcq.beam_factor

    ivfpq = nearly.index_factory(32, "IVF64,PQ8")
    ivfpq.train(x)
    ivfpq.add(x)
    ivfpq.nprobe = 8
    path = str(tmp_path / "ivfpq.index")
    nearly.write_index(ivfpq, path)
    full = nearly.read_index(path)
    skipped = nearly.read_index(path, flags)
    assert full.use_precomputed_table == 1 and skipped.use_precomputed_table == 0
    Da, Ia = full.search(xq, 10)
    Db, Ib = skipped.search(xq, 10)
    np.testing.assert_array_equal(Ia, Ib)
    np.testing.assert_allclose(Da, Db, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(full.sa_encode(xq), skipped.sa_encode(xq))
    skipped.precompute_table()
    assert skipped.use_precomputed_table == 1
