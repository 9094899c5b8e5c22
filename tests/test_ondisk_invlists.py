"""OnDiskInvertedLists: IVF lists kept in a file of their own (faiss's
idioms: replace_invlists, merge_from_multiple / merge_ondisk, write_index
naming the file, IO_FLAG_ONDISK_SAME_DIR). Every search is checked against
the same index with its lists in memory."""
import os
import shutil

import numpy as np
import pytest

import nearly
from _testutil import randn, search_while

D = 24
FAMILIES = ["IVF32,Flat", "IVF32,PQ8", "IVF32,SQ8", "IVF32,PQ8x4fs", "IVF32,RaBitQ", "PCA16,IVF32,SQ4"]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    return randn(rng, 10000, D), randn(rng, 6000, D), randn(rng, 60, D)


def trained(spec, xt):
    index = nearly.index_factory(D, spec)
    index.train(xt)
    nearly.extract_index_ivf(index).nprobe = 8
    return index


def to_disk(index, path):
    ivf = nearly.extract_index_ivf(index)
    il = nearly.OnDiskInvertedLists(ivf.nlist, ivf.code_size, str(path))
    ivf.replace_invlists(il, True)
    return il


def written_on_disk(tmp_path, xt, xb, spec="IVF32,Flat"):
    """An index whose lists are in tmp_path / "l", filled with xb and
    written to tmp_path / "i"."""
    index = trained(spec, xt)
    to_disk(index, tmp_path / "l")
    index.add(xb)
    nearly.write_index(index, str(tmp_path / "i"))
    return index


def same_results(a, b, xq, k=10):
    Da, Ia = a.search(xq, k)
    Db, Ib = b.search(xq, k)
    np.testing.assert_array_equal(Ia, Ib)
    np.testing.assert_array_equal(Da, Db)


@pytest.mark.parametrize("spec", FAMILIES)
def test_adds_on_disk_search_like_memory(tmp_path, data, spec):
    xt, xb, xq = data
    mem = trained(spec, xt)
    disk = nearly.clone_index(mem)
    il = to_disk(disk, tmp_path / "lists.ivfdata")
    # Small batches: lists outgrow their slots many times (moves, file growth, new mappings).
    for i in range(0, len(xb), 250):
        mem.add(xb[i:i + 250])
        disk.add(xb[i:i + 250])
    assert disk.ntotal == mem.ntotal == il.compute_ntotal() == len(xb)
    same_results(mem, disk, xq)
    ivf_m, ivf_d = nearly.extract_index_ivf(mem), nearly.extract_index_ivf(disk)
    for l in (0, 5, 31):
        np.testing.assert_array_equal(ivf_m.invlists.get_ids(l), il.get_ids(l))
        np.testing.assert_array_equal(ivf_m.invlists.get_codes(l), ivf_d.invlists.get_codes(l))
    # The index file names the lists file: it stays small.
    nearly.write_index(disk, str(tmp_path / "a.index"))
    assert os.path.getsize(tmp_path / "a.index") < os.path.getsize(tmp_path / "lists.ivfdata") / 4
    del disk
    back = nearly.read_index(str(tmp_path / "a.index"))
    nearly.extract_index_ivf(back).nprobe = 8
    same_results(mem, back, xq)
    assert isinstance(nearly.downcast_InvertedLists(nearly.extract_index_ivf(back).invlists),
                      nearly.OnDiskInvertedLists)


def test_remove_update_reconstruct_reset(tmp_path, data):
    xt, xb, xq = data
    mem = trained("IVF32,Flat", xt)
    disk = nearly.clone_index(mem)
    to_disk(disk, tmp_path / "l")
    for index in (mem, disk):
        index.add(xb)
        index.make_direct_map()
        assert index.remove_ids(nearly.IDSelectorRange(1000, 4000)) == 3000
        index.update_vectors(np.arange(10, dtype="int64"), xb[4000:4010])
        index.add_with_ids(xb[:500], np.arange(10000, 10500, dtype="int64"))
    same_results(mem, disk, xq)
    np.testing.assert_array_equal(disk.reconstruct(3), xb[4003])
    np.testing.assert_array_equal(disk.reconstruct(10007), xb[7])
    disk.reset()
    assert disk.ntotal == 0 and nearly.downcast_InvertedLists(disk.invlists).totsize == 0
    disk.add(xb[:100])
    mem.reset()
    mem.add(xb[:100])
    same_results(mem, disk, xq)


def merge_ondisk(trained_index, shard_fnames, ivfdata_fname, shift_ids=False):
    """faiss.contrib.ondisk.merge_ondisk, step by step as faiss writes it."""
    ivfs = []
    for fname in shard_fnames:
        index = nearly.read_index(fname, nearly.IO_FLAG_MMAP)
        index_ivf = nearly.extract_index_ivf(index)
        ivfs.append(index_ivf.invlists)
        index_ivf.own_invlists = False
    index = trained_index
    index_ivf = nearly.extract_index_ivf(index)
    assert index.ntotal == 0
    invlists = nearly.OnDiskInvertedLists(index_ivf.nlist, index_ivf.code_size, ivfdata_fname)
    ivf_vector = nearly.InvertedListsPtrVector()
    for ivf in ivfs:
        ivf_vector.push_back(ivf)
    ntotal = invlists.merge_from_multiple(ivf_vector.data(), ivf_vector.size(), shift_ids)
    index.ntotal = index_ivf.ntotal = ntotal
    index_ivf.replace_invlists(invlists, True)
    invlists.this.disown()


