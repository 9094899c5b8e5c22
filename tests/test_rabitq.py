"""RaBitQ: the bit dot-product kernels against their scalar reference, the
1-bit estimator against a float64 numpy reference, multi-bit codes against
their own definition, and the index contract (selectors, range search,
persistence, bad input). faiss equality is in tests/compat/test_rabitq_compat.py."""
import os
import pickle

import numpy as np
import pytest

import nearly
from nearly import _nearly
from _testutil import METRIC_IP, METRIC_L2, randn

KERNELS = ["scalar", "popcnt", "dispatch"] + (["vpopcntdq"] if "avx512" in nearly.simd_levels_supported() else [])


def _vpopcnt_ok():
    try:
        _nearly._rabitq_dots(np.zeros((1, 1), np.uint8), np.zeros((1, 1), np.uint8), 1, "vpopcntdq")
        return True
    except RuntimeError:
        return False


@pytest.mark.parametrize("nbytes", [1, 7, 8, 13, 48, 64, 65, 100, 130])
@pytest.mark.parametrize("qb", [0, 1, 3, 4, 8])
def test_dot_kernels_equal_the_scalar_reference(nbytes, qb):
    rng = np.random.default_rng(nbytes * 10 + qb)
    stride = nbytes + 9  # codes carry factors after their bits
    codes = rng.integers(0, 256, (77, stride), dtype=np.uint8)
    planes = rng.integers(0, 256, (qb, nbytes), dtype=np.uint8)
    # numpy reference: popcounts of AND with each plane, weighted 2^b
    bits = np.unpackbits(codes[:, :nbytes], axis=1, bitorder="little").astype(np.int64)
    pbits = np.unpackbits(planes, axis=1, bitorder="little").astype(np.int64) if qb else np.zeros((0, nbytes * 8))
    want_dot = (bits @ (pbits.T @ (2 ** np.arange(qb)))).astype(np.uint32) if qb else np.zeros(77, np.uint32)
    want_pop = bits.sum(1).astype(np.uint32)
    for level in KERNELS:
        if level == "vpopcntdq" and not _vpopcnt_ok():
            continue
        dot, pop = _nearly._rabitq_dots(planes.reshape(qb, nbytes), codes, nbytes, level)
        np.testing.assert_array_equal(dot, want_dot, err_msg=level)
        np.testing.assert_array_equal(pop, want_pop, err_msg=level)


def _estimate64(x, q, c, metric):
    """The 1-bit RaBitQ estimate with the query in float (qb=0), in float64:
    x̄ = (2b - 1) / sqrt(d) the sign code, o = (x - c) / ||x - c||,
    <q - c, x - c> ~ ||x - c|| <q - c, x̄> / <x̄, o>."""
    x, q, c = (np.asarray(a, np.float64) for a in (x, q, c))
    d = x.shape[1]
    r = x - c
    xbar = np.where(r > 0, 1.0, -1.0) / np.sqrt(d)
    norm = np.linalg.norm(r, axis=1)
    ip_xo = (xbar * r).sum(1) / norm
    qr = q - c
    est_ip = (qr @ xbar.T) * (norm / ip_xo)[None, :]  # (nq, nb) estimates of <q - c, x - c>
    l2 = (norm ** 2)[None, :] + (qr ** 2).sum(1)[:, None] - 2 * est_ip
    if metric == METRIC_L2:
        return np.maximum(l2, 0)
    return 0.5 * ((q ** 2).sum(1)[:, None] + (x ** 2).sum(1)[None, :] - l2)


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP])
def test_float_query_estimate_equals_numpy_reference(metric):
    rng = np.random.default_rng(3)
    x, q = randn(rng, 600, 37), randn(rng, 9, 37)
    index = nearly.IndexRaBitQ(37, metric)
    index.train(x)
    index.add(x)
    D, I = index.search(q, 600, params=nearly.RaBitQSearchParameters(qb=0))
    want = _estimate64(x, q, x.astype(np.float32).mean(0), metric)
    got = np.take_along_axis(want, I, axis=1)
    np.testing.assert_allclose(D, got, rtol=1e-4, atol=1e-3)
    # and sorted the metric's way
    assert (np.diff(D, axis=1) >= 0).all() if metric == METRIC_L2 else (np.diff(D, axis=1) <= 0).all()


