"""The symmetric eigensolver behind PCAMatrix, against numpy.linalg.eigh."""
import numpy as np
import pytest

from nearly import _nearly


def check(a):
    vals, vecs = _nearly._symmetric_eigen(a)
    n = len(a)
    scale = max(1.0, np.abs(a).max())
    assert (np.diff(vals) <= 1e-12 * scale).all()  # decreasing
    np.testing.assert_allclose(vals, np.linalg.eigvalsh(a)[::-1], atol=1e-10 * scale * n)
    np.testing.assert_allclose(vecs @ vecs.T, np.eye(n), atol=1e-10 * n)  # orthonormal rows
    np.testing.assert_allclose((vecs.T * vals) @ vecs, a, atol=1e-10 * scale * n)  # a = V^T diag V


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 31, 64, 200])
def test_random_symmetric(n):
    m = np.random.default_rng(n).standard_normal((n, n))
    check(m + m.T)


def test_special_matrices():
    check(np.zeros((5, 5)))
    check(np.eye(6) * 3.0)  # all eigenvalues equal
    check(np.diag([5.0, -1.0, 5.0, 2.0, 2.0, 0.0]))  # already diagonal, repeated values
    x = np.random.default_rng(0).standard_normal((3, 40))
    check(x.T @ x)  # rank 3: 37 zero eigenvalues
    t = np.diag(np.full(30, 2.0)) + np.diag(np.full(29, -1.0), 1) + np.diag(np.full(29, -1.0), -1)
    check(t)  # tridiagonal already
    check(np.ones((8, 8)) * 1e8)  # large entries
