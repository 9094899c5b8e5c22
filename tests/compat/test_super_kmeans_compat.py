"""SuperKMeans beside faiss-cpu's on the real embeddings: the same
thresholds, the same starting centroids (faiss's draws), a final objective
within a percent of faiss's and of plain k-means, comparable pruning."""
import numpy as np
import pytest

import nearly
from _hnswutil import real_data

faiss = pytest.importorskip("faiss")
if not hasattr(faiss, "SuperKMeans"):
    pytest.skip("this faiss has no SuperKMeans", allow_module_level=True)


def test_thresholds_equal_faiss():
    for d, eps in ((384, 1.0 / 384), (128, 0.01), (768, 1.0 / 768)):
        f = faiss.precompute_ad_thresholds(d, eps)
        f = np.array([f.at(i) for i in range(f.size())])
        n = np.array(nearly.precompute_ad_thresholds(d, eps))
        np.testing.assert_allclose(n[1:], f[1:], rtol=2e-5)


def test_training_like_faiss():
    base, _ = real_data()
    x = np.ascontiguousarray(base[:20000])
    d, k = x.shape[1], 256
    out = {}
    for lib in (faiss, nearly):
        km = lib.SuperKmeans(d, k, niter=10, seed=7)
        km.train(x)
        out[lib.__name__] = km
    plain = nearly.Kmeans(d, k, niter=10, seed=7)
    plain.train(x)
    fo, no = out["faiss"].obj[-1], out["nearly"].obj[-1]
    assert abs(no - fo) / fo < 0.01
    assert abs(no - plain.obj[-1]) / plain.obj[-1] < 0.01
    # iteration 0 is exact on both sides and starts from faiss's draws
    assert abs(out["nearly"].obj[0] - out["faiss"].obj[0]) / out["faiss"].obj[0] < 1e-3
    fr, nr = out["faiss"].gemm_pruning_rates, out["nearly"].gemm_pruning_rates
    assert fr[0] == nr[0] == 0
    # the same test on the same data: the same pruning, iteration by iteration
    assert nr[-1] > 0.85
    np.testing.assert_allclose(nr[1:], fr[1:], atol=0.05)
