"""GPU IVF indexes against their CPU twins and numpy references."""
import numpy as np
import pytest

import nearly
from _testutil import brute_force, clustered, recall_at as recall


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    xb = clustered(rng, 20000, 32)
    xq = clustered(rng, 300, 32)
    return xb, xq


@pytest.mark.parametrize("metric", [nearly.METRIC_L2, nearly.METRIC_INNER_PRODUCT])
def test_ivfflat_from_cpu_matches_cpu(res, data, metric):
    xb, xq = data
    cpu = nearly.IndexIVFFlat(nearly.IndexFlat(32, metric), 32, 64, metric)
    cpu.train(xb)
    cpu.add(xb)
    gpu = nearly.index_cpu_to_gpu(res, 0, cpu)
    assert gpu.ntotal == cpu.ntotal and gpu.nlist == 64
    for nprobe in (1, 8, 64):
        cpu.nprobe = nprobe
        gpu.nprobe = nprobe
        Dc, Ic = cpu.search(xq, 10)
        Dg, Ig = gpu.search(xq, 10)
        same = np.mean(Ic == Ig)
        assert same > 0.99, (nprobe, same)
        mask = Ic == Ig
        np.testing.assert_allclose(Dg[mask], Dc[mask], rtol=1e-4, atol=1e-3)
        # search parameters on the GPU index
        Dp, Ip = gpu.search(xq, 10, params=nearly.SearchParametersIVF(nprobe=nprobe))
        np.testing.assert_array_equal(Ip, Ig)


def test_ivfflat_round_trip_keeps_lists(res, data):
    xb, _ = data
    cpu = nearly.IndexIVFFlat(nearly.IndexFlatL2(32), 32, 32)
    cpu.train(xb)
    ids = np.arange(len(xb), dtype=np.int64) * 3 + 7
    cpu.add_with_ids(xb, ids)
    back = nearly.index_gpu_to_cpu(nearly.index_cpu_to_gpu(res, 0, cpu))
    assert type(back).__name__ == "IndexIVFFlat" and back.ntotal == cpu.ntotal
    for l in range(32):
        np.testing.assert_array_equal(back.invlists.get_ids(l), cpu.invlists.get_ids(l))
    back.make_direct_map()
    np.testing.assert_array_equal(back.reconstruct(int(ids[1234])), xb[1234])
    for nprobe in (1, 32):
        back.nprobe = cpu.nprobe = nprobe
        np.testing.assert_array_equal(back.search(xb[:50], 5)[1], cpu.search(xb[:50], 5)[1])


def test_ivfflat_trained_on_gpu_has_cpu_recall(res, data):
    xb, xq = data
    _, gt = brute_force(xq, xb, 10, nearly.METRIC_L2)
    cpu = nearly.IndexIVFFlat(nearly.IndexFlatL2(32), 32, 64)
    cpu.train(xb)
    cpu.add(xb)
    gpu = nearly.GpuIndexIVFFlat(res, 32, 64, nearly.METRIC_L2)
    gpu.train(xb)
    gpu.add(xb)
    for nprobe in (2, 8):
        cpu.nprobe = gpu.nprobe = nprobe
        rc = recall(cpu.search(xq, 10)[1], gt, 10)
        rg = recall(gpu.search(xq, 10)[1], gt, 10)
        assert rg >= rc - 0.02, (nprobe, rg, rc)


def test_gpu_kmeans_objective_matches_cpu(res, data):
    xb, _ = data
    cp = nearly.ClusteringParameters()
    cp.niter = 20
    cent, obj = nearly._nearly._gpu_kmeans(res._get(0), xb, 100, cp, nearly.METRIC_L2)
    km = nearly.Kmeans(32, 100, niter=20)
    cpu_obj = km.train(xb)
    assert abs(obj - cpu_obj) / cpu_obj < 0.01, (obj, cpu_obj)
    assert cent.shape == (100, 32)


