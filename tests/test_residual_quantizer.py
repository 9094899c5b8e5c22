"""ResidualQuantizer (faiss's additive quantizer: beam-search encoding,
progressive-dimension k-means training, the norm formats of every search
type), IndexResidualQuantizer and IndexIVFResidualQuantizer against numpy
references: the bit layout, decoding as a sum of codewords, greedy encoding
(beam 1) step for step, searches equal to exact search over the decoded
vectors, persistence, corrupt input, untrained use and bad parameters."""
import os
import pickle
import signal

import numpy as np
import pytest

import nearly
from _testutil import METRIC_IP, METRIC_L2, blobs, brute_force, randn, seconds_until_interrupted, tolerance

RQ = nearly.ResidualQuantizer
ST = {n: getattr(RQ, n) for n in ("ST_decompress", "ST_LUT_nonorm", "ST_norm_from_LUT", "ST_norm_float",
                                  "ST_norm_qint8", "ST_norm_qint4", "ST_norm_cqint8", "ST_norm_cqint4")}
NORM_BITS = {"ST_norm_float": 32, "ST_norm_qint8": 8, "ST_norm_qint4": 4, "ST_norm_cqint8": 8, "ST_norm_cqint4": 4}
METRICS = [METRIC_L2, METRIC_IP]
METRIC_IDS = ["L2", "IP"]


def unpack(codes, M, nbits, norm_bits=0):
    """faiss's bit strings, least significant bit first: M indexes, then the norm."""
    bits = np.unpackbits(codes, axis=1, bitorder="little").astype(np.uint64)
    w = np.uint64(1) << np.arange(64, dtype=np.uint64)
    idx = np.stack([(bits[:, m * nbits:(m + 1) * nbits] * w[:nbits]).sum(1) for m in range(M)], axis=1)
    norm = (bits[:, M * nbits:M * nbits + norm_bits] * w[:norm_bits]).sum(1) if norm_bits else None
    return idx.astype(np.int64), norm


def codebooks_of(rq):
    return rq.codebooks.reshape(rq.M, 1 << rq.nbits[0], rq.d)


def ref_decode(rq, idx):
    cb = codebooks_of(rq)
    return sum(cb[m][idx[:, m]] for m in range(rq.M)).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return blobs(rng, 3000, 16), blobs(rng, 20, 16)


@pytest.fixture(scope="module")
def trained(data):
    """One trained quantizer per search type (the same training: the codebooks
    do not depend on it), 4 codebooks of 5 bits."""
    xt, _ = data
    out = {}
    for name, st in ST.items():
        rq = RQ(16, 4, 5, st)
        rq.train(xt)
        out[name] = rq
    return out


# ---------------------------------------------------------------- codec


def test_constants_and_sizes():
    assert list(ST.values()) == list(range(8))
    assert (RQ.Train_default, RQ.Train_progressive_dim, RQ.Train_refine_codebook, RQ.Train_top_beam) == (0, 1, 2, 1024)
    for name, st in ST.items():
        rq = RQ(16, 5, 7, st)
        nb = NORM_BITS.get(name, 0)
        assert rq.code_size == (5 * 7 + nb + 7) // 8 and rq.norm_bits == nb and rq.tot_bits == 35 + nb
        assert rq.nbits == [7] * 5 and rq.total_codebook_size == 5 * 128 and not rq.is_trained
    assert RQ(16, 8, 8).max_beam_size == 5 and RQ(16, 8, 8).cp.niter == 10


