"""IndexIVFPQR ("IVF{nlist},PQ{M}+{M_refine}": an IVFPQ whose k * k_factor
best candidates are re-ranked with a second PQ of what the first leaves)
beside faiss-cpu on the same data, the same thread count, in the same run,
with the plain IVFPQ for scale.

    python bench/ivfpqr.py [--threads 2] [--out bench/results/ivfpqr.json]

Data: ../shared/data (100k MiniLM embeddings, 384-d; 1,000 queries that are
other texts), L2. Each index trained on the first --ntrain vectors, then the
base added. Reported: training and adding time, recall@10 against exact
search and queries per second (best of 3 runs over all queries) at each
--nprobe, k_factor 4 (faiss's default).
"""
import argparse
import os
import time

from search_metrics import best_qps, real_problem, recall, write_results

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--specs", nargs="*", default=["IVF1024,PQ32+64", "IVF1024,PQ32"])
    ap.add_argument("--nprobe", type=int, nargs="*", default=[8, 32])
    ap.add_argument("--ntrain", type=int, default=50_000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "ivfpqr.json"))
    args = ap.parse_args()

    faiss, nearly, xb, xq, gt = real_problem(args.threads, args.k)
    d = xb.shape[1]
    rows = []
    for spec in args.specs:
        for lib in (nearly, faiss):
            index = lib.index_factory(d, spec)
            t = time.perf_counter()
            index.train(xb[:args.ntrain])
            train_s = time.perf_counter() - t
            t = time.perf_counter()
            index.add(xb)
            add_s = time.perf_counter() - t
            row = {"library": lib.__name__, "index": spec, "train_s": train_s, "add_s": add_s, "search": []}
            for nprobe in args.nprobe:
                index.nprobe = nprobe
                I = index.search(xq, args.k)[1]
                entry = {"nprobe": nprobe, "recall": recall(I, gt, args.k), "qps": best_qps(index, xq, args.k)}
                row["search"].append(entry)
                print(f"{lib.__name__:7s} {spec:16s} nprobe {nprobe:3d}  R@10 {entry['recall']:.3f} "
                      f"{entry['qps']:8.0f} QPS   train {train_s:.1f} s, add {add_s:.1f} s", flush=True)
            rows.append(row)
    write_results(args.out, {"threads": args.threads, "k": args.k, "n_base": int(len(xb)),
                             "n_queries": int(len(xq)), "rows": rows})


if __name__ == "__main__":
    main()
