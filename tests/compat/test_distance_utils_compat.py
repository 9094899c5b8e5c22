"""faiss's vector helpers (utils/distances.h, utils/utils.h) in its pointer
style, against faiss-cpu on real embeddings and random data: fvec_L2sqr_ny /
fvec_inner_products_ny / fvec_L2sqr / fvec_inner_product (faiss's argument
lists beside nearly's array forms), norms, renorm, L1 / Linf, *_by_idx,
pairwise_indexed_*, fvec_madd(_and_argmin), ranklist_intersection_size,
MapLong2Long / MapInt64ToInt64; bad input."""
import numpy as np
import pytest

import nearly
from _hnswutil import real_data

faiss = pytest.importorskip("faiss")


@pytest.fixture(scope="module")
def vecs():
    base, queries = real_data()
    return np.ascontiguousarray(base[:500]), np.ascontiguousarray(queries[:20])


def both(fn):
    return fn(nearly), fn(faiss)


def test_ny_and_pair_functions(vecs):
    y, xs = vecs
    d, ny = y.shape[1], len(y)
    for name in ("fvec_L2sqr_ny", "fvec_inner_products_ny"):
        def go(lib):
            out = np.empty(ny, np.float32)
            getattr(lib, name)(lib.swig_ptr(out), lib.swig_ptr(xs[3]), lib.swig_ptr(y), d, ny)
            return out
        a, b = both(go)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(a, getattr(nearly, name)(xs[3], y), rtol=0, atol=0)  # nearly's array form
    for name in ("fvec_L2sqr", "fvec_inner_product", "fvec_L1", "fvec_Linf"):
        a, b = both(lambda lib: getattr(lib, name)(lib.swig_ptr(xs[0]), lib.swig_ptr(y[7]), d))
        assert a == pytest.approx(b, rel=1e-5)
    a, b = both(lambda lib: lib.fvec_norm_L2sqr(lib.swig_ptr(xs[1]), d))
    assert a == pytest.approx(b, rel=1e-5)


def test_norms_and_renorm(vecs):
    y, _ = vecs
    n, d = y.shape
    for name in ("fvec_norms_L2", "fvec_norms_L2sqr"):
        def go(lib):
            out = np.empty(n, np.float32)
            getattr(lib, name)(lib.swig_ptr(out), lib.swig_ptr(y), d, n)
            return out
        a, b = both(go)
        np.testing.assert_allclose(a, b, rtol=1e-5)

    def renorm(lib):
        x = (y * 3).astype(np.float32)
        x[5] = 0
        lib.fvec_renorm_L2(d, n, lib.swig_ptr(x))
        return x
    a, b = both(renorm)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert (a[5] == 0).all()


