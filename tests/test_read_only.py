"""read_index with IO_FLAG_READ_ONLY / IO_FLAG_MMAP gives an index that searches
but refuses every write with a RuntimeError (faiss's flag values)."""
import numpy as np
import pytest

import nearly


def build(kind, x):
    if kind == "idmap-hnsw":
        index = nearly.index_factory(x.shape[1], "IDMap,HNSW16")
        index.add_with_ids(x, np.arange(len(x)) * 3)
    elif kind == "refine":
        index = nearly.index_factory(x.shape[1], "HNSW16,SQ8,RFlat")
        index.add(x)
    else:
        index = {"flat": nearly.IndexFlatL2, "hnsw": lambda d: nearly.IndexHNSWFlat(d, 16)}[kind](x.shape[1])
        index.add(x)
    return index


@pytest.mark.parametrize("flag", [nearly.IO_FLAG_READ_ONLY, nearly.IO_FLAG_MMAP])
@pytest.mark.parametrize("kind", ["flat", "hnsw", "idmap-hnsw", "refine"])
def test_read_only_index_refuses_writes(tmp_path, kind, flag):
    x = np.random.default_rng(0).standard_normal((200, 8)).astype(np.float32)
    index = build(kind, x)
    path = str(tmp_path / "i.nearly")
    nearly.write_index(index, path)
    ro = nearly.read_index(path, flag)
    for a, b in zip(ro.search(x[:5], 3), index.search(x[:5], 3)):
        np.testing.assert_array_equal(a, b)
    writes = [lambda: ro.add(x), lambda: ro.remove_ids(np.arange(3)), lambda: ro.reset()]
    if kind == "idmap-hnsw":
        writes[0] = lambda: ro.add_with_ids(x, np.arange(1000, 1200))
    for write in writes:
        with pytest.raises(RuntimeError):
            write()
    assert ro.ntotal == index.ntotal
    writable = nearly.read_index(path)
    writable.reset()
    assert writable.ntotal == 0
