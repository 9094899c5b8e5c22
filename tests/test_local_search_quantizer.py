"""The additive quantizer's local search mode (faiss's LocalSearchQuantizer,
LSQ++) against numpy references: the codebook update is the ridge
least-squares solution (the blocked Cholesky solver behind it included),
encoding finds the exhaustive optimum on small codebooks and does not depend
on the thread count, training is no worse than faiss's, and every index kind
(flat, IVF, fast-scan, product) searches its decoded vectors and survives a
round trip; bad settings raise."""
import numpy as np
import pytest

import nearly
from _hnswutil import real_data
from _testutil import METRIC_IP, METRIC_L2, blobs, randn

RQ = nearly.ResidualQuantizer


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    return blobs(rng, 3000, 16), blobs(rng, 30, 16)


def lsq(d, M, nbits, st=RQ.ST_decompress, **knobs):
    q = nearly.LocalSearchQuantizer(d, M, nbits, st)
    for k, v in knobs.items():
        setattr(q, k, v)
    return q


def indexes_of(codes, M, nbits):
    bits = np.unpackbits(codes, axis=1, bitorder="little").astype(np.int64)
    w = 1 << np.arange(nbits)
    return np.stack([(bits[:, m * nbits:(m + 1) * nbits] * w).sum(1) for m in range(M)], axis=1)


def decode_ref(q, idx):
    cb = q.codebooks.reshape(q.M, q.K, q.d).astype(np.float64)
    return sum(cb[m][idx[:, m]] for m in range(q.M))


@pytest.mark.parametrize("M,nbits,lambd", [(2, 3, 1e-2), (4, 5, 1e-2), (3, 8, 0.5), (5, 6, 1e-2)])
def test_update_codebooks_is_the_ridge_solution(M, nbits, lambd):
    # M * K from 16 to 768 rows: the Cholesky solver's blocks of 64, whole and cut.
    rng = np.random.default_rng(M * 100 + nbits)
    n, d, K = 1500, 24, 1 << nbits
    x = randn(rng, n, d)
    codes = rng.integers(0, K, (n, M)).astype(np.int32)
    q = lsq(d, M, nbits, lambd=lambd)
    q.update_codebooks(x, codes)
    B = np.zeros((n, M * K))
    for m in range(M):
        B[np.arange(n), m * K + codes[:, m]] = 1
    ref = np.linalg.solve(B.T @ B + lambd * np.eye(M * K), B.T @ x.astype(np.float64))
    np.testing.assert_allclose(q.codebooks.reshape(M * K, d), ref, rtol=1e-5, atol=1e-5)


def test_update_codebooks_refuses_a_singular_system_and_bad_codes():
    rng = np.random.default_rng(1)
    x = randn(rng, 50, 8)
    q = lsq(8, 2, 4, lambd=0.0)
    codes = np.zeros((50, 2), np.int32)  # 15 words of each codebook never used: singular without a ridge
    with pytest.raises(ValueError, match="positive definite"):
        q.update_codebooks(x, codes)
    with pytest.raises(IndexError):
        q.update_codebooks(x, codes + 16)
    with pytest.raises(ValueError):
        q.update_codebooks(x, codes[:, :1])


def test_encoding_finds_the_exhaustive_optimum(data):
    x, _ = data
    q = lsq(16, 2, 4)
    q.train(x)
    codes = indexes_of(q.compute_codes(x[:500]), 2, 4)
    cb = q.codebooks.reshape(2, 16, 16).astype(np.float64)
    sums = (cb[0][:, None, :] + cb[1][None, :, :]).reshape(256, 16)
    err = ((x[:500, None, :].astype(np.float64) - sums[None]) ** 2).sum(-1)
    best = err.min(1)
    got = err[np.arange(500), codes[:, 0] * 16 + codes[:, 1]]
    # iterated conditional modes is a local search: faiss's own finds the
    # optimum for 95% of these vectors too (the same codes, below)
    assert np.mean(got <= best + 1e-6) > 0.9
    assert got.mean() <= best.mean() * 1.5


@pytest.mark.parametrize("M,nbits", [(2, 4), (4, 5), (3, 8)])
def test_encoding_is_faiss_s_for_the_same_codebooks(data, M, nbits):
    # The same random restarts (std::mt19937 and libstdc++'s distributions),
    # the same conditional modes: given the same codebooks, faiss's codes.
    import faiss
    x, _ = data
    q = lsq(16, M, nbits, train_iters=3)
    q.train(x)
    ref = faiss.LocalSearchQuantizer(16, M, nbits)
    faiss.copy_array_to_vector(q.codebooks, ref.codebooks)
    ref.nperts = min(ref.nperts, M)  # faiss's train() clamps it; nearly clamps where it is used
    ref.is_trained = True
    same = np.all(q.compute_codes(x) == ref.compute_codes(x), axis=1)
    assert same.mean() > 0.99, same.mean()


