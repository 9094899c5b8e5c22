"""EDEN codes (nearly/eden.h): IndexEDEN and IndexIVFEDEN against a float64
numpy reference of EDEN's encoder (the residual scaled to unit-variance
coordinates, the Lloyd-Max cells, the unbiased or biased scale) and of its
distance estimates; searches equal brute force over those estimates at every
SIMD level; the codebooks are the normal law's Lloyd-Max fixed points."""
import math
import threading

import numpy as np
import pytest

import nearly
from _testutil import randn

BITS = range(1, 9)


def codebook(bits):
    sq = nearly.ScalarQuantizer(1, nearly.ScalarQuantizer.QT_1bit_eden + bits - 1)
    sq.train(np.zeros((1, 1), np.float32))
    t = sq.trained.astype(np.float64)
    k = 1 << bits
    return t[:k], t[k:]


def reference_codes(x, bits, center, biased):
    """(cells, l2_norm_term, scale) per vector, in float64 (cells from float32 z as the encoder's)."""
    cent, bounds = codebook(bits)
    d = x.shape[1]
    cells, l2s, scales = [], [], []
    for xi in x.astype(np.float64):
        r = xi - center
        n2 = float(r @ r)
        z = (r.astype(np.float32) * np.float32(math.sqrt(d)) * np.float32(1 / math.sqrt(np.float32(n2))))
        c = np.searchsorted(bounds.astype(np.float32), z, side="right") if bits > 1 else (z > 0).astype(int)
        q = cent[c]
        if biased:
            s = (q @ r) / (q @ q)
            l2 = s * s * (q @ q)
        else:
            s = n2 / (q @ r)
            l2 = n2
        cells.append(c), l2s.append(l2), scales.append(s)
    return np.array(cells), np.array(l2s), np.array(scales)


def unpack(codes, d, bits):
    """The cells of packed codes (low bits first across bytes), then the two floats."""
    packed = (d * bits + 7) // 8
    bitsarr = np.unpackbits(codes[:, :packed], axis=1, bitorder="little")[:, :d * bits].reshape(len(codes), d, bits)
    cells = (bitsarr * (1 << np.arange(bits))).sum(2)
    f = codes[:, packed:packed + 8].copy().view(np.float32)
    return cells, f[:, 0], f[:, 1]


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("biased", [False, True])
def test_codes_and_decoding_match_the_reference(bits, biased):
    rng = np.random.default_rng(bits)
    d = 40
    xt, xb = randn(rng, 300, d) + 0.5, randn(rng, 200, d) + 0.5
    index = nearly.IndexEDEN(d, nearly.METRIC_L2, bits,
                             nearly.EDENScaleType_BIASED if biased else nearly.EDENScaleType_UNBIASED)
    assert not index.is_trained and index.code_size == (d * bits + 7) // 8 + 8
    index.train(xt)
    np.testing.assert_allclose(index.center, xt.astype(np.float64).mean(0), rtol=1e-6, atol=1e-6)
    center = index.center.astype(np.float64)
    codes = index.sa_encode(xb)
    cells, l2, scale = unpack(codes, d, bits)
    rcells, rl2, rscale = reference_codes(xb, bits, center, biased)
    assert (cells == rcells).mean() > 0.999  # float32 z on a midpoint may go either way
    same = (cells == rcells).all(1)
    np.testing.assert_allclose(scale[same], rscale[same], rtol=1e-5)
    np.testing.assert_allclose(l2[same], rl2[same], rtol=1e-5)
    cent, _ = codebook(bits)
    np.testing.assert_allclose(index.sa_decode(codes), center + scale[:, None] * cent[cells], rtol=1e-5, atol=1e-5)
    # The biased scale is the least-squares fit: no worse than the unbiased one.
    if biased:
        other = nearly.IndexEDEN(d, nearly.METRIC_L2, bits)
        other.train(xt)
        err_b = ((index.sa_decode(codes) - xb) ** 2).sum()
        err_u = ((other.sa_decode(other.sa_encode(xb)) - xb) ** 2).sum()
        assert err_b <= err_u * (1 + 1e-5)


def test_codebooks_are_lloyd_max_fixed_points():
    """Each centroid is the normal law's mean over its cell (between the midpoints)."""
    for bits in BITS:
        cent, bounds = codebook(bits)
        assert np.all(np.diff(cent) > 0) and np.allclose(cent, -cent[::-1])
        np.testing.assert_allclose(bounds, (cent[1:] + cent[:-1]) / 2, rtol=1e-6)
        edges = np.concatenate([[-np.inf], bounds, [np.inf]])
        pdf = np.array([math.exp(-e * e / 2) / math.sqrt(2 * math.pi) if np.isfinite(e) else 0.0 for e in edges])
        cdf = np.array([0.5 * math.erfc(-e / math.sqrt(2)) for e in edges])
        means = (pdf[:-1] - pdf[1:]) / (cdf[1:] - cdf[:-1])
        np.testing.assert_allclose(cent, means, rtol=2e-5, atol=1e-6)


