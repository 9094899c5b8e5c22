"""Level-0 far candidates of the GPU graph build, checked on the CPU.

The GPU build (cuda/graph_build.cu) takes each node's far candidates (its
nearest nodes of level 1, which bridge clusters) from the same inverted lists
as its k-NN (its 16 nearest of n/1000 lists), not from all level-1 nodes.
This builds level 0 both ways with the CPU graph_build from the same exact
k-NN lists (hnsw_from_knn; no far candidates on the upper levels in either,
so only level 0 differs) and compares the recall of the CPU search.

    python bench/graph_far_candidates.py [--data ../shared/data]

Writes bench/results/graph_far_candidates.json.
"""
import argparse
import json
import os
import time

import numpy as np

import nearly


def top(S, k):
    """Best k columns of each row of S (largest first, ties to the lower column)."""
    I = np.argpartition(-S, k, axis=1)[:, :k]
    V = np.take_along_axis(S, I, 1)
    o = np.lexsort((I, -V), axis=1)
    return np.take_along_axis(V, o, 1), np.take_along_axis(I, o, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "graph_far_candidates.json"))
    args = ap.parse_args()
    z = np.load(os.path.join(args.data, "pypi-minilm-100k.npz"))
    x, xq = z["base"].astype(np.float32), z["queries"].astype(np.float32)
    gt = z["gt_ip_100"][:, :10]
    n, d = x.shape
    M, n_lists, n_probe = 16, n // 1000, 16
    k = kf = 4 * M  # knn_factor 2 and far_factor 2 times level 0's 2M links
    t0 = time.time()
    flat = nearly.IndexFlatIP(d)
    flat.add(x)
    near_s, near_i = flat.search(x, k + 1)
    keep = near_i != np.arange(n)[:, None]  # each row's own id out
    near_s = np.array([r[m][:k] for r, m in zip(near_s, keep)], np.float32)
    near_i = np.array([r[m][:k] for r, m in zip(near_i, keep)], np.int64)
    # level-1 nodes: the levels the build draws (the same seed in every build)
    base = nearly.hnsw_from_knn(x, M, nearly.METRIC_INNER_PRODUCT, knn=(near_s, near_i), far_factor=0)
    up = np.flatnonzero(np.array(base.hnsw.slot_levels()) >= 1)
    # lists as the GPU build makes them: k-means on 64 rows per list, probes by the metric
    rng = np.random.default_rng(0)
    km = nearly.Kmeans(d, n_lists, niter=10, max_points_per_centroid=64, seed=1234)
    km.train(x[rng.choice(n, 64 * n_lists, replace=False)])
    cent = km.centroids.reshape(n_lists, d)
    probes = np.argsort(-(x @ cent.T), axis=1)[:, :n_probe]
    up_list = probes[up, 0]
    far = {"exact": [], "lists": []}
    for a in range(0, n, 4096):
        S = x[a:a + 4096] @ x[up].T
        S[up[None, :] == np.arange(a, a + len(S))[:, None]] = -np.inf
        far["exact"].append(top(S, kf))
        in_probes = (up_list[None, :, None] == probes[a:a + 4096][:, None, :]).any(-1)
        V, I = top(np.where(in_probes, S, -np.inf), kf)
        far["lists"].append((V, np.where(np.isfinite(V), I, -1)))
    out = {"data": "pypi-minilm-100k (real all-MiniLM-L6-v2 embeddings)", "M": M, "n_lists": n_lists,
           "n_probe": n_probe, "level1_nodes": int(len(up)), "efSearch": [16, 32, 64, 128, 256], "recall@10": {}}
    tables = {}
    for name, parts in far.items():
        V = np.concatenate([p[0] for p in parts])
        I = np.concatenate([p[1] for p in parts])
        I = np.where(I >= 0, up[np.maximum(I, 0)], -1)
        tables[name] = I
        # near and far side by side, by score (graph_build's add_far_candidates); a row twice: the first kept
        S = np.concatenate([near_s, np.where(I >= 0, V, -3.0)], 1)
        C = np.concatenate([near_i, I], 1)
        o = np.argsort(-S, axis=1, kind="stable")
        S, C = np.take_along_axis(S, o, 1), np.take_along_axis(C, o, 1)
        for row in C:
            _, first = np.unique(row, return_index=True)
            dup = np.ones(len(row), bool)
            dup[first] = False
            row[dup] = -1
        g = nearly.hnsw_from_knn(x, M, nearly.METRIC_INNER_PRODUCT, knn=(S.astype(np.float32), C), knn_factor=4,
                                 far_factor=0)
        rec = []
        for ef in out["efSearch"]:
            g.hnsw.efSearch = ef
            I_ = g.search(xq, 10)[1]
            rec.append(float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I_, gt)])))
        out["recall@10"]["far candidates " + name] = rec
        print(name, rec, f"{time.time() - t0:.0f} s", flush=True)
    rec = []
    for ef in out["efSearch"]:
        base.hnsw.efSearch = ef
        I_ = base.search(xq, 10)[1]
        rec.append(float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I_, gt)])))
    out["recall@10"]["no far candidates"] = rec
    out["table_overlap"] = float(np.mean([len(set(a) & set(b) - {-1}) / kf
                                          for a, b in zip(tables["exact"], tables["lists"])]))
    print(out, flush=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
