"""Chamfer scores on the GPU against the CPU (nearly.chamfer_scores_batch, the
scalar reference) and plain numpy in float64.

Tolerance: the kernel rounds each inner product in its own order (fused
multiply-adds per lane, then a butterfly), so a score may differ from the
exact one by about d * 2^-24 times the sizes involved; the tests allow
|gpu - exact| <= 1e-6 * (d + m) * sum over the m query vectors of the
largest |q| . |x| over the document's vectors: a bound 10x or more above the
float32 error, far below any real difference.
"""
import numpy as np
import pytest

import nearly
from nearly import gpu

FLT_MAX = float(np.finfo(np.float32).max)


def ragged(rng, n_sets, d, lo=1, hi=40):
    lengths = rng.integers(lo, hi + 1, size=n_sets).astype(np.int64)
    return rng.standard_normal((int(lengths.sum()), d)).astype(np.float32), lengths


def split(x, lengths):
    off = np.concatenate([[0], np.cumsum(lengths)])
    return [x[off[i]:off[i + 1]] for i in range(len(lengths))]


def exact_and_bound(qx, ql, dx, dl):
    """float64 Chamfer scores and the tolerance of each."""
    qs, ds = split(qx, ql), split(dx, dl)
    S = np.empty((len(qs), len(ds)))
    B = np.empty_like(S)
    d = qx.shape[1]
    for i, q in enumerate(qs):
        q64 = q.astype(np.float64)
        for j, x in enumerate(ds):
            x64 = x.astype(np.float64)
            S[i, j] = (q64 @ x64.T).max(axis=1).sum()
            B[i, j] = 1e-6 * (d + len(q)) * (np.abs(q64) @ np.abs(x64).T).max(axis=1).sum()
    return S, B


def assert_close(got, S, B):
    err = np.abs(got.astype(np.float64) - S)
    assert np.all(err <= B + 1e-30), f"largest error {err.max()} (bound there {B.flat[np.argmax(err - B)]})"


# d = 1, 31 and 128 use the register path, 384 the wide register path, 600 reads from global memory.
@pytest.mark.parametrize("d", [1, 31, 128, 384, 600])
def test_gpu_chamfer_all_pairs(res, d):
    rng = np.random.default_rng(d)
    qx, ql = ragged(rng, 7, d)
    dx, dl = ragged(rng, 60, d)
    got = gpu.chamfer_scores_batch(res, qx, ql, dx, dl)
    assert got.shape == (7, 60) and got.dtype == np.float32
    S, B = exact_and_bound(qx, ql, dx, dl)
    assert_close(got, S, B)
    cpu = nearly.chamfer_scores_batch(qx, ql, dx, dl)
    assert_close(got, cpu.astype(np.float64), 2 * B)
    # the scalar reference, for a few pairs
    qs, ds = split(qx, ql), split(dx, dl)
    for i, j in [(0, 0), (3, 17), (6, 59)]:
        ref = nearly._nearly._chamfer_score_reference(qs[i], ds[j])
        assert abs(float(got[i, j]) - ref) <= 2 * B[i, j]


def test_gpu_chamfer_long_queries_span_shared_memory_chunks(res):
    # 300 query vectors of d=128 do not fit the shared memory at once: the
    # kernel walks the document once per chunk of query vectors.
    rng = np.random.default_rng(1)
    qx, ql = ragged(rng, 3, 128, lo=200, hi=300)
    dx, dl = ragged(rng, 20, 128)
    got = gpu.chamfer_scores_batch(res, qx, ql, dx, dl)
    S, B = exact_and_bound(qx, ql, dx, dl)
    assert_close(got, S, B)


def test_gpu_chamfer_gather(res):
    rng = np.random.default_rng(2)
    d = 64
    qx, ql = ragged(rng, 9, d)
    dx, dl = ragged(rng, 50, d)
    ids = rng.integers(0, 50, size=(9, 13))
    ids[:, 5] = -1  # empty slots
    ids[2, :] = 7   # duplicates are scored each time
    got = gpu.chamfer_scores_batch(res, qx, ql, dx, dl, ids=ids)
    full = gpu.chamfer_scores_batch(res, qx, ql, dx, dl)
    assert got.shape == (9, 13)
    expect = np.take_along_axis(full, np.maximum(ids, 0), axis=1)
    expect[ids < 0] = -FLT_MAX
    np.testing.assert_array_equal(got, expect)  # one kernel, one order: bit for bit


