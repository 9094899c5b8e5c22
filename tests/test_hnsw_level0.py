"""faiss's HNSW build and storage knobs: init_level0 = False (level-0-only
nodes stored unlinked), init_level_0_from_knngraph (level 0 from k-NN lists),
reorder_links, search_bounded_queue, and IO_FLAG_SKIP_STORAGE (the links
written without the vectors, given back through `index.storage = ...`).
Checked against numpy (exact k-NN lists, distances) and against the index
built with its vectors (bit-for-bit results)."""
import os
import threading

import numpy as np
import pytest

import nearly
from _hnswutil import real_data
from _testutil import distances64, randn

D = 24
M = 8


@pytest.fixture(scope="module")
def xb():
    return randn(np.random.default_rng(5), 3000, D)


@pytest.fixture(scope="module")
def xq():
    return randn(np.random.default_rng(6), 50, D)


def exact_knn(x, k, metric=nearly.METRIC_L2):
    """Each row's k nearest rows of x (itself first, as a self-search gives)."""
    dist = distances64(x, x, metric)
    order = np.argsort(dist if metric == nearly.METRIC_L2 else -dist, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(dist, order, axis=1).astype(np.float32), order.astype(np.int64)


def level0_lists(index):
    """{id: set of level-0 neighbour ids}."""
    return {int(i): set(index.hnsw.neighbors_of(int(i), 0)) for i in index._ids()}


def upper_nodes(index):
    return {int(i) for i, lv in zip(index._ids(), index.hnsw.slot_levels()) if lv > 0}


def recall(I, gt):
    return np.mean([len(set(a) & set(b)) / gt.shape[1] for a, b in zip(I, gt)])


# ---- init_level0 ---------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: nearly.IndexHNSWFlat(D, M),
    lambda: nearly.IndexHNSWSQ(D, nearly.ScalarQuantizer.QT_8bit, M),
    lambda: nearly.IndexHNSWSQ(D, nearly.ScalarQuantizer.QT_4bit, M),
    lambda: nearly.IndexHNSWPQ(D, 4, M),
], ids=["Flat", "SQ8", "SQ4codes", "PQ"])
def test_without_init_level0_only_upper_nodes_are_linked(make, xb):
    index = make()
    assert index.init_level0 is True
    index.init_level0 = False
    if not index.is_trained:
        index.train(xb)
    index.add(xb[:1500])
    index.add(xb[1500:])  # a second batch: its upper nodes join the first's
    assert index.ntotal == len(xb)
    upper = upper_nodes(index)
    assert 0 < len(upper) < len(xb) // 2
    lists = level0_lists(index)
    for i, nb in lists.items():
        if i in upper:
            assert nb and nb <= upper  # linked among the upper nodes only
        else:
            assert nb == set()
    assert set().union(*lists.values()) <= upper  # nothing links to a level-0-only node
    # Every vector is stored all the same.
    if type(index) is nearly.IndexHNSWFlat:
        np.testing.assert_array_equal(index.reconstruct_n(0, 20), xb[:20])


def test_binary_hnsw_init_level0():
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 256, size=(2000, 8), dtype=np.uint8)
    index = nearly.IndexBinaryHNSW(64, M)
    index.init_level0 = False
    index.add(codes)
    levels = index.hnsw.slot_levels()
    for i in range(len(codes)):
        nb = index.hnsw.neighbors_of(i, 0)
        assert (len(nb) > 0) == (levels[i] > 0)


def test_init_level0_is_a_build_setting_not_saved(xb):
    index = nearly.IndexHNSWFlat(D, M)
    index.init_level0 = False
    index.add(xb[:200])
    assert nearly.deserialize_index(nearly.serialize_index(index)).init_level0 is True


def test_small_index_all_on_level0_has_no_entry(xb):
    # One vector, drawn on level 0 (seeded draw): stored, not linked, not found.
    index = nearly.IndexHNSWFlat(D, M)
    index.init_level0 = False
    index.add(xb[:1])
    if index.hnsw.slot_levels()[0] == 0:
        D_, I_ = index.search(xb[:1], 1)
        assert I_[0, 0] == -1
        index.init_level_0_from_knngraph(1, np.zeros((1, 1), np.float32), np.zeros((1, 1), np.int64))
    np.testing.assert_array_equal(index.reconstruct(0), xb[0])


# ---- init_level_0_from_knngraph ------------------------------------------------

