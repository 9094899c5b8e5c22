"""Index2Layer ("Residual1024,PQ48": flat codes of list number + PQ code of
the residual) nearly beside faiss, the same thread count, in the same run.

    python bench/index_2layer.py [--threads 2] [--key Residual1024,PQ48]

Data: ../shared/data (100k MiniLM embeddings, 384-d; 1,000 queries), L2.
Each library trains its own index on the base. Reported: training time,
sa_encode and sa_decode throughput (vectors per second, best of 3), and
nearly's search (faiss's Index2Layer raises "not implemented"): recall@10
against exact search and QPS, beside IndexIVFPQ with the same codes
(transfer_to_IVFPQ) scanning every list.

Writes bench/results/index_2layer.json.
"""
import argparse
import os
import time

from search_metrics import best_qps, best_time, real_problem, recall, write_results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--key", default="Residual1024,PQ48")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "index_2layer.json"))
    args = ap.parse_args()
    faiss, nearly, xb, xq, gt = real_problem(args.threads, args.k)
    d = xb.shape[1]
    out = {"threads": args.threads, "key": args.key, "n": len(xb), "rows": []}
    built = {}
    for lib in (nearly, faiss):
        index = lib.index_factory(d, args.key)
        t = time.perf_counter()
        index.train(xb)
        train_s = time.perf_counter() - t
        codes = index.sa_encode(xb)
        row = {"library": lib.__name__, "train_s": train_s,
               "encode_per_s": len(xb) / best_time(lambda: index.sa_encode(xb)),
               "decode_per_s": len(xb) / best_time(lambda: index.sa_decode(codes))}
        built[lib.__name__] = index
        out["rows"].append(row)
        print(f"{lib.__name__:6s} train {train_s:6.1f} s  encode {row['encode_per_s']:9.0f}/s  "
              f"decode {row['decode_per_s']:9.0f}/s", flush=True)
    two = built["nearly"]
    two.add(xb)
    ivfpq = nearly.IndexIVFPQ(two.q1.quantizer, d, two.q1.nlist, two.pq.M, two.pq.nbits)
    ivfpq.pq = two.pq
    ivfpq.is_trained = True
    two.transfer_to_IVFPQ(ivfpq)
    ivfpq.nprobe = ivfpq.nlist
    for name, index in (("Index2Layer", two), ("IndexIVFPQ, every list", ivfpq)):
        I = index.search(xq, args.k)[1]
        row = {"search": name, "recall": recall(I, gt, args.k), "qps": best_qps(index, xq, args.k)}
        out["rows"].append(row)
        print(f"nearly {name:24s} recall {row['recall']:.4f}  QPS {row['qps']:8.0f}", flush=True)
    write_results(args.out, out)


if __name__ == "__main__":
    main()
