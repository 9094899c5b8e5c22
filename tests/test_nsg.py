"""IndexNSGFlat: the NSG graph (one add builds it from the exact k-NN graph).

Recall on the real embeddings against exact search, the graph's invariants
(out-degree, no self or repeated links, every node reachable from the
navigating node), exact distances, filters, persistence, bad input and
Ctrl-C."""
from collections import deque

import numpy as np
import pytest

import nearly
from _hnswutil import dist64, exact_knn, real_data, recall
from _testutil import METRIC_IP, METRIC_L2, clustered, seconds_until_interrupted

_built = {}


def real_nsg(metric):
    """NSG32 over the first 10k real vectors, built once per metric."""
    if metric not in _built:
        xb = real_data()[0][:10_000]
        index = nearly.IndexNSGFlat(xb.shape[1], 32, metric)
        index.add(xb)
        _built[metric] = index
    index = _built[metric]
    index.nsg.search_L = 16
    return index, real_data()[0][:10_000], real_data()[1]


def reachable(graph, entry, blocked=None):
    """The nodes reachable from entry, not passing through `blocked`."""
    seen = np.zeros(len(graph), bool)
    if blocked is not None:
        seen[blocked] = True
    seen[entry] = True
    todo = deque([entry])
    while todo:
        for v in graph[todo.popleft()]:
            if v >= 0 and not seen[v]:
                seen[v] = True
                todo.append(v)
    if blocked is not None and blocked != entry:
        seen[blocked] = False
    return seen


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP], ids=["L2", "IP"])
def test_recall_on_real_data(metric):
    index, xb, xq = real_nsg(metric)
    true = exact_knn(xq, xb, 10, metric)
    r = {}
    for L in (16, 64, 128):
        index.nsg.search_L = L
        D, I = index.search(xq, 10)
        r[L] = recall(I, true)
    assert r[16] >= 0.85 and r[64] >= 0.97 and r[128] >= 0.99, r
    assert r[16] <= r[64] + 0.005 <= r[128] + 0.01, r
    S = dist64(xq, xb, metric)
    np.testing.assert_allclose(D, np.take_along_axis(S, I, 1), rtol=1e-4, atol=1e-4)
    # the parameters per search, as an HNSW's efSearch
    D2, I2 = index.search(xq, 10, params=nearly.SearchParametersNSG(search_L=128))
    np.testing.assert_array_equal(I2, I)


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP], ids=["L2", "IP"])
def test_graph_invariants(metric):
    index, xb, _ = real_nsg(metric)
    g = index.nsg.get_final_graph()
    assert g.shape == (len(xb), 32) and g.dtype == np.int32
    assert index.nsg.is_built and index.is_built and index.nsg.R == 32
    for i, row in enumerate(g):
        links = row[row >= 0]
        assert (row[len(links):] == -1).all()  # padding only at the end
        assert i not in links and len(set(links.tolist())) == len(links)
    assert reachable(g, index.nsg.enterpoint).all()
    assert (g >= 0).sum(1).mean() > 8  # a real graph, not a chain


def test_filters_keep_to_the_filter():
    index, xb, xq = real_nsg(METRIC_L2)
    index.nsg.search_L = 64
    rng = np.random.default_rng(3)
    for keep in (0.5, 0.003):
        allowed = np.sort(rng.choice(len(xb), int(keep * len(xb)), replace=False))
        mask = np.zeros(len(xb), bool)
        mask[allowed] = True
        D, I = index.search(xq, 10, params=nearly.SearchParameters(sel=nearly.IDSelectorBatch(allowed)))
        assert mask[I[I >= 0]].all()
        r = recall(I, exact_knn(xq, xb, 10, METRIC_L2, mask=mask))
        assert r >= (0.95 if keep > 0.1 else 1.0), (keep, r)  # too few pass: scanned exhaustively


def test_small_and_degenerate_sets():
    rng = np.random.default_rng(4)
    for n in (1, 2, 5, 70):  # fewer vectors than GK, than R
        x = rng.standard_normal((n, 8)).astype(np.float32)
        index = nearly.IndexNSGFlat(8, 4)
        index.add(x)
        D, I = index.search(x, min(n, 3))
        assert (I[:, 0] == np.arange(n)).all()
        assert reachable(index.nsg.get_final_graph(), index.nsg.enterpoint).all()
        D, I = index.search(x[:1], n + 2)  # k > ntotal: padded
        assert (I[0, n:] == -1).all() and (D[0, n:] == np.finfo(np.float32).max).all()
    x = np.repeat(rng.standard_normal((10, 8)).astype(np.float32), 30, axis=0)  # 30 copies of each
    index = nearly.IndexNSGFlat(8, 8)
    index.add(x)
    assert reachable(index.nsg.get_final_graph(), index.nsg.enterpoint).all()
    D, I = index.search(x[::30], 30)
    assert (np.sort(I, axis=1) == np.arange(300).reshape(10, 30)).mean() > 0.9


