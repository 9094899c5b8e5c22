"""faiss's bit strings (nearly/bitstrings.py) beside faiss-cpu:
BitstringWriter / BitstringReader and pack_bitstrings / unpack_bitstrings
give faiss's bytes for fixed and per-column widths, and a PQ code of any
width is such a string (the layout of faiss's PQ / RQ codes)."""
import numpy as np
import pytest

import nearly

faiss = pytest.importorskip("faiss")


def test_writer_and_reader_bytes_equal_faiss():
    rs = np.random.RandomState(7)
    nbyte = 300
    fields = []
    total = 0
    while True:
        nbit = int(1 + 62 * rs.rand() ** 4)
        if total + nbit > nbyte * 8:
            break
        fields.append((nbit, int(rs.randint(1 << nbit, dtype=np.int64))))
        total += nbit
    out = {}
    for lib in (faiss, nearly):
        buf = np.full(nbyte, 0xFF, np.uint8)  # the writer clears it
        w = lib.BitstringWriter(lib.swig_ptr(buf), nbyte)
        for nbit, x in fields:
            w.write(x, nbit)
        out[lib.__name__] = buf
    np.testing.assert_array_equal(out["nearly"], out["faiss"])
    r = nearly.BitstringReader(nearly.swig_ptr(out["nearly"]), nbyte)
    assert [r.read(nbit) for nbit, _ in fields] == [x for _, x in fields]
    with pytest.raises(ValueError):
        r.read(64)  # past the end
    w = nearly.BitstringWriter(np.zeros(2, np.uint8), 2)
    w.write(3, 10)
    with pytest.raises(ValueError):
        w.write(1, 7)


@pytest.mark.parametrize("nbits", [5, 8, 13, [10, 5, 3, 12, 6, 7, 4], [1, 32, 0, 9]])
def test_pack_unpack_equal_faiss(nbits):
    rs = np.random.RandomState(1)
    widths = np.array(nbits if isinstance(nbits, list) else [nbits] * 9)
    a = (rs.randint(0, 2 ** 31 - 1, size=(30, len(widths))) & ((1 << widths) - 1)).astype(np.int32)
    arg = nbits if isinstance(nbits, list) else int(nbits)
    b = nearly.pack_bitstrings(a, arg)
    np.testing.assert_array_equal(b, faiss.pack_bitstrings(a, arg))
    back = nearly.unpack_bitstrings(b, arg) if isinstance(nbits, list) else nearly.unpack_bitstrings(b, len(widths), arg)
    np.testing.assert_array_equal(back, a)


def test_pq_codes_are_bitstrings():
    rs = np.random.RandomState(2)
    x = rs.rand(500, 16).astype(np.float32)
    pq = nearly.ProductQuantizer(16, 4, 6)
    pq.train(x)
    codes = pq.compute_codes(x[:20])
    idx = nearly.unpack_bitstrings(codes, 4, 6)
    np.testing.assert_array_equal(nearly.pack_bitstrings(idx, 6), codes)


def test_bad_input():
    with pytest.raises(ValueError):
        nearly.pack_bitstrings(np.array([[4]]), 2)  # does not fit
    with pytest.raises(ValueError):
        nearly.pack_bitstrings(np.array([[1, 2]]), [3])  # one width for two columns
    with pytest.raises(ValueError):
        nearly.unpack_bitstrings(np.zeros((2, 1), np.uint8), 3, 5)  # 15 bits in 1 byte
    with pytest.raises(ValueError):
        nearly.BitstringWriter(np.zeros(4, np.int32), 4)
