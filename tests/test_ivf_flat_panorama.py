"""IndexIVFFlatPanorama (ivf_flat_panorama.h): IVF-Flat whose lists lie in
Panorama's level-major batches with their tail norms. With every list
probed it must give float64 numpy brute force's answer; with some, exactly
IndexIVFFlat's over the same centroids. The tail norms are stored with the
codes (the L2 scores are built on them), so every kind of write (add across
batch edges, remove, update, merge, copies, reading a file) is followed by
a search checked against the reference."""
import numpy as np
import pytest

import nearly
from _testutil import (METRIC_IP, METRIC_L2, assert_knn_valid, assert_range_equiv, assert_same_search, range_ref,
                       range_to_dicts)
from test_panorama import decaying

METRICS = [METRIC_L2, METRIC_IP]


def trained_pair(xt, nlist, n_levels, batch, metric, seed=0):
    """An IndexIVFFlat and an IndexIVFFlatPanorama over the same centroids."""
    d = xt.shape[1]
    flat = nearly.IndexIVFFlat(nearly.IndexFlat(d, metric), d, nlist, metric)
    flat.cp.seed = seed
    flat.train(xt)
    centroids = flat.quantizer.reconstruct_n(0, nlist)
    q = nearly.IndexFlat(d, metric)
    q.add(centroids)
    pano = nearly.IndexIVFFlatPanorama(q, d, nlist, n_levels, metric, True, batch)
    assert pano.is_trained
    return flat, pano


@pytest.mark.parametrize("metric", METRICS, ids=["L2", "IP"])
@pytest.mark.parametrize("n_levels,batch", [(1, 1024), (4, 128), (8, 7), (16, 1), (48, 64)])
def test_all_lists_probed_is_brute_force(metric, n_levels, batch):
    xb, xq = decaying(1, 4000, 48)
    _, index = trained_pair(xb, 16, n_levels, batch, metric)
    index.add(xb)
    index.nprobe = 16
    for k in (1, 10, 100):
        D, I = index.search(xq, k)
        assert_knn_valid(D, I, xq, xb, k, metric)


@pytest.mark.parametrize("metric", METRICS, ids=["L2", "IP"])
@pytest.mark.parametrize("threads", [1, 4])
def test_some_lists_probed_like_ivf_flat(metric, threads):
    xb, xq = decaying(2, 12000, 64, nq=200)
    flat, pano = trained_pair(xb, 64, 8, 128, metric)
    flat.add(xb)
    pano.add(xb)
    nt = nearly.omp_get_max_threads()
    nearly.omp_set_num_threads(threads)
    try:
        for nprobe in (1, 4, 16):
            flat.nprobe = pano.nprobe = nprobe
            assert_same_search(flat, pano, xq, 10)
        # k beyond what the probed lists hold: padded like IndexIVFFlat
        flat.nprobe = pano.nprobe = 1
        D, I = assert_same_search(flat, pano, xq[:5], 1000)
        assert (I == -1).any()
    finally:
        nearly.omp_set_num_threads(nt)


@pytest.mark.parametrize("metric", METRICS, ids=["L2", "IP"])
def test_pruning_reads_less_and_counts(metric):
    xb, xq = decaying(3, 20000, 64, nq=50)
    _, index = trained_pair(xb, 8, 16, 128, metric)
    index.add(xb)
    index.nprobe = 8
    stats = nearly.cvar.indexPanorama_stats
    stats.reset()
    index.search(xq[:7], 10)  # 7 queries per list: each scans its lists, pruning
    # every candidate counted with its 16 levels; far fewer levels read
    assert stats.total_dims == 7 * 20000 * 16
    assert 0 < stats.ratio_dims_scanned < 0.5
    # from IndexIVFFlatPanorama.kProductQueriesPerList (8) queries per probed
    # list, a list is scored for all of them by matrix products: all read
    stats.reset()
    D, I = index.search(xq, 10)
    assert stats.total_dims == stats.total_dims_scanned == 50 * 20000 * 16
    assert_knn_valid(D, I, xq, xb, 10, metric)
    # the degenerate case faiss tests: all vectors equal but one, which is
    # the query; after the first batch nothing is read past level 0
    xb = np.ones((5000, 32), np.float32)
    xb[-1] = 0
    for n_levels in (1, 4, 8):
        q = nearly.IndexFlat(32, metric)
        q.add(np.zeros((1, 32), np.float32))
        index = nearly.IndexIVFFlatPanorama(q, 32, 1, n_levels, metric, True, 128)
        index.add(xb)
        stats.reset()
        D, I = index.search(np.zeros((1, 32), np.float32), 1)
        if metric == METRIC_L2:
            assert I[0, 0] == 4999 and D[0, 0] == 0
        full = 129 if metric == METRIC_L2 else 128
        expected = (full * n_levels + (5000 - full)) / (5000 * n_levels)
        assert stats.ratio_dims_scanned == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("metric", METRICS, ids=["L2", "IP"])
