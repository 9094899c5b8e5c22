"""faiss.cvar.indexIVF_stats: queries, lists scanned and codes scored by IVF
searches, against faiss's counters for the same searches."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import faiss
import nearly


def counts(st):
    return st.nq, st.nlist, st.ndis


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5000, 16)).astype(np.float32)
    return x, x[:50] + 0.01


@pytest.mark.parametrize("desc", ["IVF32,Flat", "IVF32,SQ8", "IVF32,PQ4", "IDMap,IVF32,Flat"])
def test_ivf_stats_like_faiss(data, desc):
    x, xq = data
    out = {}
    for lib in (nearly, faiss):
        index = lib.index_factory(16, desc)
        index.train(x)
        index.add_with_ids(x[:4000], np.arange(4000) + 7)
        lib.extract_index_ivf(index).nprobe = 5
        st = lib.cvar.indexIVF_stats
        st.reset()
        assert counts(st) == (0, 0, 0)
        index.search(xq, 10)
        after_search = counts(st)
        index.range_search(xq, 2.0)
        out[lib.__name__] = (after_search, counts(st))
        if lib is nearly:
            assert st.search_time >= st.quantization_time > 0
    assert out["nearly"] == out["faiss"]
    assert out["nearly"][0][0] == len(xq) and out["nearly"][0][2] > 0


def test_ivf_stats_preassigned_and_empty_lists(data):
    x, xq = data
    out = {}
    for lib in (nearly, faiss):
        index = lib.index_factory(16, "IVF64,Flat")
        index.train(x)
        index.add(x[:300])  # some lists stay empty: not counted as scanned
        index.nprobe = 8
        D, I = index.quantizer.search(xq, 8)
        I[:, -1] = -1  # a missing probe counts nothing
        st = lib.cvar.indexIVF_stats
        st.reset()
        index.search_preassigned(xq, 10, I, D)
        out[lib.__name__] = counts(st)
    assert out["nearly"] == out["faiss"]


def test_ivf_stats_objects_and_threads(data):
    x, xq = data
    index = nearly.index_factory(16, "IVF32,Flat")
    index.train(x)
    index.add(x)
    index.nprobe = 3
    st = nearly.cvar.indexIVF_stats
    st.reset()
    index.search(xq, 5)
    one = counts(st)
    st.reset()
    with ThreadPoolExecutor(4) as pool:  # concurrent searches: every one counted
        list(pool.map(lambda _: index.search(xq, 5), range(8)))
    assert counts(st) == tuple(8 * v for v in one)
    mine = nearly.IndexIVFStats()
    mine.add(st)
    assert counts(mine) == counts(st) and mine.nheap_updates == 0
    st.reset()
    assert counts(nearly.cvar.indexIVF_stats) == (0, 0, 0) and counts(mine) != (0, 0, 0)


@pytest.mark.parametrize("desc", ["IVF32,Flat", "IVF32,PQ4x4fs"])
def test_range_search_early_stop_counts_the_lists_visited(data, desc):
    """max_empty_result_buckets stops a range search early: the counters
    report the lists it visited, as faiss's do with the early stop (the same
    lists: the quantizer is given the same centroids)."""
    x, xq = data
    centroids = None
    out = {}
    for lib in (faiss, nearly):
        index = lib.index_factory(16, desc)
        if centroids is None:
            index.train(x)
            centroids = index.quantizer.reconstruct_n(0, 32)
        else:
            index.train(x)
            index.quantizer.reset()
            index.quantizer.add(centroids)
        index.add(x[:4000])
        empty = lib.IDSelectorBatch(np.array([], dtype=np.int64))
        st = lib.cvar.indexIVF_stats
        res = []
        for stop in (0, 2):
            p = lib.SearchParametersIVF()
            p.nprobe, p.sel, p.max_empty_result_buckets = 6, empty, stop
            st.reset()
            lims, _, _ = index.range_search(xq, 1.0, params=p)
            assert lims[-1] == 0
            res.append((st.nlist, st.ndis))
        out[lib.__name__] = res
    assert out["nearly"][1][0] < out["nearly"][0][0] == len(xq) * 6
    assert out["nearly"][1][0] == len(xq) * 2 == out["faiss"][1][0]  # faiss's other counts vary by implementation
