"""Polysemous codes: nearly beside faiss-cpu on the same data, the same thread
count, in the same run.

    python bench/polysemous.py [--threads 2] [--M 32] [--ivf 1024/16 64/4] [--ht 96 104 112 120 128]

Data: ../shared/data (100k MiniLM embeddings, 384-d, unit norm; 1,000
queries), L2 (the same ranking as cosine on these vectors); the exact top-10
from IndexFlatL2. Each library, on its own:
- train: an IndexPQ(384, M, 8) with polysemous training (faiss's defaults:
  500,000 annealing steps, 2 runs, per subquantizer) on 30,000 vectors; the
  renumbering alone is timed again on the same trained codebooks;
- pq: that index's plain ADC search (ST_PQ) and ST_polysemous at each
  Hamming threshold --ht: recall@10, the fraction of codes that passed the
  filter (indexPQ_stats), queries per second (the 1,000 queries in one
  batch, best of 3);
- ivfpq: "IVF{nlist},PQ{M}" (polysemous training, faiss's factory default)
  at nprobe, for each nlist/nprobe of --ivf, with polysemous_ht 0 (no
  filter) and each --ht. The filter saves PQ distances, but each probed list
  needs the query's code first: it pays off on long lists (IVF64: ~1,560
  codes a list), not on short ones (IVF1024: ~100).
Writes bench/results/polysemous.json and polysemous.png (recall against
QPS, one curve per library and index).
"""
import argparse
import json
import os
import time

import numpy as np

from search_metrics import HERE, best_qps, libraries, load_real, recall, write_results


def train_pq(lib, xt, M):
    index = lib.IndexPQ(xt.shape[1], M, 8)
    index.do_polysemous_training = True
    t = time.perf_counter()
    index.train(xt)
    total = time.perf_counter() - t
    # the renumbering alone, on a fresh copy of codebooks trained without it
    pq = lib.ProductQuantizer(xt.shape[1], M, 8)
    pq.train(xt)
    pt = lib.PolysemousTraining()
    t = time.perf_counter()
    if lib.__name__ == "faiss":
        pt.optimize_pq_for_hamming(pq, len(xt), lib.swig_ptr(xt))
    else:
        pt.optimize_pq_for_hamming(pq, xt)
    return index, total, time.perf_counter() - t


def sweep(lib, index, xq, gt, hts, set_ht, stats=None):
    rows = []
    for ht in hts:
        set_ht(ht)
        if stats is not None:
            stats.reset()
        _, I = index.search(xq, 10)
        row = {"ht": ht, "recall": recall(I, gt, 10), "qps": best_qps(index, xq, 10)}
        if stats is not None:
            stats.reset()
            index.search(xq, 10)
            row["passed"] = stats.n_hamming_pass / max(1, stats.ncode)
        rows.append(row)
        print(f"  {lib.__name__:6s} ht {ht:4d}: recall {row['recall']:.3f}  QPS {row['qps']:8.0f}"
              + (f"  passed {row['passed']:.4f}" if "passed" in row else ""), flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--M", type=int, default=32)
    ap.add_argument("--ivf", nargs="+", default=["1024/16", "64/4"], help="nlist/nprobe pairs")
    ap.add_argument("--ht", type=int, nargs="+", default=[96, 104, 112, 120, 128])
    ap.add_argument("--out", default=os.path.join(HERE, "results", "polysemous.json"))
    ap.add_argument("--replot", action="store_true", help="only redraw the PNG from --out")
    args = ap.parse_args()
    if args.replot:
        with open(args.out) as f:
            return plot(json.load(f), args.out)
    faiss, nearly = libraries(args.threads)
    xb, xq = load_real()
    xt = xb[:30000]
    exact = nearly.IndexFlatL2(xb.shape[1])
    exact.add(xb)
    gt = exact.search(xq, 10)[1]
    ivf_configs = [tuple(int(v) for v in c.split("/")) for c in args.ivf]
    out = {"data": "pypi-minilm-100k (L2 on unit vectors)", "threads": args.threads, "M": args.M,
           "measured_on": time.strftime("%Y-%m-%d"), "libraries": {}}
    for lib in (nearly, faiss):
        print(f"{lib.__name__}: training IndexPQ(384, {args.M}, 8) with polysemous training", flush=True)
        index, total, anneal = train_pq(lib, xt, args.M)
        index.add(xb)
        res = {"train_s": total, "renumbering_s": anneal}
        print(f"  train {total:.1f} s, renumbering alone {anneal:.1f} s", flush=True)
        stats = lib.cvar.indexPQ_stats

        def set_pq(ht, index=index):
            index.search_type = lib.IndexPQ.ST_PQ if ht == 0 else lib.IndexPQ.ST_polysemous
            index.polysemous_ht = ht

        res["pq"] = sweep(lib, index, xq, gt, [0] + args.ht, set_pq, stats)
        for nlist, nprobe in ivf_configs:
            key = f"ivfpq_{nlist}_nprobe{nprobe}"
            print(f"{lib.__name__}: IVF{nlist},PQ{args.M} at nprobe {nprobe}", flush=True)
            ivf = lib.index_factory(xb.shape[1], f"IVF{nlist},PQ{args.M}")
            t = time.perf_counter()
            ivf.train(xt)
            res[key + "_train_s"] = time.perf_counter() - t
            ivf.add(xb)
            ivf.nprobe = nprobe

            def set_ivf(ht, ivf=ivf):
                ivf.polysemous_ht = ht

            res[key] = sweep(lib, ivf, xq, gt, [0] + args.ht, set_ivf)
        out["libraries"][lib.__name__] = res
    write_results(args.out, out)
    plot(out, args.out)


def plot(out, path):
    """Recall against QPS, one curve per library and index, thresholds
    rising to the right and "no filter" (ht 0) last."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = {"pq": "-o", 0: "--s", 1: ":^"}
    for name, res in out["libraries"].items():
        keys = ["pq"] + sorted(k for k in res if k.startswith("ivfpq_") and not k.endswith("_train_s"))
        for i, key in enumerate(keys):
            rows = sorted(res[key], key=lambda r: r["ht"] or float("inf"))
            nlist, _, nprobe = key[len("ivfpq_"):].partition("_nprobe")
            label = f"{name} PQ{out['M']}" if key == "pq" else f"{name} IVF{nlist},PQ{out['M']} nprobe {nprobe}"
            ax.plot([r["recall"] for r in rows], [r["qps"] for r in rows], styles["pq" if i == 0 else min(i - 1, 1)],
                    color="C0" if name == "nearly" else "C3", alpha=1.0 if i == 0 else 0.75, label=label)
            ax.plot(rows[-1]["recall"], rows[-1]["qps"], "k*", markersize=7)
    ax.set_xlabel("recall@10 (black stars: no filter)")
    ax.set_ylabel("queries per second")
    ax.set_yscale("log")
    ax.set_title(f"Polysemous filtering: Hamming thresholds, {out['threads']} threads")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.splitext(path)[0] + ".png", dpi=110)

if __name__ == "__main__":
    main()
