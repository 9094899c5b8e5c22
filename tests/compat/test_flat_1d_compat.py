"""IndexFlat1D against faiss-cpu (the same ids and |q - x| distances, exact
against numpy), and small parts of faiss's API around it: typed vectors'
swap, NormalizationTransform.norm, sync_l2norms / clear_l2norms."""
import numpy as np
import pytest

import nearly
from _hnswutil import real_data

faiss = pytest.importorskip("faiss")


@pytest.fixture(scope="module")
def norms():
    """A real 1-D quantity: the embeddings' first coordinate."""
    base, queries = real_data()
    return np.ascontiguousarray(base[:5000, :1]), np.ascontiguousarray(queries[:100, :1])


@pytest.mark.parametrize("k", [1, 10, 64])
def test_like_faiss_and_exact(norms, k):
    xb, xq = norms
    xq = np.vstack([xq, [[xb.min() - 1]], [[xb.max() + 1]]]).astype(np.float32)  # below and above all
    out = []
    for lib in (nearly, faiss):
        index = lib.IndexFlat1D()
        index.add(xb)
        out.append(index.search(xq, k))
    (D, I), (Df, If) = out
    np.testing.assert_allclose(D, Df, rtol=1e-6, atol=1e-7)
    ref = np.sort(np.abs(xq - xb[:, 0][None, :]), axis=1)[:, :k]
    np.testing.assert_allclose(D, ref, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.abs(xq - xb[I, 0]), D, rtol=1e-6, atol=1e-7)
    # ids equal up to the order of equal distances (the coordinate repeats:
    # duplicate texts): the same ids strictly inside the k-th distance
    for i in range(len(xq)):
        inner = D[i] < D[i, -1]
        assert set(I[i][inner]) == set(If[i][Df[i] < Df[i, -1]])


def test_few_vectors_and_updates():
    index, ref = nearly.IndexFlat1D(), faiss.IndexFlat1D()
    q = np.array([[0.3]], np.float32)
    for i, v in enumerate([0.5, 0.1, 0.9]):
        D, I = index.search(q, 5)
        Df, If = ref.search(q, 5)
        np.testing.assert_array_equal(I, If)
        assert (I == -1).sum() == 5 - i and np.isinf(D[I == -1]).all() and np.isinf(Df[If == -1]).all()
        index.add(np.array([[v]], np.float32))
        ref.add(np.array([[v]], np.float32))
    lazy = nearly.IndexFlat1D(continuous_update=False)
    lazy.add(np.array([[2.0], [1.0]], np.float32))
    with pytest.raises(RuntimeError, match="update_permutation"):
        lazy.search(q, 1)
    lazy.update_permutation()
    assert lazy.search(q, 2)[1].tolist() == [[1, 0]]
    lazy.remove_ids(np.array([1], np.int64))
    assert lazy.search(q, 2)[1].tolist() == [[0, -1]]
    lazy.reset()
    assert lazy.search(q, 1)[1].tolist() == [[-1]]


def test_bad_input():
    index = nearly.IndexFlat1D()
    index.add(np.array([[1.0]], np.float32))
    with pytest.raises(nearly.InvalidArgumentError, match=r"\(n, 1\)"):
        index.search(np.zeros((2, 2), np.float32), 1)
    with pytest.raises(nearly.InvalidArgumentError, match="NaN"):
        index.search(np.array([[np.nan]], np.float32), 1)
    with pytest.raises(nearly.InvalidArgumentError, match="k must be"):
        index.search(np.array([[0.0]], np.float32), 0)
    with pytest.raises(RuntimeError, match="params"):
        index.search(np.array([[0.0]], np.float32), 1, params=nearly.SearchParameters())


def test_small_api_parts():
    a, b = nearly.UInt8Vector(), nearly.UInt8Vector()
    a.push_back(1)
    a.push_back(2)
    a.swap(b)
    assert a.size() == 0 and nearly.vector_to_array(b).tolist() == [1, 2]
    with pytest.raises(TypeError):
        a.swap(nearly.Int64Vector())
    assert nearly.NormalizationTransform(8).norm == 2 == faiss.NormalizationTransform(8).norm
    rs = np.random.RandomState(0)
    xb = rs.rand(500, 16).astype(np.float32)
    index = nearly.IndexHNSWFlat(16, 16)
    index.add(xb)
    ref = index.search(xb[:5], 5)
    storage = nearly.downcast_index(index.storage)
    storage.sync_l2norms()
    storage.clear_l2norms()
    flat = nearly.IndexFlatL2(16)
    flat.add(xb)
    flat.sync_l2norms()
    got = index.search(xb[:5], 5)
    np.testing.assert_array_equal(got[1], ref[1])
    np.testing.assert_array_equal(flat.search(xb[:5], 1)[1][:, 0], np.arange(5))