def test_ivfpq_codes_and_distances_match_numpy(res, data):
    xb, xq = data
    d, nlist, M = 32, 16, 8
    gpu = nearly.GpuIndexIVFPQ(res, d, nlist, M, 8, nearly.METRIC_L2)
    gpu.train(xb)
    gpu.add(xb[:5000])
    cent = gpu.centroids()
    pq = gpu.pq_centroids().reshape(M, 256, d // M)
    where = {}
    for l in range(nlist):
        codes, ids = gpu.list_contents(l)
        assert codes.shape == (len(ids), M)
        r = xb[ids] - cent[l]
        for m in range(M):
            sub = r[:, m * 4:(m + 1) * 4]
            dist = ((sub[:, None, :] - pq[m][None]) ** 2).sum(-1)
            best = dist.min(1)
            chosen = dist[np.arange(len(ids)), codes[:, m]]
            np.testing.assert_allclose(chosen, best, rtol=1e-5, atol=1e-6)  # nearest codeword (ties aside)
        for i, c in zip(ids, codes):
            where[int(i)] = (l, c)
    assert sorted(where) == list(range(5000))
    gpu.nprobe = nlist
    D, I = gpu.search(xq[:20], 5)
    for q in range(20):
        for j in range(5):
            l, c = where[int(I[q, j])]
            rec = cent[l] + np.concatenate([pq[m][c[m]] for m in range(M)])
            np.testing.assert_allclose(D[q, j], ((xq[q] - rec) ** 2).sum(), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("metric", [nearly.METRIC_L2, nearly.METRIC_INNER_PRODUCT])
def test_ivfpq_recall_matches_cpu_ivfpq(res, data, metric, cupy):
    """Trained on the GPU from device arrays: recall within 2 points of the CPU
    IndexIVFPQ trained on the same data (unit vectors for inner product, as
    users of that metric have)."""
    xb, xq = data
    if metric == nearly.METRIC_INNER_PRODUCT:
        xb = xb / np.linalg.norm(xb, axis=1, keepdims=True)
        xq = xq / np.linalg.norm(xq, axis=1, keepdims=True)
    _, gt = brute_force(xq, xb, 10, metric)
    gpu = nearly.GpuIndexIVFPQ(res, 32, 32, 16, 8, metric)
    gpu.train(cupy.asarray(xb))
    gpu.add(cupy.asarray(xb))
    cpu = nearly.IndexIVFPQ(nearly.IndexFlat(32, metric), 32, 32, 16, 8, metric)
    cpu.train(xb)
    cpu.add(xb)
    for nprobe in (4, 32):
        gpu.nprobe = cpu.nprobe = nprobe
        D, I = gpu.search(cupy.asarray(xq), 10)
        assert isinstance(I, cupy.ndarray)
        rg = recall(cupy.asnumpy(I), gt, 10)
        rc = recall(cpu.search(xq, 10)[1], gt, 10)
        assert rg >= rc - 0.02, (nprobe, rg, rc)
        Dn, In = gpu.search(xq, 10)
        np.testing.assert_array_equal(In, cupy.asnumpy(I))


@pytest.mark.parametrize("metric", [nearly.METRIC_L2, nearly.METRIC_INNER_PRODUCT])
def test_ivfpq_cpu_gpu_round_trip(res, data, metric):
    """CPU IndexIVFPQ -> GPU -> CPU: same codes and ids; the GPU scores the
    same candidates (ids agree where distances are not tied)."""
    xb, xq = data
    cpu = nearly.IndexIVFPQ(nearly.IndexFlat(32, metric), 32, 32, 8, 8, metric)
    cpu.train(xb)
    cpu.add(xb)
    gpu = nearly.index_cpu_to_gpu(res, 0, cpu)
    np.testing.assert_array_equal(gpu.pq_centroids(), nearly.vector_to_array(cpu.pq.centroids))
    for nprobe in (1, 8):
        cpu.nprobe = gpu.nprobe = nprobe
        Dc, Ic = cpu.search(xq, 10)
        Dg, Ig = gpu.search(xq, 10)
        assert np.mean(Ic == Ig) > 0.97
        m = Ic == Ig
        np.testing.assert_allclose(Dg[m], Dc[m], rtol=1e-3, atol=1e-2)
    back = nearly.index_gpu_to_cpu(gpu)
    assert type(back).__name__ == "IndexIVFPQ" and back.ntotal == cpu.ntotal and back.is_trained
    for l in range(32):
        np.testing.assert_array_equal(back.invlists.get_ids(l), cpu.invlists.get_ids(l))
        np.testing.assert_array_equal(back.invlists.get_codes(l), cpu.invlists.get_codes(l))
    back.nprobe = 8
    np.testing.assert_array_equal(back.search(xq, 10)[1], cpu.search(xq, 10)[1])


def test_gpu_ivf_incremental_add_with_ids(res, data):
    xb, xq = data
    gpu = nearly.GpuIndexIVFFlat(res, 32, 16, nearly.METRIC_L2)
    gpu.train(xb)
    ids = np.arange(len(xb), dtype=np.int64) + 1000
    for a, b in ((0, 7000), (7000, 7001), (7001, 20000)):
        gpu.add_with_ids(xb[a:b], ids[a:b])
    assert gpu.ntotal == 20000
    gpu.nprobe = 16
    D, I = gpu.search(xq, 5)
    Dr, Ir = brute_force(xq, xb, 5, nearly.METRIC_L2)
    np.testing.assert_array_equal(I, Ir + 1000)


def test_gpu_ivf_bad_input(res, data):
    xb, xq = data
    gpu = nearly.GpuIndexIVFFlat(res, 32, 16, nearly.METRIC_L2)
    with pytest.raises(RuntimeError):
        gpu.search(xq, 1)
    with pytest.raises(RuntimeError):
        gpu.add(xb)
    with pytest.raises(ValueError):
        nearly.GpuIndexIVFPQ(res, 30, 16, 8, 8)
    with pytest.raises(ValueError):
        nearly.GpuIndexIVFPQ(res, 32, 16, 8, 4)
    gpu.train(xb)
    with pytest.raises(ValueError):
        gpu.search(xq, 0)
    bad = xq.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        gpu.add(bad)
    gpu.nprobe = 1000  # clipped to nlist, like faiss
    gpu.add(xb)
    D, I = gpu.search(xq, 3)
    assert (I >= 0).all()


@pytest.mark.parametrize("metric", [nearly.METRIC_L2, nearly.METRIC_INNER_PRODUCT])
def test_ivfpq_float16_tables(res, data, metric):
    """useFloat16LookupTables: the same lists scored with half-precision tables:
    recall within a point of float32 tables, distances close."""
    xb, xq = data
    _, gt = brute_force(xq, xb, 10, metric)
    cfg = nearly.GpuIndexIVFPQConfig()
    cfg.useFloat16LookupTables = True
    gpu = nearly.GpuIndexIVFPQ(res, 32, 32, 8, 8, metric, cfg)
    assert gpu.use_float16_tables
    gpu.train(xb)
    gpu.add(xb)
    gpu.nprobe = 8
    D16, I16 = gpu.search(xq, 10)
    gpu.use_float16_tables = False
    D32, I32 = gpu.search(xq, 10)
    assert abs(recall(I16, gt, 10) - recall(I32, gt, 10)) <= 0.01
    np.testing.assert_allclose(D16, D32, rtol=1e-2, atol=np.abs(D32).max() * 2e-3)


def test_ivfpq_polysemous_copy_refused(res, data):
    """The GPU scan has no Hamming filter: a CPU index with polysemous_ht set
    is refused (faiss's rule), and copies once it is 0 again."""
    xb, _ = data
    cpu = nearly.IndexIVFPQ(nearly.IndexFlatL2(32), 32, 16, 8, 8)
    cpu.train(xb)
    cpu.add(xb)
    cpu.polysemous_ht = 20
    with pytest.raises(RuntimeError, match="polysemous"):
        nearly.index_cpu_to_gpu(res, 0, cpu)
    cpu.polysemous_ht = 0
    assert nearly.index_cpu_to_gpu(res, 0, cpu).ntotal == cpu.ntotal
