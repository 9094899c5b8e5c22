"""select_k on the GPU against numpy: every configuration of the block
selection (k up to 2048) and the sort path beyond it."""
import numpy as np
import pytest

import nearly
from nearly.gpu import select_k


def reference(x, k, largest):
    key = -x if largest else x
    order = np.argsort(key, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(x, order, 1), order


@pytest.mark.parametrize("k", [1, 10, 32, 100, 256, 257, 1000, 1024, 2048, 3000])
@pytest.mark.parametrize("largest", [False, True])
def test_select_k_matches_numpy(res, cupy, rng, k, largest):
    rows, cols = 37, 5000
    x = rng.standard_normal((rows, cols)).astype(np.float32)
    D, I = select_k(res, cupy.asarray(x), k, largest=largest)
    D, I = cupy.asnumpy(D), cupy.asnumpy(I)
    Dr, Ir = reference(x, k, largest)
    np.testing.assert_array_equal(D, Dr)
    np.testing.assert_array_equal(I, Ir)  # distinct random floats: no ties


@pytest.mark.parametrize("cols", [1, 7, 255, 256, 257, 513])
def test_select_k_short_rows_are_padded(res, cupy, rng, cols):
    k = 300
    x = rng.standard_normal((5, cols)).astype(np.float32)
    D, I = select_k(res, cupy.asarray(x), k)
    D, I = cupy.asnumpy(D), cupy.asnumpy(I)
    m = min(k, cols)
    Dr, Ir = reference(x, m, False)
    np.testing.assert_array_equal(D[:, :m], Dr)
    np.testing.assert_array_equal(I[:, :m], Ir)
    assert (I[:, m:] == -1).all()
    assert (D[:, m:] == np.finfo(np.float32).max).all()


def test_select_k_ties_and_given_ids(res, cupy, rng):
    x = rng.integers(0, 5, size=(20, 3000)).astype(np.float32)  # many ties
    ids = rng.permutation(20 * 3000).reshape(20, 3000).astype(np.int64)
    D, I = select_k(res, cupy.asarray(x), 50, ids=cupy.asarray(ids))
    D, I = cupy.asnumpy(D), cupy.asnumpy(I)
    Dr, order = reference(x, 50, False)
    np.testing.assert_array_equal(D, Dr)
    # ties go to the smaller column, so the ids are those of the stable order
    np.testing.assert_array_equal(I, np.take_along_axis(ids, order, 1))


def test_select_k_nan_is_never_selected(res, cupy, rng):
    x = rng.standard_normal((4, 1000)).astype(np.float32)
    x[:, ::3] = np.nan
    D, I = select_k(res, cupy.asarray(x), 10)
    I = cupy.asnumpy(I)
    assert (I % 3 != 0).all()


def test_select_k_bad_input(res, cupy):
    x = cupy.zeros((3, 10), dtype=cupy.float32)
    with pytest.raises(ValueError):
        select_k(res, x, 0)
    with pytest.raises(ValueError):
        select_k(res, cupy.zeros((3, 10), dtype=cupy.float64), 2)
    with pytest.raises(ValueError):
        select_k(res, cupy.zeros((3, 10), dtype=cupy.float32)[:, ::2], 2)