@pytest.mark.parametrize("spec", ["IVF32,Flat", "IVF32,PQ8x4fs", "OPQ8,IVF32,PQ8"])
@pytest.mark.parametrize("shift_ids", [False, True])
def test_merge_ondisk(tmp_path, data, spec, shift_ids):
    xt, xb, xq = data
    index = trained(spec, xt)
    nearly.write_index(index, str(tmp_path / "trained.index"))
    ref = nearly.read_index(str(tmp_path / "trained.index"))
    ref.add(xb)
    nearly.extract_index_ivf(ref).nprobe = 8
    shards = []
    for b in range(4):
        part = nearly.read_index(str(tmp_path / "trained.index"))
        ids = np.arange(1500, dtype="int64") if shift_ids else np.arange(b * 1500, (b + 1) * 1500)
        part.add_with_ids(xb[b * 1500:(b + 1) * 1500], ids)
        shards.append(str(tmp_path / f"block_{b}.index"))
        nearly.write_index(part, shards[-1])
    index = nearly.read_index(str(tmp_path / "trained.index"))
    merge_ondisk(index, shards, str(tmp_path / "merged.ivfdata"), shift_ids)
    assert index.ntotal == len(xb)
    nearly.write_index(index, str(tmp_path / "populated.index"))
    populated = nearly.read_index(str(tmp_path / "populated.index"))
    nearly.extract_index_ivf(populated).nprobe = 8
    same_results(ref, populated, xq)


def test_moved_files_and_same_dir_flag(tmp_path, data):
    xt, xb, xq = data
    index = trained("IVF32,Flat", xt)
    to_disk(index, tmp_path / "aa.ondisk")
    index.add(xb)
    nearly.write_index(index, str(tmp_path / "aa.ivf"))
    D1, I1 = index.search(xq, 10)
    del index
    os.mkdir(tmp_path / "1")
    for name in ("aa.ondisk", "aa.ivf"):
        os.rename(tmp_path / name, tmp_path / "1" / name)
    with pytest.raises(FileNotFoundError, match="IO_FLAG_ONDISK_SAME_DIR"):
        nearly.read_index(str(tmp_path / "1" / "aa.ivf"))
    for flags in (nearly.IO_FLAG_ONDISK_SAME_DIR, nearly.IO_FLAG_ONDISK_SAME_DIR | nearly.IO_FLAG_MMAP):
        moved = nearly.read_index(str(tmp_path / "1" / "aa.ivf"), flags)
        moved.nprobe = 8
        D2, I2 = moved.search(xq, 10)
        np.testing.assert_array_equal(I1, I2)
        del moved


def test_read_only_opens(tmp_path, data):
    xt, xb, xq = data
    index = written_on_disk(tmp_path, xt, xb, "IVF32,SQ8")
    for flags in (nearly.IO_FLAG_READ_ONLY, nearly.IO_FLAG_MMAP):
        ro = nearly.read_index(str(tmp_path / "i"), flags)
        ro.nprobe = 8
        same_results(index, ro, xq)
        with pytest.raises(RuntimeError, match="read-only|IO_FLAG"):
            ro.add(xb[:3])
    # A second writable open while the first index holds the file: it
    # searches, and refuses changes with the reason (one writer per file).
    second = nearly.read_index(str(tmp_path / "i"))
    second.nprobe = 8
    same_results(index, second, xq)
    with pytest.raises(RuntimeError, match="open for writing by another index"):
        second.add(xb[:3])
    with pytest.raises(RuntimeError, match="open for writing by another index"):
        second.remove_ids(np.arange(3, dtype="int64"))
    assert second.ntotal == index.ntotal
    del index, second
    third = nearly.read_index(str(tmp_path / "i"))  # the writer is gone: writable again
    third.add(xb[:3])
    assert third.ntotal == len(xb) + 3


def test_readers_never_fault(tmp_path, data):
    """A read-only index on a lists file holds a shared lock: the file cannot
    be created anew under it; and a writer's reset keeps the file's size
    (a hole where the blocks were), so the reader's pages stay mapped."""
    xt, xb, xq = data
    written_on_disk(tmp_path, xt, xb)
    reader = nearly.read_index(str(tmp_path / "i"), nearly.IO_FLAG_READ_ONLY)
    with pytest.raises(RuntimeError, match="cannot be emptied"):
        nearly.OnDiskInvertedLists(32, reader.code_size, str(tmp_path / "l"))
    D0, I0 = reader.search(xq, 5)
    size = os.path.getsize(tmp_path / "l")
    del reader
    writer = nearly.read_index(str(tmp_path / "i"))
    late_reader = nearly.read_index(str(tmp_path / "i"), nearly.IO_FLAG_READ_ONLY)
    writer.reset()
    assert os.path.getsize(tmp_path / "l") == size
    late_reader.search(xq, 5)  # stale (one writer at a time is the rule), but no fault
    writer.add(xb[:10])
    assert writer.ntotal == 10


