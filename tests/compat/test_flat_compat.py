"""Differential tests: the same calls on faiss-cpu and on nearly, same inputs.

faiss is the specification. Distances are compared with a tolerance (different
summation order) and ids modulo reordering among tied distances.
"""
import gc

import numpy as np
import pytest

import nearly
from _testutil import (
    FLT_MAX,
    METRIC_IP,
    METRIC_L2,
    assert_knn_equiv,
    assert_knn_valid,
    assert_range_equiv,
    brute_force,
    randn,
    range_ref,
    range_to_dicts,
    tolerance,
)

faiss = pytest.importorskip("faiss")

D_ = 16
METRICS = [METRIC_L2, METRIC_IP]
METRIC_IDS = ["L2", "IP"]


def flat(lib, d, metric):
    return lib.IndexFlatL2(d) if metric == METRIC_L2 else lib.IndexFlatIP(d)


def build(lib, kind, d, metric, xb, ids=None):
    """kind: 'flat' | 'idmap' | 'idmap2'."""
    if kind == "flat":
        index = flat(lib, d, metric)
        index.add(xb)
        return index
    cls = lib.IndexIDMap if kind == "idmap" else lib.IndexIDMap2
    index = cls(flat(lib, d, metric))
    index.add_with_ids(xb, ids)
    return index


def both(fn):
    """Run fn(lib) for faiss and nearly; return (faiss_result, nearly_result)."""
    return fn(faiss), fn(nearly)


def data(seed, nb, nq, d=D_):
    rng = np.random.default_rng(seed)
    return randn(rng, nb, d), randn(rng, nq, d)


# ---------------------------------------------------------------- constants / attributes


def test_constants():
    assert nearly.METRIC_L2 == faiss.METRIC_L2 == 1
    assert nearly.METRIC_INNER_PRODUCT == faiss.METRIC_INNER_PRODUCT == 0
    assert nearly.get_num_gpus() == 0
    assert isinstance(nearly.omp_get_max_threads(), int)
    assert nearly.omp_get_max_threads() >= 1


@pytest.mark.parametrize("make", [
    lambda lib: lib.IndexFlatL2(12),
    lambda lib: lib.IndexFlatIP(12),
    lambda lib: lib.IndexFlat(12),
    lambda lib: lib.IndexFlat(12, lib.METRIC_INNER_PRODUCT),
    lambda lib: lib.IndexFlat(12, lib.METRIC_L2),
    lambda lib: lib.IndexIDMap(lib.IndexFlatIP(12)),
    lambda lib: lib.IndexIDMap2(lib.IndexFlatL2(12)),
], ids=["FlatL2", "FlatIP", "Flat", "Flat-IP", "Flat-L2", "IDMap-IP", "IDMap2-L2"])
def test_attributes_match(make):
    f, n = both(make)
    for attr in ("d", "ntotal", "is_trained", "metric_type", "verbose"):
        assert getattr(n, attr) == getattr(f, attr), attr
    assert type(n.d) is int and type(n.ntotal) is int
    assert n.is_trained is True
    n.verbose = True
    assert n.verbose is True
    n.verbose = False
    assert n.verbose is False


def test_class_hierarchy_matches():
    for sub, base in [("IndexFlatL2", "IndexFlat"), ("IndexFlatIP", "IndexFlat"),
                      ("IndexIDMap2", "IndexIDMap")]:
        assert issubclass(getattr(faiss, sub), getattr(faiss, base))
        assert issubclass(getattr(nearly, sub), getattr(nearly, base)), (sub, base)


def test_ntotal_grows_with_adds():
    xb, _ = data(1, 50, 0)
    f, n = both(lambda lib: flat(lib, D_, METRIC_L2))
    for a, b in [(0, 10), (10, 10), (10, 35), (35, 50)]:
        f.add(xb[a:b])
        n.add(xb[a:b])
        assert n.ntotal == f.ntotal == b


# ---------------------------------------------------------------- search


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
@pytest.mark.parametrize("nq", [0, 1, 3, 17, 200])
@pytest.mark.parametrize("k", [1, 10, 150])
def test_search_matches_faiss(metric, nq, k):
    nb = 100
    xb, xq = data(100 + nq, nb, nq)
    f, n = both(lambda lib: build(lib, "flat", D_, metric, xb))
    Df, If = f.search(xq, k)
    Dn, In = n.search(xq, k)
    assert_knn_equiv(Dn, In, Df, If, atol=tolerance(xq, xb, metric))
    assert_knn_valid(Dn, In, xq, xb, k, metric)


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_search_after_several_adds(metric):
    xb, xq = data(2, 90, 7)
    f, n = both(lambda lib: flat(lib, D_, metric))
    for idx in (f, n):
        idx.add(xb[:30])
        idx.add(xb[30:31])
        idx.add(xb[31:])
    Df, If = f.search(xq, 20)
    Dn, In = n.search(xq, 20)
    assert_knn_equiv(Dn, In, Df, If, atol=tolerance(xq, xb, metric))


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
@pytest.mark.parametrize("nq", [0, 1, 5])
def test_search_empty_index(metric, nq):
    _, xq = data(3, 0, nq)
    f, n = both(lambda lib: flat(lib, D_, metric))
    Df, If = f.search(xq, 4)
    Dn, In = n.search(xq, 4)
    assert Dn.dtype == np.float32 and In.dtype == np.int64
    assert Dn.shape == In.shape == (nq, 4)
    np.testing.assert_array_equal(In, If)
    np.testing.assert_array_equal(Dn, Df)


