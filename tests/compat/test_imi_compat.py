"""The inverted multi-index (faiss's MultiIndexQuantizer, "IMI2x{nbits}"):
its cell enumeration against brute force over every cell, its search against
faiss's with the same sub-centroids, IVF families over it against faiss, the
decomposed precomputed tables of IVFPQ (type 2) against the per-list ones,
persistence and the refusals."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import _testutil
import nearly

# faiss on one thread: its k-means spin-waits on a loaded 2-core machine
pytestmark = pytest.mark.usefixtures("faiss_one_thread")


def clustered(rng, n, d=32):
    return _testutil.clustered(rng, n, d, nclusters=60, scale=2.0, spread=0.4)


def brute_cells(tab):
    """(sums, cells) of every cell of one (M, ksub) table, cell = sum t_m ksub^m,
    the sums added in order m in float32 like the index."""
    M, ksub = tab.shape
    cells = np.arange(ksub ** M)
    sums = np.zeros(len(cells), np.float32)
    for m in range(M):
        sums = sums + tab[m][(cells // ksub ** m) % ksub]
    return sums, cells


@settings(max_examples=60, deadline=None)
@given(M=st.integers(1, 3), nbits=st.integers(1, 4), k=st.integers(1, 80), seed=st.integers(0, 10**6),
       ties=st.booleans())
def test_nearest_cells_are_the_k_smallest_sums(M, nbits, k, seed, ties):
    """Every cell once, in ascending order of its sum, equal to brute force
    (small integer tables make many ties); k beyond ksub^M is padded."""
    ksub = 1 << nbits
    q = nearly.MultiIndexQuantizer(M * 2, M, nbits)
    rng = np.random.default_rng(seed)
    tab = (rng.integers(0, 4, (M, ksub)) if ties else rng.standard_normal((M, ksub))).astype(np.float32)
    D, I = q._nearest_cells(tab, k)
    sums, cells = brute_cells(tab)
    found = min(k, len(cells))
    np.testing.assert_array_equal(D[:found], np.sort(sums)[:found])
    assert len(set(I[:found].tolist())) == found
    np.testing.assert_array_equal(sums[I[:found]], D[:found])
    assert (I[found:] == -1).all() and (D[found:] == np.finfo(np.float32).max).all()


def trained_pair(faiss, d=32, M=2, nbits=6, n=20000):
    """faiss's MultiIndexQuantizer trained on clustered data, and nearly's with
    the same sub-centroids."""
    xb = clustered(np.random.default_rng(0), n, d)
    theirs = faiss.MultiIndexQuantizer(d, M, nbits)
    theirs.train(xb)
    ours = nearly.MultiIndexQuantizer(d, M, nbits)
    ours.pq.centroids = faiss.vector_to_array(theirs.pq.centroids)
    ours.is_trained = True
    return ours, theirs, xb


def test_quantizer_search_matches_faiss_and_brute_force(faiss):
    ours, theirs, xb = trained_pair(faiss)
    assert ours.ntotal == theirs.ntotal == 4096
    xq = clustered(np.random.default_rng(1), 300)
    tabs = ours.pq.compute_distance_tables(xq)
    for k in (1, 7, 100):
        Do, Io = ours.search(xq, k)
        Dt, It = theirs.search(xq, k)
        # faiss sums by increments, nearly directly: near ties may swap
        assert (Io == It).mean() > 0.999, k
        np.testing.assert_allclose(Do, Dt, rtol=1e-5, atol=1e-4)
        for i in range(0, 300, 37):  # exactly the brute-force order of nearly's own sums
            sums, _ = brute_cells(tabs[i])
            np.testing.assert_array_equal(Do[i], np.sort(sums)[:k])
            np.testing.assert_array_equal(sums[Io[i]], Do[i])
    # every cell once at k = ntotal (faiss's enumeration repeats cells there)
    Do, Io = ours.search(xq[:5], 4096)
    assert all(len(set(r)) == 4096 for r in Io) and (np.diff(Do, axis=1) >= 0).all()


def test_quantizer_reconstruct_and_refusals(faiss):
    ours, theirs, _ = trained_pair(faiss)
    for key in (0, 1, 63, 64, 4095, 1234):
        np.testing.assert_array_equal(ours.reconstruct(key), theirs.reconstruct(key))
    np.testing.assert_array_equal(ours.reconstruct_n(100, 5), theirs.reconstruct_n(100, 5))
    with pytest.raises(IndexError):
        ours.reconstruct(4096)
    with pytest.raises(RuntimeError, match="virtual elements"):
        ours.add(np.zeros((1, 32), np.float32))
    with pytest.raises(RuntimeError, match="virtual elements"):
        ours.reset()
    fresh = nearly.MultiIndexQuantizer(32, 2, 6)
    assert not fresh.is_trained and fresh.ntotal == 0
    with pytest.raises(RuntimeError, match="trained"):
        fresh.search(np.zeros((1, 32), np.float32), 1)
    with pytest.raises(ValueError):
        nearly.MultiIndexQuantizer(32, 4, 16)  # 64-bit cells
    with pytest.raises(ValueError):
        ours.search(np.full((1, 32), np.nan, np.float32), 1)
    with pytest.raises(ValueError):
        ours.search(np.zeros((1, 32), np.float32), 0)


@pytest.mark.parametrize("desc", ["IMI2x5,Flat", "IMI2x5,PQ8", "IMI2x5,PQ8x6", "IMI2x5,SQ8", "IMI2x5,PQ8x4fsr",
                                  "IMI2x5,RaBitQ", "IMI2x5,RQ4x8"])
def test_ivf_over_imi_recall_matches_faiss(faiss, desc):
    rng = np.random.default_rng(2)
    xb, xq = clustered(rng, 20000), clustered(rng, 200)
    gt = np.argsort(((xq[:, None, :] - xb[None]) ** 2).sum(-1), axis=1)[:, :10]

    def recall(I):
        return np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I, gt)])

    ours, theirs = nearly.index_factory(32, desc), faiss.index_factory(32, desc)
    assert type(ours.quantizer).__name__ == "MultiIndexQuantizer" and ours.nlist == theirs.nlist == 1024
    for idx in (ours, theirs):
        idx.train(xb)
        idx.add(xb)
    for nprobe in (1, 8, 64):
        ours.nprobe = theirs.nprobe = nprobe
        ro, rt = recall(ours.search(xq, 10)[1]), recall(theirs.search(xq, 10)[1])
        # RQ over the multi-index's coarse cells codes large residuals (recall
        # ~0.15 for both here) and its beam-search training moves it by a few points
        assert ro >= rt - (0.04 if "RQ" in desc else 0.02), (desc, nprobe, ro, rt)


def test_ivf_flat_over_the_same_cells_returns_faiss_results(faiss):
    """With faiss's sub-centroids the lists are faiss's, so IVF-Flat's results are too."""
    ours_q, theirs_q, xb = trained_pair(faiss)
    xq = clustered(np.random.default_rng(3), 200)
    ours = nearly.IndexIVFFlat(ours_q, 32, 4096)
    theirs = faiss.IndexIVFFlat(theirs_q, 32, 4096)
    theirs.quantizer_trains_alone = 1
    for idx in (ours, theirs):
        idx.train(xb)  # the quantizer is trained: nothing to learn
        idx.add(xb)
    for nprobe in (1, 16, 256):
        ours.nprobe = theirs.nprobe = nprobe
        Do, Io = ours.search(xq, 10)
        Dt, It = theirs.search(xq, 10)
        assert (Io == It).mean() > 0.995, nprobe
        np.testing.assert_allclose(Do[Io == It], Dt[Io == It], rtol=1e-4, atol=1e-3)


