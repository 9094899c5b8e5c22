"""IndexIVFFlat behaviour that needs no faiss: verbose output, searches
running while vectors are added. The differential tests are in tests/compat."""
import threading

import numpy as np
import pytest

import nearly
from _hnswutil import clustered


def built(nlist=16, n=4000):
    x, xq = clustered(1, n, 50, d=16)
    index = nearly.IndexIVFFlat(nearly.IndexFlatL2(16), 16, nlist)
    index.train(x)
    index.add(x)
    return index, x, xq


def test_verbose_training_and_adding(capfd):
    x, _ = clustered(2, 2000, 0, d=16)
    index = nearly.IndexIVFFlat(nearly.IndexFlatL2(16), 16, 8)
    index.verbose = True
    index.cp.verbose = True
    index.train(x)
    index.add(x)
    out = capfd.readouterr().out
    assert "Training level-1 quantizer on 2000 vectors in 16D" in out
    assert "Clustering 2000 points in 16D to 8 clusters" in out
    assert "IndexIVFFlat::add_core: added 2000 / 2000 vectors" in out
    index.train(x)  # the quantizer holds nlist centroids already
    assert "IVF quantizer does not need training." in capfd.readouterr().out


def test_cp_is_a_reference():
    index = nearly.IndexIVFFlat(nearly.IndexFlatL2(16), 16, 8)
    index.cp.niter = 3
    assert index.cp.niter == 3


def test_pretrained_quantizer_needs_no_training():
    x, _ = clustered(3, 1000, 0, d=16)
    q = nearly.IndexFlatL2(16)
    q.add(x[:8])
    index = nearly.IndexIVFFlat(q, 16, 8)
    assert index.is_trained
    index.add(x)
    assert sum(index.get_list_size(i) for i in range(8)) == 1000


def test_is_trained_can_be_set_after_filling_the_quantizer_by_hand():
    """faiss's idiom: the quantizer is filled after the IVF index was made,
    then `index.is_trained = True`. nearly takes it when the quantizer holds
    nlist centroids and the encoder is trained (or, for IVFPQ, was given a
    codebook by hand), and refuses it otherwise instead of adding garbage."""
    x, xq = clustered(4, 2000, 20, d=16)
    q = nearly.IndexFlatL2(16)
    index = nearly.IndexIVFFlat(q, 16, 8)
    with pytest.raises(ValueError, match="nlist = 8 centroids; it holds 0"):
        index.is_trained = True
    q.add(x[:5])
    with pytest.raises(ValueError, match="holds 5"):
        index.is_trained = True
    q.add(x[5:8])
    index.is_trained = True
    index.add(x)
    index.nprobe = 8
    D, I = index.search(xq, 5)
    ref = ((xq[:, None, :] - x[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(I, np.argsort(ref, 1, kind="stable")[:, :5])
    index.is_trained = False  # faiss allows it; adding then raises
    with pytest.raises(RuntimeError, match="is_trained"):
        index.add(x[:3])
    # An SQ encoder has nothing to fill by hand: train() it.
    q2 = nearly.IndexFlatL2(16)
    q2.add(x[:8])
    sq = nearly.IndexIVFScalarQuantizer(q2, 16, 8, nearly.ScalarQuantizer.QT_8bit)
    assert not sq.is_trained
    with pytest.raises(ValueError, match="trained encoder"):
        sq.is_trained = True
    # IVFPQ: quantizer and codebook by hand (precomputed table included).
    src = nearly.IndexIVFPQ(nearly.IndexFlatL2(16), 16, 8, 4, 6)
    src.cp.niter = src.pq.cp.niter = 3
    src.train(x)
    src.add(x)
    q3 = nearly.IndexFlatL2(16)
    q3.add(src.quantizer.reconstruct_n(0, 8))
    pq = nearly.IndexIVFPQ(q3, 16, 8, 4, 6)
    pq.pq.centroids = src.pq.centroids
    pq.is_trained = True
    assert pq.use_precomputed_table == src.use_precomputed_table == 1
    pq.add(x)
    src.nprobe = pq.nprobe = 3
    Ds, Is = src.search(xq, 5)
    Dp, Ip = pq.search(xq, 5)
    np.testing.assert_array_equal(Ip, Is)
    np.testing.assert_allclose(Dp, Ds, rtol=1e-5, atol=1e-5)
    # Indexes whose state only train() makes keep the flag as it is.
    flat = nearly.IndexFlatL2(16)
    flat.is_trained = True
    with pytest.raises(RuntimeError, match="cannot be set"):
        flat.is_trained = False


def test_searches_while_adding():
    index, x, xq = built()
    index.nprobe = 4
    errors = []

    def search():
        try:
            for _ in range(30):
                D, I = index.search(xq, 5)
                assert (I >= 0).all()
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=search) for _ in range(2)]
    for t in threads:
        t.start()
    for i in range(10):
        index.add(x[:100])
    for t in threads:
        t.join()
    assert not errors, errors
    assert index.ntotal == 4000 + 1000


def test_large_batch_is_sliced_consistently():
    # 2000 queries * nprobe 8 * k 1200 partial results: searched in slices
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 16)).astype(np.float32)
    xq = rng.standard_normal((2000, 16)).astype(np.float32)
    index = nearly.IndexIVFFlat(nearly.IndexFlatL2(16), 16, 8)
    index.train(x)
    index.add(x)
    index.nprobe = 8
    D, I = index.search(xq, 1200)
    for q in (0, 1500, 1999):
        D1, I1 = index.search(xq[q:q + 1], 1200)
        np.testing.assert_allclose(D[q], D1[0], atol=1e-3)
        assert (I[q] == I1[0]).mean() > 0.99


