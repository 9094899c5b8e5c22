"""IndexHNSWPQ: the HNSW graph over product-quantized vectors only.

Its answers are checked against the exhaustive ADC ranking (numpy over the
decoded codes): that is the best any walk over these codes can return, so the
graph's recall against it measures the graph alone. Recall claims use the
real embeddings; random data is for the contract."""
import threading

import numpy as np
import pytest

import nearly
from _hnswutil import dist64, real_data, recall
from _testutil import METRIC_IP, METRIC_L2, clustered, seconds_until_interrupted

PQ_M = 48


def adc_ranking(index, xq, metric, k, mask=None, ids=None):
    """Exhaustive ADC top-k (float64 over the decoded codes) and its scores."""
    ids = np.arange(index.ntotal) if ids is None else np.asarray(ids)
    rec = np.stack([index.reconstruct(int(i)) for i in ids]) if len(ids) < 2000 else index.reconstruct_batch(ids)
    S = dist64(xq, rec, metric)
    key = S if metric == METRIC_L2 else -S
    if mask is not None:
        key = np.where(mask[None, :], key, np.inf)
    order = np.argsort(key, axis=1, kind="stable")[:, :k]
    return ids[order], S


_real = {}


def real_pq_index(metric):
    """HNSW32,PQ48 over the first 20k real vectors, trained on them; built once per metric."""
    if metric not in _real:
        xb_all, xq = real_data()
        xb = xb_all[:20_000]
        index = nearly.IndexHNSWPQ(xb.shape[1], PQ_M, 32, 8, metric)
        index.train(xb)
        index.add(xb)
        _real[metric] = index
    index = _real[metric]
    index.hnsw.efSearch = 16
    return index, real_data()[1]


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP], ids=["L2", "IP"])
@pytest.mark.parametrize("nbits", [8, 4])
def test_distances_are_the_adc_estimates(metric, nbits):
    rng = np.random.default_rng(1)
    xb = clustered(rng, 3000, 32)
    xq = clustered(rng, 20, 32)
    index = nearly.IndexHNSWPQ(32, 8, 16, nbits, metric)
    assert not index.is_trained
    index.train(xb)
    index.add(xb)
    assert index.ntotal == 3000
    D, I = index.search(xq, 10)
    assert D.dtype == np.float32 and I.dtype == np.int64 and (I >= 0).all()
    rec = index.reconstruct_n(0, index.ntotal)
    S = dist64(xq, rec, metric)
    np.testing.assert_allclose(D, np.take_along_axis(S, I, 1), rtol=1e-4, atol=1e-4)
    assert (np.diff(D, axis=1) >= 0).all() if metric == METRIC_L2 else (np.diff(D, axis=1) <= 0).all()
    # the codes are the product quantizer's
    codes = index.pq.compute_codes(xb[:50])
    np.testing.assert_array_equal(index.pq.decode(codes), rec[:50])


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP], ids=["L2", "IP"])
def test_walk_finds_the_exhaustive_adc_neighbours_on_real_data(metric):
    index, xq = real_pq_index(metric)
    best, _ = adc_ranking(index, xq, metric, 10)
    found = {}
    for ef in (16, 64, 128):
        index.hnsw.efSearch = ef
        found[ef] = recall(index.search(xq, 10)[1], best)
    assert found[128] >= 0.97, found
    assert found[16] <= found[64] + 0.01 <= found[128] + 0.02, found
    # and against the true neighbours, what a PQ48 code of 384 floats allows
    xb = real_data()[0][:20_000]
    true = np.argsort(dist64(xq, xb, metric) * (1 if metric == METRIC_L2 else -1), axis=1)[:, :10]
    assert recall(index.search(xq, 10)[1], true) >= 0.6


def test_inner_product_graph_links_by_the_metric_that_ranks_best():
    """Trained on vectors of one norm, an inner-product index links its graph
    by L2 (the same ranking, and pruning that the codes' unequal norms do not
    mislead); on unequal norms (maximum inner product search) by inner
    product, which L2 links would cost recall."""
    xb_all, xq = real_data()
    xb = xb_all[:10_000]
    unit = nearly.IndexHNSWPQ(xb.shape[1], PQ_M, 32, 8, METRIC_IP)
    assert unit.graph_ip  # until trained
    unit.train(xb)
    assert not unit.graph_ip
    assert not nearly.IndexHNSWPQ(16, 4).graph_ip
    scaled = xb * np.random.default_rng(10).uniform(0.5, 1.5, (len(xb), 1)).astype(np.float32)
    mips = nearly.IndexHNSWPQ(xb.shape[1], PQ_M, 32, 8, METRIC_IP)
    mips.train(scaled)
    assert mips.graph_ip
    mips.add(scaled)
    mips.hnsw.efSearch = 64
    true = np.argsort(-dist64(xq, scaled, METRIC_IP), axis=1)[:, :10]
    assert recall(mips.search(xq, 10)[1], true) >= 0.63


