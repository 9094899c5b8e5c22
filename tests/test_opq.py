"""OPQMatrix, LinearTransform and RandomRotationMatrix on their own: the
transform against numpy at every SIMD level, the learned rotation's
properties, persistence inside IndexPreTransform, factory strings, bad input.
(tests/compat/test_opq_compat.py compares with faiss.)"""
import pickle

import numpy as np
import pytest

import nearly
from _testutil import METRIC_L2, randn


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    # a decaying spectrum, randomly rotated: the variance is spread over
    # correlated dimensions, which a learned rotation undoes (PQ error halves)
    q, _ = np.linalg.qr(rng.standard_normal((32, 32)))
    x = (rng.standard_normal((6000, 32)) * np.geomspace(3.0, 0.05, 32)) @ q
    return np.ascontiguousarray(x, dtype=np.float32)


def small_opq(d, M, d_out=-1):
    opq = nearly.OPQMatrix(d, M, d_out)
    opq.niter, opq.niter_pq_0, opq.niter_pq = 8, 10, 3
    return opq


@pytest.fixture(scope="module")
def trained(data):
    opq = small_opq(32, 4)
    opq.train(data)
    return opq


def pq_error(x, M):
    pq = nearly.ProductQuantizer(x.shape[1], M, 8)
    pq.cp.niter = 10
    pq.train(x)
    rec = pq.decode(pq.compute_codes(x))
    return float(((rec - x) ** 2).sum(1).mean())


@pytest.mark.parametrize("shape", [(5, 7, 3, False), (300, 64, 64, True), (1, 384, 384, False), (1000, 40, 8, True)])
def test_linear_transform_matches_numpy(level, shape):
    n, d_in, d_out, bias = shape
    rng = np.random.default_rng(n + d_in)
    lt = nearly.LinearTransform(d_in, d_out, bias)
    A = randn(rng, d_out, d_in)
    lt.A = A.ravel()
    if bias:
        lt.b = randn(rng, 1, d_out).ravel()
    lt.is_trained = True
    x = randn(rng, n, d_in)
    ref = x.astype(np.float64) @ A.T.astype(np.float64) + (lt.b if bias else 0)
    got = lt.apply(x)
    bound = 4e-7 * d_in * (np.abs(x.astype(np.float64)) @ np.abs(A.astype(np.float64)).T) + 1e-6
    assert got.shape == (n, d_out) and got.dtype == np.float32
    assert np.all(np.abs(got - ref) <= bound)


