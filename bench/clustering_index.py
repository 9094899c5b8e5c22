"""IVF training through faiss's clustering_index (k-means assigning through
an HNSW index instead of exact search), in nearly beside faiss-cpu, on the
same data, the same thread count, in the same run.

    python bench/clustering_index.py [--threads 2] [--nlist 4096] [--niter 10]

Data: ../shared/data (100k MiniLM embeddings, 384-d). Reported per library
and assignment (exact, IndexHNSWFlat(d, 32) with efSearch 16 and 64):
training seconds and the final k-means objective (sum of squared distances
of the points to their nearest centroid, computed exactly). Writes
bench/results/clustering_index.json.
"""
import argparse
import os
import time

import numpy as np

from search_metrics import libraries, load_real, write_results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--nlist", type=int, default=4096)
    ap.add_argument("--niter", type=int, default=10)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "clustering_index.json"))
    args = ap.parse_args()
    faiss, nearly = libraries(args.threads)
    xb, _ = load_real()
    xb = np.ascontiguousarray(xb)
    d = xb.shape[1]
    out = {"data": f"pypi-minilm-100k ({xb.shape[0]} x {d})", "threads": args.threads, "nlist": args.nlist,
           "niter": args.niter, "rows": []}
    for assign in ("exact", "hnsw32_ef16", "hnsw32_ef64"):
        for lib in (nearly, faiss):
            index = lib.IndexIVFFlat(lib.IndexFlatL2(d), d, args.nlist)
            index.cp.niter = args.niter
            if assign != "exact":
                hnsw = lib.IndexHNSWFlat(d, 32)
                hnsw.hnsw.efSearch = int(assign.split("ef")[1])
                index.clustering_index = hnsw
            t = time.perf_counter()
            index.train(xb)
            seconds = time.perf_counter() - t
            centroids = index.quantizer.reconstruct_n(0, args.nlist)
            D, _ = faiss.knn(xb, centroids, 1)
            row = {"library": lib.__name__, "assign": assign, "train_seconds": seconds,
                   "objective": float(D.astype(np.float64).sum())}
            out["rows"].append(row)
            print(row, flush=True)
    write_results(args.out, out)


if __name__ == "__main__":
    main()
