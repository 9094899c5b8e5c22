"""faiss's writer / reader objects: write_index and read_index through a
Python callback, a byte vector, a file, a buffer; an index through a pipe;
several indexes in one stream; truncated streams and bad callbacks raise."""
import io
import os
import threading

import numpy as np
import pytest

import nearly

faiss = pytest.importorskip("faiss")
LIBS = [faiss, nearly]


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).standard_normal((1000, 32)).astype("float32")


def flat(lib, x):
    index = lib.IndexFlatL2(32)
    index.add(x)
    return index


@pytest.mark.parametrize("bsz", [0, 123, 2345])
@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_write_through_callback(lib, x, bsz):
    f = io.BytesIO()
    writer = lib.PyCallbackIOWriter(f.write, 1234)
    if bsz:
        writer = lib.BufferedIOWriter(writer, bsz)
    lib.write_index(flat(lib, x), writer)
    del writer  # commits what a buffer holds
    back = lib.deserialize_index(np.frombuffer(f.getbuffer(), dtype="uint8"))
    np.testing.assert_array_equal(lib.vector_to_array(back.codes).view("float32").reshape(-1, 32), x)
    with pytest.raises(Exception):
        lib.write_index(flat(lib, x), lib.PyCallbackIOWriter("not callable"))


@pytest.mark.parametrize("bsz", [0, 123, 12345])
@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_read_through_callback(lib, x, bsz, tmp_path):
    fname = str(tmp_path / "flat.index")
    lib.write_index(flat(lib, x), fname)
    with open(fname, "rb") as f:
        reader = lib.PyCallbackIOReader(f.read, 1234)
        if bsz:
            reader = lib.BufferedIOReader(reader, bsz)
        back = lib.read_index(reader)
    assert back.ntotal == len(x)
    np.testing.assert_array_equal(back.reconstruct_n(0, len(x)), x)
    back = lib.read_index(lib.BufferedIOReader(lib.FileIOReader(fname), 1234))
    assert back.ntotal == len(x)
    with pytest.raises(Exception):
        lib.read_index(lib.PyCallbackIOReader("not callable"))


@pytest.mark.parametrize("lib", LIBS, ids=lambda m: m.__name__)
def test_transfer_through_a_pipe(lib, x):
    index = flat(lib, x)
    ref = index.search(x[:50], 10)
    rf, wf = os.pipe()
    out = {}
    reader_thread = threading.Thread(
        target=lambda: out.setdefault("index", lib.read_index(lib.PyCallbackIOReader(lambda n: os.read(rf, n)))))
    reader_thread.start()
    lib.write_index(index, lib.PyCallbackIOWriter(lambda b: os.write(wf, b)))
    reader_thread.join(timeout=60)  # the reader stops at the index's end, the pipe still open
    assert not reader_thread.is_alive()
    os.close(wf)
    os.close(rf)
    got = out["index"].search(x[:50], 10)
    np.testing.assert_array_equal(got[1], ref[1])


def test_vector_writer_and_reader(x):
    for lib in LIBS:
        index = lib.index_factory(32, "IVF8,SQ8")
        index.train(x)
        index.add(x)
        writer = lib.VectorIOWriter()
        lib.write_index(index, writer)
        data = lib.vector_to_array(writer.data)
        assert data.dtype == np.uint8 and data.size == writer.data.size() > 0
        reader = lib.VectorIOReader()
        lib.copy_array_to_vector(data, reader.data)
        back = lib.read_index(reader)
        np.testing.assert_array_equal(back.search(x[:20], 5)[1], index.search(x[:20], 5)[1])


def test_several_indexes_in_one_stream_and_binary(x, tmp_path):
    fname = str(tmp_path / "many.bin")
    writer = nearly.FileIOWriter(fname)
    sizes = (10, 300, 1000)
    for n in sizes:
        nearly.write_index(flat(nearly, x[:n]), writer)
    codes = np.random.default_rng(1).integers(0, 256, (100, 8), dtype=np.uint8)
    bindex = nearly.IndexBinaryFlat(64)
    bindex.add(codes)
    nearly.write_index_binary(bindex, writer)
    del writer
    reader = nearly.FileIOReader(fname)
    assert [nearly.read_index(reader).ntotal for _ in sizes] == list(sizes)
    back = nearly.read_index_binary(reader)
    np.testing.assert_array_equal(back.search(codes[:5], 3)[1], bindex.search(codes[:5], 3)[1])
    assert reader.read(1) == b""


def test_multivector_index_through_a_callback():
    rng = np.random.default_rng(2)
    index = nearly.IndexMultiVectorFlat(16)
    index.add([rng.standard_normal((5, 16)).astype("float32") for _ in range(20)])
    f = io.BytesIO()
    nearly.write_index(index, nearly.PyCallbackIOWriter(f.write))
    f.seek(0)
    back = nearly.read_index(nearly.PyCallbackIOReader(f.read))
    assert back.ntotal == 20


