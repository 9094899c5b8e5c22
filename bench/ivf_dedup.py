"""IndexIVFFlatDedup ("IVF1024,FlatDedup") on a corpus where half the
vectors are copies, beside IVF-Flat holding every copy, nearly beside
faiss, in the same run.

    python bench/ivf_dedup.py [--threads 2] [--copies 100000] [--nprobe 8 32]

Data: ../shared/data (100k MiniLM embeddings, 384-d, deduplicated; 1,000
queries), inner product. The corpus is the base plus --copies copies of
base vectors drawn with a power law (a few texts copied many times, most
not at all, as in crawled text), shuffled. Reported: add time, the index's
serialized size, QPS (best of 3) and recall@10 counted by score, because
copies tie: a result counts when its true score reaches the exact 10th best.

Writes bench/results/ivf_dedup.json.
"""
import argparse
import os
import time

import numpy as np

from search_metrics import best_qps, libraries, load_real, write_results


def corpus_with_copies(xb, copies, seed=0):
    rng = np.random.default_rng(seed)
    weight = 1.0 / np.arange(1, len(xb) + 1) ** 0.8  # Zipf-like: rank r copied ~ r^-0.8 times
    src = rng.permutation(len(xb))[rng.choice(len(xb), size=copies, p=weight / weight.sum())]
    x = np.vstack([xb, xb[src]])
    return np.ascontiguousarray(x[rng.permutation(len(x))])


def recall_by_score(I, xq, x, kth):
    """Mean fraction of the k results whose true inner product reaches the exact k-th best."""
    k = I.shape[1]
    hits = [np.count_nonzero(x[I[q][I[q] >= 0]] @ xq[q] >= kth[q] - 1e-5) for q in range(len(xq))]
    return float(np.mean(np.minimum(hits, k)) / k)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--copies", type=int, default=100_000)
    ap.add_argument("--nprobe", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "ivf_dedup.json"))
    args = ap.parse_args()
    faiss, nearly = libraries(args.threads)
    xb, xq = (np.ascontiguousarray(v) for v in load_real())
    x = corpus_with_copies(xb, args.copies)
    d = x.shape[1]
    exact = nearly.IndexFlatIP(d)
    exact.add(x)
    kth = exact.search(xq, args.k)[0][:, -1]
    distinct = len(np.unique(x.view(np.uint8).reshape(len(x), -1), axis=0))
    out = {"threads": args.threads, "n": len(x), "distinct": distinct, "k": args.k, "rows": []}
    print(f"corpus: {len(x)} vectors, {distinct} distinct")
    for lib in (nearly, faiss):
        for key in ("IVF1024,FlatDedup", "IVF1024,Flat"):
            index = lib.index_factory(d, key, lib.METRIC_INNER_PRODUCT)
            index.train(x[:50000])
            t = time.perf_counter()
            index.add(x)
            add_s = time.perf_counter() - t
            size = len(lib.serialize_index(index))
            for nprobe in args.nprobe:
                index.nprobe = nprobe
                I = index.search(xq, args.k)[1]
                row = {"library": lib.__name__, "key": key, "nprobe": nprobe, "add_s": add_s, "bytes": size,
                       "recall": recall_by_score(I, xq, x, kth), "qps": best_qps(index, xq, args.k)}
                out["rows"].append(row)
                print(f"{lib.__name__:6s} {key:18s} nprobe {nprobe:3d}: add {add_s:6.2f} s  {size / 1e6:6.1f} MB  "
                      f"recall {row['recall']:.4f}  QPS {row['qps']:8.0f}", flush=True)
    write_results(args.out, out)


if __name__ == "__main__":
    main()
