"""HadamardRotation (faiss's "HR"): the same signs and rotated vectors as
faiss-cpu for the same seed, norms kept, non-powers of 2 padded, the exact
inverse, the factory and persistence."""
import numpy as np
import pytest

import nearly

faiss = pytest.importorskip("faiss")
needs_faiss_hr = pytest.mark.skipif(not hasattr(faiss, "HadamardRotation"), reason="this faiss-cpu has no HR")


@needs_faiss_hr
@pytest.mark.parametrize("d,seed", [(1, 12345), (64, 42), (100, 7), (384, 12345), (1000, 3)])
def test_same_rotation_as_faiss(d, seed):
    x = np.random.default_rng(d).standard_normal((50, d)).astype(np.float32)
    ours, theirs = nearly.HadamardRotation(d, seed), faiss.HadamardRotation(d, seed)
    assert ours.d_out == theirs.d_out
    for name in ("signs1", "signs2", "signs3"):
        np.testing.assert_array_equal(getattr(ours, name), faiss.vector_to_array(getattr(theirs, name)))
    np.testing.assert_allclose(ours.apply(x), theirs.apply(x), rtol=1e-5, atol=1e-6)


def test_norms_padding_inverse_and_seeds():
    rng = np.random.default_rng(0)
    for d, p in [(128, 128), (192, 256), (384, 512), (5, 8)]:
        x = rng.standard_normal((30, d)).astype(np.float32)
        t = nearly.HadamardRotation(d)
        assert (t.d_in, t.d_out, t.is_trained) == (d, p, True)
        y = t.apply(x)
        assert y.shape == (30, p)
        np.testing.assert_allclose(np.linalg.norm(y, axis=1), np.linalg.norm(x, axis=1), rtol=1e-5)
        np.testing.assert_allclose(t.reverse_transform(y), x, rtol=1e-4, atol=1e-5)
        # distances are kept
        np.testing.assert_allclose(((y[0] - y[1:]) ** 2).sum(1), ((x[0] - x[1:]) ** 2).sum(1), rtol=1e-4)
    x = rng.standard_normal((5, 64)).astype(np.float32)
    np.testing.assert_array_equal(nearly.HadamardRotation(64, 1).apply(x), nearly.HadamardRotation(64, 1).apply(x))
    assert not np.allclose(nearly.HadamardRotation(64, 1).apply(x), nearly.HadamardRotation(64, 2).apply(x))
    with pytest.raises(ValueError):
        nearly.HadamardRotation(0)
    with pytest.raises(ValueError):
        nearly.HadamardRotation(64).apply(np.zeros((2, 63), np.float32))


def test_factory_and_persistence(tmp_path):
    x = np.random.default_rng(1).standard_normal((500, 100)).astype(np.float32)
    index = nearly.index_factory(100, "HR,Flat")
    assert isinstance(index.chain.at(0), nearly.HadamardRotation) and index.chain.at(0).d_out == 128
    index.train(x)
    index.add(x)
    D, I = index.search(x[:20], 5)
    np.testing.assert_array_equal(I[:, 0], np.arange(20))
    ref = nearly.IndexFlatL2(100)
    ref.add(x)
    D2, I2 = ref.search(x[:20], 5)
    np.testing.assert_allclose(D, D2, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(index.reconstruct(3), x[3], rtol=1e-4, atol=1e-5)
    seeded = nearly.index_factory(100, "HR7,Flat")
    assert seeded.chain.at(0).seed == 7
    back = nearly.deserialize_index(nearly.serialize_index(index))
    assert back.chain.at(0).seed == 12345
    np.testing.assert_array_equal(back.search(x[:20], 5)[1], I)
    path = str(tmp_path / "hr.vt")
    nearly.write_VectorTransform(nearly.HadamardRotation(100, 9), path)
    t = nearly.read_VectorTransform(path)
    assert isinstance(t, nearly.HadamardRotation) and t.seed == 9
