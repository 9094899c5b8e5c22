"""`python -m nearly demo`: build exact and approximate (HNSW) indexes on real
embeddings, search, and report recall@k and QPS, for nearly and (when
importable) for faiss.

Data: ``pypi-minilm-100k.npz`` (all-MiniLM-L6-v2 sentence embeddings, see
../shared/data/README.md), looked up in order at
  1. ``--data PATH``;
  2. ``$NEARLY_DATA`` (the file, or a folder holding it);
  3. ``../shared/data/`` relative to the current directory;
  4. ``../shared/data/`` relative to the repository this package lives in
     (source checkouts and editable installs).
Without it the demo generates clustered synthetic data, and says so.

To show a new index type in the demo, add a line to ``INDEXES``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

DATA_FILE = "pypi-minilm-100k.npz"
ID_OFFSET = 1_000_000  # ids given to IDMap entries, to check that ids are mapped back


# One row per index the demo builds: (label, how to make it).  A factory
# string is built with index_factory(d, string, metric); a callable gets
# (module, d) and returns the index.  "add_ids": add with add_with_ids
# (ids = ID_OFFSET + row), as IDMap requires.  "build_set" / "search_set":
# attributes (dotted paths) set before add / before searching, e.g. an
# approximate index's knobs.  List only what nearly implements; every entry
# runs through the same faiss-API calls on faiss.
INDEXES = [
    {"label": "IndexFlatIP", "make": lambda m, d: m.IndexFlatIP(d)},
    {"label": "'Flat' (IP)", "factory": "Flat", "metric": "METRIC_INNER_PRODUCT"},
    {"label": "'IDMap,Flat' (IP)", "factory": "IDMap,Flat", "metric": "METRIC_INNER_PRODUCT", "add_ids": True},
    {"label": "'L2norm,Flat' (IP)", "factory": "L2norm,Flat", "metric": "METRIC_INNER_PRODUCT"},
    # approximate: graph index; efConstruction kept low so the demo builds fast,
    # efSearch raised to reach about 0.95 recall@10 on the MiniLM data
    {"label": "'HNSW32' (IP) efC=80 efS=64", "factory": "HNSW32", "metric": "METRIC_INNER_PRODUCT",
     "build_set": {"hnsw.efConstruction": 80}, "search_set": {"hnsw.efSearch": 64}},
    # approximate: inverted lists, k-means trained on the base; nprobe 32 is
    # about 0.90 recall@10 on the MiniLM data
    {"label": "'IVF1024,Flat' (IP) nprobe=32", "factory": "IVF1024,Flat", "metric": "METRIC_INNER_PRODUCT",
     "search_set": {"nprobe": 32}},
    # approximate, compressed: RaBitQ codes of 4 bits per dimension (212 B a
    # vector, 1/7 of the floats) in the same lists; nprobe 64 is about 0.90
    {"label": "'IVF1024,RaBitQ4' (IP) nprobe=64", "factory": "IVF1024,RaBitQ4", "metric": "METRIC_INNER_PRODUCT",
     "search_set": {"nprobe": 64}},
]


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------
def _repo_root():
    # python/nearly/demo.py -> the checkout root (valid for source / editable installs)
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def data_candidates(explicit=None):
    cands = []
    if explicit:
        cands.append(explicit)
    env = os.environ.get("NEARLY_DATA")
    if env:
        cands.append(env if env.endswith(".npz") else os.path.join(env, DATA_FILE))
    cands.append(os.path.join(os.getcwd(), "..", "shared", "data", DATA_FILE))
    cands.append(os.path.join(_repo_root(), "..", "shared", "data", DATA_FILE))
    out = []
    for c in cands:
        c = os.path.normpath(os.path.abspath(c))
        if c not in out:
            out.append(c)
    return out


def find_data(explicit=None):
    for c in data_candidates(explicit):
        if os.path.isfile(c):
            return c
    return None


def exact_topk_ip(xb, xq, k, block=128):
    """Exact top-k by inner product with numpy (blocked over queries)."""
    k = min(k, len(xb))
    I = np.empty((len(xq), k), dtype=np.int64)
    xbT = xb.T
    for i0 in range(0, len(xq), block):
        S = xq[i0:i0 + block] @ xbT
        part = np.argpartition(-S, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(S, part, axis=1), axis=1, kind="stable")
        I[i0:i0 + block] = np.take_along_axis(part, order, axis=1)
    return I


def synthetic(n, nq, d=384, n_clusters=200, seed=0):
    """Clustered unit-norm vectors: points scattered around random centres."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, d), dtype=np.float32)

    def draw(m):
        x = centres[rng.integers(0, n_clusters, m)]
        x += rng.standard_normal((m, d), dtype=np.float32) * np.float32(0.6)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x

    return np.ascontiguousarray(draw(n)), np.ascontiguousarray(draw(nq))


