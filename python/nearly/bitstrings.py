"""faiss's bit strings (impl/code_distance and utils/hamming's BitstringWriter
/ BitstringReader, pack_bitstrings / unpack_bitstrings): integers of given
widths laid one after the other, least significant bit first, in bytes.
The layout of faiss's PQ / RQ codes of any bit width."""
import numpy as np

from . import _nearly


def _buffer(code, code_size):
    if not isinstance(code, np.ndarray) or code.dtype != np.uint8 or not code.flags.c_contiguous:
        raise _nearly.InvalidArgumentError("the bit string must be a contiguous uint8 array (swig_ptr(array))")
    code = code.reshape(-1)
    if code.size < int(code_size):
        raise _nearly.InvalidArgumentError(f"the array holds {code.size} bytes, fewer than code_size {code_size}")
    return code


class BitstringWriter:
    """faiss's BitstringWriter(code, code_size): clears code_size bytes of
    `code`, then write(x, nbit) appends the nbit low bits of x."""

    def __init__(self, code, code_size):
        self.code = _buffer(code, code_size)
        self.code_size = int(code_size)
        self.code[:self.code_size] = 0
        self.i = 0  # bits written

    def write(self, x, nbit):
        x, nbit = int(x), int(nbit)
        if not 0 <= nbit <= 64:
            raise _nearly.InvalidArgumentError("nbit must be in 0..64")
        if self.i + nbit > 8 * self.code_size:
            raise _nearly.InvalidArgumentError("BitstringWriter: the bit string is full")
        x &= (1 << nbit) - 1
        v = x << (self.i % 8)
        for k in range((self.i % 8 + nbit + 7) // 8):
            self.code[self.i // 8 + k] |= (v >> (8 * k)) & 0xFF
        self.i += nbit


class BitstringReader:
    """faiss's BitstringReader(code, code_size): read(nbit) returns the next
    nbit bits as an integer."""

    def __init__(self, code, code_size):
        self.code = _buffer(code, code_size)
        self.code_size = int(code_size)
        self.i = 0  # bits read

    def read(self, nbit):
        nbit = int(nbit)
        if not 0 <= nbit <= 64:
            raise _nearly.InvalidArgumentError("nbit must be in 0..64")
        if self.i + nbit > 8 * self.code_size:
            raise _nearly.InvalidArgumentError("BitstringReader: past the end of the bit string")
        nbytes = (self.i % 8 + nbit + 7) // 8
        v = int.from_bytes(self.code[self.i // 8:self.i // 8 + nbytes].tobytes(), "little")
        x = (v >> (self.i % 8)) & ((1 << nbit) - 1)
        self.i += nbit
        return x


def _widths(M_or_nbits, nbit):
    if nbit is None:
        w = np.asarray(M_or_nbits, dtype=np.int64).reshape(-1)
    else:
        w = np.full(int(M_or_nbits), int(nbit), dtype=np.int64)
    if (w < 0).any() or (w > 32).any():
        raise _nearly.InvalidArgumentError("bit widths must be in 0..32")
    return w


def pack_bitstrings(a, nbit):
    """faiss's pack_bitstrings(a, nbit): the n x M integers of a as n bit
    strings, entry (i, j) in nbit bits (or nbit[j] when nbit is a sequence);
    returns n x ceil(total bits / 8) uint8."""
    a = np.asarray(a)
    if a.ndim != 2:
        raise _nearly.InvalidArgumentError("a must be a 2-D array (n, M)")
    n, M = a.shape
    w = _widths(nbit if np.ndim(nbit) else M, None if np.ndim(nbit) else nbit)
    if len(w) != M:
        raise _nearly.InvalidArgumentError(f"nbit has {len(w)} widths for {M} columns")
    a = a.astype(np.int64)
    if ((a < 0) | (a >> w[None, :] != 0)).any():
        raise _nearly.InvalidArgumentError("an entry does not fit its bit width")
    total = int(w.sum())
    bits = np.zeros((n, (total + 7) // 8 * 8), dtype=np.uint8)
    pos = 0
    for j, wj in enumerate(w):
        for t in range(int(wj)):
            bits[:, pos + t] = (a[:, j] >> t) & 1
        pos += int(wj)
    return np.packbits(bits, axis=1, bitorder="little")


def unpack_bitstrings(b, M_or_nbits, nbit=None):
    """faiss's unpack_bitstrings(b, M, nbit) or (b, nbits): the inverse of
    pack_bitstrings; returns n x M int32."""
    b = np.asarray(b)
    if b.ndim != 2 or b.dtype != np.uint8:
        raise _nearly.InvalidArgumentError("b must be a 2-D uint8 array (n, code_size)")
    w = _widths(M_or_nbits, nbit)
    if b.shape[1] * 8 < int(w.sum()):
        raise _nearly.InvalidArgumentError(f"code_size {b.shape[1]} is too small for {int(w.sum())} bits")
    bits = np.unpackbits(b, axis=1, bitorder="little").astype(np.int64)
    out = np.zeros((b.shape[0], len(w)), dtype=np.int64)
    pos = 0
    for j, wj in enumerate(w):
        for t in range(int(wj)):
            out[:, j] |= bits[:, pos + t] << t
        pos += int(wj)
    return out.astype(np.int32)
