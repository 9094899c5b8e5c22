"""GpuIndexMuvera (IndexMuvera end to end on the GPU) against the CPU IndexMuvera.

Scores may differ from the CPU's by float rounding (the Chamfer kernel and
the CPU's SIMD products add in different orders): 1e-4 on these unit-norm
token vectors (scores below 40). Ids are compared exactly where the CPU's
scores are separated by more than that.
"""
import numpy as np
import pytest

import nearly
from nearly import gpu

FLT_MAX = float(np.finfo(np.float32).max)
TOL = 1e-4


def random_sets(rng, n_sets, d, lo=1, hi=40):
    lengths = rng.integers(lo, hi + 1, size=n_sets).astype(np.int64)
    x = rng.standard_normal((int(lengths.sum()), d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, lengths


def config(d, **kw):
    kw.setdefault("num_repetitions", 4)
    kw.setdefault("num_simhash_projections", 3)
    return nearly.FDEConfig(d, seed=3, **kw)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    d = 32
    dx, dl = random_sets(rng, 300, d)
    qx, ql = random_sets(rng, 25, d)
    return d, dx, dl, qx, ql


def build(data, inner="Flat", **kw):
    d, dx, dl, _, _ = data
    index = nearly.IndexMuvera(d, config(d), inner=inner, **kw)
    if not index.is_trained:
        index.train(dx, dl)
    index.add(dx, dl)
    return index


def separated(D, tol=TOL):
    """Rows whose k scores (and the next one, column k) are all more than tol apart."""
    return np.all(-np.diff(D, axis=1) > tol, axis=1)


def assert_same_results(Dg, Ig, Dc, Ic, k):
    """GPU top-k == CPU top-k: scores within TOL; ids equal on rows without near ties.
    Dc, Ic may hold one more column (the CPU's k+1-th result), for the tie check."""
    np.testing.assert_allclose(Dg, Dc[:, :k], atol=TOL, rtol=0)
    ok = separated(Dc)
    assert ok.mean() > 0.8, "too many near ties to compare ids"
    np.testing.assert_array_equal(Ig[ok], Ic[ok, :k])


def exact_scores(data, I):
    """The CPU's exact Chamfer score of each returned document (-FLT_MAX for -1)."""
    d, dx, dl, qx, ql = data
    off = np.concatenate([[0], np.cumsum(dl)])
    qoff = np.concatenate([[0], np.cumsum(ql)])
    out = np.full(I.shape, -FLT_MAX, np.float32)
    for i in range(I.shape[0]):
        for j, doc in enumerate(I[i]):
            if doc >= 0:
                out[i, j] = nearly.chamfer_scores(qx[qoff[i]:qoff[i + 1]], dx[off[doc]:off[doc + 1]], [dl[doc]])[0]
    return out


@pytest.mark.parametrize("token_dtype", ["float32", "float16"])
@pytest.mark.parametrize("ball_carving", [False, True])
def test_gpu_muvera_exhaustive_matches_cpu(res, data, token_dtype, ball_carving):
    # k * k_factor >= ntotal: every document is a candidate on both sides, so
    # the results are the exact Chamfer top-k whatever the FDE scores.
    cpu = build(data, token_dtype=token_dtype, ball_carving=ball_carving)
    g = nearly.index_cpu_to_gpu(res, 0, cpu)
    assert isinstance(g, gpu.GpuIndexMuvera)
    assert (g.ntotal, g.d, g.n_vectors, g.token_dtype, g.fde_dim) == (cpu.ntotal, cpu.d, cpu.n_vectors,
                                                                     token_dtype, cpu.fde_dim)
    _, _, _, qx, ql = data
    k = 10
    Dg, Ig = g.search(qx, ql, k, k_factor=31)
    assert Dg.dtype == np.float32 and Ig.dtype == np.int64 and Dg.shape == (len(ql), k)
    Dc, Ic = cpu.search(qx, ql, k + 1, k_factor=30)
    assert_same_results(Dg, Ig, Dc, Ic, k)


@pytest.mark.parametrize("k_factor", [1, 3, 10])
def test_gpu_muvera_flat_candidates(res, data, k_factor):
    # Fewer candidates than documents: the GPU Flat inner index finds the CPU's
    # candidates unless two FDE scores tie at the cut, so nearly every row is
    # the CPU's, and every returned score is the exact Chamfer score.
    cpu = build(data)
    g = nearly.index_cpu_to_gpu(res, 0, cpu)
    _, _, _, qx, ql = data
    Dg, Ig = g.search(qx, ql, 10, k_factor=k_factor)
    Dc, Ic = cpu.search(qx, ql, 10, k_factor=k_factor)
    same = np.all(Ig == Ic, axis=1)
    assert same.mean() >= 0.9
    np.testing.assert_allclose(Dg[same], Dc[same], atol=TOL, rtol=0)
    np.testing.assert_allclose(Dg, exact_scores(data, Ig), atol=TOL, rtol=0)
    assert np.all(np.diff(Dg, axis=1) <= 0)


def test_gpu_muvera_default_k_factor_and_caller_ids(res, data):
    d, dx, dl, qx, ql = data
    cpu = nearly.IndexMuvera(d, config(d), inner="Flat", k_factor=40)
    cpu.add_with_ids(dx, dl, 1000 + 7 * np.arange(len(dl)))
    g = gpu.GpuIndexMuvera(res, cpu)
    assert g.k_factor == 40
    Dg, Ig = g.search(qx, ql, 8)
    Dc, Ic = cpu.search(qx, ql, 9)
    assert_same_results(Dg, Ig, Dc, Ic, 8)
    assert np.all((Ig - 1000) % 7 == 0)


def test_gpu_muvera_after_remove_ids(res, data):
    # Removal compacts the store and the inner index's id map: labels still
    # reach the right documents.
    cpu = build(data)
    cpu.remove_ids(np.arange(0, 300, 3))
    g = nearly.index_cpu_to_gpu(res, 0, cpu)
    _, _, _, qx, ql = data
    Dg, Ig = g.search(qx, ql, 10, k_factor=20)
    Dc, Ic = cpu.search(qx, ql, 11, k_factor=20)
    assert_same_results(Dg, Ig, Dc, Ic, 10)
    assert not np.any(Ig % 3 == 0)


def test_gpu_muvera_k_beyond_ntotal_pads(res, data):
    d, dx, dl, qx, ql = data
    off = np.concatenate([[0], np.cumsum(dl)])
    cpu = nearly.IndexMuvera(d, config(d), inner="Flat")
    cpu.add(dx[:off[5]], dl[:5])
    g = nearly.index_cpu_to_gpu(res, 0, cpu)
    Dg, Ig = g.search(qx, ql, 8, k_factor=2)
    Dc, Ic = cpu.search(qx, ql, 8, k_factor=2)
    assert np.all(Ig[:, 5:] == -1) and np.all(Dg[:, 5:] == -FLT_MAX)
    np.testing.assert_allclose(Dg[:, :5], Dc[:, :5], atol=TOL, rtol=0)
    assert np.all(np.sort(Ig[:, :5], axis=1) == np.arange(5))


@pytest.mark.parametrize("inner", ["Flat", "HNSW32"])
def test_gpu_muvera_empty_index(res, data, inner):
    d, _, _, qx, ql = data
    cpu = nearly.IndexMuvera(d, config(d), inner=inner)
    g = nearly.index_cpu_to_gpu(res, 0, cpu)
    assert g.ntotal == 0
    D, I = g.search(qx, ql, 4)
    assert np.all(I == -1) and np.all(D == -FLT_MAX)
    D, I = g.search(np.zeros((0, d), np.float32), np.zeros(0, np.int64), 4)
    assert D.shape == (0, 4) and I.shape == (0, 4)


def test_gpu_muvera_hnsw_inner(res, data):
    cpu = build(data, inner="HNSW32")
    g = nearly.index_cpu_to_gpu(res, 0, cpu)
    assert isinstance(g.inner_index, gpu.GpuIndexHNSW)
    d, dx, dl, qx, ql = data
    params = nearly.SearchParametersHNSW(efSearch=128)
    Dg, Ig = g.search(qx, ql, 10, k_factor=10, params=params)
    np.testing.assert_allclose(Dg, exact_scores(data, Ig), atol=TOL, rtol=0)
    exact = nearly.IndexMultiVectorFlat(d)
    exact.add(dx, dl)
    _, gt = exact.search(qx, ql, 10)
    _, Ic = cpu.search(qx, ql, 10, k_factor=10, params=params)
    recall = lambda I: np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I, gt)])  # noqa: E731
    assert recall(Ig) >= recall(Ic) - 0.05
    with pytest.raises(ValueError, match="256"):
        g.search(qx, ql, 10, k_factor=30)  # the GPU graph search returns at most 256


