"""An IVF index split by centroid (shard_ivf_index_centroids with
generate_ids=True), nearly beside faiss on the same data in the same run.

    python bench/ivf_sharding.py [--threads 2] [--key IVF1024,Flat] [--shards 4]

Data: ../shared/data (100k MiniLM embeddings, 384-d, inner product; 1,000
queries). The index is trained on 50k vectors and holds all 100k; it is then
split into --shards files. Reported:
  - the time to write the shards and their total size, for both libraries
    (faiss copies every list into every shard; nearly's shards hold their
    own lists only);
  - recall@10 (against exact search) and QPS of nearly's shards searched
    together (IndexShards, one process) at nprobe p per shard, beside the
    whole index at nprobe p and at nprobe shards * p (the same number of
    lists scanned);
  - split by data instead (each shard a slice of the vectors over the same
    centroids): IndexShardsIVF (one coarse quantization for all shards)
    beside IndexShards (each shard quantizes the queries itself), QPS at
    each nprobe; both give the whole index's results.

Writes bench/results/ivf_sharding.json.
"""
import argparse
import os
import tempfile
import time

from search_metrics import best_qps, real_problem, recall, write_results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--key", default="IVF1024,Flat")
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--nprobe", type=int, nargs="+", default=[2, 4, 8, 16])
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "ivf_sharding.json"))
    args = ap.parse_args()
    faiss, nearly, xb, xq, gt = real_problem(args.threads, args.k, inner_product=True)
    d = xb.shape[1]

    out = {"key": args.key, "shards": args.shards, "threads": args.threads, "n": len(xb), "write": {}, "rows": []}
    built = {}
    with tempfile.TemporaryDirectory() as tmp:
        for lib in (nearly, faiss):
            name = lib.__name__
            index = lib.index_factory(d, args.key, lib.METRIC_INNER_PRODUCT)
            index.train(xb[:50000])
            index.add(xb)
            ivf = lib.extract_index_ivf(index)
            template = os.path.join(tmp, name + ".%d.index")
            t = time.perf_counter()
            lib.shard_ivf_index_centroids(ivf, args.shards, template, None, True)
            secs = time.perf_counter() - t
            files = [template % s for s in range(args.shards)]
            size = sum(os.path.getsize(f) for f in files)
            whole = os.path.join(tmp, name + ".whole")
            lib.write_index(index, whole)
            out["write"][name] = {"seconds": secs, "shard_bytes": size, "whole_bytes": os.path.getsize(whole)}
            print(f"{name}: {args.shards} shards written in {secs:.2f} s, {size / 1e6:.1f} MB "
                  f"(the whole index {os.path.getsize(whole) / 1e6:.1f} MB)")
            built[name] = (index, [lib.read_index(f) for f in files])

    index, shards = built["nearly"]
    merged = nearly.IndexShards(d, False, False)
    for s in shards:
        merged.add_shard(s)
    for p in args.nprobe:
        row = {"nprobe_per_shard": p}
        for s in shards:
            s.nprobe = p
        row["shards_recall"] = recall(merged.search(xq, args.k)[1], gt, args.k)
        row["shards_qps"] = best_qps(merged, xq, args.k)
        for label, np_ in (("whole_same_nprobe", p), ("whole_same_lists", p * args.shards)):
            index.nprobe = np_
            row[label + "_recall"] = recall(index.search(xq, args.k)[1], gt, args.k)
            row[label + "_qps"] = best_qps(index, xq, args.k)
        out["rows"].append(row)
        print(f"nprobe {p:3d}: shards recall {row['shards_recall']:.4f} QPS {row['shards_qps']:8.0f} | whole at "
              f"nprobe {p}: {row['whole_same_nprobe_recall']:.4f} {row['whole_same_nprobe_qps']:8.0f} | whole at "
              f"nprobe {p * args.shards}: {row['whole_same_lists_recall']:.4f} {row['whole_same_lists_qps']:8.0f}")
    # Split by data: every shard over the same centroids, a slice of the vectors each.
    template = nearly.clone_index(index)
    template.reset()
    by_ivf = nearly.IndexShardsIVF(index.quantizer, index.nlist, False, True)
    plain = nearly.IndexShards(d, False, True)
    for _ in range(args.shards):
        by_ivf.add_shard(nearly.clone_index(template))
    by_ivf.add(xb)
    for part in by_ivf._parts:
        plain.add_shard(part)
    out["by_data"] = []
    for p in args.nprobe:
        for part in by_ivf._parts:
            part.nprobe = p
        index.nprobe = p
        I_ivf, I_plain = by_ivf.search(xq, args.k)[1], plain.search(xq, args.k)[1]
        row = {"nprobe": p, "recall": recall(I_ivf, gt, args.k),
               "whole_recall": recall(index.search(xq, args.k)[1], gt, args.k),
               "same_as_index_shards": float((I_ivf == I_plain).mean()),
               "shards_ivf_qps": best_qps(by_ivf, xq, args.k), "index_shards_qps": best_qps(plain, xq, args.k)}
        out["by_data"].append(row)
        print(f"by data, nprobe {p:3d}: recall {row['recall']:.4f} (whole {row['whole_recall']:.4f}); "
              f"IndexShardsIVF {row['shards_ivf_qps']:8.0f} QPS, IndexShards {row['index_shards_qps']:8.0f} QPS")
    write_results(args.out, out)


if __name__ == "__main__":
    main()