def same_results(a, b, tol=1e-5):
    """The same k-NN results, up to the last bits of a distance (a slice of
    a list goes through the blocked GEMM in other blocks; an L2 GEMM expands
    ||q - x||^2) and the order of ties those bits decide."""
    (Da, Ia), (Db, Ib) = a, b
    np.testing.assert_allclose(Da, Db, rtol=tol, atol=tol / 10)
    differ = Ia != Ib
    if differ.any():
        gaps = np.abs(np.diff(Da, axis=1))
        near_tie = np.zeros_like(differ)
        near_tie[:, 1:] |= gaps <= 2 * tol * np.abs(Da[:, 1:]) + tol / 10
        near_tie[:, :-1] |= gaps <= 2 * tol * np.abs(Da[:, 1:]) + tol / 10
        assert not (differ & ~near_tie).any()


@pytest.mark.parametrize("key", ["IVF16,Flat", "IVF16,PQ8np", "IVF16,SQ8", "IVF16,PQ8x4fs", "IVF16,RQ4x4fs_Nrq2x4"])
def test_sorted_range_selector_scans_only_the_range(key):
    """IDSelectorRange(imin, imax, assume_sorted=True) over lists whose ids
    are in order scans only the ids in range of each list (bisection), with
    the same results as the plain range selector: one query at a time, a
    batch scanned list by list, range search, and blocked fast-scan lists.
    Lists out of order are scanned whole: the same results, never wrong."""
    rng = np.random.default_rng(3)
    x, xq = clustered(3, 3000, 1200)
    index = nearly.index_factory(32, key)
    index.train(x)
    index.add(x)  # ids 0..n-1, in order within every list
    assert index.check_ids_sorted()
    index.nprobe = 4
    for imin, imax in ((500, 1700), (0, 40), (2990, 5000), (-10, 0), (900, 900), (1800, 1200)):
        plain = nearly.SearchParametersIVF(sel=nearly.IDSelectorRange(imin, imax))
        fast = nearly.SearchParametersIVF(sel=nearly.IDSelectorRange(imin, imax, True))
        for q in (xq[:3], xq):  # per query, and many queries per list
            same_results(index.search(q, 10, params=plain), index.search(q, 10, params=fast))
        I = index.search(xq[:50], 10, params=fast)[1]
        assert ((I == -1) | ((I >= imin) & (I < imax))).all()
        radius = float(np.median(index.search(xq[:20], 30)[0][:, -1]))
        for a, b in zip(index.range_search(xq[:20], radius, params=plain),
                        index.range_search(xq[:20], radius, params=fast)):
            np.testing.assert_array_equal(a, b)
    # ids out of order in the lists: assume_sorted is not trusted blindly
    shuffled = nearly.index_factory(32, key)
    shuffled.train(x)
    ids = rng.permutation(len(x)).astype(np.int64)
    shuffled.add_with_ids(x, ids)
    assert not shuffled.check_ids_sorted()
    shuffled.nprobe = 4
    plain = nearly.SearchParametersIVF(sel=nearly.IDSelectorRange(500, 1700))
    fast = nearly.SearchParametersIVF(sel=nearly.IDSelectorRange(500, 1700, True))
    same_results(shuffled.search(xq, 10, params=plain), shuffled.search(xq, 10, params=fast))


