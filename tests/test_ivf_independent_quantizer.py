"""IndexIVFIndependentQuantizer: lists chosen by a quantizer over the input
vectors, vectors stored and scanned by an IVF index after a transform.
Checked against numpy (the probed lists from the quantizer's centroids in the
input space, exact distances in the transformed space among their vectors),
against the plain IVF index it generalizes, and through persistence."""
import numpy as np
import pytest

import nearly
from _testutil import blobs

D_IN, D_OUT, NLIST = 48, 16, 32


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(21)
    x = blobs(rng, 4000, D_IN, centers=60)
    return x[:3000], x[3000:3040]


def _pca_index(xb, inner="IVF32,Flat", metric=nearly.METRIC_L2):
    index = nearly.IndexIVFIndependentQuantizer(
        nearly.IndexFlatL2(D_IN) if metric == nearly.METRIC_L2 else nearly.IndexFlatIP(D_IN),
        nearly.index_factory(D_OUT, inner, metric), nearly.PCAMatrix(D_IN, D_OUT))
    index.train(xb)
    index.add(xb)
    return index


def _reference(index, xb, xq, k, nprobe):
    """numpy: each query's nprobe nearest centroids in the input space, then
    the exact squared L2 distances in the transformed space to the vectors
    assigned (in the input space) to those lists."""
    c = index.quantizer.reconstruct_n(0, NLIST).astype(np.float64)
    xb64, xq64 = xb.astype(np.float64), xq.astype(np.float64)
    assign = ((xb64[:, None, :] - c[None]) ** 2).sum(2).argmin(1)
    probed = np.argsort(((xq64[:, None, :] - c[None]) ** 2).sum(2), axis=1)[:, :nprobe]
    tb, tq = index.vt.apply(xb).astype(np.float64), index.vt.apply(xq).astype(np.float64)
    out = []
    for q in range(len(xq)):
        cand = np.flatnonzero(np.isin(assign, probed[q]))
        dist = ((tb[cand] - tq[q]) ** 2).sum(1)
        order = np.argsort(dist, kind="stable")[:k]
        out.append((dist[order], cand[order]))
    return out


def test_search_matches_numpy(data):
    xb, xq = data
    index = _pca_index(xb)
    assert index.is_trained and index.ntotal == len(xb) and index.index_ivf.ntotal == len(xb)
    for nprobe in (1, 3):
        index.index_ivf.nprobe = nprobe
        D, I = index.search(xq, 10)
        for q, (dref, iref) in enumerate(_reference(index, xb, xq, 10, nprobe)):
            np.testing.assert_allclose(D[q][:len(dref)], dref, rtol=1e-4, atol=1e-3)
            assert len(set(I[q][:len(iref)]) ^ set(iref)) <= 2  # ties at the k-th place may swap
        Dp, Ip = index.search(xq, 10, params=nearly.SearchParametersIVF(nprobe=nprobe))
        np.testing.assert_array_equal(Ip, I)


def test_range_search_selector_and_ids(data):
    xb, xq = data
    index = nearly.IndexIVFIndependentQuantizer(nearly.IndexFlatL2(D_IN), nearly.index_factory(D_OUT, "IVF32,Flat"),
                                                 nearly.PCAMatrix(D_IN, D_OUT))
    index.train(xb)
    ids = np.arange(len(xb), dtype=np.int64) * 3 + 1
    index.add_with_ids(xb, ids)
    index.index_ivf.nprobe = 2
    ref = _reference(index, xb, xq, len(xb), 2)
    radius = float(np.median([r[0][5] for r in ref if len(r[0]) > 5]))
    lims, D, I = index.range_search(xq, radius)
    for q, (dref, iref) in enumerate(ref):
        want = set(ids[iref[dref < radius * (1 - 1e-4)]])
        got = set(I[lims[q]:lims[q + 1]])
        assert want <= got and len(got - set(ids[iref[dref < radius * (1 + 1e-4)]])) == 0
    sel = nearly.IDSelectorRange(0, 3000)
    _, Is = index.search(xq, 10, params=nearly.SearchParametersIVF(nprobe=2, sel=sel))
    assert ((Is < 3000) | (Is == -1)).all()
    assert index.remove_ids(nearly.IDSelectorRange(0, 3000)) == 1000
    assert index.ntotal == 2000 and (index.search(xq, 10)[1] >= 3000).all()


def test_same_as_the_plain_ivf_index_side_by_side(data):
    """Vectors given twice side by side: the quantizer reads the first copy,
    the IVF index the second; the results are the IVF index's own."""
    xb, xq = data
    d = 16
    xb, xq = xb[:, :d].copy(), xq[:, :d].copy()
    index = nearly.index_factory(d, "IVF32,SQ8")
    index.train(xb)
    index.add(xb)
    index.nprobe = 4
    Dref, Iref = index.search(xq, 10)
    def selection(rows):
        lt = nearly.LinearTransform(2 * d, d, False)
        nearly.copy_array_to_vector(np.eye(2 * d, dtype=np.float32)[rows].ravel(), lt.A)
        lt.is_trained = True
        return lt

    first, last = selection(slice(0, d)), selection(slice(d, 2 * d))
    both = nearly.IndexIVFIndependentQuantizer(nearly.IndexPreTransform(first, index.quantizer), index, last)
    np.testing.assert_array_equal(both.search(np.hstack([xq, xq]), 10)[1], Iref)
    both.reset()
    both.add(np.hstack([xb, xb]))
    D, I = both.search(np.hstack([xq, xq]), 10)
    np.testing.assert_array_equal(I, Iref)
    np.testing.assert_array_equal(D, Dref)


