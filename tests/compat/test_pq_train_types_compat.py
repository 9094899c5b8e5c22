"""ProductQuantizer.train_type (faiss's Train_default / _hot_start /
_shared / _hypercube / _hypercube_pca) against faiss-cpu on the real
embeddings: the same codebooks where the arithmetic allows (default,
shared: to float roundoff; hypercube: the same start, bit for bit), the
same quantization error; through IndexPQ / IndexIVFPQFastScan too."""
import numpy as np
import pytest

import nearly
from _hnswutil import real_data

faiss = pytest.importorskip("faiss")


@pytest.fixture(scope="module")
def data():
    base, _ = real_data()
    return np.ascontiguousarray(base[:4000]), np.ascontiguousarray(base[4000:6000])


def trained(lib, xt, train_type, M=48, nbits=4, niter=None):
    pq = lib.ProductQuantizer(xt.shape[1], M, nbits)
    pq.train_type = getattr(lib.ProductQuantizer, train_type)
    if niter is not None:
        pq.cp.niter = niter
    pq.train(xt)
    return pq


def centroids(lib, pq):
    return lib.vector_to_array(pq.centroids).reshape(pq.M, pq.ksub, pq.dsub)


def mse(pq, x):
    return float(((pq.decode(pq.compute_codes(x)) - x) ** 2).sum(1).mean())


@pytest.mark.parametrize("train_type", ["Train_default", "Train_shared"])
def test_same_codebooks_as_faiss(data, train_type):
    xt, xv = data
    ours, theirs = trained(nearly, xt, train_type), trained(faiss, xt, train_type)
    np.testing.assert_allclose(centroids(nearly, ours), centroids(faiss, theirs), atol=1e-5)
    assert mse(ours, xv) == pytest.approx(mse(theirs, xv), rel=1e-4)
    if train_type == "Train_shared":
        c = centroids(nearly, ours)
        assert (c == c[0]).all()  # one codebook for every subspace
        assert mse(ours, xv) > mse(trained(nearly, xt, "Train_default"), xv)  # and coarser


@pytest.mark.parametrize("train_type", ["Train_hypercube", "Train_hypercube_pca"])
def test_hypercube_starts(data, train_type):
    xt, xv = data
    start, start_f = trained(nearly, xt, train_type, niter=0), trained(faiss, xt, train_type, niter=0)
    c, cf = centroids(nearly, start), centroids(faiss, start_f)
    if train_type == "Train_hypercube":
        np.testing.assert_array_equal(c, cf)  # faiss's start, bit for bit
    else:
        # the principal directions' signs are arbitrary: the cube's edges,
        # not its labelling, are faiss's
        edge, edge_f = [np.linalg.norm(a[:, 1] - a[:, 0], axis=1) for a in (c, cf)]
        np.testing.assert_allclose(edge, edge_f, rtol=1e-3)
        np.testing.assert_allclose(c.mean(axis=1), cf.mean(axis=1), atol=1e-5)  # centred on the mean
    ours, theirs = trained(nearly, xt, train_type), trained(faiss, xt, train_type)
    assert mse(ours, xv) == pytest.approx(mse(theirs, xv), rel=5e-3)


def test_hypercube_needs_dsub_at_least_nbits(data):
    xt, _ = data
    cube = trained(nearly, xt, "Train_hypercube", M=96, nbits=8)  # dsub 4 < 8 bits: the default start
    np.testing.assert_array_equal(centroids(nearly, cube), centroids(nearly, trained(nearly, xt, "Train_default",
                                                                                      M=96, nbits=8)))


def test_hot_start(data):
    xt, _ = data
    pq = trained(nearly, xt, "Train_default", M=24)
    before = centroids(nearly, pq).copy()
    pq.train_type = nearly.ProductQuantizer.Train_hot_start
    pq.cp.niter = 0
    pq.train(xt)
    np.testing.assert_array_equal(centroids(nearly, pq), before)


def test_through_fast_scan_indexes(data):
    xt, xv = data
    d = xt.shape[1]
    for make in (lambda lib: lib.IndexPQFastScan(d, d // 4, 4),
                 lambda lib: lib.IndexIVFPQFastScan(lib.IndexFlatL2(d), d, 16, d // 4, 4)):
        out = []
        for lib in (nearly, faiss):
            index = make(lib)
            index.pq.train_type = lib.ProductQuantizer.Train_shared
            index.train(xt)
            out.append(centroids(lib, index.pq))
        assert (out[0] == out[0][0]).all()
        np.testing.assert_allclose(out[0], out[1], atol=1e-5)


def test_bad_train_type():
    pq = nearly.ProductQuantizer(16, 4, 4)
    with pytest.raises(nearly.InvalidArgumentError, match="train_type"):
        pq.train_type = 7
    assert pq.train_type == nearly.ProductQuantizer.Train_default == faiss.ProductQuantizer.Train_default
    for name in ("Train_hot_start", "Train_shared", "Train_hypercube", "Train_hypercube_pca"):
        assert getattr(nearly.ProductQuantizer, name) == getattr(faiss.ProductQuantizer, name)
