"""faiss's IVFlib helpers search_centroid and search_and_return_centroids
against faiss-cpu (the same lists, ids and distances on the real
embeddings, behind a pre-transform too); bad input."""
import numpy as np
import pytest

import nearly
from _hnswutil import real_data

faiss = pytest.importorskip("faiss")


@pytest.mark.parametrize("key", ["IVF32,Flat", "PCA64,IVF32,SQ8"])
def test_like_faiss(key):
    base, queries = real_data()
    xb, xq = np.ascontiguousarray(base[:4000]), np.ascontiguousarray(queries[:40])
    out = []
    for lib in (nearly, faiss):
        index = lib.index_factory(xb.shape[1], key)
        index.train(xb)
        index.add(xb)
        lib.extract_index_ivf(index).nprobe = 4
        sp, n, k = lib.swig_ptr, len(xq), 7
        cent = np.empty(n, np.int64)
        lib.search_centroid(index, sp(xq), n, sp(cent))
        D, I = np.empty((n, k), np.float32), np.empty((n, k), np.int64)
        qc, rc = np.empty(n, np.int64), np.empty((n, k), np.int64)
        lib.search_and_return_centroids(index, n, sp(xq), k, sp(D), sp(I), sp(qc), sp(rc))
        out.append((cent, D, I, qc, rc, index.search(xq, k)))
    (cent, D, I, qc, rc, ref), (cf, Df, If, qcf, rcf, _) = out
    np.testing.assert_array_equal(cent, cf)
    np.testing.assert_array_equal(qc, qcf)
    np.testing.assert_array_equal(qc, cent)
    np.testing.assert_array_equal(I, If)
    np.testing.assert_array_equal(rc, rcf)
    np.testing.assert_allclose(D, Df, rtol=5e-3, atol=1e-4)  # PCA + SQ8: ranges differ by roundoff
    np.testing.assert_array_equal(I, ref[1])  # the index's own search


def test_missing_results_and_bad_input():
    rs = np.random.RandomState(0)
    xb = rs.rand(300, 8).astype(np.float32)
    index = nearly.index_factory(8, "IVF4,Flat")
    index.train(xb)
    index.add(xb[:3])  # fewer vectors than k
    D, I = np.empty((2, 5), np.float32), np.empty((2, 5), np.int64)
    rc = np.empty((2, 5), np.int64)
    index.nprobe = 4
    nearly.search_and_return_centroids(index, 2, xb[:2], 5, D, I, None, rc)
    assert ((I == -1) == (rc == -1)).all() and (I[:, 3:] == -1).all()
    with pytest.raises(ValueError, match="values needed"):
        nearly.search_centroid(index, xb, 301, np.empty(301, np.int64))
    with pytest.raises(TypeError, match="int64"):
        nearly.search_centroid(index, xb, 2, np.empty(2, np.int32))
    with pytest.raises(RuntimeError, match="IVF"):
        nearly.search_centroid(nearly.IndexFlatL2(8), xb, 2, np.empty(2, np.int64))