def test_gpu_muvera_ivf_inner(res, data):
    cpu = build(data, inner="IVF8,Flat")
    g = nearly.index_cpu_to_gpu(res, 0, cpu)
    _, _, _, qx, ql = data
    params = nearly.SearchParametersIVF(nprobe=8)  # every list: exact FDE candidates
    Dg, Ig = g.search(qx, ql, 10, k_factor=31, params=params)
    Dc, Ic = cpu.search(qx, ql, 11, k_factor=30, params=params)
    assert_same_results(Dg, Ig, Dc, Ic, 10)


def test_gpu_muvera_inner_without_gpu_copy(res, data):
    cpu = build(data, inner="HNSW32,SQ8")
    with pytest.raises(RuntimeError, match="cannot be copied to the GPU"):
        nearly.index_cpu_to_gpu(res, 0, cpu)


def test_gpu_muvera_device_arrays(res, data, cupy):
    cpu = build(data)
    g = nearly.index_cpu_to_gpu(res, 0, cpu)
    _, _, _, qx, ql = data
    D, I = g.search(qx, ql, 10, k_factor=5)
    Dd, Id = g.search(cupy.asarray(qx), ql, 10, k_factor=5)
    assert isinstance(Dd, cupy.ndarray) and isinstance(Id, cupy.ndarray)
    np.testing.assert_array_equal(cupy.asnumpy(Dd), D)
    np.testing.assert_array_equal(cupy.asnumpy(Id), I)
    Dd, Id = g.search(cupy.asarray(qx), cupy.asarray(ql), 10, k_factor=5)
    np.testing.assert_array_equal(cupy.asnumpy(Id), I)


