"""faiss's auto-tuning against faiss-cpu: the parameter ranges an index gets,
combination numbers and names, the criteria's scores, the Pareto bookkeeping
of OperatingPoints (deterministic: equal to faiss's point for point) and
explore() on real data (the same accuracy at every combination, the same
order of experiments)."""
import numpy as np
import pytest

import nearly
from _hnswutil import real_data

faiss = pytest.importorskip("faiss")


def swig_list(v):
    return [v.at(i) for i in range(v.size())] if hasattr(v, "size") else list(v)


def ranges(lib, ps):
    return [(pr.name, swig_list(pr.values)) for pr in swig_list(ps.parameter_ranges)]


@pytest.mark.parametrize("desc", ["HNSW32", "IVF256,PQ16x4fs", "HNSW32,PQ16", "IVF64,SQ8", "Flat",
                                  "OPQ16,IVF64_HNSW16,PQ16,RFlat", "IVF64_HNSW16,Flat", "PCA32,IVF64,Flat", "PQ16"])
def test_ranges_like_faiss(desc):
    got = {}
    for lib in (faiss, nearly):
        ps = lib.ParameterSpace()
        ps.initialize(lib.index_factory(64, desc))
        got[lib.__name__] = ranges(lib, ps)
    assert got["nearly"] == got["faiss"]


def test_combinations_set_what_faiss_sets():
    x = np.random.default_rng(0).standard_normal((3000, 64)).astype(np.float32)
    idx, ps = {}, {}
    for lib in (faiss, nearly):
        idx[lib] = lib.index_factory(64, "IVF64_HNSW16,Flat,RFlat")
        idx[lib].train(x)
        ps[lib] = lib.ParameterSpace()
        ps[lib].initialize(idx[lib])
    n = ps[nearly].n_combinations()
    assert n == ps[faiss].n_combinations() == 7 * 6 * 8
    for cno in (0, 1, 41, 200, n - 1):
        assert ps[nearly].combination_name(cno) == ps[faiss].combination_name(cno)
        for lib in (faiss, nearly):
            ps[lib].set_index_parameters(idx[lib], cno)
        ivf = {lib: lib.extract_index_ivf(idx[lib]) for lib in (faiss, nearly)}
        assert ivf[nearly].nprobe == ivf[faiss].nprobe
        assert idx[nearly].k_factor == idx[faiss].k_factor
        assert ivf[nearly].quantizer.hnsw.efSearch == faiss.downcast_index(ivf[faiss].quantizer).hnsw.efSearch
    for c1, c2 in ((5, 3), (3, 5), (200, 41), (n - 1, 0), (0, n - 1)):
        assert ps[nearly].combination_ge(c1, c2) == ps[faiss].combination_ge(c1, c2)
    with pytest.raises(ValueError):
        ps[nearly].set_index_parameters(idx[nearly], n)
    with pytest.raises(RuntimeError):
        ps[nearly].set_index_parameters(idx[nearly], "nprobe")


def test_criteria_score_like_faiss():
    rng = np.random.default_rng(1)
    nq, k = 50, 10
    gt = rng.integers(0, 40, (nq, 20)).astype(np.int64)
    I = rng.integers(-1, 40, (nq, k)).astype(np.int64)
    I[::3, 0] = gt[::3, 0]  # some exact hits
    D = np.zeros((nq, k), np.float32)
    for name, R in (("OneRecallAtRCriterion", 1), ("OneRecallAtRCriterion", 10), ("IntersectionCriterion", 10),
                    ("IntersectionCriterion", 5)):
        scores = []
        for lib in (faiss, nearly):
            crit = getattr(lib, name)(nq, R)
            crit.set_groundtruth(None, gt)
            Dr, Ir = D[:, :R].copy(), np.ascontiguousarray(I[:, :R])
            # faiss's subclasses keep the raw SWIG evaluate (pointers)
            args = (faiss.swig_ptr(Dr), faiss.swig_ptr(Ir)) if lib is faiss else (Dr, Ir)
            scores.append(crit.evaluate(*args))
        assert scores[0] == pytest.approx(scores[1], abs=1e-12), (name, R, scores)
    crit = nearly.IntersectionCriterion(nq, 10)
    with pytest.raises(RuntimeError, match="ground truth"):
        crit.evaluate(D, I)
    crit.set_groundtruth(None, gt[:, :5])
    with pytest.raises(RuntimeError, match="ground truth"):  # fewer than R true neighbours
        crit.evaluate(D, I)
    with pytest.raises(ValueError):
        crit.set_groundtruth(None, gt[:10])


