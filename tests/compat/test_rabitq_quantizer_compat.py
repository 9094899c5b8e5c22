"""The standalone RaBitQuantizer(d, metric, nb_bits) (compute_codes /
decode) against faiss-cpu on the real embeddings: faiss's 1-bit codes, sign
bits and factors of multi-bit codes, faiss's decodes; +-A vectors decoded
exactly; bad input."""
import numpy as np
import pytest

import nearly
from _hnswutil import real_data

faiss = pytest.importorskip("faiss")


@pytest.mark.parametrize("metric", [0, 1])
@pytest.mark.parametrize("nb_bits", [1, 2, 4, 8])
def test_codes_like_faiss(metric, nb_bits):
    base, _ = real_data()
    x = np.ascontiguousarray(base[:300])
    ours, theirs = nearly.RaBitQuantizer(x.shape[1], metric, nb_bits), faiss.RaBitQuantizer(x.shape[1], metric,
                                                                                            nb_bits)
    assert ours.code_size == theirs.code_size
    c, cf = ours.compute_codes(x), theirs.compute_codes(x)
    if nb_bits == 1:
        np.testing.assert_array_equal(c, cf)
    else:
        # the sign bits and their factors are faiss's; the extra bits come
        # from a search over scalings whose near ties float roundoff decides
        sign_part = (x.shape[1] + 7) // 8 + 8
        np.testing.assert_array_equal(c[:, :sign_part], cf[:, :sign_part])
        assert (c == cf).mean() > 0.95
    np.testing.assert_array_equal(ours.decode(c), theirs.decode(cf))


@pytest.mark.parametrize("metric", [0, 1])
def test_plus_minus_a_decoded_exactly(metric):
    rs = np.random.RandomState(123)
    vec = ((2 * rs.randint(0, 2, (10, 16)) - 1) * 100).astype(np.float32)
    q = nearly.RaBitQuantizer(16, metric)
    q.train(vec)  # learns nothing
    np.testing.assert_array_equal(q.decode(q.compute_codes(vec)), vec)


def test_bad_input():
    with pytest.raises(nearly.InvalidArgumentError, match="d must be positive"):
        nearly.RaBitQuantizer(0)
    with pytest.raises(nearly.InvalidArgumentError, match="metric"):
        nearly.RaBitQuantizer(8, 5)
    with pytest.raises(nearly.InvalidArgumentError, match="nb_bits"):
        nearly.RaBitQuantizer(8, 0, 10)
    q = nearly.RaBitQuantizer(8)
    with pytest.raises(nearly.InvalidArgumentError):
        q.compute_codes(np.zeros((3, 7), np.float32))
    with pytest.raises(nearly.InvalidArgumentError):
        q.compute_codes(np.full((1, 8), np.nan, np.float32))
    with pytest.raises(nearly.InvalidArgumentError):
        q.decode(np.zeros((2, q.code_size + 1), np.uint8))
