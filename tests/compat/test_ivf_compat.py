"""Differential tests of IndexIVFFlat against faiss-cpu.

Recall is compared on the real-embedding subset (../shared/data). Training
uses the same k-means draws as faiss, so both build nearly the same lists.
"""
import pickle

import numpy as np
import pytest

import nearly
from _hnswutil import real_data
from _testutil import METRIC_IP, METRIC_L2, assert_knn_valid, brute_force, randn

faiss = pytest.importorskip("faiss")

METRICS = [METRIC_L2, METRIC_IP]
METRIC_IDS = ["L2", "IP"]


def ivf(lib, d, nlist, metric):
    quantizer = lib.IndexFlatL2(d) if metric == METRIC_L2 else lib.IndexFlatIP(d)
    return lib.IndexIVFFlat(quantizer, d, nlist, metric)


def recall(I, gt):
    k = gt.shape[1]
    return np.mean([len(set(a[:k]) & set(b)) / k for a, b in zip(I, gt)])


@pytest.fixture(scope="module")
def real_built():
    base, queries = real_data()
    x, xq = base[:20000], queries[:200]
    out = {}
    for metric in METRICS:
        gt = brute_force(xq, x, 10, metric)[1]
        for lib in (faiss, nearly):
            index = ivf(lib, 384, 256, metric)
            index.train(x)
            index.add(x)
            out[lib.__name__, metric] = index
        out["gt", metric] = gt
    return out, xq


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
@pytest.mark.parametrize("nprobe", [1, 8, 32])
def test_recall_within_one_point_of_faiss(real_built, metric, nprobe):
    built, xq = real_built
    rec = {}
    for lib in ("faiss", "nearly"):
        index = built[lib, metric]
        index.nprobe = nprobe
        D, I = index.search(xq, 10)
        assert D.dtype == np.float32 and I.dtype == np.int64 and I.shape == (len(xq), 10)
        rec[lib] = recall(I, built["gt", metric])
    assert rec["nearly"] >= rec["faiss"] - 0.01, rec


def test_same_lists_as_faiss(real_built):
    built, _ = real_built
    f, n = built["faiss", METRIC_L2], built["nearly", METRIC_L2]
    sizes_f = np.array([f.invlists.list_size(i) for i in range(256)])
    sizes_n = np.array([n.get_list_size(i) for i in range(256)])
    assert sizes_n.sum() == sizes_f.sum() == 20000
    assert np.abs(sizes_n - sizes_f).sum() <= 0.01 * 20000


def test_search_params_nprobe_and_selector(real_built):
    built, xq = real_built
    for lib in ("faiss", "nearly"):
        built[lib, METRIC_L2].nprobe = 1
    lib_params = {
        "faiss": faiss.SearchParametersIVF(nprobe=16, sel=faiss.IDSelectorRange(0, 10000)),
        "nearly": nearly.SearchParametersIVF(nprobe=16, sel=nearly.IDSelectorRange(0, 10000)),
    }
    res = {lib: built[lib, METRIC_L2].search(xq, 10, params=lib_params[lib]) for lib in ("faiss", "nearly")}
    In = res["nearly"][1]
    assert ((In >= 0) & (In < 10000)).all()
    agree = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(In, res["faiss"][1])])
    assert agree > 0.97
    assert lib_params["nearly"].nprobe == 16


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_all_lists_probed_is_exact(rng, metric):
    x, xq = randn(rng, 2000, 16), randn(rng, 30, 16)
    index = ivf(nearly, 16, 20, metric)
    index.train(x)
    index.add(x)
    index.nprobe = 20
    D, I = index.search(xq, 7)
    assert_knn_valid(D, I, xq, x, 7, metric)
    index.nprobe = 1000  # clipped to nlist, like faiss
    D2, I2 = index.search(xq, 7)
    np.testing.assert_array_equal(I, I2)


def test_attributes_match(rng):
    f, n = ivf(faiss, 16, 8, METRIC_L2), ivf(nearly, 16, 8, METRIC_L2)
    for a in ("d", "ntotal", "is_trained", "nlist", "nprobe", "metric_type"):
        assert getattr(f, a) == getattr(n, a), a
    assert f.cp.niter == n.cp.niter == 10
    assert ivf(nearly, 16, 8, METRIC_IP).cp.spherical == ivf(faiss, 16, 8, METRIC_IP).cp.spherical
    x = randn(rng, 1000, 16)
    for index in (f, n):
        index.train(x)
    assert f.is_trained and n.is_trained and n.quantizer.ntotal == 8


