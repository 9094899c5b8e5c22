"""Persistence: write/read, serialize/deserialize, pickle and deepcopy round trips,
and corrupt input (truncated, flipped bytes, wrong magic/version, empty, missing)
raising the documented exceptions instead of crashing.
"""
import copy
import os
import pickle
import struct

import numpy as np
import pytest

import nearly

D = 8
NB = 20


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((NB, D)).astype(np.float32), rng.standard_normal((5, D)).astype(np.float32)


def make(kind):
    xb, _ = _data()
    ids = np.arange(NB, dtype=np.int64) * 13 - 7
    if kind == "flatL2":
        index = nearly.IndexFlatL2(D)
    elif kind == "flatIP":
        index = nearly.IndexFlatIP(D)
    elif kind == "idmapL2":
        index = nearly.IndexIDMap(nearly.IndexFlatL2(D))
    elif kind == "idmap2IP":
        index = nearly.IndexIDMap2(nearly.IndexFlatIP(D))
    elif kind == "l2normIP":
        index = nearly.index_factory(D, "L2norm,Flat", nearly.METRIC_INNER_PRODUCT)
    elif kind == "l2normL2":
        index = nearly.index_factory(D, "L2norm,Flat", nearly.METRIC_L2)
    elif kind == "idmap2-factory":
        index = nearly.index_factory(D, "IDMap2,Flat", nearly.METRIC_L2)
    elif kind == "emptyL2":
        return nearly.IndexFlatL2(D)
    else:
        raise AssertionError(kind)
    if kind.startswith("idmap"):
        index.add_with_ids(xb, ids)
    else:
        index.add(xb)
    return index


KINDS = ["flatL2", "flatIP", "idmapL2", "idmap2IP", "l2normIP", "l2normL2", "idmap2-factory", "emptyL2"]


def assert_same_index(a, b):
    assert type(b) is type(a)
    for attr in ("d", "ntotal", "metric_type", "is_trained"):
        assert getattr(b, attr) == getattr(a, attr), attr
    _, xq = _data(1)
    for k in (1, 7, NB + 3):
        Da, Ia = a.search(xq, k)
        Db, Ib = b.search(xq, k)
        np.testing.assert_array_equal(Ia, Ib)
        np.testing.assert_array_equal(Da, Db)
    la, Dra, Ira = a.range_search(xq, 1.0 if a.metric_type == nearly.METRIC_INNER_PRODUCT else 12.0)
    lb, Drb, Irb = b.range_search(xq, 1.0 if a.metric_type == nearly.METRIC_INNER_PRODUCT else 12.0)
    np.testing.assert_array_equal(la, lb)
    np.testing.assert_array_equal(Ira, Irb)
    np.testing.assert_array_equal(Dra, Drb)


def assert_independent(a, b):
    """Adding to the copy leaves the original untouched."""
    n = a.ntotal
    x = np.full((2, D), 0.5, np.float32)
    if isinstance(b, nearly.IndexIDMap):
        b.add_with_ids(x, np.array([10 ** 9, 10 ** 9 + 1], dtype=np.int64))
    else:
        b.add(x)
    assert b.ntotal == n + 2 and a.ntotal == n


@pytest.mark.parametrize("kind", KINDS)
def test_write_read_round_trip(kind, tmp_path):
    index = make(kind)
    path = str(tmp_path / f"{kind}.index")
    nearly.write_index(index, path)
    assert os.path.getsize(path) > 0
    loaded = nearly.read_index(path)
    assert_same_index(index, loaded)
    assert_independent(index, loaded)
    # writing the loaded index again gives the same bytes
    path2 = str(tmp_path / f"{kind}-2.index")
    nearly.write_index(nearly.read_index(path), path2)
    assert open(path, "rb").read() == open(path2, "rb").read()


@pytest.mark.parametrize("kind", KINDS)
def test_serialize_round_trip(kind):
    index = make(kind)
    buf = nearly.serialize_index(index)
    assert isinstance(buf, np.ndarray) and buf.dtype == np.uint8 and buf.ndim == 1
    loaded = nearly.deserialize_index(buf)
    assert_same_index(index, loaded)
    np.testing.assert_array_equal(nearly.serialize_index(loaded), buf)
    assert_independent(index, loaded)


