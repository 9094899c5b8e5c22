"""faiss's IndexRowwiseMinMax / IndexRowwiseMinMaxFP16 ("MinMax,SQ8",
"MinMaxFP16,PQ16x8"): a codec that scales each vector to [0, 1] by its own
minimum and range before an inner index encodes it, and stores the two
numbers (fp32, or fp16) in front of the inner code. Vectors of very
different scales then share the inner codec's ranges. Like faiss's, a codec
only (train, train_inplace, sa_encode, sa_decode): add and search raise.
Written and read by write_index / read_index (format "NEARLYRM")."""
import struct

import numpy as np

from . import _nearly

MAGIC = b"NEARLYRM"


class IndexRowwiseMinMaxBase:
    _fp16 = False

    def __init__(self, index):
        if not isinstance(index, _nearly.Index):
            raise TypeError("IndexRowwiseMinMax: the inner index must be a nearly index")
        self.index = index
        self.own_fields = False
        self.verbose = False

    d = property(lambda self: self.index.d)
    metric_type = property(lambda self: self.index.metric_type)
    is_trained = property(lambda self: self.index.is_trained)
    ntotal = property(lambda self: 0)

    def sa_code_size(self):
        return self.index.sa_code_size() + (4 if self._fp16 else 8)

    def _scales(self, x):
        """Each row's (range, minimum), as stored, and the rows scaled to [0, 1] by them."""
        x = _matrix(x, self.d)
        minv, scaler = x.min(axis=1), x.max(axis=1) - x.min(axis=1)
        store = np.float16 if self._fp16 else np.float32
        minv, scaler = minv.astype(store).astype(np.float32), scaler.astype(store).astype(np.float32)
        with np.errstate(divide="ignore"):
            inv = np.where(scaler == 0, 0.0, 1.0 / scaler).astype(np.float32)
        scaled = np.where(scaler[:, None] == 0, np.float32(0), (x - minv[:, None]) * inv[:, None]).astype(np.float32)
        return scaler, minv, scaled

    def train(self, x):
        _, _, scaled = self._scales(x)
        self.index.train(scaled)

    def train_inplace(self, x):
        """train(x), where x holds the scaled rows meanwhile and then the
        rows as the codec reconstructs their scaling (faiss's: x changes)."""
        if not isinstance(x, np.ndarray) or x.dtype != np.float32 or not x.flags.c_contiguous:
            raise TypeError("train_inplace: x must be a C-contiguous float32 array")
        scaler, minv, scaled = self._scales(x)
        self.index.train(scaled)
        x[:] = scaled * scaler[:, None] + minv[:, None]

    def sa_encode(self, x):
        scaler, minv, scaled = self._scales(x)
        inner = np.asarray(self.index.sa_encode(scaled), dtype=np.uint8).reshape(len(scaled), -1)
        store = np.float16 if self._fp16 else np.float32
        head = np.stack([scaler.astype(store), minv.astype(store)], axis=1)
        return np.ascontiguousarray(np.hstack([head.view(np.uint8).reshape(len(scaled), -1), inner]))

    def sa_decode(self, codes):
        codes = np.ascontiguousarray(codes, dtype=np.uint8)
        cs = self.sa_code_size()
        if codes.ndim == 1:
            codes = codes.reshape(-1, cs) if codes.size % cs == 0 else codes
        if codes.ndim != 2 or codes.shape[1] != cs:
            raise _nearly.InvalidArgumentError(f"sa_decode: codes must have {cs} bytes per vector")
        hb = 4 if self._fp16 else 8
        head = np.ascontiguousarray(codes[:, :hb]).view(np.float16 if self._fp16 else np.float32).astype(np.float32)
        x = np.asarray(self.index.sa_decode(np.ascontiguousarray(codes[:, hb:])), dtype=np.float32)
        return (x * head[:, :1] + head[:, 1:]).astype(np.float32)

    def add(self, x):
        raise RuntimeError("add not implemented for this type of index")

    def search(self, x, k, *args, **kwargs):
        raise RuntimeError("search not implemented for this type of index")

    def reset(self):
        raise RuntimeError("reset not implemented for this type of index")

    def serialize(self):
        inner = np.asarray(_nearly.serialize_index(self.index), dtype=np.uint8).tobytes()
        return np.frombuffer(MAGIC + struct.pack("<BQ", int(self._fp16), len(inner)) + inner, dtype=np.uint8).copy()

    @staticmethod
    def deserialize(raw):
        if len(raw) < 17 or raw[:8] != MAGIC:
            raise _nearly.IndexFileError("not a row-wise min-max codec")
        fp16, n = struct.unpack("<BQ", raw[8:17])
        if fp16 > 1 or len(raw) != 17 + n:
            raise _nearly.IndexFileError("truncated or corrupt row-wise min-max codec")
        inner = _nearly.deserialize_index(np.frombuffer(raw[17:], dtype=np.uint8))
        return (IndexRowwiseMinMaxFP16 if fp16 else IndexRowwiseMinMax)(inner)

    def __repr__(self):
        return f"<nearly.{type(self).__name__} d={self.d} over {type(self.index).__name__}>"


class IndexRowwiseMinMax(IndexRowwiseMinMaxBase):
    """Each row's range and minimum stored as two float32 (8 bytes)."""


class IndexRowwiseMinMaxFP16(IndexRowwiseMinMaxBase):
    """Each row's range and minimum stored as two float16 (4 bytes); the
    rows are scaled by the rounded values, so decoding undoes exactly that."""

    _fp16 = True


def _matrix(x, d):
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != d:
        raise _nearly.InvalidArgumentError(f"x must be a (n, {d}) array")
    if x.dtype != np.float32:
        raise _nearly.InvalidArgumentError("x must be float32")
    if not np.isfinite(x).all():
        raise _nearly.InvalidArgumentError("x contains NaN or inf")
    return np.ascontiguousarray(x)
