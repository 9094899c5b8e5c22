"""GPU beam search over an IndexHNSWFlat's base layer against the CPU search
of the same graph: same recall (within a point) on clustered data."""
import numpy as np
import pytest

import nearly
from _testutil import brute_force, clustered, recall_at as recall


@pytest.fixture(scope="module")
def graph():
    rng = np.random.default_rng(5)
    xb = clustered(rng, 20000, 48, nclusters=100, scale=2.0, spread=0.5)
    xq = clustered(rng, 500, 48, nclusters=100, scale=2.0, spread=0.5)
    cpu = nearly.IndexHNSWFlat(48, 16)
    cpu.hnsw.efConstruction = 100
    cpu.add(xb)
    _, gt = brute_force(xq, xb, 10, nearly.METRIC_L2)  # once: a second or so, against milliseconds of search
    return cpu, xb, xq, gt


@pytest.mark.parametrize("width", [1, 4])
@pytest.mark.parametrize("merge", [False, True])
@pytest.mark.parametrize("ef", [32, 64, 128])
def test_gpu_hnsw_recall_matches_cpu(res, graph, ef, merge, width):
    cpu, xb, xq, gt = graph
    gpu = nearly.index_cpu_to_gpu(res, 0, cpu)
    gpu.search_merge = merge
    gpu.search_width = width  # 4: other kernel instantiations (4 x 32 new candidates a step)
    assert gpu.ntotal == cpu.ntotal and gpu.degree == 32
    cpu.hnsw.efSearch = ef
    gpu.efSearch = ef
    rc = recall(cpu.search(xq, 10)[1], gt, 10)
    Dg, Ig = gpu.search(xq, 10)
    rg = recall(Ig, gt, 10)
    assert rg >= rc - 0.01, (ef, rg, rc)
    # returned distances are the true distances of the returned ids, ascending
    true = ((xq[:, None, :] - xb[Ig]) ** 2).sum(-1)
    np.testing.assert_allclose(Dg, true, rtol=1e-4, atol=1e-3)
    assert (np.diff(Dg, axis=1) >= -1e-4).all()
    for row in Ig:
        assert len(set(row.tolist())) == 10


@pytest.mark.parametrize("width", [1, 2])
def test_gpu_hnsw_long_beam(res, graph, width):
    # efSearch 257..512: the merging kernel alone (the re-sorting one stops at 256)
    cpu, xb, xq, gt = graph
    gpu = nearly.index_cpu_to_gpu(res, 0, cpu)
    assert gpu.search_merge  # the default
    gpu.search_width = width
    for ef in (384, 512):  # lists of 384 (not a power of two) and 512
        cpu.hnsw.efSearch = gpu.efSearch = ef
        rc = recall(cpu.search(xq, 10)[1], gt, 10)
        Dg, Ig = gpu.search(xq, 10)
        assert recall(Ig, gt, 10) >= rc - 0.01
        true = ((xq[:, None, :] - xb[Ig]) ** 2).sum(-1)
        np.testing.assert_allclose(Dg, true, rtol=1e-4, atol=1e-3)
    gpu.efSearch = 300
    gpu.search_merge = False
    with pytest.raises(ValueError, match="search_merge"):
        gpu.search(xq[:5], 10)
    gpu.search_merge = True
    gpu.efSearch = 513
    with pytest.raises(ValueError, match="512"):
        gpu.search(xq[:5], 10)


