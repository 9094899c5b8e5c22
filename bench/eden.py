"""EDEN codes (faiss's "EDEN{b}[BIASED]" and "IVF{n},EDEN{b}") beside
faiss-cpu on the same data, the same thread count, in the same run.

    python bench/eden.py [--threads 2] [--out bench/results/eden.json]

Data: ../shared/data (100k MiniLM embeddings, 384-d; 1,000 queries that are
other texts), L2. Flat indexes at 1, 2, 4 and 8 bits (and 4 bits with the
biased scale), then "IVF1024,EDEN4" at each --nprobe, the IVF indexes over
the same centroids (nearly's, copied into faiss's quantizer). Reported:
recall@10 against exact search, queries per second (best of 3 runs over all
queries), adding time, bytes per vector and, for flat indexes, the mean
squared reconstruction error of the base. At 1 to 7 bits the two libraries
store the same codes (but where the mean both subtract, summed in double by
nearly and in float by faiss, moves a coordinate across a cell's edge); at 8
bits faiss 1.15.1's codebook is not the Lloyd-Max quantizer nearly's is.
"""
import argparse
import os
import time

import numpy as np

from search_metrics import best_qps, real_problem, recall, write_results

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--nprobe", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "eden.json"))
    args = ap.parse_args()

    faiss, nearly, xb, xq, gt = real_problem(args.threads, args.k)
    d = xb.shape[1]
    rows = []
    for key in ("EDEN1", "EDEN2", "EDEN4", "EDEN4BIASED", "EDEN8", "IVF1024,EDEN4"):
        built = {}
        for lib in (nearly, faiss):
            index = lib.index_factory(d, key)
            t = time.perf_counter()
            index.train(xb)
            if lib is faiss and "IVF" in key:  # the same centroids on both sides
                index.quantizer.reset()
                index.quantizer.add(built["nearly"][0].quantizer.reconstruct_n(0, 1024))
            train_s = time.perf_counter() - t
            t = time.perf_counter()
            index.add(xb)
            built[lib.__name__] = (index, train_s, time.perf_counter() - t)
        for nprobe in (args.nprobe if "IVF" in key else [None]):
            row = {"index": key, "nprobe": nprobe}
            for lib in (nearly, faiss):
                index, train_s, add_s = built[lib.__name__]
                if nprobe:
                    index.nprobe = nprobe
                I = index.search(xq, args.k)[1]
                res = {"qps": best_qps(index, xq, args.k), "recall": recall(I, gt, args.k), "train_s": train_s,
                       "add_s": add_s, "bytes_per_vector": index.sa_code_size()}
                if not nprobe:
                    dec = index.sa_decode(index.sa_encode(xb[:20000]))
                    res["mse"] = float(((dec - xb[:20000]) ** 2).sum(1).mean())
                row[lib.__name__] = res
            row["qps_ratio"] = row["nearly"]["qps"] / row["faiss"]["qps"]
            rows.append(row)
            n, f = row["nearly"], row["faiss"]
            extra = f"  mse {n['mse']:.5f} / {f['mse']:.5f}" if "mse" in n else ""
            print(f"{key:16s} nprobe {str(nprobe):4s} recall {n['recall']:.3f} / {f['recall']:.3f}  "
                  f"QPS {n['qps']:8.0f} / {f['qps']:8.0f} ({row['qps_ratio']:.2f}x)  add {n['add_s']:.2f} / "
                  f"{f['add_s']:.2f} s{extra}", flush=True)
    out = {"command": f"python bench/eden.py --threads {args.threads}", "threads": args.threads, "n": len(xb),
           "nq": len(xq), "d": d, "k": args.k, "data": "pypi-minilm-100k", "rows": rows}
    write_results(args.out, out)


if __name__ == "__main__":
    main()