@pytest.mark.parametrize("qb", [1, 4, 8])
def test_quantized_query_approaches_float_query(qb):
    """More query bits, estimates closer to the float-query ones (the
    quantization error of q - c shrinks by about 2x per bit)."""
    rng = np.random.default_rng(4)
    x, q = randn(rng, 2000, 64), randn(rng, 20, 64)
    index = nearly.IndexRaBitQ(64)
    index.train(x)
    index.add(x)
    D0, I0 = index.search(q, 2000, params=nearly.RaBitQSearchParameters(qb=0))
    Dq, Iq = index.search(q, 2000, params=nearly.RaBitQSearchParameters(qb=qb))
    ref = np.zeros_like(D0)
    np.put_along_axis(ref, I0, D0, axis=1)
    got = np.zeros_like(Dq)
    np.put_along_axis(got, Iq, Dq, axis=1)
    err = np.abs(got - ref).mean() / np.abs(ref).mean()
    assert err < {1: 0.3, 4: 0.03, 8: 0.003}[qb]


def _built(s, x):
    if s == "IVF":  # fixed centroids: k-means itself rounds differently per level
        quantizer = nearly.IndexFlatIP(x.shape[1])
        quantizer.add(x[:8])
        index = nearly.IndexIVFRaBitQ(quantizer, x.shape[1], 8, METRIC_IP)
        index.nprobe = 3
    else:
        index = nearly.index_factory(x.shape[1], s, METRIC_IP)
    index.train(x)
    index.add(x)
    return index


def test_every_simd_level_gives_the_same_results(level):
    """Integer bit dot products at every level, one float formula after them:
    the same bits."""
    rng = np.random.default_rng(5)
    x, q = randn(rng, 3000, 100), randn(rng, 30, 100)
    kinds = ["RaBitQ", "RaBitQ3", "IVF"]
    # qb 0: float query; 4: one byte table per 4 dimensions; 8: two
    params = [nearly.RaBitQSearchParameters(qb=qb) for qb in (0, 4, 8)]
    runs = [(s, p) for s in kinds for p in (params if s != "IVF" else [None])]
    out = [_built(s, x).search(q, 7, params=p) for s, p in runs]
    nearly.set_simd_level("scalar")
    for (s, p), (D, I) in zip(runs, out):
        D2, I2 = _built(s, x).search(q, 7, params=p)
        np.testing.assert_array_equal(I, I2)
        np.testing.assert_array_equal(D, D2)


def _recall(I, gt):
    return np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(I, gt)])


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP])
def test_more_bits_more_recall(metric):
    rng = np.random.default_rng(6)
    centers = randn(rng, 50, 64) * 3
    x = centers[rng.integers(0, 50, 5000)] + randn(rng, 5000, 64)
    q = centers[rng.integers(0, 50, 100)] + randn(rng, 100, 64)
    exact = nearly.IndexFlat(64, metric)
    exact.add(x)
    _, gt = exact.search(q, 10)
    rec = {}
    for b in [1, 2, 4, 9]:
        index = nearly.IndexRaBitQ(64, metric, b)
        index.train(x)
        index.add(x)
        rec[b] = _recall(index.search(q, 10)[1], gt)
    assert rec[1] < rec[2] < rec[4] <= rec[9] + 0.01
    assert rec[4] > 0.7 and rec[9] > 0.98
    # a float re-ranking of 10x candidates lifts 1-bit codes close to exact
    refine = nearly.index_factory(64, "RaBitQ,RFlat", metric)
    refine.train(x)
    refine.add(x)
    refine.k_factor = 10
    assert _recall(refine.search(q, 10)[1], gt) > 0.9


def test_multibit_two_stage_search_keeps_the_full_ranking():
    """The error-bound filter skips codes whose 1-bit estimate, widened by
    their bound, cannot reach the k-th best: each result carries its full
    estimate, and the top k is the full-scan top k but for the rare code
    outside its (probabilistic, 1.9-sigma) bound, as in faiss."""
    rng = np.random.default_rng(8)
    x, q = randn(rng, 3000, 48), randn(rng, 25, 48)
    for metric in (METRIC_L2, METRIC_IP):
        index = nearly.IndexRaBitQ(48, metric, 4)
        index.train(x)
        index.add(x)
        D, I = index.search(q, 10)
        lims, Dr, Ir = index.range_search(q, 1e30 if metric == METRIC_L2 else -1e30)
        overlap = []
        for i in range(len(q)):
            full = dict(zip(Ir[lims[i]:lims[i + 1]], Dr[lims[i]:lims[i + 1]]))
            assert len(full) == 3000
            np.testing.assert_allclose(D[i], [full[j] for j in I[i]], rtol=1e-6)
            ids = np.array(list(full))
            vals = np.array([full[j] for j in ids])
            top = ids[np.argsort(vals if metric == METRIC_L2 else -vals, kind="stable")[:10]]
            overlap.append(len(set(top) & set(I[i])) / 10)
        assert np.mean(overlap) >= 0.97


