"""The inverted multi-index's cells found through assign indexes
(MultiIndexQuantizer2, HNSW over each subspace's sub-centroids) beside the
whole distance tables (MultiIndexQuantizer), nearly beside faiss, the same
sub-centroids, in the same run.

    python bench/imi_assign.py [--threads 2] [--nbits 12] [--nprobe 64]

Data: ../shared/data (100k MiniLM embeddings, 384-d; 1,000 queries). One
MultiIndexQuantizer(384, 2, nbits) is trained by nearly; every quantizer
gets its sub-centroids (2^(2 nbits) cells). Reported: QPS of
quantizer.search(queries, nprobe) (best of 3) and the share of the exact
nprobe cells each finds.

Writes bench/results/imi_assign.json.
"""
import argparse
import os
import time

import numpy as np

from search_metrics import best_qps, libraries, load_real, write_results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--nbits", type=int, default=12)
    ap.add_argument("--nprobe", type=int, default=64)
    ap.add_argument("--hnsw-m", type=int, default=32)
    ap.add_argument("--ef", type=int, default=128)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "imi_assign.json"))
    args = ap.parse_args()
    faiss, nearly = libraries(args.threads)
    xb, xq = (np.ascontiguousarray(v) for v in load_real())
    d, nbits, dsub = xb.shape[1], args.nbits, xb.shape[1] // 2
    t = time.perf_counter()
    miq = nearly.MultiIndexQuantizer(d, 2, nbits)
    miq.train(xb)
    train_s = time.perf_counter() - t
    centroids = miq.pq.centroids.reshape(2, 1 << nbits, dsub)
    print(f"trained IMI2x{nbits} in {train_s:.1f} s")

    keep = []

    def miq2(lib):
        subs = []
        for m in range(2):
            h = lib.IndexHNSWFlat(dsub, args.hnsw_m)
            h.hnsw.efSearch = args.ef
            h.add(np.ascontiguousarray(centroids[m]))
            subs.append(h)
        keep.append(subs)  # faiss's quantizer does not own them
        return lib.MultiIndexQuantizer2(d, nbits, subs[0], subs[1])

    fmiq = faiss.MultiIndexQuantizer(d, 2, nbits)
    faiss.copy_array_to_vector(miq.pq.centroids.ravel(), fmiq.pq.centroids)
    fmiq.is_trained = True
    fmiq.ntotal = 1 << (2 * nbits)
    quantizers = {("nearly", "MultiIndexQuantizer"): miq, ("faiss", "MultiIndexQuantizer"): fmiq}
    for lib in (nearly, faiss):
        q = miq2(lib)
        q.pq = miq.pq if lib is nearly else fmiq.pq
        q.is_trained = True
        if lib is faiss:
            q.ntotal = 1 << (2 * nbits)
        quantizers[(lib.__name__, "MultiIndexQuantizer2 (HNSW)")] = q
    exact = miq.search(xq, args.nprobe)[1]
    out = {"threads": args.threads, "nbits": nbits, "nprobe": args.nprobe, "hnsw_m": args.hnsw_m,
           "efSearch": args.ef, "train_s": train_s, "rows": []}
    for (lib, kind), q in quantizers.items():
        I = q.search(xq, args.nprobe)[1]
        found = float(np.mean([len(set(a) & set(b)) / args.nprobe for a, b in zip(I, exact)]))
        row = {"library": lib, "quantizer": kind, "qps": best_qps(q, xq, args.nprobe), "exact_cells_found": found}
        out["rows"].append(row)
        print(f"{lib:6s} {kind:30s} QPS {row['qps']:9.0f}  exact cells found {found:.4f}", flush=True)
    write_results(args.out, out)


if __name__ == "__main__":
    main()
