"""Bad inputs raise the documented Python exceptions and never crash or corrupt the index.

- bad arguments (shape, d, k, ids length, NaN/inf): nearly.InvalidArgumentError,
  which is both ValueError and AssertionError
- unsupported operations: RuntimeError with faiss's wording
- out-of-range keys: nearly.IndexOutOfRangeError (RuntimeError and IndexError)
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nearly

D = 8
SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int32, np.int64, np.uint8]


def make_index(kind="flat", n=10, metric=None):
    rng = np.random.default_rng(0)
    xb = rng.standard_normal((n, D)).astype(np.float32)
    metric = nearly.METRIC_L2 if metric is None else metric
    if kind == "flat":
        index = nearly.IndexFlat(D, metric)
        index.add(xb)
    else:
        cls = nearly.IndexIDMap if kind == "idmap" else nearly.IndexIDMap2
        index = cls(nearly.IndexFlat(D, metric))
        index.add_with_ids(xb, np.arange(n, dtype=np.int64) * 2 + 100)
    return index, xb


def assert_unchanged(index, n, xb_probe):
    """The index still holds n vectors and still answers searches correctly."""
    assert index.ntotal == n
    Dd, I = index.search(xb_probe, 1)
    assert Dd.shape == (len(xb_probe), 1)
    assert (I[:, 0] >= 0).all()
    np.testing.assert_allclose(Dd[:, 0], 0, atol=1e-4)


def test_exception_hierarchy():
    assert issubclass(nearly.InvalidArgumentError, ValueError)
    assert issubclass(nearly.InvalidArgumentError, AssertionError)
    assert issubclass(nearly.InvalidArgumentError, RuntimeError)  # faiss's C++ checks throw RuntimeError
    assert issubclass(nearly.IndexOutOfRangeError, RuntimeError)
    assert issubclass(nearly.IndexOutOfRangeError, IndexError)
    assert issubclass(nearly.IndexFileError, RuntimeError)


# ---------------------------------------------------------------- shapes and dtypes


@st.composite
def bad_shapes(draw):
    ndim = draw(st.sampled_from([0, 1, 2, 3]))
    if ndim == 2:
        n = draw(st.integers(0, 6))
        d = draw(st.integers(0, 3 * D).filter(lambda v: v != D))
        return (n, d)
    return tuple(draw(st.lists(st.integers(0, 2 * D), min_size=ndim, max_size=ndim)))


@st.composite
def good_shaped(draw):
    n = draw(st.integers(0, 6))
    dtype = draw(st.sampled_from(DTYPES))
    order = draw(st.sampled_from(["C", "F", "strided"]))
    return n, dtype, order


def _array(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * 3).astype(dtype)


@SETTINGS
@given(shape=bad_shapes(), dtype=st.sampled_from(DTYPES), kind=st.sampled_from(["flat", "idmap", "idmap2"]))
def test_bad_shape_add(shape, dtype, kind):
    index, xb = make_index(kind)
    x = _array(shape, dtype)
    with pytest.raises(nearly.InvalidArgumentError):
        if kind == "flat":
            index.add(x)
        else:
            n = shape[0] if len(shape) else 1
            index.add_with_ids(x, np.arange(n, dtype=np.int64) + 10_000)
    assert_unchanged(index, 10, xb[:2])


@SETTINGS
@given(shape=bad_shapes(), dtype=st.sampled_from(DTYPES), kind=st.sampled_from(["flat", "idmap"]),
       k=st.integers(1, 20))
def test_bad_shape_search(shape, dtype, kind, k):
    index, xb = make_index(kind)
    x = _array(shape, dtype)
    with pytest.raises(nearly.InvalidArgumentError):
        index.search(x, k)
    with pytest.raises(nearly.InvalidArgumentError):
        index.range_search(x, 1.0)
    assert_unchanged(index, 10, xb[:2])


@SETTINGS
@given(spec=good_shaped(), k=st.integers(1, 15))
def test_good_shapes_any_numeric_dtype_accepted(spec, k):
    n, dtype, order = spec
    index, xb = make_index("flat")
    x = _array((n, D), dtype, seed=n)
    if order == "F":
        x = np.asfortranarray(x)
    elif order == "strided":
        wide = np.zeros((n, 2 * D), dtype=dtype)
        wide[:, ::2] = x
        x = wide[:, ::2]
    Dd, I = index.search(x, k)
    assert Dd.shape == I.shape == (n, k)
    assert Dd.dtype == np.float32 and I.dtype == np.int64
    index.add(x)
    assert index.ntotal == 10 + n
    if n:
        np.testing.assert_array_equal(index.reconstruct_n(10, n), np.asarray(x, dtype=np.float32))


def test_empty_array_without_shape_raises():
    index, xb = make_index("flat")
    for x in (np.array([]), np.zeros((0,), np.float32), [], np.float32(1.0)):
        with pytest.raises(nearly.InvalidArgumentError):
            index.add(x)
        with pytest.raises(nearly.InvalidArgumentError):
            index.search(x, 1)
    assert_unchanged(index, 10, xb[:2])


def test_zero_rows_is_a_noop():
    index, xb = make_index("flat")
    index.add(np.zeros((0, D), np.float32))
    assert index.ntotal == 10
    Dd, I = index.search(np.zeros((0, D), np.float32), 3)
    assert Dd.shape == I.shape == (0, 3)
    lims, Dr, Ir = index.range_search(np.zeros((0, D), np.float32), 1.0)
    assert lims.shape == (1,) and lims[0] == 0 and Dr.shape == Ir.shape == (0,)


@pytest.mark.parametrize("x", [
    np.array([["a"] * D, ["b"] * D]),
    np.array([[object()] * D]),
    "not an array",
    None,
], ids=["str-array", "object-array", "str", "None"])
def test_non_numeric_input_raises(x):
    index, xb = make_index("flat")
    with pytest.raises((TypeError, ValueError)):
        index.add(x)
    with pytest.raises((TypeError, ValueError)):
        index.search(x, 2)
    assert_unchanged(index, 10, xb[:2])


# ---------------------------------------------------------------- NaN / inf


@SETTINGS
@given(n=st.integers(1, 6), pos=st.integers(0, 10 ** 6), bad=st.sampled_from([np.nan, np.inf, -np.inf]),
       kind=st.sampled_from(["flat", "idmap", "idmap2"]), dtype=st.sampled_from([np.float32, np.float64]))
def test_nan_inf_add_raises(n, pos, bad, kind, dtype):
    index, xb = make_index(kind)
    x = _array((n, D), dtype)
    x.flat[pos % x.size] = bad
    with pytest.raises(nearly.InvalidArgumentError):
        if kind == "flat":
            index.add(x)
        else:
            index.add_with_ids(x, np.arange(n, dtype=np.int64) + 50_000)
    assert_unchanged(index, 10, xb[:3])


@SETTINGS
@given(n=st.integers(1, 40), pos=st.integers(0, 10 ** 6), bad=st.sampled_from([np.nan, np.inf, -np.inf]),
       metric=st.sampled_from([0, 1]), k=st.integers(1, 12))
def test_nan_inf_search_raises(n, pos, bad, metric, k):
    index, xb = make_index("flat", metric=metric)
    x = _array((n, D), np.float32)
    x.flat[pos % x.size] = bad
    with pytest.raises(nearly.InvalidArgumentError):
        index.search(x, k)
    with pytest.raises(nearly.InvalidArgumentError):
        index.range_search(x, 1.0)
    with pytest.raises(nearly.InvalidArgumentError):
        nearly.knn(x, xb, 1)


def test_float64_overflowing_float32_raises():
    index, xb = make_index("flat")
    x = np.ones((2, D), np.float64)
    x[1, 3] = 1e39  # becomes inf in float32
    with pytest.raises(nearly.InvalidArgumentError), np.errstate(over="ignore"):
        index.add(x)
    assert_unchanged(index, 10, xb[:2])


# ---------------------------------------------------------------- k


@SETTINGS
@given(k=st.integers(-(2 ** 40), 0), nq=st.integers(0, 4))
def test_k_not_positive_raises(k, nq):
    index, xb = make_index("flat")
    with pytest.raises(nearly.InvalidArgumentError):
        index.search(xb[:nq], k)
    with pytest.raises(nearly.InvalidArgumentError):
        nearly.knn(xb[:max(nq, 1)], xb, k)


@pytest.mark.parametrize("k", [2.0, 2.5, "3", None, [2], np.float32(2.0)],
                         ids=["float-int", "float", "str", "None", "list", "np-float"])
def test_k_not_an_integer_raises(k):
    index, xb = make_index("flat")
    with pytest.raises((TypeError, ValueError)):
        index.search(xb[:2], k)


@pytest.mark.parametrize("k", [2 ** 62, 2 ** 63 - 1])
def test_k_impossibly_large_raises(k):
    index, xb = make_index("flat")
    with pytest.raises((ValueError, MemoryError, OverflowError, RuntimeError)):
        index.search(xb[:1], k)


@pytest.mark.parametrize("k", [2 ** 64, -(2 ** 64)])
def test_k_overflowing_int64_raises(k):
    index, xb = make_index("flat")
    with pytest.raises((TypeError, ValueError, OverflowError)):
        index.search(xb[:1], k)


# ---------------------------------------------------------------- ids


@SETTINGS
@given(n=st.integers(0, 8), m=st.integers(0, 12), kind=st.sampled_from(["idmap", "idmap2"]))
def test_ids_wrong_length_raises(n, m, kind):
    if n == m:
        m += 1
    index, xb = make_index(kind)
    x = _array((n, D), np.float32)
    with pytest.raises(nearly.InvalidArgumentError):
        index.add_with_ids(x, np.arange(m, dtype=np.int64) + 10_000)
    assert_unchanged(index, 10, xb[:2])


@pytest.mark.parametrize("ids", [
    np.arange(3, dtype=np.int64).reshape(3, 1),
    np.arange(6, dtype=np.int64).reshape(3, 2),
    np.int64(3),
    "abc",
    None,
], ids=["2d-col", "2d", "scalar", "str", "None"])
def test_ids_bad_shape_or_type_raises(ids):
    index, xb = make_index("idmap")
    with pytest.raises((TypeError, ValueError)):
        index.add_with_ids(xb[:3], ids)
    assert_unchanged(index, 10, xb[:2])


@pytest.mark.parametrize("arg", [None, "abc", 3.5, {"a": 1}, object(),
                                 np.zeros((2, 2), np.int64)],
                         ids=["None", "str", "float", "dict", "object", "2d"])
@pytest.mark.parametrize("kind", ["flat", "idmap", "idmap2"])
def test_remove_ids_wrong_type_raises(arg, kind):
    index, xb = make_index(kind)
    with pytest.raises((TypeError, ValueError)):
        index.remove_ids(arg)
    assert_unchanged(index, 10, xb[:2])


@pytest.mark.parametrize("params", ["abc", 3, object()], ids=["str", "int", "object"])
def test_search_params_wrong_type_raises(params):
    index, xb = make_index("flat")
    with pytest.raises((TypeError, ValueError)):
        index.search(xb[:2], 2, params=params)


@pytest.mark.parametrize("D_out, I_out", [
    (np.empty((2, 4), np.float32), np.empty((2, 3), np.int64)),
    (np.empty((2, 3), np.float64), np.empty((2, 3), np.int64)),
    (np.empty((2, 3), np.float32), np.empty((2, 3), np.int32)),
    (np.empty((3, 3), np.float32), np.empty((3, 3), np.int64)),
], ids=["D-shape", "D-dtype", "I-dtype", "both-rows"])
def test_search_bad_output_arrays_raise(D_out, I_out):
    index, xb = make_index("flat")
    with pytest.raises((ValueError, TypeError, AssertionError)):
        index.search(xb[:2], 3, D=D_out, I=I_out)


# ---------------------------------------------------------------- unsupported operations


def test_flat_add_with_ids_not_implemented():
    index, xb = make_index("flat")
    with pytest.raises(RuntimeError, match="add_with_ids not implemented for this type of index"):
        index.add_with_ids(xb, np.arange(10, dtype=np.int64))
    assert index.ntotal == 10


@pytest.mark.parametrize("kind", ["idmap", "idmap2"])
def test_idmap_add_without_ids_raises(kind):
    index, xb = make_index(kind)
    with pytest.raises(RuntimeError):
        index.add(xb)
    assert index.ntotal == 10


def test_idmap_reconstruct_not_implemented():
    index, xb = make_index("idmap")
    with pytest.raises(RuntimeError, match="not implemented for this type of index"):
        index.reconstruct(100)
    with pytest.raises(RuntimeError, match="not implemented"):
        index.reconstruct_n(0, 2)


def test_flat_merge_with_add_id_raises():
    a, _ = make_index("flat")
    b, _ = make_index("flat")
    with pytest.raises((RuntimeError, ValueError)):  # faiss: RuntimeError (see compat test)
        a.merge_from(b, 3)
    assert a.ntotal == 10 and b.ntotal == 10


def test_merge_from_wrong_type_raises():
    a, _ = make_index("flat")
    for other in (None, "x", np.zeros((2, D), np.float32)):
        with pytest.raises((TypeError, ValueError, RuntimeError)):
            a.merge_from(other)
    assert a.ntotal == 10


def test_merge_from_self_does_not_crash():
    a, xb = make_index("flat")
    try:
        a.merge_from(a)
    except (RuntimeError, ValueError):
        pass
    assert a.ntotal in (10, 20)
    Dd, I = a.search(xb[:2], 1)
    np.testing.assert_allclose(Dd[:, 0], 0, atol=1e-4)


def test_negative_dimension_raises():
    with pytest.raises((ValueError, AssertionError, OverflowError, TypeError, RuntimeError)):
        nearly.IndexFlat(-1)


@pytest.mark.parametrize("metric", [5, 99, -1])
def test_unknown_metric_raises(metric):
    """Rejected at construction, or at the latest when the index is used; never a crash."""
    with pytest.raises((ValueError, RuntimeError, TypeError, OverflowError)):
        index = nearly.IndexFlat(D, metric)
        index.add(np.ones((3, D), np.float32))
        index.search(np.ones((2, D), np.float32), 2)


@pytest.mark.parametrize("sub", [None, "x", 3])
def test_idmap_bad_sub_index_raises(sub):
    for cls in (nearly.IndexIDMap, nearly.IndexIDMap2):
        with pytest.raises((TypeError, ValueError)):
            cls(sub)


# ---------------------------------------------------------------- out-of-range keys


@SETTINGS
@given(key=st.one_of(st.integers(10, 2 ** 62), st.integers(-(2 ** 62), -1)))
def test_reconstruct_out_of_range(key):
    index, xb = make_index("flat")
    with pytest.raises(nearly.IndexOutOfRangeError):
        index.reconstruct(key)
    with pytest.raises(RuntimeError):
        index.reconstruct(key)
    with pytest.raises(IndexError):
        index.reconstruct(key)


def test_reconstruct_on_empty_index():
    index = nearly.IndexFlatL2(D)
    with pytest.raises(nearly.IndexOutOfRangeError):
        index.reconstruct(0)


@SETTINGS
@given(i0=st.integers(-20, 20), ni=st.integers(-5, 20))
def test_reconstruct_n_range_checked(i0, ni):
    """faiss semantics: ni == -1 means "up to ntotal"; ni == 0 is always an empty
    result; any other range must lie inside [0, ntotal), else it raises."""
    index, xb = make_index("flat")
    if ni == -1 and 0 <= i0 <= 10:
        expected = xb[i0:]
    elif ni == 0:
        expected = xb[:0]
    elif i0 >= 0 and ni > 0 and i0 + ni <= 10:
        expected = xb[i0:i0 + ni]
    else:
        expected = None
    if expected is not None:
        r = index.reconstruct_n(i0, ni)
        assert r.shape == expected.shape and r.dtype == np.float32
        np.testing.assert_array_equal(r, expected)
    else:
        with pytest.raises((IndexError, ValueError)):
            index.reconstruct_n(i0, ni)


@SETTINGS
@given(key=st.integers(-(2 ** 63), 2 ** 63 - 1))
def test_idmap2_reconstruct_unknown_id(key):
    index, xb = make_index("idmap2")
    known = set(range(100, 120, 2))
    if key in known:
        np.testing.assert_array_equal(index.reconstruct(key), xb[(key - 100) // 2])
    else:
        with pytest.raises(RuntimeError):
            index.reconstruct(key)


# ---------------------------------------------------------------- free functions


@pytest.mark.parametrize("xq, xb", [
    (np.zeros((2, D), np.float32), np.zeros((3, D + 1), np.float32)),
    (np.zeros(D, np.float32), np.zeros((3, D), np.float32)),
    (np.zeros((2, D), np.float32), np.zeros(D, np.float32)),
    (np.zeros((2, 2, D), np.float32), np.zeros((3, D), np.float32)),
], ids=["d-mismatch", "xq-1d", "xb-1d", "xq-3d"])
def test_knn_and_pairwise_bad_shapes(xq, xb):
    with pytest.raises(nearly.InvalidArgumentError):
        nearly.knn(xq, xb, 1)
    with pytest.raises(nearly.InvalidArgumentError):
        nearly.pairwise_distances(xq, xb)


@pytest.mark.parametrize("x", [
    np.ones((2, D), np.float64),
    np.ones((2, D), np.int32),
    [[1.0] * D],
    np.ones((2, 2 * D), np.float32)[:, ::2],
], ids=["float64", "int32", "list", "non-contiguous"])
def test_normalize_L2_bad_input(x):
    before = np.array(x, copy=True)
    with pytest.raises(TypeError if not isinstance(x, np.ndarray) or x.dtype != np.float32
                       else (TypeError, ValueError)):
        nearly.normalize_L2(x)
    np.testing.assert_array_equal(np.asarray(x), before)


def test_index_factory_bad_strings():
    for desc in ("", "Flatt", "IDMap", "L2norm", "IDMap,IDMap,Flat", "Flat,Flat"):
        with pytest.raises((RuntimeError, ValueError)):
            nearly.index_factory(D, desc)
    with pytest.raises((RuntimeError, ValueError, TypeError, OverflowError, AssertionError)):
        nearly.index_factory(-3, "Flat")


# ---------------------------------------------------------------- read-only outputs, pool size


def test_normalize_L2_read_only_raises():
    x = np.full((2, D), 2.0, np.float32)
    x.setflags(write=False)
    with pytest.raises((TypeError, ValueError)):
        nearly.normalize_L2(x)
    assert (x == 2.0).all()


def test_search_into_read_only_output_raises():
    index, xb = make_index("flat")
    Dout = np.full((2, 3), 7.0, np.float32)
    Dout.setflags(write=False)
    Iout = np.zeros((2, 3), np.int64)
    with pytest.raises((TypeError, ValueError)):
        index.search(xb[:2], 3, D=Dout, I=Iout)
    assert (Dout == 7.0).all()


@pytest.mark.parametrize("n", [0, -1, -(2 ** 31)])
def test_set_num_threads_invalid(n, restore_threads):
    try:
        nearly.omp_set_num_threads(n)
    except (ValueError, OverflowError):
        pass
    assert nearly.omp_get_max_threads() >= 1
    index, xb = make_index("flat")
    Dd, I = index.search(np.repeat(xb, 30, axis=0), 1)
    np.testing.assert_allclose(Dd[:, 0], 0, atol=1e-4)


def test_bad_input_of_this_sessions_calls():
    """add_preassigned, copy_subset_to, binary range_search, NSG build,
    Kmeans weights and the IO objects refuse bad input with clear errors."""
    rng = np.random.default_rng(23)
    x = rng.standard_normal((500, 8)).astype("float32")
    ivf = nearly.index_factory(8, "IVF4,Flat")
    ivf.train(x)
    bad = x[:3].copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ivf.add_preassigned(bad, np.array([0, 1, 2]))
    with pytest.raises(ValueError):
        ivf.add_preassigned(x[:3, :4], np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="outside"):
        ivf.add_preassigned(x[:1], np.array([-2]))
    with pytest.raises(ValueError):
        ivf.copy_subset_to(ivf, 0, 0, 10)
    b = nearly.IndexBinaryFlat(64)
    b.add(rng.integers(0, 256, (10, 8), dtype=np.uint8))
    with pytest.raises(ValueError):
        b.range_search(rng.integers(0, 256, (2, 4), dtype=np.uint8), 10)
    lims, D, I = b.range_search(rng.integers(0, 256, (2, 8), dtype=np.uint8), -5)
    assert lims.tolist() == [0, 0, 0]
    nsg = nearly.IndexNSGFlat(8, 16)
    with pytest.raises(ValueError):
        nsg.build(x, np.zeros((500, 0), dtype="int64"))
    with pytest.raises(ValueError):
        nsg.build(x, np.zeros(500, dtype="int64"))
    km = nearly.Kmeans(8, 4)
    with pytest.raises(ValueError):
        km.train(x, weights=np.ones((500, 2), "float32"))
    with pytest.raises(nearly.IndexFileError):
        nearly.read_index(nearly.PyCallbackIOReader(lambda n: b"NOTANIDX" * 4))
    with pytest.raises(TypeError):
        nearly.copy_array_to_vector(x.ravel(), 5)
    with pytest.raises(AssertionError):
        nearly.copy_array_to_vector(x, nearly.Float32Vector())
