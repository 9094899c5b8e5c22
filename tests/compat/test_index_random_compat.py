"""IndexRandom: faiss's answers value for value (ids, distances and
reconstructions from the same seed), deterministic per query, and the usual
refusals."""
import numpy as np
import pytest

import nearly

faiss = pytest.importorskip("faiss")


@pytest.mark.parametrize("metric", [nearly.METRIC_L2, nearly.METRIC_INNER_PRODUCT], ids=["L2", "IP"])
@pytest.mark.parametrize("ntotal,k", [(10**9, 10), (12, 12), (1000, 50)])
def test_same_as_faiss(metric, ntotal, k):
    xq = np.random.default_rng(ntotal).standard_normal((40, 24)).astype(np.float32)
    ours, theirs = nearly.IndexRandom(24, ntotal, 99, metric), faiss.IndexRandom(24, ntotal, 99, metric)
    D, I = ours.search(xq, k)
    Df, If = theirs.search(xq, k)
    np.testing.assert_array_equal(I, If)
    np.testing.assert_array_equal(D, Df)
    assert all(len(set(row)) == k for row in I) and ((I >= 0) & (I < ntotal)).all()
    steps = np.diff(D, axis=1)
    assert (steps >= 0).all() if metric == nearly.METRIC_L2 else (steps <= 0).all()
    for key in (0, ntotal - 1):
        np.testing.assert_array_equal(ours.reconstruct(key), theirs.reconstruct(key))


def test_deterministic_add_reset_and_persistence():
    index = nearly.IndexRandom(8)
    assert index.ntotal == 0 and index.is_trained
    x = np.random.default_rng(1).random((30, 8), dtype=np.float32)
    index.add(x)
    assert index.ntotal == 30
    D, I = index.search(x[:5], 4)
    np.testing.assert_array_equal(index.search(x[:5], 4)[1], I)  # the same query, the same answer
    back = nearly.deserialize_index(nearly.serialize_index(index))
    assert isinstance(back, nearly.IndexRandom) and back.ntotal == 30 and back.seed == 1234
    np.testing.assert_array_equal(back.search(x[:5], 4)[0], D)
    index.seed = 5
    assert not np.array_equal(index.search(x[:5], 4)[1], I)
    index.reset()
    assert index.ntotal == 0


def test_bad_input():
    index = nearly.IndexRandom(8, 20)
    x = np.zeros((2, 8), np.float32)
    for k in (0, -1, 21):
        with pytest.raises(ValueError):
            index.search(x, k)
    with pytest.raises(ValueError):
        index.search(np.zeros((2, 7), np.float32), 3)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        index.search(bad, 3)
    with pytest.raises(Exception, match="not supported"):
        index.search(x, 3, params=nearly.SearchParameters(sel=nearly.IDSelectorRange(0, 5)))
    for key in (-1, 20):
        with pytest.raises(Exception):
            index.reconstruct(key)
    with pytest.raises(ValueError):
        nearly.IndexRandom(8, -1)
    with pytest.raises(ValueError):
        nearly.IndexRandom(0)
    with pytest.raises(ValueError):
        nearly.IndexRandom(8).search(x, 1)  # empty