def reference_scores(index, codes, q, ip, center):
    d = index.d
    cells, l2, scale = unpack(codes, d, index.sq.bits)
    cent, _ = codebook(index.sq.bits)
    dots = cent[cells] @ (q.astype(np.float64) if ip else q.astype(np.float64) - center)
    if ip:
        return float(q @ center) + scale * dots
    return float(((q - center) ** 2).sum()) + l2 - 2 * scale * dots


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 8])
@pytest.mark.parametrize("metric", [nearly.METRIC_L2, nearly.METRIC_INNER_PRODUCT])
def test_search_is_brute_force_over_the_estimates_at_every_simd_level(bits, metric):
    rng = np.random.default_rng(7)
    d = 72
    xt, xb, xq = randn(rng, 500, d), randn(rng, 900, d), randn(rng, 12, d)
    index = nearly.IndexEDEN(d, metric, bits)
    index.train(xt)
    index.add(xb)
    codes = index.codes.reshape(len(xb), -1)
    ip = metric == nearly.METRIC_INNER_PRODUCT
    ref = np.array([reference_scores(index, codes, q, ip, index.center.astype(np.float64)) for q in xq])
    before = nearly.simd_level()
    try:
        results = []
        for level in nearly.simd_levels_supported():
            nearly.set_simd_level(level)
            D, I = index.search(xq, 10)
            exp_I = np.argsort(-ref if ip else ref, axis=1, kind="stable")[:, :10]
            np.testing.assert_allclose(D, np.take_along_axis(ref, exp_I, 1), rtol=1e-4, atol=1e-3)
            assert (I == exp_I).mean() > 0.98  # near-ties may swap under float rounding
            results.append((D, I))
            dc = index.get_distance_computer()
            dc.set_query(xq[0])
            np.testing.assert_allclose([dc(i) for i in range(5)], ref[0, :5], rtol=1e-4, atol=1e-3)
        for D, I in results[1:]:
            np.testing.assert_allclose(D, results[0][0], rtol=1e-5, atol=1e-4)
    finally:
        nearly.set_simd_level(before)
    # Range search keeps what k-NN ranks: the same estimates.
    D, I = index.search(xq, 20)
    radius = float(np.median(D[:, -1]))
    lims, RD, RI = index.range_search(xq, radius)
    for i in range(len(xq)):
        got = set(RI[lims[i]:lims[i + 1]].tolist())
        want = set(np.nonzero(ref[i] > radius if ip else ref[i] < radius)[0].tolist())
        assert len(got ^ want) <= 1


@pytest.mark.parametrize("metric", [nearly.METRIC_L2, nearly.METRIC_INNER_PRODUCT])
@pytest.mark.parametrize("bits", [1, 4, 7])
def test_ivf_scores_each_list_around_its_centroid(metric, bits):
    rng = np.random.default_rng(3)
    d, nlist = 32, 16
    xt, xb, xq = randn(rng, 2000, d), randn(rng, 1500, d), randn(rng, 10, d)
    index = nearly.index_factory(d, f"IVF{nlist},EDEN{bits}", metric)
    assert isinstance(index, nearly.IndexIVFEDEN) and index.sq.bits == bits
    index.train(xt)
    index.add(xb)
    index.nprobe = nlist
    ip = metric == nearly.METRIC_INNER_PRODUCT
    # every list scanned: the estimates of each code around its own centroid
    ref = np.full((len(xq), len(xb)), np.nan)
    for l in range(nlist):
        ids = index.invlists.get_ids(l)
        if not len(ids):
            continue
        codes = index.invlists.get_codes(l).reshape(len(ids), -1)
        c = index.quantizer.reconstruct(l).astype(np.float64)
        for qi, q in enumerate(xq):
            ref[qi, ids] = reference_scores(index, codes, q, ip, c)
    D, I = index.search(xq, 10)
    exp_I = np.argsort(-ref if ip else ref, axis=1, kind="stable")[:, :10]
    assert (I == exp_I).mean() > 0.98
    np.testing.assert_allclose(D, np.take_along_axis(ref, I, 1), rtol=1e-4, atol=1e-3)
    # sa_encode / sa_decode carry the list number, as faiss's
    codes = index.sa_encode(xb[:50])
    dec = index.sa_decode(codes)
    assert np.mean(((dec - xb[:50]) ** 2).sum(1)) < np.mean((xb[:50] ** 2).sum(1))


