"""faiss's IndexHNSW(storage, M), a graph over any index's codes, nearly
beside faiss, the same storages, thread count and settings, in the same run.

    python bench/hnsw_on_storage.py [--threads 2] [--storages SQ8,PQ48,1024+PQ48] [--M 32]

Data: ../shared/data (100k MiniLM embeddings, 384-d; 1,000 queries), L2.
For each storage (built by index_factory, trained on the base): build time
(train + add), then recall@10 against exact search and QPS at each efSearch.
nearly's own graph classes over the same codes (IndexHNSWSQ for SQ8,
IndexHNSWPQ for PQ{m}) are measured beside, as the faster path where one
exists. "1024+PQ48" is faiss's IndexHNSW2Level (HNSW32_1024+PQ48): the graph
over an Index2Layer.

Writes bench/results/hnsw_on_storage.json.
"""
import argparse
import os
import time

from search_metrics import points_text, real_problem, sweep, write_results


def build(make, xb):
    index = make()
    t = time.perf_counter()
    index.train(xb)
    index.add(xb)
    return index, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--storages", default="SQ8,PQ48,1024+PQ48",
                    help="storage descriptions; n+PQm: faiss's IndexHNSW2Level (HNSW{M}_{n}+PQ{m})")
    ap.add_argument("--M", type=int, default=32)
    ap.add_argument("--efc", type=int, default=40)
    ap.add_argument("--ef", default="16,32,64,128")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "hnsw_on_storage.json"))
    args = ap.parse_args()
    faiss, nearly, xb, xq, gt = real_problem(args.threads, args.k)
    d = xb.shape[1]
    efs = [int(e) for e in args.ef.split(",")]
    out = {"threads": args.threads, "M": args.M, "efConstruction": args.efc, "n": len(xb), "rows": []}
    for key in args.storages.split(","):
        runs = []
        for lib in (nearly, faiss):
            def make(lib=lib, key=key):
                if "+PQ" in key:  # the graph over an Index2Layer
                    index = lib.index_factory(d, f"HNSW{args.M}_{key}")
                else:
                    index = lib.IndexHNSW(lib.index_factory(d, key), args.M)
                index.hnsw.efConstruction = args.efc
                return index
            runs.append((lib.__name__, "IndexHNSW2Level" if "+PQ" in key else "IndexHNSW(storage)", make))
        own = {"SQ8": f"HNSW{args.M},SQ8"}.get(key) or (f"HNSW{args.M}_{key}" if key.startswith("PQ") else None)
        if own:
            def make_own(own=own):
                index = nearly.index_factory(d, own)
                index.hnsw.efConstruction = args.efc
                return index
            runs.append(("nearly", own, make_own))
        for lib_name, kind, make in runs:
            index, build_s = build(make, xb)
            points = sweep(index, xq, gt, args.k, "efSearch", efs, lambda i, v: setattr(i.hnsw, "efSearch", v))
            out["rows"].append({"library": lib_name, "storage": key, "index": kind, "type": type(index).__name__,
                                "build_s": build_s, "points": points})
            pts = points_text(points, "efSearch", "ef")
            print(f"{key:5s} {lib_name:6s} {kind:20s} build {build_s:6.1f} s  recall/QPS {pts}", flush=True)
    write_results(args.out, out)


if __name__ == "__main__":
    main()
