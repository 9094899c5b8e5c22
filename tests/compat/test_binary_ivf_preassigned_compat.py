"""A binary IVF index whose lists are chosen elsewhere (another quantizer, a
float one on the GPU): add_preassigned / add_core, search_preassigned and
range_search_preassigned, against numpy over the given lists and faiss-cpu's
contrib.ivf_tools on the same lists."""
import numpy as np
import pytest

import nearly

faiss = pytest.importorskip("faiss")
ivf_tools = pytest.importorskip("faiss.contrib.ivf_tools")

D_BITS, NLIST, NB, NQ = 64, 16, 1500, 40


def _hamming(a, b):
    x = np.bitwise_xor(a[:, None, :], b[None, :, :])
    return np.unpackbits(x, axis=2).sum(2).astype(np.int64)


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(9)
    xb = rng.integers(0, 256, (NB, D_BITS // 8), dtype=np.uint8)
    xq = rng.integers(0, 256, (NQ, D_BITS // 8), dtype=np.uint8)
    a = rng.integers(-1, NLIST, NB).astype(np.int64)  # -1: counted, not stored
    Iq = np.stack([rng.permutation(NLIST)[:3] for _ in range(NQ)]).astype(np.int64)  # distinct lists per query
    Iq[rng.random(Iq.shape) < 0.2] = -1  # skipped
    ours = nearly.IndexBinaryIVF(nearly.IndexBinaryFlat(D_BITS), D_BITS, NLIST)
    theirs = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(D_BITS), D_BITS, NLIST)
    centroids = rng.integers(0, 256, (NLIST, D_BITS // 8), dtype=np.uint8)
    for index in (ours, theirs):
        index.quantizer.add(centroids)
        index.is_trained = True
        index.nprobe = 3
    ours.add_preassigned(xb, a)
    ivf_tools.add_preassigned(theirs, xb, a)
    return xb, xq, a, Iq, ours, theirs


def test_lists_hold_what_was_assigned(setup):
    xb, _, a, _, ours, theirs = setup
    assert ours.ntotal == theirs.ntotal == NB
    for l in range(NLIST):
        np.testing.assert_array_equal(ours.get_list_ids(l), np.flatnonzero(a == l))
        np.testing.assert_array_equal(ours.get_list_ids(l), faiss.rev_swig_ptr(
            theirs.invlists.get_ids(l), theirs.invlists.list_size(l)))


def test_search_preassigned(setup):
    xb, xq, a, Iq, ours, theirs = setup
    k = 7
    D, I = ours.search_preassigned(xq, k, Iq)
    Df, If = ivf_tools.search_preassigned(theirs, xq, k, Iq)
    np.testing.assert_array_equal(D, Df)
    dist = _hamming(xq, xb)
    for q in range(NQ):
        cand = np.flatnonzero(np.isin(a, Iq[q][Iq[q] >= 0]))
        want = np.sort(dist[q, cand])[:k]
        got = D[q][I[q] >= 0]
        np.testing.assert_array_equal(got, want)
        assert set(I[q][I[q] >= 0]) <= set(cand)
        np.testing.assert_array_equal(dist[q, I[q][I[q] >= 0]], got)
    # the pointer form faiss's own code calls
    D2, I2 = np.empty_like(D), np.empty_like(I)
    ptr = nearly.swig_ptr
    ours.search_preassigned_c(NQ, ptr(xq), k, ptr(Iq), None, ptr(D2), ptr(I2))
    np.testing.assert_array_equal(D2, D)


def test_range_search_preassigned(setup):
    xb, xq, a, Iq, ours, theirs = setup
    radius = 26
    lims, D, I = ours.range_search_preassigned(xq, radius, Iq)
    limsf, Df, If = ivf_tools.range_search_preassigned(theirs, xq, radius, Iq)
    np.testing.assert_array_equal(lims, limsf)
    dist = _hamming(xq, xb)
    for q in range(NQ):
        cand = np.flatnonzero(np.isin(a, Iq[q][Iq[q] >= 0]))
        want = set(cand[dist[q, cand] < radius])
        got = I[lims[q]:lims[q + 1]]
        assert set(got) == want == set(If[limsf[q]:limsf[q + 1]])
        np.testing.assert_array_equal(D[lims[q]:lims[q + 1]], dist[q, got])


def test_preassigned_same_as_search_with_the_quantizers_lists(setup):
    _, xq, _, _, ours, _ = setup
    Iq = ours.quantizer.search(xq, ours.nprobe)[1]
    np.testing.assert_array_equal(ours.search_preassigned(xq, 5, Iq)[0], ours.search(xq, 5)[0])


def test_bad_lists(setup):
    xb, xq, _, Iq, ours, _ = setup
    with pytest.raises(nearly.InvalidArgumentError, match="list 16"):
        ours.search_preassigned(xq, 5, np.full((NQ, 2), NLIST))
    with pytest.raises(nearly.InvalidArgumentError, match="nprobe"):
        ours.search_preassigned(xq, 5, Iq[:3])
    with pytest.raises(nearly.InvalidArgumentError, match="list -2"):
        ours.range_search_preassigned(xq, 10, np.full((NQ, 2), -2))
    fresh = nearly.IndexBinaryIVF(nearly.IndexBinaryFlat(D_BITS), D_BITS, NLIST)
    fresh.quantizer.add(xb[:NLIST])
    fresh.is_trained = True
    with pytest.raises(nearly.InvalidArgumentError, match="list 99"):
        fresh.add_preassigned(xb[:2], np.array([0, 99]))
    assert fresh.ntotal == 0
    with pytest.raises(nearly.InvalidArgumentError):
        fresh.add_preassigned(xb[:2], np.array([0]))


def test_invlists_view_like_faiss(setup):
    _, _, _, _, ours, theirs = setup
    a, b = ours.invlists, theirs.invlists
    assert a.nlist == b.nlist and a.code_size == b.code_size
    assert a.compute_ntotal() == b.compute_ntotal() == ours.ntotal - (setup[2] < 0).sum()  # -1: counted, not stored
    assert a.imbalance_factor() == pytest.approx(b.imbalance_factor())
    for l in range(NLIST):
        n = b.list_size(l)
        assert a.list_size(l) == n and a.is_empty(l) == (n == 0)
        np.testing.assert_array_equal(nearly.rev_swig_ptr(a.get_ids(l), n), faiss.rev_swig_ptr(b.get_ids(l), n))
        np.testing.assert_array_equal(nearly.rev_swig_ptr(a.get_codes(l), n * a.code_size),
                                      faiss.rev_swig_ptr(b.get_codes(l), n * b.code_size))
        if n:
            assert a.get_single_id(l, n - 1) == b.get_single_id(l, n - 1)
            np.testing.assert_array_equal(a.get_single_code(l, 0), faiss.rev_swig_ptr(b.get_single_code(l, 0), 8))
    with pytest.raises(nearly.InvalidArgumentError):
        a.list_size(NLIST)
    with pytest.raises(RuntimeError, match="through the index"):
        a.add_entry(0, 1, np.zeros(8, np.uint8))