def test_serialized_copies_are_independent(tmp_path, data):
    """serialize_index, clone_index and pickle carry the lists themselves:
    the copy lives in memory and does not share (or need) the file."""
    import pickle
    xt, xb, xq = data
    index = trained("IVF32,PQ8", xt)
    to_disk(index, tmp_path / "l")
    index.add(xb)
    copies = [nearly.clone_index(index), nearly.deserialize_index(nearly.serialize_index(index)),
              pickle.loads(pickle.dumps(index))]
    D, I = index.search(xq, 10)
    del index
    os.unlink(tmp_path / "l")
    for c in copies:
        c.nprobe = 8
        assert nearly.downcast_InvertedLists(c.invlists).__class__ is nearly.ArrayInvertedLists
        D2, I2 = c.search(xq, 10)
        np.testing.assert_array_equal(I, I2)
        c.add(xb[:10])


def test_corrupt_or_missing_lists_file(tmp_path, data):
    xt, xb, xq = data
    written_on_disk(tmp_path, xt, xb)
    size = os.path.getsize(tmp_path / "l")
    shutil.copy(tmp_path / "l", tmp_path / "l.bak")
    with open(tmp_path / "l", "r+b") as f:
        f.truncate(size // 10)
    with pytest.raises(nearly.IndexFileError, match="does not match the index"):
        nearly.read_index(str(tmp_path / "i"))
    os.unlink(tmp_path / "l")
    with pytest.raises(FileNotFoundError):
        nearly.read_index(str(tmp_path / "i"))
    # A corrupt index file (its slot table) is refused, never followed.
    shutil.copy(tmp_path / "l.bak", tmp_path / "l")
    raw = bytearray(open(tmp_path / "i", "rb").read())
    for pos in range(len(raw) - 400, len(raw) - 9, 7):
        bad = bytearray(raw)
        bad[pos] ^= 0x5A
        open(tmp_path / "bad", "wb").write(bytes(bad))
        with pytest.raises(nearly.IndexFileError):
            nearly.read_index(str(tmp_path / "bad"))
        with pytest.raises((nearly.IndexFileError, RuntimeError)):
            nearly.read_index(str(tmp_path / "bad"), nearly.IO_FLAG_MMAP).search(xq, 5)


def test_bad_arguments(tmp_path, data):
    xt, xb, xq = data
    with pytest.raises(ValueError):
        nearly.OnDiskInvertedLists(0, 8, str(tmp_path / "x"))
    with pytest.raises(RuntimeError):
        nearly.OnDiskInvertedLists(8, 8, str(tmp_path / "no" / "such" / "dir"))
    index = trained("IVF32,Flat", xt)
    with pytest.raises(ValueError, match="nlist"):
        index.replace_invlists(nearly.OnDiskInvertedLists(16, index.code_size, str(tmp_path / "a")))
    with pytest.raises(ValueError, match="code_size"):
        index.replace_invlists(nearly.OnDiskInvertedLists(32, 8, str(tmp_path / "b")))
    other = trained("IVF32,Flat", xt)
    index.replace_invlists(other.invlists)  # another index's lists in memory: copied
    il = nearly.OnDiskInvertedLists(32, index.code_size, str(tmp_path / "c"))
    with pytest.raises(ValueError, match="nlist"):
        il.merge_from_multiple([trained("IVF16,Flat", xt).invlists])
    with pytest.raises(ValueError, match="inverted lists"):
        il.merge_from_multiple([np.zeros(3)])
    other.add(xb[:100])
    assert il.merge_from_multiple([other.invlists]) == 100
    with pytest.raises(RuntimeError, match="empty"):
        il.merge_from_multiple([other.invlists])
    with pytest.raises(ValueError, match="list number"):
        il.get_ids(32)
    index.ntotal = 99  # faiss's merge_ondisk announces ntotal first: checked by replace_invlists
    with pytest.raises(ValueError, match="ntotal was set to 99"):
        index.replace_invlists(il)
    index.ntotal = 100
    index.replace_invlists(il)
    assert index.ntotal == 100
    with pytest.raises(RuntimeError, match="already belong"):
        other.replace_invlists(il)
    with pytest.raises(RuntimeError, match="belong to an index"):
        il.merge_from_multiple([other.invlists])
    with pytest.raises(ValueError):
        index.ntotal = 5  # not empty: ntotal follows the lists


def test_searches_while_adding(tmp_path, data):
    """Adds move lists and map the file anew while other threads search:
    every search sees a consistent index (the lists' lock)."""
    xt, xb, xq = data
    index = trained("IVF32,Flat", xt)
    to_disk(index, tmp_path / "l")
    index.add(xb[:100])

    def adds():
        for i in range(100, len(xb), 97):
            index.add(xb[i:i + 97])

    errors = search_while(index, xq, 5, adds, len(xb))
    assert not errors
    mem = trained("IVF32,Flat", xt)
    mem.add(xb)
    same_results(mem, index, xq)
