"""GpuIndexBinaryRecurrent against its CPU twin IndexBinaryRecurrent: the
same I and D, bit for bit, no tie tolerance. Both return the k smallest
(key, id) pairs of the same float32 key (recurrent_key; the CPU's integer
pre-filter only skips codes that cannot enter, see
tests/test_binary_recurrent.py::test_search_is_the_k_smallest_keys), ties to
the smaller id: the GPU index keeps its rows in id order so that its
selection's tie rule (smaller row) is the CPU's. The data repeat 100 vectors,
so exact ties do occur, and ids are shuffled so that row and id orders differ."""
import numpy as np
import pytest

import nearly
from _testutil import FLT_MAX, pad_value, recurrent_reference, recurrent_tied_data

METRICS = [nearly.METRIC_INNER_PRODUCT, nearly.METRIC_L2]
D_ = 64


def trained_cpu(metric, nb, x, m=64):
    cpu = nearly.IndexBinaryRecurrent(D_, m, nb, metric)
    cpu.train(x)
    return cpu


def shuffled_ids(n, seed=0):
    return np.random.default_rng(seed).permutation(n).astype(np.int64) * 3 + 5


def assert_same(gpu, cpu, q, k):
    Dg, Ig = gpu.search(q, k)
    Dc, Ic = cpu.search(q, k)
    assert Dg.dtype == np.float32 and Ig.dtype == np.int64 and Dg.shape == (len(q), k) == Ig.shape
    np.testing.assert_array_equal(Ig, Ic)
    np.testing.assert_array_equal(Dg, Dc)
    return Dg, Ig


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("nb", [1, 2, 3, 4])
def test_copy_matches_cpu(res, metric, nb):
    x, q = recurrent_tied_data()
    cpu = trained_cpu(metric, nb, x)
    ids = shuffled_ids(len(x), nb)
    for part in np.array_split(np.arange(len(x)), 3):
        cpu.add_with_ids(x[part], ids[part])
    gpu = nearly.index_cpu_to_gpu(res, 0, cpu)
    assert isinstance(gpu, nearly.GpuIndexBinaryRecurrent)
    assert gpu.ntotal == cpu.ntotal and gpu.d == D_ and gpu.metric_type == metric
    assert (gpu.m, gpu.bits_per_dim, gpu.code_size) == (64, nb, 8 * nb)
    for k in (1, 10, 100, 2048):
        D, I = assert_same(gpu, cpu, q, k)
    Dr, Ir = recurrent_reference(cpu, q, 10)
    D, I = gpu.search(q, 10)
    np.testing.assert_array_equal(I, Ir)
    np.testing.assert_array_equal(D, Dr)
    assert (D[:, 1:] == D[:, :-1]).any()  # ties did occur


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("nb", [1, 2, 3, 4])
def test_adds_match_cpu(res, metric, nb):
    """Adds on both twins: plain adds in batches, ids above every stored one
    (appended), then ids below (the GPU re-sorts its rows)."""
    x, q = recurrent_tied_data()
    cpu = trained_cpu(metric, nb, x)
    gpu = nearly.index_cpu_to_gpu(res, 0, cpu)
    assert gpu.ntotal == 0
    assert_same(gpu, cpu, q, 5)
    for part in np.array_split(x[:2000], 3):
        cpu.add(part)
        gpu.add(part)
        assert gpu.ntotal == cpu.ntotal
        assert_same(gpu, cpu, q, 10)
    high = np.arange(500, dtype=np.int64) * 2 + 10**6
    cpu.add_with_ids(x[2000:2500], high)
    gpu.add_with_ids(x[2000:2500], high)
    assert_same(gpu, cpu, q, 10)
    low = 2000 + 2 * np.random.default_rng(1).permutation(500).astype(np.int64)  # below 10**6, out of order
    cpu.add_with_ids(x[2500:], low)
    gpu.add_with_ids(x[2500:], low)
    assert gpu.ntotal == cpu.ntotal == len(x)
    for k in (1, 10, 300):
        assert_same(gpu, cpu, q, k)
    cpu.add(x[:50])  # ids ntotal + i again, on both
    gpu.add(x[:50])
    assert_same(gpu, cpu, q, 20)