def load(args):
    """Returns (xb, xq, gt, description lines)."""
    path = None if args.synthetic else find_data(args.data)
    notes = []
    if path is not None:
        with np.load(path) as z:
            base, queries, gt = z["base"], z["queries"], z["gt_ip_100"]
            n, nq = min(args.n, len(base)), min(args.nq, len(queries))
            xb = np.ascontiguousarray(base[:n], dtype=np.float32)
            xq = np.ascontiguousarray(queries[:nq], dtype=np.float32)
            gt = np.asarray(gt[:nq], dtype=np.int64)
        notes.append(f"data: real all-MiniLM-L6-v2 embeddings from {path}")
        if args.n > len(base) or args.nq > len(queries):
            notes.append(f"      (the file holds {len(base)} base vectors and {len(queries)} queries; using {n} and {nq})")
        if n == len(base) and args.k <= gt.shape[1]:
            gt = gt[:, :args.k]
            notes.append(f"ground truth: the file's exact top-{gt.shape[1]} (gt_ip_100)")
        else:
            t0 = time.perf_counter()
            gt = exact_topk_ip(xb, xq, args.k)
            notes.append(f"ground truth: exact top-{args.k} by numpy over the first {n} vectors "
                         f"({time.perf_counter() - t0:.1f} s)")
    else:
        if args.synthetic:
            notes.append("data: SYNTHETIC (--synthetic given)")
        else:
            notes.append(f"data: SYNTHETIC -- {DATA_FILE} not found (looked at: "
                         + ", ".join(data_candidates(args.data)) + ")")
        notes.append("      clustered random unit vectors, d=384, 200 clusters; recall and speed here are "
                     "not real-data numbers (set NEARLY_DATA to the .npz)")
        t0 = time.perf_counter()
        xb, xq = synthetic(args.n, args.nq)
        gt = exact_topk_ip(xb, xq, args.k)
        notes.append(f"ground truth: exact top-{args.k} by numpy ({time.perf_counter() - t0:.1f} s incl. generation)")
    return xb, xq, gt, notes


# --------------------------------------------------------------------------
# run
# --------------------------------------------------------------------------
def recall_at_k(I, gt):
    """Fraction of gt's top-k ids found among the returned k (vectorized)."""
    I = np.asarray(I)
    hits = (I[:, :, None] == gt[:, None, :]).any(axis=2).sum()
    return float(hits) / gt.size


def _make(mod, spec, d):
    if "factory" in spec:
        return mod.index_factory(d, spec["factory"], getattr(mod, spec["metric"]))
    return spec["make"](mod, d)


def _set_attrs(index, attrs):
    """Set dotted attributes, e.g. {"hnsw.efSearch": 64} -> index.hnsw.efSearch = 64."""
    for path, value in (attrs or {}).items():
        *parents, last = path.split(".")
        obj = index
        for a in parents:
            obj = getattr(obj, a)
        setattr(obj, last, value)
        if getattr(obj, last) != value:
            raise RuntimeError(f"setting {path} = {value!r} did not stick (reads {getattr(obj, last)!r})")


def run_one(mod, spec, xb, xq, k, repeats):
    """Build (train if needed), add, warm up, time `repeats` batched searches.  Returns a dict."""
    d = xb.shape[1]
    t0 = time.perf_counter()
    index = _make(mod, spec, d)
    _set_attrs(index, spec.get("build_set"))
    if not index.is_trained:  # IVF: k-means on the base itself
        index.train(xb)
    if spec.get("add_ids"):
        index.add_with_ids(xb, np.arange(len(xb), dtype=np.int64) + ID_OFFSET)
    else:
        index.add(xb)
    build = time.perf_counter() - t0
    if index.ntotal != len(xb):
        raise RuntimeError(f"ntotal {index.ntotal} after adding {len(xb)} vectors")
    _set_attrs(index, spec.get("search_set"))
    index.search(xq[: min(len(xq), 16)], k)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        D, I = index.search(xq, k)
        times.append(time.perf_counter() - t0)
    if spec.get("add_ids"):
        I = np.where(I >= 0, I - ID_OFFSET, I)
    t = float(np.median(times))
    return {"build_s": build, "search_s": t, "qps": len(xq) / t, "I": I, "D": D}


