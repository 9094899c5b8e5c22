"""faiss's quantize_lut helpers (utils/quantize_lut.h): distance tables of
floats turned into bytes for fast-scan kernels, with the affine map back.

Each table row is shifted by its minimum and scaled by one factor a for all
rows, rounded to the nearest integer (floor(v * a + 0.5), in float32 as
faiss computes it), so that a sum of table entries (plus a uint16 bias) /
a + b is the float sum. a is the largest factor that keeps every entry
within 255 and every sum within 65535 (the kernels' uint16 accumulators).
nearly's own fast-scan kernels quantize their tables in C++; these are the
same maps for code that calls faiss's functions, with faiss's pointer-style
arguments (swig_ptr(array) is the array itself in nearly)."""
import numpy as np

from . import _nearly

_F = np.float32


def _round(tab, a, lo):
    """floorf((tab - lo) * a + 0.5), each step a float32 operation as in faiss
    (lo broadcast against tab)."""
    return np.floor((tab - np.asarray(lo, _F)) * _F(a) + _F(0.5))


def _sum32(values, start=0.0):
    s = _F(start)
    for v in values:  # faiss's order, in float32
        s = _F(s + v)
    return s


def _flat(a, name, n, dtype):
    if a is None:
        return None
    if not isinstance(a, np.ndarray) or a.dtype != dtype or not a.flags.c_contiguous:
        raise _nearly.InvalidArgumentError(f"{name} must be a contiguous {np.dtype(dtype).name} array")
    a = a.reshape(-1)
    if a.size < n:
        raise _nearly.InvalidArgumentError(f"{name} holds {a.size} values, needs {n}")
    return a


def _factor(span_entry, span_sum):
    a = min(_F(255) / _F(span_entry) if span_entry > 0 else np.inf,
            _F(65535) / _F(span_sum) if span_sum > 0 else np.inf)
    return _F(a) if np.isfinite(a) else _F(0)


def round_uint8_per_column(tab, n, d, a_out=None, b_out=None):
    """faiss's: the n rows of d values of tab (in place) each shifted by its
    minimum and scaled by 255 / the largest row span, rounded; returns
    (a, b), b the sum of the minima."""
    t = _flat(tab, "tab", n * d, np.float32)[:n * d].reshape(n, d)
    mins = t.min(axis=1)
    span = float((t.max(axis=1) - mins).max()) if n else 0.0
    a = _F(255) / _F(span) if span > 0 else _F(0)
    t[:] = _round(t, a, mins[:, None])
    return _out(a, _sum32(mins), a_out, b_out)


def round_uint8_per_column_multi(tab, m, n, d, a_out=None, b_out=None):
    """faiss's: m tables of n rows of d values; row i's minimum and span are
    taken over the m tables."""
    t = _flat(tab, "tab", m * n * d, np.float32)[:m * n * d].reshape(m, n, d)
    mins = t.min(axis=(0, 2))
    span = float((t.max(axis=(0, 2)) - mins).max()) if n else 0.0
    a = _F(255) / _F(span) if span > 0 else _F(0)
    t[:] = _round(t, a, mins[None, :, None])
    return _out(a, _sum32(mins), a_out, b_out)


def _out(a, b, a_out, b_out):
    if a_out is not None:
        _flat(a_out, "a_out", 1, np.float32)[0] = a
    if b_out is not None:
        _flat(b_out, "b_out", 1, np.float32)[0] = b
    return float(a), float(b)


def quantize_LUT_and_bias(nprobe, M, ksub, lut_is_3d, LUT, bias, LUTq, M2, biasq, a_out, b_out):
    """faiss's quantize_lut::quantize_LUT_and_bias: LUT (M x ksub, or nprobe x
    M x ksub when lut_is_3d) and the per-probe bias (or None) into uint8
    tables LUTq ((nprobe x) M2 x ksub, rows M..M2 zero) and uint16 biasq (or
    None: then, for a 3-D LUT, the bias is spread over the tables), with a
    and b written to a_out[0] and b_out[0] such that a distance is (sum of
    table entries + biasq) / a + b. Returns (a, b)."""
    nprobe, M, ksub, M2 = int(nprobe), int(M), int(ksub), int(M2)
    if min(nprobe, M, ksub) < 1 or M2 < M:
        raise _nearly.InvalidArgumentError("quantize_LUT_and_bias: nprobe, M and ksub must be positive, M2 >= M")
    nt = (nprobe if lut_is_3d else 1)
    lut = _flat(LUT, "LUT", nt * M * ksub, np.float32)[:nt * M * ksub].reshape(nt, M, ksub)
    out = _flat(LUTq, "LUTq", nt * M2 * ksub, np.uint8)[:nt * M2 * ksub].reshape(nt, M2, ksub)
    bias_v = _flat(bias, "bias", nprobe, np.float32)
    bq = _flat(biasq, "biasq", nprobe, np.uint16)
    if bias_v is not None:
        bias_v = bias_v[:nprobe]
    if not np.isfinite(lut).all() or (bias_v is not None and not np.isfinite(bias_v).all()):
        raise _nearly.InvalidArgumentError("quantize_LUT_and_bias: the tables must be finite")
    out[:, M:] = 0
    if bias_v is None or not lut_is_3d:
        if bias_v is None and lut_is_3d:
            raise _nearly.InvalidArgumentError("3d LUT is not supported when bias is null")
        mins = lut[0].min(axis=1)
        spans = lut[0].max(axis=1) - mins
        span_dis = _sum32(spans, 0.0 if bias_v is None else _F(bias_v.max() - bias_v.min()))
        b = _sum32(mins)
        a = _factor(float(spans.max()), float(span_dis))
        out[0, :M] = _round(lut[0], a, mins[:, None]).astype(np.uint8)
        if bias_v is not None:
            b = _F(b + bias_v.min())
            if bq is not None:
                bq[:nprobe] = _round(bias_v, a, bias_v.min()).astype(np.uint16)
        return _out(a, b, a_out, b_out)
    if bq is not None:  # 3-D LUT, the bias quantized apart
        mins = lut.min(axis=2)  # nprobe x M
        spans = lut.max(axis=2) - mins
        bias_min = bias_v.min()
        span_dis = max(_sum32(spans[j], _F(bias_v[j] - bias_min)) for j in range(nprobe))
        bias2 = np.array([_sum32(mins[j], bias_v[j]) for j in range(nprobe)], np.float32)
        b = _F(bias2.min())
        a = _factor(float(spans.max()), float(span_dis))
        out[:, :M] = _round(lut, a, mins[:, :, None]).astype(np.uint8)
        bq[:nprobe] = _round(bias2, a, b).astype(np.uint16)
        return _out(a, b, a_out, b_out)
    # 3-D LUT without biasq: bias / M added to every table of its probe.
    lut2 = lut + (bias_v / _F(M)).astype(np.float32)[:, None, None]
    mins = lut2.min(axis=(0, 2))
    spans = lut2.max(axis=(0, 2)) - mins
    span = float(spans.max())
    a = _F(255) / _F(span) if span > 0 else _F(0)
    out[:, :M] = _round(lut2, a, mins[None, :, None]).astype(np.uint8)
    return _out(a, _sum32(mins), a_out, b_out)
