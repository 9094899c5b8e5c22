"""HNSW graphs built from k-NN lists (graph_build.h): each step against a
plain numpy reference, and the whole build against an inserted graph's recall."""
import numpy as np
import pytest

import nearly
from nearly import _nearly as N
from _testutil import brute_force, clustered, recall_at as recall

IP, L2 = nearly.METRIC_INNER_PRODUCT, nearly.METRIC_L2


def pair(a, b, metric):
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float(((a - b) ** 2).sum()) if metric == L2 else -float(a @ b)


def heuristic_ref(x, self_row, cands, cap, metric):
    """HNSW's neighbour heuristic over (score, row) pairs, best first (a repeated row counts once)."""
    seen = set()
    cands = [(s, r) for s, r in cands if r >= 0 and r != self_row and not (r in seen or seen.add(r))]
    if len(cands) <= cap:
        return cands
    kept = []
    for s, r in cands:
        if len(kept) == cap:
            break
        if all(pair(x[r], x[q], metric) >= s for _, q in kept):
            kept.append((s, r))
    return kept


def prune_ref(x, ids, scores, cap, metric):
    out_i = np.full((len(x), cap), -1, np.int32)
    out_s = np.zeros((len(x), cap), np.float32)
    for v in range(len(x)):
        kept = heuristic_ref(x, v, list(zip(scores[v].tolist(), ids[v].tolist())), cap, metric)
        for j, (s, r) in enumerate(kept):
            out_i[v, j], out_s[v, j] = r, s
    return out_i, out_s


def merge_ref(x, ids, scores, cap, max_merge, metric):
    cands = [[(s, r) for s, r in zip(scores[v].tolist(), ids[v].tolist()) if r >= 0] for v in range(len(x))]
    for u in range(len(x)):
        for s, v in zip(scores[u].tolist(), ids[u].tolist()):
            if v >= 0:
                cands[v].append((s, u))
    out_i = np.full((len(x), cap), -1, np.int32)
    out_s = np.zeros((len(x), cap), np.float32)
    for v in range(len(x)):
        once, seen = [], set()
        for s, r in sorted(cands[v]):
            if r not in seen and len(once) < max_merge:
                seen.add(r)
                once.append((s, r))
        for j, (s, r) in enumerate(heuristic_ref(x, v, once, cap, metric)):
            out_i[v, j], out_s[v, j] = r, s
    return out_i, out_s


def integer_data(rng, n, d):
    # Small integers: every score is exact in float32, whatever the order of the sums.
    return rng.integers(-4, 5, size=(n, d)).astype(np.float32)


def knn_table(x, k, metric):
    ids, scores = N._exact_level_knn(x, k, int(metric))
    return ids, scores


@pytest.mark.parametrize("metric", [L2, IP])
@pytest.mark.parametrize("cap", [1, 4, 12])
def test_prune_links_matches_reference(metric, cap):
    rng = np.random.default_rng(cap)
    x = integer_data(rng, 300, 9)
    ids, scores = knn_table(x, 24, metric)
    ids[::7, 20:] = -1  # short rows: padding
    got = N._prune_links(x, ids, scores, int(metric), cap)
    want = prune_ref(x, ids, scores, cap, metric)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    # rows with at most cap candidates keep them all
    few = N._prune_links(x, ids[:, :cap], scores[:, :cap], int(metric), cap)
    np.testing.assert_array_equal(few[0], ids[:, :cap])
    # a row listed twice (a near and a far candidate) counts once
    twice_i = np.concatenate([ids, ids[:, :6]], axis=1)
    twice_s = np.concatenate([scores, scores[:, :6]], axis=1)
    order = np.argsort(twice_s, axis=1, kind="stable")
    twice_i, twice_s = np.take_along_axis(twice_i, order, 1), np.take_along_axis(twice_s, order, 1)
    got = N._prune_links(x, twice_i, twice_s, int(metric), cap)
    want = prune_ref(x, twice_i, twice_s, cap, metric)
    np.testing.assert_array_equal(got[0], want[0])


@pytest.mark.parametrize("metric", [L2, IP])
@pytest.mark.parametrize("cap,max_merge", [(4, 4), (8, 16), (6, 40)])
def test_merge_reverse_links_matches_reference(metric, cap, max_merge):
    rng = np.random.default_rng(cap + max_merge)
    x = integer_data(rng, 250, 7)
    ids, scores = knn_table(x, 3 * cap, metric)
    fwd_i, fwd_s = N._prune_links(x, ids, scores, int(metric), cap)
    # a hub: many rows link to row 0 (its in-list is longer than max_merge)
    fwd_i[1:120, -1] = 0
    fwd_s[1:120, -1] = [pair(x[u], x[0], metric) for u in range(1, 120)]
    got = N._merge_reverse_links(x, fwd_i, fwd_s, int(metric), cap, max_merge)
    want = merge_ref(x, fwd_i, fwd_s, cap, max_merge, metric)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def test_merge_counts_a_link_and_its_reverse_once():
    x = np.array([[0, 0], [1, 0], [0, 2]], np.float32)
    # 0 -> 1 and 1 -> 0 with differently rounded scores: the better one counts.
    ids = np.array([[1], [0], [-1]], np.int32)
    scores = np.array([[1.0], [0.999], [0.0]], np.float32)
    got_i, got_s = N._merge_reverse_links(x, ids, scores, L2, 2, 4)
    assert got_i[0].tolist() == [1, -1] and got_s[0, 0] == np.float32(0.999)
    assert got_i[1].tolist() == [0, -1]


