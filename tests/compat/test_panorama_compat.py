"""Panorama against faiss-cpu: the same factory strings build the same
classes, searches give faiss's ids and distances, and one thread prunes
exactly as much as faiss does (the same levels, batches and bounds)."""
import numpy as np
import pytest

import nearly
from _testutil import METRIC_IP, METRIC_L2, assert_knn_equiv
from test_panorama import decaying

faiss = pytest.importorskip("faiss")
if not hasattr(faiss, "IndexFlatL2Panorama"):
    pytest.skip("this faiss-cpu has no Panorama", allow_module_level=True)


def search_one_thread_like_faiss(ours, theirs, xq, k=10):
    """Both searches on one thread: the same results, and the same number of
    level slices read (within 0.1%)."""
    nt_ours, nt_theirs = nearly.omp_get_max_threads(), faiss.omp_get_max_threads()
    nearly.omp_set_num_threads(1)
    faiss.omp_set_num_threads(1)
    try:
        nearly.cvar.indexPanorama_stats.reset()
        faiss.cvar.indexPanorama_stats.reset()
        Dn, In = ours.search(xq, k)
        Df, If = theirs.search(xq, k)
        s_ours, s_theirs = nearly.cvar.indexPanorama_stats, faiss.cvar.indexPanorama_stats
        assert s_ours.total_dims == s_theirs.total_dims
        assert abs(s_ours.total_dims_scanned - s_theirs.total_dims_scanned) <= 0.001 * s_theirs.total_dims_scanned
    finally:
        nearly.omp_set_num_threads(nt_ours)
        faiss.omp_set_num_threads(nt_theirs)
    assert_knn_equiv(Dn, In, Df, If, atol=1e-4)
    return Dn, In, Df, If


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP], ids=["L2", "IP"])
@pytest.mark.parametrize("n_levels,batch", [(4, 128), (8, 1024), (16, 16)])
def test_flat_panorama_like_faiss(metric, n_levels, batch):
    xb, xq = decaying(11, 6000, 64, nq=16)
    name = "L2" if metric == METRIC_L2 else "IP"
    ours = nearly.index_factory(64, f"Flat{name}Panorama{n_levels}_{batch}", metric)
    theirs = faiss.index_factory(64, f"Flat{name}Panorama{n_levels}_{batch}", metric)
    assert type(ours).__name__ == type(theirs).__name__ == f"IndexFlat{name}Panorama"
    ours.add(xb)
    theirs.add(xb)
    Dn, In, Df, If = search_one_thread_like_faiss(ours, theirs, xq)
    radius = float(np.median(Dn[:, -1]))
    ln, dn, i_n = ours.range_search(xq, radius)
    lf, df, i_f = theirs.range_search(xq, radius)
    np.testing.assert_array_equal(ln, lf)
    for q in range(len(xq)):
        assert set(i_n[ln[q]:ln[q + 1]]) == set(i_f[lf[q]:lf[q + 1]])


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP], ids=["L2", "IP"])
def test_refine_panorama_like_faiss(metric):
    xb, xq = decaying(12, 5000, 32)
    name = "L2" if metric == METRIC_L2 else "IP"
    key = f"IVF16,Flat,RefinePanorama(Flat{name}Panorama8_1)"
    ours, theirs = nearly.index_factory(32, key, metric), faiss.index_factory(32, key, metric)
    assert type(ours).__name__ == type(theirs).__name__ == "IndexRefinePanorama"
    for i in (ours, theirs):
        i.train(xb[:2000])
        i.add(xb)
    ours.base_index.nprobe = 4
    faiss.downcast_index(theirs.base_index).nprobe = 4
    Dn, In = ours.search(xq, 10, params=nearly.IndexRefineSearchParameters(k_factor=4))
    Df, If = theirs.search(xq, 10, params=faiss.IndexRefineSearchParameters(k_factor=4))
    # The coarse quantizers train apart (k-means seeds): most candidates agree.
    assert (In == If).mean() > 0.9
    common = In == If
    np.testing.assert_allclose(Dn[common], Df[common], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP], ids=["L2", "IP"])
