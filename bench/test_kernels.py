"""Distance-kernel microbenchmarks, at every SIMD level nearly supports.

    python -m pytest bench --benchmark-only [--benchmark-json bench/results/kernels.json]

Groups (compare rows within a group):
  ip_ny    nearly._nearly.fvec_inner_products_ny, d=384 vs 10,000 vectors; numpy X @ q
  l2_ny    nearly._nearly.fvec_L2sqr_ny,          d=384 vs 10,000 vectors; numpy ((X - q)**2).sum(1)
  gemm_ip  nearly._nearly.gemm_ip, Q 64x384 by X 4096x384 -> 64x4096;      numpy Q @ X.T
  flat     IndexFlatIP.search, 100 queries on 20,000 vectors, k=10;        numpy Q @ X.T + argpartition,
           faiss.IndexFlatIP
  select_within  SuperKMeans's pair test over 4,096 partial distances (the first 64 of 384 dimensions,
           5% kept); numpy's mask + nonzero
Single-threaded unless NEARLY_BENCH_THREADS is set (see conftest.py).  Data:
the real MiniLM embeddings in ../shared/data (the tests skip without them).
Every benchmark also checks its result against a float64 numpy reference.
"""
import numpy as np
import pytest

D = 384
NY = 10_000
GEMM_M, GEMM_N = 64, 4096
FLAT_NQ, FLAT_NB, K = 100, 20_000, 10


def bench_group(name):
    """Benchmark marker: one comparison group, with warm-up calls before timing."""
    return pytest.mark.benchmark(group=name, warmup=True, warmup_iterations=5)


@pytest.fixture(scope="module")
def vec_data(data):
    X = np.ascontiguousarray(data["base"][:NY])
    q = np.ascontiguousarray(data["queries"][0])
    return q, X


@pytest.fixture(scope="module")
def gemm_data(data):
    return (np.ascontiguousarray(data["queries"][:GEMM_M]),
            np.ascontiguousarray(data["base"][:GEMM_N]))


@pytest.fixture(scope="module")
def flat_data(data):
    Q = np.ascontiguousarray(data["queries"][:FLAT_NQ])
    X = np.ascontiguousarray(data["base"][:FLAT_NB])
    S = Q.astype(np.float64) @ X.astype(np.float64).T
    gt = np.argsort(-S, axis=1)[:, :K]
    return Q, X, gt


def _check_close(got, ref, what):
    got = np.asarray(got)
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}"
    assert got.dtype == np.float32, f"{what}: dtype {got.dtype}"
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=2e-5, err_msg=what)


def _recall(I, gt):
    return np.mean([len(np.intersect1d(a, b)) / len(b) for a, b in zip(np.asarray(I), gt)])


# ---------------------------------------------------------------- ip_ny
@bench_group("ip_ny d=384 n=10000")
def test_ip_ny_nearly(benchmark, nearly_mod, simd, vec_data):
    q, X = vec_data
    benchmark.extra_info["simd"] = simd
    out = benchmark(nearly_mod._nearly.fvec_inner_products_ny, q, X)
    _check_close(out, X.astype(np.float64) @ q.astype(np.float64), f"fvec_inner_products_ny[{simd}]")


@bench_group("ip_ny d=384 n=10000")
def test_ip_ny_numpy(benchmark, vec_data):
    q, X = vec_data
    out = benchmark(np.matmul, X, q)
    _check_close(out, X.astype(np.float64) @ q.astype(np.float64), "numpy X @ q")


# ---------------------------------------------------------------- l2_ny
def _l2_ref(q, X):
    diff = X.astype(np.float64) - q.astype(np.float64)
    return np.einsum("ij,ij->i", diff, diff)


@bench_group("l2_ny d=384 n=10000")
def test_l2_ny_nearly(benchmark, nearly_mod, simd, vec_data):
    q, X = vec_data
    benchmark.extra_info["simd"] = simd
    out = benchmark(nearly_mod._nearly.fvec_L2sqr_ny, q, X)
    _check_close(out, _l2_ref(q, X), f"fvec_L2sqr_ny[{simd}]")


