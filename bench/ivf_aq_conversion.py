"""faiss's IndexIVFAdditiveQuantizerFastScan(orig): an IVF residual-quantizer
index converted to fast-scan, nearly beside faiss on the same data, the same
thread count, in the same run.

    python bench/ivf_aq_conversion.py [--threads 2] [--M 16] [--out bench/results/ivf_aq_conversion.json]

Data: ../shared/data (100k MiniLM embeddings, 384-d; 1,000 queries that are
other texts). Each library trains "IVF1024,RQ{M}x4_Nrq2x4" under L2 with
codes of the vectors themselves (by_residual off: faiss's rule for L2
conversions) and "IVF1024,RQ{M}x4" under inner product (by residual), on the
first --ntrain base vectors, adds the base, converts the index, and both
the original (float tables) and the conversion (4-bit tables in registers)
are searched at each --nprobe. Reported: recall@10 against exact search,
queries per second (best of 3 runs over all queries) and the conversion's
time. Each library trains its own codebooks, so recall is compared, not codes.
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
    ap.add_argument("--M", type=int, default=16)
    ap.add_argument("--nprobe", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--ntrain", type=int, default=20_000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "ivf_aq_conversion.json"))
    args = ap.parse_args()

    faiss, nearly = libraries(args.threads)
    xb, xq = (np.ascontiguousarray(x) for x in load_real())
    d = xb.shape[1]
    rows = []
    for key, metric in ((f"IVF1024,RQ{args.M}x4_Nrq2x4", "L2"), (f"IVF1024,RQ{args.M}x4", "IP")):
        exact = nearly.IndexFlatL2(d) if metric == "L2" else nearly.IndexFlatIP(d)
        exact.add(xb)
        gt = exact.search(xq, args.k)[1]
        built = {}
        for lib in (nearly, faiss):
            orig = lib.index_factory(d, key, lib.METRIC_L2 if metric == "L2" else lib.METRIC_INNER_PRODUCT)
            if metric == "L2":
                orig.by_residual = False
            orig.train(xb[:args.ntrain])
            orig.add(xb)
            t = time.perf_counter()
            fs = lib.IndexIVFAdditiveQuantizerFastScan(orig)
            built[lib.__name__] = (orig, fs, time.perf_counter() - t)
        for nprobe in args.nprobe:
            row = {"index": key, "metric": metric, "nprobe": nprobe}
            for lib in (nearly, faiss):
                orig, fs, convert_s = built[lib.__name__]
                res = {"convert_s": convert_s}
                for name, index in (("orig", orig), ("fast_scan", fs)):
                    index.nprobe = nprobe
                    I = index.search(xq, args.k)[1]
                    res[name] = {"qps": best_qps(index, xq, args.k), "recall": recall(I, gt, args.k)}
                row[lib.__name__] = res
            row["fast_scan_qps_ratio"] = row["nearly"]["fast_scan"]["qps"] / row["faiss"]["fast_scan"]["qps"]
            rows.append(row)
            n, f = row["nearly"], row["faiss"]
            print(f"{key:24s} {metric} nprobe {nprobe:3d}  orig recall {n['orig']['recall']:.3f} / "
                  f"{f['orig']['recall']:.3f} QPS {n['orig']['qps']:7.0f} / {f['orig']['qps']:7.0f}  "
                  f"converted recall {n['fast_scan']['recall']:.3f} / {f['fast_scan']['recall']:.3f} "
                  f"QPS {n['fast_scan']['qps']:7.0f} / {f['fast_scan']['qps']:7.0f} "
                  f"({row['fast_scan_qps_ratio']:.2f}x)  convert {n['convert_s']:.3f} / {f['convert_s']:.3f} s",
                  flush=True)
    out = {"command": f"python bench/ivf_aq_conversion.py --threads {args.threads} --M {args.M} --ntrain {args.ntrain}",
           "threads": args.threads, "n": len(xb), "nq": len(xq), "d": d, "k": args.k,
           "data": "pypi-minilm-100k", "rows": rows}
    write_results(args.out, out)


if __name__ == "__main__":
    main()
