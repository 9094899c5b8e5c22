"""IVF lists on disk (OnDiskInvertedLists) beside the same lists in memory,
nearly beside faiss-cpu, on the same data, the same thread count, in the
same run.

    python bench/ondisk.py [--threads 2] [--out bench/results/ondisk.json]

Data: ../shared/data (100k MiniLM embeddings, 384-d; 1,000 queries that are
other texts), L2. For each index ("IVF1024,Flat", "IVF1024,PQ48"): trained
once, the base added in --shards shards written to files, then contrib's
merge_ondisk steps (shards read with IO_FLAG_MMAP, merge_from_multiple into
an OnDiskInvertedLists, replace_invlists, write_index, read_index), timed;
then adds straight into on-disk lists, timed. Reported: the merge and add
times, the index and lists file sizes, recall@10 and queries per second at
each --nprobe (best of 3 runs, lists in the page cache) for the on-disk
index and for the in-memory one.
"""
import argparse
import os
import shutil
import tempfile
import time

import numpy as np

from search_metrics import best_qps, real_problem, recall, write_results

HERE = os.path.dirname(os.path.abspath(__file__))


def merge_ondisk(lib, trained_index, shard_fnames, ivfdata_fname):
    ivfs = []
    for fname in shard_fnames:
        index = lib.read_index(fname, lib.IO_FLAG_MMAP)
        index_ivf = lib.extract_index_ivf(index)
        ivfs.append(index_ivf.invlists)
        index_ivf.own_invlists = False
    index_ivf = lib.extract_index_ivf(trained_index)
    invlists = lib.OnDiskInvertedLists(index_ivf.nlist, index_ivf.code_size, ivfdata_fname)
    vec = lib.InvertedListsPtrVector()
    for il in ivfs:
        vec.push_back(il)
    ntotal = invlists.merge_from_multiple(vec.data(), vec.size(), False)
    trained_index.ntotal = index_ivf.ntotal = ntotal
    index_ivf.replace_invlists(invlists, True)
    invlists.this.disown()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--specs", nargs="*", default=["IVF1024,Flat", "IVF1024,PQ48"])
    ap.add_argument("--nprobe", type=int, nargs="*", default=[8, 32])
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "ondisk.json"))
    args = ap.parse_args()

    faiss, nearly, xb, xq, gt = real_problem(args.threads, args.k)
    d = xb.shape[1]
    rows = []
    tmp = tempfile.mkdtemp(prefix="nearly_ondisk_")
    try:
        for spec in args.specs:
            for lib in (nearly, faiss):
                name = lib.__name__
                work = os.path.join(tmp, name + "_" + spec.replace(",", "_"))
                os.mkdir(work)
                index = lib.index_factory(d, spec)
                index.train(xb[:50_000])
                trained = os.path.join(work, "trained.index")
                lib.write_index(index, trained)
                shards = []
                for s, part in enumerate(np.array_split(np.arange(len(xb)), args.shards)):
                    sh = lib.read_index(trained)
                    sh.add_with_ids(xb[part], part.astype("int64"))
                    shards.append(os.path.join(work, f"shard{s}.index"))
                    lib.write_index(sh, shards[-1])
                    del sh
                t = time.perf_counter()
                index = lib.read_index(trained)
                merge_ondisk(lib, index, shards, os.path.join(work, "merged.ivfdata"))
                lib.write_index(index, os.path.join(work, "populated.index"))
                merge_s = time.perf_counter() - t
                del index
                disk = lib.read_index(os.path.join(work, "populated.index"))
                memory = lib.read_index(trained)
                t = time.perf_counter()
                memory.add(xb)
                add_memory_s = time.perf_counter() - t
                direct = lib.read_index(trained)
                ivf = lib.extract_index_ivf(direct)
                il = lib.OnDiskInvertedLists(ivf.nlist, ivf.code_size, os.path.join(work, "direct.ivfdata"))
                ivf.replace_invlists(il, True)
                il.this.disown()  # faiss: the index owns the lists now
                t = time.perf_counter()
                for i in range(0, len(xb), 10_000):
                    direct.add(xb[i:i + 10_000])
                add_disk_s = time.perf_counter() - t
                del direct, il
                row = {"library": name, "index": spec, "ntotal": int(disk.ntotal), "merge_ondisk_s": merge_s,
                       "add_into_memory_s": add_memory_s, "add_into_ondisk_s": add_disk_s,
                       "index_file_bytes": os.path.getsize(os.path.join(work, "populated.index")),
                       "lists_file_bytes": os.path.getsize(os.path.join(work, "merged.ivfdata")), "search": []}
                for nprobe in args.nprobe:
                    entry = {"nprobe": nprobe}
                    for where, ix in (("ondisk", disk), ("memory", memory)):
                        lib.extract_index_ivf(ix).nprobe = nprobe
                        I = ix.search(xq, args.k)[1]
                        entry[where] = {"recall": recall(I, gt, args.k), "qps": best_qps(ix, xq, args.k)}
                    row["search"].append(entry)
                    print(f"{name:7s} {spec:14s} nprobe {nprobe:3d}  on disk: R@10 {entry['ondisk']['recall']:.3f} "
                          f"{entry['ondisk']['qps']:8.0f} QPS   memory: {entry['memory']['recall']:.3f} "
                          f"{entry['memory']['qps']:8.0f} QPS", flush=True)
                print(f"{name:7s} {spec:14s} merge_ondisk {merge_s:.2f} s, add into memory {add_memory_s:.2f} s, "
                      f"into on-disk lists {add_disk_s:.2f} s", flush=True)
                rows.append(row)
                del disk, memory
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_results(args.out, {"threads": args.threads, "k": args.k, "n_base": int(len(xb)),
                             "n_queries": int(len(xq)), "rows": rows})


if __name__ == "__main__":
    main()