def test_by_idx_and_pairwise_indexed(vecs):
    y, xs = vecs
    d = y.shape[1]
    rs = np.random.RandomState(0)
    ids = rs.randint(len(y), size=(len(xs), 9)).astype(np.int64)
    ids[2, 4] = -1  # the worst value there, as faiss
    for name in ("fvec_L2sqr_by_idx", "fvec_inner_products_by_idx"):
        def go(lib):
            out = np.full((len(xs), 9), 7, np.float32)
            getattr(lib, name)(lib.swig_ptr(out), lib.swig_ptr(xs), lib.swig_ptr(y), lib.swig_ptr(ids), d, len(xs), 9)
            return out
        a, b = both(go)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
        assert a[2, 4] == (np.inf if "L2" in name else -np.inf)
    ix, iy = rs.randint(len(xs), size=40).astype(np.int64), rs.randint(len(y), size=40).astype(np.int64)
    for name in ("pairwise_indexed_L2sqr", "pairwise_indexed_inner_product"):
        def go(lib):
            out = np.empty(40, np.float32)
            getattr(lib, name)(d, 40, lib.swig_ptr(xs), lib.swig_ptr(ix), lib.swig_ptr(y), lib.swig_ptr(iy),
                               lib.swig_ptr(out))
            return out
        a, b = both(go)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_madd_and_intersection():
    rs = np.random.RandomState(1)
    for n in (1, 16, 25):
        a, b = rs.rand(n).astype(np.float32), rs.rand(n).astype(np.float32)
        outs = []
        for lib in (nearly, faiss):
            c = np.zeros(n, np.float32)
            i = lib.fvec_madd_and_argmin(n, lib.swig_ptr(a), -1.5, lib.swig_ptr(b), lib.swig_ptr(c))
            outs.append((i, c))
        assert outs[0][0] == outs[1][0]
        np.testing.assert_allclose(outs[0][1], outs[1][1], rtol=1e-6, atol=1e-6)  # faiss may fuse the multiply-add
    for v1, v2 in (([1, 2, 3], [2, 3, 4]), ([1, 1, 2], [1, 2]), ([-1, -2, 5], [-1, 5, 5]),
                   ([2**60, 2**62], [2**62, 2**63 - 1]), ([], [1])):
        a, b = np.array(v1, np.int64), np.array(v2, np.int64)
        got = [lib.ranklist_intersection_size(len(a), lib.swig_ptr(a), len(b), lib.swig_ptr(b))
               for lib in (nearly, faiss)]
        assert got[0] == got[1] == len({x for x in v1 if x >= 0} & {x for x in v2 if x >= 0})


def test_id_maps():
    rs = np.random.RandomState(2)
    keys = np.unique(rs.choice(2**40, size=5000)).astype(np.int64)
    rs.shuffle(keys)
    vals = rs.randint(2**40, size=keys.size).astype(np.int64)
    probe = np.concatenate([keys, keys[:100] + 2**41])
    m, mf = nearly.MapInt64ToInt64(16384), faiss.MapInt64ToInt64(16384)
    m.add(keys, vals)
    mf.add(keys, vals)
    np.testing.assert_array_equal(m.lookup(probe), mf.lookup(probe))
    m.add(keys[:10], vals[:10] + 1)  # a key added again takes its new value
    np.testing.assert_array_equal(m.lookup(keys[:10]), vals[:10] + 1)
    assert m.lookup(np.array([5], np.int64))[0] == -1 or 5 in keys
    ml = nearly.MapLong2Long()
    ml.add(keys, vals)
    assert ml.search(int(keys[3])) == vals[3] and ml.search(2**41 + 1) == -1
    np.testing.assert_array_equal(ml.search_multiple(keys), vals)
    assert nearly.MapLong2Long().search(1) == -1


def test_bad_input(vecs):
    y, xs = vecs
    sp = nearly.swig_ptr
    out = np.empty(10, np.float32)
    with pytest.raises(ValueError, match="needed"):  # faiss reads / writes past
        nearly.fvec_L2sqr_ny(sp(out), sp(xs[0]), sp(y), 384, 11)
    with pytest.raises(TypeError, match="float32"):
        nearly.fvec_L2sqr_ny(sp(out), sp(xs[0].astype(np.float64)), sp(y), 384, 10)
    with pytest.raises(TypeError, match="read-only"):
        ro = out.copy()
        ro.flags.writeable = False
        nearly.fvec_norms_L2(ro, y, 384, 10)
    bad = np.array([0, 600], np.int64)
    with pytest.raises(IndexError, match="outside"):
        nearly.pairwise_indexed_L2sqr(384, 2, sp(xs), sp(bad), sp(y), sp(bad), sp(np.empty(2, np.float32)))
    with pytest.raises(IndexError, match="past"):
        nearly.fvec_L2sqr_by_idx(np.empty((1, 2), np.float32), xs, y, bad, 384, 1, 2)
    with pytest.raises(ValueError, match="keys must be >= 0"):
        nearly.MapInt64ToInt64(8).add(np.array([-3]), np.array([1]))