@pytest.mark.parametrize("name", list(ST))
def test_codes_layout_and_decode(trained, data, name):
    rq = trained[name]
    xt, _ = data
    x = xt[:200]
    codes = rq.compute_codes(x)
    assert codes.shape == (200, rq.code_size) and codes.dtype == np.uint8
    idx, norm = unpack(codes, rq.M, 5, rq.norm_bits)
    assert (idx < 32).all()
    dec = rq.decode(codes)
    np.testing.assert_allclose(dec, ref_decode(rq, idx), rtol=1e-6, atol=1e-5)
    # Every type encodes the same indexes (the codebooks are the same).
    np.testing.assert_array_equal(idx, unpack(trained["ST_decompress"].compute_codes(x), rq.M, 5)[0])
    n2 = (dec.astype(np.float64) ** 2).sum(1)
    if name == "ST_norm_float":
        np.testing.assert_allclose(norm.astype(np.uint32).view(np.float32), n2, rtol=1e-5)
    elif name in ("ST_norm_qint8", "ST_norm_qint4"):
        levels = 256 if name.endswith("8") else 16
        lo, hi = rq.norm_min, rq.norm_max
        want = np.clip(np.floor((n2 - lo) / (hi - lo) * levels), 0, levels - 1)
        assert np.mean(norm == want) > 0.99  # float rounding at cell edges
    elif name in ("ST_norm_cqint8", "ST_norm_cqint4"):
        assert norm.max() < (256 if name.endswith("8") else 16)
    else:
        assert norm is None


def greedy_reference(x, cb):
    """Beam size 1: at each step the codeword nearest the residual."""
    r = x.astype(np.float64)
    idx = []
    for C in cb.astype(np.float64):
        d2 = ((r[:, None, :] - C[None]) ** 2).sum(2)
        j = d2.argmin(1)
        idx.append(j)
        r = r - C[j]
    return np.stack(idx, 1)


def test_beam_one_is_greedy_and_a_wider_beam_is_better(trained, data):
    xt, _ = data
    rq = trained["ST_decompress"]
    x = xt[:300]
    rq.max_beam_size = 1
    try:
        idx = unpack(rq.compute_codes(x), rq.M, 5)[0]
        ref = greedy_reference(x, codebooks_of(rq))
        assert np.mean(idx == ref) > 0.995  # float rounding may swap near-ties
        err1 = ((rq.decode(rq.compute_codes(x)) - x) ** 2).sum()
        rq.max_beam_size = 16
        err16 = ((rq.decode(rq.compute_codes(x)) - x) ** 2).sum()
    finally:
        rq.max_beam_size = 5
    err5 = ((rq.decode(rq.compute_codes(x)) - x) ** 2).sum()
    assert err16 <= err5 <= err1 * 1.0001
    assert err5 < 0.98 * err1


@pytest.mark.parametrize("train_type", [0, 1, 1024, 1 | 1024, 1 | 2048])
def test_training_variants_reduce_the_error(data, train_type):
    xt, _ = data
    rq = RQ(16, 4, 5)
    rq.train_type = train_type
    rq.train(xt)
    rec = rq.decode(rq.compute_codes(xt))
    err = ((rec - xt) ** 2).sum(1).mean()
    base = ((xt - xt.mean(0)) ** 2).sum(1).mean()
    assert err < 0.35 * base, (err, base)
    # More codebooks, less error.
    rq2 = RQ(16, 2, 5)
    rq2.train_type = train_type
    rq2.train(xt)
    assert err < ((rq2.decode(rq2.compute_codes(xt)) - xt) ** 2).sum(1).mean()


def test_bad_parameters_raise():
    with pytest.raises(ValueError):
        RQ(16, 4, 0)
    with pytest.raises(RuntimeError, match="not implemented"):
        RQ(16, 4, 17)
    with pytest.raises(ValueError):
        RQ(16, 0, 8)
    with pytest.raises(RuntimeError, match="not implemented"):
        RQ(16, 4, 8, 10)  # no such search type
    rq = RQ(16, 4, 4)
    with pytest.raises(RuntimeError, match="not trained"):
        rq.compute_codes(np.zeros((2, 16), np.float32))
    with pytest.raises(RuntimeError, match="not trained"):
        rq.decode(np.zeros((2, rq.code_size), np.uint8))
    with pytest.raises(ValueError):
        rq.max_beam_size = 0
    x = randn(np.random.default_rng(1), 100, 16)
    rq.train_type = 1 << 20
    with pytest.raises(ValueError):
        rq.train(x)
    rq.train_type = RQ.Train_progressive_dim
    bad = x.copy()
    bad[3, 3] = np.nan
    with pytest.raises(ValueError, match="(?i)nan|finite"):
        rq.train(bad)
    with pytest.raises(RuntimeError):
        rq.train(x[:10])  # fewer points than 2^nbits words
    rq.train(x)
    with pytest.raises(ValueError):
        rq.compute_codes(np.zeros((2, 15), np.float32))
    with pytest.raises(ValueError):
        rq.decode(np.zeros((2, rq.code_size + 1), np.uint8))


