"""GpuIndexFlat and knn_gpu against the CPU IndexFlat and numpy brute force:
same ids for exact search (ties aside), distances within float rounding."""
import numpy as np
import pytest

import nearly
from _testutil import assert_knn_valid, assert_knn_equiv, tolerance


def data(rng, n, d, nq):
    return (rng.standard_normal((n, d)).astype(np.float32), rng.standard_normal((nq, d)).astype(np.float32))


@pytest.mark.parametrize("metric", [nearly.METRIC_L2, nearly.METRIC_INNER_PRODUCT])
@pytest.mark.parametrize("n,nq,k", [(1, 3, 1), (100, 7, 5), (5000, 1, 10), (20000, 300, 10), (33000, 70, 100),
                                    (3000, 2100, 7), (50000, 4, 1000), (9000, 5, 2048)])
def test_gpu_flat_matches_cpu(res, rng, metric, n, nq, k):
    d = 48
    xb, xq = data(rng, n, d, nq)
    cpu = nearly.IndexFlat(d, metric)
    cpu.add(xb)
    gpu = nearly.index_cpu_to_gpu(res, 0, cpu)
    assert gpu.ntotal == n
    Dg, Ig = gpu.search(xq, k)
    Dc, Ic = cpu.search(xq, k)
    atol = tolerance(xq, xb, metric, rel=1e-4)
    assert_knn_equiv(Dg, Ig, Dc, Ic, atol)
    if n * nq <= 2_000_000:
        assert_knn_valid(Dg, Ig, xq, xb, k, metric, atol=atol)


def test_gpu_flat_padding_and_empty(res, rng):
    idx = nearly.GpuIndexFlatL2(res, 16)
    xq = rng.standard_normal((3, 16)).astype(np.float32)
    D, I = idx.search(xq, 4)
    assert (I == -1).all() and (D == np.finfo(np.float32).max).all()
    idx.add(rng.standard_normal((2, 16)).astype(np.float32))
    D, I = idx.search(xq, 4)
    assert (I[:, 2:] == -1).all() and (I[:, :2] >= 0).all()
    ip = nearly.GpuIndexFlatIP(res, 16)
    D, I = ip.search(xq, 2)
    assert (D == -np.finfo(np.float32).max).all()


def test_gpu_flat_incremental_add_reconstruct_and_back_to_cpu(res, rng):
    d = 32
    xb, xq = data(rng, 5000, d, 20)
    gpu = nearly.GpuIndexFlatL2(res, d)
    for part in np.array_split(xb, 7):
        gpu.add(part)
    np.testing.assert_array_equal(gpu.reconstruct(4321), xb[4321])
    np.testing.assert_array_equal(gpu.reconstruct_n(10, 5), xb[10:15])
    cpu = nearly.index_gpu_to_cpu(gpu)
    assert type(cpu).__name__ == "IndexFlatL2" and cpu.ntotal == 5000
    np.testing.assert_array_equal(cpu.reconstruct_n(0, 5000), xb)
    with pytest.raises(IndexError):
        gpu.reconstruct(5000)
    gpu.reset()
    assert gpu.ntotal == 0


def test_gpu_flat_float16(res, rng):
    d = 64
    xb, xq = data(rng, 20000, d, 50)
    cpu = nearly.IndexFlatL2(d)
    cpu.add(xb)
    co = nearly.GpuClonerOptions()
    co.useFloat16 = True
    gpu = nearly.index_cpu_to_gpu(res, 0, cpu, co)
    Dg, Ig = gpu.search(xq, 10)
    Dc, Ic = cpu.search(xq, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(Ig, Ic)])
    assert recall > 0.97
    np.testing.assert_allclose(Dg, Dc, rtol=5e-3, atol=0.05)