def test_refine_gives_exact_distances():
    xb_all, xq = real_data()
    xb = xb_all[:5000]
    index = nearly.index_factory(xb.shape[1], "HNSW32,PQ48,RFlat")
    assert isinstance(index.base_index, nearly.IndexHNSWPQ)
    index.train(xb)
    index.add(xb)
    index.k_factor = 8
    D, I = index.search(xq[:50], 10)
    S = dist64(xq[:50], xb, METRIC_L2)
    np.testing.assert_allclose(D, np.take_along_axis(S, I, 1), rtol=1e-4, atol=1e-5)
    assert recall(I, np.argsort(S, axis=1)[:, :10]) >= 0.9


@pytest.mark.parametrize("keep", [0.5, 0.005])
def test_filtered_search_keeps_to_the_filter(keep):
    index, xq = real_pq_index(METRIC_L2)
    index.hnsw.efSearch = 64
    rng = np.random.default_rng(2)
    allowed = np.sort(rng.choice(index.ntotal, int(keep * index.ntotal), replace=False))
    mask = np.zeros(index.ntotal, bool)
    mask[allowed] = True
    params = nearly.SearchParametersHNSW(efSearch=64, sel=nearly.IDSelectorBatch(allowed))
    D, I = index.search(xq, 10, params=params)
    assert mask[I[I >= 0]].all()
    best, S = adc_ranking(index, xq, METRIC_L2, 10, mask=mask)
    r = recall(I, best)
    if keep < 0.1:  # too few pass for the walk: scanned exhaustively, so exactly the ADC ranking
        assert r == 1.0
        np.testing.assert_allclose(D, np.take_along_axis(S, I, 1), rtol=1e-4, atol=1e-4)
    else:
        assert r >= 0.9, r


def test_remove_ids_then_add_again():
    rng = np.random.default_rng(3)
    xb = clustered(rng, 4000, 32)
    xq = clustered(rng, 30, 32)
    index = nearly.IndexHNSWPQ(32, 16, 16)
    index.train(xb)
    index.add_with_ids(xb, np.arange(4000, dtype=np.int64) * 10)
    gone = np.arange(0, 40000, 30, dtype=np.int64)
    assert index.remove_ids(nearly.IDSelectorBatch(gone)) == len(gone)
    assert index.ntotal == 4000 - len(gone)
    # 256: at 128 the graphs of a 2-thread build (their order differs from
    # run to run) reach 0.93-0.96 of this ranking, before deletes as well
    index.hnsw.efSearch = 256
    D, I = index.search(xq, 10)
    assert not np.isin(I, gone).any()
    left = np.setdiff1d(np.arange(4000) * 10, gone)
    best, _ = adc_ranking(index, xq, METRIC_L2, 10, ids=left)
    assert recall(I, best) >= 0.95
    with pytest.raises(IndexError):
        index.reconstruct(30)
    fresh = clustered(rng, 300, 32)
    index.add_with_ids(fresh, np.arange(300, dtype=np.int64) + 100_000)
    now = np.concatenate([left, np.arange(300) + 100_000])
    best, _ = adc_ranking(index, fresh[:50], METRIC_L2, 5, ids=now)
    assert recall(index.search(fresh[:50], 5)[1], best) >= 0.95  # freed slots reused, the new nodes reachable