def _threads_report(mod):
    try:
        return mod.omp_get_max_threads()
    except Exception:  # noqa: BLE001
        return "?"


def run(args):
    if min(args.n, args.nq, args.k, args.repeats) < 1 or args.k > args.n:
        print("demo: --n, --nq, --k, --repeats must be >= 1 and --k <= --n", file=sys.stderr)
        return 2
    import nearly

    try:
        import faiss
    except Exception:  # noqa: BLE001 - faiss is optional
        faiss = None
    libs = [("nearly", nearly)] + ([("faiss", faiss)] if faiss is not None and not args.no_faiss else [])

    if args.threads is not None:
        for _, m in libs:
            m.omp_set_num_threads(args.threads)
    elif faiss is not None:
        faiss.omp_set_num_threads(nearly.omp_get_max_threads())  # same count for both

    xb, xq, gt, notes = load(args)
    k = gt.shape[1]
    print(f"nearly {getattr(nearly, '__version__', '?')}  simd={nearly.simd_level()}  "
          f"threads={_threads_report(nearly)}"
          + (f"  |  faiss {faiss.__version__} threads={_threads_report(faiss)}" if len(libs) > 1 else
             ("  |  faiss: not importable, nearly only" if faiss is None else "")))
    for line in notes:
        print(line)
    print(f"n={len(xb)}  d={xb.shape[1]}  queries={len(xq)}  k={k}  "
          f"(QPS: batched search of all queries, median of {args.repeats})\n")

    header = ["index", "library", f"recall@{k}", "QPS", "build s"] + (["nearly/faiss QPS"] if len(libs) > 1 else [])
    rows, failures = [], 0
    for spec in INDEXES:
        res = {}
        for name, mod in libs:
            try:
                res[name] = run_one(mod, spec, xb, xq, k, args.repeats)
            except Exception as e:  # noqa: BLE001 - show the failure, keep demoing the rest
                failures += name == "nearly"
                res[name] = e
        for j, (name, _) in enumerate(libs):
            r = res[name]
            if isinstance(r, Exception):
                row = [spec["label"] if j == 0 else "", name, f"ERROR {type(r).__name__}: {r}", "", ""]
            else:
                row = [spec["label"] if j == 0 else "", name, f"{recall_at_k(r['I'], gt):.4f}",
                       f"{r['qps']:,.0f}", f"{r['build_s']:.3f}"]
            if len(libs) > 1:
                ok = all(not isinstance(res[n], Exception) for n, _ in libs)
                row.append(f"{res['nearly']['qps'] / res['faiss']['qps']:.2f}x" if ok and j == 0 else "")
            rows.append(row)
        print(_format_row_live(header, rows[-len(libs):], first=spec is INDEXES[0]), flush=True)
    if failures:
        print(f"\n{failures} nearly index(es) failed", file=sys.stderr)
        return 1
    return 0


_WIDTHS = [max(27, *(len(spec["label"]) for spec in INDEXES)), 8, 9, 10, 7, 16]


def _format_row_live(header, rows, first):
    def fmt(r):
        out = []
        for i, c in enumerate(r):
            w = _WIDTHS[i] if i < len(_WIDTHS) else 10
            out.append(str(c).ljust(w) if i < 2 else str(c).rjust(w))
        return "  ".join(out).rstrip()

    lines = []
    if first:
        lines.append(fmt(header))
        lines.append("  ".join("-" * (_WIDTHS[i] if i < len(_WIDTHS) else 10) for i in range(len(header))))
    lines.extend(fmt(r) for r in rows)
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser):
    p.add_argument("--n", type=int, default=100_000, help="base vectors (default 100000)")
    p.add_argument("--nq", type=int, default=1000, help="queries (default 1000)")
    p.add_argument("--k", type=int, default=10, help="neighbours per query (default 10)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for nearly and faiss (default: nearly's default, faiss set to match)")
    p.add_argument("--repeats", type=int, default=3, help="timed searches per index, median reported (default 3)")
    p.add_argument("--data", default=None, help=f"path to {DATA_FILE} (default: $NEARLY_DATA, then ../shared/data)")
    p.add_argument("--synthetic", action="store_true", help="use clustered synthetic data even if the file exists")
    p.add_argument("--no-faiss", action="store_true", help="skip the faiss comparison")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m nearly demo", description=__doc__.splitlines()[0])
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