@pytest.mark.parametrize("n_levels,batch", [(4, 128), (8, 1024), (16, 16)])
def test_ivf_flat_panorama_like_faiss(metric, n_levels, batch):
    """Same centroids (taken from faiss's training), the same lists, the
    same answer, and with one thread the same level slices read: nearly's
    lists lie in faiss's batches and each batch is filtered against the same
    k-th best."""
    xb, xq = decaying(12, 8000, 64, nq=16)
    theirs = faiss.index_factory(64, f"IVF32,FlatPanorama{n_levels}_{batch}", metric)
    theirs.train(xb)
    q = nearly.IndexFlat(64, metric)
    q.add(theirs.quantizer.reconstruct_n(0, 32))
    ours = nearly.IndexIVFFlatPanorama(q, 64, 32, n_levels, metric, True, batch)
    assert type(nearly.index_factory(64, f"IVF32,FlatPanorama{n_levels}_{batch}", metric)).__name__ == \
        type(theirs).__name__ == "IndexIVFFlatPanorama"
    ours.add(xb)
    theirs.add(xb)
    ours.nprobe = theirs.nprobe = 6
    Dn, In, Df, If = search_one_thread_like_faiss(ours, theirs, xq)
    radius = float(np.median(Df[:, -1]))
    ln, dn, i_n = ours.range_search(xq, radius)
    lf, df, i_f = theirs.range_search(xq, radius)
    np.testing.assert_array_equal(ln, lf)
    for q in range(len(xq)):
        a, b = ln[q], ln[q + 1]
        on, of = np.argsort(i_n[a:b]), np.argsort(i_f[a:b])
        np.testing.assert_array_equal(i_n[a:b][on], i_f[a:b][of])
        np.testing.assert_allclose(dn[a:b][on], df[a:b][of], rtol=1e-4, atol=1e-4)


def test_hnsw_flat_panorama_like_faiss():
    """The same class from faiss's factory strings, the same tail norms
    (faiss's cum_sums), and permute_entries renumbering as faiss does."""
    xb, xq = decaying(14, 3000, 48, nq=20)
    for key, levels in (("HNSW16_FlatPanorama", 8), ("HNSW16_FlatPanorama12", 12)):
        ours, theirs = nearly.index_factory(48, key), faiss.index_factory(48, key)
        assert type(ours).__name__ == type(theirs).__name__ == "IndexHNSWFlatPanorama"
        assert ours.num_panorama_levels == theirs.num_panorama_levels == levels
        assert ours.hnsw.nb_neighbors(0) == theirs.hnsw.nb_neighbors(0) == 32
        ours.add(xb)
        theirs.add(xb)
        assert ours.cum_sums.size() == theirs.cum_sums.size()
        np.testing.assert_allclose(nearly.vector_to_array(ours.cum_sums), faiss.vector_to_array(theirs.cum_sums),
                                   rtol=1e-5, atol=1e-6)
        perm = np.random.default_rng(1).permutation(3000)
        for index in (ours, theirs):
            D0, I0 = index.search(xq, 10)
            index.permute_entries(perm)
            D1, I1 = index.search(xq, 10)
            np.testing.assert_allclose(D1, D0, rtol=1e-5)
            np.testing.assert_array_equal(I1, np.argsort(perm)[I0])
        np.testing.assert_allclose(nearly.vector_to_array(ours.cum_sums), faiss.vector_to_array(theirs.cum_sums),
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("efSearch", [16, 64])
def test_hnsw_flat_panorama_recall_not_worse_than_faiss(efSearch):
    """On the real embeddings: recall@10 at least faiss's (its walk scores
    partial distances; ours walks on int8 copies and prunes the re-ranking),
    and where both return an id, the same distance."""
    from _hnswutil import exact_knn, real_data, recall

    xb, xq = real_data()
    xb = xb[:10000]
    gt = exact_knn(xq, xb, 10, METRIC_L2)
    res = {}
    for lib in (nearly, faiss):
        index = lib.IndexHNSWFlatPanorama(xb.shape[1], 32, 8)
        index.hnsw.efConstruction = 40
        index.add(xb)
        index.hnsw.efSearch = efSearch
        res[lib.__name__] = index.search(xq, 10)
    (Dn, In), (Df, If) = res["nearly"], res["faiss"]
    assert recall(In, gt) >= recall(If, gt) - 0.02, (recall(In, gt), recall(If, gt))
    for q in range(len(xq)):
        theirs = {int(i): d for i, d in zip(If[q], Df[q])}
        for i, d in zip(In[q], Dn[q]):
            if int(i) in theirs:
                np.testing.assert_allclose(d, theirs[int(i)], rtol=1e-4, atol=1e-5)
