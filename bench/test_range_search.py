"""HNSW range search, nearly beside faiss on the same real data.

    python -m pytest bench/test_range_search.py --benchmark-only [--benchmark-json bench/results/range_search.json]

Group hnsw_range: IndexHNSWFlat (M=16, efConstruction 100, efSearch 64) over
30,000 real vectors (d=384), 200 queries, radius = the median distance of the
queries' 50th neighbour, both metrics. extra_info holds each library's recall
and precision of the range against the exact one (IndexFlat.range_search).
nearly searches k = efSearch, 2k, 4k, ... until a result falls outside the
radius; faiss keeps the range hits its one beam search meets.
Single-threaded unless NEARLY_BENCH_THREADS is set.
"""
import numpy as np
import pytest

NB, NQ = 30_000, 200


@pytest.fixture(scope="module")
def setup(data):
    import faiss
    import nearly
    xb = np.ascontiguousarray(data["base"][:NB])
    xq = np.ascontiguousarray(data["queries"][:NQ])
    out = {}
    for metric in (0, 1):
        exact = nearly.IndexFlat(384, metric)
        exact.add(xb)
        radius = float(np.median(exact.search(xq, 50)[0][:, -1]))
        lims, _, I = exact.range_search(xq, radius)
        truth = [set(I[lims[i]:lims[i + 1]].tolist()) for i in range(NQ)]
        for lib, mod in (("nearly", nearly), ("faiss", faiss)):
            h = mod.IndexHNSWFlat(384, 16, metric)
            h.hnsw.efConstruction = 100
            h.add(xb)
            h.hnsw.efSearch = 64
            out[metric, lib] = h
        out[metric] = radius, truth
    return xq, out


@pytest.mark.parametrize("lib", ["nearly", "faiss"])
@pytest.mark.parametrize("metric", [0, 1], ids=["IP", "L2"])
def test_hnsw_range(benchmark, setup, nearly_mod, faiss_mod, metric, lib):
    benchmark.group = f"hnsw_range_{'IP' if metric == 0 else 'L2'}"
    xq, out = setup
    radius, truth = out[metric]
    lims, D, I = benchmark(out[metric, lib].range_search, xq, radius)
    got = [set(I[lims[i]:lims[i + 1]].tolist()) for i in range(NQ)]
    hit = sum(len(g & t) for g, t in zip(got, truth))
    benchmark.extra_info["range_recall"] = hit / sum(len(t) for t in truth)
    benchmark.extra_info["range_precision"] = hit / max(1, sum(len(g) for g in got))
    assert benchmark.extra_info["range_precision"] == 1.0