@pytest.mark.parametrize("metric, pad", [(METRIC_L2, FLT_MAX), (METRIC_IP, -FLT_MAX)],
                         ids=METRIC_IDS)
def test_padding_values(metric, pad):
    xb, xq = data(4, 5, 3)
    f, n = both(lambda lib: build(lib, "flat", D_, metric, xb))
    Df, If = f.search(xq, 9)
    Dn, In = n.search(xq, 9)
    assert (In[:, 5:] == -1).all() and (If[:, 5:] == -1).all()
    assert (Dn[:, 5:] == np.float32(pad)).all()
    np.testing.assert_array_equal(Dn[:, 5:], Df[:, 5:])
    assert (In[:, :5] >= 0).all()
    assert_knn_equiv(Dn, In, Df, If, atol=tolerance(xq, xb, metric))


def test_output_arrays_are_fresh_c_contiguous():
    xb, xq = data(5, 40, 6)
    n = build(nearly, "flat", D_, METRIC_L2, xb)
    D1, I1 = n.search(xq, 5)
    D2, I2 = n.search(xq, 5)
    for a in (D1, I1):
        assert a.flags.c_contiguous and a.flags.writeable
    assert not np.shares_memory(D1, D2) and not np.shares_memory(I1, I2)
    D1[:] = 0
    I1[:] = 0
    D3, I3 = n.search(xq, 5)
    np.testing.assert_array_equal(D2, D3)
    np.testing.assert_array_equal(I2, I3)
    assert not np.shares_memory(D1, xq)


def test_search_into_preallocated_outputs():
    xb, xq = data(6, 40, 6)
    f, n = both(lambda lib: build(lib, "flat", D_, METRIC_L2, xb))
    Dref, Iref = f.search(xq, 7)
    D = np.full((6, 7), 123.0, dtype=np.float32)
    I = np.full((6, 7), 77, dtype=np.int64)
    D2, I2 = n.search(xq, 7, D=D, I=I)
    assert D2 is D and I2 is I  # faiss returns the arrays it was given
    assert_knn_equiv(D, I, Dref, Iref, atol=tolerance(xq, xb, METRIC_L2))


def _as_kind(x, kind):
    if kind == "float64":
        return x.astype(np.float64)
    if kind == "int32":
        return np.round(x * 3).astype(np.int32)
    if kind == "fortran":
        return np.asfortranarray(x)
    if kind == "strided":
        wide = np.zeros((x.shape[0], 2 * x.shape[1]), dtype=np.float32)
        wide[:, ::2] = x
        return wide[:, ::2]
    if kind == "reversed":
        return x[::-1][::-1]  # negative strides view
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["float64", "int32", "fortran", "strided", "reversed"])
def test_input_conversion_matches_faiss(kind):
    xb, xq = data(7, 60, 9)
    xb_k, xq_k = _as_kind(xb, kind), _as_kind(xq, kind)
    if kind == "strided":
        assert not xb_k.flags.c_contiguous
    f, n = both(lambda lib: build(lib, "flat", D_, METRIC_L2, xb_k))
    Df, If = f.search(xq_k, 8)
    Dn, In = n.search(xq_k, 8)
    xb32 = np.ascontiguousarray(xb_k, dtype=np.float32)
    xq32 = np.ascontiguousarray(xq_k, dtype=np.float32)
    assert_knn_equiv(Dn, In, Df, If, atol=tolerance(xq32, xb32, METRIC_L2))
    assert_knn_valid(Dn, In, xq32, xb32, 8, METRIC_L2)
    np.testing.assert_array_equal(n.reconstruct_n(0, n.ntotal), xb32)


def test_list_input_is_accepted():
    # faiss itself rejects lists; the nearly contract accepts anything numpy converts
    xb, xq = data(8, 30, 4)
    n = flat(nearly, D_, METRIC_L2)
    n.add(xb.tolist())
    assert n.ntotal == 30
    Dn, In = n.search(xq.tolist(), 5)
    Dl, Il = n.search(xq, 5)
    np.testing.assert_array_equal(In, Il)
    np.testing.assert_array_equal(Dn, Dl)
    m = nearly.IndexIDMap(nearly.IndexFlatL2(D_))
    m.add_with_ids(xb.tolist(), list(range(100, 130)))
    _, Im = m.search(xq, 1)
    np.testing.assert_array_equal(Im, Il[:, :1] + 100)


# ---------------------------------------------------------------- IDMap / IDMap2


@pytest.mark.parametrize("kind", ["idmap", "idmap2"])
@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_idmap_arbitrary_ids(kind, metric):
    rng = np.random.default_rng(9)
    xb, xq = data(9, 80, 11)
    ids = rng.choice(2 ** 62, size=80, replace=False).astype(np.int64)
    ids[0] = 2 ** 63 - 1
    ids[1] = 0
    f, n = both(lambda lib: build(lib, kind, D_, metric, xb, ids))
    assert n.ntotal == f.ntotal == 80
    for k in (1, 10, 100):
        Df, If = f.search(xq, k)
        Dn, In = n.search(xq, k)
        assert_knn_equiv(Dn, In, Df, If, atol=tolerance(xq, xb, metric))
        assert_knn_valid(Dn, In, xq, xb, k, metric, ids=ids)


