"""4-bit fast-scan against faiss-cpu on the real embeddings: the same factory
strings on both sides give the same kind of index (by_residual, bbs, code
size) and recall within a point at each nprobe, with and without RFlat
re-ranking through IndexRefineSearchParameters."""
import numpy as np
import pytest

import nearly
from _hnswutil import real_data
from _testutil import METRIC_IP, METRIC_L2, brute_force, recall_at

faiss = pytest.importorskip("faiss")

STRINGS = ["PQ48x4fs", "IVF128,PQ48x4fs", "IVF128,PQ48x4fsr", "IVF128,PQ48x4fs,RFlat"]
pytestmark = pytest.mark.usefixtures("faiss_one_thread")


@pytest.fixture(scope="module")
def real():
    base, queries = real_data()
    return np.ascontiguousarray(base[:10000]), np.ascontiguousarray(queries[:200])


@pytest.fixture(scope="module")
def gts(real):
    x, xq = real
    return {m: brute_force(xq, x, 10, m)[1] for m in (METRIC_L2, METRIC_IP)}


def build(lib, s, metric, x):
    index = lib.index_factory(x.shape[1], s, metric)
    index.train(x[:4000])
    index.add(x)
    return index


def search(lib, index, xq, nprobe, s):
    if "RFlat" in s:
        p = lib.IndexRefineSearchParameters(k_factor=4, base_index_params=lib.SearchParametersIVF(nprobe=nprobe))
        return index.search(xq, 10, params=p)
    if "IVF" in s:
        return index.search(xq, 10, params=lib.SearchParametersIVF(nprobe=nprobe))
    return index.search(xq, 10)


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP], ids=["L2", "IP"])
@pytest.mark.parametrize("s", STRINGS)
def test_recall_matches_faiss(real, gts, s, metric):
    x, xq = real
    ours, theirs = build(nearly, s, metric, x), build(faiss, s, metric, x)
    for nprobe in ([1] if "IVF" not in s else [2, 16]):
        Dn, In = search(nearly, ours, xq, nprobe, s)
        Df, If = search(faiss, theirs, xq, nprobe, s)
        rn, rf = recall_at(In, gts[metric], 10), recall_at(If, gts[metric], 10)
        assert abs(rn - rf) <= 0.01 + 1e-9, (s, nprobe, rn, rf)
        assert Dn.dtype == Df.dtype == np.float32 and In.dtype == If.dtype == np.int64
        if "RFlat" in s:
            # Exact distances after re-ranking: equal where both found the same
            # nearest vector; where they differ, nearly's is rarely the worse one
            # (the trainings differ by float rounding, so a query can go either way).
            same = In[:, 0] == If[:, 0]
            np.testing.assert_allclose(Dn[same, 0], Df[same, 0], rtol=1e-5, atol=1e-5)
            worse = Dn[:, 0] < Df[:, 0] - 1e-5 if metric == METRIC_IP else Dn[:, 0] > Df[:, 0] + 1e-5
            assert worse.mean() <= 0.01, (s, nprobe, worse.sum())
        else:
            # Distances are the same kind of number (approximate without RFlat).
            tol = 0.05 * float(np.abs(Df[:, 0]).mean() + 1e-3)
            assert np.abs(np.sort(Dn[:, 0]) - np.sort(Df[:, 0])).mean() <= tol


def test_same_structure_as_faiss():
    for s in ["PQ32x4fs", "IVF64,PQ32x4fs", "IVF64,PQ32x4fsr", "IVF64,PQ31x4fs"]:
        d = 64 if "31" not in s else 62
        a = nearly.downcast_index(nearly.index_factory(d, s, METRIC_IP))
        b = faiss.downcast_index(faiss.index_factory(d, s, METRIC_IP))
        assert type(a).__name__ == type(b).__name__
        assert a.code_size == b.code_size and a.bbs == b.bbs and a.metric_type == b.metric_type
        if "IVF" in s:
            assert a.by_residual == b.by_residual and a.nlist == b.nlist
    q = nearly.IndexIVFPQFastScan(nearly.IndexFlat(64), 64, 16, 8)
    f = faiss.IndexIVFPQFastScan(faiss.IndexFlatL2(64), 64, 16, 8, 4)
    assert q.by_residual == f.by_residual and q.nprobe == f.nprobe


def test_errors_like_faiss():
    for lib in (nearly, faiss):
        with pytest.raises(RuntimeError):
            lib.IndexPQFastScan(32, 8, 8)
        with pytest.raises(RuntimeError):
            lib.IndexPQFastScan(30, 8, 4)
        x = np.random.default_rng(0).standard_normal((50, 32)).astype(np.float32)
        with pytest.raises(RuntimeError):
            lib.IndexPQFastScan(32, 8, 4).add(x)
