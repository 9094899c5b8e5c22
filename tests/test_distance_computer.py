"""faiss's get_distance_computer(): dc(i) is the score search gives stored
vector i (squared L2, or inner product), for every family that has one."""
import gc

import numpy as np
import pytest

import nearly
from _testutil import METRIC_IP, METRIC_L2, randn

D = 32


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    return randn(rng, 2000, D), randn(rng, 6, D)


@pytest.mark.parametrize("key", ["Flat", "PQ8np", "PQ16x4fs", "SQ8", "SQ4", "SQfp16", "RQ4x8", "HNSW16",
                                 "HNSW16_SQ8", "HNSW16_PQ8", "PCA16,SQ8", "OPQ8,PQ8np", "NSG16"])
@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP])
def test_scores_equal_search(data, key, metric):
    x, xq = data
    index = nearly.index_factory(D, key, metric)
    index.train(x)
    index.add(x)
    if key == "PQ16x4fs":
        index.implem = 2  # float tables: the exact ADC scores (the default rounds them to bytes)
    Dref, Iref = index.search(xq, 10)
    dc = index.get_distance_computer()
    for q in range(len(xq)):
        dc.set_query(xq[q])
        got = np.array([dc(int(i)) for i in Iref[q]], dtype=np.float32)
        if key.startswith(("Flat", "HNSW", "NSG")):  # scores the reconstruction: another kernel's rounding
            np.testing.assert_allclose(got, Dref[q], rtol=2e-6, atol=2e-5)
        else:  # the family's own tables / kernels: search's very bits
            np.testing.assert_array_equal(got, Dref[q])
    # symmetric_dis: between the stored vectors' reconstructions, in the index's space
    if not key.startswith(("PCA", "OPQ")):
        a, b = index.reconstruct(3), index.reconstruct(7)
        want = float(a @ b) if metric == METRIC_IP else float(((a - b) ** 2).sum())
        assert dc.symmetric_dis(3, 7) == pytest.approx(want, rel=1e-5, abs=1e-4)


def test_flat_against_numpy(data):
    x, xq = data
    index = nearly.IndexFlatL2(D)
    index.add(x)
    dc = index.get_FlatCodesDistanceComputer()
    dc.set_query(xq[0])
    want = ((x - xq[0]) ** 2).sum(1)
    got = np.array([dc(i) for i in range(len(x))])
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_pretransform_scores_in_the_transformed_space(data):
    x, xq = data
    index = nearly.index_factory(D, "PCA8,Flat")
    index.train(x)
    index.add(x)
    dc = index.get_distance_computer()
    dc.set_query(xq[0])
    Dref, Iref = index.search(xq[:1], 50)
    np.testing.assert_allclose([dc(int(i)) for i in Iref[0]], Dref[0], rtol=1e-5)
    # not the distance in the input space
    assert abs(dc(int(Iref[0, 0])) - float(((x[Iref[0, 0]] - xq[0]) ** 2).sum())) > 1e-3


def test_bad_input_and_lifetime(data):
    x, xq = data
    index = nearly.IndexFlatL2(D)
    index.add(x[:100])
    dc = index.get_distance_computer()
    with pytest.raises(ValueError, match="set_query"):
        dc(0)
    with pytest.raises(ValueError, match="32 floats"):
        dc.set_query(xq[0][:10])
    bad = xq[0].copy()
    bad[3] = np.nan
    with pytest.raises(ValueError):
        dc.set_query(bad)
    dc.set_query(xq[0])
    for i in (-1, 100):
        with pytest.raises(IndexError):
            dc(i)
        with pytest.raises(IndexError):
            dc.symmetric_dis(0, i)
    pq = nearly.index_factory(D, "PQ4np")
    pq.train(x)
    pq.add(x[:10])
    dpq = pq.get_distance_computer()
    dpq.set_query(xq[0])
    with pytest.raises(IndexError):
        dpq(10)
    # the computer keeps its index alive
    want = dc(5)
    del index
    gc.collect()
    assert dc(5) == want
    # every other index scores its reconstructions (faiss's GenericDistanceComputer):
    # an IVF index needs its direct map for that, and says so
    ivf = nearly.index_factory(D, "IVF4,Flat")
    ivf.train(x)
    ivf.add(x)
    dc = ivf.get_distance_computer()
    dc.set_query(xq[0])
    with pytest.raises(RuntimeError, match="direct map"):
        dc(3)
    ivf.make_direct_map()
    assert dc(3) == pytest.approx(float(((xq[0] - x[3]) ** 2).sum()), rel=1e-5)
    # faiss's extra metrics: the raw value (p of Lp read at each call, as the index's search reads it)
    lp = nearly.IndexFlat(D, nearly.METRIC_Lp)
    lp.metric_arg = 3.0
    lp.add(x)
    dc = lp.get_distance_computer()
    dc.set_query(xq[0])
    assert dc(3) == pytest.approx(float((np.abs(xq[0] - x[3]).astype(np.float64) ** 3).sum()), rel=1e-5)
    assert dc.symmetric_dis(2, 3) == pytest.approx(float((np.abs(x[2] - x[3]).astype(np.float64) ** 3).sum()),
                                                   rel=1e-5)
