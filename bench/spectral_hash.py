"""faiss's IndexIVFSpectralHash, nearly beside faiss: the same factory
strings, thread count and data, in the same run.

    python bench/spectral_hash.py [--threads 2] [--strings "IVF1024,ITQ128,SH;IVF1024,PCAR128,SH1.0m"]

Data: ../shared/data (100k MiniLM embeddings, 384-d; 1,000 queries), L2.
For each string: build time (train + add), then recall@10 against exact
search and QPS at each nprobe. Both libraries train their own coarse
centroids and transforms, so recall differs by what each learned; the codes
of one trained index are faiss's bit for bit (tests/compat).

Writes bench/results/spectral_hash.json.
"""
import argparse
import os
import time

from search_metrics import points_text, real_problem, sweep, write_results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--strings", default="IVF1024,ITQ128,SH;IVF1024,PCAR128,SH1.0m",
                    help="factory strings, separated by ';'")
    ap.add_argument("--nprobe", default="1,4,16,64")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "spectral_hash.json"))
    args = ap.parse_args()
    faiss, nearly, xb, xq, gt = real_problem(args.threads, args.k)
    d = xb.shape[1]
    nprobes = [int(p) for p in args.nprobe.split(",")]
    out = {"threads": args.threads, "n": len(xb), "nq": len(xq), "k": args.k, "rows": []}
    for key in args.strings.split(";"):
        for lib in (nearly, faiss):
            index = lib.index_factory(d, key)
            t = time.perf_counter()
            index.train(xb)
            train_s = time.perf_counter() - t
            index.add(xb)
            build_s = time.perf_counter() - t
            points = sweep(index, xq, gt, args.k, "nprobe", nprobes, lambda i, v: setattr(i, "nprobe", v))
            out["rows"].append({"library": lib.__name__, "string": key, "train_s": train_s, "build_s": build_s,
                                "points": points})
            pts = points_text(points, "nprobe", "np")
            print(f"{key:24s} {lib.__name__:6s} build {build_s:6.1f} s (train {train_s:5.1f})  recall/QPS {pts}",
                  flush=True)
    write_results(args.out, out)


if __name__ == "__main__":
    main()
