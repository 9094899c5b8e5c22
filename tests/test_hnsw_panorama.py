"""IndexHNSWFlatPanorama (hnsw.h): IndexHNSWFlat whose re-ranking of the
walk's best candidates reads each float vector a Panorama level at a time
and drops it once its bound shows it cannot enter the k best. Pruning never
changes the answer, so every search is checked against an IndexHNSWFlat
built the same way (one thread: the same graph) and the returned distances
against float64 numpy; the tail norms travel in the nodes' side copies, so
every kind of write (add, removal and slot reuse, permute, a file read back
or mapped) is followed by the same checks."""
import struct

import numpy as np
import pytest

import nearly
from _hnswutil import reseal, searching_while
from _testutil import METRIC_IP, METRIC_L2, assert_same_search, distances64
from test_panorama import decaying, expected_tails

METRICS = [METRIC_L2, METRIC_IP]


@pytest.fixture
def one_thread():
    nt = nearly.omp_get_max_threads()
    nearly.omp_set_num_threads(1)
    yield
    nearly.omp_set_num_threads(nt)


def built_pair(xb, n_levels, metric, M=16, efc=40):
    """An IndexHNSWFlat and an IndexHNSWFlatPanorama over the same graph
    (added on one thread: the build is deterministic)."""
    d = xb.shape[1]
    flat = nearly.IndexHNSWFlat(d, M, metric)
    pano = nearly.IndexHNSWFlatPanorama(d, M, n_levels, metric)
    for index in (flat, pano):
        index.hnsw.efConstruction = efc
        index.add(xb)
    np.testing.assert_array_equal(pano.hnsw.neighbors, flat.hnsw.neighbors)
    return flat, pano


def distances_exact(D, I, xq, xb, metric, ids=None):
    """Each returned distance is its id's float64 distance (ids: row -> id)."""
    row = {int(i): r for r, i in enumerate(ids)} if ids is not None else None
    ref = distances64(xq, xb, metric)
    for q in range(len(xq)):
        for j in range(D.shape[1]):
            if I[q, j] >= 0:
                r = row[int(I[q, j])] if row is not None else int(I[q, j])
                assert abs(D[q, j] - ref[q, r]) <= 1e-4 * (1 + abs(ref[q, r])), (q, j)