@bench_group("l2_ny d=384 n=10000")
def test_l2_ny_numpy(benchmark, vec_data):
    q, X = vec_data

    def l2(q, X):
        diff = X - q
        return np.einsum("ij,ij->i", diff, diff)

    out = benchmark(l2, q, X)
    _check_close(out, _l2_ref(q, X), "numpy ((X - q)**2).sum(1)")


# ---------------------------------------------------------------- gemm_ip
@bench_group("gemm_ip 64x384 by 4096x384")
def test_gemm_ip_nearly(benchmark, nearly_mod, simd, gemm_data):
    Q, X = gemm_data
    benchmark.extra_info["simd"] = simd
    out = benchmark(nearly_mod._nearly.gemm_ip, Q, X)
    _check_close(out, Q.astype(np.float64) @ X.astype(np.float64).T, f"gemm_ip[{simd}]")


@bench_group("gemm_ip 64x384 by 4096x384")
def test_gemm_ip_numpy(benchmark, gemm_data):
    Q, X = gemm_data
    XT = X.T  # a view: numpy hands it to sgemm as a transposed operand
    out = benchmark(np.matmul, Q, XT)
    _check_close(out, Q.astype(np.float64) @ X.astype(np.float64).T, "numpy Q @ X.T")


# ---------------------------------------------------------------- IndexFlatIP.search
@bench_group("IndexFlatIP.search nq=100 n=20000 k=10")
def test_flat_search_nearly(benchmark, nearly_mod, simd, flat_data):
    Q, X, gt = flat_data
    index = nearly_mod.IndexFlatIP(D)
    index.add(X)
    benchmark.extra_info["simd"] = simd
    Dist, I = benchmark(index.search, Q, K)
    assert Dist.dtype == np.float32 and I.dtype == np.int64 and I.shape == (FLAT_NQ, K)
    assert _recall(I, gt) >= 0.99, f"recall {_recall(I, gt)} at simd={simd}"


@bench_group("IndexFlatIP.search nq=100 n=20000 k=10")
def test_flat_search_faiss(benchmark, faiss_mod, flat_data):
    Q, X, gt = flat_data
    index = faiss_mod.IndexFlatIP(D)
    index.add(X)
    Dist, I = benchmark(index.search, Q, K)
    assert _recall(I, gt) >= 0.99


@bench_group("IndexFlatIP.search nq=100 n=20000 k=10")
def test_flat_search_numpy(benchmark, flat_data):
    Q, X, gt = flat_data
    XT = X.T

    def search(Q, k):
        S = Q @ XT
        I = np.argpartition(-S, k, axis=1)[:, :k]
        Ds = np.take_along_axis(S, I, axis=1)
        o = np.argsort(-Ds, axis=1)
        return np.take_along_axis(Ds, o, axis=1), np.take_along_axis(I, o, axis=1)

    Dist, I = benchmark(search, Q, K)
    assert _recall(I, gt) >= 0.99


# ---------------------------------------------------------------- select_within
@pytest.fixture(scope="module")
def select_data(data):
    X = data["base"][:4096, :64].astype(np.float32)
    q = data["queries"][0, :64].astype(np.float32)
    ip = np.ascontiguousarray(X @ q)
    yn = np.ascontiguousarray((X * X).sum(1))
    base = np.float32((q * q).sum())
    partial = (base + yn) - 2 * ip
    limit = float(np.quantile(partial, 0.05))
    return ip, yn, base, limit, np.flatnonzero(partial <= limit)


@bench_group("select_within n=4096 kept=5%")
def test_select_within_nearly(benchmark, nearly_mod, simd, select_data):
    ip, yn, base, limit, ref = select_data
    benchmark.extra_info["simd"] = simd
    I, _ = benchmark(nearly_mod._nearly._select_within, ip, yn, base, limit)
    np.testing.assert_array_equal(I, ref)


@bench_group("select_within n=4096 kept=5%")
def test_select_within_numpy(benchmark, select_data):
    ip, yn, base, limit, ref = select_data

    def select():
        partial = (base + yn) - 2 * ip
        keep = np.flatnonzero(partial <= limit)
        return keep, partial[keep]

    I, _ = benchmark(select)
    np.testing.assert_array_equal(I, ref)