@pytest.mark.parametrize("kind", KINDS)
def test_serialize_equals_file_bytes(kind, tmp_path):
    index = make(kind)
    path = str(tmp_path / "x.index")
    nearly.write_index(index, path)
    assert bytes(nearly.serialize_index(index)) == open(path, "rb").read()


@pytest.mark.parametrize("kind", KINDS)
def test_pickle_round_trip(kind):
    index = make(kind)
    for proto in (2, pickle.HIGHEST_PROTOCOL):
        loaded = pickle.loads(pickle.dumps(index, protocol=proto))
        assert_same_index(index, loaded)
        assert_independent(index, loaded)


@pytest.mark.parametrize("kind", KINDS)
def test_deepcopy(kind):
    index = make(kind)
    cp = copy.deepcopy(index)
    assert_same_index(index, cp)
    assert_independent(index, cp)


def test_pickle_inside_container():
    a, b = make("flatL2"), make("idmap2IP")
    out = pickle.loads(pickle.dumps({"a": a, "b": [b, 3]}))
    assert_same_index(a, out["a"])
    assert_same_index(b, out["b"][0])


def test_idmap2_reconstruct_after_round_trip():
    index = make("idmap2IP")
    xb, _ = _data()
    for loaded in (nearly.deserialize_index(nearly.serialize_index(index)),
                   pickle.loads(pickle.dumps(index))):
        for j in (0, 7, NB - 1):
            np.testing.assert_array_equal(loaded.reconstruct(j * 13 - 7), xb[j])


def test_round_trip_after_remove_and_merge():
    a = make("idmapL2")
    a.remove_ids(np.array([-7, 6, 19], dtype=np.int64))
    b = nearly.IndexIDMap(nearly.IndexFlatL2(D))
    b.add_with_ids(np.ones((3, D), np.float32), np.array([1000, 1001, 1002], dtype=np.int64))
    a.merge_from(b)
    assert a.ntotal == NB - 3 + 3
    assert_same_index(a, nearly.deserialize_index(nearly.serialize_index(a)))


def test_large_index_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    xb = rng.standard_normal((20000, 64)).astype(np.float32)
    index = nearly.IndexFlatIP(64)
    index.add(xb)
    path = str(tmp_path / "big.index")
    nearly.write_index(index, path)
    loaded = nearly.read_index(path)
    np.testing.assert_array_equal(loaded.reconstruct_n(0, 20000), xb)


@pytest.mark.parametrize("desc", ["Flat", "IVF64,PQ8", "HNSW16", "IVF64,Flat"])
def test_streamed_file_equals_serialized_bytes(desc, tmp_path):
    """write_index streams through a 4 MiB buffer (arrays at least that big
    are written straight from the index) and checksums on the way;
    read_index reads each array straight into place: the file holds the
    bytes serialize_index gives, and each reads the other's."""
    rng = np.random.default_rng(4)
    xb = rng.standard_normal((20000, 64)).astype(np.float32)  # 5 MB of floats
    index = nearly.index_factory(64, desc)
    index.train(xb)
    index.add(xb)
    path = str(tmp_path / "s.index")
    nearly.write_index(index, path)
    with open(path, "rb") as f:
        on_disk = f.read()
    assert on_disk == bytes(nearly.serialize_index(index))
    assert os.listdir(tmp_path) == ["s.index"]  # no temporary left
    assert bytes(nearly.serialize_index(nearly.read_index(path))) == on_disk
    binary = nearly.IndexBinaryFlat(256)
    binary.add(rng.integers(0, 256, (200000, 32), dtype=np.uint8))  # 6.4 MB of codes
    nearly.write_index_binary(binary, path)
    with open(path, "rb") as f:
        assert f.read() == bytes(nearly.serialize_index_binary(binary))
    assert nearly.read_index_binary(path).ntotal == 200000


def test_failed_write_leaves_no_temporary(tmp_path):
    """The file is written under a temporary name of its own and renamed into
    place: a write that fails (here the name is a directory) raises and
    leaves nothing behind; a write over an existing file replaces it whole."""
    target = tmp_path / "dir.index"
    target.mkdir()
    (target / "keep").write_text("x")
    with pytest.raises(RuntimeError, match="could not write"):
        nearly.write_index(make("flatL2"), str(target))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.index"]
    assert (target / "keep").read_text() == "x"
    path = str(tmp_path / "keep.index")
    nearly.write_index(make("flatL2"), path)
    nearly.write_index(make("flatIP"), path)
    assert nearly.read_index(path).metric_type == nearly.METRIC_INNER_PRODUCT
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.index", "keep.index"]