def test_exact_level_knn_skips_self_and_matches_brute_force():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((400, 16)).astype(np.float32)
    for metric in (L2, IP):
        ids, scores = N._exact_level_knn(x, 10, int(metric))
        assert (ids != np.arange(400)[:, None]).all()
        D, I = brute_force(x, x, 11, metric)
        for v in range(400):
            ref = [r for r in I[v].tolist() if r != v][:10]
            assert ids[v].tolist() == ref
        s0 = np.array([pair(x[v], x[ids[v, 0]], metric) for v in range(400)])
        np.testing.assert_allclose(scores[:, 0], s0, rtol=1e-4, atol=1e-3)


def test_levels_follow_hnsw_distribution():
    lv = N._draw_levels(200000, 16, 12345)
    assert lv.min() == 0
    frac = (lv >= 1).mean()
    assert abs(frac - 1 / 16) < 0.003
    assert abs((lv >= 2).mean() - 1 / 256) < 0.001
    np.testing.assert_array_equal(lv, N._draw_levels(200000, 16, 12345))


@pytest.mark.parametrize("metric", [L2, IP])
def test_hnsw_from_knn_recall_matches_inserted_graph(metric):
    # Like sentence embeddings: unit vectors around a few hundred directions.
    rng = np.random.default_rng(11)
    centers = rng.standard_normal((200, 24)).astype(np.float32)
    xb = centers[rng.integers(0, 200, 6000)] + 0.6 * rng.standard_normal((6000, 24)).astype(np.float32)
    xq = centers[rng.integers(0, 200, 300)] + 0.6 * rng.standard_normal((300, 24)).astype(np.float32)
    xb /= np.linalg.norm(xb, axis=1, keepdims=True)
    xq /= np.linalg.norm(xq, axis=1, keepdims=True)
    _, gt = brute_force(xq, xb, 10, metric)
    built = nearly.hnsw_from_knn(xb, 12, metric)
    inserted = nearly.IndexHNSWFlat(24, 12, metric)
    inserted.hnsw.efConstruction = 100
    inserted.add(xb)
    assert built.ntotal == 6000 and built.hnsw.max_level >= 1
    for ef in (16, 64):
        built.hnsw.efSearch = inserted.hnsw.efSearch = ef
        rb = recall(built.search(xq, 10)[1], gt, 10)
        ri = recall(inserted.search(xq, 10)[1], gt, 10)
        assert rb >= ri - 0.02, (ef, rb, ri)
    # exact distances of the returned ids
    D, I = built.search(xq, 5)
    ref = np.array([[pair(q, xb[i], metric) for i in row] for q, row in zip(xq, I)])
    np.testing.assert_allclose(D, ref if metric == L2 else -ref, rtol=1e-4, atol=1e-3)


def test_every_node_is_reachable():
    rng = np.random.default_rng(2)
    x = clustered(rng, 3000, 8, nclusters=30, scale=4.0, spread=0.05)  # tight clusters: hubs and orphans
    index = nearly.hnsw_from_knn(x, 4)
    indeg = np.zeros(3000, int)
    for v in range(3000):
        for u in index.hnsw.neighbors_of(v, 0):
            indeg[u] += 1
    entry = index.hnsw.entry_point
    assert ((indeg > 0) | (np.arange(3000) == entry)).all()


def test_given_knn_and_later_writes():
    rng = np.random.default_rng(4)
    xb = rng.standard_normal((2000, 16)).astype(np.float32)
    flat = nearly.IndexFlatL2(16)
    flat.add(xb)
    D, I = flat.search(xb, 33)  # its own row first: skipped
    index = nearly.hnsw_from_knn(xb, 8, L2, knn=(D, I))
    index.hnsw.efSearch = 64
    _, gt = brute_force(xb[:100], xb, 1, L2)
    assert recall(index.search(xb[:100], 1)[1], gt, 1) >= 0.98
    # an ordinary index afterwards: inserts, removals, persistence
    more = rng.standard_normal((300, 16)).astype(np.float32)
    index.add(more)
    assert index.ntotal == 2300
    _, I2 = index.search(more[:20], 1)
    assert (I2[:, 0] == np.arange(2000, 2020)).mean() >= 0.95
    assert index.remove_ids(np.arange(0, 100, dtype=np.int64)) == 100
    back = nearly.deserialize_index(nearly.serialize_index(index))
    np.testing.assert_array_equal(back.search(xb[200:220], 3)[1], index.search(xb[200:220], 3)[1])


