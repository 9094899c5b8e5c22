"""write_index / read_index / serialize_index / deserialize_index for every
nearly index: the native ones (C++, format "NEARLYIX") and the multi-vector
ones that live in Python (IndexMultiVectorFlat "NEARLYMV", IndexMuvera
"NEARLYMU"). read_index recognises the format from the file's first bytes."""
import os

import numpy as np

from . import _nearly
from .io_objects import NULL_INDEX, IOReader, IOWriter, read_one_index, write_to
from .multivector import IndexMultiVectorFlat, IndexMuvera, _TokenStoreIndex
from .rowwise_minmax import MAGIC as _ROWWISE_MAGIC
from .rowwise_minmax import IndexRowwiseMinMaxBase

_READERS = {b"NEARLYMV": IndexMultiVectorFlat.deserialize, b"NEARLYMU": IndexMuvera.deserialize,
            _ROWWISE_MAGIC: IndexRowwiseMinMaxBase.deserialize}
# The indexes that live in Python and write themselves (serialize()).
_PYTHON_INDEXES = (_TokenStoreIndex, IndexRowwiseMinMaxBase)
_READ_ONLY_FLAGS = 2 | 8 | 512  # IO_FLAG_READ_ONLY, IO_FLAG_MMAP's low bits, IO_FLAG_MMAP_IFC


def _path(fname):
    try:
        return os.fspath(fname)
    except TypeError:
        raise _nearly.InvalidArgumentError("the file name must be a str or os.PathLike") from None


def serialize_index(index, io_flags=0):
    """io_flags: IO_FLAG_SKIP_STORAGE writes a graph index (IndexHNSWFlat and
    its kinds) as its links alone; other indexes ignore it, as in faiss."""
    if index is None:  # faiss's null index
        return np.frombuffer(NULL_INDEX, dtype=np.uint8).copy()
    if isinstance(index, _PYTHON_INDEXES):
        data = index.serialize()
        return data if isinstance(data, np.ndarray) else np.frombuffer(data, dtype=np.uint8).copy()
    return _nearly.serialize_index(index, int(io_flags))


def deserialize_index(data, io_flags=0):
    # The magic alone decides (no copy of a big native index to look at it).
    head = data[:8].tobytes() if isinstance(data, np.ndarray) and data.ndim == 1 else bytes(data[:8]) if isinstance(
        data, (bytes, bytearray, memoryview)) else None
    if head == NULL_INDEX and len(data) == len(NULL_INDEX):
        return None
    if head is not None and head in _READERS:
        raw = data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
        index = _READERS[head](raw)
        if isinstance(index, _TokenStoreIndex):
            index.read_only = bool(io_flags & _READ_ONLY_FLAGS)
        return index
    return _nearly.deserialize_index(data, int(io_flags))


def write_index(index, fname, io_flags=0):
    """To a path, or to one of faiss's writer objects (PyCallbackIOWriter,
    VectorIOWriter, FileIOWriter, BufferedIOWriter). io_flags: as for
    serialize_index."""
    if isinstance(fname, IOWriter):
        return write_to(fname, serialize_index(index, io_flags))
    if index is None or isinstance(index, _PYTHON_INDEXES):
        data = serialize_index(index)
        path = _path(fname)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data.tobytes())
        os.replace(tmp, path)  # a crash never leaves half a file under the name
        return
    return _nearly.write_index(index, fname, int(io_flags))


def read_index(fname, io_flags=0):
    """From a path, or from one of faiss's reader objects (one index's bytes
    are taken from it)."""
    if isinstance(fname, IOReader):
        return deserialize_index(np.frombuffer(read_one_index(fname), dtype=np.uint8), io_flags)
    path = _path(fname)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if head == NULL_INDEX and not f.read(1):
                return None
            if head in _READERS:
                index = _READERS[head](head + f.read())
                if isinstance(index, _TokenStoreIndex):
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


def write_ProductQuantizer(pq, fname):
    """A ProductQuantizer alone to a file or writer (nearly's format): the
    codebook inside an empty IndexPQ, which read_ProductQuantizer takes
    apart again."""
    index = _nearly.IndexPQ(pq.d, pq.M, pq.nbits)
    index.pq = pq
    write_index(index, fname)


def read_ProductQuantizer(fname):
    index = read_index(fname)
    if type(index) is not _nearly.IndexPQ or index.ntotal != 0:
        raise _nearly.IndexFileError(f"read_ProductQuantizer: {fname} does not hold a quantizer written by "
                                     "write_ProductQuantizer")
    return index.pq


def write_index_binary(index, fname):
    if isinstance(fname, IOWriter):
        return write_to(fname, _nearly.serialize_index_binary(index))
    return _nearly.write_index_binary(index, fname)


def read_index_binary(fname, io_flags=0):
    if isinstance(fname, IOReader):
        return _nearly.deserialize_index_binary(np.frombuffer(read_one_index(fname), dtype=np.uint8))
    return _nearly.read_index_binary(fname, io_flags)