def test_untrained_use_raises_like_faiss(rng):
    x = randn(rng, 100, 16)
    for lib in (faiss, nearly):
        index = ivf(lib, 16, 8, METRIC_L2)
        with pytest.raises(RuntimeError, match="'is_trained' failed"):
            index.add(x)
        with pytest.raises(RuntimeError, match="'is_trained' failed"):
            index.add_with_ids(x, np.arange(100))
        with pytest.raises(RuntimeError, match="is_trained"):
            index.search(x, 3)


def test_too_few_training_points_raises_like_faiss(rng):
    x = randn(rng, 5, 16)
    for lib in (faiss, nearly):
        with pytest.raises(RuntimeError, match="Number of training points"):
            ivf(lib, 16, 8, METRIC_L2).train(x)


def test_add_with_ids_and_remove_ids(rng):
    x, xq = randn(rng, 3000, 16), randn(rng, 20, 16)
    ids = np.arange(3000, dtype=np.int64) * 7 + 100
    index = ivf(nearly, 16, 16, METRIC_L2)
    index.train(x)
    index.add_with_ids(x, ids)
    index.nprobe = 16
    D, I = index.search(xq, 5)
    assert_knn_valid(D, I, xq, x, 5, METRIC_L2, ids=ids)
    gone = ids[::3]
    assert index.remove_ids(gone) == len(gone)
    assert index.ntotal == 3000 - len(gone)
    keep = np.ones(3000, bool)
    keep[::3] = False
    D, I = index.search(xq, 5)
    assert_knn_valid(D, I, xq, x[keep], 5, METRIC_L2, ids=ids[keep])
    assert index.remove_ids(nearly.IDSelectorRange(0, 10**9)) == keep.sum()
    assert index.ntotal == 0
    D, I = index.search(xq, 2)
    assert (I == -1).all()
    # faiss agrees on the count for the same removal
    f = ivf(faiss, 16, 16, METRIC_L2)
    f.train(x)
    f.add_with_ids(x, ids)
    assert f.remove_ids(gone) == len(gone)


def test_reset_keeps_training(rng):
    x = randn(rng, 1000, 16)
    index = ivf(nearly, 16, 8, METRIC_L2)
    index.train(x)
    index.add(x)
    index.reset()
    assert index.ntotal == 0 and index.is_trained
    index.add(x[:10])
    assert index.ntotal == 10
    index.nprobe = 8
    _, I = index.search(x[:10], 1)
    np.testing.assert_array_equal(I.ravel(), np.arange(10))


def test_persistence_round_trip(rng, tmp_path):
    x, xq = randn(rng, 2000, 16), randn(rng, 20, 16)
    index = ivf(nearly, 16, 16, METRIC_IP)
    index.train(x)
    index.add_with_ids(x, np.arange(2000) + 5)
    index.nprobe = 4
    D, I = index.search(xq, 5)
    path = str(tmp_path / "ivf.idx")
    nearly.write_index(index, path)
    copies = [nearly.read_index(path), nearly.deserialize_index(nearly.serialize_index(index)),
              pickle.loads(pickle.dumps(index))]
    for c in copies:
        assert type(c).__name__ == "IndexIVFFlat"
        assert (c.ntotal, c.nlist, c.nprobe, c.metric_type, c.is_trained) == (2000, 16, 4, METRIC_IP, True)
        D2, I2 = c.search(xq, 5)
        np.testing.assert_array_equal(I, I2)
        np.testing.assert_array_equal(D, D2)
    ro = nearly.read_index(path, nearly.IO_FLAG_READ_ONLY)
    with pytest.raises(RuntimeError):
        ro.add(x[:3])


def test_factory(rng):
    x = randn(rng, 2000, 16)
    for metric in METRICS:
        f = faiss.index_factory(16, "IVF32,Flat", metric)
        n = nearly.index_factory(16, "IVF32,Flat", metric)
        assert type(n).__name__ == "IndexIVFFlat"
        assert (n.nlist, n.metric_type, n.is_trained) == (f.nlist, f.metric_type, f.is_trained)
        n.train(x)
        n.add(x)
        assert n.ntotal == 2000


