"""Peak memory and time of write_index / read_index, nearly beside faiss.

    python bench/io_memory.py [--n 1000000] [--factory Flat] [--out bench/results/io_memory.json]

Each step runs in a fresh process that measures its peak resident set
during the step (Linux's VmHWM, reset before the step) above what it held
before, and the anonymous memory it kept (RssAnon: memory of its own, not a
mapped file's pages): writing an index of the real embeddings
(../shared/data, tiled with small noise up to --n), reading it back, and
reading it with IO_FLAG_MMAP, then searching it once. An index of B bytes
needs B to exist; what matters is how much more a write or a read takes on
top of that, and whether a mapped read takes any of its own. Also reports
the wall time of each step (one run: the disk and page cache make these
noisy).
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "shared", "data", "pypi-minilm-100k.npz")


def status_mb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(field)


def reset_peak():
    """Linux: VmHWM restarts from the current resident set (clear_refs 5)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def child(lib_name, step, path, n, factory):
    lib = __import__(lib_name)
    index = None
    if step == "write":
        with np.load(DATA) as z:
            base = z["base"].astype(np.float32)
        reps = -(-n // len(base))
        rng = np.random.default_rng(0)
        x = np.concatenate([base + rng.normal(0, 0.01, base.shape).astype(np.float32) for _ in range(reps)])[:n]
        del base
        index = lib.index_factory(x.shape[1], factory)
        index.train(x[:100_000])
        index.add(x)
        del x
    reset_peak()
    before, anon_before = status_mb("VmRSS"), status_mb("RssAnon")
    t = time.perf_counter()
    if step == "write":
        lib.write_index(index, path)
    elif step == "read":
        index = lib.read_index(path)
    else:  # "mmap": mapped, then one search that reads every vector of a flat index
        index = lib.read_index(path, lib.IO_FLAG_MMAP)
    seconds = time.perf_counter() - t
    if step == "mmap":
        index.search(np.zeros((1, index.d), np.float32), 1)
    assert index.ntotal == n
    peak = status_mb("VmHWM")
    print(json.dumps({"rss_before_mb": before, "peak_mb": peak, "extra_peak_mb": peak - before, "seconds": seconds,
                      "anon_added_mb": status_mb("RssAnon") - anon_before}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--factory", default="Flat")
    p.add_argument("--out", default=os.path.join(HERE, "results", "io_memory.json"))
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        return child(a.child[0], a.child[1], a.child[2], a.n, a.factory)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for lib in ("nearly", "faiss"):
            path = os.path.join(tmp, f"{lib}.index")
            for step in ("write", "read", "mmap"):
                out = subprocess.run([sys.executable, __file__, "--n", str(a.n), "--factory", a.factory,
                                      "--child", lib, step, path], check=True, capture_output=True, text=True)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                r["file_mb"] = os.path.getsize(path) / 2 ** 20
                rows[f"{lib} {step}"] = r
                print(f"{lib:6s} {step:5s}: file {r['file_mb']:8.1f} MB, resident before {r['rss_before_mb']:8.1f} MB, "
                      f"peak {r['peak_mb']:8.1f} MB (+{r['extra_peak_mb']:.1f}), own memory +{r['anon_added_mb']:.1f} MB, "
                      f"{r['seconds']:.2f} s", flush=True)
    res = {"command": "python bench/io_memory.py " + " ".join(sys.argv[1:]), "n": a.n, "factory": a.factory,
           "machine": platform.processor() or platform.machine(), "results": rows}
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