def _status_mb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise AssertionError(field)


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux's peak-RSS reset")
def test_write_and_read_hold_no_second_copy(tmp_path):
    """Writing streams the index to the file and reading fills the index's
    own arrays: neither holds a second copy of a 256 MB index (bench/
    io_memory.py measures it beside faiss)."""
    index = nearly.IndexFlatL2(256)
    chunk = np.random.default_rng(5).standard_normal((65536, 256)).astype(np.float32)
    for _ in range(4):
        index.add(chunk)
    del chunk
    size_mb = index.ntotal * 256 * 4 / 2 ** 20
    path = str(tmp_path / "big.index")

    def extra_peak(fn):
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # VmHWM restarts from the current resident set
        before = _status_mb("VmRSS")
        out = fn()
        return _status_mb("VmHWM") - before, out

    grew, _ = extra_peak(lambda: nearly.write_index(index, path))
    assert grew < 0.25 * size_mb, f"write_index took {grew:.0f} MB more for a {size_mb:.0f} MB index"
    del index
    grew, loaded = extra_peak(lambda: nearly.read_index(path))
    assert loaded.ntotal == 4 * 65536
    assert grew < 1.25 * size_mb, f"read_index took {grew:.0f} MB for a {size_mb:.0f} MB index"


# ---------------------------------------------------------------- corrupt input


def _ser(kind="idmap2IP"):
    return bytes(nearly.serialize_index(make(kind)))


def _deser(b):
    return nearly.deserialize_index(np.frombuffer(b, dtype=np.uint8).copy())


@pytest.mark.parametrize("kind", ["flatL2", "idmap2IP", "l2normIP", "emptyL2"])
def test_truncated_buffer_every_offset(kind):
    good = _ser(kind)
    for n in range(len(good)):
        with pytest.raises(nearly.IndexFileError):
            _deser(good[:n])


def test_trailing_garbage_rejected():
    good = _ser()
    for extra in (b"\x00", b"garbage", good):
        with pytest.raises(nearly.IndexFileError):
            _deser(good + extra)


def test_truncated_file_many_offsets(tmp_path):
    good = _ser()
    path = str(tmp_path / "t.index")
    for n in sorted(set([0, 1, 7, 8, 12, 16, 23, 24, 25, 40, len(good) // 2, len(good) - 9,
                         len(good) - 8, len(good) - 1])):
        with open(path, "wb") as f:
            f.write(good[:n])
        with pytest.raises(nearly.IndexFileError):
            nearly.read_index(path)


@pytest.mark.parametrize("kind", ["flatL2", "idmap2IP", "l2normIP", "emptyL2"])
@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF])
def test_flipped_byte_anywhere(kind, mask):
    good = _ser(kind)
    accepted = []
    for pos in range(len(good)):
        bad = bytearray(good)
        bad[pos] ^= mask
        try:
            _deser(bytes(bad))
        except nearly.IndexFileError:
            continue
        accepted.append(pos)
    assert not accepted, f"corrupted byte(s) at offsets {accepted} of {len(good)} were accepted"


def test_flipped_byte_in_file(tmp_path):
    good = _ser()
    path = str(tmp_path / "f.index")
    for pos in range(0, len(good), 7):
        bad = bytearray(good)
        bad[pos] ^= 0x10
        with open(path, "wb") as f:
            f.write(bad)
        with pytest.raises(nearly.IndexFileError):
            nearly.read_index(path)


def test_wrong_magic():
    good = _ser()
    for bad in (b"X" + good[1:], b"\x00" * 8 + good[8:], b"FAISSIDX" + good[8:],
                good[::-1], b"\x00" * len(good)):
        with pytest.raises(nearly.IndexFileError):
            _deser(bad)


def test_faiss_file_rejected(tmp_path):
    faiss = pytest.importorskip("faiss")
    fi = faiss.IndexFlatL2(D)
    fi.add(_data()[0])
    path = str(tmp_path / "faiss.index")
    faiss.write_index(fi, path)
    with pytest.raises(nearly.IndexFileError):
        nearly.read_index(path)
    with pytest.raises(nearly.IndexFileError):
        nearly.deserialize_index(faiss.serialize_index(fi))


