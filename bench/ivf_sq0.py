"""IVF lists with no codes (QT_0bit, "IVF1024,SQ0"), re-ranked on the full
vectors ("IVF1024,SQ0,RFlat"): nearly beside faiss, and beside IVF-Flat at
the same nprobe, in the same run.

    python bench/ivf_sq0.py [--threads 2] [--nprobe 8] [--k-factor 8 32 128]

Data: ../shared/data (100k MiniLM embeddings, 384-d; 1,000 queries), inner
product, trained on 50k. An SQ0 list scan costs nothing but the heap: every
entry scores as its centroid, so the first stage hands k * k_factor
candidates of the nearest lists to the refinement. Reported: recall@10
against exact search and QPS (best of 3).

Writes bench/results/ivf_sq0.json.
"""
import argparse
import os

from search_metrics import best_qps, real_problem, recall, write_results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--nprobe", type=int, default=8)
    ap.add_argument("--k-factor", type=int, nargs="+", default=[8, 32, 128])
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "ivf_sq0.json"))
    args = ap.parse_args()
    faiss, nearly, xb, xq, gt = real_problem(args.threads, args.k, inner_product=True)
    d = xb.shape[1]
    out = {"nprobe": args.nprobe, "threads": args.threads, "rows": []}
    for lib in (nearly, faiss):
        for key in ("IVF1024,Flat", "IVF1024,SQ0,RFlat"):
            index = lib.index_factory(d, key, lib.METRIC_INNER_PRODUCT)
            index.train(xb[:50000])
            index.add(xb)
            lib.extract_index_ivf(index).nprobe = args.nprobe
            for kf in (args.k_factor if "RFlat" in key else [None]):
                if kf:
                    index.k_factor = kf
                row = {"library": lib.__name__, "key": key, "k_factor": kf,
                       "recall": recall(index.search(xq, args.k)[1], gt, args.k), "qps": best_qps(index, xq, args.k)}
                out["rows"].append(row)
                print(f"{lib.__name__:6s} {key:18s} k_factor {str(kf):>4s}: recall {row['recall']:.4f} "
                      f"QPS {row['qps']:8.0f}")
    write_results(args.out, out)


if __name__ == "__main__":
    main()
