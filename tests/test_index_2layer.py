"""Index2Layer: flat codes of (list number, PQ code of the residual). Checked
against numpy (decoding is the list's centroid plus the PQ reconstruction;
search is brute force over the decoded vectors), against IndexIVFPQ (the same
standalone codes and reconstructions, transfer_to_IVFPQ), against faiss-cpu
(the same codes from the same quantizer and PQ), and through persistence and
bad input."""
import numpy as np
import pytest

import nearly
from _testutil import assert_knn_valid, blobs

D, NLIST, M = 32, 32, 8


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    x = blobs(rng, 3200, D, centers=40)
    return x[:1500], x[1500:3000], x[3000:]


def _pq_decode(pq, codes):
    """numpy: the PQ reconstruction of 8-bit codes (n, M)."""
    c = pq.centroids.reshape(pq.M, pq.ksub, pq.dsub)
    return np.hstack([c[m][codes[:, m]] for m in range(pq.M)])


def test_codes_are_ivfpq_standalone_codes(data):
    xt, xb, _ = data
    q = nearly.IndexFlatL2(D)
    ivfpq = nearly.IndexIVFPQ(q, D, NLIST, M, 8)
    ivfpq.train(xt)
    ivfpq.add(xb)
    two = nearly.Index2Layer(q, NLIST, M)  # the quantizer is trained: only the PQ learns, as IVFPQ's did
    assert not two.is_trained
    two.train(xt)
    two.add(xb)
    assert (two.code_size_1, two.code_size_2, two.sa_code_size()) == (1, M, 1 + M)
    np.testing.assert_array_equal(two.reconstruct_n(0, len(xb)), ivfpq.reconstruct_n(0, len(xb)))
    codes = two.sa_encode(xb)
    np.testing.assert_array_equal(codes, ivfpq.sa_encode(xb))
    # numpy: list number in byte 0, PQ code of x - centroid in the rest
    lists = q.assign(xb, 1).ravel()
    np.testing.assert_array_equal(codes[:, 0], lists)
    centroids = q.reconstruct_n(0, NLIST)
    recon = centroids[codes[:, 0]] + _pq_decode(two.pq, codes[:, 1:])
    np.testing.assert_allclose(two.sa_decode(codes), recon, rtol=0, atol=1e-5)


@pytest.mark.parametrize("metric", [nearly.METRIC_L2, nearly.METRIC_INNER_PRODUCT])
def test_search_is_brute_force_over_the_decoded(data, metric):
    xt, xb, xq = data
    q = nearly.IndexFlatL2(D) if metric == nearly.METRIC_L2 else nearly.IndexFlatIP(D)
    two = nearly.Index2Layer(q, NLIST, M, 8, metric)
    two.train(xt)
    two.add(xb)
    decoded = two.reconstruct_n(0, len(xb))
    for k in (1, 10, 100):
        Dk, Ik = two.search(xq, k)
        assert_knn_valid(Dk, Ik, xq, decoded, k, metric)
    sel = nearly.IDSelectorRange(100, 900)
    Ds, Is = two.search(xq, 10, params=nearly.SearchParameters(sel=sel))
    assert_knn_valid(Ds, Is - 100, xq, decoded[100:900], 10, metric)


