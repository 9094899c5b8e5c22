"""faiss's IOWriter / IOReader objects for write_index and read_index: index
bytes to and from a Python callback (a socket, a pipe, cloud storage), a
byte vector, or a file, possibly through a buffer.

An index is serialized whole and handed to the writer in chunks (the index
once more in memory, as faiss's VectorIOWriter does); a reader takes exactly
one index's bytes, the size read from the header first, so several indexes
can follow each other in one stream and a pipe is never read past its index.
"""
import os

import numpy as np

from . import _nearly
from .compat import UInt8Vector

_HEADER = 24  # magic (8), format version (4), flags (4), payload size (8); then the payload and an 8-byte checksum
_FRAMED_MAGIC = b"NEARLYIX"
_UNFRAMED_MAGICS = (b"NEARLYMV", b"NEARLYMU")  # the multi-vector indexes: no total size


def _as_bytes_view(ptr, size, nitems):
    """The bytes a faiss-style (ptr, size, nitems) call names: ptr is an array
    (swig_ptr's result)."""
    if not isinstance(ptr, np.ndarray):
        raise TypeError(f"expected an array from swig_ptr, got {type(ptr).__name__}")
    nbytes = int(size) * int(nitems)
    flat = ptr.reshape(-1).view(np.uint8)
    if nbytes > flat.size:
        raise ValueError(f"{nbytes} bytes asked of an array of {flat.size}")
    return flat[:nbytes]


class IOWriter:
    """Base of the writers: write(bytes-like) takes the next bytes."""

    def write(self, data):
        raise NotImplementedError

    def flush(self):
        pass

    def __call__(self, ptr, size, nitems):
        self.write(_as_bytes_view(ptr, size, nitems).tobytes())
        return nitems


class IOReader:
    """Base of the readers: read(n) returns up to n bytes, fewer at the end."""

    def read(self, n):
        raise NotImplementedError

    def read_exactly(self, n, what="index"):
        parts, got = [], 0
        while got < n:
            chunk = self.read(n - got)
            if not chunk:
                raise _nearly.IndexFileError(
                    f"cannot read index: the reader ended after {got} of the {n} bytes of the {what} (truncated)")
            parts.append(bytes(chunk))
            got += len(chunk)
        return b"".join(parts)

    def read_to_end(self, chunk=1 << 20):
        parts = []
        while True:
            part = self.read(chunk)
            if not part:
                return b"".join(parts)
            parts.append(bytes(part))

    def __call__(self, ptr, size, nitems):
        out = _as_bytes_view(ptr, size, nitems)
        data = self.read(out.size)
        out[: len(data)] = np.frombuffer(data, dtype=np.uint8)
        return len(data) // max(int(size), 1)


class PyCallbackIOWriter(IOWriter):
    """callback(bytes) takes each chunk of at most bs bytes."""

    def __init__(self, callback, bs=1 << 20):
        self.callback, self.bs = callback, int(bs)

    def write(self, data):
        if not callable(self.callback):
            raise TypeError(f"PyCallbackIOWriter: the callback is not callable ({type(self.callback).__name__})")
        view = memoryview(data).cast("B")
        for i in range(0, len(view), self.bs):
            self.callback(view[i:i + self.bs].tobytes())


class PyCallbackIOReader(IOReader):
    """callback(n) returns up to n bytes (asked at most bs at a time); b""
    at the end."""

    def __init__(self, callback, bs=1 << 20):
        self.callback, self.bs = callback, int(bs)

    def read(self, n):
        if not callable(self.callback):
            raise TypeError(f"PyCallbackIOReader: the callback is not callable ({type(self.callback).__name__})")
        parts, got = [], 0
        while got < n:
            part = self.callback(min(self.bs, n - got))
            if not part:
                break
            parts.append(bytes(part))
            got += len(part)
        return b"".join(parts)


class VectorIOWriter(IOWriter):
    """The bytes go to .data (a UInt8Vector: vector_to_array(writer.data))."""

    def __init__(self):
        self.data = UInt8Vector()

    def write(self, data):
        chunk = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
        start = self.data.size()
        self.data.resize(start + chunk.size)
        self.data._data[start:start + chunk.size] = chunk


