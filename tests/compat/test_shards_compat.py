"""IndexShards and IndexReplicas against faiss-cpu: the same slices per part,
the same merged ids and distances, ids shifted or given, parameters reaching
every part."""
import numpy as np
import pytest

import nearly
from _testutil import METRIC_IP, METRIC_L2, randn

faiss = pytest.importorskip("faiss")


def flat(lib, d, metric):
    return lib.IndexFlatL2(d) if metric == METRIC_L2 else lib.IndexFlatIP(d)


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP])
@pytest.mark.parametrize("threaded", [False, True])
@pytest.mark.parametrize("nshards", [1, 3])
def test_shards_equal_faiss(metric, threaded, nshards):
    rng = np.random.default_rng(nshards)
    x, xq = randn(rng, 1001, 16), randn(rng, 40, 16)
    out = {}
    for lib in (faiss, nearly):
        shards = lib.IndexShards(16, threaded, True)
        parts = [flat(lib, 16, metric) for _ in range(nshards)]
        for p in parts:
            shards.add_shard(p)
        shards.add(x)
        assert shards.ntotal == 1001 and shards.count() == nshards
        out[lib] = ([p.ntotal for p in parts], *shards.search(xq, 7))
    assert out[nearly][0] == out[faiss][0]  # the same slices
    np.testing.assert_array_equal(out[nearly][2], out[faiss][2])
    np.testing.assert_allclose(out[nearly][1], out[faiss][1], rtol=1e-5, atol=1e-5)
    exact = flat(nearly, 16, metric)
    exact.add(x)
    np.testing.assert_array_equal(out[nearly][2], exact.search(xq, 7)[1])  # the merge is exact


def test_shards_with_given_ids_and_parameters():
    rng = np.random.default_rng(5)
    x, xq = randn(rng, 2000, 16), randn(rng, 30, 16)
    ids = rng.permutation(10**6)[:2000].astype(np.int64)
    out = {}
    for lib in (faiss, nearly):
        shards = lib.IndexShards(16, False, False)
        for _ in range(2):
            shards.add_shard(lib.IndexIVFFlat(lib.IndexFlatL2(16), 16, 8))
        shards.train(x)
        shards.add_with_ids(x, ids)
        lib.ParameterSpace().set_index_parameter(shards, "nprobe", 3)
        assert all(lib.extract_index_ivf(shards.at(i)).nprobe == 3 for i in range(2))
        out[lib] = shards.search(xq, 5)
    np.testing.assert_array_equal(out[nearly][1], out[faiss][1])
    assert np.isin(out[nearly][1], ids).all()
    with pytest.raises(RuntimeError):
        s = nearly.IndexShards(16)  # successive ids: given ids make no sense
        s.add_shard(nearly.IndexFlatL2(16))
        s.add_with_ids(x, ids)


def test_shards_pad_and_bad_input():
    shards = nearly.IndexShards(8)
    D, I = shards.search(np.zeros((2, 8), np.float32), 3)  # no shard: padded like an empty index
    assert (I == -1).all()
    shards.add_shard(nearly.IndexFlatL2(8))
    shards.add_shard(nearly.IndexFlatL2(8))
    shards.add(np.eye(8, dtype=np.float32)[:3])
    D, I = shards.search(np.eye(8, dtype=np.float32)[:1], 5)  # k > ntotal: padded last
    assert list(I[0][:3]) == [0, 1, 2] and (I[0][3:] == -1).all()
    with pytest.raises(ValueError):
        shards.add_shard(nearly.IndexFlatL2(9))
    with pytest.raises(ValueError):
        shards.add_shard(nearly.IndexFlatIP(8))
    with pytest.raises(ValueError):
        shards.search(np.zeros((2, 7), np.float32), 3)
    with pytest.raises(ValueError):
        shards.search(np.zeros((2, 8), np.float32), 0)


@pytest.mark.parametrize("threaded", [False, True])
def test_replicas_equal_faiss(threaded):
    rng = np.random.default_rng(7)
    x, xq = randn(rng, 800, 16), randn(rng, 33, 16)
    out = {}
    for lib in (faiss, nearly):
        reps = lib.IndexReplicas(16, threaded)
        parts = [lib.IndexHNSWFlat(16, 8) for _ in range(3)]
        for p in parts:
            reps.add_replica(p)
        reps.add(x)
        assert reps.ntotal == 800 and all(p.ntotal == 800 for p in parts)
        lib.ParameterSpace().set_index_parameter(reps, "efSearch", 64)
        assert all(p.hnsw.efSearch == 64 for p in parts)
        out[lib] = reps.search(xq, 5)
    exact = nearly.IndexFlatL2(16)
    exact.add(x)
    gt = exact.search(xq, 5)[1]
    for lib in (faiss, nearly):
        assert np.mean([len(set(a) & set(b)) / 5 for a, b in zip(out[lib][1], gt)]) > 0.95


def test_shards_and_replicas_without_d():
    rng = np.random.default_rng(13)
    xb = rng.standard_normal((600, 16)).astype("float32")
    out = {}
    for lib in (faiss, nearly):
        shards = lib.IndexShards(False, False)  # (threaded, successive_ids): d from the first shard
        for i in range(3):
            part = lib.IndexFlatL2(16)
            part.add(xb[i * 200:(i + 1) * 200])
            shards.add_shard(part)
        assert shards.d == 16
        out[lib] = shards.search(xb[:20], 5)[1]
    np.testing.assert_array_equal(out[nearly], out[faiss])
    replicas = nearly.IndexReplicas(True)  # (faiss's SWIG takes True for d = 1 here)
    for _ in range(2):
        r = nearly.IndexFlatL2(16)
        r.add(xb)
        replicas.add_replica(r)
    assert replicas.d == 16 and replicas.threaded
    whole = nearly.IndexFlatL2(16)
    whole.add(xb)
    np.testing.assert_array_equal(replicas.search(xb[:20], 5)[1], whole.search(xb[:20], 5)[1])
    with pytest.raises(ValueError, match="no index attached"):
        nearly.IndexShards(False, False).search(xb[:2], 1)