def test_find_sorted_ids_bounds():
    sel = nearly.IDSelectorRange(10, 20, True)
    rng = np.random.default_rng(0)
    for n in (0, 1, 5, 100):
        ids = np.sort(rng.choice(30, n)).astype(np.int64)
        j0, j1 = sel.find_sorted_ids_bounds(ids)
        (ref,) = np.where((ids >= 10) & (ids < 20))
        np.testing.assert_array_equal(np.arange(j0, j1), ref)
        # faiss's form: n, ids and two one-element output arrays
        out = np.zeros(2, np.uint64)
        sel.find_sorted_ids_bounds(len(ids), nearly.swig_ptr(ids), nearly.swig_ptr(out[:1]), nearly.swig_ptr(out[1:]))
        assert (int(out[0]), int(out[1])) == (j0, j1)
    j0, j1 = nearly.IDSelectorRange(30, 80, True).find_sorted_ids_bounds(np.array([12, 92]))
    assert j0 >= j1
    with pytest.raises(ValueError, match="sorted"):
        sel.find_sorted_ids_bounds(np.array([5, 3]))
    with pytest.raises(ValueError):
        sel.find_sorted_ids_bounds(2, np.array([1, 2], np.int64), np.zeros(1, np.float32), np.zeros(1, np.uint64))


def test_early_stops_max_lists_num_and_max_empty_result_buckets():
    """max_lists_num visits only the nearest lists of the nprobe (the same
    results as that nprobe; with ensure_topk_full at least k lists).
    max_empty_result_buckets stops a range search after that many probed
    lists in a row added nothing: checked against a numpy walk of the
    lists in the quantizer's order."""
    x, xq = clustered(5, 4000, 40)
    index = nearly.index_factory(32, "IVF32,Flat")
    index.train(x)
    index.add(x)
    ref = {m: index.search(xq, 10, params=nearly.SearchParametersIVF(nprobe=m)) for m in (3, 10, 12)}
    for a, b in zip(index.search(xq, 10, params=nearly.SearchParametersIVF(nprobe=12, max_lists_num=3)), ref[3]):
        np.testing.assert_array_equal(a, b)
    params = nearly.SearchParametersIVF(nprobe=12, max_lists_num=3, ensure_topk_full=True)
    for a, b in zip(index.search(xq, 10, params=params), ref[10]):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(index.search(xq, 10, params=nearly.SearchParametersIVF(nprobe=3, max_lists_num=50)), ref[3]):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError):
        nearly.SearchParametersIVF(max_lists_num=-1)

    # a radius that takes in several clusters: hits spread over lists with empty ones between
    radius = float(np.median(index.search(xq, 200, params=nearly.SearchParametersIVF(nprobe=32))[0][:, -1]))
    _, lists = index.quantizer.search(xq, 32)
    dist = ((xq[:, None, :].astype(np.float64) - x[None].astype(np.float64)) ** 2).sum(2)
    counts = {}
    for limit in (0, 1, 2, 4):
        lims, D, I = index.range_search(xq, radius, params=nearly.SearchParametersIVF(
            nprobe=32, max_empty_result_buckets=limit))
        counts[limit] = np.diff(lims)
        for q in range(len(xq)):
            expect, run = set(), 0
            for l in lists[q]:
                if limit and run >= limit:
                    break
                hits = {int(i) for i in index.list_ids(int(l)) if dist[q, i] < radius}
                expect |= hits
                run = 0 if hits else run + 1
            assert set(I[lims[q]:lims[q + 1]].tolist()) == expect
    assert (counts[1] <= counts[2]).all() and (counts[2] <= counts[4]).all() and (counts[4] <= counts[0]).all()
    assert (counts[1] < counts[0]).any()


@pytest.mark.parametrize("key", ["IVF20,PQ4x4np", "IVF20,PQ8", "IVF20,SQ8", "IVF20,RQ3x4", "IVF20,PQ8x4fs",
                                 "IVF20,Flat"])
def test_search_and_return_codes(key):
    """faiss's search_and_return_codes: search()'s results with each
    result's code as stored; with include_listnos the list number first,
    so that sa_decode gives the stored vector back (reconstruct's)."""
    x, xq = clustered(9, 2000, 30)
    index = nearly.index_factory(32, key)
    index.train(x)
    index.add(x)
    index.nprobe = 10
    D0, I0 = index.search(xq, 10)
    D, I, codes = index.search_and_return_codes(xq, 10, include_listnos=True)
    np.testing.assert_array_equal(I, I0)
    np.testing.assert_array_equal(D, D0)
    assert codes.shape == (30, 10, index.sa_code_size()) and codes.dtype == np.uint8
    dec = index.sa_decode(codes.reshape(-1, index.sa_code_size()))
    index.make_direct_map()
    np.testing.assert_array_equal(dec, index.reconstruct_batch(I.ravel()))
    if "fs" not in key:  # exact tables: the distances are those of the decoded vectors
        ref = ((xq[:, None, :].astype(np.float64) - dec.reshape(30, 10, 32)) ** 2).sum(2)
        np.testing.assert_allclose(D, ref, rtol=1e-4, atol=1e-3)
    D2, I2, plain = index.search_and_return_codes(xq, 10)
    cc = index.sa_code_size() - index.code_size
    np.testing.assert_array_equal(plain, codes[:, :, cc:])
    # missing results: label -1 and a code of all ones
    params = nearly.SearchParametersIVF(nprobe=10, sel=nearly.IDSelectorRange(0, 3))
    D3, I3, c3 = index.search_and_return_codes(xq, 10, include_listnos=True, params=params)
    assert (I3 == -1).any() and (c3[I3 == -1] == 0xFF).all()
    np.testing.assert_array_equal(I3, index.search(xq, 10, params=params)[1])