@pytest.mark.parametrize("spec", ["EDEN", "EDEN4", "EDEN3BIASED", "IVF16,EDEN4", "IVF16,EDEN2BIASED",
                                  "RR32,EDEN4", "IDMap,EDEN6"])
def test_factory_persistence_and_index_operations(spec, tmp_path):
    rng = np.random.default_rng(5)
    d = 32
    xt, xb, xq = randn(rng, 1000, d), randn(rng, 600, d), randn(rng, 8, d)
    index = nearly.index_factory(d, spec)
    inner = nearly.downcast_index(index.index) if hasattr(index, "index") else index
    ivf = isinstance(inner, nearly.IndexIVFEDEN)
    assert isinstance(inner, nearly.IndexIVFEDEN if "IVF" in spec else nearly.IndexEDEN)
    assert inner.scale_type == (nearly.EDENScaleType_BIASED if "BIASED" in spec else nearly.EDENScaleType_UNBIASED)
    with pytest.raises(RuntimeError):
        index.search(xq, 3)  # untrained
    index.train(xt)
    if "IDMap" in spec:
        index.add_with_ids(xb, np.arange(len(xb)) * 3)
    else:
        index.add(xb)
    if ivf:
        inner.nprobe = 4
    D, I = index.search(xq, 5)
    path = str(tmp_path / "e.index")
    nearly.write_index(index, path)
    back = nearly.read_index(path)
    D2, I2 = back.search(xq, 5)
    np.testing.assert_array_equal(I, I2)
    np.testing.assert_array_equal(D, D2)
    again = nearly.deserialize_index(nearly.serialize_index(back))
    np.testing.assert_array_equal(again.search(xq, 5)[1], I)
    # selectors and removals
    keep = np.unique(I[:, :3].ravel())
    sel = nearly.IDSelectorBatch(keep)
    _, Is = index.search(xq, 5, params=nearly.SearchParametersIVF(sel=sel, nprobe=4) if ivf
                         else nearly.SearchParameters(sel=sel))
    assert set(Is[Is >= 0].tolist()) <= set(keep.tolist())
    n_before = index.ntotal
    index.remove_ids(nearly.IDSelectorBatch(I[:, 0]))
    assert index.ntotal == n_before - len(np.unique(I[:, 0]))


def test_bad_input():
    rng = np.random.default_rng(0)
    d = 16
    for bits in (0, 9, -1):
        with pytest.raises(ValueError, match="nb_bits"):
            nearly.IndexEDEN(d, nearly.METRIC_L2, bits)
    with pytest.raises(ValueError, match="scale type"):
        nearly.IndexEDEN(d, nearly.METRIC_L2, 4, 3)
    with pytest.raises(RuntimeError, match="not implemented"):
        nearly.IndexEDEN(d, nearly.METRIC_L1, 4)  # as the other quantized indexes, and faiss
    with pytest.raises(RuntimeError, match="could not parse"):
        nearly.index_factory(d, "EDEN9")
    index = nearly.IndexEDEN(d, nearly.METRIC_L2, 4)
    with pytest.raises(RuntimeError):
        index.add(randn(rng, 5, d))  # untrained
    x = randn(rng, 50, d)
    x[3, 2] = np.nan
    with pytest.raises(ValueError):
        index.train(x)
    index.train(randn(rng, 50, d))
    with pytest.raises(ValueError):
        index.add(x)
    with pytest.raises(ValueError):
        index.add(randn(rng, 5, d + 1))
    index.add(randn(rng, 5, d))
    with pytest.raises(ValueError):
        index.search(randn(rng, 2, d), 0)
    with pytest.raises(ValueError, match="train again"):
        index.train(randn(rng, 50, d))
    # a vector at the center: an empty residual, reconstructed as the center
    index.reset()
    index.add(index.center[None, :])
    np.testing.assert_allclose(index.reconstruct(0), index.center)
    with pytest.raises(RuntimeError):
        nearly.IndexIVFEDEN(nearly.IndexFlatL2(d), d, 4, nearly.METRIC_L2, False, 4)
    blob = nearly.serialize_index(index)
    with pytest.raises(Exception):
        nearly.deserialize_index(blob[: len(blob) - 7])


def test_searches_beside_adds():
    rng = np.random.default_rng(1)
    d = 24
    index = nearly.index_factory(d, "IVF8,EDEN4")
    index.train(randn(rng, 800, d))
    index.add(randn(rng, 200, d))
    xq = randn(rng, 20, d)
    errors = []

    def searcher():
        try:
            for _ in range(50):
                D, I = index.search(xq, 5)
                assert np.all(np.isfinite(D[I >= 0]))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=searcher) for _ in range(2)]
    for t in threads:
        t.start()
    for _ in range(20):
        index.add(randn(rng, 50, d))
    for t in threads:
        t.join()
    assert not errors and index.ntotal == 1200