def test_dfs_counts_the_nodes_reachable():
    """faiss's connectivity check, index.nsg.dfs(VisitedTableVector(n), root,
    cnt): cnt plus the nodes reachable from root not marked yet; from the
    navigating node, every node. Checked against a breadth-first search from
    other roots, marks kept between calls."""
    x = clustered(np.random.default_rng(4), 800, 8)
    index = nearly.IndexNSGFlat(8, 8)
    index.add(x)
    vt = nearly.VisitedTableVector(index.ntotal)
    assert index.nsg.dfs(vt, index.nsg.enterpoint, 0) == 800 and vt.visited.all()
    assert index.nsg.dfs(vt, 5, 7) == 7  # nothing new
    g = index.nsg.get_final_graph()
    for root in (0, 123, 799):
        vt.advance()
        vt.set(3)  # already marked: not counted again
        assert index.nsg.dfs(vt, root, 0) == reachable(g, root, blocked=3).sum()
    with pytest.raises(ValueError):
        index.nsg.dfs(vt, 800, 0)
    with pytest.raises(ValueError):
        index.nsg.dfs(nearly.VisitedTableVector(10), 0, 0)


@pytest.mark.parametrize("R", [4, 5])
def test_small_degree_still_reaches_every_node(R):
    """With 4 or 5 links a node, the nodes the pruned graph misses must still
    find a host: every node reachable, every node found."""
    x = clustered(np.random.default_rng(9), 1500, 8)
    index = nearly.IndexNSGFlat(8, R)
    index.add(x)
    g = index.nsg.get_final_graph()
    assert ((g >= 0).sum(1) <= R).all() and reachable(g, index.nsg.enterpoint).all()
    index.nsg.search_L = 200
    assert recall(index.search(x[:200], 1)[1], np.arange(200)[:, None]) >= 0.98


def test_add_once_reset_and_persistence():
    rng = np.random.default_rng(5)
    xb, xq = clustered(rng, 3000, 16), clustered(rng, 20, 16)
    index = nearly.index_factory(16, "NSG16,Flat")
    assert isinstance(index, nearly.IndexNSGFlat) and index.nsg.R == 16
    empty = index.search(xq, 3)
    assert (empty[1] == -1).all()
    index.add(xb)
    with pytest.raises(RuntimeError, match="incremental"):
        index.add(xb[:10])
    index.nsg.search_L = 40
    want = index.search(xq, 5)
    np.testing.assert_array_equal(index.reconstruct(7), xb[7])
    buf = nearly.serialize_index(index)
    back = nearly.deserialize_index(buf)
    assert isinstance(back, nearly.IndexNSGFlat) and back.nsg.search_L == 40 and back.nsg.R == 16
    for a, b in zip(back.search(xq, 5), want):
        np.testing.assert_array_equal(a, b)
    for cut in (12, len(buf) // 2, len(buf) - 3):
        with pytest.raises(RuntimeError):
            nearly.deserialize_index(buf[:cut])
    index.reset()
    assert index.ntotal == 0 and not index.is_built
    index.add(xb[:500])
    assert index.ntotal == 500


def test_bad_input():
    x = np.random.default_rng(6).standard_normal((200, 8)).astype(np.float32)
    for R in (1, 3, 2000):
        with pytest.raises(ValueError, match="R must be"):
            nearly.IndexNSGFlat(8, R)
    with pytest.raises(RuntimeError, match="not implemented"):  # the quantized storages take L2 / IP only
        nearly.index_factory(8, "NSG16,SQ8", nearly.METRIC_L1)
    with pytest.raises(ValueError, match="metric"):
        nearly.IndexNSGFlat(8, 16, 99)
    index = nearly.IndexNSGFlat(8, 8)
    with pytest.raises(ValueError, match="build_type"):
        index.build_type = 2
    with pytest.raises(ValueError):
        index.nndescent_S = 0
    with pytest.raises(ValueError):
        index.nsg.search_L = 0
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError):
        index.add(bad)
    assert index.ntotal == 0
    index.add(x)
    with pytest.raises(ValueError):
        index.search(x[:2], 0)
    with pytest.raises(ValueError):
        index.search(x[:2, :4], 1)
    with pytest.raises(IndexError):
        index.reconstruct(200)


def test_verbose_build_reports_its_phases(capfd):
    index = nearly.IndexNSGFlat(16, 8)
    index.verbose = True
    index.add(clustered(np.random.default_rng(7), 2000, 16))
    out = capfd.readouterr().out
    assert "k-NN graph" in out and "reverse links" in out and "built in" in out


def test_ctrl_c_interrupts_a_long_build():
    x = np.random.default_rng(8).standard_normal((120_000, 64)).astype(np.float32)  # the k-NN graph alone: ~1 TFLOP
    index = nearly.IndexNSGFlat(64, 16)
    elapsed = seconds_until_interrupted(lambda: index.add(x))
    assert elapsed < 5, f"the interrupt took {elapsed:.1f}s to land"
    assert index.ntotal == 0 and not index.is_built
    index.add(x[:100])
    assert index.ntotal == 100


def test_nn_descent_build_keeps_the_recall():
    """build_type = 1 starts from an NN-descent k-NN graph instead of the
    exact one (faiss's option for large n): the same recall within 2 points."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((4100, 12)).astype(np.float32)
    xb, xq = x[:4000], x[4000:]
    gt = np.argsort(((xq[:, None, :] - xb[None]) ** 2).sum(-1), axis=1)[:, :10]
    rec = {}
    for bt in (0, 1):
        index = nearly.IndexNSGFlat(12, 16)
        index.build_type = bt
        index.GK = 32
        assert index.nndescent_L == 82 and index.nndescent_S == 10
        index.add(xb)
        index.nsg.search_L = 32
        I = index.search(xq, 10)[1]
        rec[bt] = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I, gt)])
    assert rec[1] >= rec[0] - 0.02 and rec[1] > 0.9, rec
