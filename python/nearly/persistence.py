"""write_index / read_index / serialize_index / deserialize_index for every
nearly index: the native ones (C++, format "NEARLYIX") and the multi-vector
ones that live in Python (IndexMultiVectorFlat "NEARLYMV", IndexMuvera
"NEARLYMU"). read_index recognises the format from the file's first bytes."""
import os

import numpy as np

from . import _nearly
from .multivector import IndexMultiVectorFlat, IndexMuvera, _TokenStoreIndex

_READERS = {b"NEARLYMV": IndexMultiVectorFlat.deserialize, b"NEARLYMU": IndexMuvera.deserialize}
_READ_ONLY_FLAGS = 2 | 8  # IO_FLAG_READ_ONLY, and IO_FLAG_MMAP's low bits


def _path(fname):
    try:
        return os.fspath(fname)
    except TypeError:
        raise _nearly.InvalidArgumentError("the file name must be a str or os.PathLike") from None


def serialize_index(index):
    if isinstance(index, _TokenStoreIndex):
        data = index.serialize()
        return data if isinstance(data, np.ndarray) else np.frombuffer(data, dtype=np.uint8).copy()
    return _nearly.serialize_index(index)


def deserialize_index(data, io_flags=0):
    raw = data.tobytes() if isinstance(data, np.ndarray) else bytes(data) if isinstance(
        data, (bytes, bytearray, memoryview)) else None
    if raw is not None and raw[:8] in _READERS:
        index = _READERS[raw[:8]](raw)
        index.read_only = bool(io_flags & _READ_ONLY_FLAGS)
        return index
    return _nearly.deserialize_index(data)


def write_index(index, fname):
    if isinstance(index, _TokenStoreIndex):
        data = serialize_index(index)
        path = _path(fname)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data.tobytes())
        os.replace(tmp, path)  # a crash never leaves half a file under the name
        return
    return _nearly.write_index(index, fname)


def read_index(fname, io_flags=0):
    path = _path(fname)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if head in _READERS:
                index = _READERS[head](head + f.read())
                index.read_only = bool(io_flags & _READ_ONLY_FLAGS)
                return index
    except FileNotFoundError:
        pass  # the native reader raises faiss's error for it
    except IsADirectoryError:
        pass
    return _nearly.read_index(fname, io_flags)


def write_VectorTransform(vt, fname):
    """A transform alone to a file (nearly's format): the transform over an
    empty flat index, which read_VectorTransform takes apart again."""
    write_index(_nearly.IndexPreTransform(vt, _nearly.IndexFlat(vt.d_out)), fname)


def read_VectorTransform(fname):
    index = read_index(fname)
    chain = getattr(index, "chain", None)
    if not isinstance(index, _nearly.IndexPreTransform) or chain is None or len(chain) != 1 or index.ntotal != 0:
        raise _nearly.IndexFileError(f"read_VectorTransform: {fname} does not hold a transform written by "
                                     "write_VectorTransform")
    return chain[0]
