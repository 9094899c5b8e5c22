"""Exact search under faiss's extra metrics, nearly beside faiss.

    python -m pytest bench/test_extra_metrics.py --benchmark-only [--benchmark-json bench/results/extra_metrics.json]

Groups (compare the two rows of a group): IndexFlat.search, 100 real queries
on 20,000 real vectors (d=384), k=10, under METRIC_L1, METRIC_Linf and
METRIC_Jaccard (on the absolute values: Jaccard is for non-negative data).
Each flat benchmark checks that nearly's results equal faiss's. Then the same
queries on IndexHNSWFlat (M=16, efSearch=64) and on IVF64,Flat (nprobe=8),
built once per library, with each library's recall@10 against exact search
in extra_info (compare QPS at the recall each reaches).
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


@pytest.fixture(scope="module")
def approximate(data):
    import faiss
    import nearly
    xb = np.ascontiguousarray(data["base"][:NB])
    xq = np.ascontiguousarray(data["queries"][:NQ])
    out = {}
    for name in ("METRIC_L1", "METRIC_Linf", "METRIC_Jaccard"):
        b, q = (np.abs(xb), np.abs(xq)) if name == "METRIC_Jaccard" else (xb, xq)
        exact = nearly.IndexFlat(384, getattr(nearly, name))
        exact.add(b)
        gt = exact.search(q, K)[1]
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
    benchmark.group = f"{kind}_{name[len('METRIC_'):]}"
    case = approximate[name, lib]
    D, I = benchmark(case[kind].search, case["q"], K)
    benchmark.extra_info["recall_at_10"] = float(np.mean([len(set(a) & set(b)) / K for a, b in zip(I, case["gt"])]))
