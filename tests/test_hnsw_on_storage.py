"""faiss's IndexHNSW(storage, M) over any index (IndexHNSWOnStorage) and
IndexHNSW2Level: the graph scores through the storage's distance computer,
so every returned distance is the storage's own score of that row, and the
graph finds what the storage's exhaustive search finds. Beside faiss-cpu's
IndexHNSW over the same kind of storage."""
import struct
import threading

import numpy as np
import pytest

import nearly
from _hnswutil import reseal
from _testutil import METRIC_IP, METRIC_L2, clustered, search_while, seconds_until_interrupted

D = 32


@pytest.fixture(scope="module")
def data():
    both = clustered(np.random.default_rng(5), 4060, D)
    return both[:4000], both[4000:]


def storages(metric):
    yield "PQ8", lambda: nearly.index_factory(D, "PQ8", metric)
    yield "SQ8", lambda: nearly.index_factory(D, "SQ8", metric)
    yield "RQ4x8", lambda: nearly.index_factory(D, "RQ4x8", metric)
    yield "PRQ", lambda: nearly.IndexProductResidualQuantizer(D, 2, 2, 6, metric)
    yield "Flat", lambda: nearly.IndexFlat(D, metric)


def recall_at(I, Iref):
    return np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(I, Iref)])


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP])
@pytest.mark.parametrize("kind", [k for k, _ in storages(METRIC_L2)])
def test_scores_are_the_storage_scores(data, kind, metric):
    x, xq = data
    storage = dict(storages(metric))[kind]()
    # (IndexHNSW over an empty Flat storage makes an IndexHNSWFlat; the class itself takes any)
    index = nearly.IndexHNSW(storage, 16) if kind != "Flat" else nearly.IndexHNSWOnStorage(storage, 16)
    assert isinstance(index, nearly.IndexHNSWOnStorage) and isinstance(index, nearly.IndexHNSW)
    index.train(x)
    index.add(x)
    assert index.ntotal == storage.ntotal == len(x)
    index.hnsw.efSearch = 128
    Dh, Ih = index.search(xq, 10)
    Ds, Is = storage.search(xq, 10)  # the storage's exhaustive search: the graph's target
    assert recall_at(Ih, Is) > 0.9
    dc = storage.get_distance_computer()
    for q in range(len(xq)):
        dc.set_query(xq[q])
        np.testing.assert_allclose([dc(int(i)) for i in Ih[q]], Dh[q], rtol=1e-5, atol=1e-5)
    order = np.diff(Dh, axis=1)
    assert (order >= 0).all() if metric == METRIC_L2 else (order <= 0).all()


def test_beside_faiss_index_hnsw():
    faiss = pytest.importorskip("faiss")
    both = clustered(np.random.default_rng(11), 5100, D)
    x, xq = both[:5000], both[5000:]
    gt = nearly.IndexFlatL2(D)
    gt.add(x)
    _, Igt = gt.search(xq, 10)
    recalls = {}
    for lib in (nearly, faiss):
        storage = lib.IndexScalarQuantizer(D, lib.ScalarQuantizer.QT_8bit)
        index = lib.IndexHNSW(storage, 16)
        index.train(x)
        index.add(x)
        index.hnsw.efSearch = 64
        _, I = index.search(xq, 10)
        recalls[lib.__name__] = recall_at(I, Igt)
    assert recalls["nearly"] > 0.9
    assert recalls["nearly"] >= recalls["faiss"] - 0.03, recalls


def test_rows_the_storage_already_holds_are_linked_by_the_next_add(data):
    x, _ = data
    storage = nearly.IndexFlatL2(D)
    storage.add(x[:1000])
    index = nearly.IndexHNSW(storage, 16)
    assert index.ntotal == 0  # faiss's: the graph links nothing yet
    index.add(x[1000:2000])
    assert index.ntotal == storage.ntotal == 2000
    storage.add(x[2000:2500])  # through the caller's handle
    index.add(x[2500:3000])
    assert index.ntotal == 3000
    index.hnsw.efSearch = 64
    _, I = index.search(x[::100][:30], 1)
    np.testing.assert_array_equal(I[:, 0], np.arange(0, 3000, 100)[:30])
    index.reset()
    assert index.ntotal == 0 and storage.ntotal == 0  # faiss's reset clears the storage


