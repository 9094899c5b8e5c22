"""faiss's partitioning utilities (CMax_ / CMin_ float and uint16
partition_fuzzy, simd_histogram_8 / _16) and AlignedTable, in faiss's
pointer style, against faiss-cpu and numpy references; bad input."""
import numpy as np
import pytest

import nearly

faiss = pytest.importorskip("faiss")

FUNCS = {("float", False): "CMax_float_partition_fuzzy", ("float", True): "CMin_float_partition_fuzzy",
         ("uint16", False): "CMax_uint16_partition_fuzzy", ("uint16", True): "CMin_uint16_partition_fuzzy"}


def make(kind, n, maxval, seed):
    rs = np.random.RandomState(seed)
    if kind == "float":
        vals = rs.rand(n).astype(np.float32) if maxval is None else rs.randint(maxval, size=n).astype(np.float32)
    else:
        vals = rs.randint(maxval or 65536, size=n).astype(np.uint16)
    return vals, (rs.permutation(n) + 12345).astype(np.int64)


def partition(lib, kind, keep_max, vals, ids, q_min, q_max):
    vals, ids = vals.copy(), ids.copy()
    fn = getattr(lib, FUNCS[(kind, keep_max)])
    q_out = np.array([-1], np.int64).view(np.uint64)
    if kind == "uint16":
        tab = lib.AlignedTableUint16()
        lib.copy_array_to_AlignedTable(vals, tab)
        thresh = fn(tab.get(), lib.swig_ptr(ids), len(vals), q_min, q_max, lib.swig_ptr(q_out))
        vals = lib.AlignedTable_to_array(tab)
    else:
        thresh = fn(lib.swig_ptr(vals), lib.swig_ptr(ids), len(vals), q_min, q_max, lib.swig_ptr(q_out))
    return int(q_out[0]), thresh, vals, ids


@pytest.mark.parametrize("kind", ["float", "uint16"])
@pytest.mark.parametrize("keep_max", [False, True])
@pytest.mark.parametrize("n,q,maxval", [(160, (80, 80), None), (160, (80, 80), 16), (165, (155, 155), 16),
                                        (32, (10, 15), 500), (160, (70, 80), 16), (1000, (1, 1), None),
                                        (5000, (100, 300), 40)])
def test_partition(kind, keep_max, n, q, maxval):
    for seed in range(20):
        vals, ids = make(kind, n, maxval, seed)
        value_of = dict(zip(ids.tolist(), vals.tolist()))
        qo, thresh, v, i = partition(nearly, kind, keep_max, vals, ids, *q)
        assert q[0] <= qo <= q[1]
        key = -vals.astype(np.float64) if keep_max else vals.astype(np.float64)
        best = np.sort(key)[:qo]
        # the first qo hold the qo best values, each with its own id, in input order
        got = -v[:qo].astype(np.float64) if keep_max else v[:qo].astype(np.float64)
        np.testing.assert_array_equal(np.sort(got), best)
        assert [value_of[x] for x in i[:qo].tolist()] == v[:qo].tolist()
        pos = {x: p for p, x in enumerate(ids.tolist())}
        assert all(np.diff([pos[x] for x in i[:qo].tolist()]) > 0)
        assert thresh == (v[:qo].min() if keep_max else v[:qo].max())
        # the fuzzy range is used to avoid splitting equal values when it can
        s = np.sort(key)
        if any(s[t - 1] != s[t] for t in range(q[0], q[1] + 1)):
            assert s[qo - 1] != s[qo]
        # faiss keeps the same multiset of values when its q is the same
        qf, _, vf, _ = partition(faiss, kind, keep_max, vals, ids, *q)
        if qf == qo:
            np.testing.assert_array_equal(np.sort(vf[:qf]), np.sort(v[:qo]))


def test_partition_edges():
    vals, ids = make("float", 50, None, 1)
    qo, thresh, v, i = partition(nearly, "float", False, vals, ids, 0, 10)
    assert qo == 0 and thresh == 0
    qo, thresh, v, i = partition(nearly, "float", False, vals, ids, 50, 60)  # everything kept, as faiss says q_max
    assert qo == 60 and thresh == np.finfo(np.float32).max
    np.testing.assert_array_equal(v, vals)
    assert partition(faiss, "float", False, vals, ids, 50, 60)[0] == 60


def test_partition_int32_ids():
    vals, ids = make("uint16", 300, 100, 2)
    ids32 = ids.astype(np.int32)
    tab = nearly.array_to_AlignedTable(vals)
    nearly.CMax_uint16_partition_fuzzy(tab.get(), nearly.swig_ptr(ids32), 300, 40, 40)
    np.testing.assert_array_equal(np.sort(tab.get()[:40]), np.sort(vals)[:40])


