"""TurboQuant's scalar quantizer (faiss's "SQtqmse{1,2,3,4,8}", after
"L2norm,RR": unit vectors, randomly rotated) and its full codes (faiss's
"SQtq{2,3,4,5}": b - 1 MSE bits and a QJL sign per dimension, norm kept)
beside faiss-cpu on the same data, the same thread count, in the same run,
with the classic SQ4 / SQ8 for scale.

    python bench/sq_turboquant.py [--threads 2] [--out bench/results/sq_turboquant.json]
    python bench/sq_turboquant.py --bits --full-bits 2 3 4 5 --ef --out bench/results/sq_turboquant_full.json

Data: ../shared/data (100k MiniLM embeddings, 384-d, unit norm; 1,000
queries that are other texts), inner product. Flat indexes ("L2norm,RR,
SQtqmse{b}", "SQ4", "SQ8"), then "L2norm,RR,IVF1024,SQtqmse4" at each
--nprobe and "L2norm,RR,HNSW32,SQtqmse4" at each --ef. Reported: recall@10
against exact search, queries per second (best of 3 runs over all queries),
training and adding time, bytes per vector and, for flat indexes, the mean
squared reconstruction error of the base. At 1 to 4 bits the two libraries
store the same codes; at 8 bits nearly's codebook is Lloyd's fixed point and
faiss's is not, so the error differs. The full codes are the same in both
libraries (compared without the two per-vector floats, which may differ in
an ulp); nearly scores them with the paper's unbiased estimate, faiss 1.15
with its QJL term divided by sqrt(pd) (nearly/turboquant.h), so recall and
reconstruction error differ.
"""
import argparse
import os
import time

import numpy as np

from search_metrics import best_qps, libraries, load_real, recall, write_results

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--bits", type=int, nargs="*", default=[1, 2, 3, 4, 8])
    ap.add_argument("--full-bits", type=int, nargs="*", default=[],
                    help="full TurboQuant types to add (SQtq{b}, b in 2..5), flat and IVF1024,SQtq{max}")
    ap.add_argument("--nprobe", type=int, nargs="*", default=[16, 64])
    ap.add_argument("--ef", type=int, nargs="*", default=[64, 128])
    ap.add_argument("--ntrain", type=int, default=50_000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "sq_turboquant.json"))
    args = ap.parse_args()

    faiss, nearly = libraries(args.threads)
    xb, xq = (np.ascontiguousarray(x) for x in load_real())
    d = xb.shape[1]
    ip = nearly.METRIC_INNER_PRODUCT
    exact = nearly.IndexFlatIP(d)
    exact.add(xb)
    gt = exact.search(xq, args.k)[1]

    runs = [(f"L2norm,RR,SQtqmse{b}", None, [None]) for b in args.bits]
    runs += [(f"SQtq{b}", None, [None]) for b in args.full_bits]
    if args.bits:
        runs += [("SQ4", None, [None]), ("SQ8", None, [None])]
    if args.nprobe and args.bits:
        runs.append(("L2norm,RR,IVF1024,SQtqmse4", "nprobe", args.nprobe))
    if args.nprobe and args.full_bits:
        runs.append((f"IVF1024,SQtq{max(args.full_bits)}", "nprobe", args.nprobe))
    if args.ef:
        runs.append(("L2norm,RR,HNSW32,SQtqmse4", "efSearch", args.ef))
    rows = []
    for key, knob, values in runs:
        built = {}
        for lib in (nearly, faiss):
            index = lib.index_factory(d, key, ip)
            t = time.perf_counter()
            index.train(xb[:args.ntrain])
            train_s = time.perf_counter() - t
            t = time.perf_counter()
            index.add(xb)
            add_s = time.perf_counter() - t
            mse = None if knob else float(((index.reconstruct_n(0, len(xb)) - xb) ** 2).sum(1).mean())
            built[lib.__name__] = (index, train_s, add_s, mse)
        for value in values:
            row = {"index": key, knob or "param": value}
            for lib in (nearly, faiss):
                index, train_s, add_s, mse = built[lib.__name__]
                if knob == "nprobe":
                    lib.extract_index_ivf(index).nprobe = value
                elif knob == "efSearch":
                    lib.downcast_index(index.index).hnsw.efSearch = value
                I = index.search(xq, args.k)[1]
                row[lib.__name__] = {"qps": best_qps(index, xq, args.k), "recall": recall(I, gt, args.k),
                                     "train_s": train_s, "add_s": add_s, "mse": mse}
            if knob is None:
                codes = {lib.__name__: built[lib.__name__][0].sa_encode(xb[:2000]) for lib in (nearly, faiss)}
                row["bytes_per_vector"] = int(codes["nearly"].shape[1])
                bits = codes["nearly"].shape[1] - (8 if key.startswith("SQtq") else 0)  # full types: not the floats
                row["codes_equal"] = float((codes["nearly"][:, :bits] == codes["faiss"][:, :bits]).all(axis=1).mean())
            row["qps_ratio"] = row["nearly"]["qps"] / row["faiss"]["qps"]
            rows.append(row)
            n, f = row["nearly"], row["faiss"]
            print(f"{key:28s} {knob or '':8s} {str(value):4s} recall {n['recall']:.3f} / {f['recall']:.3f}  "
                  f"QPS {n['qps']:8.0f} / {f['qps']:8.0f} ({row['qps_ratio']:.2f}x)  "
                  f"train {n['train_s']:5.2f} / {f['train_s']:5.2f} s  add {n['add_s']:5.1f} / {f['add_s']:5.1f} s"
                  + (f"  mse {n['mse']:.5f} / {f['mse']:.5f}  {row['bytes_per_vector']} B  codes equal "
                     f"{row['codes_equal']:.3f}" if n["mse"] is not None else ""), flush=True)
    cmd = "python bench/sq_turboquant.py --threads %d" % args.threads
    if args.full_bits:
        cmd += " --bits %s --full-bits %s --ef %s --nprobe %s" % (
            " ".join(map(str, args.bits)), " ".join(map(str, args.full_bits)), " ".join(map(str, args.ef)),
            " ".join(map(str, args.nprobe)))
    out = {"command": cmd, "threads": args.threads,
           "n": len(xb), "nq": len(xq), "d": d, "ntrain": args.ntrain, "k": args.k, "metric": "inner product",
           "data": "pypi-minilm-100k", "rows": rows}
    write_results(args.out, out)


if __name__ == "__main__":
    main()
