"""faiss's fast-scan conversions, `IndexIVFPQFastScan(ivfpq)` and
`IndexPQFastScan(pq)`, against faiss-cpu on the real embeddings: the same
entries and decoded vectors as the 4-bit index converted (exactly), the same
quantizer (shared), by_residual, nprobe and training state, recall within a
point of faiss's conversion of the same faiss-trained codebooks, the
converted index's adds, persistence and errors."""
import numpy as np
import pytest

import nearly
from _hnswutil import real_data
from _testutil import METRIC_IP, METRIC_L2, brute_force, recall_at

faiss = pytest.importorskip("faiss")

METRICS = [METRIC_L2, METRIC_IP]
METRIC_IDS = ["L2", "IP"]
pytestmark = pytest.mark.usefixtures("faiss_one_thread")


@pytest.fixture(scope="module")
def real():
    base, queries = real_data()
    return np.ascontiguousarray(base[:8000]), np.ascontiguousarray(queries[:200])


def twin_ivfpq(x, metric, by_residual, nlist=64, M=48):
    """A faiss IndexIVFPQ (4-bit) trained and filled, and nearly's with the
    same coarse centroids and codebook, filled with the same vectors: the
    same codes on both sides."""
    d = x.shape[1]
    theirs = faiss.IndexIVFPQ(faiss.IndexFlat(d, metric), d, nlist, M, 4, metric)
    theirs.by_residual = by_residual
    theirs.train(x[:4000])
    theirs.add(x)
    q = nearly.IndexFlat(d, metric)
    q.add(theirs.quantizer.reconstruct_n(0, nlist))
    ours = nearly.IndexIVFPQ(q, d, nlist, M, 4, metric)
    ours.by_residual = by_residual
    ours.set_pq_centroids(faiss.vector_to_array(theirs.pq.centroids))
    ours.add(x)
    return ours, theirs


def check_search(orig, converted, faiss_converted, xq, gt):
    """Quantized tables: results near the float ADC ones, and as near the
    exact top 10 as faiss's conversion of the same codebooks."""
    D0, I0 = orig.search(xq, 10)
    D1, I1 = converted.search(xq, 10)
    _, If = faiss_converted.search(xq, 10)
    assert recall_at(I1, I0, 10) >= 0.95
    assert abs(recall_at(I1, gt, 10) - recall_at(If, gt, 10)) <= 0.01
    assert np.abs(D1 - D0).max() <= 0.05 * np.abs(D0).max()


@pytest.mark.parametrize("by_residual", [True, False], ids=["residual", "direct"])
@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_ivfpq_conversion_matches_faiss(real, metric, by_residual):
    x, xq = real
    _, gt = brute_force(xq, x, 10, metric)
    ours, theirs = twin_ivfpq(x, metric, by_residual)
    ours.nprobe = theirs.nprobe = 8
    fs_ours, fs_theirs = nearly.IndexIVFPQFastScan(ours), faiss.IndexIVFPQFastScan(theirs)
    assert type(fs_ours).__name__ == "IndexIVFPQFastScan" and fs_ours.bbs == fs_theirs.bbs == 32
    for attr in ("ntotal", "nlist", "nprobe", "by_residual", "is_trained", "code_size", "d", "metric_type"):
        assert getattr(fs_ours, attr) == getattr(fs_theirs, attr), attr
    assert fs_ours.quantizer.ntotal == 64 and fs_ours.pq.M == 48 and fs_ours.pq.nbits == 4
    # the same entries: every list's ids, and the codes decode as before
    for l in (0, 17, 63):
        np.testing.assert_array_equal(fs_ours.list_ids(l), ours.list_ids(l))
    np.testing.assert_array_equal(fs_ours.reconstruct_n(0, len(x)), ours.reconstruct_n(0, len(x)))
    check_search(ours, fs_ours, fs_theirs, xq, gt)
    # orig is untouched; the conversion takes adds of its own
    n0 = ours.ntotal
    fs_ours.add(x[:100])
    assert ours.ntotal == n0 and fs_ours.ntotal == n0 + 100
    _, I = fs_ours.search(x[:5], 3)
    assert all(i in row or i + n0 in row for i, row in zip(range(5), I))


