"""IndexIVFFlat behaviour that needs no faiss: verbose output, searches
running while vectors are added. The differential tests are in tests/compat."""
import threading

import numpy as np
import pytest

import nearly
from _hnswutil import clustered


def built(nlist=16, n=4000):
    x, xq = clustered(1, n, 50, d=16)
    index = nearly.IndexIVFFlat(nearly.IndexFlatL2(16), 16, nlist)
    index.train(x)
    index.add(x)
    return index, x, xq


def test_verbose_training_and_adding(capfd):
    x, _ = clustered(2, 2000, 0, d=16)
    index = nearly.IndexIVFFlat(nearly.IndexFlatL2(16), 16, 8)
    index.verbose = True
    index.cp.verbose = True
    index.train(x)
    index.add(x)
    out = capfd.readouterr().out
    assert "Training level-1 quantizer on 2000 vectors in 16D" in out
    assert "Clustering 2000 points in 16D to 8 clusters" in out
    assert "IndexIVFFlat::add_core: added 2000 / 2000 vectors" in out
    index.train(x)  # the quantizer holds nlist centroids already
    assert "IVF quantizer does not need training." in capfd.readouterr().out


def test_cp_is_a_reference():
    index = nearly.IndexIVFFlat(nearly.IndexFlatL2(16), 16, 8)
    index.cp.niter = 3
    assert index.cp.niter == 3


def test_pretrained_quantizer_needs_no_training():
    x, _ = clustered(3, 1000, 0, d=16)
    q = nearly.IndexFlatL2(16)
    q.add(x[:8])
    index = nearly.IndexIVFFlat(q, 16, 8)
    assert index.is_trained
    index.add(x)
    assert sum(index.get_list_size(i) for i in range(8)) == 1000


def test_is_trained_can_be_set_after_filling_the_quantizer_by_hand():
    """faiss's idiom: the quantizer is filled after the IVF index was made,
    then `index.is_trained = True`. nearly takes it when the quantizer holds
    nlist centroids and the encoder is trained (or, for IVFPQ, was given a
    codebook by hand), and refuses it otherwise instead of adding garbage."""
    x, xq = clustered(4, 2000, 20, d=16)
    q = nearly.IndexFlatL2(16)
    index = nearly.IndexIVFFlat(q, 16, 8)
    with pytest.raises(ValueError, match="nlist = 8 centroids; it holds 0"):
        index.is_trained = True
    q.add(x[:5])
    with pytest.raises(ValueError, match="holds 5"):
        index.is_trained = True
    q.add(x[5:8])
    index.is_trained = True
    index.add(x)
    index.nprobe = 8
    D, I = index.search(xq, 5)
    ref = ((xq[:, None, :] - x[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(I, np.argsort(ref, 1, kind="stable")[:, :5])
    index.is_trained = False  # faiss allows it; adding then raises
    with pytest.raises(RuntimeError, match="is_trained"):
        index.add(x[:3])
    # An SQ encoder has nothing to fill by hand: train() it.
    q2 = nearly.IndexFlatL2(16)
    q2.add(x[:8])
    sq = nearly.IndexIVFScalarQuantizer(q2, 16, 8, nearly.ScalarQuantizer.QT_8bit)
    assert not sq.is_trained
    with pytest.raises(ValueError, match="trained encoder"):
        sq.is_trained = True
    # IVFPQ: quantizer and codebook by hand (precomputed table included).
    src = nearly.IndexIVFPQ(nearly.IndexFlatL2(16), 16, 8, 4, 6)
    src.cp.niter = src.pq.cp.niter = 3
    src.train(x)
    src.add(x)
    q3 = nearly.IndexFlatL2(16)
    q3.add(src.quantizer.reconstruct_n(0, 8))
    pq = nearly.IndexIVFPQ(q3, 16, 8, 4, 6)
    pq.pq.centroids = src.pq.centroids
    pq.is_trained = True
    assert pq.use_precomputed_table == src.use_precomputed_table == 1
    pq.add(x)
    src.nprobe = pq.nprobe = 3
    Ds, Is = src.search(xq, 5)
    Dp, Ip = pq.search(xq, 5)
    np.testing.assert_array_equal(Ip, Is)
    np.testing.assert_allclose(Dp, Ds, rtol=1e-5, atol=1e-5)
    # Indexes whose state only train() makes keep the flag as it is.
    flat = nearly.IndexFlatL2(16)
    flat.is_trained = True
    with pytest.raises(RuntimeError, match="cannot be set"):
        flat.is_trained = False


def test_searches_while_adding():
    index, x, xq = built()
    index.nprobe = 4
    errors = []

    def search():
        try:
            for _ in range(30):
                D, I = index.search(xq, 5)
                assert (I >= 0).all()
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=search) for _ in range(2)]
    for t in threads:
        t.start()
    for i in range(10):
        index.add(x[:100])
    for t in threads:
        t.join()
    assert not errors, errors
    assert index.ntotal == 4000 + 1000


def test_large_batch_is_sliced_consistently():
    # 2000 queries * nprobe 8 * k 1200 partial results: searched in slices
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 16)).astype(np.float32)
    xq = rng.standard_normal((2000, 16)).astype(np.float32)
    index = nearly.IndexIVFFlat(nearly.IndexFlatL2(16), 16, 8)
    index.train(x)
    index.add(x)
    index.nprobe = 8
    D, I = index.search(xq, 1200)
    for q in (0, 1500, 1999):
        D1, I1 = index.search(xq[q:q + 1], 1200)
        np.testing.assert_allclose(D[q], D1[0], atol=1e-3)
        assert (I[q] == I1[0]).mean() > 0.99
