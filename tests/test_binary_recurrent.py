"""RecurrentBinarizer and IndexBinaryRecurrent (BEBR codes scored by SDC)."""
import pickle

import numpy as np
import pytest

import nearly
from nearly.binary import fit_recurrent
from _hnswutil import real_data
from _testutil import recurrent_reference, recurrent_tied_data
from test_binary_sdc import levels_np

METRICS = [nearly.METRIC_INNER_PRODUCT, nearly.METRIC_L2]


@pytest.fixture(scope="module")
def data():
    base, queries = real_data()
    return np.ascontiguousarray(base[:6000]), np.ascontiguousarray(queries[:50])


@pytest.fixture(scope="module")
def binarizers(data):
    x, _ = data
    out = {}
    for nb in (1, 2, 3, 4):
        b = nearly.RecurrentBinarizer(384, 384, nb)
        b.train(x[:3000])
        out[nb] = b
    return out


def encode_np(p, x, nb):
    """float64 numpy version of the native encoder."""
    x = x.astype(np.float64)
    z = (x - p["mean"]) @ p["W"]
    bits = [z >= 0]
    b = np.where(bits[0], 1.0, -1.0)
    for i in range(1, nb):
        f = b @ p["B"][i - 1] + p["c"][i - 1]
        zz = (x - f) @ p["R"][i - 1] + p["r"][i - 1]
        bits.append(zz >= 0)
        b = b + 2.0 ** -i * np.where(bits[-1], 1.0, -1.0)
    return np.packbits(np.concatenate(bits, axis=1), axis=1, bitorder="little")


@pytest.mark.parametrize("nb", [1, 2, 3, 4])
def test_encode_matches_numpy(data, nb):
    x, _ = data
    p = fit_recurrent(x[:2000], 64, nb)
    enc = nearly.RecurrentBinarizer(384, 64, nb)
    enc.set_params(p)
    codes = enc.encode(x[:1000])
    assert codes.dtype == np.uint8 and codes.shape == (1000, nb * 8)
    ref = encode_np(p, x[:1000], nb)
    bits = np.unpackbits(codes ^ ref, axis=1)
    # float32 GEMMs vs float64: only values within rounding of 0 may flip
    assert bits.mean() < 2e-3


def test_decode_improves_with_bits(data, binarizers):
    x, _ = data
    errs = []
    for nb in (1, 2, 3, 4):
        b = binarizers[nb]
        y = b.decode(b.encode(x[3000:4000]))
        assert y.shape == (1000, 384) and y.dtype == np.float32
        errs.append(float(((y - x[3000:4000]) ** 2).sum(1).mean()))
    assert errs == sorted(errs, reverse=True), errs
    assert errs[1] < 0.5 * errs[0]


@pytest.mark.parametrize("nb", [1, 2, 4])
def test_index_sdc_scores_exact(data, binarizers, nb):
    x, q = data
    index = nearly.IndexBinaryRecurrent(384, 384, nb)
    index.train(x[:3000])
    index.add(x[:500])
    S = index.sdc_scores(q[:5])
    Lq = levels_np(index.binarizer.encode(q[:5]), 384, nb)
    Lx = levels_np(index.codes, 384, nb)
    np.testing.assert_array_equal(S, Lq @ Lx.T)
    np.testing.assert_array_equal(index.codes, index.binarizer.encode(x[:500]))


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("use_popcount", [False, True])
def test_search_matches_scores(data, metric, use_popcount):
    x, q = data
    index = nearly.IndexBinaryRecurrent(384, 384, 2, metric)
    index.train(x[:3000])
    index.add(x[:2000])
    index.use_popcount = use_popcount
    D, I = index.search(q, 10)
    assert D.dtype == np.float32 and I.dtype == np.int64 and D.shape == (50, 10)
    S = index.sdc_scores(q).astype(np.float64)
    mu = index.binarizer.mean.astype(np.float64)
    a = index.binarizer.alpha ** 2 / 4
    xb, xq = x[:2000].astype(np.float64), q.astype(np.float64)
    if metric == nearly.METRIC_INNER_PRODUCT:
        est = a * S + (xq @ mu - mu @ mu)[:, None] + (xb @ mu)[None]
        order = np.argsort(-est, axis=1, kind="stable")[:, :10]
    else:
        est = (xq * xq).sum(1)[:, None] - 2 * (xq @ mu)[:, None] + 2 * mu @ mu + ((xb * xb).sum(1) - 2 * xb @ mu)[None] - 2 * a * S
        order = np.argsort(est, axis=1, kind="stable")[:, :10]
    np.testing.assert_allclose(D, np.take_along_axis(est, order, 1), rtol=1e-4, atol=1e-4)
    same = (I == order).mean()
    assert same > 0.97  # float ties / rounding may swap neighbours


