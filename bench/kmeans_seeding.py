"""k-means seeding (RANDOM, k-means++, AFK-MC2) in nearly beside faiss-cpu, on
the same data, the same thread count, in the same run.

    python bench/kmeans_seeding.py [--threads 2] [--ks 256 1024 4096] [--kmeans-k 1024]

Data: ../shared/data (100k MiniLM embeddings, 384-d).
Seeding alone: seconds, the objective of the seeds (sum over all points of
the squared distance to the nearest seed) and whether nearly picked faiss's
points. Then k-means from each seeding (niter 20, faiss's defaults
otherwise): training seconds and the objective per iteration. Writes
bench/results/kmeans_seeding.json.
"""
import argparse
import os
import time

import numpy as np

from search_metrics import libraries, load_real, write_results

METHODS = ["RANDOM", "KMEANS_PLUS_PLUS", "AFK_MC2"]


def objective(faiss, x, c):
    D, _ = faiss.knn(x, c, 1)
    return float(D.astype(np.float64).sum())


def seed(lib, x, k, method, seed_value=1):
    ci = lib.ClusteringInitialization(x.shape[1], k)
    ci.method = getattr(lib, "ClusteringInitMethod_" + method)
    ci.seed = seed_value
    c = np.zeros((k, x.shape[1]), np.float32)
    t = time.perf_counter()
    ci.init_centroids(len(x), lib.swig_ptr(x), lib.swig_ptr(c))
    return time.perf_counter() - t, c


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ks", type=int, nargs="+", default=[256, 1024, 4096])
    ap.add_argument("--kmeans-k", type=int, default=1024)
    ap.add_argument("--niter", type=int, default=20)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "kmeans_seeding.json"))
    args = ap.parse_args()
    faiss, nearly = libraries(args.threads)
    xb, _ = load_real()
    xb = np.ascontiguousarray(xb)
    out = {"data": f"pypi-minilm-100k ({xb.shape[0]} x {xb.shape[1]})", "threads": args.threads,
           "seeding": [], "kmeans": []}
    for k in args.ks:
        for method in METHODS:
            picks = {}
            for lib in (nearly, faiss):
                seconds, c = seed(lib, xb, k, method)
                picks[lib.__name__] = c
                row = {"library": lib.__name__, "method": method, "k": k, "seconds": seconds,
                       "seed_objective": objective(faiss, xb, c)}
                out["seeding"].append(row)
            same = float(np.mean((picks["nearly"] == picks["faiss"]).all(1)))
            for row in out["seeding"][-2:]:
                row["same_picks_as_faiss"] = same
            n_row, f_row = out["seeding"][-2:]
            print(f"seeding k={k} {method:17s} nearly {n_row['seconds']:7.2f} s  faiss {f_row['seconds']:7.2f} s "
                  f"({f_row['seconds'] / n_row['seconds']:.2f}x)  seed objective {n_row['seed_objective']:.0f}  "
                  f"same picks {same:.3f}", flush=True)
    for method in METHODS:
        for lib in (nearly, faiss):
            km = lib.Kmeans(xb.shape[1], args.kmeans_k, niter=args.niter, seed=1,
                            init_method=getattr(lib, "ClusteringInitMethod_" + method))
            t = time.perf_counter()
            km.train(xb)
            seconds = time.perf_counter() - t
            obj = [float(v) for v in km.obj]
            out["kmeans"].append({"library": lib.__name__, "method": method, "k": args.kmeans_k,
                                  "niter": args.niter, "seconds": seconds, "objective": obj})
            print(f"k-means k={args.kmeans_k} {method:17s} {lib.__name__:6s} {seconds:7.2f} s  "
                  f"first {obj[0]:.0f}  final {obj[-1]:.0f}", flush=True)
    write_results(args.out, out)


if __name__ == "__main__":
    main()
