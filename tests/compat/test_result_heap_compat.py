"""faiss.ResultHeap: results of dataset slices merged per query, against faiss's."""
import numpy as np
import pytest

import faiss
import nearly


def slices(rng, nq, parts, per):
    # distinct values (no ties: faiss's heap order among equal values is its own)
    vals = rng.permutation(nq * parts * per).astype(np.float32).reshape(parts, nq, per) / 7
    ids = rng.integers(0, 10**9, size=(parts, nq, per))
    return vals, ids


@pytest.mark.parametrize("keep_max", [False, True])
@pytest.mark.parametrize("k,per", [(10, 4), (10, 25), (5, 5)])
def test_result_heap_like_faiss(keep_max, k, per):
    rng = np.random.default_rng(k * per + keep_max)
    nq = 30
    vals, ids = slices(rng, nq, 3, per)
    ours, theirs = nearly.ResultHeap(nq, k, keep_max=keep_max), faiss.ResultHeap(nq, k, keep_max=keep_max)
    for D, I in zip(vals, ids):
        ours.add_result(D, I)
        theirs.add_result(D, I)
    ours.finalize()
    theirs.finalize()
    # fewer results than k (4 x 3 < 25 when per is 4): the same padding
    np.testing.assert_array_equal(ours.I, theirs.I)
    np.testing.assert_array_equal(ours.D, theirs.D)
    assert ours.D.dtype == np.float32 and ours.I.dtype == np.int64


@pytest.mark.parametrize("keep_max", [False, True])
def test_result_heap_subsets_like_faiss(keep_max):
    rng = np.random.default_rng(7)
    nq, k = 20, 6
    ours, theirs = nearly.ResultHeap(nq, k, keep_max=keep_max), faiss.ResultHeap(nq, k, keep_max=keep_max)
    for part in range(4):
        subset = np.sort(rng.choice(nq, 8, replace=False))
        D = (rng.permutation(8 * 5).astype(np.float32).reshape(8, 5) + 100 * part) / 3
        I = rng.integers(0, 1000, size=5) if part % 2 else rng.integers(0, 1000, size=(8, 5))
        ours.add_result_subset(subset, D, I)
        theirs.add_result_subset(subset, D, I)
    ours.finalize()
    theirs.finalize()
    np.testing.assert_array_equal(ours.I, theirs.I)
    np.testing.assert_array_equal(ours.D, theirs.D)


def test_result_heap_merges_shards_like_a_whole_search():
    rng = np.random.default_rng(3)
    xb = rng.standard_normal((3000, 16)).astype(np.float32)
    xq = rng.standard_normal((40, 16)).astype(np.float32)
    heap = nearly.ResultHeap(len(xq), 10)
    for i0 in range(0, 3000, 700):
        index = nearly.IndexFlatL2(16)
        index.add(xb[i0:i0 + 700])
        D, I = index.search(xq, 10)
        heap.add_result(D, I + i0)
    heap.finalize()
    whole = nearly.IndexFlatL2(16)
    whole.add(xb)
    D, I = whole.search(xq, 10)
    np.testing.assert_array_equal(heap.I, I)
    np.testing.assert_allclose(heap.D, D, rtol=1e-5)


def test_result_heap_bad_input():
    heap = nearly.ResultHeap(4, 3)
    with pytest.raises(ValueError):
        heap.add_result(np.zeros((3, 2), np.float32), np.zeros((3, 2), np.int64))  # wrong nq
    with pytest.raises(ValueError):
        heap.add_result(np.zeros((4, 2), np.float32), np.zeros((4, 3), np.int64))  # shapes differ
    with pytest.raises(ValueError):
        heap.add_result_subset([0, 4], np.zeros((2, 2), np.float32), np.zeros((2, 2), np.int64))  # out of range
    with pytest.raises(ValueError):
        heap.add_result_subset([1, 1], np.zeros((2, 2), np.float32), np.zeros((2, 2), np.int64))  # twice
    with pytest.raises(ValueError):
        heap.add_result_subset([0], np.zeros((1, 2), np.float32), np.zeros(3, np.int64))  # 1-D I of wrong size
    with pytest.raises(ValueError):
        nearly.ResultHeap(4, 0)