@pytest.mark.parametrize("metric", [nearly.METRIC_L2, nearly.METRIC_INNER_PRODUCT], ids=["L2", "IP"])
def test_knngraph_short_rows_become_the_lists(metric, xb):
    k = 2 * M  # with the node itself: 2M - 1 neighbours, under the cap: kept whole
    index = nearly.IndexHNSWFlat(D, M, metric)
    index.init_level0 = False
    index.add(xb)
    Dk, Ik = exact_knn(xb, k, metric)
    index.init_level_0_from_knngraph(k, Dk, Ik)
    for i in range(0, len(xb), 7):
        got = index.hnsw.neighbors_of(i, 0)
        want = [int(v) for v in Ik[i] if v != i]
        assert sorted(got) == sorted(want)
        # Nearest first (the walk's int8 scores: allow near ties to swap).
        dist = distances64(xb[i:i + 1], xb[got], metric)[0]
        dist = dist if metric == nearly.METRIC_L2 else -dist
        assert np.all(np.diff(dist) >= -0.02 * np.abs(dist).max())


def test_knngraph_long_rows_are_pruned(xb):
    k = 6 * M
    index = nearly.IndexHNSWFlat(D, M)
    index.init_level0 = False
    index.add(xb)
    Dk, Ik = exact_knn(xb, k)
    index.init_level_0_from_knngraph(k, Dk, Ik)
    sizes = []
    for i in range(len(xb)):
        got = index.hnsw.neighbors_of(i, 0)
        row = [int(v) for v in Ik[i] if v != i]
        assert set(got) <= set(row) and 1 <= len(got) <= 2 * M
        # The heuristic keeps the nearest first (by the walk's int8 scores: a near tie may swap).
        d_first, d_nearest = distances64(xb[i:i + 1], xb[[got[0], row[0]]], nearly.METRIC_L2)[0]
        assert d_first <= d_nearest * 1.03
        sizes.append(len(got))
    assert np.mean(sizes) < 2 * M  # it did prune


def test_knngraph_rows_stop_at_minus_one_and_skip_self(xb):
    n = 500
    index = nearly.IndexHNSWFlat(D, M)
    index.add(xb[:n])
    Dk, Ik = exact_knn(xb[:n], 6)
    Ik[:, 4:] = -1
    Ik[:, 5] = 3  # after the padding: ignored
    index.init_level_0_from_knngraph(6, Dk, Ik)
    for i in range(n):
        assert sorted(index.hnsw.neighbors_of(i, 0)) == sorted(int(v) for v in Ik[i, :4] if v != i)


def test_knngraph_gives_the_recall_of_a_built_graph():
    xb, xq = real_data()
    xb, xq = xb[:8000], xq[:100]
    gt = np.argsort(distances64(xq, xb, nearly.METRIC_L2), axis=1)[:, :10]
    Dk, Ik = exact_knn(xb, 2 * 16 + 1)
    built = nearly.IndexHNSWFlat(xb.shape[1], 16)
    built.add(xb)
    index = nearly.IndexHNSWFlat(xb.shape[1], 16)
    index.init_level0 = False
    index.add(xb)
    before = recall(index.search(xq, 10)[1], gt)
    index.init_level_0_from_knngraph(Ik.shape[1], Dk, Ik)
    for ef in (32, 64):
        built.hnsw.efSearch = index.hnsw.efSearch = ef
        r, r_built = recall(index.search(xq, 10)[1], gt), recall(built.search(xq, 10)[1], gt)
        assert r >= r_built - 0.05, (ef, r, r_built)
    assert before < 0.3 < r


def test_knngraph_bad_input(xb):
    index = nearly.IndexHNSWFlat(D, M)
    index.add(xb[:100])
    Dk, Ik = exact_knn(xb[:100], 4)
    with pytest.raises(ValueError, match="ntotal x k"):
        index.init_level_0_from_knngraph(4, Dk[:50], Ik[:50])
    with pytest.raises(ValueError, match="k must be"):
        index.init_level_0_from_knngraph(0, Dk, Ik)
    bad = Ik.copy()
    bad[3, 1] = 100
    with pytest.raises(ValueError, match="neighbour 100"):
        index.init_level_0_from_knngraph(4, Dk, bad)
    bad[3, 1] = -5
    with pytest.raises(ValueError):
        index.init_level_0_from_knngraph(4, Dk, bad)
    before = level0_lists(index)
    assert level0_lists(index) == before  # a refused call changes nothing
    other = nearly.IndexHNSWFlat(D, M)
    other.add_with_ids(xb[:100], np.arange(1000, 1100))
    with pytest.raises(ValueError, match="0 .. ntotal-1"):
        other.init_level_0_from_knngraph(4, Dk, Ik)


def test_reorder_links_sorts_each_list(xb):
    index = nearly.IndexHNSWFlat(D, M)
    index.add(xb)
    before = level0_lists(index)
    index.reorder_links()
    assert level0_lists(index) == before
    for i in range(0, len(xb), 11):
        got = index.hnsw.neighbors_of(i, 0)
        dist = distances64(xb[i:i + 1], xb[got], nearly.METRIC_L2)[0]
        assert np.all(np.diff(dist) >= -0.02 * dist.max())


