"""Merging IVF indexes built apart from one trained index (IndexIVF.merge_from,
faiss.merge_into) against faiss-cpu and against one index built with all the
vectors; compatibility checks; faiss.eval_intersection."""
import numpy as np
import pytest

import nearly
from _testutil import randn

faiss = pytest.importorskip("faiss")

D = 16
FAMILIES = ["IVF8,Flat", "IVF8,SQ8", "IVF8,PQ4np", "IVF8,PQ8x4fs", "IVF8,PQ8x4fsr", "L2norm,IVF8,Flat", "IVF8,RBE16x2"]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(21)
    return randn(rng, 12000, D), randn(rng, 200, D)


@pytest.mark.parametrize("fs", FAMILIES)
@pytest.mark.parametrize("shift", [True, False])
def test_merged_equals_built_whole(data, fs, shift):
    x, xq = data
    base = nearly.index_factory(D, fs)
    base.train(x)
    a, b, whole = nearly.clone_index(base), nearly.clone_index(base), nearly.clone_index(base)
    a.add(x[:5000])
    if shift:
        b.add(x[5000:])
    else:
        b.add_with_ids(x[5000:], np.arange(5000, len(x), dtype=np.int64))
    nearly.merge_into(a, b, shift)
    whole.add(x)
    assert a.ntotal == len(x) and b.ntotal == 0
    for idx in (a, whole):
        nearly.extract_index_ivf(idx).nprobe = 3
    for got, want in zip(a.search(xq, 10), whole.search(xq, 10)):
        np.testing.assert_array_equal(got, want)
    assert b.search(xq, 3)[1].max() == -1  # emptied


@pytest.mark.parametrize("fs", ["IVF8,Flat", "IVF8,SQ8", "IVF8,PQ8x4fs"])
def test_merge_into_like_faiss(data, fs):
    x, xq = data
    out = {}
    for lib, mod in (("faiss", faiss), ("nearly", nearly)):
        a = mod.index_factory(D, fs)
        a.train(x)
        b = mod.clone_index(a)
        a.add(x[:4000])
        b.add(x[4000:])
        mod.merge_into(a, b, True)
        a.nprobe = 4
        out[lib] = a.search(xq, 10)
    assert np.mean(out["nearly"][1] == out["faiss"][1]) > 0.99
    np.testing.assert_allclose(out["nearly"][0], out["faiss"][0], rtol=1e-4, atol=1e-4)


def test_direct_map_follows_the_merge(data):
    x, _ = data
    a = nearly.index_factory(D, "IVF8,Flat")
    a.train(x)
    b = nearly.clone_index(a)
    a.make_direct_map()
    a.add(x[:100])
    b.add(x[100:200])
    a.merge_from(b, 100)
    np.testing.assert_array_equal(a.reconstruct(150), x[150])


def test_incompatible_indexes_refused(data):
    x, _ = data
    a = nearly.index_factory(D, "IVF8,PQ4np")
    a.train(x)
    other = nearly.index_factory(D, "IVF8,PQ4np")
    other.train(x[::-1].copy())  # trained apart: other centroids and codebooks
    for bad in (other, nearly.index_factory(D, "IVF8,Flat"), nearly.index_factory(D, "IVF16,PQ4np"),
                nearly.IndexFlatL2(D)):
        if not bad.is_trained:
            bad.train(x)
        with pytest.raises(RuntimeError):
            a.merge_from(bad)
    same_centroids = nearly.clone_index(a)
    same_centroids.pq.centroids = np.asarray(same_centroids.pq.centroids) + 1  # the codebooks differ
    with pytest.raises(RuntimeError, match="encoders"):
        a.check_compatible_for_merge(same_centroids)
    with pytest.raises(RuntimeError):
        a.merge_from(a)
    a.check_compatible_for_merge(nearly.clone_index(a))


@pytest.mark.parametrize("n,k1,k2", [(100, 10, 10), (60, 5, 20), (3000, 100, 100), (1, 1, 1), (7, 3, 0)])
def test_eval_intersection_like_faiss(n, k1, k2):
    rng = np.random.default_rng(n + k1)
    a = rng.integers(-1, 30, (n, k1))
    b = rng.integers(-1, 30, (n, k2))
    assert nearly.eval_intersection(a, b) == faiss.eval_intersection(a, b) == nearly.eval_intersection(b, a)