def recall(I, gt):
    return np.mean([len(set(a) & set(b)) / gt.shape[1] for a, b in zip(I, gt)])


def test_recall_grows_with_bits(data):
    x, q = data
    gt = np.argsort(-(q @ x.T), axis=1)[:, :10]
    rec = {}
    for nb in (1, 2, 4):
        index = nearly.index_factory(384, f"RBE384x{nb}", nearly.METRIC_INNER_PRODUCT)
        index.train(x)
        index.add(x)
        rec[nb] = recall(index.search(q, 10)[1], gt)
    assert rec[1] < rec[2] < rec[4]
    assert rec[2] > 0.6 and rec[4] > 0.85, rec


def test_refine_factory(data):
    x, q = data
    gt = np.argsort(-(q @ x.T), axis=1)[:, :10]
    index = nearly.index_factory(384, "RBE384x2,RFlat", nearly.METRIC_INNER_PRODUCT)
    assert isinstance(index, nearly.IndexRefineFlat)
    assert isinstance(index.base_index, nearly.IndexBinaryRecurrent)
    index.train(x)
    index.add(x)
    r1 = recall(index.search(q, 10)[1], gt)
    D, I = index.search(q, 10, params=nearly.IndexRefineSearchParameters(k_factor=10))
    r10 = recall(I, gt)
    assert r10 > 0.95 and r10 >= r1
    np.testing.assert_allclose(D, np.take_along_axis(q @ x.T, I, 1), rtol=1e-5, atol=1e-5)


def test_ids_remove_selector_persistence(data, tmp_path):
    x, q = data
    index = nearly.IndexBinaryRecurrent(384, 128, 2)
    index.train(x[:3000])
    ids = np.arange(1000, dtype=np.int64) * 7 + 3
    index.add_with_ids(x[:1000], ids)
    D, I = index.search(q, 5)
    assert np.isin(I, ids).all()
    n = index.remove_ids(ids[::2])
    assert n == 500 and index.ntotal == 500
    D2, I2 = index.search(q, 5)
    assert np.isin(I2, ids[1::2]).all()
    # the survivors keep their scores
    keep = nearly.IndexBinaryRecurrent(384, 128, 2)
    keep.binarizer.set_params(fit_recurrent(x[:3000], 128, 2))
    np.testing.assert_array_equal(index.id_map, ids[1::2])
    sel = nearly.IDSelectorRange(0, 3000)
    D3, I3 = index.search(q, 5, params=nearly.SearchParameters(sel=sel))
    assert ((I3 < 3000) & (I3 >= 0)).all()
    for copy in (nearly.deserialize_index(nearly.serialize_index(index)), pickle.loads(pickle.dumps(index))):
        assert isinstance(copy, nearly.IndexBinaryRecurrent)
        Dc, Ic = copy.search(q, 5)
        np.testing.assert_array_equal(Ic, I2)
        np.testing.assert_array_equal(Dc, D2)
    nearly.write_index(index, str(tmp_path / "rbe.index"))
    back = nearly.read_index(str(tmp_path / "rbe.index"))
    np.testing.assert_array_equal(back.search(q, 5)[1], I2)
    np.testing.assert_array_equal(back.codes, index.codes)
    index.reset()
    assert index.ntotal == 0
    D4, I4 = index.search(q[:2], 3)
    assert (I4 == -1).all() and (D4 == -np.finfo(np.float32).max).all()
    rec = back.reconstruct(int(ids[1]))
    assert rec.shape == (384,)


def test_refine_persistence_and_idmap(data):
    x, q = data
    index = nearly.index_factory(384, "RBE64x2,RFlat", nearly.METRIC_L2)
    index.train(x[:2000])
    index.add(x[:1000])
    D, I = index.search(q, 5)
    back = pickle.loads(pickle.dumps(index))
    np.testing.assert_array_equal(back.search(q, 5)[1], I)
    wrapped = nearly.index_factory(384, "IDMap,RBE64x1", nearly.METRIC_L2)
    wrapped.train(x[:2000])
    wrapped.add_with_ids(x[:100], np.arange(100, dtype=np.int64) + 10**9)
    assert (wrapped.search(q, 3)[1] >= 10**9).all()


