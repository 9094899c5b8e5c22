"""Differential tests of IndexRaBitQ and IndexIVFRaBitQ against faiss-cpu:
the same codes (sign bits and 1-bit factors byte for byte; faiss sums the
multi-bit norm in SIMD order, so a few extra-bit codes come out one step
apart), the same estimates and ids at every query setting, the same factory
strings, parameters, codec and range search."""
import numpy as np
import pytest

import nearly
from _testutil import METRIC_IP, METRIC_L2, randn

faiss = pytest.importorskip("faiss")
if not hasattr(faiss, "IndexRaBitQ"):
    pytest.skip("this faiss has no RaBitQ", allow_module_level=True)

D = 100  # not a multiple of 8: the last sign byte is partial
QUERY_SETTINGS = [(0, False), (1, True), (4, False), (4, True), (8, False)]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(21)
    return randn(rng, 4000, D), randn(rng, 40, D)


def pair(mod, x, metric, nb_bits):
    index = mod.IndexRaBitQ(D, metric, nb_bits)
    index.train(x)
    index.add(x)
    return index


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP])
@pytest.mark.parametrize("nb_bits", [1, 2, 4, 9])
def test_flat_codes_and_search_equal_faiss(data, metric, nb_bits):
    x, q = data
    f, n = pair(faiss, x, metric, nb_bits), pair(nearly, x, metric, nb_bits)
    assert n.code_size == f.code_size == n.sa_code_size() == f.sa_code_size()
    np.testing.assert_array_equal(n.center, faiss.vector_to_array(f.center))
    cf, cn = f.sa_encode(x[:1000]), n.sa_encode(x[:1000])
    sb = (D + 7) // 8
    head = sb + (8 if nb_bits == 1 else 12)
    np.testing.assert_array_equal(cn[:, :head], cf[:, :head])
    if nb_bits > 1:
        eb = (D * (nb_bits - 1) + 7) // 8
        same_rows = (cn[:, head:head + eb] == cf[:, head:head + eb]).all(1).mean()
        assert same_rows > 0.8
        fac_f = cf[:, head + eb:].copy().view(np.float32)
        fac_n = cn[:, head + eb:].copy().view(np.float32)
        np.testing.assert_allclose(fac_n[:, 0], fac_f[:, 0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(n.sa_decode(cf[:50]), f.sa_decode(cf[:50]), rtol=1e-5, atol=1e-6)
    for qb, centered in QUERY_SETTINGS:
        Df, If = f.search(q, 10, params=faiss.RaBitQSearchParameters(qb=qb, centered=centered))
        Dn, In = n.search(q, 10, params=nearly.RaBitQSearchParameters(qb=qb, centered=centered))
        assert (In == If).mean() >= (1.0 if nb_bits == 1 else 0.97)
        if nb_bits == 1:
            np.testing.assert_allclose(Dn, Df, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP])
def test_flat_range_search_equals_faiss_for_1_bit(data, metric):
    x, q = data
    f, n = pair(faiss, x, metric, 1), pair(nearly, x, metric, 1)
    Dk, _ = f.search(q, 30)
    radius = float(np.median(Dk[:, 29]))
    lf, Df, If = f.range_search(q, radius)
    ln, Dn, In = n.range_search(q, radius)
    np.testing.assert_array_equal(ln, lf)
    for i in range(len(q)):
        a = dict(zip(If[lf[i]:lf[i + 1]], Df[lf[i]:lf[i + 1]]))
        b = dict(zip(In[ln[i]:ln[i + 1]], Dn[ln[i]:ln[i + 1]]))
        assert a.keys() == b.keys()
        np.testing.assert_allclose([b[j] for j in a], list(a.values()), rtol=1e-5, atol=1e-4)


def ivf_pair(x, metric, nb_bits, nlist=16):
    fq = faiss.IndexFlat(D, metric)
    f = faiss.IndexIVFRaBitQ(fq, D, nlist, metric, True, nb_bits)
    f.train(x)
    nq = nearly.IndexFlat(D, metric)
    nq.add(fq.reconstruct_n(0, nlist))  # the same lists on both sides
    n = nearly.IndexIVFRaBitQ(nq, D, nlist, metric, True, nb_bits)
    n.train(x)
    f.add(x)
    n.add(x)
    return f, n


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP])
@pytest.mark.parametrize("nb_bits", [1, 3])
def test_ivf_equals_faiss(data, metric, nb_bits):
    x, q = data
    f, n = ivf_pair(x, metric, nb_bits)
    assert n.code_size == f.code_size and n.sa_code_size() == f.sa_code_size()
    assert (n.qb, n.by_residual) == (f.qb, f.by_residual)
    cf, cn = f.sa_encode(x[:500]), n.sa_encode(x[:500])
    if nb_bits == 1:
        np.testing.assert_array_equal(cn, cf)
    else:
        assert (cn == cf).mean() > 0.95
    for qb, centered in QUERY_SETTINGS:
        for nprobe in (1, 4, 16):
            Df, If = f.search(q, 10, params=faiss.IVFRaBitQSearchParameters(nprobe=nprobe, qb=qb, centered=centered))
            Dn, In = n.search(q, 10, params=nearly.IVFRaBitQSearchParameters(nprobe=nprobe, qb=qb,
                                                                             centered=centered))
            assert (In == If).mean() >= (1.0 if nb_bits == 1 else 0.97)
            if nb_bits == 1:
                np.testing.assert_allclose(Dn, Df, rtol=1e-5, atol=1e-4)
    f.nprobe = n.nprobe = 5
    np.testing.assert_array_equal(n.search(q, 5)[1], f.search(q, 5)[1])
    if nb_bits == 1:
        radius = float(np.median(f.search(q, 20)[0][:, 19]))
        lf, _, If = f.range_search(q, radius)
        ln, _, In = n.range_search(q, radius)
        np.testing.assert_array_equal(ln, lf)
        assert set(zip(np.repeat(np.arange(len(q)), np.diff(lf).astype(np.int64)), If)) == set(
            zip(np.repeat(np.arange(len(q)), np.diff(ln).astype(np.int64)), In))