def test_bad_input(rng):
    index = ivf(nearly, 16, 8, METRIC_L2)
    with pytest.raises(nearly.InvalidArgumentError):
        index.nprobe = 0
    with pytest.raises(nearly.InvalidArgumentError):
        nearly.SearchParametersIVF(nprobe=0)
    with pytest.raises(nearly.InvalidArgumentError):
        nearly.IndexIVFFlat(nearly.IndexFlatL2(8), 16, 8)
    with pytest.raises(nearly.InvalidArgumentError):
        nearly.IndexIVFFlat(nearly.IndexFlatL2(16), 16, 0)
    x = randn(rng, 500, 16)
    x[3, 3] = np.nan
    with pytest.raises(ValueError):
        index.train(x)
    index.train(randn(rng, 500, 16))
    with pytest.raises(nearly.InvalidArgumentError):
        index.add(randn(rng, 5, 15))
    with pytest.raises(nearly.InvalidArgumentError):
        index.search(randn(rng, 5, 16), 0)


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_batch_and_single_query_scans_agree(rng, metric):
    # a batch is scanned list by list (GEMM), a lone query list after list:
    # same results up to float rounding
    x, xq = randn(rng, 4000, 16), randn(rng, 64, 16)
    index = ivf(nearly, 16, 32, metric)
    index.train(x)
    index.add_with_ids(x, np.arange(4000) * 3)
    params = nearly.SearchParametersIVF(nprobe=6, sel=nearly.IDSelectorRange(0, 9000))
    Db, Ib = index.search(xq, 10, params=params)
    for q in range(0, 64, 7):
        Ds, Is = index.search(xq[q:q + 1], 10, params=params)
        np.testing.assert_allclose(Ds[0], Db[q], rtol=1e-4, atol=1e-4)
        assert (Is[0] == Ib[q]).mean() >= 0.9
    assert (Ib[Ib >= 0] < 9000).all()


def test_direct_map_and_reconstruct(rng):
    x = randn(rng, 1000, 16)
    res = {}
    for lib in (faiss, nearly):
        index = ivf(lib, 16, 8, METRIC_L2)
        index.train(x)
        index.add(x)
        with pytest.raises(RuntimeError, match="direct map not initialized"):
            index.reconstruct(3)
        index.make_direct_map()
        np.testing.assert_array_equal(index.reconstruct(7), x[7])
        with pytest.raises(RuntimeError):
            index.reconstruct(5000)
        res[lib.__name__] = index
    # faiss's array direct map refuses remove_ids; nearly's table follows it
    n = res["nearly"]
    assert n.remove_ids(np.arange(10)) == 10
    np.testing.assert_array_equal(n.reconstruct(17), x[17])
    with pytest.raises(RuntimeError):
        n.reconstruct(3)  # removed
    with pytest.raises(IndexError):
        n.reconstruct(3)
    n.add(x[:5])  # ids 990..994 in nearly (ntotal was 990), like faiss
    np.testing.assert_array_equal(n.reconstruct(992), x[2])
    copy = pickle.loads(pickle.dumps(n))
    assert copy.has_direct_map()
    np.testing.assert_array_equal(copy.reconstruct(17), x[17])
    n.make_direct_map(False)
    with pytest.raises(RuntimeError, match="direct map not initialized"):
        n.reconstruct(17)


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_range_search_matches_faiss(rng, metric):
    from _testutil import assert_range_equiv, range_to_dicts
    x, xq = randn(rng, 3000, 16), randn(rng, 25, 16)
    radius = 12.0 if metric == METRIC_L2 else 6.0
    out = {}
    for lib in (faiss, nearly):
        index = ivf(lib, 16, 16, metric)
        index.train(x)
        index.add(x)
        index.nprobe = 16  # every list: exact, independent of small training differences
        lims, D, I = index.range_search(xq, radius)
        assert lims.shape == (26,) and D.dtype == np.float32 and I.dtype == np.int64
        out[lib.__name__] = range_to_dicts(lims, D, I)
    assert sum(len(r) for r in out["faiss"]) > 0
    assert_range_equiv(out["nearly"], out["faiss"], 1e-4, radius)


