"""faiss's `index.quantizer = IndexHNSWFlat(...)` idiom: train an IVF index
with its flat quantizer, swap in an HNSW graph over the same centroids, and
assign (add, search) through the graph. nearly beside faiss, the same data,
the same thread count, in the same run.

    python bench/ivf_quantizer_swap.py [--threads 2] [--nlist 4096] [--out bench/results/ivf_quantizer_swap.json]

Data: the 100k real embeddings (../shared/data) and their 1,000 queries.
For each library and quantizer (flat, then HNSW32 at efSearch 64): the time
of add() of all vectors and the QPS of search at nprobe 16 (best of 3), and
recall@10 against exact search.
"""
import argparse
import os
import time

import numpy as np

from search_metrics import libraries, load_real, recall, write_results

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--nlist", type=int, default=4096)
    ap.add_argument("--nprobe", type=int, default=16)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "ivf_quantizer_swap.json"))
    args = ap.parse_args()

    faiss, nearly = libraries(args.threads)
    xb, xq = load_real()
    d = xb.shape[1]
    exact = nearly.IndexFlatIP(d)
    exact.add(xb)
    gt = exact.search(xq, args.k)[1]
    rows = []
    for lib in (nearly, faiss):
        index = lib.index_factory(d, f"IVF{args.nlist},Flat", lib.METRIC_INNER_PRODUCT)
        index.cp.niter = 10
        t = time.perf_counter()
        index.train(xb)
        train_s = time.perf_counter() - t
        flat = index.quantizer
        hnsw = lib.IndexHNSWFlat(d, 32, lib.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = 80
        t = time.perf_counter()
        hnsw.add(flat.reconstruct_n(0, args.nlist))
        graph_s = time.perf_counter() - t
        hnsw.hnsw.efSearch = 64
        for name, q in (("flat", flat), ("HNSW32 efSearch 64", hnsw)):
            index.reset()
            index.quantizer = q
            t = time.perf_counter()
            index.add(xb)
            add_s = time.perf_counter() - t
            index.nprobe = args.nprobe
            best = float("inf")
            for _ in range(3):
                t = time.perf_counter()
                _, I = index.search(xq, args.k)
                best = min(best, time.perf_counter() - t)
            row = {"library": lib.__name__, "quantizer": name, "train_s": train_s, "graph_build_s": graph_s,
                   "add_s": add_s, "qps": len(xq) / best, "recall": recall(I, gt, args.k)}
            rows.append(row)
            print(f"{lib.__name__:6s} {name:20s} add {add_s:6.2f} s  QPS {row['qps']:9.0f}  "
                  f"recall@{args.k} {row['recall']:.3f}", flush=True)
        index.quantizer = flat  # faiss holds no reference to the quantizers
    write_results(args.out, {"threads": args.threads, "nlist": args.nlist, "nprobe": args.nprobe, "k": args.k,
                             "n": len(xb), "nq": len(xq), "rows": rows})


if __name__ == "__main__":
    main()