@pytest.mark.parametrize("fs", ["RaBitQ", "RaBitQ4", "RaBitQ9", "IVF16,RaBitQ", "IVF16,RaBitQ2",
                                "IVF16_HNSW8,RaBitQ", "IDMap,RaBitQ", "RaBitQ,RFlat", "RR100,RaBitQ"])
def test_factory_strings_build_the_same_indexes(fs):
    f, n = faiss.index_factory(D, fs, METRIC_IP), nearly.index_factory(D, fs, METRIC_IP)
    assert type(n).__name__ == type(f).__name__ or (fs == "RR100,RaBitQ" and type(n).__name__ == "IndexPreTransform")
    assert n.sa_code_size() == f.sa_code_size() if "IDMap" not in fs and "RFlat" not in fs else True
    assert n.is_trained == f.is_trained


def test_parameter_defaults_equal_faiss():
    for name in ("RaBitQSearchParameters", "IVFRaBitQSearchParameters"):
        a, b = getattr(faiss, name)(), getattr(nearly, name)()
        assert (a.qb, a.centered) == (b.qb, b.centered)
    assert faiss.IVFRaBitQSearchParameters().nprobe == nearly.IVFRaBitQSearchParameters().nprobe
    f, n = faiss.IndexRaBitQ(D), nearly.IndexRaBitQ(D)
    assert (f.qb, f.centered, f.rabitq.nb_bits, f.metric_type) == (n.qb, n.centered, n.rabitq.nb_bits, n.metric_type)


@pytest.mark.skipif(not hasattr(faiss, "IndexRaBitQFastScan"), reason="this faiss has no RaBitQ fast-scan")
@pytest.mark.parametrize("desc,cls", [("RaBitQfs", "IndexRaBitQFastScan"), ("RaBitQfs4", "IndexRaBitQFastScan"),
                                      ("RaBitQfs_32", "IndexRaBitQFastScan"),
                                      ("IVF16,RaBitQfs", "IndexIVFRaBitQFastScan"),
                                      ("IVF16,RaBitQfs2_32", "IndexIVFRaBitQFastScan")])