def test_ivfpq_decomposed_tables_equal_per_list_tables():
    """Type 2 (a table per sub-centroid) holds the same values as type 1 (a
    table per list), so the searches agree bit for bit; without tables the
    scores agree to rounding."""
    rng = np.random.default_rng(4)
    xb, xq = clustered(rng, 20000), clustered(rng, 100)
    index = nearly.index_factory(32, "IMI2x6,PQ8")
    index.train(xb)
    index.add(xb)
    assert index.use_precomputed_table == 2
    index.nprobe = 32
    D2, I2 = index.search(xq, 10)
    index.use_precomputed_table = 1
    index.precompute_table()
    D1, I1 = index.search(xq, 10)
    np.testing.assert_array_equal(I1, I2)
    np.testing.assert_array_equal(D1, D2)
    index.use_precomputed_table = -1
    index.precompute_table()
    D0, I0 = index.search(xq, 10)
    assert (I0 == I2).mean() > 0.99
    np.testing.assert_allclose(D0, D2, rtol=1e-4, atol=1e-3)
    flat = nearly.index_factory(32, "IVF64,PQ8")
    flat.train(xb)
    flat.use_precomputed_table = 2
    with pytest.raises(RuntimeError, match="MultiIndexQuantizer"):
        flat.precompute_table()


