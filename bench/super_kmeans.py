"""SuperKMeans (k-means with ADSampling-pruned assignments) beside plain
k-means, nearly beside faiss-cpu, on the same data, the same thread count,
in the same run.

    python bench/super_kmeans.py [--threads 2] [--k 1024] [--out bench/results/super_kmeans.json]

Data: ../shared/data (100k MiniLM embeddings, 384-d), L2, every vector a
training point (max_points_per_centroid raised so nothing is sampled away).
Reported per library and method: training time, the final objective, the
per-iteration pruning rates, and the recall@10 of an IVF-Flat index on
those centroids (nprobe 16, 1,000 real queries) so that a faster clustering
is seen to cost no search quality.
"""
import argparse
import os
import time

import numpy as np

from search_metrics import real_problem, recall, write_results

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--k", type=int, default=1024)
    ap.add_argument("--niter", type=int, default=10)
    ap.add_argument("--nprobe", type=int, default=16)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "super_kmeans.json"))
    args = ap.parse_args()

    faiss, nearly, xb, xq, gt = real_problem(args.threads, 10)
    d = xb.shape[1]
    rows = []
    for lib in (nearly, faiss):
        for method in ("Kmeans", "SuperKmeans"):
            km = getattr(lib, method)(d, args.k, niter=args.niter, seed=1234, max_points_per_centroid=1 << 20)
            t = time.perf_counter()
            km.train(xb)
            train_s = time.perf_counter() - t
            q = lib.IndexFlatL2(d)
            q.add(km.centroids)
            ivf = lib.IndexIVFFlat(q, d, args.k)
            ivf.add(xb)
            ivf.nprobe = args.nprobe
            rec = recall(ivf.search(xq, 10)[1], gt, 10)
            rates = getattr(km, "gemm_pruning_rates", None)
            row = {"library": lib.__name__, "method": method, "train_s": train_s, "objective": float(km.obj[-1]),
                   "ivf_recall_at_10": rec,
                   "gemm_pruning_rates": None if rates is None else [float(r) for r in np.asarray(rates)]}
            rows.append(row)
            print(f"{lib.__name__:7s} {method:12s} {train_s:7.2f} s  objective {row['objective']:.6g}  "
                  f"IVF recall@10 {rec:.3f}" + ("" if rates is None else
                                                f"  pruned {np.mean(np.asarray(rates)[1:]):.3f}"), flush=True)
    write_results(args.out, {"threads": args.threads, "k": args.k, "niter": args.niter, "n": int(len(xb)),
                             "nprobe": args.nprobe, "rows": rows})


if __name__ == "__main__":
    main()