def test_fast_scan_strings_like_faiss(data, desc, cls):
    """faiss's fast-scan classes: nearly's RaBitQ already scans in the fast-scan
    layout, so they are the same indexes with exact tables and faiss's default
    of 8-bit queries; their codes are faiss's, their recall at least faiss's."""
    x, q = data
    got = {}
    for lib in (faiss, nearly):
        index = lib.index_factory(D, desc)
        assert type(index).__name__ == cls
        if lib is nearly and "IVF" in desc:  # the same lists on both sides
            index.quantizer.add(got[faiss].quantizer.reconstruct_n(0, 16))
        index.train(x)
        index.add(x)
        if "IVF" in desc:
            index.nprobe = 4
        got[lib] = index
    assert got[nearly].qb == got[faiss].qb == 8 and got[nearly].bbs == 32
    cf, cn = got[faiss].sa_encode(x[:200]), got[nearly].sa_encode(x[:200])
    nb_bits = 1 if desc.endswith(("fs", "fs_32")) else int(desc.split("fs")[1][0])
    head = (1 if "IVF" in desc else 0) + (D + 7) // 8 + (8 if nb_bits == 1 else 12)  # list number, signs, factors
    np.testing.assert_array_equal(cn[:, :head], cf[:, :head])
    true = np.argsort(((q[:, None, :] - x[None]) ** 2).sum(-1), axis=1)[:, :10]
    rec = {lib: np.mean([len(set(a) & set(b)) / 10 for a, b in zip(i.search(q, 10)[1], true)])
           for lib, i in got.items()}
    assert rec[nearly] >= rec[faiss] - 0.02, rec
    # the same index as the plain class searched with 8-bit queries
    plain = nearly.index_factory(D, desc.replace("fs", "").split("_")[0])
    if "IVF" in desc:
        plain.quantizer.add(got[faiss].quantizer.reconstruct_n(0, 16))
    plain.train(x)
    plain.add(x)
    if "IVF" in desc:
        plain.nprobe = 4
    plain.qb = 8
    for a, b in zip(plain.search(q, 10), got[nearly].search(q, 10)):
        np.testing.assert_array_equal(a, b)
    back = nearly.deserialize_index(nearly.serialize_index(got[nearly]))
    assert type(back).__name__ == cls and back.qb == 8
    for a, b in zip(back.search(q, 10), got[nearly].search(q, 10)):
        np.testing.assert_array_equal(a, b)


def test_fast_scan_block_size():
    # faiss's rule: a multiple of 32; nearly lays codes in blocks of 32 whatever is asked
    for bad in (0, 16, 48):
        with pytest.raises(ValueError, match=f"bbs={bad}"):
            nearly.IndexIVFRaBitQFastScan(nearly.IndexFlatL2(D), D, 16, METRIC_L2, bad)
    with pytest.raises(ValueError, match="bbs=48"):
        nearly.index_factory(D, "RaBitQfs_48")
    assert nearly.index_factory(D, "RaBitQfs_64").bbs == 32
    assert nearly.IndexIVFRaBitQFastScan(nearly.IndexFlatL2(D), D, 16, METRIC_L2, 64).bbs == 32

@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP])
@pytest.mark.parametrize("nb_bits", [1, 4])
def test_distance_computer_equals_faiss_and_search(data, metric, nb_bits):
    """dc(i) is the estimate search reports (the 1-bit one, or the full one of
    multi-bit codes), with the index's qb and centered, as faiss's."""
    x, q = data
    f, n = pair(faiss, x, metric, nb_bits), pair(nearly, x, metric, nb_bits)
    for qb, centered in ((8, False), (4, True)):
        for index in (f, n):
            index.qb, index.centered = qb, centered
        dcf, dcn = f.get_distance_computer(), n.get_distance_computer()
        dcf.set_query(faiss.swig_ptr(q[0]))
        dcn.set_query(q[0])
        got = np.array([dcn(i) for i in range(300)])
        np.testing.assert_allclose(got, [dcf(i) for i in range(300)], rtol=1e-5, atol=1e-4)
        Dn, In = n.search(q[:1], 10)
        np.testing.assert_array_equal(np.array([dcn(int(i)) for i in In[0]], dtype=np.float32), Dn[0])