def test_faiss_style_construction_persistence_and_merge(faiss):
    rng = np.random.default_rng(5)
    xb, xq = clustered(rng, 20000), clustered(rng, 50)
    q = nearly.MultiIndexQuantizer(32, 2, 5)
    index = nearly.IndexIVFPQ(q, 32, 1024, 8, 8)
    index.quantizer_trains_alone = True  # faiss's idiom; nearly needs no flag for this quantizer
    assert index.quantizer_trains_alone == 1
    index.train(xb)
    assert q.is_trained and q.ntotal == 1024
    index.nprobe = 16
    part = nearly.clone_index(index)
    index.add(xb)
    D, I = index.search(xq, 10)
    back = nearly.deserialize_index(nearly.serialize_index(index))
    assert type(back.quantizer).__name__ == "MultiIndexQuantizer" and back.use_precomputed_table == 2
    Db, Ib = back.search(xq, 10)
    np.testing.assert_array_equal(Ib, I)
    np.testing.assert_array_equal(Db, D)
    # two halves built apart from one trained index become the whole
    other = nearly.clone_index(part)
    part.add(xb[:10000])
    other.add(xb[10000:])
    part.merge_from(other, 10000)
    Dm, Im = part.search(xq, 10)
    np.testing.assert_array_equal(Im, I)
    # a differently trained multi-index is refused
    alien = nearly.index_factory(32, "IMI2x5,PQ8")
    alien.train(xb[::2] + 1)
    with pytest.raises(RuntimeError, match="coarse centroids"):
        part.merge_from(alien)


def test_refusals():
    q = nearly.MultiIndexQuantizer(32, 2, 5)
    with pytest.raises(ValueError, match="ksub"):
        nearly.IndexIVFFlat(q, 32, 1000)
    with pytest.raises(RuntimeError, match="L2"):
        nearly.IndexIVFFlat(q, 32, 1024, nearly.METRIC_INNER_PRODUCT)
    with pytest.raises(Exception, match="IMI"):
        nearly.index_factory(32, "IMI2x5_HNSW,Flat")
    with pytest.raises(Exception, match="IMI"):
        nearly.index_factory(32, "IMI2x40,Flat")
    index = nearly.IndexIVFFlat(nearly.IndexFlatL2(32), 32, 16)
    index.quantizer_trains_alone = 1  # a flat quantizer learns nothing alone: faiss's error, not a silent index
    with pytest.raises(ValueError, match="trained alone"):
        index.train(clustered(np.random.default_rng(6), 1000))
    with pytest.raises(ValueError):
        index.quantizer_trains_alone = 3


@pytest.mark.parametrize("desc,n_add", [("IVF64,PQ8", 600), ("IVF64,PQ8x6", 150), ("IMI2x3,PQ8", 600)])
def test_ivfpq_small_lists_scored_directly_equal_table_scores(desc, n_add):
    """Lists of fewer than ksub / 16 codes are scored from the precomputed and
    query tables directly, larger ones through the list's table: the same sums
    in the same order, so a vector scores the same bits either way. Index A
    holds each vector once (lists of ~n_add / 64 codes), B eight times."""
    rng = np.random.default_rng(7)
    xt, xq = clustered(rng, 2000), clustered(rng, 50)
    xb = xt[:n_add]
    a = nearly.index_factory(32, desc)
    a.train(xt)
    assert a.use_precomputed_table >= 1
    b = nearly.clone_index(a)
    a.add(xb)
    b.add(np.tile(xb, (8, 1)))
    a.nprobe = b.nprobe = a.nlist
    Da, Ia = a.search(xq, 5)
    Db, Ib = b.search(xq, 40)
    np.testing.assert_array_equal(Db[:, ::8], Da)
    # the same vectors (two with equal codes tie, and ties go to the smaller id)
    assert (Ib[:, ::8] % n_add == Ia).mean() > 0.98
    np.testing.assert_array_equal(Db.reshape(50, 5, 8), np.repeat(Da[:, :, None], 8, axis=2))


