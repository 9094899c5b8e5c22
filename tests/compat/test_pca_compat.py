"""PCAMatrix against faiss-cpu: the same mean, eigenvalues and components
(up to each component's sign, which an eigensolver does not fix), the same
outputs up to those signs, whitening, random rotation (compared through the
rotation-free projector A^T A), balanced bins, fewer vectors than
dimensions, the PCA factory strings, persistence and bad input."""
import numpy as np
import pytest

import nearly
from _hnswutil import real_data

faiss = pytest.importorskip("faiss")


def vec(lib, v):
    return lib.vector_to_array(v)


@pytest.fixture(scope="module")
def data():
    xb, xq = real_data()
    return xb[:6000, :96].copy(), xq[:, :96].copy()  # 96 of the 384 dimensions: fast, still real


def trained(lib, x, d_out, **kw):
    pca = lib.PCAMatrix(x.shape[1], d_out, kw.get("eigen_power", 0.0), kw.get("random_rotation", False))
    if "balanced_bins" in kw:
        pca.balanced_bins = kw["balanced_bins"]
    pca.train(x)
    return pca


def assert_same_up_to_sign(a, b, atol):
    """Columns of a equal columns of b, each possibly negated."""
    signs = np.sign(np.sum(a * b, axis=0))
    signs[signs == 0] = 1
    np.testing.assert_allclose(a * signs, b, atol=atol)


def test_mean_eigenvalues_components_and_outputs(data):
    x, xq = data
    d = x.shape[1]
    p = {lib: trained(lib, x, 24) for lib in (faiss, nearly)}
    np.testing.assert_allclose(vec(nearly, p[nearly].mean), vec(faiss, p[faiss].mean), atol=1e-6)
    ev_n, ev_f = vec(nearly, p[nearly].eigenvalues), vec(faiss, p[faiss].eigenvalues)
    assert len(ev_n) == len(ev_f) == d
    assert (np.diff(ev_n) <= 0).all()
    np.testing.assert_allclose(ev_n, ev_f, rtol=1e-3, atol=1e-4 * ev_f[0])
    # Components: rows of PCAMat, compared where the eigenvalues are well apart.
    pm_n = vec(nearly, p[nearly].PCAMat).reshape(d, d)
    pm_f = vec(faiss, p[faiss].PCAMat).reshape(d, d)
    gap = np.minimum(np.abs(np.diff(ev_f, prepend=np.inf)), np.abs(np.diff(ev_f, append=-np.inf)))
    well_apart = np.flatnonzero(gap[:24] > 1e-2 * ev_f[0])
    assert len(well_apart) >= 10
    cos = np.abs(np.sum(pm_n[well_apart] * pm_f[well_apart], axis=1))
    assert cos.min() > 0.999, cos
    y_n, y_f = p[nearly].apply(xq), p[faiss].apply(xq)
    assert y_n.shape == (len(xq), 24) and y_n.dtype == np.float32
    assert_same_up_to_sign(y_n[:, well_apart], y_f[:, well_apart], atol=2e-3)
    # Orthonormal rows: the reverse transform is the projection back.
    assert p[nearly].is_orthonormal
    back = p[nearly].reverse_transform(y_n)
    np.testing.assert_allclose(back, p[faiss].reverse_transform(y_f), atol=2e-3)


def test_whitening(data):
    x, xq = data
    p = {lib: trained(lib, x, 16, eigen_power=-0.5) for lib in (faiss, nearly)}
    assert not p[nearly].is_orthonormal
    y_n, y_f = p[nearly].apply(x), p[faiss].apply(x)
    # whitened components: unit variance over the training set, times 1/sqrt(n)
    np.testing.assert_allclose(y_n.var(axis=0) * len(x), 1.0, rtol=2e-2)
    assert_same_up_to_sign(p[nearly].apply(xq)[:, :8], p[faiss].apply(xq)[:, :8], atol=1e-3)


def test_random_rotation_spans_the_same_subspace(data):
    x, _ = data
    d = x.shape[1]
    p = {lib: trained(lib, x, 32, random_rotation=True) for lib in (faiss, nearly)}
    A = {lib: vec(lib, p[lib].A).reshape(32, d) for lib in p}
    np.testing.assert_allclose(A[nearly] @ A[nearly].T, np.eye(32), atol=1e-5)  # orthonormal rows
    # The rotations differ (each library draws its own) but project onto the same subspace.
    np.testing.assert_allclose(A[nearly].T @ A[nearly], A[faiss].T @ A[faiss], atol=2e-3)
    assert not np.allclose(A[nearly], A[faiss], atol=1e-2)


def test_balanced_bins(data):
    x, _ = data
    d = x.shape[1]
    p = {lib: trained(lib, x, 16, balanced_bins=4) for lib in (faiss, nearly)}
    A = {lib: vec(lib, p[lib].A).reshape(16, d) for lib in p}
    cos = np.abs(np.sum(A[nearly] * A[faiss], axis=1))
    assert cos.min() > 0.99, cos  # the same component in every row: the same greedy binning
    with pytest.raises(ValueError):
        trained(nearly, x, 16, balanced_bins=3)


def test_fewer_vectors_than_dimensions(data):
    x, _ = data
    few = x[:40]
    p = {lib: trained(lib, few, 20) for lib in (faiss, nearly)}
    ev_n, ev_f = vec(nearly, p[nearly].eigenvalues), vec(faiss, p[faiss].eigenvalues)
    np.testing.assert_allclose(ev_n[:39], ev_f[:39], rtol=1e-3, atol=1e-4 * ev_f[0])
    y_n, y_f = p[nearly].apply(few), p[faiss].apply(few)
    assert_same_up_to_sign(y_n[:, :10], y_f[:, :10], atol=5e-3)


@pytest.mark.parametrize("description", ["PCA32,IVF16,Flat", "PCAR32,IVF16,PQ8", "PCAW32,Flat"])
def test_factory_strings_recall_like_faiss(data, description):
    x, xq = data
    gt = nearly.knn(xq, x, 10, metric=nearly.METRIC_L2)[1]
    recall = {}
    for lib in (faiss, nearly):
        index = lib.index_factory(x.shape[1], description)
        index.train(x)
        index.add(x)
        if "IVF" in description:
            lib.ParameterSpace().set_index_parameter(index, "nprobe", 4)
        _, I = index.search(xq, 10)
        recall[lib] = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I, gt)])
    assert abs(recall[nearly] - recall[faiss]) < 0.03, recall


def test_persistence_and_bad_input(data):
    x, xq = data
    index = nearly.index_factory(x.shape[1], "PCA24,Flat")
    index.train(x)
    index.add(x)
    back = nearly.deserialize_index(nearly.serialize_index(index))
    np.testing.assert_array_equal(back.search(xq, 5)[1], index.search(xq, 5)[1])
    pca = back.chain.at(0)
    assert isinstance(pca, nearly.PCAMatrix) and pca.d_out == 24
    np.testing.assert_array_equal(vec(nearly, pca.eigenvalues), vec(nearly, index.chain.at(0).eigenvalues))
    with pytest.raises(ValueError):
        nearly.PCAMatrix(16, 32)  # more outputs than inputs
    with pytest.raises(RuntimeError):
        nearly.PCAMatrix(16, 8).apply(np.zeros((2, 16), np.float32))  # not trained
    bad = x[:100, :16].copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError):
        nearly.PCAMatrix(16, 8).train(bad)
