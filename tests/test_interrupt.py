"""Ctrl-C during a long native call raises KeyboardInterrupt (and the index
stays usable)."""
import os
import signal

import numpy as np
import pytest

import nearly
from _testutil import seconds_until_interrupted


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name != "posix", reason="needs POSIX signals")
def test_ctrl_c_interrupts_long_search():
    rng = np.random.default_rng(0)
    xb = rng.standard_normal((100_000, 128)).astype(np.float32)
    xq = rng.standard_normal((20_000, 128)).astype(np.float32)  # ~0.5 TFLOP: tens of seconds uninterrupted
    index = nearly.IndexFlatL2(128)
    index.add(xb)
    elapsed = seconds_until_interrupted(lambda: index.search(xq, 10))
    assert elapsed < 10, f"the interrupt took {elapsed:.1f}s to land"
    # Still usable after the interrupt.
    D, I = index.search(xb[:3], 1)
    np.testing.assert_array_equal(I[:, 0], [0, 1, 2])


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name != "posix", reason="needs POSIX signals")
def test_ctrl_c_interrupts_kmeans():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200_000, 64)).astype(np.float32)  # ~100 GFLOP per iteration, 25 iterations
    km = nearly.Kmeans(64, 4096, niter=25)
    elapsed = seconds_until_interrupted(lambda: km.train(x))
    assert elapsed < 10, f"the interrupt took {elapsed:.1f}s to land"
    assert km.centroids is None


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name != "posix", reason="needs POSIX signals")
def test_ctrl_c_interrupts_a_long_add_and_adds_nothing():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200_000, 256)).astype(np.float32)  # 9-bit RaBitQ: ~200 us a vector, tens of seconds
    index = nearly.IndexRaBitQ(256, nearly.METRIC_L2, 9)
    index.train(x[:1000])
    elapsed = seconds_until_interrupted(lambda: index.add(x))
    assert elapsed < 10, f"the interrupt took {elapsed:.1f}s to land"
    assert index.ntotal == 0
    index.add(x[:10])
    assert index.ntotal == 10


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name != "posix", reason="needs POSIX signals")
def test_ctrl_c_interrupts_a_slow_ivf_encoder_within_a_block():
    """add() works in blocks of 65,536 vectors; a 9-bit RaBitQ code takes
    ~0.2 ms, so a block is seconds of encoding: Ctrl-C lands inside it, and
    the index keeps whole blocks only."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((200_000, 256)).astype(np.float32)
    index = nearly.IndexIVFRaBitQ(nearly.IndexFlatL2(256), 256, 16, nearly.METRIC_L2, True, 9)
    index.train(x[:2000])
    elapsed = seconds_until_interrupted(lambda: index.add(x))
    assert elapsed < 3, f"the interrupt took {elapsed:.1f}s to land"
    assert index.ntotal % 65536 == 0 and index.ntotal < len(x)
    index.add(x[:10])
    assert index.search(x[:1], 1)[1][0, 0] >= 0
