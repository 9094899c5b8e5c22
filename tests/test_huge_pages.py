"""Big arrays read at random (Flat vectors, HNSW blocks) ask the kernel for
2 MiB pages: their mappings carry madvise(MADV_HUGEPAGE), shown as the "hg"
flag in /proc/self/smaps. The advice is what we control and check; whether
the kernel grants huge pages depends on the machine."""
import os
import subprocess
import sys

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


def test_environment_variable_turns_the_advice_off():
    """NEARLY_HUGE_PAGES=0 (read once, at the first big allocation): ordinary pages."""
    code = (
        "import numpy as np, nearly, sys; sys.path.insert(0, %r); from test_huge_pages import advised_bytes; "
        "x = np.ones((20000, 256), np.float32); before = advised_bytes(); "
        "i = nearly.IndexFlatIP(256); i.add(x); print(advised_bytes() - before)" % os.path.dirname(__file__)
    )
    for value, advised in (("0", False), ("1", True)):
        env = dict(os.environ, NEARLY_HUGE_PAGES=value)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert (int(out.stdout.strip()) >= 20000 * 256 * 4) == advised, (value, out.stdout, out.stderr)
