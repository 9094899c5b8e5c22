"""QT_0bit (faiss's "IVF{n},SQ0"): IVF entries with no code, each scored as
its list's centroid. Checked against numpy (the quantizer's score of the
query to each probed list, every entry of the list at that score) and
faiss-cpu; standalone use is refused as in faiss."""
import numpy as np
import pytest

import nearly

faiss = pytest.importorskip("faiss")

D, NLIST = 16, 32


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(8)
    return rng.random((3000, D), dtype=np.float32), rng.random((30, D), dtype=np.float32)


@pytest.mark.parametrize("metric", [nearly.METRIC_L2, nearly.METRIC_INNER_PRODUCT])
def test_entries_score_as_their_centroid(data, metric):
    xb, xq = data
    index = nearly.index_factory(D, f"IVF{NLIST},SQ0", metric)
    assert index.code_size == 0 and not index.by_residual
    assert index.sq.qtype == nearly.ScalarQuantizer.QT_0bit
    index.train(xb)
    index.add(xb)
    index.nprobe = 3
    k = 40
    D_, I = index.search(xq, k)
    c = index.quantizer.reconstruct_n(0, NLIST)
    assign = index.quantizer.assign(xb, 1).ravel()
    sim = metric == nearly.METRIC_INNER_PRODUCT
    score = xq @ c.T if sim else ((xq[:, None, :] - c[None]) ** 2).sum(2)
    for q in range(len(xq)):
        probed = np.argsort(-score[q] if sim else score[q], kind="stable")[:3]
        want = np.sort(np.concatenate([np.full((assign == l).sum(), score[q, l]) for l in probed]))
        want = (want[::-1] if sim else want)[:k]
        np.testing.assert_allclose(D_[q], want, rtol=1e-5, atol=1e-5)
        got = I[q][I[q] >= 0]
        for j, i in enumerate(got):  # each result's score is its own list's
            assert score[q, assign[i]] == pytest.approx(D_[q, j], rel=1e-5, abs=1e-5)
    # reconstruct gives the centroid (faiss's decode); persistence keeps it all
    index.make_direct_map()
    np.testing.assert_allclose(index.reconstruct(7), c[assign[7]])
    back = nearly.deserialize_index(nearly.serialize_index(index))
    np.testing.assert_array_equal(back.search(xq, k)[1], I)
    lims, Dr, Ir = index.range_search(xq[:3], float(np.median(D_[:3])))
    assert len(Ir) == lims[-1]


def test_beside_faiss(data):
    xb, xq = data
    km = faiss.Kmeans(D, NLIST, niter=5, seed=3)
    km.train(xb)
    out = []
    for lib in (nearly, faiss):
        index = lib.IndexIVFScalarQuantizer(lib.IndexFlatL2(D), D, NLIST, lib.ScalarQuantizer.QT_0bit)
        index.quantizer.add(km.centroids)
        index.train(xb)
        index.add(xb)
        index.nprobe = 4
        out.append(index.search(xq, 20))
        assert index.code_size == 0 and index.sa_code_size() == faiss.IndexIVFFlat(
            faiss.IndexFlatL2(D), D, NLIST).sa_code_size() - 4 * D
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-5, atol=1e-6)
    # the same list of each result (ids among ties may be ordered apart)
    a = faiss.IndexFlatL2(D)
    a.add(km.centroids)
    lists = a.assign(xb, 1).ravel()
    np.testing.assert_array_equal(lists[out[0][1]], lists[out[1][1]])


def test_standalone_use_refused():
    with pytest.raises(RuntimeError, match="QT_0bit"):
        nearly.IndexScalarQuantizer(D, nearly.ScalarQuantizer.QT_0bit)
    with pytest.raises(RuntimeError, match="QT_0bit"):
        nearly.index_factory(D, "SQ0")
    with pytest.raises(RuntimeError, match="QT_0bit"):
        nearly.IndexHNSWSQ(D, nearly.ScalarQuantizer.QT_0bit, 16)
    sq = nearly.ScalarQuantizer(D, nearly.ScalarQuantizer.QT_0bit)
    assert sq.code_size == 0
    with pytest.raises(RuntimeError, match="QT_0bit"):
        sq.compute_codes(np.zeros((2, D), np.float32))