def test_serialize_round_trip_and_corrupt_files():
    rng = np.random.default_rng(4)
    xb = clustered(rng, 2000, 32)
    index = nearly.IndexHNSWPQ(32, 8, 16, 4, METRIC_IP)
    blank = nearly.deserialize_index(nearly.serialize_index(index))
    assert isinstance(blank, nearly.IndexHNSWPQ) and not blank.is_trained
    index.train(xb)
    index.add(xb)
    index.hnsw.efSearch = 40
    buf = nearly.serialize_index(index)
    back = nearly.deserialize_index(buf)
    assert isinstance(back, nearly.IndexHNSWPQ)
    assert back.metric_type == METRIC_IP and back.hnsw.efSearch == 40 and back.pq.nbits == 4
    for a, b in zip(index.search(xb[:20], 5), back.search(xb[:20], 5)):
        np.testing.assert_array_equal(a, b)
    assert back.graph_ip == index.graph_ip
    back.add(xb[:10])
    assert back.ntotal == 2010
    for cut in (10, len(buf) // 2, len(buf) - 9):
        with pytest.raises(RuntimeError):
            nearly.deserialize_index(buf[:cut])
    bad = bytearray(buf)
    bad[len(bad) // 2] ^= 0xFF
    with pytest.raises(RuntimeError):
        nearly.deserialize_index(bytes(bad))


def test_bad_input():
    x = np.random.default_rng(5).standard_normal((600, 16)).astype(np.float32)
    with pytest.raises(ValueError, match="multiple of pq_m"):
        nearly.IndexHNSWPQ(16, 5)
    with pytest.raises(RuntimeError, match="nbits=17 not implemented"):
        nearly.IndexHNSWPQ(16, 4, 32, 17)
    with pytest.raises(ValueError, match="M must be"):
        nearly.IndexHNSWPQ(16, 4, 1)
    index = nearly.IndexHNSWPQ(16, 4, 8)
    with pytest.raises(RuntimeError, match="not trained"):
        index.add(x)
    with pytest.raises(RuntimeError, match="is_trained"):
        index.search(x[:2], 1)
    with pytest.raises(ValueError):
        index.train(np.full((300, 16), np.nan, np.float32))
    index.train(x)
    D, I = index.search(x[:2], 3)  # empty: padding
    assert (I == -1).all() and (D == np.finfo(np.float32).max).all()
    index.add(x[:5])
    D, I = index.search(x[:2], 8)  # k > ntotal: padded after the 5
    assert (I[:, 5:] == -1).all() and (I[:, :5] >= 0).all()
    with pytest.raises(ValueError, match="reset"):
        index.train(x)
    with pytest.raises(ValueError):
        index.set_pq_centroids(index.pq.centroids)  # filled: the codes would go stale
    with pytest.raises(ValueError):
        index.search(x[:2], 0)
    with pytest.raises(ValueError):
        index.search(np.full((1, 16), np.nan, np.float32), 1)
    with pytest.raises(ValueError):
        index.search(x[:2, :8], 1)
    with pytest.raises(ValueError, match="efSearch"):
        index.search(x[:2], 1, params=nearly.SearchParametersHNSW(efSearch=0))
    index.reset()
    with pytest.raises(ValueError, match="floats"):
        index.set_pq_centroids(np.zeros(7, np.float32))
    index.set_pq_centroids(index.pq.centroids)


def test_factory_strings():
    for desc, (pq_m, nbits, M) in {"HNSW32,PQ16": (16, 8, 32), "HNSW_PQ8x4": (8, 4, 32),
                                    "HNSW16,PQ32np": (32, 8, 16), "HNSW48_PQ16x8": (16, 8, 48)}.items():
        index = nearly.index_factory(64, desc, METRIC_IP)
        assert isinstance(index, nearly.IndexHNSWPQ), desc
        assert (index.pq.M, index.pq.nbits, index.hnsw.M, index.metric_type) == (pq_m, nbits, M, METRIC_IP)
    with pytest.raises(RuntimeError):
        nearly.index_factory(64, "HNSW32,PQ16x17")


def test_memory_is_the_codes_not_the_vectors():
    rng = np.random.default_rng(6)
    xb = rng.standard_normal((20_000, 128)).astype(np.float32)
    pq = nearly.IndexHNSWPQ(128, 16, 16)
    pq.train(xb[:5000])
    pq.add(xb)
    flat = nearly.IndexHNSWFlat(128, 16)
    flat.add(xb)
    codebooks = 128 * 256 * 4
    per_vector = (pq.memory_bytes() - codebooks) / 20_000
    block = -(-(16 + 4 * (1 + 2 * 16)) // 64) * 64  # code, level-0 count and links, in 64-byte lines
    assert per_vector < block + 80, per_vector  # + id, level, in-degree, upper links, id map
    assert pq.memory_bytes() < flat.memory_bytes() / 3


def test_adds_concurrent_with_searches():
    rng = np.random.default_rng(7)
    xb = clustered(rng, 6000, 32)
    index = nearly.IndexHNSWPQ(32, 8, 16)
    index.train(xb)
    index.add(xb[:500])
    errors, done = [], threading.Event()

    def reader():
        try:
            while not done.is_set():
                n0 = index.ntotal
                D, I = index.search(xb[:20], 5)
                assert (I >= 0).all() and (I < 6000).all()
                assert index.ntotal >= n0
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for a in range(500, 6000, 250):
        index.add(xb[a:a + 250])
    done.set()
    for t in threads:
        t.join()
    assert not errors, errors
    index.hnsw.efSearch = 64
    assert recall(index.search(xb[:200], 1)[1], np.arange(200)[:, None]) >= 0.9


def test_verbose_add_shows_progress(capfd):
    rng = np.random.default_rng(8)
    xb = clustered(rng, 5000, 16)
    index = nearly.IndexHNSWPQ(16, 4, 8)
    index.train(xb)
    index.verbose = True
    index.add(xb)
    assert "HNSW add: 5000 / 5000" in capfd.readouterr().out


def test_ctrl_c_interrupts_a_long_add():
    rng = np.random.default_rng(9)
    xb = rng.standard_normal((400_000, 64)).astype(np.float32)
    index = nearly.IndexHNSWPQ(64, 16, 32)
    index.train(xb[:20_000])
    index.hnsw.efConstruction = 200
    elapsed = seconds_until_interrupted(lambda: index.add(xb))
    assert elapsed < 10, f"the interrupt took {elapsed:.1f}s to land"
    n = index.ntotal
    assert n < len(xb)
    D, I = index.search(xb[:5], 1)  # the prefix added before the interrupt is searchable
    assert (I[:, 0] >= 0).all() and (I[:, 0] < n).all()