def test_ivfpq_conversion_persists(real, tmp_path):
    x, xq = real
    ours, _ = twin_ivfpq(x, METRIC_L2, True)
    fs = nearly.IndexIVFPQFastScan(ours, 32)
    fs.nprobe = 4
    path = str(tmp_path / "fs.index")
    nearly.write_index(fs, path)
    back = nearly.read_index(path)
    assert type(back).__name__ == "IndexIVFPQFastScan" and back.by_residual
    D, I = fs.search(xq, 10)
    D2, I2 = back.search(xq, 10)
    np.testing.assert_array_equal(I, I2)
    np.testing.assert_array_equal(D, D2)


@pytest.mark.parametrize("metric", METRICS, ids=METRIC_IDS)
def test_pq_conversion_matches_faiss(real, metric):
    x, xq = real
    _, gt = brute_force(xq, x, 10, metric)
    theirs = faiss.IndexPQ(x.shape[1], 48, 4, metric)
    theirs.train(x[:4000])
    theirs.add(x)
    ours = nearly.IndexPQ(x.shape[1], 48, 4, metric)
    ours.pq.centroids = faiss.vector_to_array(theirs.pq.centroids)
    ours.is_trained = True
    ours.add(x)
    fs_ours, fs_theirs = nearly.IndexPQFastScan(ours), faiss.IndexPQFastScan(theirs)
    assert type(fs_ours).__name__ == "IndexPQFastScan"
    for attr in ("ntotal", "is_trained", "code_size", "d", "metric_type"):
        assert getattr(fs_ours, attr) == getattr(fs_theirs, attr), attr
    np.testing.assert_array_equal(fs_ours.reconstruct_n(0, len(x)), ours.reconstruct_n(0, len(x)))
    check_search(ours, fs_ours, fs_theirs, xq, gt)
    fs_ours.add(x[:10])
    assert fs_ours.ntotal == len(x) + 10 and ours.ntotal == len(x)


@pytest.mark.parametrize("lib", [nearly, faiss], ids=["nearly", "faiss"])
def test_conversion_errors_and_untrained(lib):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2000, 16)).astype(np.float32)
    # 8-bit codes cannot be fast-scanned: RuntimeError on both sides
    eight = lib.IndexIVFPQ(lib.IndexFlatL2(16), 16, 8, 4, 8)
    with pytest.raises(RuntimeError):
        lib.IndexIVFPQFastScan(eight)
    with pytest.raises(RuntimeError):
        lib.IndexPQFastScan(lib.IndexPQ(16, 4, 8))
    # an untrained index converts to an untrained one, which trains and adds
    raw = lib.IndexIVFPQ(lib.IndexFlatL2(16), 16, 8, 4, 4)
    fs = lib.IndexIVFPQFastScan(raw)
    assert not fs.is_trained and fs.ntotal == 0
    fs.train(x)
    fs.add(x)
    fs.nprobe = 8
    _, I = fs.search(x[:20], 1)
    assert (I[:, 0] >= 0).all()
    pq = lib.IndexPQFastScan(lib.IndexPQ(16, 4, 4))
    assert not pq.is_trained
    pq.train(x)
    pq.add(x)
    assert pq.ntotal == 2000


@pytest.mark.parametrize("spec,metric", [("IVF32,RQ32x4", METRIC_IP), ("IVF32,RQ32x4_Nrq2x4", METRIC_L2)],
                         ids=["IP", "L2"])
def test_ivf_additive_quantizer_conversion_like_faiss(real, spec, metric):
    """faiss's test_from_ivfaq on the real embeddings, in both libraries:
    nearly's IndexIVFAdditiveQuantizerFastScan(orig) keeps orig's recall
    within 0.02 and finds at least what faiss's conversion finds. (Under L2
    faiss's conversion turns by_residual on over codes of the vectors
    themselves and loses recall; nearly's keeps orig's by_residual.)"""
    x, xq = real
    _, gt = brute_force(xq, x, 10, metric)
    recalls = {}
    for lib in (faiss, nearly):
        orig = lib.index_factory(x.shape[1], spec, metric)
        if metric == METRIC_L2:
            orig.by_residual = False  # faiss's rule for L2 conversions
        orig.train(x[:4000])
        orig.add(x)
        orig.nprobe = 8
        fs = lib.IndexIVFAdditiveQuantizerFastScan(orig)
        assert fs.ntotal == orig.ntotal and fs.nprobe == 8
        recalls[lib.__name__] = [recall_at(index.search(xq, 10)[1], gt, 10) for index in (orig, fs)]
    r_orig, r_fs = recalls["nearly"]
    assert abs(r_orig - r_fs) < 0.02, recalls
    assert r_fs >= recalls["faiss"][1] - 0.02, recalls
