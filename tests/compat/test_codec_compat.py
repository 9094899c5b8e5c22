"""Differential tests of faiss's standalone codec (sa_code_size, sa_encode,
sa_decode) and of the Index methods faiss code calls beside search
(assign, reconstruct_batch, search_and_reconstruct) against faiss-cpu.

Codes must be byte-equal to faiss's where both libraries train the same
quantizers (Flat, SQ, PQ without polysemous reordering, IVF with any of
them, fast-scan, L2norm, RFlat), and decode to the same vectors; where the
training itself differs by design (PCA's component signs, OPQ's random start)
the round trip must lose the same information. Indexes without a codec
raise faiss's RuntimeError."""
import numpy as np
import pytest

import nearly
from _testutil import METRIC_IP, METRIC_L2, randn

faiss = pytest.importorskip("faiss")

D = 32
MOD = {"faiss": faiss, "nearly": nearly}

# Byte-equal codes from the same training.
SAME_CODES = ["Flat", "SQ8", "SQfp16", "SQ4", "SQ6", "SQbf16", "IVF16,SQ4", "IVF300,SQ6", "PQ8np", "PQ8x4np", "PQ8x4fs", "IVF16,Flat", "IVF300,Flat",
              "IVF16,SQ8", "IVF16,SQfp16", "IVF16,PQ8np", "IVF300,PQ4np", "IVF16,PQ8x4fs", "IVF16,PQ8x4fsr",
              "L2norm,Flat", "L2norm,IVF16,PQ8np", "Flat,RFlat", "IVF16,PQ8np,RFlat"]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    return randn(rng, 12000, D), randn(rng, 300, D)


def trained(mod, fs, x, metric=METRIC_L2):
    index = mod.index_factory(D, fs, metric)
    index.train(x)
    return index


def same_codebooks(f, n, fs):
    """nearly gets faiss's trained 8-bit PQ codebooks: k-means over 256
    centroids agrees with faiss's objective to 1e-5, but a near tie in an
    early iteration can move single centroids apart. The coarse centroids and
    the 4-bit codebooks come out equal without help."""
    if "PQ" not in fs or "x4" in fs:
        return
    if "IVF" in fs:
        fp = faiss.downcast_index(faiss.extract_index_ivf(f)).pq
        np_ = nearly.extract_index_ivf(n).pq
    else:
        fp, np_ = f.pq, n.pq
    np_.centroids = faiss.vector_to_array(fp.centroids)


@pytest.mark.parametrize("fs", SAME_CODES)
def test_same_codes_and_decoding_as_faiss(data, fs):
    x, xq = data
    f, n = trained(faiss, fs, x), trained(nearly, fs, x)
    same_codebooks(f, n, fs)
    assert n.sa_code_size() == f.sa_code_size()
    cf, cn = f.sa_encode(xq), n.sa_encode(xq)
    assert cn.dtype == np.uint8 and cn.shape == (len(xq), f.sa_code_size())
    if fs == "L2norm,Flat":  # float codes; the two normalizations round differently
        np.testing.assert_allclose(cn.view(np.float32), cf.view(np.float32), rtol=1e-6, atol=1e-7)
    else:  # fp16 codes may differ at exact ties between two halves (rounding rule)
        assert np.mean(np.all(cf == cn, axis=1)) >= (0.99 if "fp16" in fs else 1.0)
    rf, rn = f.sa_decode(cf), n.sa_decode(cf)
    assert rn.dtype == np.float32 and rn.shape == xq.shape
    np.testing.assert_allclose(rn, rf, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fs", ["IVF16,PQ8np", "SQ8"])
def test_codes_are_what_the_index_stores(data, fs):
    # decoding sa_encode(x) gives what reconstruct() gives after add(x)
    x, xq = data
    index = trained(nearly, fs, x)
    if "IVF" in fs:
        nearly.extract_index_ivf(index).make_direct_map()
    index.add(xq)
    np.testing.assert_array_equal(index.sa_decode(index.sa_encode(xq)), index.reconstruct_n(0, len(xq)))


@pytest.mark.parametrize("fs", ["PCA16,Flat", "OPQ8,PQ8np"])
def test_trained_transforms_lose_what_faiss_loses(data, fs):
    x, xq = data
    err = {}
    for lib, mod in MOD.items():
        index = trained(mod, fs, x)
        assert index.sa_code_size() == (16 * 4 if fs.startswith("PCA") else 8)
        err[lib] = float(((index.sa_decode(index.sa_encode(xq)) - xq) ** 2).sum())
    assert err["nearly"] <= err["faiss"] * 1.03


def test_coarse_code_width_follows_nlist(data):
    x, _ = data
    for nlist, width in [(1, 0), (256, 1), (257, 2)]:
        f = faiss.IndexIVFFlat(faiss.IndexFlatL2(D), D, nlist)
        n = nearly.IndexIVFFlat(nearly.IndexFlatL2(D), D, nlist)
        assert f.sa_code_size() == n.sa_code_size() == width + 4 * D


@pytest.mark.parametrize("fs", ["HNSW8", "IDMap,Flat", "IDMap2,Flat", "IDMap,SQ8"])
def test_no_codec_raises_like_faiss(data, fs):
    x, xq = data
    sizes = []
    for mod in MOD.values():
        index = trained(mod, fs, x)
        with pytest.raises(RuntimeError, match="standalone codec not implemented"):
            index.sa_encode(xq)
        if fs.startswith("IDMap"):  # faiss still reports the wrapped index's code size
            sizes.append(index.sa_code_size())
            with pytest.raises(RuntimeError, match="standalone codec not implemented"):
                index.sa_decode(np.zeros((1, sizes[-1]), dtype=np.uint8))
        else:
            with pytest.raises(RuntimeError, match="standalone codec not implemented"):
                index.sa_code_size()
    assert len(set(sizes)) <= 1


def test_codec_bad_input(data):
    x, xq = data
    index = trained(nearly, "IVF16,PQ8np", x)
    with pytest.raises(RuntimeError, match="not trained"):
        nearly.index_factory(D, "PQ8np").sa_encode(xq)
    bad = xq.copy()
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="finite|NaN"):
        index.sa_encode(bad)
    with pytest.raises(ValueError):
        index.sa_encode(xq[:, :5])
    codes = index.sa_encode(xq)
    with pytest.raises(ValueError):
        index.sa_decode(codes[:, :-1])  # wrong width
    codes[0, 0] = 200  # list 200 of an index with 16 lists
    with pytest.raises(ValueError, match="list 200"):
        index.sa_decode(codes)
    for mod in MOD.values():  # both refuse non-uint8 codes
        with pytest.raises((TypeError, ValueError)):
            trained(mod, "SQ8", x).sa_decode(np.zeros((2, D), dtype=np.float32))


