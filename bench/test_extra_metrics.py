"""Exact search under faiss's extra metrics, nearly beside faiss.

    python -m pytest bench/test_extra_metrics.py --benchmark-only [--benchmark-json bench/results/extra_metrics.json]

Groups (compare the two rows of a group): IndexFlat.search, 100 real queries
on 20,000 real vectors (d=384), k=10, under METRIC_L1, METRIC_Linf and
METRIC_Jaccard (on the absolute values: Jaccard is for non-negative data).
Each flat benchmark checks that nearly's results equal faiss's. Then the same
queries on IndexHNSWFlat (M=16, efSearch=64) and on IVF64,Flat (nprobe=8),
built once per library, with each library's recall@10 against exact search
in extra_info (compare QPS at the recall each reaches). Then the graph
indexes built on the metric, IndexNNDescentFlat (K=32, search_L=64) and
IndexNSGFlat (R=32, its k-NN graph by NN-descent, search_L=64), over the
first 10,000 vectors: the search as above, each build's seconds in
extra_info (build_s).
Single-threaded unless NEARLY_BENCH_THREADS is set.
"""
import numpy as np
import pytest

NQ, NB, K = 100, 20_000, 10


@pytest.fixture(scope="module")
def indexes(data):
    import faiss
    import nearly
    xb = np.ascontiguousarray(data["base"][:NB])
    xq = np.ascontiguousarray(data["queries"][:NQ])
    out = {}
    for name in ("METRIC_L1", "METRIC_Linf", "METRIC_Jaccard"):
        b, q = (np.abs(xb), np.abs(xq)) if name == "METRIC_Jaccard" else (xb, xq)
        for lib, mod in (("nearly", nearly), ("faiss", faiss)):
            index = mod.IndexFlat(384, getattr(mod, name))
            index.add(b)
            out[name, lib] = index, q
    return out


@pytest.mark.parametrize("lib", ["nearly", "faiss"])
@pytest.mark.parametrize("name", ["METRIC_L1", "METRIC_Linf", "METRIC_Jaccard"])
def test_flat_search(benchmark, indexes, nearly_mod, faiss_mod, name, lib):
    benchmark.group = f"flat_{name[len('METRIC_'):]}"
    index, q = indexes[name, lib]
    D, I = benchmark(index.search, q, K)
    Df, If = indexes[name, "faiss"][0].search(q, K)
    np.testing.assert_allclose(D, Df, rtol=1e-5)
    assert (I == If).mean() > 0.99


def metric_cases(data, nb):
    """(metric name, base, queries, exact top-K ids) over the first nb vectors."""
    import nearly
    xb = np.ascontiguousarray(data["base"][:nb])
    xq = np.ascontiguousarray(data["queries"][:NQ])
    for name in ("METRIC_L1", "METRIC_Linf", "METRIC_Jaccard"):
        b, q = (np.abs(xb), np.abs(xq)) if name == "METRIC_Jaccard" else (xb, xq)
        exact = nearly.IndexFlat(384, getattr(nearly, name))
        exact.add(b)
        yield name, b, q, exact.search(q, K)[1]


def bench_search(benchmark, case, kind, name):
    """Times case[kind].search; the recall@10 against exact search in extra_info."""
    benchmark.group = f"{kind}_{name[len('METRIC_'):]}"
    D, I = benchmark(case[kind].search, case["q"], K)
    benchmark.extra_info["recall_at_10"] = float(np.mean([len(set(a) & set(b)) / K for a, b in zip(I, case["gt"])]))


@pytest.fixture(scope="module")
def approximate(data):
    import faiss
    import nearly
    out = {}
    for name, b, q, gt in metric_cases(data, NB):
        for lib, mod in (("nearly", nearly), ("faiss", faiss)):
            hnsw = mod.IndexHNSWFlat(384, 16, getattr(mod, name))
            hnsw.add(b)
            hnsw.hnsw.efSearch = 64
            ivf = mod.index_factory(384, "IVF64,Flat", getattr(mod, name))
            ivf.train(b)
            ivf.add(b)
            ivf.nprobe = 8
            out[name, lib] = {"hnsw": hnsw, "ivf": ivf, "q": q, "gt": gt}
    return out


@pytest.mark.parametrize("lib", ["nearly", "faiss"])
@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
@pytest.mark.parametrize("name", ["METRIC_L1", "METRIC_Linf", "METRIC_Jaccard"])
def test_approximate_search(benchmark, approximate, nearly_mod, faiss_mod, name, kind, lib):
    bench_search(benchmark, approximate[name, lib], kind, name)


NB_GRAPH = 10_000


@pytest.fixture(scope="module")
def graphs(data, threads):
    import time

    import faiss
    import nearly
    before = nearly.omp_get_max_threads(), faiss.omp_get_max_threads()
    nearly.omp_set_num_threads(threads)  # the builds run with the benchmark's threads too
    faiss.omp_set_num_threads(threads)
    out = {}
    for name, b, q, gt in metric_cases(data, NB_GRAPH):
        for lib, mod in (("nearly", nearly), ("faiss", faiss)):
            nnd = mod.IndexNNDescentFlat(384, 32, getattr(mod, name))
            nsg = mod.IndexNSGFlat(384, 32, getattr(mod, name))
            nsg.build_type = 1
            built = {}
            for kind, index in (("nndescent", nnd), ("nsg", nsg)):
                t0 = time.perf_counter()
                index.add(b)
                built[kind] = time.perf_counter() - t0
            nnd.nndescent.search_L = 64
            nsg.nsg.search_L = 64
            out[name, lib] = {"nndescent": nnd, "nsg": nsg, "q": q, "gt": gt, "build_s": built}
    nearly.omp_set_num_threads(before[0])
    faiss.omp_set_num_threads(before[1])
    return out


@pytest.mark.parametrize("lib", ["nearly", "faiss"])
@pytest.mark.parametrize("kind", ["nndescent", "nsg"])
@pytest.mark.parametrize("name", ["METRIC_L1", "METRIC_Linf", "METRIC_Jaccard"])
def test_graph_search(benchmark, graphs, nearly_mod, faiss_mod, name, kind, lib):
    bench_search(benchmark, graphs[name, lib], kind, name)
    benchmark.extra_info["build_s"] = graphs[name, lib]["build_s"][kind]
