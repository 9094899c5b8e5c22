"""faiss idioms of user code that reach into an index: the stored floats by
rev_swig_ptr(index.get_xb(), n), direct maps by type, transforms saved on
their own. Each runs the same way on faiss and on nearly."""
import os

import numpy as np
import pytest

import faiss
import nearly


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).standard_normal((2000, 16)).astype(np.float32)


def test_get_xb_through_rev_swig_ptr(x):
    out = {}
    for lib in (faiss, nearly):
        index = lib.IndexFlatL2(16)
        index.add(x)
        xb = lib.rev_swig_ptr(index.get_xb(), index.ntotal * index.d).reshape(index.ntotal, index.d)
        out[lib.__name__] = np.array(xb)
    np.testing.assert_array_equal(out["nearly"], out["faiss"])
    np.testing.assert_array_equal(out["nearly"], x)
    index = nearly.IndexFlatIP(16)
    assert nearly.rev_swig_ptr(index.get_xb(), 0).shape == (0,)  # empty
    with pytest.raises(TypeError):
        nearly.rev_swig_ptr(12345, 4)  # no raw pointers here
    with pytest.raises(ValueError):
        nearly.rev_swig_ptr(index.get_xb(), 1)


@pytest.mark.parametrize("kind", ["Array", "Hashtable"])
def test_direct_map_types(x, kind):
    out = {}
    for lib in (faiss, nearly):
        index = lib.index_factory(16, "IVF16,Flat")
        index.train(x)
        index.add(x)
        index.set_direct_map_type(getattr(lib.DirectMap, kind))
        out[lib.__name__] = index.reconstruct(1234)
        index.set_direct_map_type(lib.DirectMap.NoMap)
        with pytest.raises(RuntimeError):
            index.reconstruct(1234)
    np.testing.assert_array_equal(out["nearly"], out["faiss"])
    with pytest.raises(ValueError):
        nearly.index_factory(16, "IVF16,Flat").set_direct_map_type(7)


def test_vector_transform_files(x, tmp_path):
    for lib in (faiss, nearly):
        pca = lib.PCAMatrix(16, 8)
        pca.train(x)
        fname = os.fspath(tmp_path / f"pca.{lib.__name__}")
        lib.write_VectorTransform(pca, fname)
        again = lib.read_VectorTransform(fname)
        assert again.d_in == 16 and again.d_out == 8 and again.is_trained
        np.testing.assert_array_equal(again.apply(x[:50]), pca.apply(x[:50]))
    fname = os.fspath(tmp_path / "flat.index")
    nearly.write_index(nearly.IndexFlatL2(16), fname)
    with pytest.raises(nearly.IndexFileError):
        nearly.read_VectorTransform(fname)  # an index, not a transform
