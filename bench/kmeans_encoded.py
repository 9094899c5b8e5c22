"""k-means over codes (Clustering.train_encoded) beside k-means over the
decoded floats, nearly and faiss, the same data and thread count.

    python bench/kmeans_encoded.py [--threads 2] [--k 1024] [--codec SQ8] [--niter 10]

Data: ../shared/data (100k MiniLM embeddings, 384-d). The codec (SQ8 by
default: 384 bytes a vector against 1,536 as floats) is trained and its codes
written once (faiss's own codec, trained on the same data, gives the same
codes: checked); then each run starts in a fresh process that loads only what
it needs (the codes, or their decoded floats) and clusters them with
max_points_per_centroid large enough to keep every point. Reported per run:
the seconds of the clustering, the process's peak resident memory above the
data it was given (ru_maxrss minus the RSS before training), the final
objective, and whether nearly's train_encoded centroids equal its train() on
the decoded floats bit for bit.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from search_metrics import load_real, write_results  # noqa: E402

CHILD = r"""
import json, sys, time
import numpy as np
lib_name, mode, path, k, niter, threads, codec_string = sys.argv[1:8]
lib = __import__(lib_name)
lib.omp_set_num_threads(int(threads))
codec = lib.read_index(path + "." + lib_name + ".codec")
d = codec.d
if mode == "encoded":
    data = np.load(path + ".codes.npy")
else:
    data = np.load(path + ".decoded.npy")
def status_kb(field):  # VmHWM is this process's own peak (ru_maxrss keeps the parent's across exec)
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
before = status_kb("VmRSS")
clus = lib.Clustering(d, int(k))
clus.niter = int(niter)
clus.max_points_per_centroid = 1 << 20
index = lib.IndexFlatL2(d)
t = time.perf_counter()
if mode == "encoded":
    clus.train_encoded(data, codec, index)
else:
    clus.train(data, index)
seconds = time.perf_counter() - t
peak = status_kb("VmHWM")
c = lib.vector_to_array(clus.centroids)
np.save(path + f".{lib_name}.{mode}.centroids.npy", c)
stats = clus.iteration_stats
obj = stats.at(stats.size() - 1).obj
print(json.dumps({"seconds": seconds, "data_mb": data.nbytes / 2**20, "extra_peak_mb": (peak - before) / 1024,
                  "obj": float(obj)}))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--k", type=int, default=1024)
    ap.add_argument("--niter", type=int, default=10)
    ap.add_argument("--codec", default="SQ8")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "kmeans_encoded.json"))
    args = ap.parse_args()

    import nearly
    xb = np.ascontiguousarray(load_real()[0])
    d = xb.shape[1]
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data")
        codec = nearly.index_factory(d, args.codec)
        codec.train(xb)
        codes = codec.sa_encode(xb)
        nearly.write_index(codec, path + ".nearly.codec")
        import faiss
        fcodec = faiss.index_factory(d, args.codec)
        fcodec.train(xb)
        assert np.array_equal(fcodec.sa_encode(xb), codes), "faiss's codec encodes otherwise"
        faiss.write_index(fcodec, path + ".faiss.codec")
        np.save(path + ".codes.npy", codes)
        np.save(path + ".decoded.npy", codec.sa_decode(codes))
        for lib in ("nearly", "faiss"):
            for mode in ("decoded", "encoded"):
                out = subprocess.run([sys.executable, "-c", CHILD, lib, mode, path, str(args.k), str(args.niter),
                                      str(args.threads), args.codec], check=True, capture_output=True, text=True)
                rows[f"{lib}_{mode}"] = json.loads(out.stdout.strip().splitlines()[-1])
                print(lib, mode, rows[f"{lib}_{mode}"], flush=True)
        same = np.array_equal(np.load(path + ".nearly.encoded.centroids.npy"),
                              np.load(path + ".nearly.decoded.centroids.npy"))
    print("nearly train_encoded == train(decoded) bit for bit:", same)
    write_results(args.out, {
        "command": "python bench/kmeans_encoded.py --threads %d --k %d --niter %d --codec %s" % (
            args.threads, args.k, args.niter, args.codec),
        "threads": args.threads, "n": len(xb), "d": d, "k": args.k, "niter": args.niter, "codec": args.codec,
        "code_bytes": int(codes.shape[1]), "data": "pypi-minilm-100k", "runs": rows,
        "nearly_encoded_equals_decoded": bool(same)})


if __name__ == "__main__":
    main()