@pytest.mark.parametrize("version", [0, 9, 10, 255, 2 ** 31, 2 ** 32 - 1])
def test_unsupported_version(version):
    """Format (documented in cpp/include/nearly/io.h): 8-byte magic, u32 version, ...
    Versions 1 to the current one read; 0 and newer ones are refused."""
    good = _ser()
    assert good[:8] == b"NEARLYIX"
    (cur,) = struct.unpack_from("<I", good, 8)
    assert cur == 8
    if 1 <= version <= cur:
        pytest.skip("a version this nearly reads")
    bad = good[:8] + struct.pack("<I", version) + good[12:]
    with pytest.raises(nearly.IndexFileError, match="version"):
        _deser(bad)


def test_empty_inputs():
    with pytest.raises(nearly.IndexFileError):
        nearly.deserialize_index(np.zeros(0, dtype=np.uint8))


def test_empty_file(tmp_path):
    path = str(tmp_path / "empty.index")
    open(path, "wb").close()
    with pytest.raises(nearly.IndexFileError):
        nearly.read_index(path)


def test_missing_file(tmp_path):
    path = str(tmp_path / "does-not-exist.index")
    with pytest.raises(FileNotFoundError) as ei:
        nearly.read_index(path)
    assert isinstance(ei.value, RuntimeError)
    assert "does-not-exist.index" in str(ei.value)


def test_read_directory_raises(tmp_path):
    with pytest.raises(RuntimeError):
        nearly.read_index(str(tmp_path))


def test_write_to_missing_directory_raises(tmp_path):
    with pytest.raises(RuntimeError):
        nearly.write_index(make("flatL2"), str(tmp_path / "no" / "such" / "dir.index"))


def test_deserialize_bad_argument_types():
    good = nearly.serialize_index(make("flatL2"))
    for bad in (None, "abc", 3):
        with pytest.raises((TypeError, ValueError)):
            nearly.deserialize_index(bad)
    # a non-uint8 view of the same bytes: converted or refused, never misread
    try:
        out = nearly.deserialize_index(good.astype(np.int64))
    except (TypeError, ValueError, RuntimeError):
        pass
    else:
        assert_same_index(make("flatL2"), out)