def test_truncated_or_corrupt_streams_raise(x):
    data = nearly.serialize_index(flat(nearly, x)).tobytes()
    for cut in (0, 5, 24, 100, len(data) - 1):
        with pytest.raises(nearly.IndexFileError):
            nearly.read_index(nearly.PyCallbackIOReader(io.BytesIO(data[:cut]).read))
    bad = bytearray(data)
    bad[len(data) // 2] ^= 0xFF
    with pytest.raises(nearly.IndexFileError):
        nearly.read_index(nearly.PyCallbackIOReader(io.BytesIO(bytes(bad)).read))
    huge = bytearray(data)
    huge[16:24] = (2 ** 62).to_bytes(8, "little")  # a size no stream holds
    with pytest.raises(nearly.IndexFileError):
        nearly.read_index(nearly.PyCallbackIOReader(io.BytesIO(bytes(huge)).read))


def test_reader_call_fills_an_array(tmp_path):
    x = np.random.default_rng(3).uniform(size=20)
    fname = str(tmp_path / "raw")
    x.tofile(fname)
    for lib in LIBS:
        with open(fname, "rb") as f:
            reader = lib.BufferedIOReader(lib.PyCallbackIOReader(f.read, 1234), 123)
            y = np.zeros_like(x)
            reader(lib.swig_ptr(y), y.nbytes, 1)
        np.testing.assert_array_equal(x, y)


def test_more_io_flags(x, tmp_path):
    fname = str(tmp_path / "ivfpq.index")
    for lib in LIBS:
        index = lib.index_factory(32, "IVF8,PQ8")
        index.train(x)
        index.add(x)
        index.nprobe = 4
        ref = index.search(x[:20], 5)
        lib.write_index(index, fname)
        for flag in ("IO_FLAG_SKIP_PRECOMPUTE_TABLE", "IO_FLAG_PQ_SKIP_SDC_TABLE"):
            back = lib.read_index(fname, getattr(lib, flag))
            back.nprobe = 4
            np.testing.assert_array_equal(back.search(x[:20], 5)[1], ref[1])
        flat_name = str(tmp_path / f"flat_{lib.__name__}.index")
        lib.write_index(flat(lib, x), flat_name)
        mapped = lib.read_index(flat_name, lib.IO_FLAG_MMAP_IFC)
        np.testing.assert_array_equal(mapped.reconstruct_n(0, len(x)), x)
    assert nearly.IO_FLAG_MMAP_IFC == faiss.IO_FLAG_MMAP_IFC
    with pytest.raises(RuntimeError, match="read-only|cannot be modified"):
        mapped.add(x[:3])


def test_product_quantizer_files(tmp_path):
    """faiss's write_ProductQuantizer / read_ProductQuantizer (to a path or
    a writer): the codebook and shape back, and codes equal to faiss's from
    the same codebook."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3000, 32)).astype(np.float32)
    index = nearly.IndexPQ(32, 4, 6)
    index.train(x)
    path = str(tmp_path / "pq")
    nearly.write_ProductQuantizer(index.pq, path)
    back = nearly.read_ProductQuantizer(path)
    assert (back.d, back.M, back.nbits, back.dsub, back.ksub) == (32, 4, 6, 8, 64)
    np.testing.assert_array_equal(nearly.vector_to_array(back.centroids), nearly.vector_to_array(index.pq.centroids))
    np.testing.assert_array_equal(back.compute_codes(x[:50]), index.pq.compute_codes(x[:50]))
    fpq = faiss.ProductQuantizer(32, 4, 6)
    faiss.copy_array_to_vector(nearly.vector_to_array(back.centroids), fpq.centroids)
    np.testing.assert_array_equal(fpq.compute_codes(x[:50]), back.compute_codes(x[:50]))
    writer = nearly.VectorIOWriter()
    nearly.write_ProductQuantizer(index.pq, writer)
    reader = nearly.VectorIOReader()
    nearly.copy_array_to_vector(nearly.vector_to_array(writer.data), reader.data)
    assert nearly.read_ProductQuantizer(reader).M == 4
    nearly.write_index(nearly.IndexFlatL2(32), path)
    with pytest.raises(nearly.IndexFileError, match="write_ProductQuantizer"):
        nearly.read_ProductQuantizer(path)


def test_null_index_round_trips(tmp_path):
    """faiss's null index: write_index(None, ...) reads back as None (a
    file, a writer, serialize_index)."""
    path = str(tmp_path / "null")
    nearly.write_index(None, path)
    assert nearly.read_index(path) is None
    writer = nearly.VectorIOWriter()
    nearly.write_index(None, writer)
    reader = nearly.VectorIOReader()
    nearly.copy_array_to_vector(np.array(nearly.vector_to_array(writer.data)), reader.data)
    assert nearly.read_index(reader) is None
    assert nearly.deserialize_index(nearly.serialize_index(None)) is None
    # the magic with bytes after it is no null index
    with open(path, "ab") as f:
        f.write(b"x")
    with pytest.raises(nearly.IndexFileError):
        nearly.read_index(path)


@pytest.mark.parametrize("lib", [nearly, faiss], ids=["nearly", "faiss"])
def test_zero_copy_reader(lib):
    """faiss's ZeroCopyIOReader over serialize_index's bytes, as faiss code
    writes it, on both libraries: the same index back."""
    rng = np.random.default_rng(4)
    xb, xq = rng.random((200, 32), dtype=np.float32), rng.random((10, 32), dtype=np.float32)
    index = lib.index_factory(32, "SQfp16")
    index.add(xb)
    blob = lib.serialize_index(index)
    back = lib.read_index(lib.ZeroCopyIOReader(lib.swig_ptr(blob), blob.size))
    np.testing.assert_array_equal(back.search(xq, 5)[1], index.search(xq, 5)[1])
    if lib is nearly:
        with pytest.raises(nearly.IndexFileError):
            nearly.read_index(nearly.ZeroCopyIOReader(blob, blob.size - 9))
        with pytest.raises(ValueError):
            nearly.ZeroCopyIOReader(blob, blob.size + 1)
