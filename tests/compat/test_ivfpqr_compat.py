"""IndexIVFPQR ("IVF{n},PQ{M}+{M_refine}") against faiss-cpu on the real
embeddings: with faiss's trained centroids and codebooks copied over, the
same neighbours, distances and reconstructions; trained by nearly, the same
recall; and what it refuses."""
import numpy as np
import pytest

import nearly
from _hnswutil import real_data
from _testutil import search_while

faiss = pytest.importorskip("faiss")


@pytest.fixture(scope="module")
def data():
    base, queries = real_data()
    return base[:20000], base[20000:30000], queries[:200]


@pytest.fixture(scope="module")
def pair(data):
    """faiss's trained IVFPQR, and nearly's with the same centroids and codebooks."""
    xb, xt, xq = data
    d = xb.shape[1]
    f = faiss.index_factory(d, "IVF64,PQ16+32")
    f.train(xt)
    f.add(xb)
    q = nearly.IndexFlatL2(d)
    q.add(f.quantizer.reconstruct_n(0, f.nlist))
    n = nearly.IndexIVFPQR(q, d, 64, 16, 8, 32, 8)
    n.set_pq_centroids(faiss.vector_to_array(f.pq.centroids))
    refine = nearly.ProductQuantizer(d, 32, 8)
    nearly.copy_array_to_vector(faiss.vector_to_array(f.refine_pq.centroids), refine.centroids)
    n.refine_pq = refine
    assert n.is_trained
    n.add(xb)
    for index in (f, n):
        index.nprobe = 8
    return f, n


def recall(I, gt):
    return np.mean([len(set(a) & set(b)) / gt.shape[1] for a, b in zip(I, gt)])


@pytest.mark.parametrize("k", [1, 10, 50])
def test_same_results_as_faiss(pair, data, k):
    f, n = pair
    xq = data[2]
    Df, If = f.search(xq, k)
    Dn, In = n.search(xq, k)
    same = If == In
    assert same.mean() > 0.998  # near ties at the cut of the k * k_factor candidates aside
    np.testing.assert_allclose(Dn[same], Df[same], rtol=1e-5, atol=1e-5)
    # codes equal but for a residual on a tie between two codewords (float rounding)
    assert (n.refine_codes == faiss.vector_to_array(f.refine_codes)).mean() > 0.9999


