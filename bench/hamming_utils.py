"""faiss's Hamming utilities (hammings, hammings_knn_hc / _mc,
hamming_count_thres, crosshamming_count_thres, match_hamming_thres,
generalized_hammings_knn_hc), nearly beside faiss on the same codes, the same
thread count, in the same run.

    python bench/hamming_utils.py [--threads 2] [--out bench/results/hamming_utils.json]

The codes are the sign bits of the real embeddings (../shared/data: 100k
MiniLM vectors; the queries are other texts), cut to 32 bytes (faiss's
threshold counts take 4, 8, 16 or 32-byte codes only) and whole (48 bytes:
faiss's all-pairs and k-NN take any size). The generalized Hamming distance
(bytes that differ) is timed on 32-byte PQ codes of the same vectors.
Each time is the best of 3 runs; results are checked equal first.
"""
import argparse
import os

import numpy as np

from search_metrics import best_time, libraries, load_real, write_results

HERE = os.path.dirname(os.path.abspath(__file__))


def ops(lib, xq, xb, ncodes, k, ht):
    """name -> a call that runs the operation with lib, and its output."""
    sp = lib.swig_ptr
    nq, nb = len(xq), len(xb)
    few = xq[:100].copy()
    dis = np.empty((len(few), nb), np.int32)
    D, I = np.empty((nq, k), np.int32), np.empty((nq, k), np.int64)
    count = np.zeros(1, np.uint64)
    cross = xb[:20000].copy()
    m = 1 << 22
    idx, mdis = np.empty(2 * m, np.int64), np.empty(m, np.int32)
    heap = lib.int_maxheap_array_t()
    heap.k, heap.nh, heap.ids, heap.val = k, nq, sp(I), sp(D)
    matched = [0]
    out = {
        "hammings (100 x nb)": (lambda: lib.hammings(sp(few), sp(xb), len(few), nb, ncodes, sp(dis)),
                                lambda: dis.copy()),
        f"hammings_knn_hc k={k}": (lambda: lib.hammings_knn_hc(heap, sp(xq), sp(xb), nb, ncodes, True),
                                   lambda: D.copy()),
        f"hammings_knn_mc k={k}": (lambda: lib.hammings_knn_mc(sp(xq), sp(xb), nq, nb, k, ncodes, sp(D), sp(I)),
                                   lambda: D.copy()),
    }
    if ncodes in (4, 8, 16, 32):
        out.update({
            f"hamming_count_thres ht={ht}": (
                lambda: lib.hamming_count_thres(sp(xq), sp(xb), nq, nb, ht, ncodes, sp(count)),
                lambda: int(count[0])),
            f"crosshamming_count_thres (20k) ht={ht}": (
                lambda: lib.crosshamming_count_thres(sp(cross), len(cross), ht, ncodes, sp(count)),
                lambda: int(count[0])),
            f"match_hamming_thres ht={ht}": (
                lambda: matched.__setitem__(0, lib.match_hamming_thres(sp(xq), sp(xb), nq, nb, ht, ncodes, sp(idx),
                                                                       sp(mdis))),
                lambda: (matched[0], idx[: 2 * matched[0]].copy())),
        })
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "hamming_utils.json"))
    args = ap.parse_args()

    faiss, nearly = libraries(args.threads)
    base, queries = load_real()
    bits = np.packbits(base > 0, axis=1)
    qbits = np.packbits(queries > 0, axis=1)
    rows = []
    for ncodes, ht in ((32, 70), (48, None)):
        xb, xq = np.ascontiguousarray(bits[:, :ncodes]), np.ascontiguousarray(qbits[:, :ncodes])
        per_lib = {lib.__name__: ops(lib, xq, xb, ncodes, args.k, ht) for lib in (nearly, faiss)}
        for name in per_lib["nearly"]:
            row = {"code_bytes": ncodes, "op": name, "nq": len(xq), "nb": len(xb)}
            results = []
            for lib in ("nearly", "faiss"):
                run, result = per_lib[lib][name]
                row[lib + "_s"] = best_time(run)
                results.append(result())
            a, b = results
            same = (a[0] == b[0] and np.array_equal(a[1], b[1])) if isinstance(a, tuple) else np.array_equal(a, b)
            assert same, f"{name}: nearly and faiss differ"
            row["speedup"] = row["faiss_s"] / row["nearly_s"]
            rows.append(row)
            print(f"{ncodes:2d} B  {name:38s} nearly {row['nearly_s'] * 1e3:9.2f} ms  faiss "
                  f"{row['faiss_s'] * 1e3:9.2f} ms  ({row['speedup']:.2f}x)", flush=True)

    # generalized Hamming on PQ codes (faiss's polysemous "generalized" mode)
    pq = nearly.ProductQuantizer(base.shape[1], 32, 8)
    pq.train(base[:20000])
    cb, cq = pq.compute_codes(base), pq.compute_codes(queries)
    res = {}
    for lib in (nearly, faiss):
        D, I = np.empty((len(cq), args.k), np.int32), np.empty((len(cq), args.k), np.int64)
        heap = lib.int_maxheap_array_t()
        heap.k, heap.nh, heap.ids, heap.val = args.k, len(cq), lib.swig_ptr(I), lib.swig_ptr(D)
        sp = lib.swig_ptr
        t = best_time(lambda: lib.generalized_hammings_knn_hc(heap, sp(cq), sp(cb), len(cb), 32, True))
        res[lib.__name__] = (t, D.copy())
    np.testing.assert_array_equal(res["nearly"][1], res["faiss"][1])
    row = {"code_bytes": 32, "op": f"generalized_hammings_knn_hc k={args.k} (PQ32x8 codes)", "nq": len(cq),
           "nb": len(cb), "nearly_s": res["nearly"][0], "faiss_s": res["faiss"][0]}
    row["speedup"] = row["faiss_s"] / row["nearly_s"]
    rows.append(row)
    print(f"32 B  {row['op']:38s} nearly {row['nearly_s'] * 1e3:9.2f} ms  faiss {row['faiss_s'] * 1e3:9.2f} ms  "
          f"({row['speedup']:.2f}x)")
    write_results(args.out, {"threads": args.threads, "k": args.k, "rows": rows})


if __name__ == "__main__":
    main()