def test_search_bounded_queue_is_kept_and_changes_nothing(xb, xq):
    index = nearly.IndexHNSWFlat(D, M)
    index.add(xb)
    assert index.hnsw.search_bounded_queue is True
    ref = index.search(xq, 10)
    index.hnsw.search_bounded_queue = False
    assert index.hnsw.search_bounded_queue is False
    got = index.search(xq, 10)
    np.testing.assert_array_equal(got[1], ref[1])


# ---- IO_FLAG_SKIP_STORAGE ------------------------------------------------------

KINDS = {
    "Flat": lambda: nearly.IndexHNSWFlat(D, M),
    "FlatIP": lambda: nearly.IndexHNSWFlat(D, M, nearly.METRIC_INNER_PRODUCT),
    "FlatL1": lambda: nearly.IndexHNSWFlat(D, M, nearly.METRIC_L1),
    "SQ8": lambda: nearly.IndexHNSWSQ(D, nearly.ScalarQuantizer.QT_8bit, M),
    "fp16": lambda: nearly.IndexHNSWSQ(D, nearly.ScalarQuantizer.QT_fp16, M),
    "bf16": lambda: nearly.IndexHNSWSQ(D, nearly.ScalarQuantizer.QT_bf16, M),
    "Cagra": lambda: nearly.IndexHNSWCagra(D, M),
    "Panorama": lambda: nearly.IndexHNSWFlatPanorama(D, M, 4),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_skip_storage_round_trip(kind, xb, xq):
    index = KINDS[kind]()
    index.add(xb)
    ref = index.search(xq, 10)
    full = nearly.serialize_index(index)
    links = nearly.serialize_index(index, nearly.IO_FLAG_SKIP_STORAGE)
    assert len(links) < len(full) - len(xb) * D * 2  # at least the vectors' bytes are gone

    bare = nearly.deserialize_index(links)
    assert type(bare) is type(index)
    assert bare.storage is None and bare.ntotal == index.ntotal
    np.testing.assert_array_equal(bare.hnsw.neighbors, index.hnsw.neighbors)
    np.testing.assert_array_equal(bare.hnsw.levels, index.hnsw.levels)
    assert bare.hnsw.entry_point == index.hnsw.entry_point
    for call in (lambda: bare.search(xq, 1), lambda: bare.range_search(xq, 1.0), lambda: bare.reconstruct(0),
                 lambda: bare.add(xb[:3]), lambda: bare.remove_ids(np.arange(3)),
                 lambda: bare.reorder_links()):
        with pytest.raises(RuntimeError, match="without its vectors"):
            call()
    # Written again without vectors: the same links.
    again = nearly.deserialize_index(nearly.serialize_index(bare))
    assert again.storage is None
    np.testing.assert_array_equal(again.hnsw.neighbors, index.hnsw.neighbors)

    # The vectors given back: the index searches as the one that kept them.
    # (The nodes are encoded from the vectors given: the SQ8 / bf16 kinds
    # re-encode reconstructions slightly differently, so give the originals.)
    flat = nearly.IndexFlat(D, index.metric_type)
    flat.add(xb)
    bare.storage = flat
    assert bare.storage is not None
    got = bare.search(xq, 10)
    np.testing.assert_array_equal(got[1], ref[1])
    np.testing.assert_array_equal(got[0], ref[0])
    back = nearly.deserialize_index(nearly.serialize_index(bare))
    np.testing.assert_array_equal(back.search(xq, 10)[1], ref[1])


def test_skip_storage_after_removals_uses_slot_order(xb, xq):
    index = nearly.IndexHNSWFlat(D, M)
    index.add(xb)
    index.remove_ids(nearly.IDSelectorRange(100, 400))
    index.add(xb[100:200])  # reuses freed slots: ids 3000.. in old slots
    ref = index.search(xq, 10)
    bare = nearly.deserialize_index(nearly.serialize_index(index, nearly.IO_FLAG_SKIP_STORAGE))
    storage = nearly.clone_index(index.storage)
    assert isinstance(storage, nearly.IndexFlat) and storage.ntotal == index.ntotal
    bare.storage = storage
    got = bare.search(xq, 10)
    np.testing.assert_array_equal(got[1], ref[1])
    np.testing.assert_array_equal(got[0], ref[0])
    # The index works on as usual: adds and removals.
    bare.add(xb[:5])
    assert bare.remove_ids(np.arange(5)) == 5


def test_skip_storage_through_files_and_mmap(tmp_path, xb, xq):
    index = nearly.IndexHNSWFlat(D, M)
    index.add(xb)
    ref = index.search(xq, 5)
    path = str(tmp_path / "links.index")
    nearly.write_index(index, path, nearly.IO_FLAG_SKIP_STORAGE)
    assert os.path.getsize(path) < len(nearly.serialize_index(index)) // 2
    for flags in (0, nearly.IO_FLAG_MMAP):
        bare = nearly.read_index(path, flags)
        assert bare.storage is None
        with pytest.raises(RuntimeError):
            bare.search(xq, 1)
    bare = nearly.read_index(path)
    flat = nearly.IndexFlatL2(D)
    flat.add(xb)
    bare.storage = flat
    np.testing.assert_array_equal(bare.search(xq, 5)[1], ref[1])
    ro = nearly.read_index(path, nearly.IO_FLAG_MMAP)
    with pytest.raises(RuntimeError):
        ro.storage = flat  # read-only


def test_skip_storage_is_ignored_off_graphs_and_below_the_top(xb, xq):
    flat = nearly.IndexFlatL2(D)
    flat.add(xb)
    assert (nearly.serialize_index(flat, nearly.IO_FLAG_SKIP_STORAGE).tobytes()
            == nearly.serialize_index(flat).tobytes())
    # An IVF's HNSW quantizer keeps its centroids (faiss: the flag is the top index's).
    ivf = nearly.IndexIVFFlat(nearly.IndexHNSWFlat(D, M), D, 32)
    ivf.train(xb)
    ivf.add(xb)
    back = nearly.deserialize_index(nearly.serialize_index(ivf, nearly.IO_FLAG_SKIP_STORAGE))
    np.testing.assert_array_equal(back.search(xq, 5)[1], ivf.search(xq, 5)[1])


@pytest.mark.parametrize("make", [
    lambda: nearly.IndexHNSWSQ(D, nearly.ScalarQuantizer.QT_4bit, M),
    lambda: nearly.IndexHNSWPQ(D, 4, M),
], ids=["SQ4codes", "PQ"])
def test_skip_storage_refused_where_vectors_cannot_come_back(make, xb):
    index = make()
    index.train(xb)
    index.add(xb[:200])
    with pytest.raises(RuntimeError, match="IO_FLAG_SKIP_STORAGE"):
        nearly.serialize_index(index, nearly.IO_FLAG_SKIP_STORAGE)
    with pytest.raises(RuntimeError, match="cannot be replaced"):
        index.storage = nearly.IndexFlatL2(D)


def test_storage_assignment_bad_input(xb):
    index = nearly.IndexHNSWFlat(D, M)
    index.add(xb[:100])
    bare = nearly.deserialize_index(nearly.serialize_index(index, nearly.IO_FLAG_SKIP_STORAGE))
    short = nearly.IndexFlatL2(D)
    short.add(xb[:99])
    with pytest.raises(ValueError, match="99 vectors"):
        bare.storage = short
    wide = nearly.IndexFlatL2(D + 1)
    with pytest.raises(ValueError, match="d = 25"):
        bare.storage = wide
    ip = nearly.IndexFlatIP(D)
    ip.add(xb[:100])
    with pytest.raises(ValueError, match="metric"):
        bare.storage = ip
    bad = xb[:100].copy()
    bad[7, 3] = np.nan
    with pytest.raises(ValueError, match="NaN|finite"):
        bare._set_vectors(bad)
    with pytest.raises(RuntimeError):
        bare.storage = None
    with pytest.raises(RuntimeError):
        bare.storage = nearly.IndexBinaryFlat(64)
    assert bare.storage is None  # nothing taken
    # The storage view of the index itself: nothing to do.
    index.storage = index.storage


def test_corrupt_links_only_file_is_refused(xb):
    index = nearly.IndexHNSWFlat(D, M)
    index.add(xb[:300])
    links = nearly.serialize_index(index, nearly.IO_FLAG_SKIP_STORAGE)
    for cut in (len(links) // 2, len(links) - 9):
        with pytest.raises(nearly.IndexFileError):
            nearly.deserialize_index(links[:cut])


def test_searches_beside_storage_assignment(xb, xq):
    """Searching threads see either the error (no vectors yet) or the full results."""
    index = nearly.IndexHNSWFlat(D, M)
    index.add(xb)
    ref = index.search(xq, 5)[1]
    bare = nearly.deserialize_index(nearly.serialize_index(index, nearly.IO_FLAG_SKIP_STORAGE))
    flat = nearly.clone_index(index.storage)
    errors, stop = [], threading.Event()

    def searcher():
        while not stop.is_set():
            try:
                got = bare.search(xq, 5)[1]
            except RuntimeError as e:
                if "without its vectors" not in str(e):
                    errors.append(e)
                continue
            if not np.array_equal(got, ref):
                errors.append("wrong results")

    threads = [threading.Thread(target=searcher) for _ in range(2)]
    for t in threads:
        t.start()
    bare.storage = flat
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    np.testing.assert_array_equal(bare.search(xq, 5)[1], ref)