def test_swapped_storage_build_exact_search_codes(data):
    x, xq = data
    index = nearly.IndexHNSW(nearly.IndexFlatL2(D), 16)
    assert isinstance(index, nearly.IndexHNSWFlat)  # the fast path
    flat = nearly.IndexFlatL2(D)
    flat.add(x[:5])
    index = nearly.IndexHNSW(flat, 16)  # over a filled one: on the storage
    index.add(x[5:])
    sq = nearly.index_factory(D, "SQ8")
    sq.train(x)
    sq.add(x)
    index.storage = sq
    assert index.storage.ntotal == len(x)
    index.hnsw.efSearch = 64
    Dh, Ih = index.search(xq, 5)
    dc = sq.get_distance_computer()
    dc.set_query(xq[0])
    np.testing.assert_allclose([dc(int(i)) for i in Ih[0]], Dh[0], rtol=1e-5)
    _, Is = sq.search(xq, 5)
    assert recall_at(Ih, Is) > 0.85
    small = nearly.IndexFlatL2(D)
    small.add(x[:10])
    with pytest.raises(ValueError, match="holds 10 vectors"):
        index.storage = small
    with pytest.raises(ValueError, match="d = 16"):
        index.storage = nearly.IndexFlatL2(16)
    with pytest.raises(ValueError, match="metric"):
        index.storage = nearly.IndexFlatIP(D)
    sq.reset()  # shrunk behind the index's back: refused, not read out of bounds
    with pytest.raises(ValueError, match="fewer than the graph"):
        index.search(xq, 5)


