"""faiss.cvar.hnsw_stats: searches, scores computed and hops of HNSW walks,
beside faiss's counters for the same searches of graphs of the same data."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import faiss
import nearly
from _hnswutil import real_data


@pytest.fixture(scope="module")
def data():
    xb, xq = real_data()
    return xb[:8000], xq[:100]


def test_hnsw_stats_beside_faiss(data):
    xb, xq = data
    got = {}
    for lib in (nearly, faiss):
        index = lib.IndexHNSWFlat(xb.shape[1], 16)
        index.hnsw.efConstruction = 64
        st = lib.cvar.hnsw_stats
        st.reset()
        index.add(xb)
        rows = []
        for ef in (16, 64):
            index.hnsw.efSearch = ef
            st.reset()
            index.search(xq, 10)
            rows.append((st.n1, st.ndis, st.nhops))
        got[lib.__name__] = rows
    for (n1, ndis, nhops), (fn1, fndis, fnhops) in zip(got["nearly"], got["faiss"]):
        assert n1 == fn1 == len(xq)
        # two graphs of the same data walked by the same rules: the same order of work
        assert 0.7 < ndis / fndis < 1.4 and 0.7 < nhops / fnhops < 1.4
    assert got["nearly"][1][1] > got["nearly"][0][1]  # a wider beam scores more


def test_hnsw_stats_count_searches_only_and_every_kind(data):
    xb, xq = data
    st = nearly.cvar.hnsw_stats
    for desc in ("HNSW16", "HNSW16,SQ8", "HNSW16,PQ16"):
        index = nearly.index_factory(xb.shape[1], desc)
        index.train(xb[:3000])
        st.reset()
        index.add(xb[:3000])
        assert (st.n1, st.ndis, st.nhops) == (0, 0, 0)  # building is not a search
        index.search(xq, 5)
        assert st.n1 == len(xq) and st.ndis > 0 and st.nhops >= len(xq)
    codes = np.packbits(xb[:3000] > 0, axis=1)
    binary = nearly.IndexBinaryHNSW(codes.shape[1] * 8, 16)
    binary.add(codes)
    st.reset()
    binary.search(codes[:50], 5)
    assert st.n1 == 50 and st.ndis > 0


def test_hnsw_stats_threads_and_objects(data):
    xb, xq = data
    index = nearly.IndexHNSWFlat(xb.shape[1], 16)
    index.add(xb[:3000])
    st = nearly.cvar.hnsw_stats
    st.reset()
    index.search(xq, 5)
    one = (st.n1, st.ndis, st.nhops)
    st.reset()
    with ThreadPoolExecutor(4) as pool:  # concurrent searches: every one counted
        list(pool.map(lambda _: index.search(xq, 5), range(8)))
    assert (st.n1, st.ndis, st.nhops) == tuple(8 * v for v in one)
    mine = nearly.HNSWStats()
    mine.combine(st)
    st.reset()
    assert mine.n1 == 8 * len(xq) and nearly.cvar.hnsw_stats.n1 == 0
