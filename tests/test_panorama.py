"""Panorama (flat_panorama.h): exact search read a level of dimensions at a
time, candidates dropped by Cauchy-Schwarz bounds. Every result is checked
against float64 numpy brute force; the pruning itself against the counters
(it must read less on data whose energy sits in the first dimensions, and
never drop a true neighbour); the per-row tail norms against numpy after
every kind of write."""
import numpy as np
import pytest

import nearly
from _testutil import METRIC_IP, METRIC_L2, assert_knn_valid, brute_force, distances64, tolerance

METRICS = [METRIC_L2, METRIC_IP]


def decaying(seed, n, d, nq=20):
    """Clustered vectors whose variance decays along the dimensions, as after
    a PCA: what Panorama prunes on."""
    rng = np.random.default_rng(seed)
    scale = np.exp(-np.arange(d) / (d / 6)).astype(np.float32)
    centres = rng.standard_normal((50, d)).astype(np.float32)
    lab = rng.integers(50, size=n + nq)
    x = (centres[lab] + 0.3 * rng.standard_normal((n + nq, d)).astype(np.float32)) * scale
    return x[:n].astype(np.float32), x[n:].astype(np.float32)


def expected_tails(x, n_levels):
    d = x.shape[1]
    width = -(-d // n_levels)
    levels = -(-d // width)
    out = np.zeros((len(x), levels + 1))
    for l in range(levels):
        out[:, l] = np.sqrt((x[:, l * width:].astype(np.float64) ** 2).sum(1))
    return out


def check_tails(index, x):
    got = index.cum_sums.reshape(index.ntotal, index.n_levels + 1)
    np.testing.assert_allclose(got, expected_tails(x, index.n_levels), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("metric", METRICS, ids=["L2", "IP"])
@pytest.mark.parametrize("n_levels,batch", [(1, 1024), (4, 128), (8, 64), (24, 1), (48, 100)])
def test_knn_equals_brute_force(metric, n_levels, batch):
    xb, xq = decaying(1, 3000, 48)
    index = nearly.IndexFlatPanorama(48, metric, n_levels, batch)
    index.add(xb)
    for k in (1, 10, 100):
        D, I = index.search(xq, k)
        assert_knn_valid(D, I, xq, xb, k, metric)


@pytest.mark.parametrize("metric", METRICS, ids=["L2", "IP"])
def test_few_queries_split_over_threads_and_k_beyond_ntotal(metric):
    xb, xq = decaying(2, 20000, 32, nq=3)
    index = nearly.IndexFlatPanorama(32, metric, 8, 256)
    index.add(xb)
    nt = nearly.omp_get_max_threads()
    try:
        for threads in (1, 4):
            nearly.omp_set_num_threads(threads)
            for nq in (1, 3):
                D, I = index.search(xq[:nq], 50)
                assert_knn_valid(D, I, xq[:nq], xb, 50, metric)
    finally:
        nearly.omp_set_num_threads(nt)
    small = nearly.IndexFlatPanorama(32, metric, 4, 16)
    small.add(xb[:7])
    D, I = small.search(xq, 10)
    assert_knn_valid(D, I, xq, xb[:7], 10, metric)
    assert (I[:, 7:] == -1).all()


@pytest.mark.parametrize("metric", METRICS, ids=["L2", "IP"])
def test_many_queries_by_matrix_products(metric):
    """From IndexFlatPanorama.kProductQueries (32) queries a search scores
    whole batches by matrix products: the same exact answer, every slice
    counted as read."""
    xb, xq = decaying(12, 5000, 40, nq=150)
    index = nearly.IndexFlatPanorama(40, metric, 5, 300)
    index.add(xb)
    nt = nearly.omp_get_max_threads()
    try:
        for threads in (1, 3):
            nearly.omp_set_num_threads(threads)
            for nq in (31, 32, 150):
                D, I = index.search(xq[:nq], 10)
                assert_knn_valid(D, I, xq[:nq], xb, 10, metric)
    finally:
        nearly.omp_set_num_threads(nt)
    stats = nearly.cvar.indexPanorama_stats
    stats.reset()
    index.search(xq[:40], 5)
    assert stats.total_dims == stats.total_dims_scanned == 40 * 5000 * 5
    keep = np.arange(700, 1900)
    params = nearly.SearchParameters(sel=nearly.IDSelectorRange(700, 1900))
    D, I = index.search(xq, 10, params=params)
    assert_knn_valid(D, I, xq, xb[keep], 10, metric, ids=keep)
    small = nearly.IndexFlatPanorama(40, metric, 4, 16)
    small.add(xb[:7])
    D, I = small.search(xq, 10)
    assert_knn_valid(D, I, xq, xb[:7], 10, metric)
    assert (I[:, 7:] == -1).all()


def test_levels_like_faiss_and_tail_norms():
    x = np.random.default_rng(3).standard_normal((50, 10)).astype(np.float32)
    for n_levels, kept in [(1, 1), (4, 4), (6, 5), (10, 10), (3, 3)]:
        index = nearly.IndexFlatL2Panorama(10, n_levels)
        assert index.n_levels == kept
        index.add(x)
        check_tails(index, x)


@pytest.mark.parametrize("metric", METRICS, ids=["L2", "IP"])
def test_pruning_reads_less_and_counts(metric):
    xb, xq = decaying(4, 20000, 64)
    index = nearly.IndexFlatPanorama(64, metric, 16, 512)
    index.add(xb)
    nt = nearly.omp_get_max_threads()
    nearly.omp_set_num_threads(1)
    try:
        ratios = []
        for n_levels in (1, 4, 16):
            other = nearly.IndexFlatPanorama(64, metric, n_levels, 512)
            other.add(xb)
            nearly.cvar.indexPanorama_stats.reset()
            D, I = other.search(xq, 10)
            assert_knn_valid(D, I, xq, xb, 10, metric)
            stats = nearly.cvar.indexPanorama_stats
            assert stats.total_dims == len(xq) * len(xb) * other.n_levels
            ratios.append(stats.ratio_dims_scanned)
    finally:
        nearly.omp_set_num_threads(nt)
    assert ratios[0] == 1.0
    assert ratios[1] < 0.8 and ratios[2] < ratios[1], ratios


def test_one_level_early_exit_is_exact():
    # Every row but the last is all ones, the queries are 0: once the first
    # batch (read whole: no threshold yet) has filled the heap, every row is
    # dropped after its first level, as faiss's own test expects.
    xb = np.ones((20000, 64), np.float32)
    xb[-1] = 0
    xq = np.zeros((3, 64), np.float32)
    for metric in METRICS:
        index = nearly.IndexFlatPanorama(64, metric, 16, 128)
        index.add(xb)
        nt = nearly.omp_get_max_threads()
        nearly.omp_set_num_threads(1)
        try:
            nearly.cvar.indexPanorama_stats.reset()
            D, I = index.search(xq, 1)
        finally:
            nearly.omp_set_num_threads(nt)
        if metric == METRIC_L2:
            assert (I[:, 0] == len(xb) - 1).all() and (D == 0).all()
        ratio = nearly.cvar.indexPanorama_stats.ratio_dims_scanned
        # (under L2 the zero row, the answer, is read whole)
        whole = 128 + (metric == METRIC_L2)
        assert ratio == pytest.approx((whole * 16 + (len(xb) - whole)) / (len(xb) * 16)), ratio


@pytest.mark.parametrize("metric", METRICS, ids=["L2", "IP"])
def test_selectors_and_range_search(metric):
    xb, xq = decaying(5, 4000, 40)
    index = nearly.IndexFlatPanorama(40, metric, 5, 100)
    index.add(xb)
    keep = np.arange(500, 2500)
    params = nearly.SearchParameters(sel=nearly.IDSelectorRange(500, 2500))
    D, I = index.search(xq, 10, params=params)
    Dr, Ir = brute_force(xq, xb[keep], 10, metric, ids=keep)
    assert_knn_valid(D, I, xq, xb[keep], 10, metric, ids=keep)
    params = nearly.SearchParameters(sel=nearly.IDSelectorRange(10**6, 10**6 + 5))
    D, I = index.search(xq, 5, params=params)
    assert (I == -1).all()

    dist = distances64(xq, xb, metric)
    radius = float(np.quantile(dist, 0.01 if metric == METRIC_L2 else 0.99))
    lims, Dr, Ir = index.range_search(xq, radius)
    tol = tolerance(xq, xb, metric)
    for q in range(len(xq)):
        got = dict(zip(Ir[lims[q]:lims[q + 1]].tolist(), Dr[lims[q]:lims[q + 1]].tolist()))
        inside = dist[q] < radius if metric == METRIC_L2 else dist[q] > radius
        sure = set(np.flatnonzero(inside & (np.abs(dist[q] - radius) > tol)).tolist())
        assert sure <= set(got), q
        assert all(abs(dist[q, i] - v) <= tol for i, v in got.items())
        assert all(inside[i] or abs(dist[q, i] - radius) <= tol for i in got)
    lims, _, Ir = index.range_search(xq, radius, params=nearly.SearchParameters(sel=nearly.IDSelectorRange(0, 100)))
    assert ((Ir >= 0) & (Ir < 100)).all()


@pytest.mark.parametrize("metric", METRICS, ids=["L2", "IP"])
def test_search_subset(metric):
    xb, xq = decaying(6, 3000, 32)
    index = nearly.IndexFlatPanorama(32, metric, 8, 16)
    index.add(xb)
    rng = np.random.default_rng(0)
    labels = np.stack([rng.choice(len(xb), 200, replace=False) for _ in xq]).astype(np.int64)
    labels[:, ::7] = -1
    D, I = index.search_subset(xq, labels, 10)
    for q in range(len(xq)):
        cand = labels[q][labels[q] >= 0]
        assert_knn_valid(D[q:q + 1], I[q:q + 1], xq[q:q + 1], xb[cand], 10, metric, ids=cand)
    bad = labels.copy()
    bad[0, 0] = len(xb)
    with pytest.raises(IndexError, match="out of range"):
        index.search_subset(xq, bad, 10)
    with pytest.raises(ValueError):
        index.search_subset(xq, labels[:3], 10)


@pytest.mark.parametrize("metric", METRICS, ids=["L2", "IP"])
def test_writes_keep_the_tail_norms(metric):
    xb, xq = decaying(7, 3000, 32)
    index = nearly.IndexFlatPanorama(32, metric, 6, 64)
    index.add(xb[:1000])
    index.add(xb[1000:2000])
    check_tails(index, xb[:2000])
    removed = index.remove_ids(np.arange(0, 2000, 3, dtype=np.int64))
    kept = np.delete(xb[:2000], np.arange(0, 2000, 3), axis=0)
    assert removed == 667 and index.ntotal == len(kept)
    check_tails(index, kept)
    other = nearly.IndexFlatPanorama(32, metric, 3, 7)
    other.add(xb[2000:])
    index.merge_from(other)
    assert other.ntotal == 0 and other.cum_sums.size == 0
    merged = np.concatenate([kept, xb[2000:]])
    check_tails(index, merged)
    perm = np.random.default_rng(1).permutation(index.ntotal).astype(np.int64)
    index.permute_entries(perm)
    check_tails(index, merged[perm])
    D, I = index.search(xq, 10)
    assert_knn_valid(D, I, xq, merged[perm], 10, metric)
    np.testing.assert_array_equal(index.reconstruct_n(0, index.ntotal), merged[perm])
    with pytest.raises(ValueError, match="permutation"):
        index.permute_entries(np.zeros(index.ntotal, np.int64))
    index.reset()
    assert index.ntotal == 0 and index.cum_sums.size == 0
    D, I = index.search(xq, 3) if index.ntotal else (None, None)


def test_plain_flat_permute_entries():
    xb, xq = decaying(8, 500, 16)
    for metric in METRICS:
        index = nearly.IndexFlat(16, metric)
        index.add(xb)
        perm = np.random.default_rng(2).permutation(500).astype(np.int64)
        index.permute_entries(perm)
        np.testing.assert_array_equal(index.reconstruct_n(0, 500), xb[perm])
        D, I = index.search(xq, 5)
        assert_knn_valid(D, I, xq, xb[perm], 5, metric)


@pytest.mark.parametrize("metric", METRICS, ids=["L2", "IP"])
def test_persistence(metric, tmp_path):
    xb, xq = decaying(9, 2000, 24)
    index = nearly.IndexFlatPanorama(24, metric, 5, 33)
    index.add(xb)
    D, I = index.search(xq, 10)
    back = nearly.deserialize_index(nearly.serialize_index(index))
    assert type(back).__name__ == ("IndexFlatL2Panorama" if metric == METRIC_L2 else "IndexFlatIPPanorama")
    assert (back.n_levels, back.batch_size, back.ntotal) == (5, 33, 2000)
    D2, I2 = back.search(xq, 10)
    np.testing.assert_array_equal(I, I2)
    np.testing.assert_array_equal(D, D2)
    np.testing.assert_array_equal(back.cum_sums, index.cum_sums)
    path = str(tmp_path / "p.index")
    nearly.write_index(index, path)
    mapped = nearly.read_index(path, nearly.IO_FLAG_MMAP)
    np.testing.assert_array_equal(mapped.search(xq, 10)[1], I)
    data = nearly.serialize_index(index)
    with pytest.raises(RuntimeError):
        nearly.deserialize_index(data[: len(data) // 2])


def test_refusals():
    with pytest.raises(ValueError, match="n_levels must be > 0"):
        nearly.IndexFlatL2Panorama(16, 0)
    with pytest.raises(ValueError, match="n_levels must be <= d"):
        nearly.IndexFlatL2Panorama(16, 17)
    with pytest.raises(ValueError, match="batch_size"):
        nearly.IndexFlatL2Panorama(16, 4, 0)
    with pytest.raises(RuntimeError, match="not implemented"):
        nearly.IndexFlatPanorama(16, nearly.METRIC_L1, 4)
    index = nearly.IndexFlatL2Panorama(16, 4)
    with pytest.raises(ValueError):
        index.add(np.full((3, 16), np.nan, np.float32))
    with pytest.raises(ValueError):
        index.search(np.zeros((2, 15), np.float32), 3)
    index.add(np.zeros((3, 16), np.float32))
    with pytest.raises(ValueError):
        index.search(np.zeros((2, 16), np.float32), 0)
    with pytest.raises(ValueError, match="metric"):
        nearly.index_factory(16, "FlatL2Panorama4", nearly.METRIC_INNER_PRODUCT)


@pytest.mark.parametrize("metric", METRICS, ids=["L2", "IP"])
def test_refine_panorama(metric):
    xb, xq = decaying(10, 5000, 32)
    xt = xb[:3000]
    name = "L2" if metric == METRIC_L2 else "IP"
    index = nearly.index_factory(32, f"IVF32,PQ8x4,RefinePanorama(Flat{name}Panorama8_1)", metric)
    assert isinstance(index, nearly.IndexRefinePanorama)
    assert isinstance(index.refine_index, nearly.IndexFlatPanorama)
    plain = nearly.index_factory(32, "IVF32,PQ8x4,RFlat", metric)
    for i in (index, plain):
        i.train(xt)
        i.add(xb)
        i.base_index.nprobe = 32
    params = nearly.IndexRefineSearchParameters(k_factor=50)
    D, I = index.search(xq, 10, params=params)
    D2, I2 = plain.search(xq, 10, params=params)
    np.testing.assert_allclose(D, D2, rtol=1e-5, atol=1e-4)
    assert (I == I2).mean() > 0.99
    # With every vector a candidate, the refined result is the exact one.
    params = nearly.IndexRefineSearchParameters(k_factor=len(xb) / 10)
    D, I = index.search(xq, 10, params=params)
    assert_knn_valid(D, I, xq, xb, 10, metric)
    back = nearly.deserialize_index(nearly.serialize_index(index))
    assert isinstance(back, nearly.IndexRefinePanorama)
    np.testing.assert_array_equal(back.search(xq, 10, params=params)[1], I)
