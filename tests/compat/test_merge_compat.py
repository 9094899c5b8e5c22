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


@pytest.mark.parametrize("fs", ["PQ4np", "SQ8", "SQfp16", "SQ6", "RQ2x6_Nfloat", "PQ8x4fs", "LSH32r", "IDMap,IVF8,Flat", "IDMap2,PQ4np"])
def test_flat_codes_and_idmap_merge(data, fs):
    x, xq = data
    base = nearly.index_factory(D, fs)
    base.train(x)
    a, b, whole = nearly.clone_index(base), nearly.clone_index(base), nearly.clone_index(base)
    if fs.startswith("IDMap"):
        ids = np.arange(len(x), dtype=np.int64) * 5 + 1
        a.add_with_ids(x[:5000], ids[:5000])
        b.add_with_ids(x[5000:], ids[5000:])
        whole.add_with_ids(x, ids)
    else:
        a.add(x[:5000])
        b.add(x[5000:])
        whole.add(x)
    a.merge_from(b)
    assert a.ntotal == len(x) and b.ntotal == 0
    for got, want in zip(a.search(xq, 10), whole.search(xq, 10)):
        np.testing.assert_array_equal(got, want)
    if not fs.startswith("IDMap"):
        with pytest.raises(RuntimeError, match="add_id"):
            a.merge_from(nearly.clone_index(base), 7)


def test_flat_codes_merge_like_faiss_and_refusals(data):
    x, xq = data
    out = {}
    for lib, mod in (("faiss", faiss), ("nearly", nearly)):
        a = mod.index_factory(D, "SQ8")
        a.train(x)
        b = mod.clone_index(a)
        a.add(x[:3000])
        b.add(x[3000:])
        a.merge_from(b)
        out[lib] = a.search(xq, 10)
    np.testing.assert_array_equal(out["nearly"][1], out["faiss"][1])
    a = nearly.index_factory(D, "SQ8")
    a.train(x)
    apart = nearly.index_factory(D, "SQ8")
    apart.train(x[:100])  # other ranges
    for bad in (apart, nearly.index_factory(D, "SQfp16"), nearly.IndexFlatL2(D)):
        with pytest.raises(RuntimeError):
            a.merge_from(bad)


@pytest.mark.parametrize("metric", [0, 1], ids=["IP", "L2"])
@pytest.mark.parametrize("fs", ["IVF8,Flat,RFlat", "IVF8,PQ4np,Refine(SQfp16)", "SQ8,RFlat"])
def test_refine_range_search(data, fs, metric):
    x, xq = data
    index = nearly.index_factory(D, fs, metric)
    index.train(x)
    index.add(x)
    exact = nearly.IndexFlat(D, metric)
    exact.add(x)
    radius = float(np.median(exact.search(xq, 30)[0][:, -1]))
    lims, Dr, Ir = index.range_search(xq, radius)
    el, ED, EI = exact.range_search(xq, radius)
    tol = 1e-2 if "SQfp16" in fs else 1e-4  # the refine index's own precision
    for i in range(len(xq)):
        got = dict(zip(Ir[lims[i]:lims[i + 1]].tolist(), Dr[lims[i]:lims[i + 1]].tolist()))
        truth = dict(zip(EI[el[i]:el[i + 1]].tolist(), ED[el[i]:el[i + 1]].tolist()))
        for j, dist in got.items():  # no false hits, exact distances
            if j in truth:
                assert abs(dist - truth[j]) <= tol * max(1, abs(dist))
            else:
                assert abs(dist - radius) <= tol * max(1, abs(radius))
    if fs == "IVF8,Flat,RFlat":  # what faiss returns from the same IVF-Flat
        f = faiss.index_factory(D, fs, metric)
        f.train(x)
        f.add(x)
        fl, _, FI = f.range_search(xq, radius)
        for i in range(len(xq)):
            assert set(FI[fl[i]:fl[i + 1]].tolist()) == set(Ir[lims[i]:lims[i + 1]].tolist())


def test_eval_intersection_bad_input():
    with pytest.raises(ValueError):
        nearly.eval_intersection(np.zeros((3, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError):
        nearly.eval_intersection(np.zeros(3), np.zeros(3))
