"""faiss's quantize_LUT_and_bias and round_uint8_per_column(_multi)
(nearly/quantize_lut.py) beside faiss-cpu: the same bytes, bias codes and
(a, b) in every branch (no bias, a bias with a 2-D table, a 3-D table with
the bias quantized apart or spread over the tables), and the error bound a
fast-scan sum relies on."""
import numpy as np
import pytest

import nearly

faiss = pytest.importorskip("faiss")


def run(lib, nprobe, M, ksub, LUT, bias, M2, with_biasq):
    LUTq = np.zeros((LUT.shape[0], M2, ksub) if LUT.ndim == 3 else (M2, ksub), dtype=np.uint8)
    biasq = np.zeros(nprobe, dtype=np.uint16) if with_biasq else None
    a, b = np.zeros(1, np.float32), np.zeros(1, np.float32)
    sp = (lambda x: lib.swig_ptr(x) if x is not None else None)
    lib.quantize_LUT_and_bias(nprobe, M, ksub, LUT.ndim == 3, sp(LUT), sp(bias), sp(LUTq), M2, sp(biasq), sp(a), sp(b))
    return LUTq, biasq, a[0], b[0]


CASES = {
    "no_bias": (False, False, True),
    "bias_2d": (False, True, True),
    "bias_3d": (True, True, True),
    "bias_3d_in_tables": (True, True, False),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("M,M2", [(20, 20), (7, 8)])
def test_same_as_faiss(case, M, M2):
    three_d, with_bias, with_biasq = CASES[case]
    nprobe, ksub = 10, 16
    rs = np.random.RandomState(M)
    LUT = (rs.rand(nprobe, M, ksub) if three_d else rs.rand(M, ksub)).astype(np.float32) * 3 - 1
    bias = (rs.rand(nprobe) * 10).astype(np.float32) if with_bias else None
    got = run(nearly, nprobe, M, ksub, LUT, bias, M2, with_biasq and with_bias)
    want = run(faiss, nprobe, M, ksub, LUT, bias, M2, with_biasq and with_bias)
    np.testing.assert_array_equal(got[0], want[0])
    if want[1] is not None:
        np.testing.assert_array_equal(got[1], want[1])
    assert got[2] == want[2] and got[3] == want[3]
    # The sums come back within the rounding: (sum LUTq + biasq) / a + b.
    codes = rs.randint(ksub, size=(nprobe, 50, M))
    for p in range(nprobe):
        T = LUT[p] if three_d else LUT
        ref = T[np.arange(M), codes[p]].sum(1) + (bias[p] if with_bias else 0)
        Tq = got[0][p] if three_d else got[0]
        s = Tq[np.arange(M), codes[p]].astype(np.float64).sum(1) + (got[1][p] if got[1] is not None else 0)
        assert np.abs(s / got[2] + got[3] - ref).max() <= (M + 1) * 0.5 / got[2] + 1e-4


def test_zero_span_and_bad_input():
    LUT = np.full((20, 16), 5.0, np.float32)
    out = run(nearly, 10, 20, 16, LUT, None, 20, False)
    assert out[2] == 0 and not out[0].any() and out[3] == pytest.approx(100)
    with pytest.raises(ValueError):  # a 3-D table needs a bias
        run(nearly, 2, 20, 16, np.zeros((2, 20, 16), np.float32), None, 20, False)
    with pytest.raises(ValueError):
        run(nearly, 1, 20, 16, LUT.astype(np.float64), None, 20, False)
    bad = LUT.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        run(nearly, 1, 20, 16, bad, None, 20, False)


@pytest.mark.parametrize("multi", [False, True])
def test_round_uint8_per_column(multi):
    rs = np.random.RandomState(3)
    m, n, d = 3, 12, 16
    tab = rs.rand(m * n * d if multi else n * d).astype(np.float32) * 4
    out = {}
    for lib in (faiss, nearly):
        t = tab.copy()
        a, b = np.zeros(1, np.float32), np.zeros(1, np.float32)
        if multi:
            lib.round_uint8_per_column_multi(lib.swig_ptr(t), m, n, d, lib.swig_ptr(a), lib.swig_ptr(b))
        else:
            lib.round_uint8_per_column(lib.swig_ptr(t), n, d, lib.swig_ptr(a), lib.swig_ptr(b))
        out[lib.__name__] = (t, a[0], b[0])
    np.testing.assert_array_equal(out["nearly"][0], out["faiss"][0])
    assert out["nearly"][1:] == out["faiss"][1:]