def test_training_lowers_the_error_and_decode_sums_codewords(data):
    x, _ = data
    errs = []
    for iters in (1, 25):
        q = lsq(16, 4, 4, train_iters=iters)
        q.train(x)
        idx = indexes_of(q.compute_codes(x), 4, 4)
        errs.append(((decode_ref(q, idx) - x) ** 2).sum(1).mean())
    assert errs[1] < 0.9 * errs[0], errs
    rand = np.random.default_rng(0).integers(0, 16, idx.shape)
    assert errs[1] < 0.5 * ((decode_ref(q, rand) - x) ** 2).sum(1).mean()
    np.testing.assert_allclose(q.decode(q.compute_codes(x)), decode_ref(q, idx), rtol=1e-5, atol=1e-5)


def test_codes_do_not_depend_on_threads_and_are_repeatable(data):
    x, _ = data
    q = lsq(16, 4, 5, train_iters=4)
    q.train(x)
    before = nearly.omp_get_max_threads()
    try:
        nearly.omp_set_num_threads(1)
        one = q.compute_codes(x)
        nearly.omp_set_num_threads(2)
        two = q.compute_codes(x)
    finally:
        nearly.omp_set_num_threads(before)
    np.testing.assert_array_equal(one, two)
    q2 = lsq(16, 4, 5, train_iters=4)
    q2.train(x)
    np.testing.assert_array_equal(q2.codebooks, q.codebooks)


def test_norm_lsq2x4_is_the_nearest_of_its_sums(data):
    x, _ = data
    q = lsq(16, 4, 4, RQ.ST_norm_lsq2x4, train_iters=5)
    q.train(x)
    assert q.code_size == (4 * 4 + 8) // 8 and q.norm_tabs.shape == (32,)
    codes = q.compute_codes(x[:300])
    norm_codes = codes[:, -1].astype(np.int64)
    tabs = q.norm_tabs.astype(np.float64)
    sums = tabs[np.arange(256) & 15] + tabs[16 + (np.arange(256) >> 4)]
    norms = (q.decode(codes).astype(np.float64) ** 2).sum(1)
    got = np.abs(sums[norm_codes] - norms)
    best = np.abs(sums[None, :] - norms[:, None]).min(1)
    np.testing.assert_allclose(got, best, rtol=1e-4, atol=1e-3)


def test_beside_faiss_on_real_embeddings():
    import faiss
    xb, _ = real_data()
    xt = np.ascontiguousarray(xb[:4000])
    errs = {}
    for lib in (faiss, nearly):
        q = lib.LocalSearchQuantizer(xt.shape[1], 4, 6)
        q.train_iters = 8
        q.train(xt)
        codes = q.compute_codes(xt)
        errs[lib.__name__] = float(((q.decode(codes) - xt) ** 2).sum(1).mean())
    assert errs["nearly"] <= errs["faiss"] * 1.03, errs


def test_product_codes_are_the_slices_codes(data):
    x, _ = data
    plsq = nearly.ProductLocalSearchQuantizer(16, 2, 2, 4, RQ.ST_norm_float)
    assert isinstance(plsq, nearly.ProductLocalSearchQuantizer)
    assert not isinstance(plsq, (nearly.ProductResidualQuantizer, nearly.LocalSearchQuantizer))
    plsq.train_iters = 5
    plsq.train(x)
    idx = indexes_of(plsq.compute_codes(x[:200]), 4, 4)
    for s in range(2):
        sub = plsq.subquantizer(s)
        assert sub.local_search and sub.train_iters == 5
        np.testing.assert_array_equal(idx[:, 2 * s:2 * s + 2],
                                      indexes_of(sub.compute_codes(x[:200, 8 * s:8 * s + 8]), 2, 4))