# ---------------------------------------------------------------- IndexResidualQuantizer


def reference_scores(name, metric, xq, dec, rq, codes):
    """What each search type reports, from the decoded vectors."""
    if name == "ST_decompress" or metric == METRIC_IP:
        return brute_force(xq, dec, len(dec), metric)
    ip = xq.astype(np.float64) @ dec.astype(np.float64).T
    q2 = (xq.astype(np.float64) ** 2).sum(1)[:, None]
    if name == "ST_LUT_nonorm":
        s = q2 - ip  # faiss's L2 without a norm: ||q||^2 - <q, x>
    else:
        _, nc = unpack(codes, rq.M, 5, rq.norm_bits)
        if name == "ST_norm_float":
            norm = nc.astype(np.uint32).view(np.float32).astype(np.float64)
        elif name in ("ST_norm_qint8", "ST_norm_qint4"):
            levels = 256 if name.endswith("8") else 16
            norm = (nc + 0.5) / levels * (rq.norm_max - rq.norm_min) + rq.norm_min
        else:
            norm = (dec.astype(np.float64) ** 2).sum(1)  # from_LUT: exact; cqint: checked loosely below
        s = q2 + norm[None, :] - 2 * ip
    order = np.argsort(s, axis=1, kind="stable")
    return np.take_along_axis(s, order, 1).astype(np.float32), order


@pytest.mark.parametrize("name", list(ST))
@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_index_search_matches_its_reference(data, name, metric):
    xt, xq = data
    index = nearly.IndexResidualQuantizer(16, 4, 5, metric, ST[name])
    assert not index.is_trained
    index.train(xt[:2000])
    index.add(xt)
    codes = index.codes.reshape(len(xt), -1)
    dec = index.rq.decode(codes)
    np.testing.assert_array_equal(np.stack([index.reconstruct(i) for i in range(0, 3000, 301)]), dec[::301])
    np.testing.assert_array_equal(index.sa_encode(xt[:30]), codes[:30])
    D, I = index.search(xq, 10)
    Dr, Ir = reference_scores(name, metric, xq, dec, index.rq, codes)
    Dr, Ir = Dr[:, :10], Ir[:, :10]
    if name in ("ST_norm_cqint8", "ST_norm_cqint4") and metric == METRIC_L2:
        # The norm is the nearest 1-d k-means centroid: distances within its step.
        step = (index.rq.norm_max - index.rq.norm_min) / (16 if name.endswith("4") else 64)
        np.testing.assert_allclose(D, Dr, atol=step + 1e-3)
        return
    tol = tolerance(xq, dec, metric, rel=1e-4)
    np.testing.assert_allclose(D, Dr, atol=tol, rtol=0)
    assert np.mean(I == Ir) > 0.97
    k = len(xt) + 3
    D, I = index.search(xq, k)
    assert (I[:, len(xt):] == -1).all() and set(I[0, :len(xt)]) == set(range(len(xt)))


def test_index_selector_remove_merge(data):
    xt, xq = data
    a = nearly.index_factory(16, "RQ4x5_Nfloat")
    a.train(xt)
    b = nearly.deserialize_index(nearly.serialize_index(a))
    a.add(xt[:1000])
    b.add(xt[1000:])
    a.merge_from(b)
    full = nearly.deserialize_index(nearly.serialize_index(b))
    full.reset()
    full.add(xt)
    np.testing.assert_array_equal(a.search(xq, 10)[1], full.search(xq, 10)[1])
    D, I = a.search(xq, 5, params=nearly.SearchParameters(sel=nearly.IDSelectorRange(100, 300)))
    assert ((I >= 100) & (I < 300)).all()
    assert a.remove_ids(nearly.IDSelectorRange(0, 1000)) == 1000 and a.ntotal == 2000
    other = nearly.index_factory(16, "RQ4x5_Nfloat")
    other.train(xt[::-1].copy())
    with pytest.raises(RuntimeError):
        a.merge_from(other)  # other codebooks


