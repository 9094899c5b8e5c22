"""Big arrays read at random (Flat vectors, HNSW blocks) ask the kernel for
2 MiB pages: their mappings carry madvise(MADV_HUGEPAGE), shown as the "hg"
flag in /proc/self/smaps. The advice is what we control and check; whether
the kernel grants huge pages depends on the machine."""
import os

import numpy as np
import pytest

import nearly

pytestmark = pytest.mark.skipif(
    not os.path.exists("/sys/kernel/mm/transparent_hugepage/enabled") or not os.path.exists("/proc/self/smaps"),
    reason="Linux with transparent huge pages only",
)


def advised_bytes():
    """Bytes of this process's mappings advised for huge pages."""
    total, size = 0, 0
    with open("/proc/self/smaps") as f:
        for line in f:
            if line.startswith("Size:"):
                size = int(line.split()[1]) * 1024
            elif line.startswith("VmFlags:") and "hg" in line.split()[1:]:
                total += size
    return total


def test_flat_vectors_are_advised_for_huge_pages():
    xb = np.random.default_rng(0).standard_normal((40_000, 256)).astype(np.float32)  # 40 MB
    before = advised_bytes()
    index = nearly.IndexFlatIP(256)
    index.add(xb)
    grown = advised_bytes() - before
    assert grown >= xb.nbytes, grown
    D, I = index.search(xb[:5], 1)
    assert (I[:, 0] == np.arange(5)).all()
    del index
    assert advised_bytes() - before < xb.nbytes


def test_small_flat_index_stays_on_the_ordinary_heap():
    before = advised_bytes()
    index = nearly.IndexFlatL2(16)
    index.add(np.ones((100, 16), np.float32))
    assert advised_bytes() == before


def test_hnsw_blocks_are_advised_for_huge_pages():
    xb = np.random.default_rng(1).standard_normal((20_000, 16)).astype(np.float32)
    before = advised_bytes()
    index = nearly.IndexHNSWFlat(16, 16)
    index.add(xb)
    assert advised_bytes() - before >= 20_000 * (16 * 4 + 32 * 4)  # vectors and level-0 links
    D, I = index.search(xb[:100], 1)
    assert (I[:, 0] == np.arange(100)).mean() >= 0.9
