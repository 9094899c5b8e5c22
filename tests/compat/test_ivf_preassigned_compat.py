"""IndexIVF.search_preassigned (the lists of each query given, e.g. by a
coarse quantizer that runs elsewhere) against faiss-cpu and against search():
with the quantizer's own assignment it is search(); with any other lists it
returns what faiss returns (same training: IVF-Flat, IVF-SQ8); centroid
scores may be left out; bad list numbers raise."""
import numpy as np
import pytest

import nearly
from _testutil import METRIC_IP, METRIC_L2, randn

faiss = pytest.importorskip("faiss")

D = 32


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    return randn(rng, 8000, D), randn(rng, 100, D)


def built(mod, fs, x, metric):
    index = mod.index_factory(D, fs, metric)
    index.train(x)
    index.add(x)
    return index  # these strings give the IVF index itself (faiss's extract would not keep it alive)


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP], ids=["L2", "IP"])
@pytest.mark.parametrize("fs", ["IVF32,Flat", "IVF32,SQ8", "IVF32,PQ8np", "IVF32,PQ8x4fs", "IVF32,PQ8x4fsr"])
def test_quantizer_assignment_gives_search(data, fs, metric):
    x, xq = data
    index = built(nearly, fs, x, metric)
    index.nprobe = 6
    Dq, Iq = index.quantizer.search(xq, 6)
    want = index.search(xq, 10)
    for dq in (Dq, None):
        got = index.search_preassigned(xq, 10, Iq, dq)
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP], ids=["L2", "IP"])
@pytest.mark.parametrize("fs", ["IVF32,Flat", "IVF32,SQ8"])
def test_any_lists_like_faiss(data, fs, metric):
    x, xq = data
    f, n = built(faiss, fs, x, metric), built(nearly, fs, x, metric)
    rng = np.random.default_rng(1)
    Iq = rng.integers(0, 32, (len(xq), 5)).astype(np.int64)
    Iq[:, 4] = -1  # skipped
    Iq[:, 3] = Iq[:, 2]  # a list given twice is scanned twice, as in faiss
    Dq = np.zeros(Iq.shape, np.float32)
    f.nprobe = n.nprobe = 5  # faiss asks for Iq's width there
    Df, If = f.search_preassigned(xq, 10, Iq, Dq)
    Dn, In = n.search_preassigned(xq, 10, Iq, Dq)
    assert np.mean(In == If) > 0.99
    np.testing.assert_allclose(Dn, Df, rtol=1e-4, atol=1e-4)


def test_selector_and_bad_input(data):
    x, xq = data
    index = built(nearly, "IVF32,Flat", x, METRIC_L2)
    _, Iq = index.quantizer.search(xq, 8)
    sel = nearly.IDSelectorRange(0, 2000)
    D_, I_ = index.search_preassigned(xq, 5, Iq, None, params=nearly.SearchParametersIVF(sel=sel, nprobe=1))
    assert ((I_ >= 0) & (I_ < 2000) | (I_ == -1)).all()
    with pytest.raises(ValueError, match="list 32"):
        index.search_preassigned(xq, 5, np.full((len(xq), 2), 32))
    with pytest.raises(ValueError):
        index.search_preassigned(xq, 5, Iq[:10])
    with pytest.raises(ValueError):
        index.search_preassigned(xq, 5, Iq, np.zeros((len(xq), 3), np.float32))
    with pytest.raises(ValueError):
        index.search_preassigned(xq, 0, Iq)
    empty = np.full((len(xq), 3), -1)
    D_, I_ = index.search_preassigned(xq, 5, empty)
    assert (I_ == -1).all() and (D_ == np.finfo(np.float32).max).all()


@pytest.mark.parametrize("desc", ["IVF32,Flat", "IVF32,PQ8", "IVF32,SQ8", "IVF32,PQ8x4fs"])
def test_add_preassigned_like_faiss(desc):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3000, 32)).astype("float32")
    out = {}
    for lib in (faiss, nearly):
        index = lib.index_factory(32, desc)
        index.train(x)
        ref = lib.index_factory(32, desc)
        ref.train(x)
        _, assign = index.quantizer.search(x, 1)
        assign = assign.ravel().copy()
        assign[::7] = (assign[::7] + 1) % 32  # not where the quantizer would put them
        assign[5] = -1  # counted, not stored
        ids = np.arange(len(x), dtype="int64") * 10
        index.add_core(len(x), lib.swig_ptr(x), lib.swig_ptr(ids), lib.swig_ptr(assign))
        assert index.ntotal == len(x)
        index.nprobe = 32
        out[lib] = index.search(x[:50], 5)
        sizes = [index.invlists.list_size(l) for l in range(32)]
        assert sum(sizes) == len(x) - 1
        assert sizes == list(np.bincount(assign[assign >= 0], minlength=32))
    if "fs" in desc:
        # faiss's add_core writes fast-scan codes in the plain layout (its
        # searches then miss the vectors themselves); nearly's equals add
        # with the same lists.
        same = nearly.index_factory(32, desc)
        same.train(x)
        same.add_with_ids(x, ids)
        same.nprobe = 32
        pre = nearly.index_factory(32, desc)
        pre.train(x)
        pre.add_preassigned(x, same.quantizer.search(x, 1)[1].ravel(), ids)
        pre.nprobe = 32
        np.testing.assert_array_equal(pre.search(x[:50], 5)[1], same.search(x[:50], 5)[1])
        assert (out[nearly][1][:, 0] == ids[:50]).mean() > 0.9  # each finds itself first
    else:
        np.testing.assert_array_equal(out[nearly][1], out[faiss][1])
        np.testing.assert_allclose(out[nearly][0], out[faiss][0], rtol=1e-4, atol=1e-4)
    index = nearly.index_factory(32, desc)
    index.train(x)
    index.add_preassigned(x[:100], assign[:100])
    assert index.ntotal == 100
    with pytest.raises(ValueError, match="outside"):
        index.add_preassigned(x[:2], np.array([0, 32]))
    with pytest.raises(ValueError):
        index.add_preassigned(x[:2], np.array([0]))