def test_bad_input(data, binarizers):
    x, q = data
    for nb in (0, 5, -1):
        with pytest.raises(ValueError, match="bits_per_dim"):
            nearly.RecurrentBinarizer(384, 384, nb)
        with pytest.raises(ValueError, match="bits_per_dim"):
            nearly.IndexBinaryRecurrent(384, 384, nb)
    with pytest.raises(ValueError, match="multiple of 8"):
        nearly.RecurrentBinarizer(384, 100, 2)
    with pytest.raises(RuntimeError, match="index string"):
        nearly.index_factory(384, "RBE384", nearly.METRIC_L2)
    with pytest.raises(ValueError, match="bits_per_dim"):
        nearly.index_factory(384, "RBE384x5", nearly.METRIC_L2)
    fresh = nearly.RecurrentBinarizer(384, 64, 2)
    with pytest.raises(RuntimeError, match="not trained"):
        fresh.encode(x[:2])
    with pytest.raises(RuntimeError, match="not trained"):
        fresh.decode(np.zeros((2, 16), np.uint8))
    index = nearly.IndexBinaryRecurrent(384, 64, 2)
    with pytest.raises(RuntimeError, match="not trained"):
        index.add(x[:2])
    with pytest.raises(RuntimeError, match="not trained"):
        index.search(q[:2], 1)
    with pytest.raises(ValueError, match="m=512 must not exceed d=384"):
        nearly.RecurrentBinarizer(384, 512, 2).train(x[:100])
    b = binarizers[2]
    with pytest.raises(ValueError, match="columns, expected d=384"):
        b.encode(x[:2, :100])
    with pytest.raises(ValueError, match="code_size"):
        b.decode(np.zeros((2, 95), np.uint8))
    with pytest.raises(TypeError, match="uint8"):
        b.decode(np.zeros((2, 96), np.int64))
    bad = x[:3].copy()
    bad[1, 5] = np.nan
    with pytest.raises(ValueError, match="NaN|finite"):
        b.encode(bad)
    index.train(x[:500])
    with pytest.raises(ValueError, match="columns, expected d=384"):
        index.search(q[:2, :383], 1)
    with pytest.raises(ValueError, match="NaN|finite"):
        index.search(bad, 1)
    with pytest.raises(ValueError, match="NaN|finite"):
        index.add(bad)
    with pytest.raises(ValueError, match="NaN|finite"):
        nearly.IndexBinaryRecurrent(384, 64, 2).train(bad)