def test_selector_and_range_search_agree_with_the_full_ranking():
    rng = np.random.default_rng(9)
    x, q = randn(rng, 2000, 32), randn(rng, 10, 32)
    for s in ["RaBitQ", "RaBitQ2", "IVF4,RaBitQ"]:
        index = nearly.index_factory(32, s)
        index.train(x)
        index.add(x)
        if hasattr(index, "nprobe"):
            index.nprobe = 4
        Dall, Iall = index.search(q, 2000)
        sel = nearly.IDSelectorRange(100, 700)
        params = (nearly.IVFRaBitQSearchParameters(nprobe=4, sel=sel) if hasattr(index, "nprobe")
                  else nearly.RaBitQSearchParameters(sel=sel))
        D, I = index.search(q, 5, params=params)
        for i in range(len(q)):
            keep = (Iall[i] >= 100) & (Iall[i] < 700)
            np.testing.assert_array_equal(I[i], Iall[i][keep][:5])
        radius = float(np.median(Dall[:, 20]))
        lims, Dr, Ir = index.range_search(q, radius)
        for i in range(len(q)):
            assert set(Ir[lims[i]:lims[i + 1]]) == set(Iall[i][Dall[i] < radius])


def test_query_bits_from_the_index_and_from_params():
    rng = np.random.default_rng(10)
    x, q = randn(rng, 1000, 24), randn(rng, 5, 24)
    index = nearly.IndexRaBitQ(24)
    assert (index.qb, index.centered) == (4, False)
    index.train(x)
    index.add(x)
    index.qb, index.centered = 6, True
    a = index.search(q, 4)
    b = index.search(q, 4, params=nearly.RaBitQSearchParameters(qb=6, centered=True))
    np.testing.assert_array_equal(a[0], b[0])
    ivf = nearly.index_factory(24, "IVF4,RaBitQ")
    ivf.train(x)
    ivf.add(x)
    ivf.qb, ivf.nprobe = 2, 4
    a = ivf.search(q, 4)
    b = ivf.search(q, 4, params=nearly.IVFRaBitQSearchParameters(nprobe=4, qb=2))
    np.testing.assert_array_equal(a[0], b[0])


@pytest.mark.parametrize("fs", ["RaBitQ", "RaBitQ5", "IVF8,RaBitQ", "IVF8,RaBitQ3", "IDMap,RaBitQ"])
def test_persistence_round_trip_and_corrupt_files(tmp_path, fs):
    rng = np.random.default_rng(11)
    x, q = randn(rng, 1500, 40), randn(rng, 6, 40)
    index = nearly.index_factory(40, fs, METRIC_IP)
    index.train(x)
    if fs.startswith("IDMap"):
        index.add_with_ids(x, np.arange(1500) * 3)
    else:
        index.add(x)
    D, I = index.search(q, 5)
    path = str(tmp_path / "r.index")
    nearly.write_index(index, path)
    back = nearly.read_index(path)
    np.testing.assert_array_equal(back.search(q, 5)[1], I)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(index)).search(q, 5)[0], D)
    blob = open(path, "rb").read()
    open(path, "wb").write(blob[: len(blob) - 17])
    with pytest.raises(nearly.IndexFileError):
        nearly.read_index(path)
    open(path, "wb").write(blob)
    ro = nearly.read_index(path, nearly.IO_FLAG_READ_ONLY)
    np.testing.assert_array_equal(ro.search(q, 5)[1], I)
    with pytest.raises(RuntimeError):
        ro.add(x[:2])


