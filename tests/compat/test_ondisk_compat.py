"""OnDiskInvertedLists against faiss-cpu's: the same code run on both
libraries (adds into on-disk lists, the merge_ondisk steps, write / read /
move with IO_FLAG_ONDISK_SAME_DIR), over the same coarse centroids, gives
the same neighbours on the real embeddings."""
import os

import numpy as np
import pytest

import nearly
from _hnswutil import real_data

faiss = pytest.importorskip("faiss")


@pytest.fixture(scope="module")
def setup():
    base, queries = real_data()
    xb, xq = base[:12000], queries[:100]
    km = faiss.Kmeans(xb.shape[1], 64, niter=10, seed=3)
    km.train(xb[:6000])
    return xb, xq, km.centroids


def ivf(lib, centroids):
    quantizer = lib.IndexFlatL2(centroids.shape[1])
    quantizer.add(centroids)
    index = lib.IndexIVFFlat(quantizer, centroids.shape[1], len(centroids))
    index.nprobe = 6
    return index


def on_disk_flow(lib, centroids, xb, xq, tmp):
    """faiss's tests' idioms: adds into OnDiskInvertedLists, a removal, the
    index written and read back from a moved directory."""
    index = ivf(lib, centroids)
    invlists = lib.OnDiskInvertedLists(index.nlist, index.code_size, os.path.join(tmp, "aa.ondisk"))
    index.replace_invlists(invlists)
    for i in range(0, len(xb), 3000):
        index.add(xb[i:i + 3000])
    index.remove_ids(lib.IDSelectorRange(5000, 6000))
    D1, I1 = index.search(xq, 10)
    lib.write_index(index, os.path.join(tmp, "aa.ivf"))
    del index, invlists
    os.mkdir(os.path.join(tmp, "moved"))
    for name in ("aa.ondisk", "aa.ivf"):
        os.rename(os.path.join(tmp, name), os.path.join(tmp, "moved", name))
    back = lib.read_index(os.path.join(tmp, "moved", "aa.ivf"), lib.IO_FLAG_ONDISK_SAME_DIR)
    back.nprobe = 6
    D2, I2 = back.search(xq, 10)
    np.testing.assert_array_equal(I1, I2)
    return D2, I2


def merge_flow(lib, centroids, xb, xq, tmp, shift_ids):
    """contrib's merge_ondisk, step by step."""
    shards = []
    for b in range(3):
        part = ivf(lib, centroids)
        ids = np.arange(4000) if shift_ids else np.arange(b * 4000, (b + 1) * 4000)
        part.add_with_ids(xb[b * 4000:(b + 1) * 4000], ids.astype("int64"))
        shards.append(os.path.join(tmp, f"block_{b}.index"))
        lib.write_index(part, shards[-1])
    lists = []
    for fname in shards:
        part = lib.read_index(fname, lib.IO_FLAG_MMAP)
        lists.append(part.invlists)
        part.own_invlists = False
    index = ivf(lib, centroids)
    invlists = lib.OnDiskInvertedLists(index.nlist, index.code_size, os.path.join(tmp, "merged.ivfdata"))
    vec = lib.InvertedListsPtrVector()
    for il in lists:
        vec.push_back(il)
    ntotal = invlists.merge_from_multiple(vec.data(), vec.size(), shift_ids)
    index.ntotal = ntotal
    index.replace_invlists(invlists, True)
    invlists.this.disown()
    lib.write_index(index, os.path.join(tmp, "populated.index"))
    back = lib.read_index(os.path.join(tmp, "populated.index"))
    back.nprobe = 6
    assert back.ntotal == len(xb[:12000])
    return back.search(xq, 10)


def test_on_disk_adds_match_faiss(setup, tmp_path):
    xb, xq, centroids = setup
    (tmp_path / "f").mkdir()
    (tmp_path / "n").mkdir()
    Df, If = on_disk_flow(faiss, centroids, xb, xq, str(tmp_path / "f"))
    Dn, In = on_disk_flow(nearly, centroids, xb, xq, str(tmp_path / "n"))
    assert (If == In).mean() > 0.995  # float ties aside
    np.testing.assert_allclose(Dn, Df, rtol=1e-4, atol=1e-3)
    assert not np.isin(In, np.arange(5000, 6000)).any()


@pytest.mark.parametrize("shift_ids", [False, True])
def test_merge_ondisk_matches_faiss(setup, tmp_path, shift_ids):
    xb, xq, centroids = setup
    (tmp_path / "f").mkdir()
    (tmp_path / "n").mkdir()
    Df, If = merge_flow(faiss, centroids, xb, xq, str(tmp_path / "f"), shift_ids)
    Dn, In = merge_flow(nearly, centroids, xb, xq, str(tmp_path / "n"), shift_ids)
    assert (If == In).mean() > 0.995
    np.testing.assert_allclose(Dn, Df, rtol=1e-4, atol=1e-3)
