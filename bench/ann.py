#!/usr/bin/env python
"""ANN benchmarks: nearly against faiss (and, as suites are added, hnswlib / usearch).

Usage
-----
    python bench/ann.py flat [--threads 1 2] [--data PATH] [--out bench/results]
    python bench/ann.py --help          # lists the registered suites

Every suite writes ``<out>/<suite>.json`` (environment + every raw timing) and
``<out>/<suite>.png``, and prints a table.

Method
------
* All libraries in one run use the same thread count (``Engine.set_threads``).
* Every measurement is repeated ``--repeats`` times; each repetition runs every
  engine once, in a rotating order (interleaved), and the median is reported.
* Every engine is warmed up (one untimed call of the same kind) before timing.
* Timings use ``time.perf_counter``.

Extending
---------
Two registries, both plain dicts:

``ENGINES``  name -> Engine subclass.  An engine adapts one library's index to
    ``build(xb, params)``, ``search(xq, k, params) -> (D, I)`` and
    ``set_threads(n)``; ``available()`` says whether its library imports.
    Register with ``@register_engine``.

``SUITES``   name -> Suite subclass.  A suite adds its CLI options
    (``add_arguments``), runs its measurements (``run`` -> a JSON-able dict),
    prints a table (``report``) and draws its figure (``plot``).  Register with
    ``@register_suite``; the CLI picks it up as a sub-command.

Planned suites (add them when nearly implements the index, not before):
``hnsw`` (nearly vs faiss IndexHNSWFlat vs hnswlib vs usearch, sweeping
efSearch, recall@10 vs QPS) and ``ivf`` (nearly vs faiss IVF, sweeping
nprobe).  The plotting helpers (``save_figure`` takes one drawing callable per
panel) are generic; add a line-plot helper next to ``plot_bars`` together with
the first suite that draws recall-vs-QPS curves.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_DIR = os.path.join(REPO_ROOT, "..", "shared", "data")
DEFAULT_DATA = os.path.join(DATA_DIR, "pypi-minilm-100k.npz")
DEFAULT_OUT = os.path.join(REPO_ROOT, "bench", "results")


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------
def load_dataset(path):
    """Load a single-vector .npz (see ../shared/data/README.md) as float32."""
    if not os.path.exists(path):
        sys.exit(f"data file not found: {path} (see ../shared/data/README.md, or pass --data)")
    with np.load(path) as z:
        ds = {
            "path": os.path.abspath(path),
            "xb": np.ascontiguousarray(z["base"], dtype=np.float32),
            "xq": np.ascontiguousarray(z["queries"], dtype=np.float32),
            "gt": np.asarray(z["gt_ip_100"], dtype=np.int64),
        }
    return ds


def recall_at(I, gt, k):
    """Mean fraction of the true top-k (gt[:, :k]) found among the returned top-k."""
    I = np.asarray(I)[:, :k]
    gt = np.asarray(gt)[:, :k]
    hits = sum(len(np.intersect1d(a, b)) for a, b in zip(I, gt))
    return hits / float(gt.size)


# --------------------------------------------------------------------------
# environment
# --------------------------------------------------------------------------
def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags():
    wanted = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "asimd", "sve")
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    have = set(line.split(":", 1)[1].split())
                    return [w for w in wanted if w in have]
    except OSError:
        pass
    return []


def _version(modname):
    try:
        mod = importlib.import_module(modname)
    except Exception:  # noqa: BLE001 - not installed / broken build: report, not crash
        return None
    return getattr(mod, "__version__", "unknown")


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except OSError:
        return None


def _busy_cpu_s():
    """CPU-seconds the whole machine has spent busy (from /proc/stat), or None."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class ForeignLoad:
    """CPU time used by *other* processes while the benchmark ran: busy CPU-seconds
    of the machine minus this process's own.  Anything well above 0 means another
    job competed for the cores and the timings are suspect."""

    def __enter__(self):
        self.busy0, self.own0, self.t0 = _busy_cpu_s(), os.times(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        busy1, own1 = _busy_cpu_s(), os.times()
        self.wall_s = time.perf_counter() - self.t0
        own = (own1.user - self.own0.user) + (own1.system - self.own0.system)
        self.foreign_cpu_s = None if busy1 is None or self.busy0 is None else max(0.0, busy1 - self.busy0 - own)
        return False


def environment():
    env = {
        "loadavg_at_start": loadavg(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "nproc": os.cpu_count(),
        "sched_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {m: _version(m) for m in ("numpy", "faiss", "nearly", "hnswlib", "usearch")},
    }
    try:
        import faiss

        env["faiss_compile_options"] = faiss.get_compile_options().strip()
    except Exception:  # noqa: BLE001
        pass
    try:
        import nearly

        env["nearly_simd_level"] = nearly.simd_level()
        env["nearly_simd_levels_supported"] = list(nearly.simd_levels_supported())
    except Exception as e:  # noqa: BLE001
        env["nearly_simd_level"] = None
        env["nearly_import_error"] = f"{type(e).__name__}: {e}"
    return env


# --------------------------------------------------------------------------
# engines
# --------------------------------------------------------------------------
ENGINES: dict[str, type] = {}


def register_engine(cls):
    ENGINES[cls.name] = cls
    return cls


class Engine:
    """Adapter around one library's index.  Subclasses set ``name``, ``library``."""

    name = None  # registry key, also the label in tables and plots
    library = None  # importable module name

    def __init__(self):
        self.mod = importlib.import_module(self.library)
        self.threads = None

    @classmethod
    def available(cls):
        """(ok, reason)."""
        try:
            importlib.import_module(cls.library)
        except Exception as e:  # noqa: BLE001
            return False, f"{type(e).__name__}: {e}"
        return True, ""

    def version(self):
        return getattr(self.mod, "__version__", "unknown")

    def set_threads(self, n):
        self.threads = n

    def build(self, xb, params):
        raise NotImplementedError

    def search(self, xq, k, params=None):
        raise NotImplementedError


class _FaissAPIFlat(Engine):
    """Exact search through the faiss Python API (faiss itself, or nearly)."""

    def set_threads(self, n):
        self.threads = n
        self.mod.omp_set_num_threads(n)
        got = self.mod.omp_get_max_threads()
        if got != n:
            print(f"warning: {self.name}: omp_set_num_threads({n}) -> omp_get_max_threads() = {got}",
                  file=sys.stderr)

    def build(self, xb, params):
        metric = (params or {}).get("metric", "ip")
        d = xb.shape[1]
        self.index = self.mod.IndexFlatIP(d) if metric == "ip" else self.mod.IndexFlatL2(d)
        self.index.add(xb)
        return self

    def search(self, xq, k, params=None):
        return self.index.search(xq, k)


@register_engine
class NearlyFlat(_FaissAPIFlat):
    name = "nearly"
    library = "nearly"


@register_engine
class FaissFlat(_FaissAPIFlat):
    name = "faiss"
    library = "faiss"


def make_engines(names):
    """Instantiate the available engines among ``names``; report the others."""
    engines, skipped = {}, {}
    for n in names:
        if n not in ENGINES:
            sys.exit(f"unknown engine {n!r}; registered: {', '.join(ENGINES)}")
        ok, why = ENGINES[n].available()
        if ok:
            engines[n] = ENGINES[n]()
        else:
            skipped[n] = why
            print(f"note: engine {n!r} skipped ({why})", file=sys.stderr)
    if not engines and names:  # suites without engines (muvera) pass none
        sys.exit("no engine available")
    return engines, skipped


# --------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------
def interleaved(fns, repeats, warmup=1):
    """Run every callable in ``fns`` (name -> f() -> float seconds or None)
    ``repeats`` times, interleaving the names and rotating their order.

    ``f`` may return its own measured duration (a float), else the wall time of
    the call is used.  Returns name -> list of ``repeats`` durations (seconds).
    """
    names = list(fns)
    for _ in range(warmup):
        for n in names:
            fns[n]()
    out = {n: [] for n in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[: r % len(names)]
        for n in order:
            t0 = time.perf_counter()
            res = fns[n]()
            dt = time.perf_counter() - t0
            out[n].append(float(res) if isinstance(res, float) else dt)
    return out


def per_query_latencies(engine, xq, k):
    """Time ``search(x[None], k)`` once per query; returns seconds per call."""
    lat = np.empty(len(xq))
    search = engine.search
    for i in range(len(xq)):
        q = xq[i: i + 1]
        t0 = time.perf_counter()
        search(q, k)
        lat[i] = time.perf_counter() - t0
    return lat


# --------------------------------------------------------------------------
# plotting (generic: reused by every suite)
# --------------------------------------------------------------------------
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_bars(ax, groups, series, ylabel, title, fmt="{:.3g}", log=False):
    """Grouped bar chart: one group per entry of ``groups`` (x axis), one bar per
    series (name -> list of values aligned with groups; None = missing)."""
    n = max(len(series), 1)
    width = 0.8 / n
    x = np.arange(len(groups))
    for j, (name, vals) in enumerate(series.items()):
        v = np.array([np.nan if a is None else a for a in vals], dtype=float)
        bars = ax.bar(x + (j - (n - 1) / 2) * width, v, width, label=name)
        for b, a in zip(bars, v):
            if np.isfinite(a):
                ax.annotate(fmt.format(a), (b.get_x() + b.get_width() / 2, b.get_height()),
                            ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x)
    ax.set_xticklabels([str(g) for g in groups])
    ax.margins(y=0.12)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def save_figure(panels, path, suptitle=None, ncols=None):
    """``panels`` is a list of callables ax -> None, drawn left to right."""
    plt = _plt()
    ncols = ncols or len(panels)
    nrows = (len(panels) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(5 * ncols, 4 * nrows), squeeze=False)
    for ax, draw in zip(axes.flat, panels):
        draw(ax)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def format_table(header, rows):
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    w = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "  ".join(c.rjust(w[i]) if i else c.ljust(w[i]) for i, c in enumerate(r))  # noqa: E731
    sep = "  ".join("-" * x for x in w)
    return "\n".join([line(cells[0]), sep] + [line(r) for r in cells[1:]])


# --------------------------------------------------------------------------
# suites
# --------------------------------------------------------------------------
SUITES: dict[str, type] = {}


def register_suite(cls):
    SUITES[cls.name] = cls
    return cls


class Suite:
    name = None
    help = ""
    default_engines = ()

    def add_arguments(self, p):
        p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts (default 1 2)")
        p.add_argument("--data", default=DEFAULT_DATA, help="dataset .npz (default ../shared/data/pypi-minilm-100k.npz)")
        p.add_argument("--out", default=DEFAULT_OUT, help="output folder (default bench/results)")
        p.add_argument("--engines", nargs="+", default=list(self.default_engines),
                       help=f"engines to run (default {' '.join(self.default_engines)})")
        p.add_argument("--repeats", type=int, default=5, help="interleaved repetitions per measurement")
        p.add_argument("--k", type=int, default=10)

    def load(self, args):
        """The dataset this suite runs on (default: a single-vector .npz)."""
        return load_dataset(args.data)

    def describe(self, ds):
        return f"base {ds['xb'].shape}, queries {ds['xq'].shape}"

    def run(self, args, ds, engines):
        raise NotImplementedError

    def report(self, results):
        raise NotImplementedError

    def plot(self, results, path):
        raise NotImplementedError


def _ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


@register_suite
class FlatSuite(Suite):
    name = "flat"
    help = "exact search (IndexFlatIP): batched QPS + recall, single-query latency at 10k and full size"
    default_engines = ("nearly", "faiss")

    def add_arguments(self, p):
        super().add_arguments(p)
        p.add_argument("--nq-single", type=int, default=300, help="queries for single-query latency (default 300)")
        p.add_argument("--single-repeats", type=int, default=3,
                       help="interleaved passes over the single queries (default 3)")
        p.add_argument("--small", type=int, default=10_000, help="size of the small index (default 10000)")

    def run(self, args, ds, engines):
        xb, xq, gt, k = ds["xb"], ds["xq"], ds["gt"], args.k
        names = list(engines)
        sizes = {"small": min(args.small, len(xb)), "full": len(xb)}
        res = {"params": {"k": k, "nq": len(xq), "nb": len(xb), "d": xb.shape[1], "metric": "ip",
                          "repeats": args.repeats, "nq_single": args.nq_single,
                          "single_repeats": args.single_repeats, "sizes": sizes,
                          "threads": args.threads, "engines": names},
               "batched": {}, "single": {}}

        # Build every index once (full and small); thread count does not change the data.
        built = {}
        for size_name, n in sizes.items():
            for name in names:
                eng = ENGINES[name]()
                t0 = time.perf_counter()
                eng.build(xb[:n], {"metric": "ip"})
                built[(size_name, name)] = (eng, time.perf_counter() - t0)
        res["build_s"] = {f"{s}/{n}": t for (s, n), (_, t) in built.items()}

        xs = xq[: args.nq_single]
        for t in args.threads:
            for (_, _), (eng, _) in built.items():
                eng.set_threads(t)
            tkey = str(t)

            # (a) batched search of all queries on the full index
            full = {n: built[("full", n)][0] for n in names}
            results = {}

            def batched(n):
                def f():
                    results[n] = full[n].search(xq, k)
                return f

            times = interleaved({n: batched(n) for n in names}, args.repeats, warmup=1)
            ref = results.get("faiss")
            b = {}
            for n in names:
                D, I = results[n]
                med = statistics.median(times[n])
                b[n] = {"times_s": times[n], "median_s": med, "qps": len(xq) / med,
                        "recall_at_k": recall_at(I, gt, k)}
                if ref is not None and n != "faiss":
                    b[n]["agreement_with_faiss"] = recall_at(I, ref[1], k)
            res["batched"][tkey] = b
            print(f"[flat] threads={t} batched: " + ", ".join(
                f"{n} {b[n]['qps']:.0f} QPS recall@{k}={b[n]['recall_at_k']:.4f}" for n in names), flush=True)

            # (b) single-query latency, small and full index
            res["single"][tkey] = {}
            for size_name in sizes:
                idx = {n: built[(size_name, n)][0] for n in names}
                for n in names:  # warm-up: a few single queries each
                    per_query_latencies(idx[n], xs[:10], k)
                lats = {n: [] for n in names}
                for r in range(args.single_repeats):
                    order = names[r % len(names):] + names[: r % len(names)]
                    for n in order:
                        lats[n].append(per_query_latencies(idx[n], xs, k).tolist())
                s = {}
                for n in names:
                    flat = np.concatenate([np.asarray(x) for x in lats[n]])
                    s[n] = {"median_s": float(np.median(flat)),
                            "pass_medians_s": [float(np.median(x)) for x in lats[n]],
                            "p90_s": float(np.percentile(flat, 90)),
                            "raw_s": lats[n]}
                res["single"][tkey][size_name] = s
                print(f"[flat] threads={t} single-query n={sizes[size_name]}: " + ", ".join(
                    f"{n} {s[n]['median_s'] * 1e3:.3f} ms" for n in names), flush=True)

        # ratios nearly/faiss
        ratios = {}
        if "nearly" in names and "faiss" in names:
            for t in args.threads:
                tk = str(t)
                ratios[tk] = {
                    "batched_qps": _ratio(res["batched"][tk]["nearly"]["qps"], res["batched"][tk]["faiss"]["qps"]),
                    **{f"single_latency_{s}": _ratio(res["single"][tk][s]["nearly"]["median_s"],
                                                     res["single"][tk][s]["faiss"]["median_s"]) for s in sizes},
                }
        res["ratios_nearly_over_faiss"] = ratios
        return res

    def report(self, res):
        p = res["params"]
        names = p["engines"]
        sizes = p["sizes"]
        header = ["measurement", "threads"] + names + (["nearly/faiss"] if res["ratios_nearly_over_faiss"] else [])
        rows = []
        for tk in map(str, p["threads"]):
            r = res["ratios_nearly_over_faiss"].get(tk, {})
            b = res["batched"][tk]
            row = [f"batched QPS (nq={p['nq']}, n={p['nb']}, k={p['k']})", tk] + [f"{b[n]['qps']:.0f}" for n in names]
            if r:
                row.append(f"{r['batched_qps']:.2f}x  (>1: nearly faster)")
            rows.append(row)
            row = [f"batched recall@{p['k']}", tk] + [f"{b[n]['recall_at_k']:.4f}" for n in names]
            if r:
                row.append("")
            rows.append(row)
            for s, n_s in sizes.items():
                sq = res["single"][tk][s]
                row = [f"single-query latency ms (n={n_s})", tk] + [f"{sq[n]['median_s'] * 1e3:.3f}" for n in names]
                if r:
                    row.append(f"{r['single_latency_' + s]:.2f}x  (<1: nearly faster)")
                rows.append(row)
        return format_table(header, rows)

    def plot(self, res, path):
        p = res["params"]
        names = p["engines"]
        groups = [f"{t} thr" for t in p["threads"]]
        tks = [str(t) for t in p["threads"]]
        panels = [lambda ax: plot_bars(
            ax, groups, {n: [res["batched"][t][n]["qps"] for t in tks] for n in names},
            "queries / s (higher is better)",
            f"batched search, {p['nq']} queries, n={p['nb']}, k={p['k']}", fmt="{:.0f}")]
        for s, n_s in p["sizes"].items():
            panels.append(lambda ax, s=s, n_s=n_s: plot_bars(
                ax, groups, {n: [res["single"][t][s][n]["median_s"] * 1e3 for t in tks] for n in names},
                "median latency, ms (lower is better)", f"single-query search, n={n_s}, k={p['k']}",
                fmt="{:.3f}"))
        env = res["environment"]
        sup = (f"IndexFlatIP on {os.path.basename(res['data'])} | {env['cpu_model']} ({env['nproc']} cpus) | "
               f"nearly {env['versions'].get('nearly')} simd={env.get('nearly_simd_level')} | "
               f"faiss {env['versions'].get('faiss')} | {env['date']}")
        save_figure(panels, path, suptitle=sup)


# --------------------------------------------------------------------------
# muvera: multi-vector retrieval (FDE + inner index + exact Chamfer re-rank)
# --------------------------------------------------------------------------
DEFAULT_TOKENS = os.path.join(DATA_DIR, "pypi-minilm-tokens-6k.npz")


def load_token_dataset(path):
    """The multi-vector .npz (../shared/data/README.md): first nq sets are queries."""
    if not os.path.exists(path):
        sys.exit(f"data file not found: {path} (see ../shared/data/README.md, or pass --data)")
    with np.load(path) as z:
        v = np.ascontiguousarray(z["vectors"], dtype=np.float32)
        lengths = np.asarray(z["lengths"], dtype=np.int64)
        nq = int(z["nq"])
    off = np.concatenate([[0], np.cumsum(lengths)])
    return {"path": os.path.abspath(path), "qx": v[:off[nq]], "ql": lengths[:nq],
            "dx": v[off[nq]:], "dl": lengths[nq:]}


class NumpyFDE:
    """Plain numpy FDE encoder, the same algorithm as nearly.fde_encode_documents
    (SimHash partitions in Gray-code order, AMS sketch, per-partition averages,
    repetitions concatenated; no fill_empty_partitions), with numpy's own random
    matrices. ``encode_loop`` goes document by document, like a straightforward
    Python port of the reference; ``encode_vectorized`` handles all documents of
    a repetition with a few array operations (a stronger baseline)."""

    def __init__(self, d, reps, k_sim, d_proj, seed=1):
        rng = np.random.default_rng(seed)
        self.reps, self.k, self.dp = reps, k_sim, d_proj
        self.S = [rng.standard_normal((d, k_sim)).astype(np.float32) for _ in range(reps)]
        self.P = [(rng.choice([-1.0, 1.0], size=(d, d_proj)) / np.sqrt(d_proj)).astype(np.float32)
                  for _ in range(reps)]
        # partition index of sign word w (projection 0 most significant): Gray decode
        w = np.arange(2 ** k_sim)
        g = w.copy()
        shift = w >> 1
        while shift.any():
            g ^= shift
            shift >>= 1
        self.part_of_word = g
        self.weights = 1 << np.arange(k_sim - 1, -1, -1)

    def _parts(self, x, r):
        return self.part_of_word[((x @ self.S[r]) > 0).astype(np.int64) @ self.weights]

    def encode_loop(self, dx, dl):
        B = 2 ** self.k
        out = np.zeros((len(dl), self.reps * B * self.dp), np.float32)
        off = np.concatenate([[0], np.cumsum(dl)])
        for i in range(len(dl)):
            x = dx[off[i]:off[i + 1]]
            for r in range(self.reps):
                part = self._parts(x, r)
                proj = x @ self.P[r]
                block = np.zeros((B, self.dp), np.float32)
                np.add.at(block, part, proj)
                cnt = np.bincount(part, minlength=B)
                block /= np.maximum(cnt, 1)[:, None]
                out[i, r * B * self.dp:(r + 1) * B * self.dp] = block.ravel()
        return out

    def encode_per_point(self, dx, dl):
        """The reference's loop structure (documents, repetitions, points) in numpy."""
        B = 2 ** self.k
        out = np.zeros((len(dl), self.reps * B * self.dp), np.float32)
        off = np.concatenate([[0], np.cumsum(dl)])
        for i in range(len(dl)):
            for r in range(self.reps):
                block = np.zeros((B, self.dp), np.float32)
                cnt = np.zeros(B)
                for x in dx[off[i]:off[i + 1]]:
                    part = self.part_of_word[int(((x @ self.S[r]) > 0) @ self.weights)]
                    block[part] += x @ self.P[r]
                    cnt[part] += 1
                block /= np.maximum(cnt, 1)[:, None]
                out[i, r * B * self.dp:(r + 1) * B * self.dp] = block.ravel()
        return out

    def encode_vectorized(self, dx, dl):
        B, n = 2 ** self.k, len(dl)
        doc = np.repeat(np.arange(n), dl)
        blocks = []
        for r in range(self.reps):
            cell = doc * B + self._parts(dx, r)
            sums = np.zeros((n * B, self.dp), np.float32)
            np.add.at(sums, cell, dx @ self.P[r])
            cnt = np.bincount(cell, minlength=n * B)
            blocks.append((sums / np.maximum(cnt, 1)[:, None]).reshape(n, B * self.dp))
        return np.concatenate(blocks, axis=1)


def _recall_sets(I, gt, k):
    return float(np.mean([len(set(a[:k]) & set(b[:k])) / k for a, b in zip(I, gt)]))


@register_suite
class MuveraSuite(Suite):
    name = "muvera"
    help = ("multi-vector retrieval (IndexMuvera vs exact Chamfer IndexMultiVectorFlat): recall vs re-ranked "
            "candidates, end-to-end recall/QPS with HNSW inner indexes, FDE encoding throughput vs numpy")
    default_engines = ()

    def add_arguments(self, p):
        p.add_argument("--threads", type=int, default=2, help="thread count (default 2)")
        p.add_argument("--data", default=DEFAULT_TOKENS, help="multi-vector .npz (default "
                       "../shared/data/pypi-minilm-tokens-6k.npz)")
        p.add_argument("--out", default=DEFAULT_OUT, help="output folder (default bench/results)")
        p.add_argument("--engines", nargs="*", default=[], help=argparse.SUPPRESS)
        p.add_argument("--repeats", type=int, default=3, help="repetitions per timing (median reported)")
        p.add_argument("--k", type=int, default=10)
        p.add_argument("--candidates", type=int, nargs="+", default=[10, 20, 50, 100, 200, 500])
        p.add_argument("--numpy-docs", type=int, default=300,
                       help="documents encoded by the numpy baselines (default 300)")

    def load(self, args):
        return load_token_dataset(args.data)

    def describe(self, ds):
        return (f"{len(ds['dl'])} documents ({len(ds['dx'])} vectors), {len(ds['ql'])} queries "
                f"({len(ds['qx'])} vectors), d={ds['dx'].shape[1]}")

    @staticmethod
    def _config(d, R, ks, dp, fill=False):
        import nearly
        return nearly.FDEConfig(d, num_repetitions=R, num_simhash_projections=ks, seed=1,
                                projection_type="ams_sketch", projection_dimension=dp,
                                fill_empty_partitions=fill)

    def _time(self, fn, repeats):
        fn()  # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
        return out, times

    def run(self, args, ds, engines):
        import nearly
        nearly.omp_set_num_threads(args.threads)
        qx, ql, dx, dl, k = ds["qx"], ds["ql"], ds["dx"], ds["dl"], args.k
        d, nq = dx.shape[1], len(ql)
        res = {"params": {"k": k, "threads": args.threads, "repeats": args.repeats, "nq": nq,
                          "n_docs": len(dl), "n_doc_vectors": len(dx), "n_query_vectors": len(qx), "d": d,
                          "candidates": args.candidates, "numpy_docs": args.numpy_docs,
                          "fde": "ams_sketch projection, seed 1, fill_empty_partitions off unless noted"}}

        # ground truth and the brute-force baseline
        exact = nearly.IndexMultiVectorFlat(d)
        exact.add(dx, dl)
        (De, gt), times = self._time(lambda: exact.search(qx, ql, k), args.repeats)
        bf = {"times_s": times, "median_s": statistics.median(times)}
        bf["qps"] = nq / bf["median_s"]
        res["brute_force"] = bf
        print(f"[muvera] IndexMultiVectorFlat: {bf['qps']:.1f} QPS ({args.threads} threads)", flush=True)

        # (a) recall vs candidates, flat inner index
        settings = [(20, 3, 8, False), (20, 4, 8, False), (20, 5, 8, False), (20, 5, 16, False), (20, 5, 16, True)]
        res["recall_vs_candidates"] = []
        for R, ks, dp, fill in settings:
            cfg = self._config(d, R, ks, dp, fill)
            index = nearly.IndexMuvera(d, cfg, inner="Flat")
            index.add(dx, dl)
            row = {"R": R, "k_sim": ks, "d_proj": dp, "fill_empty_partitions": fill, "fde_dim": cfg.fde_dim,
                   "recall": {}}
            for nc in args.candidates:
                _, I = index.search(qx, ql, k, k_factor=max(1, nc // k))
                row["recall"][str(nc)] = _recall_sets(I, gt, k)
            res["recall_vs_candidates"].append(row)
            print(f"[muvera] (a) R={R} k_sim={ks} d_proj={dp} fill={fill}: " + ", ".join(
                f"{nc}:{row['recall'][str(nc)]:.3f}" for nc in args.candidates), flush=True)

        # (b) end to end with approximate inner indexes
        res["end_to_end"] = []
        for R, ks, dp in [(20, 4, 8), (20, 5, 16)]:
            cfg = self._config(d, R, ks, dp)
            for inner in ["Flat", "HNSW32", "HNSW32,SQ8"]:
                index = nearly.IndexMuvera(d, cfg, inner=inner)
                t0 = time.perf_counter()
                index.add(dx, dl)
                build_s = time.perf_counter() - t0
                efs = [16, 64] if "HNSW" in inner else [None]
                for ef in efs:
                    for kf in (5, 10, 20):
                        params = nearly.SearchParametersHNSW(efSearch=ef) if ef else None
                        (_, I), times = self._time(lambda: index.search(qx, ql, k, params=params, k_factor=kf),
                                                   args.repeats)
                        med = statistics.median(times)
                        row = {"R": R, "k_sim": ks, "d_proj": dp, "fde_dim": cfg.fde_dim, "inner": inner,
                               "efSearch": ef, "k_factor": kf, "candidates": k * kf, "build_s": build_s,
                               "times_s": times, "median_s": med, "qps": nq / med,
                               "speedup_vs_brute_force": (nq / med) / bf["qps"], "recall": _recall_sets(I, gt, k)}
                        res["end_to_end"].append(row)
                        print(f"[muvera] (b) ({R},{ks},{dp}) {inner} ef={ef} kf={kf}: recall {row['recall']:.3f}, "
                              f"{row['qps']:.0f} QPS = {row['speedup_vs_brute_force']:.1f}x brute force", flush=True)

        # (c) FDE encoding throughput vs numpy
        res["encoding"] = []
        nd = min(args.numpy_docs, len(dl))
        sub_x, sub_l = dx[:int(dl[:nd].sum())], dl[:nd]
        for R, ks, dp in [(20, 5, 16), (20, 4, 8)]:
            cfg = self._config(d, R, ks, dp)
            _, t_ours = self._time(lambda: nearly.fde_encode_documents(dx, dl, cfg), args.repeats)
            npf = NumpyFDE(d, R, ks, dp)
            _, t_loop = self._time(lambda: npf.encode_loop(sub_x, sub_l), 1)
            _, t_vec = self._time(lambda: npf.encode_vectorized(dx, dl), 1)
            _, t_pt = self._time(lambda: npf.encode_per_point(sub_x, sub_l), 1)
            row = {"R": R, "k_sim": ks, "d_proj": dp, "nearly_docs_per_s": len(dl) / statistics.median(t_ours),
                   "numpy_loop_docs_per_s": nd / statistics.median(t_loop),
                   "numpy_vectorized_docs_per_s": len(dl) / statistics.median(t_vec),
                   "numpy_per_point_docs_per_s": nd / statistics.median(t_pt), "numpy_per_point_times_s": t_pt,
                   "nearly_times_s": t_ours, "numpy_loop_times_s": t_loop, "numpy_vectorized_times_s": t_vec}
            row["speedup_vs_numpy_loop"] = row["nearly_docs_per_s"] / row["numpy_loop_docs_per_s"]
            row["speedup_vs_numpy_vectorized"] = row["nearly_docs_per_s"] / row["numpy_vectorized_docs_per_s"]
            row["speedup_vs_numpy_per_point"] = row["nearly_docs_per_s"] / row["numpy_per_point_docs_per_s"]
            res["encoding"].append(row)
            print(f"[muvera] (c) ({R},{ks},{dp}): nearly {row['nearly_docs_per_s']:.0f} docs/s, numpy loop "
                  f"{row['numpy_loop_docs_per_s']:.0f} ({row['speedup_vs_numpy_loop']:.0f}x), numpy vectorized "
                  f"{row['numpy_vectorized_docs_per_s']:.0f} ({row['speedup_vs_numpy_vectorized']:.1f}x), per point "
                  f"{row['numpy_per_point_docs_per_s']:.0f} ({row['speedup_vs_numpy_per_point']:.0f}x)",
                  flush=True)
        return res

    def report(self, res):
        p = res["params"]
        out = [f"exact Chamfer brute force (IndexMultiVectorFlat): {res['brute_force']['qps']:.1f} QPS, "
               f"{p['nq']} queries x {p['n_docs']} documents, {p['threads']} threads", "",
               f"(a) recall@{p['k']} vs re-ranked candidates, Flat inner index"]
        hdr = ["(R, k_sim, d_proj)", "fill", "fde_dim"] + [str(c) for c in p["candidates"]]
        rows = [[f"({r['R']},{r['k_sim']},{r['d_proj']})", "yes" if r["fill_empty_partitions"] else "no",
                 r["fde_dim"]] + [f"{r['recall'][str(c)]:.3f}" for c in p["candidates"]]
                for r in res["recall_vs_candidates"]]
        out += [format_table(hdr, rows), "", "(b) end to end"]
        hdr = ["(R, k_sim, d_proj)", "inner", "efSearch", "candidates", f"recall@{p['k']}", "QPS", "x brute force"]
        rows = [[f"({r['R']},{r['k_sim']},{r['d_proj']})", r["inner"], r["efSearch"] or "-", r["candidates"],
                 f"{r['recall']:.3f}", f"{r['qps']:.0f}", f"{r['speedup_vs_brute_force']:.1f}"]
                for r in res["end_to_end"]]
        out += [format_table(hdr, rows), "", f"(c) FDE encoding, documents/s ({p['threads']} threads)"]
        hdr = ["(R, k_sim, d_proj)", "nearly", "numpy per-point", "speedup", "numpy per-doc", "speedup",
               "numpy vectorized", "speedup"]
        rows = [[f"({r['R']},{r['k_sim']},{r['d_proj']})", f"{r['nearly_docs_per_s']:.0f}",
                 f"{r['numpy_per_point_docs_per_s']:.0f}", f"{r['speedup_vs_numpy_per_point']:.0f}x",
                 f"{r['numpy_loop_docs_per_s']:.0f}", f"{r['speedup_vs_numpy_loop']:.0f}x",
                 f"{r['numpy_vectorized_docs_per_s']:.0f}", f"{r['speedup_vs_numpy_vectorized']:.1f}x"]
                for r in res["encoding"]]
        out.append(format_table(hdr, rows))
        return "\n".join(out)

    def plot(self, res, path):
        p = res["params"]

        def recall_panel(ax):
            for r in res["recall_vs_candidates"]:
                ax.plot(p["candidates"], [r["recall"][str(c)] for c in p["candidates"]], marker="o",
                        label=f"({r['R']},{r['k_sim']},{r['d_proj']})" + (" fill" if r["fill_empty_partitions"] else ""))
            ax.axhline(0.9, color="grey", ls=":", lw=1)
            ax.set_xscale("log")
            ax.set_xlabel("re-ranked candidates")
            ax.set_ylabel(f"recall@{p['k']} vs exact Chamfer")
            ax.set_title("(a) Flat inner index", fontsize=10)
            ax.legend(fontsize=7)
            ax.grid(alpha=0.3)

        def e2e_panel(ax):
            groups = {}
            for r in res["end_to_end"]:
                key = f"({r['R']},{r['k_sim']},{r['d_proj']}) {r['inner']}" + (f" ef{r['efSearch']}" if r["efSearch"] else "")
                groups.setdefault(key, []).append(r)
            for key, rs in groups.items():
                ax.plot([r["recall"] for r in rs], [r["speedup_vs_brute_force"] for r in rs], marker="o",
                        label=key)
            ax.axhline(10, color="grey", ls=":", lw=1)
            ax.axvline(0.85, color="grey", ls=":", lw=1)
            ax.set_xlabel(f"recall@{p['k']}")
            ax.set_ylabel("QPS / brute-force QPS")
            ax.set_title(f"(b) end to end (brute force {res['brute_force']['qps']:.0f} QPS)", fontsize=10)
            ax.legend(fontsize=6)
            ax.grid(alpha=0.3)

        enc = res["encoding"]
        panels = [recall_panel, e2e_panel, lambda ax: plot_bars(
            ax, [f"({r['R']},{r['k_sim']},{r['d_proj']})" for r in enc],
            {"nearly": [r["nearly_docs_per_s"] for r in enc],
             "numpy per-point": [r["numpy_per_point_docs_per_s"] for r in enc],
             "numpy per-doc": [r["numpy_loop_docs_per_s"] for r in enc],
             "numpy vectorized": [r["numpy_vectorized_docs_per_s"] for r in enc]},
            "documents / s", f"(c) FDE encoding, {p['threads']} threads", fmt="{:.0f}", log=True)]
        env = res["environment"]
        sup = (f"MUVERA on {os.path.basename(res['data'])} | {env['cpu_model']} ({env['nproc']} cpus) | "
               f"nearly {env['versions'].get('nearly')} simd={env.get('nearly_simd_level')} | {env['date']}")
        save_figure(panels, path, suptitle=sup)


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------
def build_parser():
    ap = argparse.ArgumentParser(
        prog="bench/ann.py", description="nearly vs faiss (and others) benchmarks; one sub-command per suite.")
    sub = ap.add_subparsers(dest="suite", metavar="SUITE")
    for name, cls in SUITES.items():
        suite = cls()
        sp = sub.add_parser(name, help=cls.help, description=cls.help)
        suite.add_arguments(sp)
        sp.set_defaults(_suite=suite)
    return ap


def main(argv=None):
    ap = build_parser()
    args = ap.parse_args(argv)
    if not getattr(args, "_suite", None):
        ap.print_help()
        return 2
    suite = args._suite
    engines, skipped = make_engines(args.engines)
    ds = suite.load(args)
    print(f"[{suite.name}] data {ds['path']}: {suite.describe(ds)}; "
          f"engines {', '.join(engines)}; threads {args.threads}", flush=True)
    env = environment()
    la = env["loadavg_at_start"]
    if la and la[0] > 0.5:
        print(f"warning: load average {la[0]:.2f} at start; other jobs may disturb the timings", file=sys.stderr)
    with ForeignLoad() as fl:
        res = suite.run(args, ds, engines)
    env["loadavg_at_end"] = loadavg()
    env["run_wall_s"] = fl.wall_s
    env["foreign_cpu_s"] = fl.foreign_cpu_s
    busy = fl.foreign_cpu_s is not None and fl.foreign_cpu_s > 0.05 * fl.wall_s
    res = {"suite": suite.name, "data": ds["path"], "environment": env,
           "engines": {n: {"library": e.library, "version": e.version()} for n, e in engines.items()},
           "skipped_engines": skipped, "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
           **res}
    os.makedirs(args.out, exist_ok=True)
    jpath = os.path.join(args.out, f"{suite.name}.json")
    with open(jpath, "w") as f:
        json.dump(res, f, indent=1)
    ppath = os.path.join(args.out, f"{suite.name}.png")
    suite.plot(res, ppath)
    print()
    print(f"{env['cpu_model']}, {env['nproc']} cpus; nearly {env['versions'].get('nearly')} "
          f"(simd {env.get('nearly_simd_level')}), faiss {env['versions'].get('faiss')}, "
          f"numpy {env['versions'].get('numpy')}; median of {args.repeats} interleaved runs")
    print(suite.report(res))
    print(f"\nwrote {jpath}\nwrote {ppath}")
    if busy:
        print(f"WARNING: other processes used {fl.foreign_cpu_s:.1f} CPU-s during this {fl.wall_s:.0f} s run; "
              "the timings are disturbed -- rerun on a quiet machine", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
