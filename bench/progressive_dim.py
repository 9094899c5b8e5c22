"""faiss's ProgressiveDimClustering, nearly beside faiss: the same data,
k, steps and thread count, in the same run, with plain k-means of each
library beside it.

    python bench/progressive_dim.py [--threads 2] [--k 256] [--steps 10]

Data: ../shared/data (the 100k MiniLM embeddings, 384-d). For each
library: plain k-means (Kmeans, niter 10 and 25) and
ProgressiveDimClustering (niter 10 per step), the final objective (sum of
squared distances to the nearest centroid) and the time.

Writes bench/results/progressive_dim.json.
"""
import argparse
import os
import time

import numpy as np

from search_metrics import real_problem, write_results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--k", type=int, default=256)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "progressive_dim.json"))
    args = ap.parse_args()
    faiss, nearly, xb, _, _ = real_problem(args.threads)
    xb = np.array(xb, dtype=np.float32)  # writable: faiss's swig_ptr demands it
    n, d = xb.shape
    out = {"threads": args.threads, "n": n, "d": d, "k": args.k, "steps": args.steps, "rows": []}
    for lib in (nearly, faiss):
        for niter in (10, 25):
            km = lib.Kmeans(d, args.k, niter=niter, max_points_per_centroid=n)
            t = time.perf_counter()
            obj = km.train(xb)
            row = {"library": lib.__name__, "method": f"Kmeans niter={niter}", "obj": float(obj),
                   "seconds": time.perf_counter() - t}
            out["rows"].append(row)
            print(f"{row['library']:6s} {row['method']:28s} obj {row['obj']:12.1f}  {row['seconds']:6.2f} s", flush=True)
        clus = lib.ProgressiveDimClustering(d, args.k)
        clus.progressive_dim_steps = args.steps
        clus.max_points_per_centroid = n
        t = time.perf_counter()
        clus.train(n, lib.swig_ptr(xb), lib.ProgressiveDimIndexFactory())
        secs = time.perf_counter() - t
        # the objective of the final centroids in the full space
        cent = lib.vector_to_array(clus.centroids).reshape(args.k, d) if lib is faiss else clus.centroids.reshape(args.k, d)
        index = lib.IndexFlatL2(d)
        index.add(np.ascontiguousarray(cent))
        obj = float(index.search(xb, 1)[0].sum())
        row = {"library": lib.__name__, "method": f"ProgressiveDim steps={args.steps}", "obj": obj, "seconds": secs}
        out["rows"].append(row)
        print(f"{row['library']:6s} {row['method']:28s} obj {row['obj']:12.1f}  {row['seconds']:6.2f} s", flush=True)
    write_results(args.out, out)


if __name__ == "__main__":
    main()
