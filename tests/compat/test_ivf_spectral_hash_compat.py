"""IndexIVFSpectralHash against faiss-cpu's on the real embeddings: over the
same coarse centroids, the same thresholds (to float rounding), the same
codes bit for bit and the same Hamming distances for every threshold type,
period and bit count (ids may differ only inside groups of tied distances);
faiss's factory strings build the same configuration."""
import numpy as np
import pytest

import nearly
from _hnswutil import real_data
from _testutil import assert_knn_equiv

faiss = pytest.importorskip("faiss")

THRESHOLDS = ["global", "centroid", "centroid_half", "median"]


@pytest.fixture(scope="module")
def data():
    base, queries = real_data()
    return base[:6000], base[6000:9000], queries[:60]


def pair(xt, nlist, nbit, period, tt):
    """faiss's index trained on xt, and nearly's over faiss's centroids."""
    d = xt.shape[1]
    theirs = faiss.IndexIVFSpectralHash(faiss.IndexFlatL2(d), d, nlist, nbit, period)
    theirs.threshold_type = getattr(faiss.IndexIVFSpectralHash, "Thresh_" + tt)
    theirs.train(xt)
    q = nearly.IndexFlatL2(d)
    q.add(theirs.quantizer.reconstruct_n(0, nlist))
    ours = nearly.IndexIVFSpectralHash(q, d, nlist, nbit, period)
    ours.threshold_type = getattr(nearly.IndexIVFSpectralHash, "Thresh_" + tt)
    ours.train(xt)
    return ours, theirs


@pytest.mark.parametrize("tt", THRESHOLDS)
@pytest.mark.parametrize("nbit,period", [(32, 1.0), (64, 0.25), (64, -1e10), (100, 4.0)])
def test_same_codes_and_distances(data, tt, nbit, period):
    xt, xb, xq = data
    ours, theirs = pair(xt, 16, nbit, period, tt)
    assert ours.is_trained and ours.code_size == theirs.code_size == (nbit + 7) // 8
    if tt != "global":
        np.testing.assert_allclose(ours.trained, faiss.vector_to_array(theirs.trained)[:16 * nbit], atol=2e-5)
    np.testing.assert_array_equal(ours.sa_encode(xb), theirs.sa_encode(xb))
    ours.add(xb)
    theirs.add(xb)
    for nprobe in (1, 5, 16):
        ours.nprobe = theirs.nprobe = nprobe
        Dn, In = ours.search(xq, 10)
        Df, If = theirs.search(xq, 10)
        assert_knn_equiv(Dn, In, Df, If, atol=0)


def test_default_rotation_is_faiss(data):
    xt, _, _ = data
    d = xt.shape[1]
    ours = nearly.IndexIVFSpectralHash(nearly.IndexFlatL2(d), d, 4, 48, 1.0)
    theirs = faiss.IndexIVFSpectralHash(faiss.IndexFlatL2(d), d, 4, 48, 1.0)
    np.testing.assert_allclose(ours.vt.apply(xt[:200]), theirs.vt.apply(xt[:200]), atol=1e-5)


@pytest.mark.parametrize("string,kind,nbit,period,tt", [
    ("IVF32,ITQ64,SH1.2", nearly.ITQTransform, 64, 1.2, "global"),
    ("IVF32,ITQ,SH", nearly.ITQTransform, 384, -1e10, "global"),
    ("IVF32,PCA48,SH2.5c", nearly.PCAMatrix, 48, 2.5, "centroid"),
    ("IVF32,PCAR40,SHm", nearly.PCAMatrix, 40, -1e10, "median"),
    ("IVF32,PCA32,SH0.5g", nearly.PCAMatrix, 32, 0.5, "global"),
])
def test_factory_strings(data, string, kind, nbit, period, tt):
    xt, xb, xq = data
    d = xt.shape[1]
    ours, theirs = nearly.index_factory(d, string), faiss.index_factory(d, string)
    assert type(ours) is nearly.IndexIVFSpectralHash and type(theirs) is faiss.IndexIVFSpectralHash
    assert isinstance(ours.vt, kind)
    assert ours.nbit == theirs.nbit == nbit and ours.nlist == theirs.nlist == 32
    assert ours.period == pytest.approx(theirs.period) and ours.period == pytest.approx(period)
    assert ours.threshold_type == theirs.threshold_type == getattr(nearly.IndexIVFSpectralHash, "Thresh_" + tt)
    ours.train(xt)
    ours.add(xb)
    ours.nprobe = 8
    D, I = ours.search(xq, 5)
    assert (I >= 0).all() and (np.diff(D, axis=1) >= 0).all() and (D <= nbit).all()


def test_encoder_equivalence(data):
    """faiss's test_equiv_sh on real data: an IVF over RQ1x4's centroids with
    the "ITQ16,LSH" refinement's transform gives that index's codes."""
    xt, xb, _ = data
    d = xt.shape[1]
    ref = nearly.index_factory(d, "RQ1x4,Refine(ITQ16,LSH)")
    ref.train(xt[:2000])
    rq = nearly.downcast_index(ref.base_index).rq
    centroids = nearly.vector_to_array(rq.codebooks).reshape(-1, d)[:16]
    q = nearly.IndexFlatL2(d)
    q.add(centroids)
    index = nearly.IndexIVFSpectralHash(q, d, 16, 16, -100000.0)
    index.replace_vt(nearly.downcast_index(ref.refine_index))
    assert index.is_trained and index.threshold_type == index.Thresh_global
    np.testing.assert_array_equal(index.sa_encode(xb[:1000]), ref.sa_encode(xb[:1000]))
