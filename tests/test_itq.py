"""Iterative quantization (nearly/itq.h): ITQMatrix against a float64 numpy
reference of the textbook iteration (signs, then the polar factor of B^T X)
from the same start, its loss never rising; ITQTransform's centring, unit
norm and PCA; the "ITQ[d],LSHt" factory strings, persistence, bad input."""
import numpy as np
import pytest

import nearly
from _testutil import randn


def loss(y):
    return float(((np.where(y < 0, -1.0, 1.0) - y) ** 2).sum())


def reference_itq(x, r0, iters):
    x = x.astype(np.float64)
    r = r0.copy()
    for _ in range(iters):
        b = np.where(x @ r.T < 0, -1.0, 1.0)
        u, _, vt = np.linalg.svd(b.T @ x)
        r = u @ vt
    return r


def test_itq_matrix_is_the_textbook_iteration():
    rng = np.random.default_rng(0)
    d = 12
    x = randn(rng, 2000, d) @ randn(rng, d, d)  # correlated, so the rotation matters
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    r0 = np.linalg.qr(randn(rng, d, d).astype(np.float64))[0]
    losses = []
    for iters in (0, 1, 3, 10):
        t = nearly.ITQMatrix(d)
        t.init_rotation = r0
        t.max_iter = iters
        t.train(x)
        assert t.is_trained
        A = t.A.reshape(d, d)
        np.testing.assert_allclose(A @ A.T, np.eye(d), atol=1e-5)
        np.testing.assert_allclose(A, reference_itq(x, r0, iters), atol=2e-3)
        losses.append(loss(t.apply(x)))
    assert all(a >= b - 1e-3 for a, b in zip(losses, losses[1:])) and losses[-1] < losses[0]


@pytest.mark.parametrize("d_out,do_pca", [(8, True), (24, False)])
def test_itq_transform(d_out, do_pca):
    rng = np.random.default_rng(1)
    d = 24
    xt = randn(rng, 3000, d) @ randn(rng, d, d) + 2.0
    t = nearly.ITQTransform(d, d_out, do_pca)
    assert not t.is_trained
    with pytest.raises(RuntimeError, match="not trained"):
        t.apply(xt[:3])
    t.train(xt)
    np.testing.assert_allclose(t.mean, xt.astype(np.float64).mean(0), rtol=1e-5, atol=1e-5)
    xn = xt[:50] - t.mean
    xn /= np.linalg.norm(xn, axis=1, keepdims=True)
    np.testing.assert_allclose(t.apply(xt[:50]), xn @ t.pca_then_itq.A.reshape(d_out, d).T, rtol=1e-4, atol=1e-5)
    if do_pca:
        # pca_then_itq = itq rotation times the PCA rows: orthonormal rows spanning the top components
        P = t.pca_then_itq.A.reshape(d_out, d)
        np.testing.assert_allclose(P @ P.T, np.eye(d_out), atol=1e-4)
    with pytest.raises(RuntimeError, match="already been trained"):
        t.train(xt)


def test_factory_persistence_and_bad_input(tmp_path):
    rng = np.random.default_rng(2)
    d = 32
    xt, xq = randn(rng, 4000, d), randn(rng, 10, d)
    for spec, d_out in (("ITQ16,LSHt", 16), ("ITQ,LSHt", 32)):
        index = nearly.index_factory(d, spec)
        t = nearly.downcast_VectorTransform(index.chain.at(0))
        assert isinstance(t, nearly.ITQTransform) and t.d_out == d_out and t.do_pca == (d_out != d)
        index.train(xt)
        index.add(xt)
        D, I = index.search(xq, 5)
        path = str(tmp_path / "itq.index")
        nearly.write_index(index, path)
        back = nearly.read_index(path)
        np.testing.assert_array_equal(back.search(xq, 5)[1], I)
        np.testing.assert_array_equal(nearly.downcast_VectorTransform(back.chain.at(0)).mean, t.mean)
    with pytest.raises(ValueError, match="match"):
        nearly.ITQTransform(16, 8, False)
    with pytest.raises(ValueError):
        nearly.ITQTransform(8, 16, True)
    bad = randn(rng, 100, d)
    bad[5, 5] = np.nan
    with pytest.raises(ValueError):
        nearly.ITQTransform(d, 8, True).train(bad)
    with pytest.raises(ValueError):
        nearly.ITQMatrix(d).train(np.zeros((0, d), np.float32))
