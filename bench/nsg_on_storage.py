"""NSG over a PQ or scalar-quantizer storage (IndexNSGPQ, IndexNSGSQ),
nearly beside faiss: the same factory strings, build settings, thread count
and data, in the same run.

    python bench/nsg_on_storage.py [--threads 2] [--strings "NSG32,PQ48;NSG32,SQ8"]

Data: ../shared/data (100k MiniLM embeddings, 384-d; 1,000 queries), L2.
Both build the k-NN graph the same way (--build-type 1: NN-descent, faiss's
default for these indexes; GK 64). nearly links the graph on the vectors
given to add() and searches the codes; faiss links it on the codes. For each
string: build time (train + add), then recall@10 against exact search and
QPS at each search_L.

Writes bench/results/nsg_on_storage.json.
"""
import argparse
import os
import time

from search_metrics import points_text, real_problem, sweep, write_results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--strings", default="NSG32,PQ48;NSG32,SQ8", help="factory strings, separated by ';'")
    ap.add_argument("--search-L", default="16,32,64,128")
    ap.add_argument("--build-type", type=int, default=1)
    ap.add_argument("--GK", type=int, default=64)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "nsg_on_storage.json"))
    args = ap.parse_args()
    faiss, nearly, xb, xq, gt = real_problem(args.threads, args.k)
    d = xb.shape[1]
    widths = [int(v) for v in args.search_L.split(",")]
    out = {"threads": args.threads, "n": len(xb), "nq": len(xq), "k": args.k, "build_type": args.build_type,
           "GK": args.GK, "rows": []}
    for key in args.strings.split(";"):
        for lib in (nearly, faiss):
            index = lib.index_factory(d, key)
            index.build_type = args.build_type
            index.GK = args.GK
            t = time.perf_counter()
            index.train(xb)
            train_s = time.perf_counter() - t
            index.add(xb)
            build_s = time.perf_counter() - t
            points = sweep(index, xq, gt, args.k, "search_L", widths, lambda i, v: setattr(i.nsg, "search_L", v))
            out["rows"].append({"library": lib.__name__, "string": key, "train_s": train_s, "build_s": build_s,
                                "points": points})
            pts = points_text(points, "search_L", "L")
            print(f"{key:14s} {lib.__name__:6s} build {build_s:6.1f} s (train {train_s:5.1f})  recall/QPS {pts}",
                  flush=True)
    write_results(args.out, out)


if __name__ == "__main__":
    main()