def test_transfer_to_ivfpq(data):
    xt, xb, xq = data
    two = nearly.index_factory(D, f"Residual{NLIST},PQ{M}")
    assert isinstance(two, nearly.Index2Layer)
    two.train(xt)
    two.add(xb)
    ivfpq = nearly.IndexIVFPQ(two.q1.quantizer, D, NLIST, M, 8)
    ivfpq.pq = two.pq
    ivfpq.is_trained = True
    two.transfer_to_IVFPQ(ivfpq)
    assert ivfpq.ntotal == len(xb)
    np.testing.assert_array_equal(ivfpq.reconstruct_n(0, len(xb)), two.reconstruct_n(0, len(xb)))
    ivfpq.nprobe = NLIST
    Di, Ii = ivfpq.search(xq, 10)
    Dt, It = two.search(xq, 10)
    np.testing.assert_allclose(Di, Dt, rtol=1e-4, atol=1e-3)  # ADC tables vs decoded vectors
    assert np.mean(Ii == It) > 0.95
    with pytest.raises(ValueError):
        two.transfer_to_IVFPQ(ivfpq)  # not empty any more
    with pytest.raises(ValueError):
        two.transfer_to_IVFPQ(nearly.IndexIVFPQ(nearly.IndexFlatL2(D), D, NLIST // 2, M, 8))


def test_multi_index_quantizer(data):
    xt, xb, xq = data
    two = nearly.index_factory(D, "Residual2x4,PQ8")
    assert two.q1.nlist == 256 and two.code_size_1 == 1
    two.train(xt)
    two.add(xb)
    assert_knn_valid(*two.search(xq, 5), xq, two.reconstruct_n(0, len(xb)), 5, nearly.METRIC_L2)


def test_same_codes_as_faiss(data, faiss):
    xt, xb, _ = data
    two = nearly.Index2Layer(nearly.IndexFlatL2(D), NLIST, M)
    two.train(xt)
    fq = faiss.IndexFlatL2(D)
    fq.add(two.q1.quantizer.reconstruct_n(0, NLIST))
    f2 = faiss.Index2Layer(fq, NLIST, M)
    faiss.copy_array_to_vector(two.pq.centroids.ravel(), f2.pq.centroids)
    f2.is_trained = True
    fc, nc = f2.sa_encode(xb), two.sa_encode(xb)
    assert fc.shape == nc.shape
    assert np.mean(np.all(fc == nc, axis=1)) > 0.999  # a tie in an assignment may go either way
    np.testing.assert_allclose(f2.sa_decode(fc), two.sa_decode(fc), rtol=0, atol=1e-5)
    assert type(faiss.index_factory(D, "Residual32,PQ8")).__name__ == type(
        nearly.index_factory(D, "Residual32,PQ8")).__name__


def test_persistence_and_bad_input(data, tmp_path):
    xt, xb, xq = data
    two = nearly.Index2Layer(nearly.IndexFlatL2(D), NLIST, M)
    with pytest.raises(RuntimeError, match="trained"):
        two.add(xb)
    with pytest.raises(RuntimeError, match="trained"):
        two.search(xq, 5)
    two.train(xt)
    two.add(xb)
    path = str(tmp_path / "two.index")
    nearly.write_index(two, path)
    for back in (nearly.read_index(path), nearly.clone_index(two)):
        assert isinstance(back, nearly.Index2Layer) and back.ntotal == len(xb)
        np.testing.assert_array_equal(back.search(xq, 10)[1], two.search(xq, 10)[1])
    blob = nearly.serialize_index(two)
    for cut in (len(blob) // 2, len(blob) - 5):
        with pytest.raises(RuntimeError):
            nearly.deserialize_index(blob[:cut])
    bad = xq.copy()
    bad[1, 3] = np.nan
    with pytest.raises(ValueError):
        two.search(bad, 3)
    with pytest.raises(ValueError):
        two.search(xq, 0)
    with pytest.raises(ValueError):
        two.search(xq[:, :4], 3)
    with pytest.raises(ValueError):
        nearly.index_factory(D, "Residual32,PQ8", nearly.METRIC_INNER_PRODUCT)
    with pytest.raises(ValueError):
        nearly.Index2Layer(nearly.IndexFlatL2(D), 0, M)
    assert two.remove_ids(nearly.IDSelectorRange(0, 100)) == 100 and two.ntotal == len(xb) - 100


@pytest.mark.parametrize("ref_key, key", [("IVF64,PQ8np", "Residual64,PQ8"), ("IMI2x4,PQ8np", "Residual2x4,PQ8")])
def test_pieces_set_by_hand_give_the_ivfpq_codes(data, ref_key, key):
    """faiss's way to build one from a trained IVFPQ: its pq and quantizer
    assigned, then is_trained set: the same standalone codes and decodings."""
    xt, xb, _ = data
    ref = nearly.index_factory(D, ref_key)
    ref.train(xt)
    two = nearly.index_factory(D, key)
    two.pq = ref.pq
    two.q1.quantizer = ref.quantizer
    two.is_trained = True
    codes = two.sa_encode(xb)
    np.testing.assert_array_equal(codes, ref.sa_encode(xb))
    np.testing.assert_array_equal(two.sa_decode(codes), ref.sa_decode(codes))
    back = nearly.deserialize_index(nearly.serialize_index(two))
    np.testing.assert_array_equal(back.sa_encode(xb), codes)
    fresh = nearly.index_factory(D, key)
    with pytest.raises(ValueError):
        fresh.is_trained = True  # its quantizer holds no centroids