def test_gpu_flat_cupy_in_cupy_out(res, rng, cupy):
    d = 40
    xb, xq = data(rng, 3000, d, 25)
    gpu = nearly.GpuIndexFlatIP(res, d)
    gpu.add(cupy.asarray(xb))
    D, I = gpu.search(cupy.asarray(xq), 8)
    assert isinstance(D, cupy.ndarray) and isinstance(I, cupy.ndarray)
    Dn, In = gpu.search(xq, 8)
    np.testing.assert_array_equal(cupy.asnumpy(I), In)
    np.testing.assert_allclose(cupy.asnumpy(D), Dn, rtol=1e-6)


def test_knn_gpu_matches_numpy(res, rng, cupy):
    d = 24
    xb, xq = data(rng, 7000, d, 40)
    for metric in (nearly.METRIC_L2, nearly.METRIC_INNER_PRODUCT):
        D, I = nearly.knn_gpu(res, xq, xb, 12, metric=metric)
        assert_knn_valid(D, I, xq, xb, 12, metric, atol=tolerance(xq, xb, metric, rel=1e-4))
        Dd, Id = nearly.knn_gpu(res, cupy.asarray(xq), cupy.asarray(xb), 12, metric=metric)
        np.testing.assert_array_equal(cupy.asnumpy(Id), I)


def test_gpu_bad_input(res, rng, cupy):
    gpu = nearly.GpuIndexFlatL2(res, 8)
    gpu.add(rng.standard_normal((10, 8)).astype(np.float32))
    xq = rng.standard_normal((2, 8)).astype(np.float32)
    with pytest.raises(ValueError):
        gpu.search(xq, 0)
    with pytest.raises(ValueError):
        gpu.search(xq, 2049)
    with pytest.raises(ValueError):
        gpu.search(rng.standard_normal((2, 9)).astype(np.float32), 1)
    bad = xq.copy()
    bad[1, 3] = np.nan
    with pytest.raises(ValueError):
        gpu.search(bad, 1)
    with pytest.raises(ValueError):
        gpu.search(cupy.asarray(bad), 1)
    with pytest.raises(ValueError):
        gpu.add(cupy.asarray(bad))
    with pytest.raises(ValueError):
        gpu.search(cupy.asarray(xq.astype(np.float64)), 1)
    with pytest.raises(RuntimeError):
        nearly.serialize_index(gpu)
    sel = nearly.IDSelectorRange(0, 5)
    with pytest.raises(RuntimeError):
        gpu.search(xq, 1, params=nearly.SearchParameters(sel=sel))
    assert gpu.ntotal == 10


def test_gpu_concurrent_searches(res, rng):
    import threading
    d = 32
    xb, xq = data(rng, 20000, d, 64)
    gpu = nearly.GpuIndexFlatL2(res, d)
    gpu.add(xb)
    ref = gpu.search(xq, 10)[1]
    errors = []

    def worker():
        try:
            for _ in range(5):
                np.testing.assert_array_equal(gpu.search(xq, 10)[1], ref)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=worker) for _ in range(6)]
    for t in ts:
        t.start()
    gpu.add(xb[:10])
    for t in ts:
        t.join()
    assert not errors


@pytest.mark.parametrize("k", [10, 300])
@pytest.mark.parametrize("temp", [0, None])
def test_gpu_flat_many_tiles(rng, k, temp):
    """Small scratch budgets cut the database into many tiles whose candidates
    are merged; the result must not change."""
    res = nearly.StandardGpuResources()
    if temp is not None:
        res.setTempMemory(temp)
    d = 32
    xb, xq = data(rng, 50000, d, 2100)
    cpu = nearly.IndexFlatL2(d)
    cpu.add(xb)
    gpu = nearly.index_cpu_to_gpu(res, 0, cpu)
    Dg, Ig = gpu.search(xq, k)
    Dc, Ic = cpu.search(xq, k)
    assert_knn_equiv(Dg, Ig, Dc, Ic, tolerance(xq, xb, nearly.METRIC_L2, rel=1e-4))