def test_k_factor_and_reconstruction(pair, data):
    f, n = pair
    xq = data[2]
    for kf in (1.0, 8.0):
        f.k_factor = n.k_factor = kf
        Df, If = f.search(xq, 10)
        Dn, In = n.search(xq, 10)
        assert (If == In).mean() > 0.999
    f.k_factor = n.k_factor = 4
    f.make_direct_map()
    n.make_direct_map()
    for key in (0, 123, 19999):
        np.testing.assert_allclose(n.reconstruct(key), f.reconstruct(key), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(n.reconstruct_n(100, 50), f.reconstruct_n(100, 50), rtol=1e-6, atol=1e-6)
    D, I, R = n.search_and_reconstruct(xq[:20], 5)
    np.testing.assert_allclose(R, np.stack([[n.reconstruct(int(i)) for i in row] for row in I]), rtol=1e-6)
    # the refined distance is the distance to the refined reconstruction
    np.testing.assert_allclose(D, ((xq[:20, None, :] - R) ** 2).sum(-1), rtol=1e-4, atol=1e-4)


def test_trained_by_nearly_matches_faiss_recall(data):
    xb, xt, xq = data
    d = xb.shape[1]
    gt = nearly.IndexFlatL2(d)
    gt.add(xb)
    G = gt.search(xq, 10)[1]
    out = {}
    for lib in (faiss, nearly):
        index = lib.index_factory(d, "IVF64,PQ16+32")
        index.train(xt)
        index.add(xb)
        index.nprobe = 8
        out[lib.__name__] = recall(index.search(xq, 10)[1], G)
    plain = nearly.index_factory(d, "IVF64,PQ16")
    plain.train(xt)
    plain.add(xb)
    plain.nprobe = 8
    assert abs(out["nearly"] - out["faiss"]) < 0.02
    assert out["nearly"] > recall(plain.search(xq, 10)[1], G) + 0.05  # the refinement is worth something


def test_merge_persist_and_reset(pair, data):
    f, n = pair
    xb, xt, xq = data
    d = xb.shape[1]
    parts = []
    for i0 in range(0, len(xb), 5000):
        part = nearly.IndexIVFPQR(n.quantizer, d, 64, 16, 8, 32, 8)
        part.pq = n.pq
        part.refine_pq = n.refine_pq
        part.is_trained = True
        part.add(xb[i0:i0 + 5000])
        parts.append(part)
    merged = parts[0]
    for p in parts[1:]:
        merged.merge_from(p, merged.ntotal)
        assert p.ntotal == 0
    merged.nprobe = 8
    Dn, In = n.search(xq, 10)
    Dm, Im = merged.search(xq, 10)
    np.testing.assert_array_equal(Im, In)
    back = nearly.deserialize_index(nearly.serialize_index(merged))
    assert isinstance(back, nearly.IndexIVFPQR) and back.k_factor == merged.k_factor
    np.testing.assert_array_equal(back.search(xq, 10)[1], In)
    blob = nearly.serialize_index(merged)
    for cut in (len(blob) - 9, len(blob) - 100, len(blob) // 2):
        with pytest.raises(nearly.IndexFileError):
            nearly.deserialize_index(blob[:cut])
    merged.reset()
    assert merged.ntotal == 0 and len(merged.refine_codes) == 0
    assert (merged.search(xq[:3], 5)[1] == -1).all()
    merged.add(xb[:100])
    assert merged.search(xb[:5], 1)[1].ravel().tolist() == [0, 1, 2, 3, 4]


def test_refusals(pair, data):
    f, n = pair
    xb, xt, xq = data
    d = xb.shape[1]
    fresh = nearly.IndexIVFPQR(n.quantizer, d, 64, 16, 8, 32, 8)
    fresh.pq = n.pq
    fresh.refine_pq = n.refine_pq
    with pytest.raises(RuntimeError, match="ntotal, ntotal"):
        fresh.add_with_ids(xb[:10], np.arange(5, 15, dtype="int64"))
    fresh.add_with_ids(xb[:10], np.arange(10, dtype="int64"))  # sequential ids are fine
    with pytest.raises(RuntimeError, match="remove_ids"):
        fresh.remove_ids(np.arange(3, dtype="int64"))
    fresh.make_direct_map()
    with pytest.raises(RuntimeError, match="update_vectors"):
        fresh.update_vectors(np.arange(2, dtype="int64"), xb[:2])
    with pytest.raises(RuntimeError, match="add_sa_codes"):
        fresh.add_sa_codes(fresh.sa_encode(xb[:2]))
    with pytest.raises(RuntimeError, match="add_id = ntotal"):
        other = nearly.deserialize_index(nearly.serialize_index(fresh))
        fresh.merge_from(other, 0)
    with pytest.raises(RuntimeError):
        fresh.merge_from(nearly.IndexIVFPQ(n.quantizer, d, 64, 16, 8), 10)
    with pytest.raises(ValueError, match="k_factor"):
        fresh.k_factor = 0
    with pytest.raises(RuntimeError, match="inner product"):
        nearly.index_factory(d, "IVF64,PQ16+32", nearly.METRIC_INNER_PRODUCT)
    with pytest.raises(ValueError):
        nearly.IndexIVFPQR(n.quantizer, d, 64, 16, 8, 0, 8)
    untrained = nearly.IndexIVFPQR(nearly.IndexFlatL2(d), d, 64, 16, 8, 32, 8)
    with pytest.raises(RuntimeError, match="trained"):
        untrained.add(xb[:5])
    with pytest.raises(RuntimeError, match="trained"):
        untrained.search(xq[:5], 5)
    with pytest.raises(ValueError):
        n.search(xq[:5], 0)
    with pytest.raises(ValueError):
        n.search(xq[:5, :10], 5)


def test_searches_while_adding(pair, data):
    f, n = pair
    xb, xt, xq = data
    index = nearly.IndexIVFPQR(n.quantizer, xb.shape[1], 64, 16, 8, 32, 8)
    index.pq = n.pq
    index.refine_pq = n.refine_pq
    index.nprobe = 8
    index.add(xb[:500])

    def adds():
        for i0 in range(500, len(xb), 1500):
            index.add(xb[i0:i0 + 1500])

    errors = search_while(index, xq[:20], 5, adds, len(xb), threads=2)
    assert not errors
    np.testing.assert_array_equal(index.search(xq, 10)[1], n.search(xq, 10)[1])


def test_forged_payloads_rejected_or_consistent():
    """Checksum-valid forgeries of a small IVFPQR: rejected with
    IndexFileError or a usable index, never a crash."""
    import test_io as tio

    rng = np.random.default_rng(3)
    x = rng.standard_normal((300, 8)).astype("float32")
    index = nearly.IndexIVFPQR(nearly.IndexFlatL2(8), 8, 2, 2, 4, 2, 4)
    index.train(x)
    index.add(x[:30])
    tio.forge_every_byte(bytes(nearly.serialize_index(index)))


def test_search_preassigned_refines(pair, data):
    """faiss's IVFPQR refines search_preassigned too: given the quantizer's
    lists, the same results as search."""
    f, n = pair
    xq = data[2]
    Dq, Iq = n.quantizer.search(xq, n.nprobe)
    D0, I0 = n.search(xq, 10)
    D1, I1 = n.search_preassigned(xq, 10, Iq, Dq)
    np.testing.assert_array_equal(I1, I0)
    np.testing.assert_allclose(D1, D0, rtol=1e-6)
    Df, If = f.search_preassigned(xq, 10, Iq, Dq)
    assert (If == I1).mean() > 0.998