def test_opq_rotation_is_orthonormal_and_lowers_pq_error(data, trained):
    A = trained.A.reshape(32, 32).astype(np.float64)
    assert trained.is_trained and trained.is_orthonormal
    assert np.abs(A @ A.T - np.eye(32)).max() < 1e-5
    xt = trained.apply(data)
    # a rotation keeps lengths and inner products
    np.testing.assert_allclose((xt ** 2).sum(1), (data ** 2).sum(1), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(trained.reverse_transform(xt), data, atol=1e-4)
    before, after = pq_error(data, 4), pq_error(xt, 4)
    assert after < 0.6 * before, (before, after)


def test_opq_is_deterministic(data, trained):
    again = small_opq(32, 4)
    again.train(data)
    np.testing.assert_array_equal(again.A, trained.A)


def test_opq_d_out(data):
    opq = small_opq(32, 4, 16)
    assert (opq.d_in, opq.d_out) == (32, 16)
    opq.train(data)
    A = opq.A.reshape(16, 32).astype(np.float64)
    assert np.abs(A @ A.T - np.eye(16)).max() < 1e-5
    assert opq.apply(data[:5]).shape == (5, 16)


def test_opq_rank_deficient_data():
    # 32-d vectors in a 20-d subspace: the rotation must still be orthonormal
    rng = np.random.default_rng(3)
    x = (randn(rng, 3000, 20) @ randn(rng, 20, 32)).astype(np.float32)
    opq = small_opq(32, 8)
    opq.train(x)
    A = opq.A.reshape(32, 32).astype(np.float64)
    assert np.abs(A @ A.T - np.eye(32)).max() < 1e-5


def test_opq_samples_max_train_points(data):
    a, b = small_opq(32, 4), small_opq(32, 4)
    a.max_train_points = b.max_train_points = 2000
    a.train(data)
    b.train(data[:4000])  # a different set, a different sample: a different rotation
    assert not np.array_equal(a.A, b.A)
    c = small_opq(32, 4)
    c.max_train_points = 2000
    c.train(data)
    np.testing.assert_array_equal(a.A, c.A)


def test_random_rotation():
    rr = nearly.RandomRotationMatrix(24, 24)
    assert not rr.is_trained
    rr.train(np.zeros((1, 24), np.float32))
    A = rr.A.reshape(24, 24).astype(np.float64)
    assert np.abs(A @ A.T - np.eye(24)).max() < 1e-5
    wide = nearly.RandomRotationMatrix(8, 24)
    wide.init(5)
    A = wide.A.reshape(24, 8).astype(np.float64)
    assert np.abs(A.T @ A - np.eye(8)).max() < 1e-5
    x = randn(np.random.default_rng(1), 10, 8)
    np.testing.assert_allclose(wide.reverse_transform(wide.apply(x)), x, atol=1e-5)


@pytest.mark.parametrize("desc", ["OPQ4,PQ4", "OPQ4,IVF16,PQ4", "OPQ4_16,IVF16,Flat", "OPQ8,PQ8x4"])
def test_factory_and_persistence(data, tmp_path, desc):
    index = nearly.index_factory(32, desc, METRIC_L2)
    assert isinstance(index, nearly.IndexPreTransform)
    opq = nearly.downcast_VectorTransform(index.chain.at(0))
    assert isinstance(opq, nearly.OPQMatrix) and index.chain.size() == 1 and len(index.chain) == 1
    assert index.chain[-1] is not None
    opq.niter, opq.niter_pq_0, opq.niter_pq = 4, 6, 2
    assert not index.is_trained
    index.train(data[:4000])
    assert index.is_trained and opq.is_trained
    index.add(data)
    xq = data[:50] + 0.01
    D, I = index.search(xq, 10)
    assert (I >= 0).all()
    for clone in (nearly.deserialize_index(nearly.serialize_index(index)), pickle.loads(pickle.dumps(index))):
        D2, I2 = clone.search(xq, 10)
        np.testing.assert_array_equal(I, I2)
        np.testing.assert_array_equal(D, D2)
        np.testing.assert_array_equal(clone.chain.at(0).A, opq.A)
        assert clone.chain.at(0).niter == 4 and clone.chain.at(0).M == opq.M
    path = str(tmp_path / "opq.index")
    nearly.write_index(index, path)
    back = nearly.read_index(path)
    assert isinstance(back.chain.at(0), nearly.OPQMatrix)
    np.testing.assert_array_equal(back.search(xq, 10)[1], I)


def test_untrained_opq_persists(data):
    index = nearly.index_factory(32, "OPQ4,PQ4", METRIC_L2)
    back = nearly.deserialize_index(nearly.serialize_index(index))
    assert not back.is_trained and not back.chain.at(0).is_trained
    back.chain.at(0).niter = 2
    back.train(data[:3000])
    assert back.is_trained


def test_bad_input(data):
    with pytest.raises(RuntimeError, match="multiple of the number of subquantizers"):
        nearly.OPQMatrix(30, 4)
    with pytest.raises(RuntimeError):
        nearly.index_factory(30, "OPQ4,PQ4")
    opq = nearly.OPQMatrix(32, 4)
    with pytest.raises(RuntimeError, match="not trained"):
        opq.apply(data[:3])
    with pytest.raises(RuntimeError, match="not implemented for non-orthonormal"):
        lt = nearly.LinearTransform(4, 4)
        lt.A = np.ones(16, np.float32)
        lt.is_trained = True
        lt.reverse_transform(np.ones((1, 4), np.float32))
    with pytest.raises(ValueError):
        nearly.LinearTransform(4, 4).A = np.ones(15, np.float32)
    bad = data[:3000].copy()
    bad[17, 3] = np.nan
    with pytest.raises(nearly.InvalidArgumentError):
        opq.train(bad)
    with pytest.raises(RuntimeError, match="at least as large as number of clusters"):
        opq.train(data[:100])
    with pytest.raises(ValueError):
        opq.train(data[:300, :16])
    index = nearly.index_factory(32, "OPQ4,PQ4", METRIC_L2)
    with pytest.raises(RuntimeError, match="is_trained"):
        index.add(data[:10])
    with pytest.raises(RuntimeError, match="is_trained"):
        index.search(data[:10], 1)
    with pytest.raises(IndexError):
        index.chain.at(1)
