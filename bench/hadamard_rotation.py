"""HadamardRotation ("HR") beside faiss-cpu's, and beside the dense random
rotation ("RR"), on the same data, the same thread count, in the same run.

    python bench/hadamard_rotation.py [--threads 2]

Data: ../shared/data (100k MiniLM embeddings, 384-d, padded to 512 by HR).
Reported: vectors rotated per second (best of 3) and the largest difference
between nearly's and faiss's rotated vectors. Writes
bench/results/hadamard_rotation.json.
"""
import argparse
import os
import time

import numpy as np

from search_metrics import libraries, load_real, write_results


def best_rate(fn, x, runs=3):
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        fn(x)
        best = min(best, time.perf_counter() - t)
    return len(x) / best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "hadamard_rotation.json"))
    args = ap.parse_args()
    faiss, nearly = libraries(args.threads)
    xb, _ = load_real()
    xb = np.ascontiguousarray(xb)
    d = xb.shape[1]
    out = {"data": f"pypi-minilm-100k ({xb.shape[0]} x {d})", "threads": args.threads, "rows": []}
    hr = {lib.__name__: lib.HadamardRotation(d, 12345) for lib in (nearly, faiss)}
    out["max_abs_diff_vs_faiss"] = float(np.abs(hr["nearly"].apply(xb[:2000]) - hr["faiss"].apply(xb[:2000])).max())
    for lib in (nearly, faiss):
        rr = lib.RandomRotationMatrix(d, d)
        rr.init(12345)
        for name, t in (("HR", hr[lib.__name__]), ("RR384", rr)):
            row = {"library": lib.__name__, "transform": name, "d_out": t.d_out,
                   "vectors_per_s": best_rate(t.apply, xb)}
            out["rows"].append(row)
            print(row, flush=True)
    print("max |nearly - faiss| over HR outputs:", out["max_abs_diff_vs_faiss"])
    write_results(args.out, out)


if __name__ == "__main__":
    main()