def test_gpu_chamfer_one_query_and_lists(res):
    rng = np.random.default_rng(3)
    q = rng.standard_normal((5, 16)).astype(np.float32)
    docs = [rng.standard_normal((n, 16)).astype(np.float32) for n in (1, 4, 9)]
    got = gpu.chamfer_scores(res, q, docs)
    S, B = exact_and_bound(q, [5], np.concatenate(docs), [1, 4, 9])
    assert got.shape == (3,)
    assert_close(got[None], S, B)


def test_gpu_chamfer_deterministic_and_device_arrays(res, cupy):
    rng = np.random.default_rng(4)
    qx, ql = ragged(rng, 11, 128)
    dx, dl = ragged(rng, 40, 128)
    a = gpu.chamfer_scores_batch(res, qx, ql, dx, dl)
    b = gpu.chamfer_scores_batch(res, qx, ql, dx, dl)
    np.testing.assert_array_equal(a, b)
    dev = gpu.chamfer_scores_batch(res, cupy.asarray(qx), cupy.asarray(ql), cupy.asarray(dx), dl)
    assert isinstance(dev, cupy.ndarray)
    np.testing.assert_array_equal(cupy.asnumpy(dev), a)
    ids = cupy.asarray(rng.integers(-1, 40, size=(11, 6)))
    got = gpu.chamfer_scores_batch(res, cupy.asarray(qx), ql, cupy.asarray(dx), dl, ids=ids)
    h = cupy.asnumpy(ids)
    expect = np.take_along_axis(a, np.maximum(h, 0), axis=1)
    expect[h < 0] = -FLT_MAX
    np.testing.assert_array_equal(cupy.asnumpy(got), expect)


def test_gpu_chamfer_empty_inputs(res):
    rng = np.random.default_rng(5)
    dx, dl = ragged(rng, 4, 8)
    out = gpu.chamfer_scores_batch(res, np.zeros((0, 8), np.float32), np.zeros(0, np.int64), dx, dl)
    assert out.shape == (0, 4)
    out = gpu.chamfer_scores_batch(res, dx, dl, np.zeros((0, 8), np.float32), np.zeros(0, np.int64))
    assert out.shape == (4, 0)


def test_gpu_chamfer_bad_input(res, cupy):
    rng = np.random.default_rng(6)
    qx, ql = ragged(rng, 3, 8)
    dx, dl = ragged(rng, 5, 8)
    with pytest.raises(ValueError):
        gpu.chamfer_scores_batch(res, qx, ql, dx, dl, ids=np.full((3, 2), 5))  # id == n_docs
    with pytest.raises(ValueError):
        gpu.chamfer_scores_batch(res, qx, ql, dx, dl, ids=np.full((3, 2), -2))
    with pytest.raises(ValueError):
        gpu.chamfer_scores_batch(res, qx, ql, cupy.asarray(dx), dl, ids=cupy.full((3, 2), 9, dtype=cupy.int64))
    with pytest.raises(ValueError):
        gpu.chamfer_scores_batch(res, qx, ql, dx, dl, ids=np.zeros((2, 2), np.int64))  # rows != queries
    with pytest.raises(ValueError):
        gpu.chamfer_scores_batch(res, qx, ql, dx, dl, ids=np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError):
        gpu.chamfer_scores_batch(res, qx, ql + 1, dx, dl)  # lengths do not add up
    with pytest.raises(ValueError):
        gpu.chamfer_scores_batch(res, qx[:, :7], ql, dx, dl)  # wrong d
    with pytest.raises(ValueError):
        gpu.chamfer_scores_batch(res, cupy.asarray(qx), ql + 1, dx, dl)
    with pytest.raises(ValueError):
        gpu.chamfer_scores_batch(res, cupy.asarray(qx), None, dx, dl)  # device arrays need lengths
    bad = qx.copy()
    bad[2, 3] = np.nan
    with pytest.raises(ValueError):
        gpu.chamfer_scores_batch(res, bad, ql, dx, dl)
    with pytest.raises(ValueError):
        gpu.chamfer_scores_batch(res, cupy.asarray(bad), ql, dx, dl)
    with pytest.raises(ValueError):
        gpu.chamfer_scores(res, np.zeros((0, 8), np.float32), dx, dl)
    zero = ql.copy()
    zero[1] = 0
    with pytest.raises(ValueError):
        gpu.chamfer_scores_batch(res, qx[:len(qx) - ql[1]], zero, dx, dl)
    # a dimension beyond the shared memory: a clear error, not a crash
    with pytest.raises(RuntimeError, match="d up to"):
        gpu.chamfer_scores_batch(res, np.ones((1, 20000), np.float32), [1], np.ones((1, 20000), np.float32), [1])