def test_partition_bad_input():
    vals, ids = make("float", 50, None, 1)
    f = nearly.CMax_float_partition_fuzzy
    with pytest.raises(ValueError, match="60 values needed"):
        f(vals, ids, 60, 5, 5)
    with pytest.raises(ValueError, match="q_min <= q_max"):
        f(vals, ids, 50, 10, 5)
    with pytest.raises(TypeError, match="float32"):
        f(vals.astype(np.float64), ids, 50, 5, 5)
    with pytest.raises(TypeError, match="int64"):
        f(vals, ids.astype(np.int32), 50, 5, 5)
    bad = vals.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        f(bad, ids, 50, 5, 5)
    with pytest.raises(TypeError, match="writeable"):
        ro = vals.copy()
        ro.flags.writeable = False
        f(ro, ids, 50, 5, 5)


@pytest.mark.parametrize("nbin", [8, 16])
@pytest.mark.parametrize("n,shift,vmin,span", [(123, -1, 0, None), (10000, 2, 500, (0, 100)),
                                               (1000, 12, 0, (10, 65500)), (10000, 0, 20, (10, 65500)),
                                               (10000, 5, 300, (100, 20000)), (10, 12, 65000, (65000, 65500)),
                                               (0, 3, 0, (0, 10))])
def test_histograms_like_faiss(nbin, n, shift, vmin, span):
    rs = np.random.RandomState(n + nbin)
    lo, hi = span or (0, nbin)
    tab = rs.randint(lo, hi, size=n).astype(np.uint16)
    out = []
    for lib in (nearly, faiss):
        t = lib.AlignedTableUint16()
        lib.copy_array_to_AlignedTable(tab, t)
        hist = np.full(nbin, 7, np.int32)  # overwritten, not added to
        getattr(lib, f"simd_histogram_{nbin}")(t.get(), n, vmin, shift, lib.swig_ptr(hist))
        out.append(hist)
    np.testing.assert_array_equal(out[0], out[1])
    if shift >= 0:
        x = tab.astype(np.int64)
        b = (x[x >= vmin] - vmin) >> shift
        np.testing.assert_array_equal(out[0], np.bincount(b[b < nbin], minlength=nbin)[:nbin])


def test_histogram_bad_input():
    tab = nearly.array_to_AlignedTable(np.array([1, 2, 9], np.uint16))
    with pytest.raises(ValueError, match="must be < 8"):  # faiss indexes past its histogram
        nearly.simd_histogram_8(tab.get(), 3, 0, -1, np.zeros(8, np.int32))
    with pytest.raises(ValueError, match="16 values needed"):
        nearly.simd_histogram_16(tab.get(), 3, 0, 2, np.zeros(8, np.int32))
    with pytest.raises(ValueError, match="4 values needed"):
        nearly.simd_histogram_16(tab.get(), 4, 0, 2, np.zeros(16, np.int32))


def test_aligned_table():
    t = nearly.AlignedTableUint8(5)
    assert t.size() == 5 and t.itemsize() == 1 and t.nbytes() == 5 and (t.get() == 0).all()
    t.get()[:] = [1, 2, 3, 4, 5]
    t.resize(7)
    np.testing.assert_array_equal(nearly.AlignedTable_to_array(t), [1, 2, 3, 4, 5, 0, 0])
    t.resize(2)
    np.testing.assert_array_equal(nearly.vector_to_array(t), [1, 2])
    f = nearly.array_to_AlignedTable(np.arange(4, dtype=np.float32))
    assert isinstance(f, nearly.AlignedTableFloat32) and f.size() == 4
    with pytest.raises(AssertionError):
        nearly.copy_array_to_AlignedTable(np.zeros(3, np.uint16), t)


def test_aligned_table_to_array_of_fast_scan_codes():
    """faiss's idiom AlignedTable_to_array(index.codes) on a fast-scan index:
    nearly's codes are an array; the result is a flat copy of their bytes."""
    rs = np.random.RandomState(0)
    x = rs.rand(300, 16).astype(np.float32)
    index = nearly.IndexPQFastScan(16, 8, 4)
    index.train(x)
    index.add(x)
    codes = nearly.AlignedTable_to_array(index.codes)
    np.testing.assert_array_equal(codes, np.asarray(index.codes).reshape(-1))
    codes[:] = 0
    assert np.asarray(index.codes).any()  # a copy