def test_invlists_and_extract_index_ivf(rng):
    x = randn(rng, 1000, 16)
    out = {}
    for lib in (faiss, nearly):
        index = lib.IndexIDMap(ivf(lib, 16, 8, METRIC_L2))
        inner = lib.extract_index_ivf(index)
        assert inner.nlist == 8
        inner.train(x)
        inner.add(x)
        out[lib.__name__] = [inner.invlists.list_size(i) for i in range(8)]
        assert inner.invlists.nlist == 8 and inner.invlists.code_size == 64
    assert sum(out["nearly"]) == sum(out["faiss"]) == 1000
    pre = nearly.index_factory(16, "L2norm,IVF8,Flat")
    assert nearly.extract_index_ivf(pre).nlist == 8
    with pytest.raises(RuntimeError):
        nearly.extract_index_ivf(nearly.IndexFlatL2(16))
    idx = nearly.extract_index_ivf(nearly.IndexIDMap(ivf(nearly, 16, 8, METRIC_L2)))
    idx.train(x)
    idx.add_with_ids(x, np.arange(1000) + 10)
    ids = np.concatenate([idx.invlists.get_ids(i) for i in range(8)])
    np.testing.assert_array_equal(np.sort(ids), np.arange(1000) + 10)


def test_try_extract_index_ivf_and_compile_options():
    for lib in (faiss, nearly):
        assert lib.try_extract_index_ivf(lib.index_factory(16, "PCA8,IVF8,Flat")).nlist == 8
        assert lib.try_extract_index_ivf(lib.IndexFlatL2(16)) is None
        opts = lib.get_compile_options()
        assert isinstance(opts, str) and opts.startswith("OPTIMIZE")
    # what scripts look for: the instruction set in use
    assert ("AVX2" in nearly.get_compile_options()) == (nearly.simd_level() in ("avx2", "avx512"))


@pytest.mark.parametrize("desc,subset_type", [("IVF30,Flat", 0), ("IVF30,Flat", 1), ("IVF30,PQ4np", 2),
                                              ("IVF30,SQ8", 3), ("IVF30,PQ8x4fs", 4), ("IVF30,Flat", 2)])
def test_copy_subset_to_splits_like_faiss(desc, subset_type):
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2100, 32)).astype("float32")
    xt, xb, xq = x[:1000], x[1000:2000], x[2000:]
    nsplit = 3
    results, sizes = {}, {}
    for lib in (faiss, nearly):
        index = lib.index_factory(32, desc)
        index.train(xt)
        parts = [lib.clone_index(index) for _ in range(nsplit)]
        index.add(xb)
        index.nprobe = 30
        ref = index.search(xq, 10)
        for i in range(nsplit):
            if subset_type in (1, 3):
                a1, a2 = nsplit, i
            elif subset_type in (0, 2):
                a1, a2 = index.ntotal * i // nsplit, index.ntotal * (i + 1) // nsplit
            else:
                a1, a2 = i * index.nlist // nsplit, (i + 1) * index.nlist // nsplit
            index.copy_subset_to(parts[i], subset_type, a1, a2)
        assert sum(p.ntotal for p in parts) == index.ntotal
        sizes[lib] = [[p.invlists.list_size(l) for l in range(30)] for p in parts]
        shards = lib.IndexShards(False, False)
        for p in parts:
            p.nprobe = 30
            shards.add_shard(p)
        got = shards.search(xq, 10)
        results[lib] = got, ref
    assert sizes[nearly] == sizes[faiss]  # the same split
    (got, ref) = results[nearly]
    # the parts together are the index (fast-scan's 8-bit tables may order
    # near-equal scores differently per part, as faiss's do)
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-5, atol=1e-5)
    if "fs" not in desc:
        np.testing.assert_array_equal(got[1], ref[1])
    other = nearly.index_factory(32, "IVF20,Flat")
    other.train(xt)
    one = nearly.index_factory(32, desc)
    one.train(xt)
    with pytest.raises(ValueError, match="same type"):
        one.copy_subset_to(other, 0, 0, 10)
    with pytest.raises(ValueError, match="subset type"):
        one.copy_subset_to(nearly.clone_index(one), 7, 0, 10)