def test_idmap_negative_ids():
    # faiss stores negative ids (other than -1) without complaint
    xb, xq = data(10, 30, 4)
    ids = -np.arange(2, 32, dtype=np.int64) * 1000
    f, n = both(lambda lib: build(lib, "idmap", D_, METRIC_L2, xb, ids))
    Df, If = f.search(xq, 5)
    Dn, In = n.search(xq, 5)
    assert_knn_equiv(Dn, In, Df, If, atol=tolerance(xq, xb, METRIC_L2))


@pytest.mark.parametrize("kind", ["idmap", "idmap2"])
def test_idmap_multiple_adds_and_int32_ids(kind):
    xb, xq = data(11, 60, 5)
    def make(lib):
        cls = lib.IndexIDMap if kind == "idmap" else lib.IndexIDMap2
        index = cls(lib.IndexFlatL2(D_))
        index.add_with_ids(xb[:20], np.arange(1000, 1020, dtype=np.int32))
        index.add_with_ids(xb[20:], np.arange(5000, 5040, dtype=np.int64))
        return index
    f, n = both(make)
    Df, If = f.search(xq, 60)
    Dn, In = n.search(xq, 60)
    assert_knn_equiv(Dn, In, Df, If, atol=tolerance(xq, xb, METRIC_L2))
    assert set(In[0].tolist()) == set(range(1000, 1020)) | set(range(5000, 5040))


def test_idmap_keeps_sub_index_alive():
    xb, xq = data(12, 20, 3)
    n = nearly.IndexIDMap(nearly.IndexFlatL2(D_))  # the sub-index has no other reference
    gc.collect()
    n.add_with_ids(xb, np.arange(20, dtype=np.int64) + 7)
    gc.collect()
    D, I = n.search(xq, 3)
    assert_knn_valid(D, I, xq, xb, 3, METRIC_L2, ids=np.arange(20) + 7)


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_idmap_inherits_metric(metric):
    f, n = both(lambda lib: lib.IndexIDMap(flat(lib, D_, metric)))
    assert n.metric_type == f.metric_type == metric
    assert n.d == D_


def test_idmap2_reconstruct_by_external_id():
    xb, _ = data(13, 25, 0)
    ids = np.arange(25, dtype=np.int64) * 7 + 3
    f, n = both(lambda lib: build(lib, "idmap2", D_, METRIC_L2, xb, ids))
    for j in (0, 5, 24):
        r = n.reconstruct(int(ids[j]))
        assert r.dtype == np.float32 and r.shape == (D_,)
        np.testing.assert_array_equal(r, xb[j])
        np.testing.assert_array_equal(r, f.reconstruct(int(ids[j])))
    with pytest.raises(RuntimeError):
        f.reconstruct(4)
    with pytest.raises(RuntimeError):
        n.reconstruct(4)


def test_idmap_reconstruct_not_implemented():
    xb, _ = data(14, 5, 0)
    f, n = both(lambda lib: build(lib, "idmap", D_, METRIC_L2, xb, np.arange(5)))
    with pytest.raises(RuntimeError, match="not implemented"):
        f.reconstruct(0)
    with pytest.raises(RuntimeError, match="reconstruct not implemented for this type of index"):
        n.reconstruct(0)


def test_add_with_ids_on_flat_not_implemented():
    xb, _ = data(15, 5, 0)
    f, n = both(lambda lib: lib.IndexFlatL2(D_))
    with pytest.raises(RuntimeError):
        f.add_with_ids(xb, np.arange(5))
    with pytest.raises(RuntimeError, match="add_with_ids not implemented for this type of index"):
        n.add_with_ids(xb, np.arange(5))
    assert n.ntotal == 0


def test_idmap_add_without_ids_raises():
    xb, _ = data(16, 5, 0)
    f, n = both(lambda lib: lib.IndexIDMap(lib.IndexFlatL2(D_)))
    with pytest.raises(RuntimeError):
        f.add(xb)
    with pytest.raises(RuntimeError):
        n.add(xb)
    assert n.ntotal == 0


def test_idmap_on_nonempty_index_raises():
    xb, _ = data(17, 5, 0)
    for lib in (faiss, nearly):
        sub = lib.IndexFlatL2(D_)
        sub.add(xb)
        with pytest.raises((RuntimeError, ValueError)):
            lib.IndexIDMap(sub)


# ---------------------------------------------------------------- selectors


