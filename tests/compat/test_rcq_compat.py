"""ResidualCoarseQuantizer (faiss's RCQ): its centroids are the sums of one
word of each codebook; beam search and the exhaustive scan against numpy
over every centroid and against faiss-cpu given the same codebooks; as the
coarse quantizer of an IVF ("IVF1024(RCQ2x5),Flat")."""
import numpy as np
import pytest

import nearly
from _hnswutil import clustered
from _testutil import METRIC_IP, METRIC_L2

faiss = pytest.importorskip("faiss")


@pytest.fixture(scope="module")
def data():
    return clustered(21, 4000, 60)


def exact_centroids(q, xq, k, metric):
    C = q.reconstruct_n(0, q.ntotal).astype(np.float64)
    if metric == METRIC_L2:
        s = ((xq[:, None, :].astype(np.float64) - C[None]) ** 2).sum(2)
        order = np.argsort(s, 1, kind="stable")[:, :k]
    else:
        s = xq.astype(np.float64) @ C.T
        order = np.argsort(-s, 1, kind="stable")[:, :k]
    return np.take_along_axis(s, order, 1), order


def with_codebooks_of(fq, metric, M, nbits, d=32):
    q = nearly.ResidualCoarseQuantizer(d, M, nbits, metric)
    q.rq.codebooks = faiss.vector_to_array(fq.rq.codebooks)
    q.rq.is_trained = True
    q.is_trained = True
    return q


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP], ids=["L2", "IP"])
def test_search_against_numpy_and_faiss(data, metric):
    x, xq = data
    if metric == METRIC_IP:
        # the beam is searched by L2 (faiss's too): on unit vectors the same
        # order as the inner product
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        xq = xq / np.linalg.norm(xq, axis=1, keepdims=True)
    fq = faiss.ResidualCoarseQuantizer(32, 2, 5, metric)
    fq.train(x)
    q = with_codebooks_of(fq, metric, 2, 5)
    assert q.ntotal == fq.ntotal == 1024
    np.testing.assert_allclose(q.reconstruct_n(0, 1024), fq.reconstruct_n(0, 1024), rtol=1e-5, atol=1e-6)
    Dx, Ix = exact_centroids(q, xq, 10, metric)
    # exhaustive: every centroid, the exact order
    q.set_beam_factor(-1)
    fq.set_beam_factor(-1)
    D, I = q.search(xq, 10)
    np.testing.assert_array_equal(I, Ix)
    np.testing.assert_allclose(D, Dx, rtol=1e-4, atol=1e-4)
    Df, If = fq.search(xq, 10)
    assert (I == If).mean() > 0.99
    # beam search: faiss's beam under L2 (the same ids and distances); under
    # inner product nearly re-scores its L2 beam by <x, c>
    q.set_beam_factor(4)
    fq.set_beam_factor(4)
    D, I = q.search(xq, 10)
    if metric == METRIC_L2:
        Df, If = fq.search(xq, 10)
        assert (I == If).mean() > 0.99
        np.testing.assert_allclose(D, Df, rtol=1e-4, atol=1e-4)
    else:
        assert (np.diff(D, axis=1) <= 1e-6).all()
        C = q.reconstruct_n(0, q.ntotal)
        np.testing.assert_allclose(D, np.take_along_axis(xq @ C.T, I, 1), rtol=1e-5, atol=1e-5)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I, Ix)])
    # (centroids are not unit vectors: an L2 beam finds the best inner
    # products less surely)
    assert recall > (0.9 if metric == METRIC_L2 else 0.8)
    # a wider beam per search (faiss's parameters)
    D2, I2 = q.search(xq, 10, params=nearly.SearchParametersResidualCoarseQuantizer(beam_factor=64))
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I2, Ix)]) >= recall


def test_ivf_over_rcq(data):
    x, xq = data
    index = nearly.index_factory(32, "IVF1024(RCQ2x5),Flat")
    assert isinstance(index.quantizer, nearly.ResidualCoarseQuantizer)
    index.train(x)
    assert index.quantizer.ntotal == 1024 and index.is_trained
    index.add(x)
    flat = nearly.IndexFlatL2(32)
    flat.add(x)
    Dg, Ig = flat.search(xq, 10)
    index.nprobe = 1024
    index.quantizer.set_beam_factor(-1)  # every list, found exactly
    D, I = index.search(xq, 10)
    np.testing.assert_array_equal(I, Ig)
    index.quantizer.set_beam_factor(4)
    r = {}
    for nprobe in (4, 32):
        index.nprobe = nprobe
        r[nprobe] = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(index.search(xq, 10)[1], Ig)])
    assert r[32] > r[4] and r[32] > 0.9
    back = nearly.deserialize_index(nearly.serialize_index(index))
    assert isinstance(back.quantizer, nearly.ResidualCoarseQuantizer)
    for a, b in zip(back.search(xq, 10), index.search(xq, 10)):
        np.testing.assert_array_equal(a, b)
    # faiss's own factory string builds the same kind of index
    f = faiss.index_factory(32, "IVF1024(RCQ2x5),Flat")
    f.train(x)
    f.add(x)
    f.nprobe = 32
    rf = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(f.search(xq, 10)[1], Ig)])
    assert r[32] >= rf - 0.05


def test_refusals(data):
    x, xq = data
    q = nearly.ResidualCoarseQuantizer(32, 2, 4)
    with pytest.raises(RuntimeError, match="not trained"):
        q.search(xq, 3)
    with pytest.raises(RuntimeError, match="codebooks"):
        q.rq.is_trained = True
    with pytest.raises(ValueError, match="at most 40"):
        nearly.ResidualCoarseQuantizer(32, 5, 9)
    with pytest.raises(ValueError):
        q.set_beam_factor(0.5)
    q.train(x)
    with pytest.raises(RuntimeError, match="add"):
        q.add(x)
    with pytest.raises(ValueError):
        q.search(xq, 3, params=nearly.SearchParametersIVF())
    with pytest.raises(IndexError):
        q.reconstruct(256)
    D, I = q.search(xq[:2], 300)  # k beyond the 256 centroids: padded
    assert (I[:, 256:] == -1).all() and (I[:, :256] >= 0).all()
    back = nearly.deserialize_index(nearly.serialize_index(q))
    assert back.beam_factor == 4 and back.ntotal == 256
    np.testing.assert_array_equal(back.search(xq, 5)[1], q.search(xq, 5)[1])
