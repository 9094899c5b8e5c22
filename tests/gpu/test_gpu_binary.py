"""Binary codes on the GPU against numpy: Hamming k-NN and BEBR SDC scores,
integers equal to the reference."""
import numpy as np
import pytest

import nearly
from nearly import gpu


def hamming_ref(q, x):
    return np.unpackbits(q[:, None, :] ^ x[None, :, :], axis=2).sum(2).astype(np.int64)


@pytest.mark.parametrize("d", [64, 256, 384, 2560])
def test_gpu_binary_flat_matches_numpy(res, rng, d, cupy):
    x = rng.integers(0, 256, size=(3000, d // 8), dtype=np.uint8)
    q = rng.integers(0, 256, size=(40, d // 8), dtype=np.uint8)
    idx = gpu.GpuIndexBinaryFlat(res, d)
    idx.add(x[:1000])
    idx.add(cupy.asarray(x[1000:]))
    assert idx.ntotal == 3000
    D, I = idx.search(q, 10)
    assert D.dtype == np.int32 and I.dtype == np.int64
    ref = hamming_ref(q, x)
    np.testing.assert_array_equal(D, np.sort(ref, axis=1)[:, :10])
    np.testing.assert_array_equal(ref[np.arange(40)[:, None], I], D)
    Dd, Id = idx.search(cupy.asarray(q), 10)
    np.testing.assert_array_equal(cupy.asnumpy(Dd), D)
    np.testing.assert_array_equal(idx.reconstruct_n(5, 3), x[5:8])
    small = gpu.GpuIndexBinaryFlat(res, d)
    small.add(x[:100])
    D, I = small.search(q, 150)  # fewer codes than k: faiss's padding
    assert (I[:, 100:] == -1).all() and (D[:, 100:] == 2147483647).all()
    assert (I[:, :100] >= 0).all()
    with pytest.raises(ValueError):
        idx.search(q, 3000)  # beyond the GPU selection limit
    with pytest.raises(ValueError):
        idx.search(q[:, :5], 1)
    with pytest.raises(ValueError):
        idx.search(q.astype(np.int16), 1)


def levels(codes, m, nb):
    """L(k) = sum_i 2^(u-i) s_i(k), plane i = bytes [i m/8, (i+1) m/8), bit k%8 of byte k/8."""
    bits = np.unpackbits(codes.reshape(len(codes), nb, m // 8), axis=2, bitorder="little").astype(np.int64)
    s = 2 * bits - 1
    w = 2 ** (nb - 1 - np.arange(nb))
    return (s * w[None, :, None]).sum(1)


@pytest.mark.parametrize("nb", [1, 2, 3, 4])
def test_gpu_sdc_scores_equal_reference(res, rng, nb, cupy):
    m = 384
    x = rng.integers(0, 256, size=(2000, nb * m // 8), dtype=np.uint8)
    q = rng.integers(0, 256, size=(30, nb * m // 8), dtype=np.uint8)
    S, I = gpu.sdc_knn(res, q, x, m, nb, 20)
    ref = levels(q, m, nb) @ levels(x, m, nb).T
    np.testing.assert_array_equal(S, -np.sort(-ref, axis=1)[:, :20])
    np.testing.assert_array_equal(ref[np.arange(30)[:, None], I], S)
    Sd, Id = gpu.sdc_knn(res, cupy.asarray(q), cupy.asarray(x), m, nb, 20)
    np.testing.assert_array_equal(cupy.asnumpy(Sd), S)
    with pytest.raises(ValueError):
        gpu.sdc_knn(res, q, x, m, 5, 1)
    with pytest.raises(ValueError):
        gpu.sdc_knn(res, q[:, :10], x, m, nb, 1)
