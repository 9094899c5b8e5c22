"""Binary hash indexes (IndexBinaryHash, IndexBinaryMultiHash), nearly beside
faiss on the same codes, the same thread count, in the same run.

    python bench/binary_hash.py [--threads 2] [--out bench/results/binary_hash.json]

The codes are the sign bits of the real embeddings (../shared/data: 100k
MiniLM vectors, 384 bits each; the 1,000 queries are other texts). For each
index and nflip: queries per second (best of 3 runs over all queries) and
recall@10 against exact Hamming search (IndexBinaryFlat) of the same codes,
for both libraries. A hash index finds only the codes whose hashed bits lie
within nflip flips of the query's, so recall is the point of comparison as
much as speed: the two libraries must reach the same codes.
"""
import argparse
import os
import time

import numpy as np

from search_metrics import best_qps, libraries, load_real, recall, write_results

HERE = os.path.dirname(os.path.abspath(__file__))


def sign_codes(x):
    return np.packbits(x > 0, axis=1, bitorder="little")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "binary_hash.json"))
    args = ap.parse_args()

    faiss, nearly = libraries(args.threads)
    xb, xq = (sign_codes(x) for x in load_real())
    d = xb.shape[1] * 8
    exact = nearly.IndexBinaryFlat(d)
    exact.add(xb)
    gt = exact.search(xq, args.k)[1]

    configs = [("BHash16", nf) for nf in (0, 1, 2, 3)] + [("BHash24", nf) for nf in (0, 2, 4)] + \
              [("BHash4x16", nf) for nf in (0, 1, 2)] + [("BHash8x24", nf) for nf in (0, 2)]
    rows = []
    for key, nflip in configs:
        row = {"index": key, "nflip": nflip}
        for lib in (nearly, faiss):
            index = lib.index_binary_factory(d, key)
            t = time.perf_counter()
            index.add(xb)
            add_s = time.perf_counter() - t
            index.nflip = nflip
            I = index.search(xq, args.k)[1]
            row[lib.__name__] = {"qps": best_qps(index, xq, args.k), "recall": recall(I, gt, args.k),
                                 "add_s": add_s}
        row["qps_ratio"] = row["nearly"]["qps"] / row["faiss"]["qps"]
        rows.append(row)
        print(f"{key:10s} nflip={nflip}  recall {row['nearly']['recall']:.3f} / {row['faiss']['recall']:.3f}  "
              f"QPS {row['nearly']['qps']:10.0f} / {row['faiss']['qps']:10.0f}  ({row['qps_ratio']:.2f}x)", flush=True)
    out = {"command": "python bench/binary_hash.py --threads %d" % args.threads, "threads": args.threads, "n": len(xb), "nq": len(xq), "d_bits": d,
           "k": args.k, "data": "pypi-minilm-100k sign bits", "rows": rows}
    write_results(args.out, out)


if __name__ == "__main__":
    main()
