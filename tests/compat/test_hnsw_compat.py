"""Differential tests for IndexHNSWFlat: the same calls on faiss-cpu and on nearly.

HNSW is approximate and both libraries build their graphs in parallel, so ids
are compared exactly only where the search is exhaustive (tiny indexes) and
recall is compared on the real-embedding subset (../shared/data).
"""
import numpy as np
import pytest

import nearly
from _hnswutil import NB_REAL, exact_knn, real_data, recall
from _testutil import FLT_MAX, METRIC_IP, METRIC_L2, assert_knn_equiv, assert_knn_valid, tolerance

faiss = pytest.importorskip("faiss")

METRICS = [METRIC_L2, METRIC_IP]
METRIC_IDS = ["L2", "IP"]


def both(fn):
    return fn(faiss), fn(nearly)


def inner(lib, index):
    """The HNSW index under an IDMap wrapper (faiss needs a downcast)."""
    sub = index.index
    return lib.downcast_index(sub) if hasattr(lib, "downcast_index") else sub


@pytest.fixture
def nearly_one_thread(restore_threads):
    """Tiny exhaustive comparisons build nearly's graph on one thread: parallel builds can
    currently orphan a node (tests/test_hnsw.py::test_parallel_build_keeps_every_node_reachable)."""
    nearly.omp_set_num_threads(1)
    yield


def hnsw_M(lib, index):
    return index.hnsw.nb_neighbors(1) if lib is faiss else index.hnsw.M


# ---------------------------------------------------------------- construction and attributes


@pytest.mark.parametrize("args", [(16, 32), (16, 16), (16, 8, METRIC_IP), (16, 24, METRIC_L2)],
                         ids=["d-M32", "d-M16", "d-M8-IP", "d-M24-L2"])
def test_defaults_and_attributes(args):
    f, n = both(lambda lib: lib.IndexHNSWFlat(*args))
    for attr in ("d", "ntotal", "is_trained", "metric_type", "verbose"):
        assert getattr(n, attr) == getattr(f, attr), attr
    assert n.hnsw.efConstruction == f.hnsw.efConstruction == 40
    assert n.hnsw.efSearch == f.hnsw.efSearch == 16
    assert hnsw_M(nearly, n) == hnsw_M(faiss, f) == args[1]
    assert n.hnsw.max_level == f.hnsw.max_level == -1
    assert n.hnsw.entry_point == f.hnsw.entry_point == -1
    # the knobs are writable the same way
    for ix in (f, n):
        ix.hnsw.efSearch = 77
        ix.hnsw.efConstruction = 99
    assert n.hnsw.efSearch == f.hnsw.efSearch == 77
    assert n.hnsw.efConstruction == f.hnsw.efConstruction == 99


def test_class_names_and_hierarchy():
    assert issubclass(nearly.IndexHNSWFlat, nearly.Index)
    assert issubclass(faiss.IndexHNSWFlat, faiss.Index)
    assert type(nearly.IndexHNSWFlat(8, 32)).__name__ == type(faiss.IndexHNSWFlat(8, 32)).__name__
    assert type(nearly.IndexHNSWFlat(8, 32).hnsw).__name__ == type(faiss.IndexHNSWFlat(8, 32).hnsw).__name__
    # faiss needs M; nearly defaults it to 32 (a superset of faiss's signature)
    assert nearly.IndexHNSWFlat(8).hnsw.M == 32


@pytest.mark.parametrize("desc,M,wrapper", [
    ("HNSW32", 32, None),
    ("HNSW16", 16, None),
    ("HNSW32,Flat", 32, None),
    ("HNSW8,Flat", 8, None),
    ("IDMap,HNSW32", 32, "IndexIDMap"),
    ("IDMap2,HNSW32", 32, "IndexIDMap2"),
    ("IDMap,HNSW16,Flat", 16, "IndexIDMap"),
])
@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_factory_strings(desc, M, wrapper, metric):
    f, n = both(lambda lib: lib.index_factory(24, desc, metric))
    assert type(n).__name__ == type(f).__name__ == (wrapper or "IndexHNSWFlat")
    assert n.metric_type == f.metric_type == metric
    assert n.d == f.d == 24
    if wrapper:
        fi, ni = inner(faiss, f), inner(nearly, n)
    else:
        fi, ni = f, n
    assert type(ni).__name__ == type(fi).__name__ == "IndexHNSWFlat"
    assert ni.metric_type == fi.metric_type == metric
    assert hnsw_M(nearly, ni) == hnsw_M(faiss, fi) == M
    assert ni.hnsw.efConstruction == fi.hnsw.efConstruction
    assert ni.hnsw.efSearch == fi.hnsw.efSearch