def test_gpu_hnsw_ids_params_and_devices(res, graph, cupy):
    cpu, xb, xq, _ = graph
    idx = nearly.IndexHNSWFlat(48, 16, nearly.METRIC_INNER_PRODUCT)
    idmap = np.arange(len(xb), dtype=np.int64) * 7 + 3
    idx.add_with_ids(xb, idmap)
    gpu = nearly.index_cpu_to_gpu(res, 0, idx)
    _, gt = brute_force(xq[:50], xb, 5, nearly.METRIC_INNER_PRODUCT)
    idx.hnsw.efSearch = 128
    rc = recall((idx.search(xq[:50], 5)[1] - 3) // 7, gt, 5)
    for merge in (False, True):
        gpu.search_merge = merge
        D, I = gpu.search(cupy.asarray(xq[:50]), 5, params=nearly.SearchParametersHNSW(efSearch=128))
        D, I = cupy.asnumpy(D), cupy.asnumpy(I)
        assert np.isin(I, idmap).all()
        assert recall((I - 3) // 7, gt, 5) >= rc - 0.02, merge
        # D is the inner product itself (not its negation), best first
        true = (xq[:50, None, :].astype(np.float64) * xb[(I - 3) // 7]).sum(-1)
        np.testing.assert_allclose(D, true, rtol=1e-4, atol=1e-3)
        assert (np.diff(D, axis=1) <= 1e-4).all()
    back = nearly.index_gpu_to_cpu(gpu)
    assert type(back).__name__ == "IndexHNSWFlat" and back.ntotal == idx.ntotal
    with pytest.raises(RuntimeError):
        gpu.add(xb[:3])
    with pytest.raises(ValueError):
        gpu.search(xq, 0)
    with pytest.raises(ValueError):
        gpu.search(xq, 300)


def small_graph(d, M):
    rng = np.random.default_rng(d)
    xb = clustered(rng, 4000, d, nclusters=40, scale=2.0, spread=0.5)
    xq = clustered(rng, 200, d, nclusters=40, scale=2.0, spread=0.5)
    cpu = nearly.IndexHNSWFlat(d, M)
    cpu.add(xb)
    return cpu, xb, xq, brute_force(xq, xb, 10, nearly.METRIC_L2)[1]


@pytest.mark.parametrize("d", [37, 6])
def test_gpu_hnsw_dimensions_not_a_multiple_of_four(res, d):
    # the scorer's scalar path (rows not 16-byte aligned)
    cpu, xb, xq, gt = small_graph(d, 8)
    gpu = nearly.index_cpu_to_gpu(res, 0, cpu)
    cpu.hnsw.efSearch = gpu.efSearch = 64
    rc = recall(cpu.search(xq, 10)[1], gt, 10)
    Dg, Ig = gpu.search(xq, 10)
    assert recall(Ig, gt, 10) >= rc - 0.01
    np.testing.assert_allclose(Dg, ((xq[:, None, :] - xb[Ig]) ** 2).sum(-1), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("scorer", ["team", "warp"])
@pytest.mark.parametrize("d", [48, 37])
@pytest.mark.parametrize("width", [1, 4])
def test_gpu_hnsw_merging_kernel_scorers(res, graph, monkeypatch, scorer, d, width):
    # teams of threads (the default; float4 loads when d % 4 == 0) or a warp per row
    monkeypatch.setenv("NEARLY_GPU_GRAPH_SCORER", scorer)
    cpu, xb, xq, gt = graph if d == 48 else small_graph(d, 16)
    gpu = nearly.index_cpu_to_gpu(res, 0, cpu)
    gpu.search_width = width
    cpu.hnsw.efSearch = gpu.efSearch = 64
    rc = recall(cpu.search(xq, 10)[1], gt, 10)
    Dg, Ig = gpu.search(xq, 10)
    assert recall(Ig, gt, 10) >= rc - 0.01
    np.testing.assert_allclose(Dg, ((xq[:, None, :] - xb[Ig]) ** 2).sum(-1), rtol=1e-4, atol=1e-3)
    for row in Ig:
        assert len(set(row.tolist())) == 10


@pytest.mark.parametrize("metric", [nearly.METRIC_L2, nearly.METRIC_INNER_PRODUCT])
@pytest.mark.parametrize("d", [48, 44, 37])
@pytest.mark.parametrize("k", [10, 40])
def test_gpu_hnsw_fp16_walk(res, d, metric, k):
    # the walk over float16 rows (8 a load when d % 8 == 0, else one at a
    # time), its final best scored again in float32: the CPU's recall, exact
    # scores, best first
    rng = np.random.default_rng(d + k)
    xb = clustered(rng, 6000, d, nclusters=60, scale=2.0, spread=0.5)
    xq = clustered(rng, 200, d, nclusters=60, scale=2.0, spread=0.5)
    cpu = nearly.IndexHNSWFlat(d, 12, metric)
    cpu.add(xb)
    _, gt = brute_force(xq, xb, k, metric)
    gpu = nearly.index_cpu_to_gpu(res, 0, cpu)
    assert not gpu.search_fp16
    cpu.hnsw.efSearch = gpu.efSearch = 128
    D32, I32 = gpu.search(xq, k)
    gpu.search_fp16 = True
    D16, I16 = gpu.search(xq, k)
    rc = recall(cpu.search(xq, k)[1], gt, k)
    assert recall(I16, gt, k) >= rc - 0.01
    assert recall(I16, gt, k) >= recall(I32, gt, k) - 0.01
    true = ((xq[:, None, :] - xb[I16]) ** 2).sum(-1) if metric == nearly.METRIC_L2 else \
        np.einsum("qd,qkd->qk", xq, xb[I16])
    np.testing.assert_allclose(D16, true, rtol=1e-4, atol=1e-3)
    assert (np.diff(D16, axis=1) >= -1e-6).all() if metric == nearly.METRIC_L2 else \
        (np.diff(D16, axis=1) <= 1e-6).all()
    for row in I16:
        assert len(set(row.tolist())) == k
    # where both walks meet the same rows, the same scores (float32 either way)
    same = I16 == I32
    np.testing.assert_allclose(D16[same], D32[same], rtol=1e-6, atol=1e-6)
    # the float16 copy is made once and kept; the flag off again is the float32 walk
    gpu.search_fp16 = False
    np.testing.assert_array_equal(gpu.search(xq, k)[1], I32)


def test_gpu_hnsw_fp16_walk_refuses_values_beyond_float16(res):
    rng = np.random.default_rng(1)
    xb = rng.standard_normal((2000, 16)).astype(np.float32)
    xb[7, 3] = 1e5  # no float16 holds it
    cpu = nearly.IndexHNSWFlat(16, 8)
    cpu.add(xb)
    gpu = nearly.index_cpu_to_gpu(res, 0, cpu)
    gpu.search_fp16 = True
    with pytest.raises(nearly.InvalidArgumentError, match="float16"):
        gpu.search(xb[:10], 5)
    gpu.search_fp16 = False  # the float32 walk is unaffected
    assert (gpu.search(xb[:10], 1)[1][:, 0] == np.arange(10)).all()