def make_selector(lib, kind, universe):
    """Build a selector over ids in [0, universe) and its numpy membership mask."""
    rng = np.random.default_rng(SELECTORS.index(kind))
    allids = np.arange(universe)
    batch_ids = rng.choice(universe, size=universe // 4, replace=False).astype(np.int64)
    lo, hi = universe // 5, universe // 2
    bits = rng.random(universe) < 0.3
    bitmap = np.packbits(bits, bitorder="little")
    keep = []

    def mk(name):
        if name == "batch":
            s = lib.IDSelectorBatch(batch_ids)
            m = np.isin(allids, batch_ids)
        elif name == "array":
            s = lib.IDSelectorArray(batch_ids)
            m = np.isin(allids, batch_ids)
        elif name == "range":
            s = lib.IDSelectorRange(lo, hi)
            m = (allids >= lo) & (allids < hi)
        elif name == "bitmap":
            s = lib.IDSelectorBitmap(bitmap)
            m = bits.copy()
        else:
            raise AssertionError(name)
        keep.append(s)
        return s, m

    if kind in ("batch", "array", "range", "bitmap"):
        s, m = mk(kind)
    elif kind == "not":
        a, ma = mk("range")
        s, m = lib.IDSelectorNot(a), ~ma
    elif kind == "and":
        (a, ma), (b, mb) = mk("range"), mk("bitmap")
        s, m = lib.IDSelectorAnd(a, b), ma & mb
    elif kind == "or":
        (a, ma), (b, mb) = mk("batch"), mk("bitmap")
        s, m = lib.IDSelectorOr(a, b), ma | mb
    elif kind == "xor":
        (a, ma), (b, mb) = mk("range"), mk("batch")
        s, m = lib.IDSelectorXOr(a, b), ma ^ mb
    else:
        raise AssertionError(kind)
    keep.append(s)
    return s, m, keep


SELECTORS = ["batch", "array", "range", "bitmap", "not", "and", "or", "xor"]


def test_selector_membership_reference():
    # sanity check of the numpy reference masks used below, against faiss
    for kind in SELECTORS:
        s, m, _keep = make_selector(faiss, kind, 64)
        got = np.array([s.is_member(i) for i in range(64)])
        np.testing.assert_array_equal(got, m, err_msg=kind)


@pytest.mark.parametrize("sel_kind", SELECTORS)
@pytest.mark.parametrize("kind", ["flat", "idmap", "idmap2"])
@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_filtered_search(sel_kind, kind, metric):
    nb, universe = 60, 120
    xb, xq = data(20, nb, 6)
    rng = np.random.default_rng(21)
    if kind == "flat":
        ids, universe = np.arange(nb), nb
    else:
        ids = rng.choice(universe, size=nb, replace=False).astype(np.int64)
    results = {}
    masks = {}
    for lib in (faiss, nearly):
        index = build(lib, kind, D_, metric, xb, ids)
        sel, mask, keep = make_selector(lib, sel_kind, universe)
        params = lib.SearchParameters(sel=sel)
        results[lib] = index.search(xq, 15, params=params)
        masks[lib] = mask[ids]
        del keep
    np.testing.assert_array_equal(masks[faiss], masks[nearly])
    Df, If = results[faiss]
    Dn, In = results[nearly]
    assert_knn_equiv(Dn, In, Df, If, atol=tolerance(xq, xb, metric))
    m = masks[nearly]
    assert_knn_valid(Dn, In, xq, xb[m], 15, metric, ids=ids[m])


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_filtered_range_search(metric):
    xb, xq = data(22, 80, 5)
    radius = 25.0 if metric == METRIC_L2 else 2.0
    out = {}
    for lib in (faiss, nearly):
        index = build(lib, "flat", D_, metric, xb)
        sel, mask, keep = make_selector(lib, "xor", 80)
        out[lib] = range_to_dicts(*index.range_search(xq, radius, params=lib.SearchParameters(sel=sel)))
    atol = tolerance(xq, xb, metric)
    assert_range_equiv(out[nearly], out[faiss], atol, radius)
    ref = range_ref(xq, xb[mask], radius, metric, ids=np.arange(80)[mask])
    assert_range_equiv(out[nearly], ref, atol, radius)


def test_search_params_none_is_unfiltered():
    xb, xq = data(23, 30, 3)
    n = build(nearly, "flat", D_, METRIC_L2, xb)
    D1, I1 = n.search(xq, 5)
    D2, I2 = n.search(xq, 5, params=None)
    D3, I3 = n.search(xq, 5, params=nearly.SearchParameters())
    np.testing.assert_array_equal(I1, I2)
    np.testing.assert_array_equal(I1, I3)
    np.testing.assert_array_equal(D1, D3)


# ---------------------------------------------------------------- remove_ids


def _full_state(index, xq):
    k = max(index.ntotal, 1)
    return index.search(xq, k)


@pytest.mark.parametrize("how", ["array", "array-missing", "array-empty"] + SELECTORS)
@pytest.mark.parametrize("kind", ["flat", "idmap", "idmap2"])
def test_remove_ids(how, kind):
    nb = 70
    xb, xq = data(30, nb, 4)
    rng = np.random.default_rng(31)
    if kind == "flat":
        ids, universe = np.arange(nb), nb
    else:
        universe = 140
        ids = rng.choice(universe, size=nb, replace=False).astype(np.int64)
    to_remove = ids[np.random.default_rng(32).permutation(nb)[:20]].astype(np.int64)
    out = {}
    for lib in (faiss, nearly):
        index = build(lib, kind, D_, METRIC_L2, xb, ids)
        if how == "array":
            arg, keep = to_remove, None
            mask = ~np.isin(ids, arg)
        elif how == "array-missing":
            arg = np.array([universe + 5, universe + 6], dtype=np.int64)
            mask = np.ones(nb, bool)
            keep = None
        elif how == "array-empty":
            arg = np.array([], dtype=np.int64)
            mask = np.ones(nb, bool)
            keep = None
        else:
            arg, m, keep = make_selector(lib, how, universe)
            mask = ~m[ids]
        nrem = index.remove_ids(arg)
        out[lib] = (int(nrem), index.ntotal, _full_state(index, xq), mask, index)
    nf, totf, (Df, If), maskf, fi = out[faiss]
    nn, totn, (Dn, In), maskn, ni = out[nearly]
    np.testing.assert_array_equal(maskf, maskn)
    assert nn == nf == int((~maskn).sum())
    assert totn == totf == int(maskn.sum())
    assert_knn_equiv(Dn, In, Df, If, atol=tolerance(xq, xb, METRIC_L2))
    if kind == "flat":
        # remaining vectors keep their relative order and are renumbered 0..ntotal-1
        if totn:
            np.testing.assert_array_equal(ni.reconstruct_n(0, totn), xb[maskn])
        assert_knn_valid(Dn, In, xq, xb[maskn], max(totn, 1), METRIC_L2)
    else:
        assert_knn_valid(Dn, In, xq, xb[maskn], max(totn, 1), METRIC_L2, ids=ids[maskn])
    if kind == "idmap2":
        for j in np.flatnonzero(maskn)[:5]:
            np.testing.assert_array_equal(ni.reconstruct(int(ids[j])), xb[j])
        gone = ids[~maskn]
        if len(gone):
            with pytest.raises(RuntimeError):
                ni.reconstruct(int(gone[0]))


def test_remove_then_add_flat():
    xb, xq = data(33, 40, 5)
    f, n = both(lambda lib: build(lib, "flat", D_, METRIC_IP, xb[:30]))
    for idx in (f, n):
        assert idx.remove_ids(np.arange(0, 30, 3, dtype=np.int64)) == 10
        idx.add(xb[30:])
        assert idx.ntotal == 30
    Df, If = f.search(xq, 30)
    Dn, In = n.search(xq, 30)
    assert_knn_equiv(Dn, In, Df, If, atol=tolerance(xq, xb, METRIC_IP))


# ---------------------------------------------------------------- range_search


@pytest.mark.parametrize("metric, radii", [(METRIC_L2, [0.0, 10.0, 25.0, 1e9]),
                                           (METRIC_IP, [1e9, 4.0, 0.0, -1e9])], ids=METRIC_IDS)
@pytest.mark.parametrize("nq", [0, 1, 13])
def test_range_search_matches_faiss(metric, radii, nq):
    xb, xq = data(40 + nq, 120, nq)
    f, n = both(lambda lib: build(lib, "flat", D_, metric, xb))
    atol = tolerance(xq, xb, metric)
    for radius in radii:
        lf, Df, If = f.range_search(xq, radius)
        ln, Dn, In = n.range_search(xq, radius)
        assert ln.shape == (nq + 1,)
        assert ln[0] == 0 and (np.diff(ln.astype(np.int64)) >= 0).all()
        assert Dn.dtype == np.float32 and In.dtype == np.int64
        assert Dn.shape == In.shape == (int(ln[-1]),)
        got = range_to_dicts(ln, Dn, In)
        assert_range_equiv(got, range_to_dicts(lf, Df, If), atol, radius)
        assert_range_equiv(got, range_ref(xq, xb, radius, metric), atol, radius)


def test_range_search_lims_dtype_matches_faiss():
    xb, xq = data(41, 20, 3)
    f, n = both(lambda lib: build(lib, "flat", D_, METRIC_L2, xb))
    lf, _, _ = f.range_search(xq, 20.0)
    ln, _, _ = n.range_search(xq, 20.0)
    assert ln.dtype == lf.dtype


@pytest.mark.parametrize("kind", ["idmap", "idmap2"])
def test_range_search_idmap(kind):
    xb, xq = data(42, 50, 6)
    ids = np.arange(50, dtype=np.int64) * 11 + 1
    f, n = both(lambda lib: build(lib, kind, D_, METRIC_L2, xb, ids))
    radius = 22.0
    got = range_to_dicts(*n.range_search(xq, radius))
    atol = tolerance(xq, xb, METRIC_L2)
    assert_range_equiv(got, range_to_dicts(*f.range_search(xq, radius)), atol, radius)
    assert_range_equiv(got, range_ref(xq, xb, radius, METRIC_L2, ids=ids), atol, radius)


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_range_search_empty_index(metric):
    _, xq = data(43, 0, 3)
    n = flat(nearly, D_, metric)
    lims, D, I = n.range_search(xq, 1.0)
    assert list(lims) == [0, 0, 0, 0]
    assert D.shape == I.shape == (0,)


# ---------------------------------------------------------------- reconstruct


def test_reconstruct_and_reconstruct_n():
    xb, _ = data(50, 33, 0)
    f, n = both(lambda lib: build(lib, "flat", D_, METRIC_L2, xb))
    for key in (0, 17, 32):
        r = n.reconstruct(key)
        assert r.dtype == np.float32 and r.shape == (D_,)
        np.testing.assert_array_equal(r, xb[key])
        np.testing.assert_array_equal(r, f.reconstruct(key))
    for i0, ni in [(0, 33), (5, 10), (32, 1), (7, 0)]:
        r = n.reconstruct_n(i0, ni)
        assert r.dtype == np.float32 and r.shape == (ni, D_)
        np.testing.assert_array_equal(r, xb[i0:i0 + ni])
        np.testing.assert_array_equal(r, f.reconstruct_n(i0, ni))


def test_reconstruct_n_default_arguments():
    xb, _ = data(52, 12, 0)
    f, n = both(lambda lib: build(lib, "flat", D_, METRIC_L2, xb))
    for args in [(), (0,), (4,), (12,), (3, -1), (0, 12)]:
        np.testing.assert_array_equal(n.reconstruct_n(*args), f.reconstruct_n(*args), err_msg=str(args))


def test_reconstruct_out_of_range():
    xb, _ = data(51, 10, 0)
    f, n = both(lambda lib: build(lib, "flat", D_, METRIC_L2, xb))
    for key in (10, 1000, -1):
        with pytest.raises(RuntimeError):
            n.reconstruct(key)
    with pytest.raises(RuntimeError):
        f.reconstruct(10)


# ---------------------------------------------------------------- merge_from / reset


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_merge_from_flat(metric):
    xb, xq = data(60, 50, 7)
    out = {}
    for lib in (faiss, nearly):
        a = build(lib, "flat", D_, metric, xb[:20])
        b = build(lib, "flat", D_, metric, xb[20:])
        a.merge_from(b)
        out[lib] = (a, b)
    (fa, fb), (na, nb) = out[faiss], out[nearly]
    assert na.ntotal == fa.ntotal == 50
    assert nb.ntotal == fb.ntotal == 0
    np.testing.assert_array_equal(na.reconstruct_n(0, 50), xb)
    Df, If = fa.search(xq, 12)
    Dn, In = na.search(xq, 12)
    assert_knn_equiv(Dn, In, Df, If, atol=tolerance(xq, xb, metric))


def test_merge_from_flat_with_add_id_raises():
    xb, _ = data(61, 10, 0)
    for lib in (faiss, nearly):
        a = build(lib, "flat", D_, METRIC_L2, xb[:5])
        b = build(lib, "flat", D_, METRIC_L2, xb[5:])
        with pytest.raises(RuntimeError):
            a.merge_from(b, 5)
        assert a.ntotal == 5


@pytest.mark.parametrize("kind", ["idmap", "idmap2"])
@pytest.mark.parametrize("add_id", [0, 1000])
def test_merge_from_idmap(kind, add_id):
    xb, xq = data(62, 40, 6)
    ids_a = np.arange(15, dtype=np.int64) + 100
    ids_b = np.arange(25, dtype=np.int64) + 200
    out = {}
    for lib in (faiss, nearly):
        a = build(lib, kind, D_, METRIC_L2, xb[:15], ids_a)
        b = build(lib, kind, D_, METRIC_L2, xb[15:], ids_b)
        if add_id:
            a.merge_from(b, add_id)
        else:
            a.merge_from(b)
        out[lib] = (a, b)
    (fa, fb), (na, nb) = out[faiss], out[nearly]
    assert na.ntotal == fa.ntotal == 40
    assert nb.ntotal == fb.ntotal == 0
    Df, If = fa.search(xq, 40)
    Dn, In = na.search(xq, 40)
    assert_knn_equiv(Dn, In, Df, If, atol=tolerance(xq, xb, METRIC_L2))
    all_ids = np.concatenate([ids_a, ids_b + add_id])
    assert_knn_valid(Dn, In, xq, xb, 40, METRIC_L2, ids=all_ids)
    if kind == "idmap2":
        np.testing.assert_array_equal(na.reconstruct(int(ids_b[3] + add_id)), xb[18])


def test_merge_from_incompatible_raises():
    for lib in (faiss, nearly):
        a = lib.IndexFlatL2(D_)
        for other in (lib.IndexFlatL2(D_ + 1), lib.IndexFlatIP(D_)):
            with pytest.raises((RuntimeError, ValueError)):
                a.merge_from(other)
        m = lib.IndexIDMap(lib.IndexFlatL2(D_))
        with pytest.raises((RuntimeError, ValueError)):
            m.merge_from(lib.IndexFlatL2(D_))


@pytest.mark.parametrize("kind", ["flat", "idmap", "idmap2"])
def test_reset(kind):
    xb, xq = data(63, 30, 4)
    ids = np.arange(30, dtype=np.int64) + 50
    f, n = both(lambda lib: build(lib, kind, D_, METRIC_L2, xb, ids))
    for idx in (f, n):
        idx.reset()
        assert idx.ntotal == 0
    Dn, In = n.search(xq, 3)
    assert (In == -1).all() and (Dn == np.float32(FLT_MAX)).all()
    for idx in (f, n):
        if kind == "flat":
            idx.add(xb[:10])
        else:
            idx.add_with_ids(xb[:10], ids[:10] + 1000)
    Df, If = f.search(xq, 12)
    Dn, In = n.search(xq, 12)
    assert_knn_equiv(Dn, In, Df, If, atol=tolerance(xq, xb, METRIC_L2))
    if kind == "idmap2":
        with pytest.raises(RuntimeError):
            n.reconstruct(int(ids[0]))  # old id is gone after reset


# ---------------------------------------------------------------- index_factory


@pytest.mark.parametrize("desc", ["Flat", "IDMap,Flat", "IDMap2,Flat", "L2norm,Flat"])
@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_index_factory(desc, metric):
    xb, xq = data(70, 50, 8)
    ids = np.arange(50, dtype=np.int64) * 3 + 1
    f = faiss.index_factory(D_, desc, metric)
    n = nearly.index_factory(D_, desc, metric)
    fname = type(f).__name__
    assert isinstance(n, getattr(nearly, fname)), (type(n), fname)
    for attr in ("d", "ntotal", "is_trained", "metric_type"):
        assert getattr(n, attr) == getattr(f, attr), attr
    if desc.startswith("IDMap"):
        f.add_with_ids(xb, ids)
        n.add_with_ids(xb, ids)
        with pytest.raises(RuntimeError):
            n.add(xb)
    else:
        f.add(xb)
        n.add(xb)
        with pytest.raises(RuntimeError):
            n.add_with_ids(xb, ids)
    assert n.ntotal == 50
    Df, If = f.search(xq, 10)
    Dn, In = n.search(xq, 10)
    if desc == "L2norm,Flat":
        xbn = xb / np.linalg.norm(xb, axis=1, keepdims=True)
        xqn = xq / np.linalg.norm(xq, axis=1, keepdims=True)
        assert_knn_valid(Dn, In, xqn, xbn, 10, metric)
        atol = tolerance(xqn, xbn, metric)
    else:
        assert_knn_valid(Dn, In, xq, xb, 10, metric, ids=ids if desc.startswith("IDMap") else None)
        atol = tolerance(xq, xb, metric)
    assert_knn_equiv(Dn, In, Df, If, atol=atol)


def test_index_factory_default_metric_is_l2():
    n = nearly.index_factory(D_, "Flat")
    assert n.metric_type == nearly.METRIC_L2


def test_l2norm_does_not_modify_caller_arrays():
    xb, xq = data(71, 20, 3)
    xb0, xq0 = xb.copy(), xq.copy()
    n = nearly.index_factory(D_, "L2norm,Flat", nearly.METRIC_INNER_PRODUCT)
    n.add(xb)
    n.search(xq, 5)
    np.testing.assert_array_equal(xb, xb0)
    np.testing.assert_array_equal(xq, xq0)


def test_index_factory_unknown_string_raises():
    for lib in (faiss, nearly):
        with pytest.raises((RuntimeError, ValueError)):
            lib.index_factory(D_, "NoSuchIndex,Flat")


# ---------------------------------------------------------------- knn / pairwise / normalize


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
@pytest.mark.parametrize("nq, nb, k", [(1, 30, 5), (25, 40, 40), (7, 5, 9), (300, 64, 3)])
def test_knn_function(metric, nq, nb, k):
    xb, xq = data(80 + nq, nb, nq)
    Df, If = faiss.knn(xq, xb, k, metric=metric)
    Dn, In = nearly.knn(xq, xb, k, metric=metric)
    atol = tolerance(xq, xb, metric)
    assert_knn_equiv(Dn, In, Df, If, atol=atol)
    assert_knn_valid(Dn, In, xq, xb, k, metric)


def test_knn_default_metric_is_l2():
    xb, xq = data(81, 30, 4)
    Dn, In = nearly.knn(xq, xb, 3)
    assert_knn_valid(Dn, In, xq, xb, 3, METRIC_L2)


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
@pytest.mark.parametrize("nq, nb", [(1, 1), (6, 9), (40, 33), (0, 5)])
def test_pairwise_distances(metric, nq, nb):
    xb, xq = data(82 + nb, nb, nq)
    Pf = faiss.pairwise_distances(xq, xb, metric=metric)
    Pn = nearly.pairwise_distances(xq, xb, metric=metric)
    assert Pn.dtype == np.float32 and Pn.shape == (nq, nb) == Pf.shape
    atol = tolerance(xq, xb, metric)
    np.testing.assert_allclose(Pn, Pf, rtol=0, atol=atol)
    from _testutil import distances64
    if nq and nb:
        np.testing.assert_allclose(Pn, distances64(xq, xb, metric), rtol=0, atol=atol)


def test_pairwise_distances_default_metric_is_l2():
    xb, xq = data(83, 10, 3)
    from _testutil import distances64
    np.testing.assert_allclose(nearly.pairwise_distances(xq, xb), distances64(xq, xb, METRIC_L2),
                               rtol=0, atol=tolerance(xq, xb, METRIC_L2))


def test_normalize_L2_in_place():
    rng = np.random.default_rng(90)
    x = randn(rng, 50, D_) * 7
    x[3] = 0  # a zero row stays zero
    xf, xn = x.copy(), x.copy()
    faiss.normalize_L2(xf)
    ret = nearly.normalize_L2(xn)
    assert ret is None
    np.testing.assert_allclose(xn, xf, rtol=1e-6, atol=1e-6)
    norms = np.linalg.norm(xn.astype(np.float64), axis=1)
    np.testing.assert_allclose(np.delete(norms, 3), 1.0, rtol=1e-5)
    assert (xn[3] == 0).all()
    np.testing.assert_allclose(xn, x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-30),
                               rtol=1e-5, atol=1e-6)


