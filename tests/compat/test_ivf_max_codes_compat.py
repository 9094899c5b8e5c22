"""faiss's code budget on IVF searches: SearchParametersIVF(max_codes=,
ensure_topk_full=) and IndexIVF.max_codes. A query stops once it has
scanned max_codes codes (the last list scanned in part; the codes that pass
the selector count), or, with ensure_topk_full, at least k passing codes of
whole lists. Differential-tested against faiss-cpu on IVF-Flat over the same
centroids (ids, distances and indexIVF_stats equal), and, for every family,
against the same search restricted to the codes the budget allows."""
import numpy as np
import pytest

import nearly
from _testutil import METRIC_IP, METRIC_L2

faiss = pytest.importorskip("faiss")

D_ = 16
NLIST = 32


def data(seed=0, n=4000, nq=12):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, D_)).astype(np.float32), rng.standard_normal((nq, D_)).astype(np.float32)


def ivf_flat(lib, centroids, xb, metric):
    q = lib.IndexFlat(D_, metric)
    q.add(centroids)
    index = lib.IndexIVFFlat(q, D_, NLIST, metric)
    index.is_trained = True
    index.add(xb)
    return index


@pytest.fixture(scope="module", params=[METRIC_L2, METRIC_IP], ids=["L2", "IP"])
def pair(request):
    xb, xq = data()
    centroids = xb[np.random.default_rng(1).choice(len(xb), NLIST, replace=False)]
    return ivf_flat(faiss, centroids, xb, request.param), ivf_flat(nearly, centroids, xb, request.param), xq, xb


def stats(lib):
    s = lib.cvar.indexIVF_stats
    return s.nq, s.nlist, s.ndis


@pytest.mark.parametrize("max_codes", [1, 3, 50, 125, 200, 1000, 10 ** 6])
@pytest.mark.parametrize("ensure_topk_full", [False, True])
@pytest.mark.parametrize("selector", [False, True])
def test_same_results_and_counts_as_faiss(pair, max_codes, ensure_topk_full, selector):
    f, n, xq, xb = pair
    out = {}
    for lib, index in ((faiss, f), (nearly, n)):
        sel = lib.IDSelectorBatch(np.arange(0, len(xb), 3)) if selector else None
        p = lib.SearchParametersIVF(nprobe=8, max_codes=max_codes, sel=sel, ensure_topk_full=ensure_topk_full)
        lib.cvar.indexIVF_stats.reset()
        D, I = index.search(xq, 10, params=p)
        out[lib.__name__] = D, I, stats(lib)
    (Df, If, sf), (Dn, In, sn) = out["faiss"], out["nearly"]
    np.testing.assert_array_equal(In, If)
    np.testing.assert_allclose(Dn, Df, rtol=1e-5, atol=1e-5)
    assert sn == sf


def test_index_attribute_and_preassigned(pair):
    f, n, xq, _ = pair
    try:
        for index in (f, n):
            index.nprobe = 8
            index.max_codes = 60
        Df, If = f.search(xq, 10)
        Dn, In = n.search(xq, 10)
        np.testing.assert_array_equal(In, If)
        # the params' budget overrides the index's (0: no limit)
        full = n.search(xq, 10, params=nearly.SearchParametersIVF(nprobe=8))[1]
        assert not np.array_equal(full, In)
        _, lists = n.quantizer.search(xq, 8)
        Dp, Ip = n.search_preassigned(xq, 10, lists)
        np.testing.assert_array_equal(Ip, In)
    finally:
        f.max_codes = n.max_codes = 0
    assert n.max_codes == 0
    with pytest.raises(ValueError):
        n.max_codes = -1
    with pytest.raises(ValueError):
        nearly.SearchParametersIVF(nprobe=2, max_codes=-5)


def budget_ids(index, x, nprobe, max_codes):
    """The ids one query's budget reaches: its lists nearest first, each
    scanned until max_codes codes are taken (no selector)."""
    _, lists = index.quantizer.search(x[None], nprobe)
    ids = []
    for l in lists[0]:
        if l < 0:
            continue
        ids.extend(index.invlists.get_ids(int(l))[:max_codes - len(ids)].tolist())
        if len(ids) >= max_codes:
            break
    return np.array(ids, dtype=np.int64)


@pytest.mark.parametrize("fs", ["IVF32,Flat", "IVF32,PQ4", "IVF32,PQ4x4fs", "IVF32,SQ8", "IVF32,SQ4", "IVF32,RaBitQ",
                                "IVF32,RQ2x6", "IDMap,IVF32,PQ4"])
@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP], ids=["L2", "IP"])
def test_every_family_scans_what_the_budget_allows(fs, metric):
    """The search under a budget equals the search restricted (by a
    selector) to the codes the budget reaches, for every family's scanner."""
    xb, xq = data(3, n=3000, nq=6)
    index = nearly.index_factory(D_, fs, metric)
    index.train(xb)
    if fs.startswith("IDMap"):
        index.add_with_ids(xb, np.arange(len(xb), dtype=np.int64) * 2 + 5)
    else:
        index.add(xb)
    ivf = nearly.extract_index_ivf(index)
    for max_codes in (7, 90, 250):
        for q in range(len(xq)):
            x = xq[q:q + 1]
            D, I = index.search(x, 10, params=nearly.SearchParametersIVF(nprobe=6, max_codes=max_codes))
            allowed = budget_ids(ivf, xq[q], 6, max_codes)  # nearly's IDMap keeps its ids in the lists
            Dr, Ir = index.search(x, 10, params=nearly.SearchParametersIVF(
                nprobe=6, sel=nearly.IDSelectorBatch(allowed)))
            assert set(I[0][I[0] >= 0]) <= set(allowed.tolist())
            np.testing.assert_array_equal(I, Ir)
            np.testing.assert_array_equal(D, Dr)