def test_operating_points_keep_faiss_pareto_front():
    rng = np.random.default_rng(2)
    ops = {lib: lib.OperatingPoints() for lib in (faiss, nearly)}
    for i in range(300):
        perf = float(rng.integers(0, 40)) / 40  # ties on perf and t, as real sweeps have
        t = float(rng.integers(1, 60)) / 10
        kept = [ops[lib].add(perf, t, f"k{i}", i) for lib in (faiss, nearly)]
        assert kept[0] == kept[1], i
    opt = {lib: [(p.perf, p.t, p.cno) for p in swig_list(o.optimal_pts)] for lib, o in ops.items()}
    assert opt[nearly] == opt[faiss]
    for perf in (0.0, 0.3, 0.77, 0.975, 1.0):
        assert ops[nearly].t_for_perf(perf) == ops[faiss].t_for_perf(perf)
    merged = {lib: lib.OperatingPoints() for lib in (faiss, nearly)}
    n_added = {lib: merged[lib].merge_with(ops[lib], "x.") for lib in (faiss, nearly)}
    assert n_added[nearly] == n_added[faiss]
    assert [p.key for p in merged[nearly].optimal_pts[1:]] == ["x." + p.key for p in ops[nearly].optimal_pts[1:]]


@pytest.fixture(scope="module")
def ivf_pair():
    xb, xq = real_data()
    xb, xq = xb[:20_000], xq[:100]
    ref = nearly.IndexFlatL2(xb.shape[1])
    ref.add(xb)
    gt = ref.search(xq, 10)[1]
    out = {}
    for lib in (faiss, nearly):
        index = lib.index_factory(xb.shape[1], "IVF256,Flat")
        index.train(xb)
        index.add(xb)
        out[lib] = index
    return out, xq, gt


def test_explore_every_combination_measures_faiss_accuracy(ivf_pair):
    idx, xq, gt = ivf_pair
    perfs = {}
    for lib in (faiss, nearly):
        ps = lib.ParameterSpace()
        ps.initialize(idx[lib])
        ps.n_experiments = 0  # every combination, in order
        ps.verbose = 0
        crit = lib.IntersectionCriterion(len(xq), 10)
        crit.set_groundtruth(None, gt)
        ops = ps.explore(idx[lib], xq, crit)
        perfs[lib] = [(p.cno, p.key, round(p.perf, 6)) for p in swig_list(ops.all_pts)]
    assert perfs[nearly] == perfs[faiss]  # the same clusters: the same recall at every nprobe
    assert [p[2] for p in perfs[nearly]] == sorted(p[2] for p in perfs[nearly])


def test_explore_order_bounds_and_front(ivf_pair, capsys):
    idx, xq, gt = ivf_pair
    index = idx[nearly]
    ps = nearly.ParameterSpace()
    ps.initialize(index)
    crit = nearly.OneRecallAtRCriterion(len(xq), 1)
    crit.set_groundtruth(None, gt)
    ops = ps.explore(index, xq, crit)
    out = capsys.readouterr().out
    assert "0/8: cno=0 nprobe=1" in out and "1/8: cno=7 nprobe=128" in out  # faiss's first two experiments
    measured = [p.cno for p in ops.all_pts]
    assert measured[:2] == [0, 7] and len(set(measured)) == len(measured)
    perm = np.empty(6, dtype=np.intc)
    nearly._nearly._rand_perm(perm, 1234)
    order = [0, 7] + (perm + 1).tolist()  # faiss::rand_perm(seed 1234) after the two ends
    assert measured == [c for c in order if c in measured]
    front = ops.optimal_pts
    assert front[0].cno == -1 and all(a.perf < b.perf and a.t < b.t for a, b in zip(front, front[1:]))
    # the best point it found is what the full sweep's accuracy says
    assert front[-1].perf == 1.0 or front[-1].key == "nprobe=128"
    with pytest.raises(ValueError):
        ps.explore(index, xq[:10], crit)


def test_criterion_ground_truth_fields_like_faiss():
    rng = np.random.default_rng(4)
    gt_I = rng.integers(0, 100, (10, 5)).astype(np.int64)
    gt_D = rng.random((10, 5), dtype=np.float32)
    for D in (gt_D, None):
        ours, theirs = nearly.OneRecallAtRCriterion(10, 5), faiss.OneRecallAtRCriterion(10, 5)
        ours.set_groundtruth(D, gt_I)
        theirs.set_groundtruth(D, gt_I)
        assert ours.gt_nnn == theirs.gt_nnn == 5
        assert ours.gt_I.size() == theirs.gt_I.size() == 50
        assert ours.gt_D.size() == theirs.gt_D.size()
        np.testing.assert_array_equal(nearly.vector_to_array(ours.gt_I), faiss.vector_to_array(theirs.gt_I))
        if D is not None:
            np.testing.assert_array_equal(nearly.vector_to_array(ours.gt_D), faiss.vector_to_array(theirs.gt_D))
