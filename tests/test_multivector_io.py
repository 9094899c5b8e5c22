"""faiss's write_index / read_index (and serialize_index) for the multi-vector
indexes, beside the native ones: round trips, read-only flags, corrupt files."""
import numpy as np
import pytest

import nearly


def docs(rng, n, d=16):
    lengths = rng.integers(1, 8, size=n)
    return rng.standard_normal((int(lengths.sum()), d)).astype(np.float32), lengths


@pytest.fixture(params=["flat", "muvera"])
def index(request, rng):
    x, n = docs(rng, 300)
    if request.param == "flat":
        idx = nearly.IndexMultiVectorFlat(16)
    else:
        cfg = nearly.FDEConfig(dimension=16, num_repetitions=4, num_simhash_projections=3, seed=2)
        idx = nearly.IndexMuvera(16, cfg, inner="Flat", k_factor=5)
    idx.add_with_ids(x, n, np.arange(len(n)) * 2 + 1)
    return idx


def test_write_read_round_trip(index, rng, tmp_path):
    q, qn = docs(rng, 5)
    D, I = index.search(q, qn, 10)
    path = tmp_path / "mv.index"
    nearly.write_index(index, str(path))
    back = nearly.read_index(str(path))
    assert type(back) is type(index) and back.ntotal == index.ntotal
    D2, I2 = back.search(q, qn, 10)
    np.testing.assert_array_equal(I2, I)
    np.testing.assert_array_equal(D2, D)
    back2 = nearly.deserialize_index(nearly.serialize_index(index))
    np.testing.assert_array_equal(back2.search(q, qn, 10)[1], I)
    back.add(q, qn)  # a plain read gives a writable index
    assert back.ntotal == index.ntotal + 5


def test_read_only_flags(index, rng, tmp_path):
    path = tmp_path / "mv.index"
    nearly.write_index(index, path)
    for flag in (nearly.IO_FLAG_READ_ONLY, nearly.IO_FLAG_MMAP):
        ro = nearly.read_index(path, flag)
        q, qn = docs(rng, 3)
        ro.search(q, qn, 2)
        with pytest.raises(RuntimeError):
            ro.add(q, qn)
        with pytest.raises(RuntimeError):
            ro.remove_ids(np.array([1]))
        with pytest.raises(RuntimeError):
            ro.reset()


def test_corrupt_and_truncated_files(index, tmp_path):
    path = tmp_path / "mv.index"
    nearly.write_index(index, path)
    data = bytearray(path.read_bytes())
    bad = tmp_path / "bad.index"
    for mutate in (lambda b: b[: len(b) // 2], lambda b: b[:-1], lambda b: b[:20] + bytes([b[20] ^ 1]) + b[21:]):
        bad.write_bytes(bytes(mutate(data)))
        with pytest.raises(nearly.IndexFileError):
            nearly.read_index(str(bad))
    with pytest.raises(FileNotFoundError):
        nearly.read_index(str(tmp_path / "missing.index"))


def test_native_indexes_unchanged(rng, tmp_path):
    x = rng.standard_normal((100, 8)).astype(np.float32)
    idx = nearly.IndexFlatL2(8)
    idx.add(x)
    nearly.write_index(idx, str(tmp_path / "f.index"))
    back = nearly.read_index(str(tmp_path / "f.index"), nearly.IO_FLAG_READ_ONLY)
    np.testing.assert_array_equal(back.search(x[:3], 2)[1], idx.search(x[:3], 2)[1])
    with pytest.raises(RuntimeError):
        back.add(x[:1])