def test_codec_reconstruct_merge_and_remove():
    rng = np.random.default_rng(12)
    x = randn(rng, 2000, 32)
    a = nearly.IndexRaBitQ(32, METRIC_L2, 2)
    a.train(x)
    codes = a.sa_encode(x[:10])
    assert codes.shape == (10, a.code_size) and a.code_size == 4 + 12 + 4 + 8
    dec = a.sa_decode(codes)
    a.add(x[:10])
    np.testing.assert_array_equal(a.reconstruct_n(0, 10), dec)
    # the decode keeps directions: cosine with the original residual about sqrt(2/pi)
    r, rd = x[:10] - a.center, dec - a.center
    cos = (r * rd).sum(1) / np.linalg.norm(r, axis=1) / np.linalg.norm(rd, axis=1)
    assert (cos > 0.6).all()
    b = nearly.clone_index(a)
    b.reset()
    b.add(x[10:30])
    a.merge_from(b)
    assert a.ntotal == 30 and b.ntotal == 0
    np.testing.assert_array_equal(a.sa_encode(x[:30]), a.codes.reshape(30, -1))
    assert a.remove_ids(np.arange(5)) == 5 and a.ntotal == 25
    other = nearly.IndexRaBitQ(32, METRIC_L2, 2)
    other.train(x[::2])  # another center: its codes mean something else
    other.add(x[:3])
    with pytest.raises(RuntimeError):
        a.merge_from(other)


def test_bad_input():
    rng = np.random.default_rng(13)
    x = randn(rng, 200, 16)
    with pytest.raises(ValueError):
        nearly.IndexRaBitQ(16, METRIC_L2, 0)
    with pytest.raises(ValueError):
        nearly.IndexRaBitQ(16, METRIC_L2, 10)
    with pytest.raises(RuntimeError):
        nearly.IndexRaBitQ(16, nearly.METRIC_L1)
    with pytest.raises(RuntimeError):
        nearly.IndexIVFRaBitQ(nearly.IndexFlatL2(16), 16, 4, METRIC_L2, False)
    index = nearly.IndexRaBitQ(16)
    with pytest.raises(RuntimeError):
        index.add(x)  # not trained
    with pytest.raises(RuntimeError):
        index.search(x[:2], 1)
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError):
        index.train(bad)
    index.train(x)
    with pytest.raises(ValueError):
        index.add(bad)
    index.add(x)
    with pytest.raises(ValueError):
        index.train(x)  # would change the center under the stored codes
    with pytest.raises(ValueError):
        index.search(bad[:5], 1)
    with pytest.raises(ValueError):
        index.search(x[:2, :8], 1)
    with pytest.raises(ValueError):
        index.search(x[:2], 0)
    for qb in (-1, 9):
        with pytest.raises(ValueError):
            index.qb = qb
        with pytest.raises(ValueError):
            nearly.RaBitQSearchParameters(qb=qb)
        with pytest.raises(ValueError):
            nearly.IVFRaBitQSearchParameters(qb=qb)
    D, I = index.search(x[:2], 250)  # k > ntotal: padded like faiss
    assert (I[:, 200:] == -1).all() and (D[:, 200:] == np.finfo(np.float32).max).all()
    empty = nearly.IndexRaBitQ(16)
    empty.train(x)
    D, I = empty.search(x[:2], 3)
    assert (I == -1).all()


@pytest.mark.parametrize("fs", ["RaBitQ", "RaBitQ3", "IVF2,RaBitQ2"])
def test_forged_files_are_rejected_or_usable(fs):
    """Every byte of a small file set to 0, 255 or a random value, the
    checksum recomputed: reading either raises IndexFileError or gives an
    index that searches (never a crash)."""
    from test_io import HEADER, _reseal

    rng = np.random.default_rng(14)
    x = randn(rng, 20, 12)
    index = nearly.index_factory(12, fs)
    index.train(x)
    index.add(x)
    good = bytes(nearly.serialize_index(index))
    payload = good[HEADER:-8]
    variant = next(v for v in ("format2", "header+payload", "payload") if _reseal(payload, v) == good)
    for n in range(0, len(payload), 7):  # truncations
        with pytest.raises(nearly.IndexFileError):
            nearly.deserialize_index(np.frombuffer(_reseal(payload[:n], variant), np.uint8).copy())
    for pos in range(len(payload)):
        for val in (0x00, 0xFF, int(rng.integers(256))):
            bad = bytearray(payload)
            bad[pos] = val
            try:
                back = nearly.deserialize_index(np.frombuffer(_reseal(bytes(bad), variant), np.uint8).copy())
            except nearly.IndexFileError:
                continue
            D, I = back.search(np.ones((2, back.d), np.float32), 3)
            assert D.shape == I.shape == (2, 3)