def test_selectors_budgets_and_range_search(metric):
    xb, xq = decaying(4, 6000, 32, nq=30)
    flat, pano = trained_pair(xb, 16, 8, 64, metric)
    flat.add(xb)
    pano.add(xb)
    flat.nprobe = pano.nprobe = 16
    ids = np.arange(6000)
    for sel in (nearly.IDSelectorRange(1000, 2500), nearly.IDSelectorBatch(ids[::7]),
                nearly.IDSelectorNot(nearly.IDSelectorRange(0, 5900))):
        params = nearly.SearchParametersIVF(sel=sel, nprobe=16)
        D, I = pano.search(xq, 10, params=params)
        keep = np.array([sel.is_member(int(i)) for i in ids])
        assert_knn_valid(D, I, xq, xb[keep], 10, metric, ids=ids[keep])
    # assume_sorted ranges start the scan at a batch edge inside the list
    sel = nearly.IDSelectorRange(1000, 2500, True)
    params = nearly.SearchParametersIVF(sel=sel, nprobe=16)
    D, I = pano.search(xq, 10, params=params)
    assert_knn_valid(D, I, xq, xb[1000:2500], 10, metric, ids=ids[1000:2500])
    # a budget of codes stops inside a batch, as IndexIVFFlat's does
    params = nearly.SearchParametersIVF(nprobe=4, max_codes=700)
    assert_same_search(flat, pano, xq, 10, params=params)
    # range search: the radius is the pruning threshold
    flat.nprobe = pano.nprobe = 16
    D, _ = flat.search(xq, 20)
    radius = float(np.median(D[:, -1]))
    lims, Dr, Ir = pano.range_search(xq, radius)
    ref = range_ref(xq, xb, radius, metric)
    assert_range_equiv(range_to_dicts(lims, Dr, Ir), ref, atol=1e-3, radius=radius)
    pano.nprobe = 4
    lp = pano.range_search(xq, radius)
    flat.nprobe = 4
    lf = flat.range_search(xq, radius)
    np.testing.assert_array_equal(lp[0], lf[0])
    np.testing.assert_array_equal(lp[2], lf[2])
    np.testing.assert_allclose(lp[1], lf[1], rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("metric", METRICS, ids=["L2", "IP"])
def test_writes_keep_codes_and_tail_norms(metric):
    xb, xq = decaying(5, 5000, 40)
    flat, pano = trained_pair(xb, 8, 5, 100, metric)
    flat.nprobe = pano.nprobe = 8
    # added in pieces that end inside batches, with ids of our own
    ids = np.arange(5000) * 3 + 7
    for a, b in ((0, 1), (1, 150), (150, 151), (151, 5000)):
        pano.add_with_ids(xb[a:b], ids[a:b])
        flat.add_with_ids(xb[a:b], ids[a:b])
    assert_same_search(flat, pano, xq, 10)
    pano.make_direct_map()
    flat.make_direct_map()
    np.testing.assert_array_equal(pano.reconstruct(int(ids[1234])), xb[1234])
    # removal compacts every list (later entries move to earlier batches)
    gone = nearly.IDSelectorBatch(ids[::3])
    assert pano.remove_ids(gone) == flat.remove_ids(gone) == len(ids[::3])
    assert_same_search(flat, pano, xq, 10)
    # update: entries leave their list and join another
    rng = np.random.default_rng(5)
    upd = ids[1::3][:300]
    new = decaying(6, 300, 40, nq=1)[0]
    pano.update_vectors(upd, new)
    flat.update_vectors(upd, new)
    assert_same_search(flat, pano, xq, 10)
    np.testing.assert_array_equal(pano.reconstruct(int(upd[5])), new[5])
    kept = np.setdiff1d(ids, ids[::3])
    rows = {int(i): r for r, i in enumerate(ids)}
    truth = xb[[rows[int(i)] for i in kept]].copy()
    where = {int(i): r for r, i in enumerate(kept)}
    for j, i in enumerate(upd):
        truth[where[int(i)]] = new[j]
    D, I = pano.search(xq, 10)
    assert_knn_valid(D, I, xq, truth, 10, metric, ids=kept)
    # merge, from an index with other levels and batches
    q = nearly.IndexFlat(40, metric)
    q.add(pano.quantizer.reconstruct_n(0, 8))
    other = nearly.IndexIVFFlatPanorama(q, 40, 8, 13, metric, True, 17)
    extra = decaying(7, 700, 40, nq=1)[0]
    other.add_with_ids(extra, np.arange(700) + 100000)
    pano.merge_from(other)
    assert other.ntotal == 0
    D, I = pano.search(xq, 10)
    assert_knn_valid(D, I, xq, np.vstack([truth, extra]), 10, metric, ids=np.concatenate([kept, np.arange(700) + 100000]))
    rng.shuffle(truth)  # (nothing below depends on truth's order)
    # copies: standalone codes, a subset, search_and_reconstruct
    codes = pano.sa_encode(xq)
    np.testing.assert_array_equal(pano.sa_decode(codes), xq)
    q = nearly.IndexFlat(40, metric)
    q.add(pano.quantizer.reconstruct_n(0, 8))
    sub = nearly.IndexIVFFlatPanorama(q, 40, 8, 5, metric, True, 100)
    pano.copy_subset_to(sub, 0, 100000, 100700)
    assert sub.ntotal == 700
    sub.nprobe = 8
    D, I = sub.search(xq, 5)
    assert_knn_valid(D, I, xq, extra, 5, metric, ids=np.arange(700) + 100000)
    D, I, R = pano.search_and_reconstruct(xq[:3], 4)
    for q in range(3):
        for j in range(4):
            np.testing.assert_array_equal(R[q, j], pano.reconstruct(int(I[q, j])))
    pano.reset()
    assert pano.ntotal == 0
    assert (pano.search(xq, 3)[1] == -1).all()


@pytest.mark.parametrize("metric", METRICS, ids=["L2", "IP"])
def test_persistence_and_factory(metric, tmp_path):
    xb, xq = decaying(8, 3000, 32)
    index = nearly.index_factory(32, "IVF16,FlatPanorama4_100", metric)
    assert type(index).__name__ == "IndexIVFFlatPanorama"
    assert (index.n_levels, index.batch_size) == (4, 100)
    default = nearly.index_factory(32, "IVF16,FlatPanorama", metric)
    assert (default.n_levels, default.batch_size) == (8, nearly.Panorama.kDefaultBatchSize)
    index.train(xb)
    index.add(xb)
    index.nprobe = 5
    D, I = index.search(xq, 10)
    back = nearly.deserialize_index(nearly.serialize_index(index))
    assert type(back).__name__ == "IndexIVFFlatPanorama"
    assert (back.n_levels, back.batch_size, back.ntotal, back.nprobe) == (4, 100, 3000, 5)
    D2, I2 = back.search(xq, 10)
    np.testing.assert_array_equal(I, I2)
    np.testing.assert_array_equal(D, D2)
    path = str(tmp_path / "p.index")
    nearly.write_index(index, path)
    mapped = nearly.read_index(path, nearly.IO_FLAG_MMAP)
    np.testing.assert_array_equal(mapped.search(xq, 10)[1], I)
    data = nearly.serialize_index(index)
    for cut in (len(data) // 2, len(data) - 3):
        with pytest.raises(RuntimeError):
            nearly.deserialize_index(data[:cut])
    clone = nearly.clone_index(index)
    np.testing.assert_array_equal(clone.search(xq, 10)[1], I)


def test_refusals():
    q = nearly.IndexFlatL2(16)
    with pytest.raises(ValueError, match="n_levels must be > 0"):
        nearly.IndexIVFFlatPanorama(q, 16, 4, 0)
    with pytest.raises(ValueError, match="n_levels must be <= d"):
        nearly.IndexIVFFlatPanorama(q, 16, 4, 17)
    with pytest.raises(ValueError, match="batch_size"):
        nearly.IndexIVFFlatPanorama(q, 16, 4, 4, nearly.METRIC_L2, True, 0)
    with pytest.raises(ValueError, match="L2 or inner product"):
        nearly.IndexIVFFlatPanorama(nearly.IndexFlat(16, nearly.METRIC_L1), 16, 4, 4, nearly.METRIC_L1)
    with pytest.raises(RuntimeError, match="own_invlists"):
        nearly.IndexIVFFlatPanorama(q, 16, 4, 4, nearly.METRIC_L2, False)
    index = nearly.IndexIVFFlatPanorama(q, 16, 4, 4)
    with pytest.raises(RuntimeError, match="trained"):
        index.add(np.zeros((3, 16), np.float32))
    rng = np.random.default_rng(0)
    index.train(rng.standard_normal((200, 16)).astype(np.float32))
    with pytest.raises(ValueError):
        index.add(np.full((3, 16), np.nan, np.float32))
    with pytest.raises(ValueError):
        index.search(np.zeros((2, 15), np.float32), 3)
    with pytest.raises(ValueError):
        index.search(np.zeros((2, 16), np.float32), 0)
    # merging into the plain family is refused (its lists mean another layout)
    flat = nearly.IndexIVFFlat(nearly.IndexFlatL2(16), 16, 4)
    flat.quantizer.add(index.quantizer.reconstruct_n(0, 4))
    with pytest.raises(RuntimeError, match="IndexIVFFlat"):
        flat.merge_from(index)
