"""IndexIVFIndependentQuantizer on real embeddings: the lists chosen in the
full space, the vectors stored after a PCA; nearly beside faiss, and beside
the same IVF index behind the PCA (IndexPreTransform: the lists chosen in
the reduced space), in the same run.

    python bench/ivf_independent_quantizer.py [--threads 2] [--pca 64] [--inner IVF1024,PQ32]

Data: ../shared/data (100k MiniLM embeddings, 384-d; 1,000 queries), L2,
trained on 50k. Reported per nprobe: recall@10 against exact search in the
full space and queries per second (best of 3).

Writes bench/results/ivf_independent_quantizer.json.
"""
import argparse
import os
import time

from search_metrics import best_qps, real_problem, recall, write_results


def build(lib, kind, d, args, xt, xb):
    if kind == "independent":
        index = lib.IndexIVFIndependentQuantizer(lib.IndexFlatL2(d), lib.index_factory(args.pca, args.inner),
                                                 lib.PCAMatrix(d, args.pca))
    else:
        index = lib.index_factory(d, f"PCA{args.pca},{args.inner}")
    t = time.perf_counter()
    index.train(xt)
    index.add(xb)
    return index, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pca", type=int, default=64)
    ap.add_argument("--inner", default="IVF1024,PQ32")
    ap.add_argument("--nprobe", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                  "ivf_independent_quantizer.json"))
    args = ap.parse_args()
    faiss, nearly, xb, xq, gt = real_problem(args.threads, args.k, inner_product=False)
    d = xb.shape[1]
    out = {"pca": args.pca, "inner": args.inner, "threads": args.threads, "rows": []}
    for kind in ("independent", "pretransform"):
        for lib in (nearly, faiss):
            index, secs = build(lib, kind, d, args, xb[:50000], xb)
            ivf = lib.extract_index_ivf(index)
            for p in args.nprobe:
                ivf.nprobe = p
                row = {"kind": kind, "library": lib.__name__, "nprobe": p, "build_s": secs,
                       "recall": recall(index.search(xq, args.k)[1], gt, args.k),
                       "qps": best_qps(index, xq, args.k)}
                out["rows"].append(row)
                print(f"{kind:12s} {lib.__name__:6s} nprobe {p:3d}: recall {row['recall']:.4f} "
                      f"QPS {row['qps']:8.0f} (train + add {secs:.1f} s)")
    write_results(args.out, out)


if __name__ == "__main__":
    main()