def test_pickle_of_corrupt_state_raises():
    index = make("flatL2")
    blob = pickle.dumps(index, protocol=4)
    payload = bytes(nearly.serialize_index(index))
    i = blob.find(payload[:16])
    if i < 0:
        pytest.skip("serialized bytes not embedded verbatim in the pickle")
    bad = bytearray(blob)
    bad[i + len(payload) // 2] ^= 0xFF
    with pytest.raises(nearly.IndexFileError):
        pickle.loads(bytes(bad))


# ---------------------------------------------------------------- forged payloads (valid checksum)


M64 = (1 << 64) - 1


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M64


def _mix(h, w):
    return (_rotl(h ^ ((w * 0x9E3779B97F4A7C15) & M64), 31) * 0xC2B2AE3D27D4EB4F) & M64


def _checksum64(data):
    """Python port of nearly::checksum64 (cpp/src/io.cpp)."""
    h = [0x243F6A8885A308D3, 0x13198A2E03707344, 0xA4093822299F31D0, 0x082EFA98EC4E6C89]
    n = len(data)
    i = 0
    while i + 32 <= n:
        for lane in range(4):
            (w,) = struct.unpack_from("<Q", data, i + 8 * lane)
            h[lane] = _mix(h[lane], w)
        i += 32
    r = h[0] ^ _rotl(h[1], 17) ^ _rotl(h[2], 29) ^ _rotl(h[3], 43)
    for b in data[i:]:
        r = _mix(r, b)
    return _mix(r, n)


HEADER = 24


def _reseal(payload, variant="format2"):
    """Formats 2 and up (what nearly writes, with its current version): the
    checksum of the header and of the payload's checksum; the other variants
    are for older layouts."""
    version = struct.unpack_from("<I", _ser(), 8)[0] if variant == "format2" else 1
    head = b"NEARLYIX" + struct.pack("<IIQ", version, 0, len(payload))
    covered = {"format2": head + struct.pack("<Q", _checksum64(payload)), "header+payload": head + payload,
               "payload": payload}[variant]
    return head + payload + struct.pack("<Q", _checksum64(covered))


def _payload(kind):
    """The payload of a serialized index and the checksum variant that reseals it."""
    good = _ser(kind)
    payload = good[HEADER:-8]
    for variant in ("format2", "header+payload", "payload"):
        if _reseal(payload, variant) == good:
            return payload, variant
    pytest.skip("serialized format differs from the one this test knows (io.h changed?)")


def _load_or_reject(buf):
    """A forged but checksum-valid buffer is either rejected with IndexFileError or
    yields an index that is self-consistent and usable."""
    try:
        index = _deser(buf)
    except nearly.IndexFileError:
        return None
    assert index.d > 0 and index.ntotal >= 0
    xq = np.ones((2, index.d), np.float32)
    Dd, I = index.search(xq, 3)
    assert Dd.shape == I.shape == (2, 3)
    return index


def forge_every_byte(good, values=(0x00, 0xFF, 0x7F)):
    """Each byte of a serialized index's payload set to each value, resealed
    with a valid checksum: every forgery is rejected or loads usable (the
    families' own tests call this on their serialized indexes)."""
    payload = good[HEADER:-8]
    variant = next((v for v in ("format2", "header+payload", "payload") if _reseal(payload, v) == good), None)
    if variant is None:
        pytest.skip("serialized format differs from the one this test knows (io.h changed?)")
    for pos in range(len(payload)):
        for val in values:
            bad = bytearray(payload)
            if bad[pos] == val:
                continue
            bad[pos] = val
            _load_or_reject(_reseal(bytes(bad), variant))


@pytest.mark.parametrize("kind", ["flatL2", "idmap2IP", "l2normIP", "emptyL2"])
def test_forged_payload_bytes(kind):
    payload, variant = _payload(kind)
    rng = np.random.default_rng(7)
    for pos in range(len(payload)):
        for val in (0x00, 0xFF, int(rng.integers(256))):
            bad = bytearray(payload)
            if bad[pos] == val:
                continue
            bad[pos] = val
            _load_or_reject(_reseal(bytes(bad), variant))


@pytest.mark.parametrize("kind", ["flatL2", "idmap2IP", "l2normIP", "emptyL2"])
def test_forged_payload_u64_fields(kind):
    """Overwrite every 8-byte window with huge / negative / off-by-one counts."""
    payload, variant = _payload(kind)
    for pos in range(0, len(payload) - 7):
        (orig,) = struct.unpack_from("<Q", payload, pos)
        for val in (0, 1, orig + 1, orig - 1, 2 ** 31, 2 ** 62, M64, M64 // D):
            bad = bytearray(payload)
            struct.pack_into("<Q", bad, pos, val & M64)
            _load_or_reject(_reseal(bytes(bad), variant))


def test_forged_truncated_payloads():
    payload, variant = _payload("idmap2IP")
    for n in range(len(payload)):
        with pytest.raises(nearly.IndexFileError):
            _deser(_reseal(payload[:n], variant))


# ---------------------------------------------------------------- IO_FLAG_MMAP

MAPPED_KINDS = ["Flat", "IVF32,Flat", "IVF32,PQ8", "IVF32,PQ8+16", "IVF32,PQ8x4fs", "IVF32,SQ8", "IVF32,RaBitQ", "IDMap,IVF32,Flat",
                "PCA16,IVF32,Flat", "HNSW16", "PQ8", "IVF32,Flat,RFlat"]


@pytest.mark.parametrize("desc", MAPPED_KINDS)
def test_mapped_read_searches_as_the_file(desc, tmp_path):
    """read_index(path, IO_FLAG_MMAP) maps the file and uses the flat vectors
    and inverted lists in place: the same results as a plain read, the index
    read-only, and a copy of it (clone, serialize) its own."""
    rng = np.random.default_rng(6)
    xb, xq = rng.standard_normal((3000, 32)).astype(np.float32), rng.standard_normal((20, 32)).astype(np.float32)
    index = nearly.index_factory(32, desc)
    index.train(xb)
    if desc.startswith("IDMap"):
        index.add_with_ids(xb, np.arange(3000, dtype=np.int64) * 5 + 3)
    else:
        index.add(xb)
    path = str(tmp_path / "m.index")
    nearly.write_index(index, path)
    mapped = nearly.read_index(path, nearly.IO_FLAG_MMAP)
    assert mapped.ntotal == 3000
    for a, b in zip(index.search(xq, 10), mapped.search(xq, 10)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(RuntimeError, match="cannot be modified"):
        mapped.reset()
    copy = nearly.clone_index(mapped)
    copy.reset()
    assert copy.ntotal == 0 and mapped.ntotal == 3000
    assert bytes(nearly.serialize_index(mapped)) == bytes(nearly.serialize_index(index))


def test_mapped_file_replaced_or_removed_under_the_index(tmp_path):
    """write_index renames a new file into place, so a mapped index keeps
    the old file's pages, even once the name is gone."""
    rng = np.random.default_rng(7)
    xb, xq = rng.standard_normal((2000, 16)).astype(np.float32), rng.standard_normal((5, 16)).astype(np.float32)
    index = nearly.index_factory(16, "IVF16,Flat")
    index.train(xb)
    index.add(xb)
    path = str(tmp_path / "live.index")
    nearly.write_index(index, path)
    mapped = nearly.read_index(path, nearly.IO_FLAG_MMAP)
    expect = index.search(xq, 5)
    other = nearly.IndexFlatL2(16)
    other.add(xb[:10])
    nearly.write_index(other, path)  # a new file under the name
    np.testing.assert_array_equal(mapped.search(xq, 5)[1], expect[1])
    os.remove(path)
    np.testing.assert_array_equal(mapped.search(xq, 5)[1], expect[1])
    del mapped  # unmapped with its last user


def test_format_1_files_still_read():
    """Files of format 1 (before arrays were aligned for mapping) read, plain
    and mapped, with the results they gave when written."""
    here = os.path.join(os.path.dirname(__file__), "data")
    exp = np.load(os.path.join(here, "format_v1_expected.npz"))
    for name, key in (("format_v1_ivf8_flat.index", "ivf"), ("format_v1_ivf8_pq4x4fs.index", "fs")):
        _check_old_file(os.path.join(here, name), exp, key)
    for flags in (0, nearly.IO_FLAG_MMAP):
        flat = nearly.read_index(os.path.join(here, "format_v1_flat.index"), flags)
        np.testing.assert_array_equal(flat.reconstruct_n(0, flat.ntotal), exp["x"])


def test_format_2_hnsw_files_still_read():
    """HNSW files of format 2 (node blocks not aligned for mapping) read,
    plain and mapped (then copied into memory), with the results they gave
    when written: flat, fp16 side copies, SQ codes, PQ codes, binary."""
    here = os.path.join(os.path.dirname(__file__), "data")
    exp = np.load(os.path.join(here, "format_v2_expected.npz"))
    for name, key in (("hnsw_flat", "hnsw"), ("hnsw_sqfp16", "sqfp16"), ("hnsw_sq4", "sq4"), ("hnsw_pq4", "pq4")):
        _check_old_file(os.path.join(here, f"format_v2_{name}.index"), exp, key)
    _check_old_file(os.path.join(here, "format_v2_binary_hnsw.index"), exp, "bin", nearly.read_index_binary, "qb")


def _check_old_file(path, exp, key, read=None, queries="q"):
    """An old file read plain and mapped gives the results saved when it was written."""
    for flags in (0, nearly.IO_FLAG_MMAP):
        index = (read or nearly.read_index)(path, flags)
        D, I = index.search(exp[queries], 5)
        np.testing.assert_array_equal(I, exp[key + "_I"])
        np.testing.assert_array_equal(D, exp[key + "_D"])


@pytest.mark.parametrize("desc", ["HNSW16", "HNSW16,SQfp16", "HNSW16,SQ8", "HNSW16,SQ4", "HNSW16,PQ8"])
def test_mapped_hnsw_in_place(tmp_path, desc):
    """IO_FLAG_MMAP on an HNSW index: the node blocks and side copies are the
    file's pages (not read into the process), searches equal the index's,
    the index is read-only, deletes made before writing are kept."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3000, 32)).astype("float32")
    index = nearly.index_factory(32, desc)
    index.train(x)
    index.add(x)
    index.remove_ids(np.arange(0, 3000, 11))
    path = str(tmp_path / "hnsw.index")
    nearly.write_index(index, path)
    mapped = nearly.read_index(path, nearly.IO_FLAG_MMAP)
    assert mapped.ntotal == index.ntotal
    for ef in (16, 64):
        mapped.hnsw.efSearch = index.hnsw.efSearch = ef
        np.testing.assert_array_equal(mapped.search(x[:100], 10)[1], index.search(x[:100], 10)[1])
    sel = nearly.SearchParametersHNSW(efSearch=32, sel=nearly.IDSelectorRange(100, 900))
    np.testing.assert_array_equal(mapped.search(x[:20], 5, params=sel)[1], index.search(x[:20], 5, params=sel)[1])
    for change in (lambda: mapped.add(x[:2]), lambda: mapped.remove_ids(np.array([1])), mapped.reset):
        with pytest.raises(RuntimeError, match="cannot be modified"):
            change()
    with open("/proc/self/maps") as f:
        assert path in f.read()  # the file is mapped, not read
    back = nearly.deserialize_index(nearly.serialize_index(mapped))  # a mapped index writes like any other
    np.testing.assert_array_equal(back.search(x[:50], 5)[1], mapped.search(x[:50], 5)[1])
    os.remove(path)  # the mapping outlives the name
    np.testing.assert_array_equal(mapped.search(x[:50], 5)[1], back.search(x[:50], 5)[1])


@pytest.mark.parametrize("desc", ["PQ8", "PQ8x4fs", "SQ8", "SQ4", "RQ4x8", "LSH", "RaBitQ", "ZnLattice4x10_4"])
def test_mapped_flat_codes(tmp_path, desc):
    """IO_FLAG_MMAP on the flat-code indexes: their codes are the file's
    bytes (RaBitQ's, stored in another order than its memory layout, are
    read in); searches equal the index's; read-only."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3000, 32)).astype("float32")
    index = nearly.index_factory(32, desc)
    index.train(x)
    index.add(x)
    path = str(tmp_path / "codes.index")
    nearly.write_index(index, path)
    mapped = nearly.read_index(path, nearly.IO_FLAG_MMAP)
    D, I = mapped.search(x[:100], 10)
    D0, I0 = index.search(x[:100], 10)
    np.testing.assert_array_equal(I, I0)
    np.testing.assert_array_equal(D, D0)
    np.testing.assert_array_equal(mapped.reconstruct_n(0, 50), index.reconstruct_n(0, 50))
    with pytest.raises(RuntimeError, match="cannot be modified"):
        mapped.add(x[:2])
    with pytest.raises(RuntimeError, match="cannot be modified"):
        mapped.remove_ids(np.array([0]))
    back = nearly.deserialize_index(nearly.serialize_index(mapped))
    np.testing.assert_array_equal(back.search(x[:20], 5)[1], I0[:20, :5])
    os.remove(path)
    np.testing.assert_array_equal(mapped.search(x[:20], 5)[1], I0[:20, :5])


def test_mapped_bad_files(tmp_path):
    good = bytes(nearly.serialize_index(make("flatL2")))
    path = str(tmp_path / "bad.index")
    for data in (good[:20], good[:len(good) // 2], good + b"x", b"NOTNEARLY" + good[9:], b""):
        with open(path, "wb") as f:
            f.write(data)
        with pytest.raises(nearly.IndexFileError):
            nearly.read_index(path, nearly.IO_FLAG_MMAP)
    with pytest.raises(FileNotFoundError):
        nearly.read_index(str(tmp_path / "missing.index"), nearly.IO_FLAG_MMAP)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's RssAnon")
def test_mapped_read_takes_no_copy(tmp_path):
    """A mapped 128 MB flat index adds only its norms to the process's own
    (anonymous) memory; its vectors are the page cache's."""
    index = nearly.IndexFlatL2(256)
    index.add(np.random.default_rng(8).standard_normal((131072, 256)).astype(np.float32))
    path = str(tmp_path / "big.index")
    nearly.write_index(index, path)
    size_mb = os.path.getsize(path) / 2 ** 20
    del index
    before = _status_mb("RssAnon")
    mapped = nearly.read_index(path, nearly.IO_FLAG_MMAP)
    mapped.search(np.zeros((1, 256), np.float32), 3)  # touches every vector
    grew = _status_mb("RssAnon") - before
    assert grew < 0.1 * size_mb, f"a mapped read took {grew:.0f} MB of anonymous memory for a {size_mb:.0f} MB file"
    plain = nearly.read_index(path)
    assert _status_mb("RssAnon") - before > 0.9 * size_mb  # what a plain read takes
    del plain
