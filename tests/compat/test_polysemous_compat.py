"""Polysemous codes against faiss-cpu: the same names, constants and
defaults; on the real embeddings, the same Hamming filter strength (the
fraction of codes that pass a threshold) and the same recall at each
threshold, for IndexPQ and IndexIVFPQ; faiss's factory and ParameterSpace
rules."""
import numpy as np
import pytest

import nearly
from _hnswutil import real_data
from _testutil import METRIC_L2, brute_force

faiss = pytest.importorskip("faiss")

M = 16


def recall(I, gt):
    return np.mean([len(set(a[a >= 0]) & set(b)) / gt.shape[1] for a, b in zip(I, gt)])


def test_names_constants_and_defaults_like_faiss():
    for name in ("ST_PQ", "ST_HE", "ST_generalized_HE", "ST_SDC", "ST_polysemous", "ST_polysemous_generalize"):
        assert getattr(nearly.IndexPQ, name) == getattr(faiss.IndexPQ, name), name
    for name in ("OT_None", "OT_ReproduceDistances_affine", "OT_Ranking_weighted_diff"):
        assert getattr(nearly.PolysemousTraining, name) == getattr(faiss.PolysemousTraining, name), name
    ours, theirs = nearly.PolysemousTraining(), faiss.PolysemousTraining()
    for name in ("init_temperature", "temperature_decay", "n_iter", "n_redo", "seed", "verbose", "only_bit_flips",
                 "init_random", "optimization_type", "ntrain_permutation", "dis_weight_factor", "max_memory"):
        assert getattr(ours, name) == pytest.approx(getattr(theirs, name), rel=1e-12), name
    for lib in (nearly, faiss):
        index = lib.IndexPQ(64, 8, 8)
        assert (index.polysemous_ht, index.search_type, index.do_polysemous_training) == (65, lib.IndexPQ.ST_PQ, False)
        ivf = lib.IndexIVFPQ(lib.IndexFlatL2(64), 64, 16, 8, 8)
        assert (ivf.polysemous_ht, ivf.do_polysemous_training) == (0, False)
        p = lib.SearchParametersPQ()
        assert (p.search_type, p.polysemous_ht) == (lib.IndexPQ.ST_PQ, 0)
        p = lib.IVFPQSearchParameters()
        assert p.polysemous_ht == 0


@pytest.mark.parametrize("desc", ["PQ8", "PQ8np", "PQ8x6", "IVF16,PQ8", "IVF16,PQ8np", "IVF16_HNSW8,PQ8x10"])
def test_factory_polysemous_training_like_faiss(desc):
    assert nearly.index_factory(64, desc).do_polysemous_training == \
        faiss.downcast_index(faiss.index_factory(64, desc)).do_polysemous_training


@pytest.fixture(scope="module")
def trained():
    """nearly's and faiss's polysemous indexes over the same vectors (20,000
    real embeddings, each library's own training, a tenth of faiss's default
    annealing steps), with the exact top-10 of 200 queries."""
    x, xq = real_data()
    xb = np.ascontiguousarray(x[:20000])
    gt = brute_force(xq, xb, 10, METRIC_L2)[1]
    out = {}
    for lib in (nearly, faiss):
        pq = lib.IndexPQ(xb.shape[1], M, 8)
        pq.do_polysemous_training = True
        pq.polysemous_training.n_iter = 50000
        pq.polysemous_training.n_redo = 1
        pq.pq.cp.niter = 10
        pq.train(xb)
        pq.add(xb)
        ivf = lib.IndexIVFPQ(lib.IndexFlatL2(xb.shape[1]), xb.shape[1], 64, M, 8)
        ivf.do_polysemous_training = True
        pt = lib.PolysemousTraining()
        pt.n_iter = 50000
        pt.n_redo = 1
        ivf.polysemous_training = pt
        ivf.cp.niter = 10
        ivf.pq.cp.niter = 10
        ivf.train(xb)
        ivf.add(xb)
        ivf.nprobe = 8
        out[lib] = (pq, ivf, pt)
    return out, xq, gt


@pytest.mark.parametrize("ht", [40, 48, 56, 64])
def test_pq_filter_strength_and_recall_like_faiss(trained, ht):
    out, xq, gt = trained
    got = {}
    for lib, (index, _, _) in out.items():
        index.search_type = lib.IndexPQ.ST_polysemous
        index.polysemous_ht = ht
        stats = lib.cvar.indexPQ_stats
        stats.reset()
        _, I = index.search(xq, 10)
        got[lib] = (recall(I, gt), stats.n_hamming_pass / stats.ncode)
        index.search_type = lib.IndexPQ.ST_PQ
    (r_n, p_n), (r_f, p_f) = got[nearly], got[faiss]
    assert p_n == pytest.approx(p_f, rel=0.15, abs=1e-4), got
    assert r_n >= r_f - 0.025, got


@pytest.mark.parametrize("ht", [44, 52, 60])
def test_ivfpq_recall_at_each_threshold_like_faiss(trained, ht):
    out, xq, gt = trained
    got = {}
    for lib, (_, ivf, _) in out.items():
        ivf.polysemous_ht = ht
        t0 = recall(ivf.search(xq, 10)[1], gt)
        ivf.polysemous_ht = 0
        got[lib] = (t0, recall(ivf.search(xq, 10)[1], gt))
    (r_n, full_n), (r_f, full_f) = got[nearly], got[faiss]
    assert abs(full_n - full_f) < 0.03, got
    # the filter costs both libraries the same share of their recall
    assert r_n / full_n >= r_f / full_f - 0.04, got


def test_parameter_space_sets_what_faiss_sets(trained):
    out, _, _ = trained
    for ht in (30, 64, 128, 200):
        for lib, (index, ivf, _) in out.items():
            ps = lib.ParameterSpace()
            ps.set_index_parameter(index, "ht", ht)
            ps.set_index_parameter(ivf, "ht", ht)
        (n_pq, n_ivf, _), (f_pq, f_ivf, _) = out[nearly], out[faiss]
        assert (n_pq.search_type, n_ivf.polysemous_ht) == (f_pq.search_type, f_ivf.polysemous_ht), ht
        if ht < 128:
            assert n_pq.polysemous_ht == f_pq.polysemous_ht == ht
    for lib, (index, ivf, _) in out.items():
        index.search_type = lib.IndexPQ.ST_PQ
        ivf.polysemous_ht = 0