KINDS = [("LSQ4x4", nearly.IndexLocalSearchQuantizer), ("IVF8,LSQ4x4", nearly.IndexIVFLocalSearchQuantizer),
         ("LSQ4x4fs{n}", nearly.IndexLocalSearchQuantizerFastScan),
         ("IVF8,LSQ4x4fsr{n}", nearly.IndexIVFLocalSearchQuantizerFastScan),
         ("PLSQ2x2x4", nearly.IndexProductLocalSearchQuantizer),
         ("IVF8,PLSQ2x2x4", nearly.IndexIVFProductLocalSearchQuantizer),
         ("PLSQ2x2x4fs{n}", nearly.IndexProductLocalSearchQuantizerFastScan),
         ("IVF8,PLSQ2x2x4fs{n}", nearly.IndexIVFProductLocalSearchQuantizerFastScan)]


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP], ids=["L2", "IP"])
@pytest.mark.parametrize("key,cls", KINDS, ids=[k for k, _ in KINDS])
def test_indexes_search_their_decoded_vectors(data, key, cls, metric):
    x, xq = data
    key = key.format(n="_Nlsq2x4" if metric == METRIC_L2 else "")
    index = nearly.index_factory(16, key, metric)
    assert isinstance(index, cls), key
    assert not any(isinstance(index, c) for _, c in KINDS if c is not cls), key
    assert not isinstance(index, (nearly.IndexProductResidualQuantizer, nearly.IndexResidualQuantizerFastScan)
                          if "fs" not in key else nearly.IndexProductResidualQuantizerFastScan)
    q = index.plsq if key.startswith(("PLSQ", "IVF8,PLSQ")) else index.lsq
    assert q.local_search
    q.train_iters = 4
    index.train(x)
    index.add(x)
    if hasattr(index, "nprobe"):
        index.nprobe = 8
    if hasattr(index, "implem"):
        index.implem = 1 if hasattr(index, "nprobe") else 2  # float tables: exact against the decoded vectors
    dec = index.reconstruct_n(0, index.ntotal).astype(np.float64)
    D, I = index.search(xq, 5)
    if metric == METRIC_IP:
        best = -np.sort(-(xq.astype(np.float64) @ dec.T), axis=1)[:, :5]
    else:
        best = np.sort(((xq[:, None, :].astype(np.float64) - dec[None]) ** 2).sum(-1), axis=1)[:, :5]
    if "fs" in key and metric == METRIC_L2:
        # the norm is stored in 8 bits: distances within the norm quantizer's step
        step = np.abs(np.diff(np.sort(index.rq.norm_tabs[:16]))).max() + np.abs(
            np.diff(np.sort(index.rq.norm_tabs[16:]))).max()
        assert np.abs(D - best).max() <= step + 1e-3
    elif "fs" not in key or metric == METRIC_IP:
        np.testing.assert_allclose(D, best, rtol=1e-4, atol=1e-3)
    back = nearly.deserialize_index(nearly.serialize_index(index))
    assert isinstance(back, cls) and back.rq.local_search and back.rq.train_iters == 4
    for attr in ("nprobe", "implem"):
        if hasattr(index, attr):
            setattr(back, attr, getattr(index, attr))
    for a, b in zip(back.search(xq, 5), (D, I)):
        np.testing.assert_array_equal(a, b)
    # the same seed after the round trip: new vectors get the same codes
    if not hasattr(index, "nprobe"):
        np.testing.assert_array_equal(back.rq.compute_codes(xq), index.rq.compute_codes(xq))


def test_settings_are_checked():
    q = nearly.LocalSearchQuantizer(8, 2, 4)
    assert (q.train_iters, q.encode_ils_iters, q.train_ils_iters, q.icm_iters, q.nperts, q.chunk_size,
            q.random_seed, q.K) == (25, 16, 8, 4, 4, 10000, 0x12345, 16)
    assert q.p == 0.5 and abs(q.lambd - 1e-2) < 1e-9
    for name, bad in [("train_iters", -1), ("encode_ils_iters", -1), ("icm_iters", -3), ("chunk_size", 0),
                      ("nperts", -1), ("p", -0.5), ("lambd", -1.0), ("lambd", float("nan"))]:
        with pytest.raises(ValueError):
            setattr(q, name, bad)
    q.train_iters = 2
    q.train(np.random.default_rng(0).standard_normal((300, 8)).astype(np.float32))
    with pytest.raises(RuntimeError, match="before training"):
        q.local_search = False
    with pytest.raises(RuntimeError):
        nearly.ResidualQuantizer(8, 2, 4, 42)


def test_ctrl_c_interrupts_training_and_encoding():
    from _testutil import seconds_until_interrupted
    x = randn(np.random.default_rng(3), 60_000, 128)
    q = nearly.LocalSearchQuantizer(128, 8, 8)  # 25 iterations of a 2,048-row solve and 60k encodings: minutes
    elapsed = seconds_until_interrupted(lambda: q.train(x))
    assert elapsed < 10, f"the interrupt took {elapsed:.1f}s to land"
    assert not q.is_trained
    q.train_iters = 1
    q.train(x[:3000])
    q.encode_ils_iters = 1000
    elapsed = seconds_until_interrupted(lambda: q.compute_codes(x))
    assert elapsed < 10, f"the interrupt took {elapsed:.1f}s to land"
