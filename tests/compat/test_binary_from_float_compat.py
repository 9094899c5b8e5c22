"""IndexBinaryFromFloat against faiss-cpu and nearly's own binary indexes:
a float index over the codes' +-1 vectors answers Hamming queries."""
import numpy as np
import pytest

import nearly

faiss = pytest.importorskip("faiss")

D_BITS = 64


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(9)
    return (rng.integers(0, 256, (3000, D_BITS // 8), dtype=np.uint8),
            rng.integers(0, 256, (80, D_BITS // 8), dtype=np.uint8))


def test_flat_float_index_is_exact_hamming(data):
    xb, xq = data
    flat = nearly.IndexBinaryFlat(D_BITS)
    flat.add(xb)
    out = {}
    for lib in (nearly, faiss):
        index = lib.IndexBinaryFromFloat(lib.IndexFlatL2(D_BITS))
        index.add(xb)
        assert index.ntotal == len(xb) and index.is_trained
        out[lib.__name__] = index.search(xq, 10)
    np.testing.assert_array_equal(out["nearly"][0], out["faiss"][0])
    for a, b in zip(out["nearly"], flat.search(xq, 10)):  # ties by id on both sides
        np.testing.assert_array_equal(a, b)


def test_conversions_equal_faiss(data):
    xb, _ = data
    real = nearly.binary_to_real(xb[:5])
    want = np.empty(5 * D_BITS, np.float32)
    faiss.binary_to_real(5 * D_BITS, faiss.swig_ptr(xb[:5]), faiss.swig_ptr(want))
    np.testing.assert_array_equal(real, want)
    np.testing.assert_array_equal(nearly.real_to_binary(real), xb[:5].ravel())


def test_float_coarse_quantizer_for_binary_ivf(data):
    xb, xq = data
    ref = nearly.IndexBinaryIVF(nearly.IndexBinaryFlat(D_BITS), D_BITS, 16)
    wrapped = nearly.IndexBinaryIVF(nearly.IndexBinaryFromFloat(nearly.IndexFlatL2(D_BITS)), D_BITS, 16)
    for index in (ref, wrapped):
        index.train(xb)
        index.add(xb)
        index.nprobe = 4
    for a, b in zip(wrapped.search(xq, 10), ref.search(xq, 10)):
        np.testing.assert_array_equal(a, b)
    # faiss's recipe: an HNSW over the float centroids as the coarse quantizer
    centroids = nearly.binary_to_real(ref.quantizer.reconstruct_n(0, 16)).reshape(16, D_BITS)
    hnsw = nearly.IndexHNSWFlat(D_BITS, 16)
    hnsw.add(centroids)
    via_hnsw = nearly.IndexBinaryIVF(nearly.IndexBinaryFromFloat(hnsw), D_BITS, 16)
    assert via_hnsw.is_trained
    via_hnsw.add(xb)
    via_hnsw.nprobe = 4
    D, I = via_hnsw.search(xq, 10)
    Dr, Ir = ref.search(xq, 10)
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I, Ir)]) > 0.95


def test_persistence_reconstruct_and_bad_input(data):
    xb, xq = data
    index = nearly.IndexBinaryFromFloat(nearly.IndexFlatL2(D_BITS))
    index.add(xb[:100])
    np.testing.assert_array_equal(index.reconstruct(7), xb[7])
    back = nearly.deserialize_index_binary(nearly.serialize_index_binary(index))
    assert isinstance(back, nearly.IndexBinaryFromFloat) and back.ntotal == 100
    for a, b in zip(back.search(xq, 5), index.search(xq, 5)):
        np.testing.assert_array_equal(a, b)
    index.reset()
    assert index.ntotal == 0 and (index.search(xq, 3)[1] == -1).all()
    with pytest.raises(RuntimeError, match="multiple of 8"):  # faiss's RuntimeError
        nearly.IndexBinaryFromFloat(nearly.IndexFlatL2(12))
    with pytest.raises((ValueError, TypeError)):
        nearly.IndexBinaryFromFloat(None)
    with pytest.raises(ValueError):
        index.search(xq, 0)
