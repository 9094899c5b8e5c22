"""faiss's HNSW build and storage knobs, the same code run on faiss-cpu and on
nearly: init_level0 = False then init_level_0_from_knngraph, reorder_links,
search_bounded_queue, and IO_FLAG_SKIP_STORAGE with the storage given back."""
import numpy as np
import pytest

import nearly
from _hnswutil import real_data, recall

faiss = pytest.importorskip("faiss")

LIBS = [faiss, nearly]
IDS = ["faiss", "nearly"]


@pytest.fixture(scope="module")
def data():
    xb, xq = real_data()
    xb, xq = np.ascontiguousarray(xb[:8000]), np.ascontiguousarray(xq[:100])
    flat = faiss.IndexFlatL2(xb.shape[1])
    flat.add(xb)
    _, gt = flat.search(xq, 10)
    Dk, Ik = flat.search(xb, 2 * 16 + 1)  # each row's nearest are itself and 2M others
    return xb, xq, gt, Dk, Ik


def knngraph_index(lib, xb, Dk, Ik):
    index = lib.IndexHNSWFlat(xb.shape[1], 16)
    index.init_level0 = False
    index.add(xb)
    index.init_level_0_from_knngraph(Ik.shape[1], lib.swig_ptr(Dk), lib.swig_ptr(Ik))
    return index


def test_knngraph_level0_recall_at_least_faiss(data):
    xb, xq, gt, Dk, Ik = data
    rec = {}
    for lib, name in zip(LIBS, IDS):
        index = knngraph_index(lib, xb, Dk, Ik)
        out = []
        for ef in (16, 32, 64):
            index.hnsw.efSearch = ef
            out.append(recall(index.search(xq, 10)[1], gt))
        index.reorder_links()  # faiss's: the same lists, nearest first
        out.append(recall(index.search(xq, 10)[1], gt))
        rec[name] = out
    assert all(n >= f - 0.02 for n, f in zip(rec["nearly"], rec["faiss"])), rec


def test_without_init_level0_recall_collapses_in_both(data):
    xb, xq, gt, _, _ = data
    for lib in LIBS:
        index = lib.IndexHNSWFlat(xb.shape[1], 16)
        index.init_level0 = False
        index.add(xb)
        assert recall(index.search(xq, 10)[1], gt) < 0.3


def test_unbounded_queue_recall_at_least_faiss(data):
    xb, xq, gt, _, _ = data
    rec = {}
    for lib, name in zip(LIBS, IDS):
        index = lib.IndexHNSWFlat(xb.shape[1], 16)
        index.add(xb)
        index.hnsw.search_bounded_queue = False
        index.hnsw.efSearch = 32
        rec[name] = recall(index.search(xq, 10)[1], gt)
    assert rec["nearly"] >= rec["faiss"] - 0.02, rec


@pytest.mark.parametrize("lib", LIBS, ids=IDS)
def test_skip_storage_contract(lib, data):
    xb, xq, _, _, _ = data
    index = lib.IndexHNSWFlat(xb.shape[1], 16)
    index.add(xb[:3000])
    Dref, Iref = index.search(xq, 5)
    bare = lib.deserialize_index(lib.serialize_index(index, lib.IO_FLAG_SKIP_STORAGE))
    assert bare.storage is None
    with pytest.raises(RuntimeError):
        bare.search(xq, 1)
    lib.deserialize_index(lib.serialize_index(bare))  # writable again without storage
    flat = lib.IndexFlatL2(xb.shape[1])
    flat.add(xb[:3000])
    bare.storage = flat
    if lib is faiss:
        flat.this.disown()
        bare.own_fields = True
    Dnew, Inew = bare.search(xq, 5)
    np.testing.assert_array_equal(Inew, Iref)
    np.testing.assert_array_equal(Dnew, Dref)