def test_residual_codes_use_the_ivf_space(data):
    """An IVFPQ by residual: the centroid terms come from the IVF index's own
    (transformed) centroids, so precomputed tables change nothing."""
    xb, xq = data
    index = _pca_index(xb, "IVF32,PQ8")
    ivf = nearly.extract_index_ivf(index)
    assert ivf is not None and ivf.nlist == NLIST
    np.testing.assert_allclose(ivf.quantizer.reconstruct_n(0, NLIST),
                               index.vt.apply(index.quantizer.reconstruct_n(0, NLIST)), rtol=1e-5, atol=1e-5)
    ivf.nprobe = 4
    ivf.use_precomputed_table = 0
    D0, I0 = index.search(xq, 10)
    ivf.use_precomputed_table = 1
    ivf.precompute_table()
    D1, I1 = index.search(xq, 10)
    np.testing.assert_allclose(D1, D0, rtol=1e-4, atol=1e-3)
    assert (I1 == I0).mean() > 0.98
    exact = [r[1] for r in _reference(index, xb, xq, 10, 4)]
    hits = np.mean([len(set(I0[q]) & set(exact[q])) / 10 for q in range(len(xq))])
    assert hits > 0.5  # PQ8 of 16 dims: coarse, but the right neighbourhood


def test_persistence(tmp_path, data):
    xb, xq = data
    index = _pca_index(xb, "IVF32,PQ8")
    index.index_ivf.nprobe = 3
    D, I = index.search(xq, 10)
    for copy in (nearly.deserialize_index(nearly.serialize_index(index)), nearly.clone_index(index)):
        assert isinstance(copy, nearly.IndexIVFIndependentQuantizer)
        assert copy.index_ivf.nprobe == 3
        D2, I2 = copy.search(xq, 10)
        np.testing.assert_array_equal(I2, I)
        np.testing.assert_array_equal(D2, D)
    path = str(tmp_path / "iq.index")
    nearly.write_index(index, path)
    np.testing.assert_array_equal(nearly.read_index(path).search(xq, 10)[1], I)
    without_vt = nearly.IndexIVFIndependentQuantizer(nearly.IndexFlatL2(D_IN), nearly.index_factory(D_IN, "IVF32,Flat"))
    without_vt.train(xb)
    without_vt.add(xb)
    back = nearly.deserialize_index(nearly.serialize_index(without_vt))
    assert back.vt is None
    np.testing.assert_array_equal(back.search(xq, 5)[1], without_vt.search(xq, 5)[1])
    blob = nearly.serialize_index(index)
    with pytest.raises(nearly.IndexFileError):
        nearly.deserialize_index(blob[:len(blob) // 2])


def test_inner_product(data):
    xb, xq = data
    index = _pca_index(xb, metric=nearly.METRIC_INNER_PRODUCT)
    assert index.metric_type == nearly.METRIC_INNER_PRODUCT
    index.index_ivf.nprobe = NLIST  # every list: exact inner products in the PCA space
    D, I = index.search(xq, 5)
    tb, tq = index.vt.apply(xb), index.vt.apply(xq)
    ref = np.sort(tq @ tb.T, axis=1)[:, ::-1][:, :5]
    np.testing.assert_allclose(D, ref, rtol=1e-4, atol=1e-3)


def test_bad_input(data):
    xb, xq = data
    with pytest.raises(nearly.InvalidArgumentError, match="dimensions"):
        nearly.IndexIVFIndependentQuantizer(nearly.IndexFlatL2(D_IN), nearly.index_factory(D_OUT, "IVF32,Flat"))
    with pytest.raises(nearly.InvalidArgumentError, match="dimensions"):
        nearly.IndexIVFIndependentQuantizer(nearly.IndexFlatL2(D_IN), nearly.index_factory(8, "IVF32,Flat"),
                                            nearly.PCAMatrix(D_IN, D_OUT))
    q = nearly.IndexFlatL2(D_IN)
    q.add(xb[:10])
    with pytest.raises(nearly.InvalidArgumentError, match="nlist"):
        nearly.IndexIVFIndependentQuantizer(q, nearly.index_factory(D_IN, "IVF32,Flat"))
    index = nearly.IndexIVFIndependentQuantizer(nearly.IndexFlatL2(D_IN), nearly.index_factory(D_OUT, "IVF32,Flat"),
                                                nearly.PCAMatrix(D_IN, D_OUT))
    assert not index.is_trained
    with pytest.raises(RuntimeError):
        index.search(xq, 5)
    with pytest.raises(RuntimeError):
        index.add(xb)
    index.train(xb)
    with pytest.raises(nearly.InvalidArgumentError):
        index.search(xq[:, :10], 5)
    with pytest.raises(nearly.InvalidArgumentError):
        index.search(xq, 0)
    bad = xb[:5].copy()
    bad[0, 0] = np.nan
    with pytest.raises(nearly.InvalidArgumentError):
        index.add(bad)
    index.add(xb)
    with pytest.raises(nearly.InvalidArgumentError, match="train before adding"):
        index.train(xb)
