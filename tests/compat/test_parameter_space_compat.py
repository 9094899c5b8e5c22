"""ParameterSpace (search parameters set by name) and clone_index, against
faiss-cpu: the same names succeed or raise on the same index strings, and
reach the same attributes."""
import numpy as np
import pytest

import nearly
from _testutil import randn

faiss = pytest.importorskip("faiss")

STRINGS = ["Flat", "IVF16,Flat", "IDMap,IVF16,Flat", "HNSW8", "HNSW8,SQ8", "OPQ8,IVF16,PQ8", "IVF16,PQ8,RFlat",
           "IVF16_HNSW8,Flat", "PQ8", "IDMap,HNSW8", "L2norm,IVF16,Flat", "IVF16,PQ8x4fs,RFlat"]
NAMES = [("nprobe", 5), ("efSearch", 23), ("efConstruction", 31), ("k_factor_rf", 3), ("k_factor", 3),
         ("quantizer_efSearch", 7), ("quantizer_nprobe", 2), ("verbose", 1), ("ht", 64), ("foo", 1)]


def state(lib, index):
    """The attributes a parameter can reach, read through the wrappers."""
    out = {}
    inner = index
    while True:
        if hasattr(inner, "k_factor"):
            out["k_factor"] = float(inner.k_factor)
        nxt = getattr(inner, "base_index", None) or getattr(inner, "index", None)
        if nxt is None:
            break
        inner = lib.downcast_index(nxt)
    if hasattr(inner, "nprobe"):
        out["nprobe"] = inner.nprobe
        q = lib.downcast_index(inner.quantizer)
        if hasattr(q, "hnsw"):
            out["q_efSearch"] = q.hnsw.efSearch
            out["q_efConstruction"] = q.hnsw.efConstruction
    if hasattr(inner, "hnsw"):
        out["efSearch"] = inner.hnsw.efSearch
        out["efConstruction"] = inner.hnsw.efConstruction
    return out


@pytest.mark.parametrize("description", STRINGS)
def test_set_index_parameter_like_faiss(description):
    for name, val in NAMES:
        outcome = {}
        for lib in (faiss, nearly):
            index = lib.index_factory(32, description)
            try:
                lib.ParameterSpace().set_index_parameter(index, name, val)
                outcome[lib] = ("ok", state(lib, index))
            except RuntimeError:
                outcome[lib] = ("error", None)
        assert outcome[nearly] == outcome[faiss], (description, name, outcome)


def test_set_index_parameters_string_and_search():
    rng = np.random.default_rng(0)
    x = randn(rng, 3000, 32)
    results = {}
    for lib in (faiss, nearly):
        index = lib.index_factory(32, "IDMap,IVF16_HNSW8,Flat")
        index.train(x)
        index.add_with_ids(x, np.arange(len(x), dtype=np.int64) + 100)
        lib.ParameterSpace().set_index_parameters(index, "nprobe=4,quantizer_efSearch=40,verbose=0")
        ivf = lib.extract_index_ivf(index)
        assert ivf.nprobe == 4
        assert lib.downcast_index(ivf.quantizer).hnsw.efSearch == 40
        results[lib] = index.search(x[:50], 5)
    np.testing.assert_array_equal(results[nearly][1][:, 0], results[faiss][1][:, 0])
    for bad in ("nprobe", "nprobe=x", "=3"):
        for lib in (faiss, nearly):
            with pytest.raises(RuntimeError):
                lib.ParameterSpace().set_index_parameters(lib.index_factory(32, "IVF16,Flat"), bad)
    assert nearly.IVFSearchParameters is nearly.SearchParametersIVF


@pytest.mark.parametrize("description", ["Flat", "IVF16,PQ8", "HNSW8", "IDMap,Flat", "IVF16,PQ8x4fs,RFlat"])
def test_clone_index_is_a_deep_copy(description):
    rng = np.random.default_rng(1)
    x = randn(rng, 2000, 32)
    index = nearly.index_factory(32, description)
    index.train(x)
    ids = np.arange(2000, dtype=np.int64)
    index.add_with_ids(x[:1000], ids[:1000]) if description.startswith("IDMap") else index.add(x[:1000])
    clone = nearly.clone_index(index)
    assert (clone.d, clone.ntotal, clone.metric_type) == (index.d, index.ntotal, index.metric_type)
    np.testing.assert_array_equal(clone.search(x[:20], 5)[1], index.search(x[:20], 5)[1])
    # the copy is independent
    clone.add_with_ids(x[1000:], ids[1000:]) if description.startswith("IDMap") else clone.add(x[1000:])
    assert clone.ntotal == 2000 and index.ntotal == 1000


def test_clone_binary_index():
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 256, (500, 8), dtype=np.uint8)
    index = nearly.IndexBinaryFlat(64)
    index.add(codes)
    clone = nearly.clone_index(index)
    assert clone.ntotal == 500
    np.testing.assert_array_equal(clone.search(codes[:10], 3)[1], index.search(codes[:10], 3)[1])


@pytest.mark.parametrize("description", ["BFlat", "BIVF16", "BHNSW8", "IDMap,BHNSW8", "IDMap,BIVF16"])
def test_set_index_parameter_on_binary_indexes_like_faiss(description):
    for name, val in [("nprobe", 5), ("efSearch", 23), ("efConstruction", 31), ("verbose", 1), ("foo", 1)]:
        outcome = {}
        for lib in (faiss, nearly):
            index = lib.index_binary_factory(64, description)
            try:
                lib.ParameterSpace().set_index_parameter(index, name, val)
                inner = index.index if hasattr(index, "id_map") else index
                inner = lib.downcast_IndexBinary(inner) if lib is faiss else inner
                outcome[lib] = ("ok", getattr(inner, "nprobe", None),
                                getattr(inner.hnsw, "efSearch", None) if hasattr(inner, "hnsw") else None,
                                getattr(inner.hnsw, "efConstruction", None) if hasattr(inner, "hnsw") else None)
            except RuntimeError:
                outcome[lib] = ("error",)
        assert outcome[nearly] == outcome[faiss], (description, name, outcome)


def test_binary_verbose_reports_progress(capfd):
    """Binary indexes carry faiss's verbose flag: k-means progress when an IVF
    trains, insertion progress when HNSW adds; silent by default."""
    codes = np.random.default_rng(3).integers(0, 256, (2000, 8), dtype=np.uint8)
    for verbose in (False, True):
        ivf = nearly.IndexBinaryIVF(nearly.IndexBinaryFlat(64), 64, 16)
        hnsw = nearly.IndexBinaryHNSW(64, 8)
        assert ivf.verbose is False and hnsw.verbose is False
        ivf.verbose = hnsw.verbose = verbose
        ivf.train(codes)
        hnsw.add(codes)
        out = capfd.readouterr().out
        assert ("Clustering 2000 points" in out) == verbose
        assert ("HNSW add" in out) == verbose
