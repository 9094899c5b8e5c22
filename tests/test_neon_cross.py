"""The NEON kernels, cross-compiled for AArch64 and run under qemu against the
scalar reference. Skips where no cross compiler or qemu is installed."""
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CXX = shutil.which("aarch64-linux-gnu-g++")
QEMU = shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")


@pytest.mark.skipif(not (CXX and QEMU), reason="needs aarch64-linux-gnu-g++ and qemu-aarch64")
def test_neon_kernels_match_scalar(tmp_path):
    exe = str(tmp_path / "neon_check")
    src = [os.path.join(ROOT, "tests", "native", "neon_check.cpp"),
           os.path.join(ROOT, "cpp", "src", "simd", "neon", "distance.cpp"),
           os.path.join(ROOT, "cpp", "src", "simd", "scalar", "distance.cpp"),
           os.path.join(ROOT, "cpp", "src", "simd", "neon", "unfused.cpp"),
           os.path.join(ROOT, "cpp", "src", "simd", "scalar", "unfused.cpp"),
           os.path.join(ROOT, "cpp", "src", "simd", "scalar", "pq.cpp"),
           os.path.join(ROOT, "cpp", "src", "simd", "scalar", "nearest.cpp")]
    subprocess.run([CXX, "-std=c++17", "-O2", "-static", "-ffp-contract=off", "-DNEARLY_HAVE_NEON",
                    "-I", os.path.join(ROOT, "cpp", "include"), *src, "-o", exe], check=True)
    run = subprocess.run([QEMU, exe], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "OK: 0 failures" in run.stdout
