"""What the standalone benchmark scripts measure the same way: recall@k
against exact results, and queries per second (best of a few runs)."""
import json
import os
import platform
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "shared", "data", "pypi-minilm-100k.npz")


def libraries(threads):
    """faiss and nearly, both set to the same thread count."""
    import faiss
    import nearly
    for lib in (faiss, nearly):
        lib.omp_set_num_threads(threads)
    return faiss, nearly


def load_real():
    """The real embeddings: (base, queries) as float32."""
    with np.load(DATA) as z:
        return z["base"].astype(np.float32), z["queries"].astype(np.float32)


def real_problem(threads, k=10, inner_product=False):
    """The common setup: (faiss, nearly) at threads, the real base and
    queries (contiguous float32), and each query's exact k nearest ids."""
    faiss, nearly = libraries(threads)
    xb, xq = (np.ascontiguousarray(x) for x in load_real())
    exact = nearly.IndexFlatIP(xb.shape[1]) if inner_product else nearly.IndexFlatL2(xb.shape[1])
    exact.add(xb)
    return faiss, nearly, xb, xq, exact.search(xq, k)[1]


def recall(I, gt, k):
    """Mean fraction of each query's k true neighbours among its results (-1 ignored)."""
    return float(np.mean([len(set(a[a >= 0]) & set(b)) / k for a, b in zip(I, gt)]))


def best_time(fn, runs=3):
    """Seconds of fn(), the best of runs."""
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def best_qps(index, xq, k, runs=3):
    """Queries per second of index.search(xq, k), the best of runs."""
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        index.search(xq, k)
        best = min(best, time.perf_counter() - t)
    return len(xq) / best


def sweep(index, xq, gt, k, knob, values, set_knob):
    """Recall@k and QPS at each value of a search knob (set_knob(index, v)):
    [{knob: v, "recall": ..., "qps": ...}, ...]."""
    points = []
    for v in values:
        set_knob(index, v)
        I = index.search(xq, k)[1]
        points.append({knob: v, "recall": recall(I, gt, k), "qps": best_qps(index, xq, k)})
    return points


def points_text(points, knob, label):
    """One line's worth of sweep() points: "<label><value> recall/QPS ..."."""
    return "  ".join(f"{label}{p[knob]} {p['recall']:.3f}/{p['qps']:.0f}" for p in points)


def write_results(path, out):
    """Writes a benchmark's JSON (out, with the machine added) to path."""
    out = dict(out, machine=platform.machine(), cpu_count=os.cpu_count())
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