def test_gpu_muvera_many_queries_in_batches(res):
    # fde_dim 10240 puts about 6,400 queries in a batch (256 MB of scratch): 7,000 take two.
    rng = np.random.default_rng(3)
    d = 8
    dx, dl = random_sets(rng, 50, d, 1, 6)
    qx, ql = random_sets(rng, 7000, d, 1, 4)
    cfg = nearly.FDEConfig(d, num_repetitions=20, num_simhash_projections=5, seed=1,
                           projection_type="ams_sketch", projection_dimension=16)
    cpu = nearly.IndexMuvera(d, cfg, inner="Flat")
    cpu.add(dx, dl)
    g = nearly.index_cpu_to_gpu(res, 0, cpu)
    Dg, Ig = g.search(qx, ql, 5, k_factor=10)  # 50 candidates: every document
    Dc, Ic = cpu.search(qx, ql, 6, k_factor=10)
    assert_same_results(Dg, Ig, Dc, Ic, 5)


def test_gpu_muvera_round_trip_and_read_only(res, data):
    cpu = build(data, token_dtype="float16")
    g = nearly.index_cpu_to_gpu(res, 0, cpu)
    back = nearly.index_gpu_to_cpu(g)
    assert isinstance(back, nearly.IndexMuvera)
    assert back.serialize() == cpu.serialize()
    _, dx, dl, qx, ql = data
    np.testing.assert_array_equal(back.search(qx, ql, 5)[1], cpu.search(qx, ql, 5)[1])
    for call in (lambda: g.add(dx, dl), lambda: g.add_with_ids(dx, dl, np.arange(len(dl))),
                 lambda: g.remove_ids(np.arange(3)), lambda: g.reset(), lambda: g.train(dx, dl)):
        with pytest.raises(RuntimeError, match="read-only"):
            call()
    assert "GpuIndexMuvera" in repr(g)