@pytest.mark.parametrize("key,quantizer_type", [
    ("IVF64(PQ8x4),Flat", "IndexPQ"), ("IVF32(Flat),SQ8", "IndexFlat"), ("IVF32(HNSW8),PQ8x4fs", "IndexHNSWFlat"),
    ("IVF64(IVF8,SQ4,Refine(SQ8)),Flat", "IndexRefine"), ("IVF32(LSHr),Flat", "IndexLSH"),
])
def test_factory_quantizer_in_parentheses(key, quantizer_type):
    """faiss's IVF{n}(<description>): the coarse quantizer is built from the
    string in parentheses, trained on the centroids and filled with them."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((4000, 32)).astype(np.float32)
    out = {}
    for lib in (faiss, nearly):
        index = lib.index_factory(32, key)
        ivf = lib.extract_index_ivf(index)
        assert type(lib.downcast_index(ivf.quantizer)).__name__.startswith(quantizer_type)
        index.train(x)
        index.add(x)
        ivf.nprobe = 4
        assert ivf.quantizer.ntotal == ivf.nlist
        out[lib.__name__] = index.search(x[:50], 5)[1]
    # both find each stored vector first (the quantizers' k-means differ in detail)
    assert (out["nearly"][:, 0] == np.arange(50)).mean() >= 0.9
    # the parenthesized Flat quantizer is the plain IVF's
    plain, paren = nearly.index_factory(32, "IVF32,SQ8"), nearly.index_factory(32, "IVF32(Flat),SQ8")
    for index in (plain, paren):
        index.train(x)
        index.add(x)
    for a, b in zip(plain.search(x[:50], 5), paren.search(x[:50], 5)):
        np.testing.assert_array_equal(a, b)
    for bad in ("IVF32(,Flat", "IVF32(),Flat", "IVF32_HNSW16(PQ4),Flat", "PQ4(Flat)"):
        with pytest.raises(RuntimeError):
            nearly.index_factory(32, bad)


@pytest.mark.parametrize("key", ["IVF16,Flat", "IVF16,SQ8", "IVF16,PQ8x4fs"])
def test_update_vectors_equals_faiss(key):
    """update_vectors: the ids keep their numbers, their vectors change and
    move to their new lists, as faiss's (which needs a direct map too)."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3000, 32)).astype(np.float32)
    keys = np.array([5, 17, 999, 2500], dtype=np.int64)
    new = rng.standard_normal((4, 32)).astype(np.float32) * 3
    out = {}
    # faiss cannot update its fast-scan lists (BlockInvertedLists refuse a
    # hashtable direct map's removal); nearly's take the update like the others
    for lib in (faiss, nearly) if "fs" not in key else (nearly,):
        index = lib.index_factory(32, key)
        index.train(x)
        index.add(x)
        if lib is faiss:
            index.set_direct_map_type(faiss.DirectMap.Hashtable)
        else:
            index.make_direct_map()
        index.update_vectors(keys, new)
        index.nprobe = 16
        assert index.ntotal == len(x)
        out[lib.__name__] = index.search(new, 3)
        if "Flat" in key:
            np.testing.assert_array_equal(index.reconstruct(int(keys[2])), new[2])
    np.testing.assert_array_equal(out["nearly"][1][:, 0], keys)
    if "faiss" in out:
        np.testing.assert_array_equal(out["nearly"][1][:, 0], out["faiss"][1][:, 0])
    index = nearly.index_factory(32, "IVF16,Flat")
    index.train(x)
    index.add(x)
    with pytest.raises(RuntimeError, match="direct map"):
        index.update_vectors(keys, new)
    index.make_direct_map()
    with pytest.raises(IndexError):
        index.update_vectors(np.array([5, 99999]), new[:2])
    with pytest.raises(ValueError, match="twice"):
        index.update_vectors(np.array([5, 5]), new[:2])
    with pytest.raises(ValueError):
        index.update_vectors(keys, new[:3])
    bad = new.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        index.update_vectors(keys, bad)
    assert index.ntotal == len(x)
    np.testing.assert_array_equal(index.reconstruct(5), x[5])  # a failed update changes nothing