def test_bad_graphs_are_rejected():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((50, 4)).astype(np.float32)
    g = N._build_hnsw_layers(x, 4, int(L2))
    g.check(4)
    levels, top = g.levels, g.max_level
    nodes = [g.nodes(l) for l in range(top + 1)]
    links = [g.links(l) for l in range(top + 1)]

    def rebuilt(levels=levels, nodes=nodes, links=links, entry=g.entry):
        return N.HNSWLayers(levels, nodes, links, entry)

    index = nearly.IndexHNSWFlat(4, 4)
    N._hnsw_add_graph(index, x, rebuilt())
    assert index.ntotal == 50
    with pytest.raises(ValueError, match="empty"):
        N._hnsw_add_graph(index, x, rebuilt())
    bad = [l.copy() for l in links]
    bad[0][3, 0] = 50  # out of range
    with pytest.raises(ValueError, match="bad link"):
        N._hnsw_add_graph(nearly.IndexHNSWFlat(4, 4), x, rebuilt(links=bad))
    bad = [l.copy() for l in links]
    bad[0][3, 0] = 3  # to itself
    with pytest.raises(ValueError, match="bad link"):
        N._hnsw_add_graph(nearly.IndexHNSWFlat(4, 4), x, rebuilt(links=bad))
    if top >= 1:
        low = int(np.flatnonzero(levels == 0)[0])
        bad = [l.copy() for l in links]
        bad[1][0, 0] = low  # a level-0 row linked on level 1
        with pytest.raises(ValueError, match="bad link"):
            N._hnsw_add_graph(nearly.IndexHNSWFlat(4, 4), x, rebuilt(links=bad))
    bad = [l.copy() for l in links]
    bad[0][5, :] = -1
    bad[0][5, 2] = 7  # a link after padding
    with pytest.raises(ValueError, match="bad link"):
        N._hnsw_add_graph(nearly.IndexHNSWFlat(4, 4), x, rebuilt(links=bad))
    with pytest.raises(ValueError, match="entry"):
        N._hnsw_add_graph(nearly.IndexHNSWFlat(4, 4), x, rebuilt(entry=int(np.flatnonzero(levels < top)[0])))
    with pytest.raises(ValueError, match="links each"):
        N._hnsw_add_graph(nearly.IndexHNSWFlat(4, 4), x, rebuilt(links=[l[:, :3] for l in links]))
    with pytest.raises(ValueError, match="rows for"):
        N._hnsw_add_graph(nearly.IndexHNSWFlat(4, 4), x[:10], rebuilt())
    with pytest.raises(ValueError):
        nearly.hnsw_from_knn(x, 4, knn=(np.zeros((50, 3), np.float32), np.full((50, 3), 60)))
    with pytest.raises(ValueError):
        nearly.hnsw_from_knn(x[0], 4)


def test_real_embeddings_recall_matches_inserted_graph():
    from _hnswutil import real_data
    base, queries = real_data()
    xb = np.ascontiguousarray(base[:12000])
    _, gt = brute_force(queries, xb, 10, IP)
    built = nearly.hnsw_from_knn(xb, 16, IP)
    inserted = nearly.IndexHNSWFlat(384, 16, IP)
    inserted.hnsw.efConstruction = 100
    inserted.add(xb)
    for ef in (32, 64):
        built.hnsw.efSearch = inserted.hnsw.efSearch = ef
        rb = recall(built.search(queries, 10)[1], gt, 10)
        ri = recall(inserted.search(queries, 10)[1], gt, 10)
        assert rb >= ri - 0.01, (ef, rb, ri)


def test_far_candidates_bridge_separated_clusters():
    # 60 well-separated blobs: k-NN lists never leave a blob; the nearest
    # nodes of the level above (far candidates) bridge them.
    rng = np.random.default_rng(11)
    xb = clustered(rng, 6000, 24, nclusters=60, scale=2.0, spread=0.5)
    xq = clustered(rng, 300, 24, nclusters=60, scale=2.0, spread=0.5)
    _, gt = brute_force(xq, xb, 10, L2)
    inserted = nearly.IndexHNSWFlat(24, 12)
    inserted.hnsw.efConstruction = 100
    inserted.add(xb)
    plain = nearly.hnsw_from_knn(xb, 12, far_factor=0)
    bridged = nearly.hnsw_from_knn(xb, 12)
    for ef, slack in ((16, 0.02), (64, 0.05)):
        for idx in (inserted, plain, bridged):
            idx.hnsw.efSearch = ef
        ri, rp, rb = (recall(idx.search(xq, 10)[1], gt, 10) for idx in (inserted, plain, bridged))
        assert rb >= rp + 0.1 and rb >= ri - slack, (ef, rb, rp, ri)


def test_far_candidates_reference():
    rng = np.random.default_rng(8)
    x = integer_data(rng, 200, 6)
    up = np.sort(rng.choice(200, 30, replace=False)).astype(np.int32)
    ids, scores = N._far_candidates(x, up, 5, int(L2))
    for v in range(200):
        others = [u for u in up if u != v]
        d = [pair(x[v], x[u], L2) for u in others]
        order = sorted(range(len(others)), key=lambda i: (d[i], others[i]))[:5]
        assert ids[v].tolist() == [others[i] for i in order]
        np.testing.assert_array_equal(scores[v], np.float32([d[i] for i in order]))
