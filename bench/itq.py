"""ITQ binary codes ("ITQ{d},LSHt") beside faiss-cpu on the same data, the
same thread count, in the same run.

    python bench/itq.py [--threads 2] [--n 50000] [--out bench/results/itq.json]

Data: the first --n of ../shared/data's 100k MiniLM embeddings (384-d) and
its 1,000 queries. Each library trains the transform and the LSH thresholds
on the base, adds it and searches the k' = 100 nearest codes by Hamming
distance. Reported: recall@10 within those 100 (the exact L2 top 10),
queries per second, training time, and the mean quantization loss
|sign(y) - y|^2 of the rotated base vectors y (what ITQ minimizes).
"""
import argparse
import os
import time

import numpy as np

from search_metrics import best_qps, real_problem, recall, write_results

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "itq.json"))
    args = ap.parse_args()

    faiss, nearly, xb, xq, _ = real_problem(args.threads)
    xb = np.ascontiguousarray(xb[:args.n])
    d = xb.shape[1]
    exact = nearly.IndexFlatL2(d)
    exact.add(xb)
    gt = exact.search(xq, 10)[1]
    rows = []
    for key in ("ITQ64,LSHt", "ITQ128,LSHt", "ITQ,LSHt"):
        row = {"index": key}
        for lib in (nearly, faiss):
            index = lib.index_factory(d, key)
            t = time.perf_counter()
            index.train(xb)
            train_s = time.perf_counter() - t
            index.add(xb)
            I = index.search(xq, 100)[1]
            itq = lib.downcast_VectorTransform(index.chain.at(0))
            y = itq.apply(xb[:10000]) if lib is nearly else itq.apply_py(xb[:10000])
            row[lib.__name__] = {"recall10_at100": recall(I, gt, 10), "qps": best_qps(index, xq, 100),
                                 "train_s": train_s,
                                 "loss": float(((np.where(y < 0, -1, 1) - y) ** 2).sum(1).mean())}
        rows.append(row)
        n, f = row["nearly"], row["faiss"]
        print(f"{key:12s} recall10@100 {n['recall10_at100']:.3f} / {f['recall10_at100']:.3f}  loss "
              f"{n['loss']:.3f} / {f['loss']:.3f}  QPS {n['qps']:7.0f} / {f['qps']:7.0f}  train "
              f"{n['train_s']:.2f} / {f['train_s']:.2f} s", flush=True)
    write_results(args.out, {"command": f"python bench/itq.py --threads {args.threads} --n {args.n}",
                             "threads": args.threads, "n": len(xb), "nq": len(xq), "d": d,
                             "data": "pypi-minilm-100k", "rows": rows})


if __name__ == "__main__":
    main()
