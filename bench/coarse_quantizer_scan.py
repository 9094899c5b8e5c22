"""Additive coarse quantizers scanned exhaustively (beam_factor -1), nearly
beside faiss on the same data, the same thread count, in the same run.

    python bench/coarse_quantizer_scan.py [--threads 2] [--keys RCQ2x8 RCQ2x6 LSCQ2x5] [--ntrain 20000]

Data: ../shared/data (100k MiniLM embeddings, 384-d, L2). For each key
(ResidualCoarseQuantizer M x nbits, or LocalSearchCoarseQuantizer), each
library trains the quantizer on the first --ntrain base vectors, then, with
beam_factor -1 (every centroid scored through the query's tables, what an
IVF's probe and add run), times search(queries, nprobe) for the 1,000
queries and search(base, 1) for the 100k base vectors (an IVF add's
assignment), best of 3. Reported with the seconds: the fraction of each
library's lists equal to exact search over its own centroids (decoded
codewords in an IndexFlatL2), so both are checked to scan every centroid.
"""
import argparse
import os
import time

import numpy as np

from search_metrics import libraries, load_real, write_results

HERE = os.path.dirname(os.path.abspath(__file__))


def make(lib, d, key):
    kind, shape = ("LSCQ", key[4:]) if key.startswith("LSCQ") else ("RCQ", key[3:])
    M, nbits = (int(v) for v in shape.split("x"))
    cls = lib.LocalSearchCoarseQuantizer if kind == "LSCQ" else lib.ResidualCoarseQuantizer
    return cls(d, M, nbits, lib.METRIC_L2)


def best_of(fn, repeats=3):
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--keys", nargs="+", default=["RCQ2x8", "RCQ2x6", "LSCQ2x5"])
    ap.add_argument("--ntrain", type=int, default=20_000)
    ap.add_argument("--nprobe", type=int, default=32)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "coarse_quantizer_scan.json"))
    args = ap.parse_args()

    faiss, nearly = libraries(args.threads)
    xb, xq = (np.ascontiguousarray(x) for x in load_real())
    d = xb.shape[1]
    rows = []
    for key in args.keys:
        row = {"key": key}
        for lib in (nearly, faiss):
            cq = make(lib, d, key)
            t = time.perf_counter()
            cq.train(xb[:args.ntrain])
            train_s = time.perf_counter() - t
            if key.startswith("RCQ"):
                cq.set_beam_factor(-1.0)
            exact = nearly.IndexFlatL2(d)  # its own centroids, scored exactly
            exact.add(cq.reconstruct_n(0, cq.ntotal))
            probe_s, (_, Ip) = best_of(lambda: cq.search(xq, args.nprobe))
            assign_s, (_, Ia) = best_of(lambda: cq.search(xb, 1))
            Ip_ref = exact.search(xq, args.nprobe)[1]
            Ia_ref = exact.search(xb, 1)[1]
            out = {"train_s": train_s, "probe_s": probe_s, "assign_s": assign_s,
                   "probe_lists_exact": float(np.mean([len(set(a) & set(b)) / args.nprobe
                                                       for a, b in zip(Ip, Ip_ref)])),
                   "assign_exact": float((Ia == Ia_ref).mean())}
            row[lib.__name__] = out
            print(f"{key:8s} {lib.__name__:6s} train {train_s:6.1f} s  probe {probe_s:6.3f} s  "
                  f"assign {assign_s:6.3f} s  exact lists {out['probe_lists_exact']:.4f} / "
                  f"{out['assign_exact']:.4f}", flush=True)
        row["probe_speedup"] = row["faiss"]["probe_s"] / row["nearly"]["probe_s"]
        row["assign_speedup"] = row["faiss"]["assign_s"] / row["nearly"]["assign_s"]
        print(f"{key:8s} nearly over faiss: probe {row['probe_speedup']:.2f}x  assign {row['assign_speedup']:.2f}x",
              flush=True)
        rows.append(row)
    write_results(args.out, {"command": "python bench/coarse_quantizer_scan.py --threads %d --keys %s --ntrain %d "
                                        "--nprobe %d" % (args.threads, " ".join(args.keys), args.ntrain,
                                                         args.nprobe),
                             "threads": args.threads, "n": len(xb), "nq": len(xq), "d": d, "ntrain": args.ntrain,
                             "nprobe": args.nprobe, "data": "pypi-minilm-100k", "rows": rows})


if __name__ == "__main__":
    main()