@pytest.mark.parametrize("keep", [0.02, 0.3, 0.9])
def test_selective_filter_scores_only_what_it_keeps(keep):
    """A selector that keeps few codes of a list has only those scored (the
    kept rows gathered, per query or for a batch through the GEMM): with
    every list probed, IVFFlat's results are the exact search over the kept
    ids, for selective and loose filters alike."""
    x, xq = clustered(13, 3000, 400)
    rng = np.random.default_rng(2)
    ids = np.sort(rng.choice(len(x), int(keep * len(x)), replace=False)).astype(np.int64)
    for metric in (nearly.METRIC_L2, nearly.METRIC_INNER_PRODUCT):
        index = nearly.index_factory(32, "IVF16,Flat", metric)
        index.train(x)
        index.add(x)
        exact = nearly.IndexFlat(32, metric)
        exact.add(x[ids])
        De, Ie = exact.search(xq, 10)
        Ie = np.where(Ie >= 0, ids[np.maximum(Ie, 0)], -1)
        params = nearly.SearchParametersIVF(nprobe=16, sel=nearly.IDSelectorBatch(ids))
        for q in (xq[:4], xq):  # one query at a time, and a batch scanned list by list
            D, I = index.search(q, 10, params=params)
            same_results((D, I), (De[:len(q)], Ie[:len(q)]), tol=1e-4)


@pytest.mark.parametrize("factory", ["IVF512,Flat", "IVF512,SQ8"])
def test_unequal_lists_batch_equals_queries_alone(factory):
    """A few big lists that many queries probe: their codes are scored many
    times though the probes per list are few on average (100 queries x 2
    probes over 512 lists), so the batch is scanned list by list (each list
    loaded once for all its queries). It gives what each query finds
    searched alone (query by query)."""
    rs = np.random.RandomState(4)
    d = 16
    # 512 lists, most vectors in 4 of them.
    centers = rs.randn(512, d).astype("float32") * 4
    which = np.where(rs.rand(20000) < 0.9, rs.randint(0, 4, 20000), rs.randint(0, 512, 20000))
    x = (centers[which] + rs.randn(20000, d).astype("float32")).astype("float32")
    xq = (centers[rs.randint(0, 4, 100)] + rs.randn(100, d).astype("float32")).astype("float32")
    quantizer = nearly.IndexFlatL2(d)
    quantizer.add(centers)
    index = nearly.extract_index_ivf(nearly.index_factory(d, factory))
    index.quantizer = quantizer
    if factory.endswith("Flat"):
        index.is_trained = True
    else:
        index.train(x)  # the SQ: the quantizer holds its centroids already
    index.add(x)
    index.nprobe = 2
    D, I = index.search(xq, 10)
    for i in range(0, 100, 3):
        Di, Ii = index.search(xq[i:i + 1], 10)
        np.testing.assert_array_equal(I[i], Ii[0])
        np.testing.assert_allclose(D[i], Di[0], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("key", ["IVF16,Flat", "IVF16,PQ8x4fs", "IVF16,SQ8"])
def test_add_on_threads_stores_the_lists_in_entry_order(key, restore_threads):
    """Large adds append to the lists on every thread (each list owned by one):
    the lists equal a one-thread add's, ids and codes in entry order."""
    x = clustered(21, 20000, 0, d=32, nclusters=16)[0]
    got = []
    for threads in (1, 2, 3):
        nearly.omp_set_num_threads(threads)
        index = nearly.index_factory(32, key)
        index.train(x[:5000])
        index.add(x)
        index.add_with_ids(x[:5000], np.arange(5000, dtype=np.int64) + 10**6)
        got.append([(index.invlists.get_ids(l).copy(), index.invlists.get_codes(l).copy()) for l in range(16)])
    for other in got[1:]:
        for (ia, ca), (ib, cb) in zip(got[0], other):
            np.testing.assert_array_equal(ia, ib)
            np.testing.assert_array_equal(ca, cb)
    for ids, _ in got[0]:
        assert (np.diff(ids) > 0).all()  # entry order within each list