def test_bad_input_reaches_clear_errors():
    """Untrained multi-index IVFs, corrupt or truncated files, bad queries and
    search_with_parameters' own arguments raise, never crash."""
    rng = np.random.default_rng(9)
    xb = clustered(rng, 2000)
    index = nearly.index_factory(32, "IMI2x4,PQ8")
    with pytest.raises(RuntimeError, match="trained"):
        index.search(xb[:2], 3)
    with pytest.raises(RuntimeError, match="trained"):
        index.add(xb[:2])
    index.train(xb)
    index.add(xb)
    blob = bytearray(nearly.serialize_index(index))
    with pytest.raises(nearly.IndexFileError):
        nearly.deserialize_index(np.frombuffer(bytes(blob[: len(blob) // 2]), dtype=np.uint8))
    blob[len(blob) // 3] ^= 0xFF
    with pytest.raises(nearly.IndexFileError):
        nearly.deserialize_index(np.frombuffer(bytes(blob), dtype=np.uint8))
    for bad in (np.full((1, 32), np.nan, np.float32), np.zeros((1, 31), np.float32)):
        with pytest.raises(ValueError):
            index.search(bad, 3)
        with pytest.raises(ValueError):
            nearly.search_with_parameters(index, bad, 3)
    with pytest.raises(ValueError):
        nearly.search_with_parameters(index, xb[:2], 0)
    with pytest.raises(IndexError):
        index.quantizer.reconstruct_n(250, 10)  # past the 256 cells


def test_multi_index_quantizer2_gives_the_multi_index_cells(faiss):
    """MultiIndexQuantizer2 over exact assign indexes: the cells and sums of
    the MultiIndexQuantizer with the same sub-centroids (and faiss's), from
    training (the assign indexes filled) or from pieces set by hand."""
    ours, theirs, xb = trained_pair(faiss)
    xq = clustered(np.random.default_rng(2), 200)
    dsub = 32 // 2
    trained = nearly.MultiIndexQuantizer2(32, 6, nearly.IndexFlatL2(dsub), nearly.IndexFlatL2(dsub))
    trained.train(xb)
    assert [a.ntotal for a in trained.assign_indexes] == [64, 64] and trained.ntotal == 4096
    by_hand = nearly.MultiIndexQuantizer2(32, 2, 6, [nearly.IndexFlatL2(dsub), nearly.IndexFlatL2(dsub)])
    c = ours.pq.centroids.reshape(2, 64, dsub)
    for m in range(2):
        by_hand.assign_indexes[m].add(c[m])
    by_hand.pq = ours.pq
    by_hand.is_trained = True
    for k in (1, 10, 300):
        Do, Io = ours.search(xq, k)
        Dh, Ih = by_hand.search(xq, k)
        assert (Ih == Io).mean() > 0.999
        np.testing.assert_allclose(Dh, Do, rtol=1e-5, atol=1e-4)
        Dt, It = theirs.search(xq, k)
        assert (Ih == It).mean() > 0.99
    Dt, It = trained.search(xq, 10)  # its own training: cells by its own sub-centroids
    tr = nearly.MultiIndexQuantizer(32, 2, 6)
    tr.pq = trained.pq
    tr.is_trained = True
    assert (tr.search(xq, 10)[1] == It).mean() > 0.999
    back = nearly.deserialize_index(nearly.serialize_index(by_hand))
    assert type(back).__name__ == "MultiIndexQuantizer2"
    np.testing.assert_array_equal(back.search(xq, 10)[1], by_hand.search(xq, 10)[1])


def test_multi_index_quantizer2_approximate_assign_and_ivf(faiss):
    """HNSW assign indexes (the reason for the class): an IVFPQ over it finds
    what it finds over the exact multi-index; a sub-index that returns fewer
    sub-centroids than asked ends the enumeration instead of making cells up."""
    xb = clustered(np.random.default_rng(3), 20000)
    xq = xb[::100] + np.random.default_rng(4).normal(0, 0.1, (200, 32)).astype(np.float32)  # near the data
    q2 = nearly.MultiIndexQuantizer2(32, 6, nearly.IndexHNSWFlat(16, 16), nearly.IndexHNSWFlat(16, 16))
    ivf = nearly.IndexIVFPQ(q2, 32, 4096, 8, 8)
    ivf.quantizer_trains_alone = 1
    ivf.train(xb)
    ivf.add(xb)
    ivf.nprobe = 64
    exact = nearly.MultiIndexQuantizer(32, 2, 6)
    exact.pq = q2.pq
    exact.is_trained = True
    Ie = exact.search(xq, 64)[1]
    Ih = q2.search(xq, 64)[1]
    assert np.mean([len(set(a) & set(b)) / 64 for a, b in zip(Ie, Ih)]) > 0.95
    I_hnsw = ivf.search(xq, 10)[1]
    ivf.quantizer = exact  # the same cells, found exactly
    I_exact = ivf.search(xq, 10)[1]
    assert (I_exact >= 0).all()
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I_hnsw, I_exact)]) > 0.95
    short = nearly.MultiIndexQuantizer2(32, 2, nearly.IndexFlatL2(16), nearly.IndexFlatL2(16))
    short.train(xb[:2000])
    short.assign_indexes[1].remove_ids(nearly.IDSelectorRange(2, 4))  # two sub-centroids gone
    D, I = short.search(xq[:3], 16)
    assert (I[:, :8] >= 0).all() and (I[:, 8:] == -1).all()  # 4 x 2 cells, then padding
    with pytest.raises(RuntimeError):
        short.search(xq, 3, params=nearly.SearchParameters())
    with pytest.raises(ValueError):
        nearly.MultiIndexQuantizer2(32, 6, nearly.IndexFlatL2(8), nearly.IndexFlatL2(16))