def test_normalize_L2_rejects_float64_and_noncontiguous():
    x64 = np.ones((3, 4), dtype=np.float64)
    with pytest.raises(TypeError):
        nearly.normalize_L2(x64)
    assert (x64 == 1).all()
    nc = np.ones((3, 8), dtype=np.float32)[:, ::2]
    with pytest.raises((TypeError, ValueError)):
        nearly.normalize_L2(nc)


# ---------------------------------------------------------------- bad-argument exception kinds


BAD_CALLS = {
    "add-wrong-d": lambda lib, idx: idx.add(np.zeros((3, D_ + 1), np.float32)),
    "search-wrong-d": lambda lib, idx: idx.search(np.zeros((3, D_ - 1), np.float32), 2),
    "search-1d": lambda lib, idx: idx.search(np.zeros(D_, np.float32), 2),
    "add-1d": lambda lib, idx: idx.add(np.zeros(D_, np.float32)),
    "search-k0": lambda lib, idx: idx.search(np.zeros((3, D_), np.float32), 0),
    "search-kneg": lambda lib, idx: idx.search(np.zeros((3, D_), np.float32), -3),
    "idmap-ids-length": lambda lib, idx: lib.IndexIDMap(lib.IndexFlatL2(D_)).add_with_ids(
        np.zeros((3, D_), np.float32), np.arange(4)),
    "knn-wrong-d": lambda lib, idx: lib.knn(np.zeros((2, D_), np.float32),
                                            np.zeros((5, D_ + 2), np.float32), 1),
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_bad_argument_exception_kind(case):
    excs = {}
    for lib in (faiss, nearly):
        idx = lib.IndexFlatL2(D_)
        idx.add(np.ones((4, D_), np.float32))
        with pytest.raises(Exception) as ei:
            BAD_CALLS[case](lib, idx)
        excs[lib] = ei.value
        assert idx.ntotal == 4
    fe, ne = excs[faiss], excs[nearly]
    assert isinstance(ne, nearly.InvalidArgumentError), repr(ne)
    assert isinstance(ne, (ValueError, AssertionError))
    if isinstance(fe, (ValueError, AssertionError)):
        assert isinstance(ne, type(fe)), (repr(fe), repr(ne))


# ---------------------------------------------------------------- lifetimes and odd-but-valid inputs


def test_selector_temporaries_stay_alive():
    xb, xq = data(91, 50, 3)
    n = build(nearly, "flat", D_, METRIC_L2, xb)
    params = nearly.SearchParameters(
        sel=nearly.IDSelectorNot(nearly.IDSelectorBatch(np.arange(0, 50, 2, dtype=np.int64))))
    gc.collect()
    Dn, In = n.search(xq, 5, params=params)
    assert (In % 2 == 1).all()
    assert_knn_valid(Dn, In, xq, xb[1::2], 5, METRIC_L2, ids=np.arange(1, 50, 2))


def test_selector_copies_its_ids():
    xb, xq = data(92, 50, 2)
    n = build(nearly, "flat", D_, METRIC_L2, xb)
    ids = np.arange(10, dtype=np.int64)
    for cls in (nearly.IDSelectorBatch, nearly.IDSelectorArray):
        sel = cls(ids.copy())
        keep = ids.copy()
        sel2 = cls(keep)
        keep[:] = 40  # mutating the caller's array afterwards must not change the selector
        for s in (sel, sel2):
            _, In = n.search(xq, 10, params=nearly.SearchParameters(sel=s))
            assert set(In.ravel().tolist()) <= set(range(10))


def test_remove_ids_accepts_int32_like_faiss():
    xb, xq = data(93, 30, 3)
    f, n = both(lambda lib: build(lib, "flat", D_, METRIC_L2, xb))
    for idx in (f, n):
        assert idx.remove_ids(np.array([3, 4, 29], dtype=np.int32)) == 3
    Df, If = f.search(xq, 27)
    Dn, In = n.search(xq, 27)
    assert_knn_equiv(Dn, In, Df, If, atol=tolerance(xq, xb, METRIC_L2))


def test_non_native_byte_order_and_readonly_inputs():
    xb, xq = data(94, 40, 5)
    f, n = both(lambda lib: build(lib, "flat", D_, METRIC_IP, xb.astype(">f4")))
    ro = xq.copy()
    ro.setflags(write=False)
    Df, If = f.search(xq.astype(">f4"), 6)
    for q in (xq.astype(">f4"), ro):
        Dn, In = n.search(q, 6)
        assert_knn_equiv(Dn, In, Df, If, atol=tolerance(xq, xb, METRIC_IP))
    np.testing.assert_array_equal(n.reconstruct_n(0, 40), xb)


def test_numpy_integer_k_accepted():
    xb, xq = data(95, 20, 2)
    n = build(nearly, "flat", D_, METRIC_L2, xb)
    ref = n.search(xq, 4)
    for k in (np.int64(4), np.int32(4), np.uint8(4), np.array(4)):
        D, I = n.search(xq, k)
        np.testing.assert_array_equal(I, ref[1])