# ---------------------------------------------------------------- outputs: dtypes, shapes, padding


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
@pytest.mark.parametrize("nb,k", [(1, 1), (1, 4), (7, 7), (7, 12), (30, 5), (30, 30), (30, 45)])
def test_small_index_same_results(metric, nb, k, nearly_one_thread):
    """Tiny indexes (nb <= 2M + 1, efSearch >= nb): both searches are exhaustive, so ids,
    distances and padding must agree with faiss and with brute force."""
    rng = np.random.default_rng(nb * 100 + k)
    xb = rng.standard_normal((nb, 16)).astype(np.float32)
    xq = rng.standard_normal((9, 16)).astype(np.float32)

    def run(lib):
        index = lib.IndexHNSWFlat(16, 16, metric)
        index.add(xb)
        index.hnsw.efSearch = 64
        return index.search(xq, k)

    (Df, If), (Dn, In) = both(run)
    assert Dn.dtype == Df.dtype == np.float32 and In.dtype == If.dtype == np.int64
    assert Dn.shape == Df.shape == In.shape == If.shape == (9, k)
    assert Dn.flags.c_contiguous and In.flags.c_contiguous
    atol = tolerance(xq, xb, metric)
    assert_knn_equiv(Dn, In, Df, If, atol)
    assert_knn_valid(Dn, In, xq, xb, k, metric)
    if k > nb:
        pad = np.float32(FLT_MAX if metric == METRIC_L2 else -FLT_MAX)
        assert (In[:, nb:] == -1).all() and (If[:, nb:] == -1).all()
        assert (Dn[:, nb:] == pad).all() and (Df[:, nb:] == pad).all()


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_search_on_empty_index(metric):
    xq = np.random.default_rng(1).standard_normal((3, 16)).astype(np.float32)
    (Df, If), (Dn, In) = both(lambda lib: lib.IndexHNSWFlat(16, 32, metric).search(xq, 5))
    assert Dn.dtype == Df.dtype and In.dtype == If.dtype
    np.testing.assert_array_equal(In, If)
    np.testing.assert_array_equal(Dn, Df)
    assert (In == -1).all()


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_zero_queries(metric):
    xb = np.random.default_rng(2).standard_normal((20, 16)).astype(np.float32)

    def run(lib):
        index = lib.IndexHNSWFlat(16, 8, metric)
        index.add(xb)
        return index.search(np.zeros((0, 16), np.float32), 4)

    (Df, If), (Dn, In) = both(run)
    assert Dn.shape == Df.shape == In.shape == If.shape == (0, 4)
    assert Dn.dtype == Df.dtype and In.dtype == If.dtype


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_search_params_accepted_like_faiss(metric, nearly_one_thread):
    """SearchParametersHNSW(efSearch=..., sel=...) and plain SearchParameters(sel=...)
    are accepted by both; filtered results pass the filter in both."""
    rng = np.random.default_rng(3)
    xb = rng.standard_normal((30, 16)).astype(np.float32)
    xq = rng.standard_normal((4, 16)).astype(np.float32)
    out = {}
    for lib in (faiss, nearly):
        index = lib.IndexHNSWFlat(16, 16, metric)
        index.add(xb)
        sel = lib.IDSelectorRange(5, 20)
        p1 = lib.SearchParametersHNSW(efSearch=64, sel=sel)
        p2 = lib.SearchParameters(sel=sel)
        out[lib] = [index.search(xq, 8, params=p) for p in (p1, p2)]
        assert lib.SearchParametersHNSW(efSearch=33).efSearch == 33
    for (Df, If), (Dn, In) in zip(out[faiss], out[nearly]):
        assert ((In >= 5) & (In < 20)).all() and ((If >= 5) & (If < 20)).all()
        assert_knn_equiv(Dn, In, Df, If, tolerance(xq, xb, metric))


# ---------------------------------------------------------------- recall against faiss, same parameters

