"""Residual quantizer fast-scan (IndexResidualQuantizerFastScan), nearly
beside faiss on the same data, the same thread count, in the same run.

    python bench/additive_quantizers.py [--threads 2] [--M 16 32] [--ivf-M 32] [--out bench/results/additive_quantizers.json]

Data: ../shared/data (100k MiniLM embeddings, 384-d; 1,000 queries that are
other texts). For each M, both libraries build "RQ{M}x4fs_Nrq2x4" (M 4-bit
codebooks and the norm in two more 4-bit codes) trained on the first
--ntrain base vectors, and the float-table reference "RQ{M}x4_Nrq2x4"
(IndexResidualQuantizer: the same kind of codes scored with float tables);
then for each --ivf-M, "IVF1024,RQ{M}x4fs_Nrq2x4" (codes of the vectors,
faiss's default) and "...x4fsr..." (codes of the residuals) at nprobe 8 and
32. --keys adds any other factory strings (IVF ones at each --nprobe), e.g.
the local search quantizers:

    python bench/additive_quantizers.py --M --ivf-M --ntrain 10000 --keys LSQ8x8_Nqint8 LSQ16x4fs_Nlsq2x4 \
        IVF1024,LSQ16x4fsr_Nlsq2x4 --out bench/results/lsq.json

Reported: recall@10 against exact search, queries per second (best of 3
runs over all queries), training and adding time, and for flat indexes the
mean squared reconstruction error of the base. The two libraries train
their own codebooks (k-means differs), so recall is compared, not codes.
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
    ap.add_argument("--M", type=int, nargs="*", default=[16, 32])
    ap.add_argument("--ivf-M", type=int, nargs="*", default=[32])
    ap.add_argument("--keys", nargs="*", default=[], help="more factory strings")
    ap.add_argument("--nprobe", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--ntrain", type=int, default=20_000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "rq_fast_scan.json"))
    args = ap.parse_args()

    faiss, nearly = libraries(args.threads)
    xb, xq = (np.ascontiguousarray(x) for x in load_real())
    d = xb.shape[1]
    exact = nearly.IndexFlatL2(d)
    exact.add(xb)
    gt = exact.search(xq, args.k)[1]

    rows = []
    runs = [(f"RQ{M}x4fs_Nrq2x4", M, [None]) for M in args.M] + [(f"RQ{M}x4_Nrq2x4", M, [None]) for M in args.M]
    runs += [(f"IVF1024,RQ{M}x4fs{r}_Nrq2x4", M, args.nprobe) for M in args.ivf_M for r in ("", "r")]
    runs += [(key, None, args.nprobe if key.startswith("IVF") else [None]) for key in args.keys]
    for key, M, nprobes in runs:
        built = {}
        for lib in (nearly, faiss):
            index = lib.index_factory(d, key)
            t = time.perf_counter()
            index.train(xb[:args.ntrain])
            train_s = time.perf_counter() - t
            t = time.perf_counter()
            index.add(xb)
            add_s = time.perf_counter() - t
            mse = None if nprobes != [None] else float(((index.reconstruct_n(0, len(xb)) - xb) ** 2).sum(1).mean())
            built[lib.__name__] = (index, train_s, add_s, mse)
        for nprobe in nprobes:
            row = {"index": key, "M": M, "nprobe": nprobe}
            for lib in (nearly, faiss):
                index, train_s, add_s, mse = built[lib.__name__]
                if nprobe is not None:
                    index.nprobe = nprobe
                I = index.search(xq, args.k)[1]
                row[lib.__name__] = {"qps": best_qps(index, xq, args.k), "recall": recall(I, gt, args.k),
                                     "train_s": train_s, "add_s": add_s, "mse": mse,
                                     "norm_scale": getattr(index, "norm_scale", None)}
            row["qps_ratio"] = row["nearly"]["qps"] / row["faiss"]["qps"]
            rows.append(row)
            n, f = row["nearly"], row["faiss"]
            print(f"{key:28s} nprobe {str(nprobe):4s} recall {n['recall']:.3f} / {f['recall']:.3f}  "
                  f"QPS {n['qps']:8.0f} / {f['qps']:8.0f} ({row['qps_ratio']:.2f}x)  "
                  f"train {n['train_s']:5.1f} / {f['train_s']:5.1f} s  add {n['add_s']:5.1f} / {f['add_s']:5.1f} s"
                  + (f"  mse {n['mse']:.4f} / {f['mse']:.4f}" if n["mse"] is not None else "")
                  + (f"  norm_scale {n['norm_scale']} / {f['norm_scale']}" if n["norm_scale"] else ""), flush=True)
    out = {"command": "python bench/additive_quantizers.py --threads %d --M %s --ivf-M %s --ntrain %d%s" % (
               args.threads, " ".join(map(str, args.M)), " ".join(map(str, args.ivf_M)), args.ntrain,
               " --keys " + " ".join(args.keys) if args.keys else ""),
           "threads": args.threads, "n": len(xb),
           "nq": len(xq), "d": d, "ntrain": args.ntrain, "k": args.k, "data": "pypi-minilm-100k", "rows": rows}
    write_results(args.out, out)


if __name__ == "__main__":
    main()