@pytest.mark.parametrize("metric", METRICS)
def test_padding_and_empty(res, metric):
    x, q = recurrent_tied_data()
    cpu = trained_cpu(metric, 2, x)
    gpu = nearly.index_cpu_to_gpu(res, 0, cpu)
    D, I = assert_same(gpu, cpu, q, 7)  # empty
    assert (I == -1).all() and (D == pad_value(metric)).all()
    cpu.add(x[:5])
    gpu.add(x[:5])
    D, I = assert_same(gpu, cpu, q, 10)  # k > ntotal
    assert (I[:, 5:] == -1).all() and (D[:, 5:] == pad_value(metric)).all() and (I[:, :5] >= 0).all()
    gpu.reset()
    assert gpu.ntotal == 0
    D, I = gpu.search(q, 3)
    assert (I == -1).all() and (np.abs(D) == FLT_MAX).all()


@pytest.mark.parametrize("metric", METRICS)
def test_round_trip_remove_reconstruct(res, metric):
    x, q = recurrent_tied_data()
    cpu = trained_cpu(metric, 3, x)
    ids = shuffled_ids(2000, 4)
    cpu.add_with_ids(x[:2000], ids)
    gpu = nearly.index_cpu_to_gpu(res, 0, cpu)
    more = np.arange(1000, dtype=np.int64) * 3 + 6  # between the stored ids: re-sorted on the GPU
    cpu.add_with_ids(x[2000:], more)
    gpu.add_with_ids(x[2000:], more)
    back = nearly.index_gpu_to_cpu(gpu)
    assert type(back).__name__ == "IndexBinaryRecurrent" and back.metric_type == metric
    np.testing.assert_array_equal(back.codes, cpu.codes)  # insertion order, as on the CPU
    np.testing.assert_array_equal(back.id_map, cpu.id_map)
    np.testing.assert_array_equal(back._vector_terms, cpu._vector_terms)
    for k in (1, 10):
        Db, Ib = back.search(q, k)
        Dc, Ic = cpu.search(q, k)
        np.testing.assert_array_equal(Ib, Ic)
        np.testing.assert_array_equal(Db, Dc)
    nearly.deserialize_index(nearly.serialize_index(back))  # a plain CPU index again
    for key in (int(ids[0]), int(more[7])):
        np.testing.assert_array_equal(gpu.reconstruct(key), cpu.reconstruct(key))
    with pytest.raises(IndexError):
        gpu.reconstruct(-12345)
    gone = np.concatenate([ids[::3], more[::5]])
    assert gpu.remove_ids(gone) == cpu.remove_ids(gone) == len(gone)
    assert gpu.ntotal == cpu.ntotal
    assert_same(gpu, cpu, q, 10)
    np.testing.assert_array_equal(nearly.index_gpu_to_cpu(gpu).id_map, cpu.id_map)


def test_many_queries_in_chunks(res, rng):
    """More queries than one pass takes (65,536): chunk boundaries."""
    x, _ = recurrent_tied_data()
    cpu = trained_cpu(nearly.METRIC_L2, 2, x)
    cpu.add(x[:500])
    gpu = nearly.index_cpu_to_gpu(res, 0, cpu)
    q = (rng.standard_normal((70000, D_)) + 0.5).astype(np.float32)
    assert_same(gpu, cpu, q, 5)