_built = {}


def built(lib, metric):
    """HNSW32, efConstruction 40 over the first 20k real vectors, per library and metric."""
    xb_all, xq = real_data()
    key = (lib.__name__, metric)
    if key not in _built:
        index = lib.IndexHNSWFlat(xb_all.shape[1], 32, metric)
        index.hnsw.efConstruction = 40
        index.add(xb_all[:NB_REAL])
        _built[key] = index
    return _built[key], xb_all[:NB_REAL], xq


@pytest.mark.parametrize("efSearch", [16, 64])
@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_recall_not_worse_than_faiss(metric, efSearch):
    xb_all, xq = real_data()
    gt = exact_knn(xq, xb_all[:NB_REAL], 10, metric)
    rec = {}
    for lib in (faiss, nearly):
        index, _, _ = built(lib, metric)
        index.hnsw.efSearch = efSearch
        D, I = index.search(xq, 10)
        assert D.dtype == np.float32 and I.dtype == np.int64 and I.shape == (len(xq), 10)
        rec[lib.__name__] = recall(I, gt)
    assert rec["nearly"] >= rec["faiss"] - 0.02, \
        f"M=32 efConstruction=40 efSearch={efSearch}: recall@10 nearly {rec['nearly']:.4f}, faiss {rec['faiss']:.4f}"


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_real_data_distances_agree(metric):
    """Where both return the same id for a query, they return the same distance."""
    res = {}
    for lib in (faiss, nearly):
        index, xb, xq = built(lib, metric)
        index.hnsw.efSearch = 64
        res[lib.__name__] = index.search(xq, 10)
    (Df, If), (Dn, In) = res["faiss"], res["nearly"]
    for q in range(len(If)):
        common = {int(i): j for j, i in enumerate(If[q])}
        for jn, i in enumerate(In[q]):
            if int(i) in common:
                np.testing.assert_allclose(Dn[q, jn], Df[q, common[int(i)]], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_k_larger_than_ntotal_like_faiss(metric, nearly_one_thread):
    rng = np.random.default_rng(5)
    xb = rng.standard_normal((50, 16)).astype(np.float32)
    xq = rng.standard_normal((6, 16)).astype(np.float32)

    def run(lib):
        index = lib.IndexHNSWFlat(16, 32, metric)
        index.add(xb)
        return index.search(xq, 80)  # ef = max(efSearch, k) = 80 >= ntotal: exhaustive in both

    (Df, If), (Dn, In) = both(run)
    np.testing.assert_array_equal(In == -1, If == -1)
    assert (In[:, 50:] == -1).all()
    assert_knn_equiv(Dn, In, Df, If, tolerance(xq, xb, metric))
    assert_knn_valid(Dn, In, xq, xb, 80, metric)


def test_levels_attribute_like_faiss():
    """faiss code reads index.hnsw.levels as an array of (top level + 1) per node."""
    faiss = pytest.importorskip("faiss")
    x = np.random.default_rng(3).standard_normal((2000, 8)).astype(np.float32)
    ours = nearly.IndexHNSWFlat(8, 16)
    ours.add(x)
    theirs = faiss.IndexHNSWFlat(8, 16)
    theirs.add(x)
    a = nearly.vector_to_array(ours.hnsw.levels)
    b = faiss.vector_to_array(theirs.hnsw.levels)
    assert a.dtype == b.dtype and a.shape == b.shape and a.min() == b.min() == 1
    # the same level distribution (mL = 1/ln M): about 1/M of the nodes above level 0
    assert abs((a > 1).mean() - (b > 1).mean()) < 0.03
    assert ours.hnsw.max_level == a.max() - 1
    assert [ours.hnsw.nb_neighbors(l) for l in (0, 1)] == [theirs.hnsw.nb_neighbors(l) for l in (0, 1)]


def test_hnsw_graph_arrays_like_faiss():
    """faiss's way to read a graph out: vector_to_array(index.hnsw.levels /
    offsets / neighbors / cum_nneighbor_per_level / assign_probas)."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3000, 16)).astype(np.float32)
    arrays = {}
    for lib in (nearly, faiss):
        index = lib.IndexHNSWFlat(16, 8)
        index.add(x)
        h = index.hnsw
        arrays[lib.__name__] = {name: lib.vector_to_array(getattr(h, name)) for name in
                                ("levels", "offsets", "neighbors", "cum_nneighbor_per_level", "assign_probas")}
        # and element by element, as std::vectors (contrib's get_hnsw_M reads cum_nneighbor_per_level.at(1))
        for name in ("cum_nneighbor_per_level", "levels"):
            v = getattr(h, name)
            assert v.size() == len(arrays[lib.__name__][name])
            assert [v.at(i) for i in range(min(v.size(), 20))] == arrays[lib.__name__][name][:20].tolist()
    ours, theirs = arrays["nearly"], arrays["faiss"]
    np.testing.assert_array_equal(ours["cum_nneighbor_per_level"], theirs["cum_nneighbor_per_level"])
    np.testing.assert_array_equal(ours["assign_probas"], theirs["assign_probas"])
    for name in ("levels", "offsets", "neighbors"):
        assert ours[name].dtype == theirs[name].dtype, name
    # the same layout: a node's entries are its levels' capacities, links then -1 padding
    lv, off, nb, cum = ours["levels"], ours["offsets"], ours["neighbors"], ours["cum_nneighbor_per_level"]
    np.testing.assert_array_equal(np.diff(off), cum[lv])
    assert len(nb) == off[-1]
    index = nearly.IndexHNSWFlat(16, 8)
    index.add(x)
    lv, off, nb = (nearly.vector_to_array(getattr(index.hnsw, n)) for n in ("levels", "offsets", "neighbors"))
    with pytest.raises(IndexError):  # faiss: RuntimeError from std::vector::at; nearly's vectors say IndexError
        index.hnsw.levels.at(3000)
    for v in range(0, 3000, 37):
        for level in range(lv[v]):
            row = nb[int(off[v]) + cum[level]:int(off[v]) + cum[level + 1]]  # uint64 offsets, as faiss's
            links = row[row >= 0]
            assert (row[len(links):] == -1).all()
            np.testing.assert_array_equal(links, index.hnsw.neighbors_of(v, level))
    # removed nodes keep their slot with no entries; the others still point at slots
    index.remove_ids(nearly.IDSelectorRange(0, 100))
    lv2, off2 = (nearly.vector_to_array(getattr(index.hnsw, n)) for n in ("levels", "offsets"))
    assert (lv2[:100] == 0).all() and (np.diff(off2)[:100] == 0).all() and len(off2) == 3001
    nb2 = nearly.vector_to_array(index.hnsw.neighbors)
    assert nb2.min() >= -1 and nb2.max() < 3000 and not np.isin(nb2, np.arange(100)).any()


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_cagra_base_level_search_like_faiss(metric):
    """IndexHNSWCagra: built as IndexHNSWFlat; with base_level_only the walk
    starts on level 0 from the best of num_base_level_search_entrypoints
    random nodes. Its recall stays within 2 points of faiss's (the same
    procedure), a query's answer does not depend on its batch (the draw is
    seeded by the query), adding raises while the flag is set, and the flag
    and count persist."""
    xb_all, xq = real_data()
    xb = xb_all[:20000]
    gt = exact_knn(xq, xb, 10, metric)
    rec = {}
    for lib in (faiss, nearly):
        index = lib.IndexHNSWCagra(xb.shape[1], 16, metric)
        index.add(xb)
        index.base_level_only = True
        index.num_base_level_search_entrypoints = 64
        index.hnsw.efSearch = 64
        D, I = index.search(xq, 10)
        rec[lib.__name__] = recall(I, gt)
        with pytest.raises(RuntimeError):
            index.add(xb[:2])
    assert rec["nearly"] >= rec["faiss"] - 0.02, rec
    assert isinstance(index, nearly.IndexHNSWFlat) and isinstance(index, nearly.IndexHNSW)
    np.testing.assert_array_equal(index.search(xq[7:9], 10)[1], I[7:9])
    back = nearly.deserialize_index(nearly.serialize_index(index))
    assert type(back) is nearly.IndexHNSWCagra and back.base_level_only and back.num_base_level_search_entrypoints == 64
    np.testing.assert_array_equal(back.search(xq, 10)[1], I)
    index.base_level_only = False
    index.add(xb[:2])  # allowed again
    with pytest.raises(ValueError):
        index.num_base_level_search_entrypoints = 0
