"""Panorama (exact search pruned level by level): nearly beside faiss-cpu on
the same data, the same thread count, in the same run.

    python bench/panorama.py [--threads 2] [--levels 8 16] [--nq 1 10 100 1000] [--nprobe 16 64]
                             [--ef 16 32 64 128] [--sections flat ivf hnsw refine]

Data: ../shared/data (100k MiniLM embeddings, 384-d; 1,000 queries), rotated
by a PCA computed in numpy (all 384 dimensions kept: an orthogonal map, so
every distance is unchanged and both libraries get the same vectors), which
puts most of each vector's energy in its first dimensions, what Panorama
prunes on. L2.

Measured, queries per second (best of 3) for batches of --nq queries:
- flat: IndexFlatL2 and IndexFlatL2Panorama{levels} of both libraries, and
  the fraction of level slices read (indexPanorama_stats);
- ivf: IVF1024 lists (the same centroids, trained once, for both
  libraries) as IndexIVFFlat and as IndexIVFFlatPanorama{levels} with
  batches of 128 (the lists hold ~100 vectors) and faiss's default 1,024,
  at nprobe --nprobe; recall@10 against the exact answer;
- hnsw: HNSW32 (efConstruction 40) as IndexHNSWFlat and as
  IndexHNSWFlatPanorama{levels}, at efSearch --ef, batches of --nq (a
  library's indexes timed in turn, best of three rounds); recall@10
  against the exact answer;
- refine: "IVF1024,PQ32x4fs" re-ranked with k_factor 20 and 100 by RFlat
  and by RefinePanorama(FlatL2Panorama{levels}_1), nprobe 16.
Every Panorama result is checked against the exact one (recall@10 1.0 for
flat). Writes bench/results/panorama.json (sections not run keep the
figures of the run that last measured them; measured_on dates each).
"""
import argparse
import json
import os
import time

import numpy as np

from search_metrics import libraries, load_real, recall, write_results


def pca_rotate(xb, xq):
    mean = xb.mean(0)
    cov = np.cov((xb - mean).T.astype(np.float64))
    w, v = np.linalg.eigh(cov)
    rot = v[:, ::-1].astype(np.float32)  # largest variance first
    return np.ascontiguousarray((xb - mean) @ rot), np.ascontiguousarray((xq - mean) @ rot)