def test_train_on_the_gpu_index(res):
    """train() on the GPU index fits a new encoder on the host (the numpy
    trainer is deterministic), the same as training the CPU index."""
    x, q = recurrent_tied_data()
    untrained = nearly.IndexBinaryRecurrent(D_, 64, 2, nearly.METRIC_INNER_PRODUCT)
    gpu = nearly.index_cpu_to_gpu(res, 0, untrained)
    assert not gpu.is_trained
    with pytest.raises(RuntimeError, match="not trained"):
        gpu.add(x[:10])
    with pytest.raises(RuntimeError, match="not trained"):
        gpu.search(q, 1)
    gpu.train(x)
    assert gpu.is_trained and not untrained.is_trained  # a copy: the CPU index is untouched
    gpu.add(x)
    cpu = trained_cpu(nearly.METRIC_INNER_PRODUCT, 2, x)
    cpu.add(x)
    assert_same(gpu, cpu, q, 10)


def test_bad_input(res):
    x, q = recurrent_tied_data()
    cpu = trained_cpu(nearly.METRIC_L2, 2, x)
    cpu.add(x[:100])
    gpu = nearly.index_cpu_to_gpu(res, 0, cpu)
    with pytest.raises(ValueError):
        gpu.search(q[:, :10], 1)  # wrong d
    with pytest.raises(ValueError):
        gpu.search(q[0], 1)  # 1-D
    bad = q.copy()
    bad[3, 5] = np.nan
    with pytest.raises(ValueError):
        gpu.search(bad, 1)
    with pytest.raises(ValueError):
        gpu.add(bad)
    assert gpu.ntotal == 100
    for k in (0, -1):
        with pytest.raises(ValueError):
            gpu.search(q, k)
    with pytest.raises(ValueError):
        gpu.search(q, 2049)  # beyond the GPU selection limit
    with pytest.raises(ValueError):
        gpu.add_with_ids(x[:10], np.arange(9))
    with pytest.raises(RuntimeError):
        gpu.search(q, 1, params=nearly.SearchParameters(sel=nearly.IDSelectorRange(0, 10)))
    with pytest.raises(RuntimeError):
        nearly.serialize_index(gpu)
    with pytest.raises(ValueError, match="multiple of 32"):
        nearly.index_cpu_to_gpu(res, 0, trained_cpu(nearly.METRIC_L2, 2, x, m=40))
    with pytest.raises(ValueError):
        nearly.GpuIndexBinaryRecurrent(res, nearly.IndexFlatL2(D_))


def test_device_arrays(res, cupy):
    x, q = recurrent_tied_data()
    cpu = trained_cpu(nearly.METRIC_INNER_PRODUCT, 2, x)
    gpu = nearly.index_cpu_to_gpu(res, 0, cpu)
    ids = shuffled_ids(len(x), 9)
    cpu.add_with_ids(x[:1500], ids[:1500])
    gpu.add_with_ids(cupy.asarray(x[:1500]), cupy.asarray(ids[:1500]))
    cpu.add_with_ids(x[1500:], ids[1500:])
    gpu.add_with_ids(cupy.asarray(x[1500:]), ids[1500:])  # device vectors, host ids
    Dc, Ic = cpu.search(q, 10)
    Dd, Id = gpu.search(cupy.asarray(q), 10)
    assert isinstance(Dd, cupy.ndarray) and Dd.dtype == np.float32 and Id.dtype == np.int64
    np.testing.assert_array_equal(cupy.asnumpy(Id), Ic)
    np.testing.assert_array_equal(cupy.asnumpy(Dd), Dc)
    with pytest.raises(ValueError):
        gpu.search(cupy.asarray(q[:, :10]), 1)
    with pytest.raises(ValueError):
        gpu.add_with_ids(cupy.asarray(x[:10]), cupy.arange(9, dtype=cupy.int64))
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    Dt, It = gpu.search(torch.from_numpy(q).cuda(), 10)
    assert Dt.is_cuda
    np.testing.assert_array_equal(It.cpu().numpy(), Ic)
    np.testing.assert_array_equal(Dt.cpu().numpy(), Dc)
