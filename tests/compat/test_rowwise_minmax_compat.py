"""faiss's row-wise min-max codec ("MinMax,...", "MinMaxFP16,...") beside
faiss-cpu: the same codes byte for byte over an SQ8 inner codec (whose
training is faiss's), the same reconstructions, train_inplace, persistence
through every writer, and bad input."""
import numpy as np
import pytest

import nearly
from _hnswutil import real_data

faiss = pytest.importorskip("faiss")


@pytest.fixture(scope="module")
def data():
    base, _ = real_data()
    rng = np.random.default_rng(0)
    # rows of very different scales and offsets: what the codec is for
    x = base[:6000] * rng.uniform(0.1, 50, (6000, 1)).astype(np.float32) + rng.normal(0, 3, (6000, 1)).astype(np.float32)
    return x[:4000], x[4000:]


@pytest.mark.parametrize("spec", ["MinMax,SQ8", "MinMaxFP16,SQ8", "MinMax,SQ4", "MinMaxFP16,PQ16x8"])
def test_codes_as_faiss(data, spec, tmp_path):
    xt, xb = data
    d = xt.shape[1]
    ours, theirs = nearly.index_factory(d, spec), faiss.index_factory(d, spec)
    assert type(ours).__name__ == type(theirs).__name__
    assert ours.sa_code_size() == theirs.sa_code_size()
    ours.train(xt)
    theirs.train(xt)
    a, b = ours.sa_encode(xb), theirs.sa_encode(xb)
    dec = ours.sa_decode(a)
    if "PQ" not in spec:  # SQ's training is faiss's: the same bytes
        if "FP16" in spec:  # but for an exact tie between two halves: faiss rounds it up, nearly to even
            assert (a == b).mean() > 0.9999
        else:
            np.testing.assert_array_equal(a, b)
        same = (a == b).all(1)
        np.testing.assert_allclose(dec[same], theirs.sa_decode(b)[same], rtol=1e-5, atol=1e-4)
        assert ((dec - xb) ** 2).sum(1).mean() < 0.01 * (xb ** 2).sum(1).mean()
    err = ((dec - xb) ** 2).sum(1).mean()
    assert err <= ((theirs.sa_decode(b) - xb) ** 2).sum(1).mean() * 1.05
    # train_inplace: the same codes, and x changed to the rows as scaled
    xt2 = xt.copy()
    again = nearly.index_factory(d, spec)
    again.train_inplace(xt2)
    np.testing.assert_array_equal(again.sa_encode(xb), a)
    assert not np.array_equal(xt2, xt)
    np.testing.assert_allclose(xt2, xt, rtol=1e-2, atol=1e-2 * np.abs(xt).max())
    # persistence
    path = str(tmp_path / "rm.index")
    nearly.write_index(ours, path)
    back = nearly.read_index(path)
    assert type(back) is type(ours)
    np.testing.assert_array_equal(back.sa_encode(xb[:100]), a[:100])
    writer = nearly.VectorIOWriter()
    nearly.write_index(ours, writer)
    reader = nearly.VectorIOReader()
    nearly.copy_array_to_vector(np.array(nearly.vector_to_array(writer.data)), reader.data)
    np.testing.assert_array_equal(nearly.read_index(reader).sa_decode(a[:10]), dec[:10])
    blob = nearly.serialize_index(ours)
    with pytest.raises(nearly.IndexFileError):
        nearly.deserialize_index(blob[:-3])


def test_codec_only_and_bad_input(data):
    xt, xb = data
    d = xt.shape[1]
    codec = nearly.index_factory(d, "MinMax,SQ8")
    for call in (lambda: codec.add(xb), lambda: codec.search(xb[:2], 3), codec.reset):
        with pytest.raises(RuntimeError, match="not implemented"):
            call()
    codec.train(xt)
    with pytest.raises(ValueError):
        codec.sa_encode(xb[:, :10])
    bad = xb[:5].copy()
    bad[1, 3] = np.nan
    with pytest.raises(ValueError):
        codec.sa_encode(bad)
    with pytest.raises(ValueError):
        codec.sa_decode(np.zeros((2, 5), np.uint8))
    with pytest.raises(TypeError):
        codec.train_inplace(xt.astype(np.float64))
    # a constant row: range 0, decoded as its value
    const = np.full((1, d), 3.5, np.float32)
    np.testing.assert_allclose(codec.sa_decode(codec.sa_encode(const)), const)