def qps(index, xq, k, nq, params=None, runs=3):
    """Queries per second searching xq in batches of nq (best of runs)."""
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        for i in range(0, len(xq), nq):
            if params is None:
                index.search(xq[i:i + nq], k)
            else:
                index.search(xq[i:i + nq], k, params=params)
        best = min(best, time.perf_counter() - t)
    return len(xq) / best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--levels", type=int, nargs="+", default=[8, 16])
    ap.add_argument("--nq", type=int, nargs="+", default=[1, 10, 100, 1000])
    ap.add_argument("--nprobe", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--ef", type=int, nargs="+", default=[16, 32, 64, 128])
    ap.add_argument("--sections", nargs="+", default=["flat", "ivf", "hnsw", "refine"])
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "panorama.json"))
    args = ap.parse_args()
    faiss, nearly = libraries(args.threads)
    xb, xq = load_real()
    xb, xq = pca_rotate(xb, xq)
    n, d = xb.shape
    k = args.k
    energy = np.cumsum((xb.astype(np.float64) ** 2).sum(0))
    out = {"data": f"pypi-minilm-100k, PCA-rotated ({n} x {d}), {len(xq)} queries, L2, k={k}",
           "threads": args.threads, "energy_first_quarter_of_dims": float(energy[d // 4 - 1] / energy[-1]),
           "flat": [], "ivf": [], "hnsw": [], "refine": []}
    gt = nearly.IndexFlatL2(d)
    gt.add(xb)
    _, I_gt = gt.search(xq, k)

    for lib_name, lib in (("nearly", nearly), ("faiss", faiss)) if "flat" in args.sections else ():
        plain = lib.IndexFlatL2(d)
        plain.add(xb)
        for nq in args.nq:
            row = {"library": lib_name, "index": "Flat", "nq": nq, "qps": qps(plain, xq, k, nq)}
            out["flat"].append(row)
            print(row, flush=True)
        for levels in args.levels:
            index = lib.IndexFlatL2Panorama(d, levels)
            index.add(xb)
            for nq in args.nq:
                lib.cvar.indexPanorama_stats.reset()
                _, I = index.search(xq[:nq], k)
                ratio = lib.cvar.indexPanorama_stats.ratio_dims_scanned
                row = {"library": lib_name, "index": f"FlatL2Panorama{levels}", "nq": nq,
                       "qps": qps(index, xq, k, nq), "ratio_dims_scanned": ratio,
                       "recall": recall(I, I_gt[:nq], k)}
                out["flat"].append(row)
                print(row, flush=True)

    if "ivf" in args.sections:
        coarse = nearly.IndexIVFFlat(nearly.IndexFlatL2(d), d, 1024)
        coarse.train(xb[:50000])
        centroids = coarse.quantizer.reconstruct_n(0, 1024)
    for lib_name, lib in (("nearly", nearly), ("faiss", faiss)) if "ivf" in args.sections else ():
        variants = [("IVF1024,Flat", None, None)] + [
            (f"IVF1024,FlatPanorama{levels}_{batch}", levels, batch) for levels in args.levels for batch in (128, 1024)]
        for name, levels, batch in variants:
            quantizer = lib.IndexFlatL2(d)
            quantizer.add(centroids)
            if levels is None:
                index = lib.IndexIVFFlat(quantizer, d, 1024)
            else:
                index = lib.IndexIVFFlatPanorama(quantizer, d, 1024, levels, lib.METRIC_L2, True, batch)
            index.add(xb)
            for nprobe in args.nprobe:
                index.nprobe = nprobe
                _, I = index.search(xq, k)
                for nq in args.nq:
                    lib.cvar.indexPanorama_stats.reset()  # the ratio of the timed searches, in batches of nq
                    row = {"library": lib_name, "index": name, "nprobe": nprobe, "nq": nq,
                           "qps": qps(index, xq, k, nq), "recall": recall(I, I_gt, k)}
                    if levels is not None:
                        row["ratio_dims_scanned"] = lib.cvar.indexPanorama_stats.ratio_dims_scanned
                    out["ivf"].append(row)
                    print(row, flush=True)
            del index, quantizer

    for lib_name, lib in (("nearly", nearly), ("faiss", faiss)) if "hnsw" in args.sections else ():
        indexes, build_s = {}, {}
        for levels in [None] + args.levels:
            name = "HNSW32,Flat" if levels is None else f"HNSW32_FlatPanorama{levels}"
            indexes[name] = lib.IndexHNSWFlat(d, 32) if levels is None else lib.IndexHNSWFlatPanorama(d, 32, levels)
            indexes[name].hnsw.efConstruction = 40
            t = time.perf_counter()
            indexes[name].add(xb)
            build_s[name] = time.perf_counter() - t
        for ef in args.ef:
            stats = {}
            for name, index in indexes.items():
                index.hnsw.efSearch = ef
                lib.cvar.indexPanorama_stats.reset()
                _, I = index.search(xq, k)
                stats[name] = (recall(I, I_gt, k), lib.cvar.indexPanorama_stats.ratio_dims_scanned)
            for nq in args.nq:
                # One library's indexes timed in turn, three rounds: they
                # share the machine's noise, so their ratios hold.
                best = dict.fromkeys(indexes, 0.0)
                for _ in range(3):
                    for name, index in indexes.items():
                        best[name] = max(best[name], qps(index, xq, k, nq, runs=1))
                for name in indexes:
                    row = {"library": lib_name, "index": name, "efSearch": ef, "nq": nq, "build_s": build_s[name],
                           "qps": best[name], "recall": stats[name][0]}
                    if name != "HNSW32,Flat":
                        row["ratio_dims_scanned"] = stats[name][1]
                    out["hnsw"].append(row)
                    print(row, flush=True)
        del indexes

    for lib_name, lib in (("nearly", nearly), ("faiss", faiss)) if "refine" in args.sections else ():
        for refine in ["RFlat"] + [f"RefinePanorama(FlatL2Panorama{levels}_1)" for levels in args.levels]:
            index = lib.index_factory(d, "IVF1024,PQ32x4fs," + refine)
            index.train(xb[:50000])
            index.add(xb)
            base = index.base_index if lib is nearly else faiss.downcast_index(index.base_index)
            base.nprobe = 16
            for k_factor in (20, 100):
                params = lib.IndexRefineSearchParameters(k_factor=k_factor)
                for nq in args.nq:
                    lib.cvar.indexPanorama_stats.reset()
                    _, I = index.search(xq, k, params=params)
                    row = {"library": lib_name, "index": "IVF1024,PQ32x4fs," + refine, "nq": nq,
                           "k_factor": k_factor, "qps": qps(index, xq, k, nq, params), "recall": recall(I, I_gt, k)}
                    if refine != "RFlat":
                        row["ratio_dims_scanned"] = lib.cvar.indexPanorama_stats.ratio_dims_scanned
                    out["refine"].append(row)
                    print(row, flush=True)
    last = {}
    if os.path.exists(args.out):  # sections not run this time keep their last figures
        with open(args.out) as f:
            last = json.load(f)
    out["measured_on"] = dict(last.get("measured_on", {}))
    for section in ("flat", "ivf", "hnsw", "refine"):
        if section in args.sections:
            out["measured_on"][section] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        elif last.get(section):
            out[section] = last[section]
    write_results(args.out, out)


if __name__ == "__main__":
    main()