def test_ivf_fast_scan_index_knobs(data):
    """centered on the index (faiss's fast-scan field) is the default of
    parameterless searches; implem takes faiss's values and changes nothing."""
    x, q = data
    index = nearly.index_factory(D, "IVF16,RaBitQfs")
    index.train(x)
    index.add(x)
    index.nprobe = 4
    assert not index.centered and index.implem == 0
    index.centered = True
    by_field = index.search(q, 10)
    by_params = index.search(q, 10, params=nearly.IVFRaBitQSearchParameters(nprobe=4, qb=8, centered=True))
    uncentered = index.search(q, 10, params=nearly.IVFRaBitQSearchParameters(nprobe=4, qb=8, centered=False))
    for a, b in zip(by_field, by_params):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(by_field[0], uncentered[0])
    for implem in (10, 12, 14, 1, 2, 112):
        index.implem = implem
        for a, b in zip(index.search(q, 10), by_field):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="implem 3 does not exist"):
        index.implem = 3
    flat = nearly.IndexRaBitQFastScan(D)
    flat.implem = 4
    with pytest.raises(ValueError, match="implem 1 does not exist"):
        flat.implem = 1


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP])
@pytest.mark.parametrize("nb_bits", [1, 4])
def test_ivf_fast_scan_conversion_like_faiss(data, metric, nb_bits):
    """faiss's IndexIVFRaBitQFastScan(ivf_rabitq, bbs): the converted index
    shares the quantizer, holds the same entries and searches as the
    original (the same codes), as faiss's conversion does."""
    x, q = data
    f, n = ivf_pair(x, metric, nb_bits)
    for lib, orig in ((faiss, f), (nearly, n)):
        orig.nprobe = 6
        conv = lib.IndexIVFRaBitQFastScan(orig, 32)
        assert (conv.ntotal, conv.nprobe, conv.qb, conv.bbs) == (orig.ntotal, orig.nprobe, orig.qb, 32)
        assert conv.by_residual and conv.is_trained
        for l in (0, 7):
            assert conv.invlists.list_size(l) == orig.invlists.list_size(l)
        if lib is nearly:
            for l in (0, 7):
                np.testing.assert_array_equal(conv.invlists.get_ids(l), orig.invlists.get_ids(l))
            assert conv.centered == orig.centered
            Do, Io = orig.search(q, 10)
            Dc, Ic = conv.search(q, 10)
            np.testing.assert_array_equal(Ic, Io)
            np.testing.assert_array_equal(Dc, Do)
            conv.add(x[:10])  # its own lists: the original is left as it was
            assert conv.ntotal == orig.ntotal + 10
    # nearly's conversion searches as faiss's original (faiss's converted
    # index rounds its tables to 8 bits; nearly's fast-scan keeps them exact)
    Df, If = f.search(q, 10)
    Dn, In = nearly.IndexIVFRaBitQFastScan(n, 32).search(q, 10)
    assert (In == If).mean() >= (1.0 if nb_bits == 1 else 0.97)


def test_flat_fast_scan_compute_codes_like_faiss(data):
    x, q = data
    for lib in (faiss, nearly):
        index = lib.IndexRaBitQFastScan(D, METRIC_L2)
        index.train(x)
        codes = np.empty((50, index.code_size), dtype=np.uint8)
        index.compute_codes(lib.swig_ptr(codes), 50, lib.swig_ptr(x[:50]))
        np.testing.assert_array_equal(codes, index.sa_encode(x[:50]))
    with pytest.raises(ValueError):
        index.compute_codes(nearly.swig_ptr(codes[:10]), 50, nearly.swig_ptr(x[:50]))