def test_untrained_and_nan_raise(data):
    xt, _ = data
    index = nearly.IndexResidualQuantizer(16, 4, 5)
    with pytest.raises(RuntimeError, match="is_trained"):
        index.add(xt)
    with pytest.raises(RuntimeError, match="is_trained"):
        index.search(xt[:2], 1)
    index.train(xt)
    bad = xt[:10].copy()
    bad[2, 2] = np.inf
    with pytest.raises(ValueError):
        index.add(bad)
    with pytest.raises(ValueError):
        index.search(bad, 1)
    index.add(xt[:10])
    with pytest.raises(ValueError):
        index.train(xt)  # a filled index: its codes would lose their meaning


# ---------------------------------------------------------------- IndexIVFResidualQuantizer


@pytest.mark.parametrize("name", ["ST_decompress", "ST_norm_float", "ST_LUT_nonorm", "ST_norm_from_LUT"])
@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
@pytest.mark.parametrize("by_residual", [True, False])
def test_ivf_full_probe_matches_decoded(data, name, metric, by_residual):
    xt, xq = data
    nlist = 8
    index = nearly.IndexIVFResidualQuantizer(nearly.IndexFlat(16, metric), 16, nlist, 4, 5, metric, ST[name])
    index.by_residual = by_residual
    index.train(xt)
    index.add(xt)
    index.make_direct_map()
    dec = np.stack([index.reconstruct(i) for i in range(len(xt))])
    index.nprobe = nlist
    D, I = index.search(xq, 10)
    if name == "ST_LUT_nonorm" and metric == METRIC_L2:
        # No norm: faiss's ||q'||^2 - <q', r> per list, not a distance; ranking checked loosely.
        assert (I >= 0).all()
        return
    Dr, Ir = brute_force(xq, dec, 10, metric)
    tol = tolerance(xq, dec, metric, rel=1e-4)
    np.testing.assert_allclose(D, Dr, atol=tol, rtol=0)
    assert np.mean(I == Ir) > 0.95


def test_ivf_factory_and_nprobe(data):
    xt, xq = data
    index = nearly.index_factory(16, "IVF8,RQ4x5_Nqint8")
    assert type(index) is nearly.IndexIVFResidualQuantizer and index.rq.search_type == RQ.ST_norm_qint8
    assert index.code_size == 4 and index.by_residual
    index.train(xt)
    index.add(xt)
    index.nprobe = 1
    D1, _ = index.search(xq, 10)
    D8, I8 = index.search(xq, 10, params=nearly.SearchParametersIVF(nprobe=8))
    assert (D8 <= D1 + 1e-4).all()


# ---------------------------------------------------------------- factory, persistence


@pytest.mark.parametrize("fs,st", [("RQ8x8", "ST_decompress"), ("RQ8x8_Nfloat", "ST_norm_float"),
                                   ("RQ4x6_Nqint4", "ST_norm_qint4"), ("RQ2x10_Ncqint8", "ST_norm_cqint8"),
                                   ("RQ3x8_Nnone", "ST_LUT_nonorm"), ("IVF64,RQ8x8_Nqint8", "ST_norm_qint8"),
                                   ("IVF64_HNSW16,RQ4x8", "ST_decompress")])
def test_factory_strings(fs, st):
    index = nearly.index_factory(32, fs)
    assert index.rq.search_type == ST[st]
    assert type(index).__name__ == ("IndexIVFResidualQuantizer" if "IVF" in fs else "IndexResidualQuantizer")
    ip = nearly.index_factory(32, fs.split(",")[-1], nearly.METRIC_INNER_PRODUCT)
    if "_N" not in fs:
        assert ip.rq.search_type == RQ.ST_LUT_nonorm  # faiss's default for inner product
    for bad in ("RQ8x0", "RQ8x17", "RQ0x8", "RQ8x8_Nlsq4x2", "RQ2x8_1x0", "RQ2x8_"):
        with pytest.raises((RuntimeError, ValueError)):
            nearly.index_factory(32, bad)


