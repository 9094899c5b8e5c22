"""HNSW level 0 from k-NN lists, and indexes written without their vectors,
beside faiss-cpu on the same data, the same thread count, in the same run.

    python bench/hnsw_level0.py [--threads 2] [--n 50000] [--out bench/results/hnsw_level0.json]

Data: the first --n of ../shared/data's 100k MiniLM embeddings (384-d) and
its 1,000 queries, L2, M = 16. The exact 2M + 1 nearest of every base vector
(itself first) are computed once, by nearly's IndexFlatL2, and handed to both
libraries. Each library then builds `init_level0 = False` (only the nodes
drawn above level 0 are inserted) followed by
`init_level_0_from_knngraph`, and the ordinary HNSW build for reference.
Reported: build times, recall@10 at efSearch 16 to 128, and the size of the
index written whole and with IO_FLAG_SKIP_STORAGE.
"""
import argparse
import os
import time

import numpy as np

from search_metrics import real_problem, recall, write_results

HERE = os.path.dirname(os.path.abspath(__file__))
EFS = (16, 32, 64, 128)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--M", type=int, default=16)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "hnsw_level0.json"))
    args = ap.parse_args()

    faiss, nearly, xb, xq, _ = real_problem(args.threads)
    xb = np.ascontiguousarray(xb[:args.n])
    d, M = xb.shape[1], args.M
    exact = nearly.IndexFlatL2(d)
    exact.add(xb)
    gt = exact.search(xq, 10)[1]
    t = time.perf_counter()
    Dk, Ik = exact.search(xb, 2 * M + 1)
    knn_s = time.perf_counter() - t
    print(f"exact {2 * M + 1}-NN of {len(xb)} vectors: {knn_s:.1f} s", flush=True)

    def recalls(index):
        out = {}
        for ef in EFS:
            index.hnsw.efSearch = ef
            out[ef] = recall(index.search(xq, 10)[1], gt, 10)
        return out

    res = {}
    for lib in (nearly, faiss):
        name = lib.__name__
        index = lib.IndexHNSWFlat(d, M)
        index.init_level0 = False
        t = time.perf_counter()
        index.add(xb)
        upper_s = time.perf_counter() - t
        t = time.perf_counter()
        index.init_level_0_from_knngraph(Ik.shape[1], lib.swig_ptr(Dk), lib.swig_ptr(Ik))
        level0_s = time.perf_counter() - t
        knn_recall = recalls(index)
        built = lib.IndexHNSWFlat(d, M)
        t = time.perf_counter()
        built.add(xb)
        build_s = time.perf_counter() - t
        whole = len(lib.serialize_index(built))
        links = len(lib.serialize_index(built, lib.IO_FLAG_SKIP_STORAGE))
        res[name] = {"upper_levels_s": upper_s, "level0_from_knn_s": level0_s, "knngraph_recall": knn_recall,
                     "build_s": build_s, "built_recall": recalls(built),
                     "file_bytes": whole, "file_bytes_skip_storage": links}
        r = res[name]
        print(f"{name:7s} upper levels {upper_s:.2f} s + level 0 {level0_s:.2f} s; recall "
              f"{' '.join(f'{v:.3f}' for v in r['knngraph_recall'].values())} (built in {build_s:.1f} s: "
              f"{' '.join(f'{v:.3f}' for v in r['built_recall'].values())}); file {whole / 1e6:.1f} MB, "
              f"without storage {links / 1e6:.1f} MB", flush=True)
    write_results(args.out, {"command": f"python bench/hnsw_level0.py --threads {args.threads} --n {args.n} --M {M}",
                             "threads": args.threads, "n": len(xb), "nq": len(xq), "d": d, "M": M,
                             "efSearch": list(EFS), "exact_knn_s": knn_s, "data": "pypi-minilm-100k",
                             "results": res})


if __name__ == "__main__":
    main()