def check_tails(index, x):
    got = np.asarray(index.cum_sums).reshape(index.ntotal, index.pano.n_levels + 1)
    np.testing.assert_allclose(got, expected_tails(x, index.num_panorama_levels), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("metric", METRICS, ids=["L2", "IP"])
@pytest.mark.parametrize("n_levels", [1, 4, 8, 48])
def test_same_answers_as_hnsw_flat(metric, n_levels, one_thread):
    xb, xq = decaying(1, 3000, 48, nq=50)
    flat, pano = built_pair(xb, n_levels, metric)
    for k in (1, 10, 50):
        for ef in (16, 64):
            pano.hnsw.efSearch = flat.hnsw.efSearch = ef
            D, I = assert_same_search(flat, pano, xq, k)
            distances_exact(D, I, xq, xb, metric)
    check_tails(pano, xb)


def test_prunes_more_with_finer_levels(one_thread):
    """Nested levels (1, 2, 4, 8, 16 over 64 dims) read fewer slices of the
    same candidates each time; one level reads everything."""
    xb, xq = decaying(3, 4000, 64, nq=100)
    ratios = []
    for n_levels in (1, 2, 4, 8, 16):
        index = nearly.IndexHNSWFlatPanorama(64, 16, n_levels)
        index.add(xb)
        nearly.cvar.indexPanorama_stats.reset()
        index.search(xq, 10)
        ratios.append(nearly.cvar.indexPanorama_stats.ratio_dims_scanned)
    assert ratios[0] == 1.0
    assert all(b <= a for a, b in zip(ratios, ratios[1:])), ratios
    assert ratios[-1] < 0.8, ratios


@pytest.mark.parametrize("threads", [1, 4])
def test_filtered_and_range_like_hnsw_flat(threads, one_thread):
    xb, xq = decaying(4, 3000, 32, nq=40)
    flat, pano = built_pair(xb, 8, METRIC_L2)
    nearly.omp_set_num_threads(threads)
    for sel in (nearly.IDSelectorRange(200, 1800), nearly.IDSelectorBatch(np.arange(0, 3000, 7)),
                nearly.IDSelectorBatch(np.arange(0, 3000, 300))):  # the last: exact scan of the few that pass
        params = nearly.SearchParametersHNSW(sel=sel, efSearch=32)
        D, I = assert_same_search(flat, pano, xq, 10, params=params)
        assert all(sel.is_member(int(i)) for i in I.ravel() if i >= 0)
    radius = float(np.median(flat.search(xq, 5)[0][:, -1]))
    lf, Df, If = flat.range_search(xq, radius)
    lp, Dp, Ip = pano.range_search(xq, radius)
    np.testing.assert_array_equal(lp, lf)
    for q in range(len(xq)):
        assert set(Ip[lp[q]:lp[q + 1]]) == set(If[lf[q]:lf[q + 1]])


def test_removal_slot_reuse_and_add_after(one_thread):
    xb, xq = decaying(5, 4000, 32, nq=40)
    flat, pano = built_pair(xb[:3000], 8, METRIC_L2)
    sel = nearly.IDSelectorRange(500, 1500)
    assert flat.remove_ids(sel) == pano.remove_ids(sel) == 1000
    for index in (flat, pano):
        index.add(xb[3000:])  # fills the freed slots
    ids = pano._ids()
    np.testing.assert_array_equal(ids, flat._ids())
    stored = xb[ids]  # the added vectors' ids continue from 3000: id i is xb[i], in slot order
    check_tails(pano, stored)
    D, I = assert_same_search(flat, pano, xq, 10)
    distances_exact(D, I, xq, stored, METRIC_L2, ids=ids)
    assert not np.isin(I, np.arange(500, 1500)).any()


def test_persistence_mmap_and_clone(tmp_path, one_thread):
    xb, xq = decaying(6, 2000, 40, nq=30)
    _, pano = built_pair(xb, 6, METRIC_IP)
    pano.hnsw.efSearch = 48
    D, I = pano.search(xq, 10)
    path = str(tmp_path / "pano.index")
    nearly.write_index(pano, path)
    for back in (nearly.read_index(path), nearly.read_index(path, nearly.IO_FLAG_MMAP), nearly.clone_index(pano),
                 nearly.deserialize_index(nearly.serialize_index(pano))):
        assert type(back) is nearly.IndexHNSWFlatPanorama
        assert back.num_panorama_levels == 6 and back.metric_type == METRIC_IP and back.hnsw.efSearch == 48
        D2, I2 = back.search(xq, 10)
        np.testing.assert_array_equal(I2, I)
        np.testing.assert_array_equal(D2, D)
        check_tails(back, xb)


def test_truncated_and_forged_files_are_refused(one_thread):
    xb, _ = decaying(7, 500, 16)
    pano = nearly.IndexHNSWFlatPanorama(16, 8, 4)
    pano.add(xb)
    buf = bytes(nearly.serialize_index(pano))
    for cut in (30, len(buf) // 2, len(buf) - 9):
        with pytest.raises(Exception, match="truncated|corrupt|checksum"):
            nearly.deserialize_index(np.frombuffer(buf[:cut], dtype=np.uint8))
    # A checksum-valid file whose stored tail norms are not its vectors' would
    # silently drop true neighbours: refused.
    payload = bytearray(buf[24:-8])
    at = bytes(payload).find(xb[0].tobytes())
    assert at > 0
    tail1 = at + 16 * 4 + 4  # vector 0's tail norm from level 1
    (v,) = struct.unpack_from("<f", payload, tail1)
    struct.pack_into("<f", payload, tail1, v * 0.5)
    with pytest.raises(Exception, match="tail norms"):
        nearly.deserialize_index(np.frombuffer(reseal(bytes(payload)), dtype=np.uint8))
    assert nearly.deserialize_index(np.frombuffer(reseal(buf[24:-8]), dtype=np.uint8)).ntotal == 500


@pytest.mark.parametrize("cls", ["IndexHNSWFlat", "IndexHNSWFlatPanorama"])
def test_permute_entries(cls, one_thread):
    xb, xq = decaying(8, 1500, 32, nq=30)
    index = (nearly.IndexHNSWFlat(32, 16) if cls == "IndexHNSWFlat" else nearly.IndexHNSWFlatPanorama(32, 16, 8))
    index.add(xb)
    D, I = index.search(xq, 10)
    neighbors_before = {i: set(index.hnsw.neighbors_of(i, 0)) for i in range(0, 1500, 37)}
    perm = np.random.default_rng(0).permutation(1500)
    index.permute_entries(perm)
    new_of = np.argsort(perm)
    D2, I2 = index.search(xq, 10)
    np.testing.assert_array_equal(D2, D)
    np.testing.assert_array_equal(I2, new_of[I])
    np.testing.assert_array_equal(index.reconstruct_n(0, 1500), xb[perm])
    for i, ns in neighbors_before.items():  # the same graph, renumbered
        assert set(index.hnsw.neighbors_of(int(new_of[i]), 0)) == {int(new_of[j]) for j in ns}
    if cls == "IndexHNSWFlatPanorama":
        check_tails(index, xb[perm])
    index.add(xb[:10])  # still a working graph
    assert index.search(xb[:1], 1)[1][0, 0] in (new_of[0], 1500)
    with pytest.raises(ValueError):
        index.permute_entries(np.zeros(index.ntotal, dtype=np.int64))
    empty = type(index)(32, 16) if cls == "IndexHNSWFlat" else type(index)(32, 16, 8)
    empty.permute_entries(np.zeros(0, dtype=np.int64))
    assert empty.ntotal == 0
    index.remove_ids(nearly.IDSelectorRange(0, 5))
    with pytest.raises(RuntimeError, match="no removal"):
        index.permute_entries(np.arange(index.ntotal))


def test_factory_and_attributes():
    index = nearly.index_factory(64, "HNSW32_FlatPanorama")
    assert type(index) is nearly.IndexHNSWFlatPanorama
    assert index.num_panorama_levels == 8 and index.hnsw.nb_neighbors(0) == 64 and index.metric_type == METRIC_L2
    index = nearly.index_factory(64, "HNSW16,FlatPanorama12", METRIC_IP)
    assert index.num_panorama_levels == 12 and index.hnsw.nb_neighbors(0) == 32 and index.metric_type == METRIC_IP
    # like faiss's Panorama, levels that would be empty are dropped: 64 dims as 12 levels of 6 is 11
    assert index.pano.n_levels == 11 and index.pano.level_width_floats == 6
    assert index.is_trained and index.cum_sums.size() == 0
    index.add(np.ones((5, 64), dtype=np.float32))
    assert index.cum_sums.size() == 5 * 12
    back = nearly.deserialize_index(nearly.serialize_index(index))
    assert back.num_panorama_levels == 12 and back.pano.n_levels == 11


def test_bad_arguments():
    with pytest.raises(ValueError, match="L2 or inner product"):
        nearly.IndexHNSWFlatPanorama(16, 8, 4, nearly.METRIC_L1)
    for levels in (0, 17):
        with pytest.raises(ValueError):
            nearly.IndexHNSWFlatPanorama(16, 8, levels)
    index = nearly.IndexHNSWFlatPanorama(16, 8, 4)
    with pytest.raises(ValueError):
        index.add(np.full((3, 16), np.nan, dtype=np.float32))
    with pytest.raises(ValueError):
        index.add(np.zeros((3, 15), dtype=np.float32))
    index.add(np.ones((3, 16), dtype=np.float32))
    with pytest.raises(ValueError):
        index.search(np.zeros((1, 16), dtype=np.float32), 0)


def test_not_copied_to_gpu():
    """No GPU Panorama: refused, not copied as a plain IndexHNSWFlat."""
    index = nearly.IndexHNSWFlatPanorama(16, 8, 4)
    with pytest.raises(RuntimeError, match="IndexHNSWFlatPanorama is not supported"):
        nearly.index_cpu_to_gpu(None, 0, index)


def test_searches_while_adding():
    """A node's tail norms are written before the node is linked: searches
    running beside adds only ever see nodes whose bounds are right, so every
    distance they return is exact."""
    xb, xq = decaying(9, 6000, 32, nq=20)
    index = nearly.IndexHNSWFlatPanorama(32, 16, 8)
    index.add(xb[:500])

    def search(_):
        D, I = index.search(xq, 10)
        distances_exact(D, I, xq, xb, METRIC_L2)

    def write():
        for a in range(500, 6000, 250):
            index.add(xb[a:a + 250])

    searching_while(write, search, n_searchers=2)
    assert index.ntotal == 6000
    check_tails(index, xb)