def test_persistence_and_skip_storage(data, tmp_path):
    x, xq = data
    index = nearly.IndexHNSW(nearly.index_factory(D, "RQ4x8"), 16)
    index.train(x)
    index.add(x[:2000])
    index.hnsw.efSearch = 40
    D0, I0 = index.search(xq, 10)
    back = nearly.deserialize_index(nearly.serialize_index(index))
    assert type(back) is nearly.IndexHNSWOnStorage and back.hnsw.efSearch == 40
    D1, I1 = back.search(xq, 10)
    np.testing.assert_array_equal(I0, I1)
    np.testing.assert_array_equal(D0, D1)
    back.add(x[2000:2100])  # the read index goes on growing
    assert back.ntotal == 2100 and back.storage.ntotal == 2100
    path = str(tmp_path / "links.index")
    nearly.write_index(index, path, nearly.IO_FLAG_SKIP_STORAGE)
    bare = nearly.read_index(path)
    assert bare.ntotal == 2000
    with pytest.raises(RuntimeError, match="set index.storage"):
        bare.search(xq, 10)
    bare.storage = index.storage
    np.testing.assert_array_equal(bare.search(xq, 10)[1], I0)
    blob = nearly.serialize_index(index)
    for cut in (len(blob) // 2, len(blob) - 3):
        with pytest.raises(RuntimeError):
            nearly.deserialize_index(blob[:cut])
    # a body with a metric no index has, sealed with a valid checksum: a file
    # error, not an argument error
    with open(path, "rb") as f:  # the links alone: no storage whose metric is checked first
        payload = f.read()[24:-8]
    head = struct.pack("<iiiiiB", D, nearly.METRIC_L2, 16, index.hnsw.efConstruction, 40, 0)
    at = payload.find(head)
    assert at > 0
    forged = bytearray(payload)
    forged[at + 4:at + 8] = struct.pack("<i", 77)
    with pytest.raises(nearly.IndexFileError, match="metric"):
        nearly.deserialize_index(np.frombuffer(reseal(bytes(forged)), dtype=np.uint8))


def test_refusals(data):
    x, xq = data
    storage = nearly.index_factory(D, "PQ8")
    index = nearly.IndexHNSW(storage, 16)
    with pytest.raises(RuntimeError, match="not trained"):
        index.add(x[:10])
    storage.train(x)  # trained through the caller's handle
    index.add(x[:500])
    with pytest.raises(RuntimeError, match="IndexIDMap"):
        index.add_with_ids(x[:2], np.array([7, 8]))
    with pytest.raises(RuntimeError, match="remove_ids is not supported"):
        index.remove_ids(np.array([1]))
    with pytest.raises(ValueError):
        index.search(xq[:, :5], 3)
    with pytest.raises(ValueError):
        index.search(xq, 0)
    bad = xq.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        index.search(bad, 3)
    with pytest.raises(IndexError):
        index.reconstruct(500)
    np.testing.assert_array_equal(index.reconstruct(7), storage.reconstruct(7))
    with pytest.raises(TypeError):
        nearly.IndexHNSW(np.zeros((3, D), dtype=np.float32))
    # faiss's RaBitQ has no symmetric distance (searchable, not buildable);
    # nearly's scores the decoded codes, so a graph builds over it
    rabitq = nearly.IndexRaBitQ(D)
    rabitq.train(x)
    g = nearly.IndexHNSW(rabitq, 16)
    g.add(x)
    g.hnsw.efSearch = 64
    assert recall_at(g.search(xq, 10)[1], rabitq.search(xq, 10)[1]) > 0.8


def test_selector_and_range_search(data):
    x, xq = data
    storage = nearly.index_factory(D, "SQ8")
    index = nearly.IndexHNSW(storage, 16)
    index.train(x)
    index.add(x)
    sel = nearly.IDSelectorRange(1000, 1400)
    params = nearly.SearchParametersHNSW(efSearch=200, sel=sel)
    _, I = index.search(xq, 10, params=params)
    assert ((I >= 1000) & (I < 1400)).all()
    ref = nearly.index_factory(D, "SQ8")
    ref.train(x)
    ref.add(x)
    _, Iref = ref.search(xq, 10, params=nearly.SearchParameters(sel=sel))
    assert recall_at(I, Iref) > 0.9
    Dk, Ik = index.search(xq[:5], 30)
    radius = float(np.median(Dk[:, 10]))
    lims, Dr, Ir = index.range_search(xq[:5], radius)
    for q in range(5):
        assert (Dr[lims[q]:lims[q + 1]] < radius).all()
        assert set(Ik[q][Dk[q] < radius]) <= set(Ir[lims[q]:lims[q + 1]])


def test_searches_while_adding(data):
    x, xq = data
    storage = nearly.index_factory(D, "SQ8")
    index = nearly.IndexHNSW(storage, 16)
    index.train(x)
    index.add(x[:500])
    errors = search_while(index, xq, 5, lambda: [index.add(x[i:i + 250]) for i in range(500, 4000, 250)], len(x))
    assert not errors
    assert index.ntotal == storage.ntotal == len(x)


def test_ctrl_c_then_the_next_add_links_the_rest():
    rng = np.random.default_rng(9)
    xb = rng.standard_normal((300_000, 32)).astype(np.float32)
    storage = nearly.index_factory(32, "SQ8")
    storage.train(xb[:10_000])
    index = nearly.IndexHNSW(storage, 32)
    index.hnsw.efConstruction = 200
    elapsed = seconds_until_interrupted(lambda: index.add(xb))
    assert elapsed < 10, f"the interrupt took {elapsed:.1f}s to land"
    n = index.ntotal
    assert 0 < n < len(xb) and storage.ntotal == len(xb)  # the storage kept every row
    index.reset()
    assert storage.ntotal == 0


def test_hnsw_2level(data):
    x, xq = data
    gt = nearly.IndexFlatL2(D)
    gt.add(x)
    _, Igt = gt.search(xq, 10)
    for index in (nearly.IndexHNSW2Level(nearly.IndexFlatL2(D), 64, 8, 16),
                  nearly.index_factory(D, "HNSW16_64+PQ8"), nearly.index_factory(D, "HNSW16_2x4+PQ8")):
        assert isinstance(index, nearly.IndexHNSW2Level) and isinstance(index, nearly.IndexHNSW)
        assert isinstance(index.storage, nearly.Index2Layer)
        index.train(x)
        index.add(x)
        index.hnsw.efSearch = 64
        Dh, Ih = index.search(xq, 10)
        _, Is = index.storage.search(xq, 10)
        assert recall_at(Ih, Is) > 0.85
        assert recall_at(Ih, Igt) > 0.4  # PQ8 codes of residuals
        dc = index.storage.get_distance_computer()  # decodes a batch at once
        dc.set_query(xq[0])
        rows = np.asarray(Ih[0])
        np.testing.assert_allclose([dc(int(i)) for i in rows], Dh[0], rtol=1e-4)
        np.testing.assert_allclose(Dh[0], ((index.storage.reconstruct_batch(rows) - xq[0]) ** 2).sum(1), rtol=1e-4)
        back = nearly.deserialize_index(nearly.serialize_index(index))
        assert type(back) is nearly.IndexHNSW2Level
        np.testing.assert_array_equal(back.search(xq, 10)[1], Ih)
    with pytest.raises(ValueError, match="L2 only"):
        nearly.index_factory(D, "HNSW16_64+PQ8", METRIC_IP)


def test_hnsw_2level_over_an_ivfpq_storage(data):
    x, xq = data
    quant = nearly.IndexFlatL2(D)
    ivfpq = nearly.IndexIVFPQ(quant, D, 32, 8, 8)
    ivfpq.make_direct_map()  # the graph scores reconstructions
    index = nearly.IndexHNSW2Level(quant, 32, 8, 16)
    index.storage = ivfpq
    index.train(x)
    index.add(x)
    index.hnsw.efSearch = 64
    _, Ih = index.search(xq, 10)
    ivfpq.nprobe = 32
    _, Is = ivfpq.search(xq, 10)
    assert recall_at(Ih, Is) > 0.85