def test_gpu_muvera_bad_input(res, data, cupy):
    cpu = build(data)
    g = nearly.index_cpu_to_gpu(res, 0, cpu)
    d, _, _, qx, ql = data
    for bad_k in (0, -1, 2.5, True):
        with pytest.raises(ValueError):
            g.search(qx, ql, bad_k)
    for bad_kf in (0, 1.5, "3"):
        with pytest.raises(ValueError):
            g.search(qx, ql, 10, k_factor=bad_kf)
    with pytest.raises(ValueError, match="2048"):
        g.search(qx, ql, 100, k_factor=21)
    with pytest.raises(ValueError):
        g.search(qx[:, :d - 1], ql, 10)
    with pytest.raises(ValueError):
        g.search(qx, ql + 1, 10)
    with pytest.raises(ValueError):
        g.search(cupy.asarray(qx), ql + 1, 10)
    bad = qx.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError):
        g.search(bad, ql, 10)
    with pytest.raises(ValueError):
        g.search(cupy.asarray(bad), ql, 10)
    with pytest.raises(RuntimeError, match="IDSelector"):
        g.search(qx, ql, 10, params=nearly.SearchParameters(sel=nearly.IDSelectorRange(0, 10)))
    with pytest.raises(ValueError):
        g.search(qx, ql, 10, params="efSearch=16")
    with pytest.raises(RuntimeError):
        gpu.GpuIndexMuvera(res, nearly.IndexFlatIP(d))
    untrained = nearly.IndexMuvera(d, config(d), inner="IVF8,Flat")
    with pytest.raises(RuntimeError, match="not trained"):
        nearly.index_cpu_to_gpu(res, 0, untrained)


# ---- what runs without a GPU -------------------------------------------------

@pytest.mark.no_gpu
def test_candidate_count_checks():
    assert gpu._muvera_candidates(10, 5, 2048) == 50
    assert gpu._muvera_candidates(1, 2048, 2048) == 2048
    with pytest.raises(ValueError, match="2049 candidates"):
        gpu._muvera_candidates(1, 2049, 2048)
    with pytest.raises(ValueError, match="at most 256"):
        gpu._muvera_candidates(10, 30, 256)
    for bad in (0, -3, 1.5, True, "2"):
        with pytest.raises(ValueError):
            gpu._muvera_candidates(10, bad, 2048)


@pytest.mark.no_gpu
def test_vector_sets_host_checks():
    rng = np.random.default_rng(0)
    x, n = random_sets(rng, 4, 6)
    ptr, nv, d, lengths, keep = gpu._vector_sets(x, n, None, "q")
    assert (nv, d) == (len(x), 6) and lengths.dtype == np.int64 and keep.flags.c_contiguous
    ptr, nv, d, lengths, keep = gpu._vector_sets([x[:2], x[2:5]], None, 6, "q")
    assert nv == 5 and list(lengths) == [2, 3]
    with pytest.raises(ValueError):
        gpu._vector_sets(x, n + 1, 6, "q")
    with pytest.raises(ValueError):
        gpu._vector_sets(x, n, 5, "q")
    with pytest.raises(ValueError):
        gpu._vector_sets(x[:, 0], [len(x)], None, "q")


@pytest.mark.no_gpu
@pytest.mark.skipif(nearly.get_num_gpus() > 0, reason="a GPU is present")
def test_gpu_muvera_without_a_device_raises_runtime_error():
    with pytest.raises(RuntimeError, match="GPU|CUDA"):
        gpu.GpuIndexMuvera(None, nearly.IndexMuvera(8, config(8), inner="Flat"))
    with pytest.raises(RuntimeError, match="GPU|CUDA"):
        gpu.chamfer_scores_batch(None, np.ones((1, 8), np.float32), [1], np.ones((1, 8), np.float32), [1])
