"""Range filters over ordered ids (IDSelectorRange with assume_sorted):
nearly beside faiss on the same data, the same thread count, in the same run.

    python bench/sorted_range.py [--threads 2] [--key IVF1024,Flat] [--nprobe 32]

Data: ../shared/data (100k MiniLM embeddings, 384-d; 1,000 queries). The
base is added in order, so every inverted list holds its ids in ascending
order, as it does when ids are timestamps. For each window of ids (a
fraction of the base: the last 1%, 10%, 50%), both libraries search with
IDSelectorRange(imin, imax) and with IDSelectorRange(imin, imax, True)
(assume_sorted: each list's stretch in range is found by bisection and only
it is scanned). Reported: queries per second (best of 3) and recall@10
against the exact top 10 within the window.

Writes bench/results/sorted_range.json.
"""
import argparse
import os

import numpy as np

from search_metrics import best_qps, libraries, load_real, recall, write_results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--key", default="IVF1024,Flat")
    ap.add_argument("--nprobe", type=int, default=32)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "sorted_range.json"))
    args = ap.parse_args()
    faiss, nearly = libraries(args.threads)
    xb, xq = (np.ascontiguousarray(x) for x in load_real())
    n, d = xb.shape
    built = {}
    for lib in (nearly, faiss):
        index = lib.index_factory(d, args.key, lib.METRIC_INNER_PRODUCT)
        index.train(xb[:50000])
        index.add(xb)
        index.nprobe = args.nprobe
        built[lib.__name__] = index
    assert built["nearly"].check_ids_sorted()
    rows = []
    for fraction in (0.01, 0.1, 0.5):
        imin, imax = int(n * (1 - fraction)), n
        window = nearly.IndexFlatIP(d)
        window.add(xb[imin:imax])
        gt = window.search(xq, args.k)[1] + imin
        row = {"window": [imin, imax], "fraction": fraction}
        for lib in (nearly, faiss):
            index = built[lib.__name__]
            for sorted_ids in (False, True):
                params = lib.SearchParametersIVF(nprobe=args.nprobe, sel=lib.IDSelectorRange(imin, imax, sorted_ids))

                class WithParams:  # best_qps calls search(xq, k)
                    def search(self, q, k, index=index, params=params):
                        return index.search(q, k, params=params)

                I = index.search(xq, args.k, params=params)[1]
                row[f"{lib.__name__}{'_sorted' if sorted_ids else ''}"] = {
                    "qps": best_qps(WithParams(), xq, args.k), "recall": recall(I, gt, args.k)}
        row["nearly_sorted_over_faiss_sorted"] = row["nearly_sorted"]["qps"] / row["faiss_sorted"]["qps"]
        row["nearly_sorted_over_nearly"] = row["nearly_sorted"]["qps"] / row["nearly"]["qps"]
        rows.append(row)
        print(f"ids in the last {fraction:4.0%}: QPS nearly {row['nearly']['qps']:7.0f} -> sorted "
              f"{row['nearly_sorted']['qps']:7.0f} ({row['nearly_sorted_over_nearly']:.1f}x); faiss "
              f"{row['faiss']['qps']:7.0f} -> sorted {row['faiss_sorted']['qps']:7.0f}; nearly/faiss sorted "
              f"{row['nearly_sorted_over_faiss_sorted']:.2f}x; recall {row['nearly_sorted']['recall']:.3f} / "
              f"{row['faiss_sorted']['recall']:.3f}", flush=True)
    out = {"command": f"python bench/sorted_range.py --threads {args.threads} --key {args.key} --nprobe {args.nprobe}",
           "threads": args.threads, "n": n,
           "nq": len(xq), "d": d, "k": args.k, "metric": "IP", "data": "pypi-minilm-100k", "rows": rows}
    write_results(args.out, out)


if __name__ == "__main__":
    main()