def test_codec_output_arrays(data):
    x, xq = data
    index = trained(nearly, "SQ8", x)
    codes = np.empty((len(xq), index.sa_code_size()), dtype=np.uint8)
    assert index.sa_encode(xq, codes=codes) is codes
    out = np.empty_like(xq)
    assert index.sa_decode(codes, x=out) is out
    with pytest.raises(ValueError, match="shape"):
        index.sa_encode(xq, codes=codes[:5])


EXACT = ["Flat", "IVF16,Flat", "IDMap2,Flat", "L2norm,Flat"]


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP], ids=["L2", "IP"])
@pytest.mark.parametrize("fs", EXACT + ["HNSW16", "IVF16,PQ8np"])
def test_assign_and_search_and_reconstruct(data, fs, metric):
    x, xq = data
    xs = x[:3000]
    out = {}
    for lib, mod in MOD.items():
        index = trained(mod, fs, x, metric)
        if fs.startswith("IDMap"):
            index.add_with_ids(xs, np.arange(3000, dtype=np.int64) * 7 + 5)
        else:
            index.add(xs)
        if "IVF" in fs:
            mod.extract_index_ivf(index).nprobe = 4
        out[lib] = index, index.search_and_reconstruct(xq, 10), index.assign(xq, 10)
    n, (Dn, In, Rn), An = out["nearly"]
    assert Rn.shape == (len(xq), 10, D) and Rn.dtype == np.float32 and (In >= 0).all()
    np.testing.assert_array_equal(An, In)
    np.testing.assert_array_equal(Dn, n.search(xq, 10)[0])
    # each row holds the result's stored vector, as the index decodes it
    if fs.startswith("IDMap"):
        want = xs[(In - 5) // 7]
    elif fs.startswith("L2norm"):
        want = xs[In] / np.linalg.norm(xs[In], axis=-1, keepdims=True)
    elif "PQ" in fs:
        want = n.sa_decode(n.sa_encode(xs[In.ravel()])).reshape(Rn.shape)
    else:
        want = xs[In]
    np.testing.assert_allclose(Rn, want, rtol=1e-5, atol=1e-6)
    if fs in EXACT:  # the same results as faiss, the same vectors
        _, (Df, If, Rf), Af = out["faiss"]
        assert np.mean(In == If) > 0.99 and np.mean(An == Af) > 0.99
        same = In == If
        np.testing.assert_allclose(Rn[same], Rf[same], rtol=1e-5, atol=1e-6)


def test_search_and_reconstruct_pads_missing_results_with_nan(data):
    x, xq = data
    for mod in MOD.values():
        index = mod.IndexFlatL2(D)
        index.add(x[:4])
        D_, I, R = index.search_and_reconstruct(xq[:2], 6)
        assert (I[:, 4:] == -1).all() and np.isnan(R[:, 4:]).all()
        np.testing.assert_array_equal(R[:, :4], x[I[:, :4]])


def test_ivf_search_and_reconstruct_needs_no_direct_map(data):
    x, xq = data
    index = trained(nearly, "IVF16,Flat", x)
    index.add_with_ids(x[:2000], np.arange(2000, dtype=np.int64) + 10**9)
    with pytest.raises(RuntimeError):
        index.reconstruct(10**9)  # no direct map: as in faiss
    D_, I, R = index.search_and_reconstruct(xq, 5)
    np.testing.assert_array_equal(R, x[I - 10**9])


@pytest.mark.parametrize("fs", ["Flat", "HNSW16", "SQ8", "IDMap2,Flat", "PCA16,Flat", "HNSW16,SQfp16", "HNSW16,SQbf16"])
def test_reconstruct_batch_like_faiss(data, fs):
    x, _ = data
    keys = np.array([5, 0, 2999, 5, 1234], dtype=np.int64)
    out = {}
    for lib, mod in MOD.items():
        index = trained(mod, fs, x)
        index.add(x[:3000]) if not fs.startswith("IDMap") else index.add_with_ids(x[:3000], np.arange(3000))
        out[lib] = index.reconstruct_batch(keys)
        with pytest.raises(RuntimeError):
            index.reconstruct_batch(np.array([3000], dtype=np.int64))
    tol = 1e-4 if fs.startswith("PCA") else 1e-5  # two eigensolvers: components agree to ~1e-5
    np.testing.assert_allclose(out["nearly"], out["faiss"], rtol=tol, atol=tol)
    assert out["nearly"].shape == (5, D) and out["nearly"].dtype == np.float32


@pytest.mark.parametrize("fs", ["SQ8", "PQ8np", "PQ8x4fs", "RQ4x8", "RaBitQ", "IVF16,Flat", "IVF16,SQ8",
                                "IVF300,PQ4np", "IVF16,PQ8x4fsr", "IVF16,RQ3x4", "IDMap2,PQ8np", "IDMap,IVF16,SQ8"])
def test_add_sa_codes_stores_what_add_would(data, fs):
    """faiss's add_sa_codes: the codes sa_encode gives, added as they are,
    make the index that add() makes (the same search results), with ids
    where the index keeps them (the codes are faiss's: see
    test_same_codes_and_decoding_as_faiss)."""
    x, xq = data
    xb = x[:3000]
    ref = trained(nearly, fs, x)
    idmap = fs.startswith("IDMap")
    ids = (np.arange(len(xb)) * 7 + 5).astype(np.int64) if idmap or "IVF" in fs else None
    if ids is None:
        ref.add(xb)
    else:
        ref.add_with_ids(xb, ids)
    index = trained(nearly, fs, x)
    codec = index.index if idmap else index
    codes = codec.sa_encode(xb)
    index.add_sa_codes(codes, ids)
    assert index.ntotal == len(xb)
    if "IVF" in fs:
        nearly.extract_index_ivf(ref).nprobe = nearly.extract_index_ivf(index).nprobe = 4
    for a, b in zip(index.search(xq, 10), ref.search(xq, 10)):
        np.testing.assert_array_equal(a, b)


def test_add_sa_codes_refusals(data):
    x, _ = data
    flat = trained(nearly, "PQ8np", x)
    codes = flat.sa_encode(x[:10])
    with pytest.raises(ValueError, match="no ids"):
        flat.add_sa_codes(codes, np.arange(10))
    with pytest.raises(ValueError):
        flat.add_sa_codes(codes[:, :3])  # not sa_code_size() bytes
    ivf = trained(nearly, "IVF16,SQ8", x)
    bad = ivf.sa_encode(x[:10])
    bad[:, 0] = 200  # list 200 of 16
    with pytest.raises(ValueError, match="list 200"):
        ivf.add_sa_codes(bad)
    assert ivf.ntotal == 0
    with pytest.raises(ValueError, match="ids"):
        trained(nearly, "IDMap,PQ8np", x).add_sa_codes(codes)
    with pytest.raises(RuntimeError, match="not implemented"):
        nearly.IndexHNSWFlat(D, 16).add_sa_codes(np.zeros((1, 4 * D), np.uint8))
    untrained = nearly.index_factory(D, "IVF16,SQ8")
    with pytest.raises(RuntimeError, match="trained"):
        untrained.add_sa_codes(np.zeros((1, untrained.sa_code_size()), np.uint8))
