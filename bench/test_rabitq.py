"""RaBitQ microbenchmarks: IndexRaBitQ.search beside faiss's, at every SIMD
level nearly supports (the level picks the popcount kernel: bit by bit,
hardware popcnt, AVX-512 VPOPCNTDQ).

    python -m pytest bench/test_rabitq.py --benchmark-only [--benchmark-json bench/results/rabitq_kernels.json]

Groups: "RaBitQ{b} search": 100 real queries over 20,000 real vectors
(d=384, inner product), k=10, the default 4-bit queries. Each benchmark
checks that nearly returns faiss's ids.
"""
import numpy as np
import pytest

D, NQ, NB, K = 384, 100, 20_000, 10


def bench_group(name):
    return pytest.mark.benchmark(group=name, warmup=True, warmup_iterations=3)


@pytest.fixture(scope="module")
def vecs(data):
    return np.ascontiguousarray(data["queries"][:NQ]), np.ascontiguousarray(data["base"][:NB])


def _built(mod, nb_bits, X):
    index = mod.IndexRaBitQ(D, mod.METRIC_INNER_PRODUCT, nb_bits)
    index.train(X)
    index.add(X)
    return index


@pytest.fixture(scope="module")
def faiss_ids(vecs):
    faiss = pytest.importorskip("faiss")
    Q, X = vecs
    return {b: _built(faiss, b, X).search(Q, K)[1] for b in (1, 4)}


@pytest.mark.parametrize("nb_bits", [1, 4])
def test_rabitq_search_nearly(benchmark, nearly_mod, simd, vecs, faiss_ids, nb_bits):
    Q, X = vecs
    benchmark.group = f"RaBitQ{nb_bits} search nq={NQ} n={NB} k={K}"
    benchmark.extra_info["simd"] = simd
    index = _built(nearly_mod, nb_bits, X)
    _, I = benchmark(index.search, Q, K)
    assert (I == faiss_ids[nb_bits]).mean() >= 0.99


@pytest.mark.parametrize("nb_bits", [1, 4])
def test_rabitq_search_faiss(benchmark, faiss_mod, vecs, nb_bits):
    Q, X = vecs
    benchmark.group = f"RaBitQ{nb_bits} search nq={NQ} n={NB} k={K}"
    index = _built(faiss_mod, nb_bits, X)
    benchmark(index.search, Q, K)
