"""faiss's `index.quantizer = q` on IVF indexes: the usual swap (a flat
quantizer, after training, for an HNSW over the same centroids: fast
assignment with many lists), against faiss-cpu doing the same, and the
cases faiss lets through silently (different centroids under codes stored
by residual) refused; derived state (IVFPQ's precomputed tables, IVF-RQ's
list tables) rebuilt; persistence; searches running during the swap."""
import threading

import numpy as np
import pytest

import nearly
from _hnswutil import real_data

faiss = pytest.importorskip("faiss")

NLIST = 64


@pytest.fixture(scope="module")
def data():
    base, queries = real_data()
    return np.ascontiguousarray(base[:8000]), np.ascontiguousarray(queries[:100])


def hnsw_over(lib, index):
    """An IndexHNSWFlat holding index's coarse centroids."""
    centroids = index.quantizer.reconstruct_n(0, index.nlist)
    q = lib.IndexHNSWFlat(index.d, 32, index.metric_type)
    q.hnsw.efSearch = 256
    q.add(centroids)
    return q


@pytest.mark.parametrize("key", ["IVF64,Flat", "IVF64,PQ16", "IVF64,SQ8", "IVF64,PQ16x4fs", "IVF64,RQ4x6"])
def test_swap_to_hnsw_after_add(data, key):
    xb, xq = data
    out = {}
    for lib in (nearly, faiss):
        index = lib.index_factory(xb.shape[1], key)
        index.train(xb)
        index.add(xb)
        index.nprobe = 8
        before = index.search(xq, 10)
        q = hnsw_over(lib, index)  # faiss does not keep q alive: we hold it
        index.quantizer = q
        if lib is nearly:
            assert isinstance(index.quantizer, nearly.IndexHNSWFlat)
        out[lib.__name__] = (before, index.search(xq, 10))
    (b, a), (fb, fa) = out["nearly"], out["faiss"]
    # an HNSW with a wide beam finds the same nearest lists: the same results
    agree = np.mean([len(set(x) & set(y)) / 10 for x, y in zip(a[1], b[1])])
    assert agree >= 0.99
    agree_faiss = np.mean([len(set(x) & set(y)) / 10 for x, y in zip(fa[1], fb[1])])
    assert agree >= agree_faiss - 0.01


def test_swap_before_add_rebuilds_tables(data):
    """On a trained, empty IVFPQ a quantizer with other centroids is taken, and
    the precomputed tables follow: the index searches like one built on
    those centroids from the start."""
    xb, xq = data
    d = xb.shape[1]
    a = nearly.index_factory(d, "IVF64,PQ16")
    a.train(xb)
    other = nearly.IndexFlatL2(d)
    other.add(xb[:: len(xb) // NLIST][:NLIST] * 1.01)
    a.quantizer = other
    assert a.use_precomputed_table == 1
    a.add(xb)
    a.nprobe = 8
    b = nearly.IndexIVFPQ(other, d, NLIST, 16, 8)
    b.pq = a.pq
    b.is_trained = True
    b.add(xb)
    b.nprobe = 8
    Da, Ia = a.search(xq, 10)
    Db, Ib = b.search(xq, 10)
    np.testing.assert_array_equal(Ia, Ib)
    np.testing.assert_allclose(Da, Db, rtol=1e-5)


def test_swap_on_untrained_index_is_trained_into(data):
    xb, _ = data
    d = xb.shape[1]
    index = nearly.index_factory(d, "IVF64,Flat")
    q = nearly.IndexFlatL2(d)
    index.quantizer = q
    index.train(xb)
    assert q.ntotal == NLIST and index.quantizer.ntotal == NLIST


def test_refusals(data):
    xb, _ = data
    d = xb.shape[1]
    index = nearly.index_factory(d, "IVF64,PQ16")
    index.train(xb)
    with pytest.raises(nearly.InvalidArgumentError, match="nlist = 64"):
        index.quantizer = nearly.IndexFlatL2(d)  # trained: needs the centroids
    with pytest.raises(nearly.InvalidArgumentError, match="d="):
        index.quantizer = nearly.IndexFlatL2(d + 1)
    with pytest.raises(nearly.InvalidArgumentError, match="own quantizer"):
        index.quantizer = index
    with pytest.raises(nearly.InvalidArgumentError, match="native nearly index"):
        index.quantizer = "flat"
    with pytest.raises(nearly.InvalidArgumentError, match="None"):
        index.quantizer = None
    index.add(xb)
    moved = nearly.IndexFlatL2(d)
    moved.add(index.quantizer.reconstruct_n(0, NLIST) + 0.01)
    with pytest.raises(nearly.InvalidArgumentError, match="by residual"):
        index.quantizer = moved  # faiss would score the codes against the wrong centroids
    flat = nearly.index_factory(d, "IVF64,Flat")  # codes are the vectors: any centroids will do
    flat.train(xb)
    flat.add(xb)
    flat.quantizer = moved
    D, I = flat.search(xb[:5], 1)
    np.testing.assert_array_equal(I[:, 0], np.arange(5))


def test_persistence_after_swap(data, tmp_path):
    xb, xq = data
    index = nearly.index_factory(xb.shape[1], "IVF64,SQ8")
    index.train(xb)
    index.add(xb)
    index.nprobe = 8
    index.quantizer = hnsw_over(nearly, index)
    ref = index.search(xq, 10)
    path = str(tmp_path / "ivf.index")
    nearly.write_index(index, path)
    back = nearly.read_index(path)
    assert isinstance(back.quantizer, nearly.IndexHNSWFlat)
    back.quantizer.hnsw.efSearch = 256
    got = back.search(xq, 10)
    np.testing.assert_array_equal(got[1], ref[1])


def test_swap_during_searches(data):
    xb, xq = data
    index = nearly.index_factory(xb.shape[1], "IVF64,PQ16")
    index.train(xb)
    index.add(xb)
    index.nprobe = 8
    ref = index.search(xq, 10)[1]
    flat = index.quantizer
    hnsw = hnsw_over(nearly, index)
    errors, stop = [], threading.Event()

    def searcher():
        try:
            while not stop.is_set():
                I = index.search(xq, 10)[1]
                if np.mean(I == ref) < 0.95:
                    errors.append("results drifted")
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(40):
        index.quantizer = hnsw if i % 2 == 0 else flat
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