def test_concurrent_searches_and_adds(data):
    """Searches from several threads agree with a lone search; adds during searches are safe."""
    import threading

    x, q = data
    index = nearly.IndexBinaryRecurrent(384, 128, 2)
    index.train(x[:2000])
    index.add(x[:3000])
    want = index.search(q, 5)
    errors, results = [], []

    def searcher():
        try:
            for _ in range(5):
                results.append(index.search(q, 5))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=searcher) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for D, I in results:
        np.testing.assert_array_equal(I, want[1])
        np.testing.assert_array_equal(D, want[0])

    def adder():
        try:
            for i in range(5):
                index.add(x[3000 + 100 * i:3100 + 100 * i])
        except Exception as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=searcher) for _ in range(2)] + [threading.Thread(target=adder)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and index.ntotal == 3500
    np.testing.assert_array_equal(index.search(q, 5)[1], nearly.deserialize_index(nearly.serialize_index(index)).search(q, 5)[1])


def test_stale_scale_is_not_used(data):
    """Changing the binarizer's scale after adding must not make the search pre-filter drop results."""
    x, q = data
    index = nearly.IndexBinaryRecurrent(384, 128, 2)
    index.train(x[:2000])
    index.add(x[:2000])
    index.search(q, 10)  # builds the filter cache
    p = fit_recurrent(x[:2000], 128, 2)
    p["alpha"] = p["alpha"] * 3
    index.binarizer.set_params(p)
    D, I = index.search(q, 10)
    S = index.sdc_scores(q).astype(np.float64)
    mu = index.binarizer.mean.astype(np.float64)
    a = index.binarizer.alpha ** 2 / 4
    est = a * S + (q.astype(np.float64) @ mu - mu @ mu)[:, None] + (x[:2000].astype(np.float64) @ mu)[None]
    np.testing.assert_allclose(D, -np.sort(-est, axis=1)[:, :10], rtol=1e-4, atol=1e-4)


def _apply_layers(layers, v):
    for j, (A, a) in enumerate(layers):
        v = v @ A.astype(np.float64) + a
        if j + 1 < len(layers):
            v = np.maximum(v, 0)
    return v


def encode_layers_np(p, x, nb):
    """float64 numpy version of the native encoder with layer-stack maps (ReLU between layers)."""
    x = x.astype(np.float64)
    z = _apply_layers(p["W_layers"], x - p["mean"])
    bits = [z >= 0]
    b = np.where(bits[0], 1.0, -1.0)
    for i in range(1, nb):
        f = _apply_layers(p["B_layers"][i - 1], b)
        if p["normalize_f"]:
            f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
        bits.append(_apply_layers(p["R_layers"][i - 1], x - f) >= 0)
        b = b + 2.0 ** -i * np.where(bits[-1], 1.0, -1.0)
    return np.packbits(np.concatenate(bits, axis=1), axis=1, bitorder="little")


def random_layers(rng, dims, scale=1.0):
    return [((rng.standard_normal((a, b)) * scale / np.sqrt(a)).astype(np.float32),
             (0.1 * rng.standard_normal(b)).astype(np.float32)) for a, b in zip(dims[:-1], dims[1:])]


@pytest.mark.parametrize("nb", [1, 2, 3, 4])
@pytest.mark.parametrize("hidden,normalize_f", [((), False), ((), True), ((40,), True), ((24, 16), False)])
def test_layered_encoder_matches_numpy(data, nb, hidden, normalize_f):
    """Maps as layer stacks (what the torch trainer exports): the native encoder against numpy, and the
    layered persistence format."""
    x, _ = data
    rng = np.random.default_rng(nb * 7 + len(hidden))
    d, m = 384, 32
    p = {"mean": x[:1000].mean(0).astype(np.float32), "alpha": 0.05, "normalize_f": normalize_f,
         "W_layers": random_layers(rng, (d,) + hidden + (m,)),
         "B_layers": [random_layers(rng, (m,) + hidden + (d,), 0.2) for _ in range(nb - 1)],
         "R_layers": [random_layers(rng, (d,) + hidden + (m,)) for _ in range(nb - 1)],
         "D": (0.01 * rng.standard_normal((m, d))).astype(np.float32), "e": np.zeros(d, np.float32)}
    enc = nearly.RecurrentBinarizer(d, m, nb)
    enc.set_params(p)
    codes = enc.encode(x[:1000])
    bits = np.unpackbits(codes ^ encode_layers_np(p, x[:1000], nb), axis=1)
    assert bits.mean() < 2e-3
    index = nearly.IndexBinaryRecurrent(d, m, nb)
    index.binarizer.set_params(p)
    index = nearly.deserialize_index(nearly.serialize_index(index))  # trained: its encoder is
    index.add(x[:200])
    back = nearly.deserialize_index(nearly.serialize_index(index))
    np.testing.assert_array_equal(back.binarizer.encode(x[:500]), codes[:500])
    np.testing.assert_array_equal(back.codes, codes[:200])


def test_layered_params_bad_shapes(data):
    d, m = 384, 32
    rng = np.random.default_rng(0)
    good = {"mean": np.zeros(d, np.float32), "alpha": 1.0, "W_layers": random_layers(rng, (d, m)),
            "B_layers": [random_layers(rng, (m, d))], "R_layers": [random_layers(rng, (d, m))],
            "D": np.zeros((m, d), np.float32), "e": np.zeros(d, np.float32)}
    enc = nearly.RecurrentBinarizer(d, m, 2)
    for key, val, msg in [("W_layers", random_layers(rng, (d, m + 8)), "W must map"),
                          ("B_layers", [random_layers(rng, (m, 16, d - 1))], "B must map"),
                          ("R_layers", [], "residual maps"),
                          ("W_layers", [(np.zeros((d, 8), np.float32), np.zeros(9, np.float32)),
                                        (np.zeros((8, m), np.float32), np.zeros(m, np.float32))], "bias"),
                          ("W_layers", [(np.full((d, m), np.nan, np.float32), np.zeros(m, np.float32))], "finite")]:
        with pytest.raises(ValueError, match=msg):
            enc.set_params(dict(good, **{key: val}))
    assert not enc.is_trained
    enc.set_params(good)
    assert enc.is_trained


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("nb", [1, 2, 3, 4])
def test_search_is_the_k_smallest_keys(metric, nb):
    """The search returns exactly the k smallest (key, id) of recurrent_key,
    ties to the smaller id: the integer pre-filter only skips codes that
    cannot enter. The GPU twin (GpuIndexBinaryRecurrent) is held to the same
    reference."""
    x, q = recurrent_tied_data()
    index = nearly.IndexBinaryRecurrent(64, 64, nb, metric)
    index.train(x)
    ids = np.random.default_rng(nb).permutation(len(x)).astype(np.int64) * 3 + 5
    for part in np.array_split(np.arange(len(x)), 3):
        index.add_with_ids(x[part], ids[part])
    for k in (1, 10, 100):
        D, I = index.search(q, k)
        Dr, Ir = recurrent_reference(index, q, k)
        np.testing.assert_array_equal(I, Ir)
        np.testing.assert_array_equal(D, Dr)
        if k > 1:
            assert (D[:, 1:] == D[:, :-1]).any()  # the repeated vectors do tie
    small = nearly.IndexBinaryRecurrent(64, 64, nb, metric)
    small.train(x)
    small.add(x[:7])
    D, I = small.search(q, 10)
    Dr, Ir = recurrent_reference(small, q, 10)
    np.testing.assert_array_equal(I, Ir)
    np.testing.assert_array_equal(D, Dr)
    assert (I[:, 7:] == -1).all()