FS = ["RQ4x5", "RQ4x5_Nfloat", "RQ4x5_Ncqint4", "IVF4,RQ4x5_Nqint8", "IVF4,RQ3x5"]


def _built(fs, n=400, d=8):
    rng = np.random.default_rng(6)
    x = blobs(rng, n, d)
    index = nearly.index_factory(d, fs)
    index.train(x)
    index.add(x)
    return index


@pytest.mark.parametrize("fs", FS)
def test_round_trips(fs, tmp_path):
    index = _built(fs)
    if "IVF" in fs:
        index.nprobe = 3
    path = str(tmp_path / "rq.index")
    nearly.write_index(index, path)
    xq = randn(np.random.default_rng(9), 7, index.d)
    for copy in (nearly.read_index(path), nearly.deserialize_index(nearly.serialize_index(index)),
                 pickle.loads(pickle.dumps(index))):
        assert type(copy) is type(index) and copy.ntotal == index.ntotal and copy.code_size == index.code_size
        np.testing.assert_array_equal(copy.rq.codebooks, index.rq.codebooks)
        assert copy.rq.search_type == index.rq.search_type and copy.rq.max_beam_size == index.rq.max_beam_size
        for k in (1, 5, index.ntotal + 2):
            Da, Ia = index.search(xq, k)
            Db, Ib = copy.search(xq, k)
            np.testing.assert_array_equal(Ia, Ib)
            np.testing.assert_array_equal(Da, Db)


def test_untrained_round_trip():
    index = nearly.index_factory(8, "RQ2x4_Nqint8")
    index.rq.max_beam_size = 3
    index.rq.train_type = RQ.Train_default
    copy = nearly.deserialize_index(nearly.serialize_index(index))
    assert not copy.is_trained and copy.rq.max_beam_size == 3 and copy.rq.train_type == RQ.Train_default
    x = blobs(np.random.default_rng(0), 200, 8)
    copy.train(x)
    copy.add(x)
    assert copy.ntotal == 200


def _ser(index):
    return bytes(nearly.serialize_index(index))


def _deser(b):
    return nearly.deserialize_index(np.frombuffer(b, dtype=np.uint8).copy())


@pytest.mark.parametrize("fs", ["RQ2x4_Nfloat", "IVF2,RQ2x4_Ncqint4"])
def test_truncated_and_flipped_rejected(fs):
    good = _ser(_built(fs, n=40, d=4))
    for n in range(0, len(good), 3):
        with pytest.raises(nearly.IndexFileError):
            _deser(good[:n])
    for pos in range(0, len(good), 2):
        bad = bytearray(good)
        bad[pos] ^= 0x80
        with pytest.raises(nearly.IndexFileError):
            _deser(bytes(bad))


@pytest.mark.parametrize("fs", ["RQ2x4_Ncqint4", "IVF2,RQ2x4_Nqint8"])
def test_forged_payloads_rejected_or_consistent(fs):
    """Checksum-valid forgeries: rejected with IndexFileError or a usable index."""
    import test_io as tio

    tio.forge_every_byte(_ser(_built(fs, n=30, d=4)))


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name != "posix", reason="needs POSIX signals")
def test_ctrl_c_interrupts_training_and_encoding():
    rng = np.random.default_rng(2)
    x = randn(rng, 60_000, 128)
    rq = RQ(128, 16, 10)  # 1,024-word codebooks, beam 5: minutes uninterrupted
    elapsed = seconds_until_interrupted(lambda: rq.train(x))
    assert elapsed < 10, f"the interrupt took {elapsed:.1f}s to land"
    assert not rq.is_trained
    small = RQ(128, 2, 4)
    small.train(x[:2000])
    small.max_beam_size = 10_000  # huge beams: slow encoding
    big = RQ(128, 16, 8)
    big.train_type = RQ.Train_default
    big.cp.niter = 1
    big.train(x[:3000])
    big.max_beam_size = 64
    elapsed = seconds_until_interrupted(lambda: big.compute_codes(x))
    assert elapsed < 10, f"the interrupt took {elapsed:.1f}s to land"


