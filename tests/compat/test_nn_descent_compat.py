"""NN-descent (nearly.nn_descent_graph) and faiss's IndexNNDescentFlat,
against an exact numpy k-NN graph and against faiss-cpu: the same knobs and
defaults, the recall of faiss's index at every search_L on the real
embeddings (../shared/data), exact results when the search pool holds every
vector, persistence and bad input."""
import pickle

import numpy as np
import pytest

import nearly
from _hnswutil import real_data
from _testutil import METRIC_IP, METRIC_L2, distances64

faiss = pytest.importorskip("faiss")


def exact_graph(x, K, metric):
    dist = distances64(x, x, metric)
    dist = dist if metric == METRIC_L2 else -dist
    np.fill_diagonal(dist, np.inf)
    return np.argsort(dist, axis=1, kind="stable")[:, :K]


def graph_recall(g, exact):
    return np.mean([len(set(a[a >= 0]) & set(b)) / len(b) for a, b in zip(g, exact)])


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP], ids=["L2", "IP"])
def test_graph_recall_against_exact(metric, restore_threads):
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((40, 24))
    x = (centres[rng.integers(40, size=3000)] + 0.3 * rng.standard_normal((3000, 24))).astype(np.float32)
    exact = exact_graph(x, 10, metric)
    g = nearly.nn_descent_graph(x, 10, metric)
    assert g.shape == (3000, 10) and g.dtype == np.int32
    assert (g != np.arange(3000)[:, None]).all()  # never the row itself
    assert all(len(set(r)) == 10 for r in g)
    assert graph_recall(g, exact) > 0.95
    # rows nearest first
    d = distances64(x, x, metric)
    rows = np.take_along_axis(d, g.astype(np.int64), axis=1)
    assert (np.diff(rows if metric == METRIC_L2 else -rows, axis=1) >= -1e-6).all()
    # fewer rounds, fewer right neighbours; one thread the same quality
    assert graph_recall(nearly.nn_descent_graph(x, 10, metric, iter=1), exact) < graph_recall(g, exact)
    nearly.omp_set_num_threads(1)
    assert graph_recall(nearly.nn_descent_graph(x, 10, metric), exact) > 0.95


def test_graph_of_few_rows_is_padded():
    x = np.random.default_rng(1).standard_normal((6, 4)).astype(np.float32)
    g = nearly.nn_descent_graph(x, 8)
    np.testing.assert_array_equal(g[:, 5:], -1)
    np.testing.assert_array_equal(g[:, :5], exact_graph(x, 5, METRIC_L2))  # every other row, nearest first
    assert nearly.nn_descent_graph(x[:1], 3).tolist() == [[-1, -1, -1]]


def test_knobs_and_defaults_as_faiss():
    f, n = faiss.IndexNNDescentFlat(16, 24), nearly.IndexNNDescentFlat(16, 24)
    for name in ("S", "R", "L", "iter", "search_L", "K", "d", "random_seed", "has_built"):
        assert getattr(n.nndescent, name) == getattr(f.nndescent, name), name
    for ix in (f, n):
        ix.nndescent.S, ix.nndescent.R, ix.nndescent.L, ix.nndescent.iter, ix.nndescent.search_L = 5, 20, 40, 4, 50
    for name in ("S", "R", "L", "iter", "search_L"):
        assert getattr(n.nndescent, name) == getattr(f.nndescent, name)
    g = nearly.index_factory(16, "NNDescent16,Flat", METRIC_IP)
    assert isinstance(g, nearly.IndexNNDescentFlat) and g.nndescent.K == 16 and g.metric_type == METRIC_IP
    assert nearly.index_factory(16, "NNDescent").nndescent.K == 32


@pytest.fixture(scope="module")
def real():
    xb, xq = real_data()
    return np.ascontiguousarray(xb[:5000]), np.ascontiguousarray(xq[:200])


@pytest.mark.parametrize("metric", [METRIC_IP, METRIC_L2], ids=["IP", "L2"])
def test_recall_of_faiss_on_real_data(real, metric):
    xb, xq = real
    gt = np.argsort(-distances64(xq, xb, metric) if metric == METRIC_IP else distances64(xq, xb, metric),
                    axis=1)[:, :10]
    out = {}
    for lib in (faiss, nearly):
        index = lib.IndexNNDescentFlat(xb.shape[1], 32, metric)
        index.add(xb)
        assert index.nndescent.has_built
        for L in (16, 64):
            index.nndescent.search_L = L
            D, I = index.search(xq, 10)
            out[lib.__name__, L] = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I, gt)])
            if lib is nearly:
                exact = np.take_along_axis(distances64(xq, xb, metric), I, axis=1)
                np.testing.assert_allclose(D, exact, rtol=1e-4, atol=1e-4)
    for L in (16, 64):
        assert out["nearly", L] >= out["faiss", L] - 0.02, out
    assert out["nearly", 64] > 0.9


