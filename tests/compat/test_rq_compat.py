"""Differential tests of ResidualQuantizer, IndexResidualQuantizer and
IndexIVFResidualQuantizer against faiss-cpu on the real-embedding subset
(../shared/data): the same code layout (faiss decodes nearly's codes with
nearly's codebooks to the same vectors, and encodes with them to the same
codes), reconstruction error within 2% of faiss's from the same training
data, recall within 2 points at each search type, the same code sizes and
factory strings."""
import numpy as np
import pytest

import nearly
from _hnswutil import real_data
from _testutil import METRIC_IP, METRIC_L2, brute_force

faiss = pytest.importorskip("faiss")

MOD = {"faiss": faiss, "nearly": nearly}
D = 384


def recall(I, gt):
    k = gt.shape[1]
    return np.mean([len(set(a[:k]) & set(b)) / k for a, b in zip(I, gt)])


@pytest.fixture(scope="module")
def real():
    base, queries = real_data()
    return np.ascontiguousarray(base[:10000]), np.ascontiguousarray(queries[:300])


@pytest.fixture(scope="module")
def quantizers(real):
    x, _ = real
    out = {}
    for lib, mod in MOD.items():
        rq = mod.ResidualQuantizer(D, 4, 6)
        rq.train(x[:5000])
        out[lib] = rq
    return out


def test_reconstruction_error_within_2_percent(real, quantizers):
    x, _ = real
    err = {lib: float(((rq.decode(rq.compute_codes(x)) - x) ** 2).sum(1).mean()) for lib, rq in quantizers.items()}
    assert err["nearly"] <= 1.02 * err["faiss"], err
    assert quantizers["nearly"].code_size == quantizers["faiss"].code_size == 3


def test_faiss_reads_nearly_codes(real, quantizers):
    """nearly's codebooks copied into faiss's quantizer: faiss decodes
    nearly's codes to nearly's vectors, and its beam search picks the same codes."""
    x, _ = real
    n = quantizers["nearly"]
    f = faiss.ResidualQuantizer(D, 4, 6)
    f.train_type = 0
    f.cp.niter = 1
    f.train(x[:1000])  # any training, then nearly's codebooks in its place
    faiss.copy_array_to_vector(n.codebooks, f.codebooks)
    f.compute_codebook_tables()
    codes = n.compute_codes(x[:2000])
    np.testing.assert_allclose(f.decode(codes), n.decode(codes), rtol=1e-5, atol=1e-6)
    assert np.mean(np.all(f.compute_codes(x[:2000]) == codes, axis=1)) > 0.99


@pytest.mark.parametrize("fs", ["RQ4x6", "RQ4x6_Nfloat", "RQ4x6_Nqint8", "RQ4x6_Ncqint4", "RQ4x6_Nnone",
                                "RQ4x6_Nqint4"])
@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP], ids=["L2", "IP"])
def test_index_recall_within_2_points(real, fs, metric):
    x, xq = real
    gt = brute_force(xq, x, 10, metric)[1]
    rec = {}
    for lib, mod in MOD.items():
        index = mod.index_factory(D, fs, metric)
        index.train(x[:5000])
        index.add(x)
        assert index.code_size == nearly.index_factory(D, fs, metric).code_size
        Dq, I = index.search(xq, 10)
        assert Dq.dtype == np.float32 and I.dtype == np.int64 and I.shape == (len(xq), 10)
        rec[lib] = recall(I, gt)
    assert rec["nearly"] >= rec["faiss"] - 0.02, rec


@pytest.mark.parametrize("fs", ["IVF64,RQ4x6", "IVF64,RQ4x6_Nfloat", "IVF64,RQ4x6_Nqint8"])
@pytest.mark.parametrize("metric", [METRIC_L2, METRIC_IP], ids=["L2", "IP"])
def test_ivf_recall_within_2_points(real, fs, metric):
    x, xq = real
    gt = brute_force(xq, x, 10, metric)[1]
    rec = {}
    for lib, mod in MOD.items():
        index = mod.index_factory(D, fs, metric)
        ivf = mod.extract_index_ivf(index)
        ivf.cp.niter = 6
        index.train(x[:5000])
        index.add(x)
        index.nprobe = 8
        rec[lib] = recall(index.search(xq, 10)[1], gt)
        assert ivf.by_residual
    assert rec["nearly"] >= rec["faiss"] - 0.02, rec


@pytest.mark.parametrize("fs", ["RQ8x8", "RQ16x4_Nfloat", "RQ3x10_Nqint4", "RQ5x7_Ncqint8", "IVF1024,RQ8x8_Nqint8",
                                "IVF256,RQ2x12"])
def test_same_sizes_and_types(fs):
    for metric in (METRIC_L2, METRIC_IP):
        f, n = faiss.index_factory(64, fs, metric), nearly.index_factory(64, fs, metric)
        assert type(faiss.downcast_index(f)).__name__ == type(n).__name__
        assert f.sa_code_size() == n.sa_code_size()
        fr = faiss.downcast_index(f).rq
        assert fr.code_size == n.rq.code_size and fr.search_type == n.rq.search_type
        assert fr.max_beam_size == n.rq.max_beam_size and fr.train_type == n.rq.train_type