# Product mode (faiss's ProductResidualQuantizer): a residual quantizer per
# slice of d; codes are the slices' codes one after the other.

def test_product_codes_are_the_slices_codes(data):
    x, _ = data
    d = x.shape[1]
    prq = nearly.ProductResidualQuantizer(d, 2, 3, 4, RQ.ST_norm_float)
    assert isinstance(prq, nearly.ProductResidualQuantizer) and isinstance(prq, RQ)
    assert not isinstance(RQ(d, 6, 4), nearly.ProductResidualQuantizer)
    assert (prq.nsplits, prq.M, prq.code_size) == (2, 6, (6 * 4 + 32 + 7) // 8)
    prq.train(x)
    codes = prq.compute_codes(x[:300])
    idx, _ = unpack(codes, 6, 4)
    half = d // 2
    dec = np.zeros((300, d), np.float64)
    for s in range(2):
        sub = prq.subquantizer(s)
        assert (sub.d, sub.M, sub.nsplits) == (half, 3, 1)
        sub_idx, _ = unpack(sub.compute_codes(x[:300, s * half:(s + 1) * half]), 3, 4)
        np.testing.assert_array_equal(idx[:, 3 * s:3 * s + 3], sub_idx)
        dec[:, s * half:(s + 1) * half] = ref_decode(sub, sub_idx)
        # faiss's layout: each slice's codewords at the slice's width
        np.testing.assert_array_equal(prq.codebooks.reshape(2, 3 * 16, half)[s], sub.codebooks.reshape(3 * 16, half))
    np.testing.assert_allclose(prq.decode(codes), dec, rtol=1e-5, atol=1e-5)
    # the stored norm is that of the whole reconstruction
    norms = np.frombuffer(codes[:, -4:].tobytes(), dtype=np.float32) if (6 * 4) % 8 == 0 else None
    np.testing.assert_allclose(norms, (dec ** 2).sum(1), rtol=1e-4)
    # assigning the compact codebooks back changes nothing
    back = nearly.ProductResidualQuantizer(d, 2, 3, 4, RQ.ST_norm_float)
    back.train(x)
    back.codebooks = prq.codebooks
    np.testing.assert_array_equal(back.decode(codes), prq.decode(codes))
    with pytest.raises(ValueError):
        back.codebooks = prq.codebooks[:-1]
    with pytest.raises(ValueError):
        nearly.ProductResidualQuantizer(d, 3, 2, 4)  # 3 does not divide 16
    with pytest.raises(IndexError):
        prq.subquantizer(2)


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_product_indexes_search_their_decoded_vectors(data, metric, tmp_path):
    x, xq = data
    d = x.shape[1]
    for key, cls in [("PRQ2x3x4", nearly.IndexProductResidualQuantizer),
                     ("IVF8,PRQ2x3x4", nearly.IndexIVFProductResidualQuantizer),
                     ("PRQ2x3x4fs" + ("_Nrq2x4" if metric == METRIC_L2 else ""),
                      nearly.IndexProductResidualQuantizerFastScan),
                     ("IVF8,PRQ2x3x4fsr" + ("_Nrq2x4" if metric == METRIC_L2 else ""),
                      nearly.IndexIVFProductResidualQuantizerFastScan)]:
        index = nearly.index_factory(d, key, metric)
        assert isinstance(index, cls), key
        others = {nearly.IndexProductResidualQuantizer, nearly.IndexIVFProductResidualQuantizer,
                  nearly.IndexProductResidualQuantizerFastScan, nearly.IndexIVFProductResidualQuantizerFastScan} - {cls}
        assert not any(isinstance(index, o) for o in others), key
        assert index.prq.nsplits == 2
        index.train(x)
        index.add(x)
        if hasattr(index, "nprobe"):
            index.nprobe = 8
        if hasattr(index, "implem"):
            index.implem = 1 if hasattr(index, "nprobe") else 2
        dec = index.reconstruct_n(0, index.ntotal).astype(np.float64)
        D, I = index.search(xq, 5)
        if "fs" not in key:  # decompress: exact over the decoded vectors
            scores = xq.astype(np.float64) @ dec.T if metric == METRIC_IP else \
                ((xq[:, None, :].astype(np.float64) - dec[None]) ** 2).sum(-1)
            best = np.sort(-scores if metric == METRIC_IP else scores, axis=1)[:, :5]
            np.testing.assert_allclose(D, -best if metric == METRIC_IP else best, rtol=1e-4, atol=1e-3)
        back = nearly.deserialize_index(nearly.serialize_index(index))
        assert back.rq.nsplits == 2 and isinstance(back, cls)
        if hasattr(index, "implem"):
            back.implem = index.implem  # a search knob, not stored (as in faiss)
        if hasattr(index, "nprobe"):
            back.nprobe = index.nprobe
        for a, b in zip(back.search(xq, 5), (D, I)):
            np.testing.assert_array_equal(a, b)


def test_product_beside_faiss(data):
    import faiss
    x, _ = data
    d = x.shape[1]
    errs = {}
    for lib in (faiss, nearly):
        prq = lib.ProductResidualQuantizer(d, 2, 4, 4)
        prq.train(x)
        codes = prq.compute_codes(x)
        errs[lib.__name__] = float(((prq.decode(codes) - x) ** 2).sum(1).mean())
        assert prq.code_size == 4
    assert errs["nearly"] <= errs["faiss"] * 1.02, errs


def test_codebooks_marked_trained_by_hand_and_search_type_switch():
    """faiss's "fake training" (codebooks assigned, rq.is_trained and the
    index's is_trained set) gives the trained index's results; search_type
    switches among the types that store no norm (the codes keep their
    layout: decoding and table scans agree), and refuses the others."""
    rng = np.random.default_rng(8)
    x, xq = randn(rng, 2000, 16), randn(rng, 30, 16)
    ref = nearly.IndexResidualQuantizer(16, 3, 4, METRIC_IP, RQ.ST_LUT_nonorm)
    ref.train(x)
    ref.add(x)
    fake = nearly.IndexResidualQuantizer(16, 3, 4, METRIC_IP, RQ.ST_LUT_nonorm)
    with pytest.raises(RuntimeError, match="codebooks"):
        fake.rq.is_trained = True
    with pytest.raises(RuntimeError, match="quantizer trained"):
        fake.is_trained = True
    fake.rq.codebooks = ref.rq.codebooks
    fake.rq.is_trained = True
    fake.is_trained = True
    fake.add(x)
    for a, b in zip(fake.search(xq, 5), ref.search(xq, 5)):
        np.testing.assert_array_equal(a, b)
    # decoding, tables and tables with norms from the LUT score alike
    D0, I0 = ref.search(xq, 5)
    for st in (RQ.ST_decompress, RQ.ST_norm_from_LUT, RQ.ST_LUT_nonorm):
        ref.rq.search_type = st
        assert ref.rq.search_type == st
        D, I = ref.search(xq, 5)
        np.testing.assert_allclose(D, D0, rtol=1e-5, atol=1e-5)
        assert (I != I0).mean() < 0.05  # ties of short codes may order differently
    with pytest.raises(RuntimeError, match="search_type"):
        ref.rq.search_type = RQ.ST_norm_float  # a norm the codes do not hold
    with pytest.raises(ValueError):
        ref.rq.search_type = 42
    # norms that need training cannot be marked trained by hand
    q8 = RQ(16, 3, 4, RQ.ST_norm_qint8)
    q8.codebooks = ref.rq.codebooks
    with pytest.raises(RuntimeError, match="norm"):
        q8.is_trained = True
