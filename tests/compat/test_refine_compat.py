"""IndexRefine (re-ranking by any index: Refine(SQfp16), Refine(SQ8),
Refine(Flat)) against faiss-cpu: the same recall from the same candidates,
exact distances where the refine index is exact, persistence, parameters,
bad input."""
import numpy as np
import pytest

import nearly
from _hnswutil import real_data
from _testutil import METRIC_IP, METRIC_L2, randn

faiss = pytest.importorskip("faiss")


def recall(I, gt):
    return np.mean([len(set(a) & set(b)) / gt.shape[1] for a, b in zip(I, gt)])


@pytest.fixture(scope="module")
def data():
    xb, xq = real_data()
    return xb[:8000].copy(), xq[:100].copy()


@pytest.mark.parametrize("description", ["IVF32,PQ16np,Refine(SQfp16)", "PQ16np,Refine(SQ8)", "IVF32,PQ16np,Refine(Flat)",
                                         "PCA64,IVF32,Flat,Refine(SQfp16)"])
@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP])
def test_refine_recall_like_faiss(data, description, metric):
    x, xq = data
    exact = nearly.IndexFlat(x.shape[1], metric)
    exact.add(x)
    gt = exact.search(xq, 10)[1]
    out = {}
    for lib in (faiss, nearly):
        index = lib.index_factory(x.shape[1], description, metric)
        assert isinstance(index, lib.IndexRefine)
        index.train(x)
        index.add(x)
        params = lib.IndexRefineSearchParameters(k_factor=4)
        if "IVF" in description:
            params.base_index_params = lib.SearchParametersIVF(nprobe=8)
        out[lib] = index.search(xq, 10, params=params)
    r = {lib: recall(out[lib][1], gt) for lib in out}
    assert abs(r[nearly] - r[faiss]) <= 0.02, r
    if "Refine(Flat)" in description:  # exact distances of what it returns
        D, I = out[nearly]
        ref = ((x[I] - xq[:, None]) ** 2).sum(-1) if metric == METRIC_L2 else np.einsum("qkd,qd->qk", x[I], xq)
        np.testing.assert_allclose(D, ref, rtol=1e-4, atol=1e-4)


def test_refine_persistence_parameters_and_bad_input():
    rng = np.random.default_rng(0)
    x, xq = randn(rng, 3000, 32), randn(rng, 20, 32)
    index = nearly.index_factory(32, "IVF16,PQ8,Refine(SQ8)")
    index.train(x)
    index.add(x)
    nearly.ParameterSpace().set_index_parameters(index, "nprobe=4,k_factor_rf=3")
    assert index.k_factor == 3 and nearly.extract_index_ivf(index).nprobe == 4
    back = nearly.deserialize_index(nearly.serialize_index(index))
    assert isinstance(back, nearly.IndexRefine) and isinstance(back.refine_index, nearly.IndexScalarQuantizer)
    np.testing.assert_array_equal(back.search(xq, 5)[1], index.search(xq, 5)[1])
    clone = nearly.clone_index(index)
    assert clone.ntotal == index.ntotal
    with pytest.raises(ValueError):
        nearly.IndexRefine(nearly.IndexFlatL2(32), nearly.IndexFlatL2(16))  # d differs
    with pytest.raises(ValueError):
        nearly.IndexRefine(nearly.IndexFlatL2(32), nearly.IndexFlatIP(32))  # metric differs
    full = nearly.IndexFlatL2(32)
    full.add(x[:5])
    with pytest.raises(ValueError):
        nearly.IndexRefine(full, nearly.IndexFlatL2(32))  # not empty
    untrained = nearly.IndexRefine(nearly.IndexFlatL2(32), nearly.IndexScalarQuantizer(32, nearly.ScalarQuantizer.QT_8bit))
    assert not untrained.is_trained
    with pytest.raises(RuntimeError):
        untrained.add(x)
    with pytest.raises(RuntimeError):
        nearly.index_factory(32, "IVF16,PQ8,Refine(SQ8")  # unclosed