class VectorIOReader(IOReader):
    """Reads .data (fill it with copy_array_to_vector) from position rp."""

    def __init__(self):
        self.data = UInt8Vector()
        self.rp = 0

    def read(self, n):
        end = min(self.data.size(), self.rp + int(n))
        out = self.data._data[self.rp:end].tobytes()
        self.rp = end
        return out


class ZeroCopyIOReader(IOReader):
    """faiss's ZeroCopyIOReader(ptr, size): reads a serialized index from
    memory (swig_ptr(array) is the array itself in nearly), from position
    rp. Its bytes are copied into the index as they are read: nearly's
    indexes own their memory."""

    def __init__(self, data, size=None):
        if not isinstance(data, np.ndarray):
            raise TypeError("ZeroCopyIOReader: pass swig_ptr(array) (or the array itself)")
        flat = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
        size = flat.size if size is None else int(size)
        if not 0 <= size <= flat.size:
            raise ValueError(f"ZeroCopyIOReader: size {size} past the array's {flat.size} bytes")
        self._data, self.total, self.rp = flat[:size], size, 0

    def read(self, n):
        end = min(self.total, self.rp + int(n))
        out = self._data[self.rp:end].tobytes()
        self.rp = end
        return out

    def reset(self):
        self.rp = 0


class FileIOWriter(IOWriter):
    """A file opened for writing (a path, or a binary file object)."""

    def __init__(self, f):
        self._own = not hasattr(f, "write")
        self.f = open(os.fspath(f), "wb") if self._own else f

    def write(self, data):
        self.f.write(data)

    def flush(self):
        self.f.flush()

    def __del__(self):
        if getattr(self, "_own", False):
            self.f.close()


class FileIOReader(IOReader):
    """A file opened for reading (a path, or a binary file object)."""

    def __init__(self, f):
        self._own = not hasattr(f, "read")
        self.f = open(os.fspath(f), "rb") if self._own else f

    def read(self, n):
        return self.f.read(int(n))

    def __del__(self):
        if getattr(self, "_own", False):
            self.f.close()


class BufferedIOWriter(IOWriter):
    """Hands writer chunks of bsz bytes; the rest on flush (or deletion)."""

    def __init__(self, writer, bsz=1 << 20):
        self.writer, self.bsz, self.buf = writer, int(bsz), bytearray()

    def write(self, data):
        self.buf += memoryview(data).cast("B")
        while len(self.buf) >= self.bsz:
            self.writer.write(bytes(self.buf[: self.bsz]))
            del self.buf[: self.bsz]

    def flush(self):
        if self.buf:
            self.writer.write(bytes(self.buf))
            self.buf.clear()
        self.writer.flush()

    def __del__(self):
        try:
            self.flush()
        except Exception:  # noqa: BLE001 - a destructor must not raise
            pass


class BufferedIOReader(IOReader):
    """Asks reader for bsz bytes at a time."""

    def __init__(self, reader, bsz=1 << 20):
        self.reader, self.bsz, self.buf = reader, int(bsz), b""

    def read(self, n):
        n = int(n)
        while len(self.buf) < n:
            more = self.reader.read(self.bsz)
            if not more:
                break
            self.buf += bytes(more)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def write_to(writer, data):
    writer.write(memoryview(data).cast("B"))
    writer.flush()


# What write_index(None, ...) writes: faiss's "null" index, read back as None.
NULL_INDEX = b"NEARLYNO"


def read_one_index(reader):
    """One serialized index's bytes from the reader: the framed ones by the
    size in their header, the multi-vector ones (no total size) up to the
    reader's end."""
    head = reader.read_exactly(8, "index header")
    if head == _FRAMED_MAGIC:
        rest = reader.read_exactly(_HEADER - 8, "index header")
        size = int.from_bytes(rest[8:16], "little")
        return head + rest + reader.read_exactly(size + 8)
    if head in _UNFRAMED_MAGICS:
        return head + reader.read_to_end()
    if head == b"NEARLYRM":  # the row-wise min-max codec: a flag and the inner index's size
        rest = reader.read_exactly(9, "index header")
        return head + rest + reader.read_exactly(int.from_bytes(rest[1:9], "little"))
    if head == NULL_INDEX:
        return head
    # Anything else is refused at once (reading on could never end).
    return head