def test_full_pool_is_exact_and_second_add_rebuilds():
    rng = np.random.default_rng(2)
    x, q = rng.standard_normal((400, 12)).astype(np.float32), rng.standard_normal((9, 12)).astype(np.float32)
    index = nearly.IndexNNDescentFlat(12, 8)
    assert not index.nndescent.has_built
    index.add(x[:250])
    index.add(x[250:])  # the graph is rebuilt over all 400
    assert index.ntotal == 400 and index.nndescent.final_graph.shape == (400, 8)
    assert (index.nndescent.final_graph < 400).all()
    index.nndescent.search_L = 400  # the pool starts with every vector: exact
    D, I = index.search(q, 7)
    ref = distances64(q, x, METRIC_L2)
    np.testing.assert_array_equal(I, np.argsort(ref, axis=1, kind="stable")[:, :7])
    np.testing.assert_allclose(D, np.sort(ref, axis=1)[:, :7], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(index.reconstruct(17), x[17])
    # k above ntotal: padded
    D, I = index.search(q[:1], 410)
    assert (I[0, 400:] == -1).all() and (I[0, :400] >= 0).all()
    # a selector: only passing ids, the walk still on the whole graph
    sel = nearly.IDSelectorRange(100, 200)
    index.nndescent.search_L = 64
    _, I = index.search(q, 5, params=nearly.SearchParameters(sel=sel))
    assert ((I >= 100) & (I < 200)).all()
    index.reset()
    assert index.ntotal == 0 and not index.nndescent.has_built
    D, I = index.search(q, 3)
    assert (I == -1).all()


def test_persistence_and_corrupt_files(tmp_path):
    rng = np.random.default_rng(3)
    x, q = rng.standard_normal((300, 8)).astype(np.float32), rng.standard_normal((5, 8)).astype(np.float32)
    index = nearly.IndexNNDescentFlat(8, 10, METRIC_IP)
    index.nndescent.search_L = 30
    index.add(x)
    path = str(tmp_path / "nnd.index")
    nearly.write_index(index, path)
    for again in (nearly.read_index(path), pickle.loads(pickle.dumps(index))):
        assert again.nndescent.search_L == 30 and again.nndescent.K == 10 and again.nndescent.has_built
        np.testing.assert_array_equal(again.nndescent.final_graph, index.nndescent.final_graph)
        for a, b in zip(index.search(q, 5), again.search(q, 5)):
            np.testing.assert_array_equal(a, b)
    blob = bytes(nearly.serialize_index(index))
    for cut in (30, len(blob) // 2, len(blob) - 1):
        with pytest.raises(nearly.IndexFileError):
            nearly.deserialize_index(np.frombuffer(blob[:cut], dtype=np.uint8))


def test_bad_input():
    index = nearly.IndexNNDescentFlat(8, 4)
    x = np.random.default_rng(4).standard_normal((50, 8)).astype(np.float32)
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError):
        index.add(bad)
    assert index.ntotal == 0
    index.add(x)
    with pytest.raises(ValueError):
        index.search(x[:2], 0)
    with pytest.raises(ValueError):
        index.search(x[:2, :5], 1)
    with pytest.raises(ValueError):
        index.nndescent.S = 0
    with pytest.raises(ValueError):
        nearly.IndexNNDescentFlat(8, 0)
    with pytest.raises(ValueError, match="metric"):
        nearly.IndexNNDescentFlat(8, 4, 99)
    with pytest.raises(ValueError, match="metric"):
        nearly.nn_descent_graph(x, 4, 99)
    index.nndescent.L = 2  # below K: refused at the next build
    with pytest.raises(ValueError, match="L must be at least K"):
        index.add(x)
    assert index.ntotal == 50
    with pytest.raises(ValueError):
        nearly.nn_descent_graph(bad, 4)
    with pytest.raises(ValueError):
        nearly.nn_descent_graph(x[0], 4)
