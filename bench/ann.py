#!/usr/bin/env python
"""ANN benchmarks: nearly against faiss, hnswlib and usearch.

Usage
-----
    python bench/ann.py flat [--threads 1 2] [--data PATH] [--out bench/results]
    python bench/ann.py hnsw [--M 16] [--ef-construction 200] [--build-threads 2] [--threads 1 2]
    python bench/ann.py hnsw-order [--configs 16:100 8:40] [--ef 10 16 32 64]
    python bench/ann.py ivf [--factory IVF1024,Flat] [--nprobe 1 2 4 ... 128] [--threads 1 2]
    python bench/ann.py --help          # lists the registered suites
    python bench/ann.py SUITE --help    # a suite's options

Every suite writes ``<out>/<suite>.json`` (environment + every raw timing) and
``<out>/<suite>.png``, and prints a table.

Method
------
* All libraries in one run use the same thread count (``Engine.set_threads``).
* Every measurement is repeated ``--repeats`` times; each repetition runs every
  engine once, in a rotating order (interleaved), and the median is reported.
* Every engine is warmed up (one untimed call of the same kind) before timing.
* Before each timed call the process sleeps ``SETTLE_S`` (untimed): an OpenMP
  runtime (faiss's libgomp) keeps its idle workers spinning for milliseconds
  after a parallel region, and on a 2-core machine they took a core from the
  next engine's call (measured: nearly about 10% slower right after faiss
  than after a 20 ms pause).
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

Suites
``flat``  exact search, nearly vs faiss: batched QPS and single-query latency.
``hnsw``  nearly vs faiss IndexHNSWFlat vs hnswlib vs usearch (f32 storage) at
    the same M / efConstruction / thread count: build time; memory (RSS growth
    of one build in a fresh spawned process per library, plus each library's
    own count); recall@10 and batched QPS over an efSearch sweep at each thread
    count (indexes built once, reused); QPS at recall 0.95 by log-linear
    interpolation and nearly / fastest competitor.  Engines ``usearch-bf16`` /
    ``usearch-i8`` (quantized storage) can be added with --engines.
    Writes hnsw.json / hnsw.png.
``hnsw-order``  insertion-order study on nearly's HNSW: random orders vs
    ascending / descending local intrinsic dimensionality vs cluster by
    cluster, recall@10 at fixed efSearch.  Writes hnsw_order.json / .png.
``binary``  BEBR recurrent binary codes (IndexBinaryRecurrent, SDC) vs faiss
    1-bit sign codes and faiss PQ: recall@10 with and without float re-ranking
    per bits_per_dim, single-thread scan speed of each kernel against faiss
    IndexBinaryFlat at the same bytes per code, bytes per vector.
    Writes binary.json / binary.png.
``ivf``  nearly vs faiss on one index_factory string (default "IVF1024,Flat",
    inner product): training time (each library's default k-means seeding) and
    its ratio, then recall@10 and batched QPS over an nprobe sweep at each thread
    count; QPS at recall 0.90 by log-linear interpolation and nearly / faiss.
    Writes ivf.json / ivf.png.

The plotting helpers are generic: ``save_figure`` takes one drawing callable
per panel; ``plot_bars`` draws grouped bars, ``plot_lines`` curves (e.g.
recall vs QPS, optionally labelling points and drawing reference lines).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import json
import os
import platform
import re
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
    v = getattr(mod, "__version__", None)
    if v is None:  # e.g. hnswlib: ask the installed distribution
        try:
            from importlib.metadata import version as _dist_version

            v = _dist_version(modname)
        except Exception:  # noqa: BLE001
            v = "unknown"
    return v


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
        # own = this process + the children it waited for (e.g. memory probes)
        own = sum(getattr(own1, a) - getattr(self.own0, a)
                  for a in ("user", "system", "children_user", "children_system"))
        self.foreign_cpu_s = None if busy1 is None or self.busy0 is None else max(0.0, busy1 - self.busy0 - own)
        return False


def _module_build_info(pkg):
    """Which native module was measured: its path and mtime, and the checkout's
    commit and dirty files (an editable install runs what was last built)."""
    import subprocess

    info = {}
    native = getattr(pkg, "_nearly", None)
    path = getattr(native, "__file__", None)
    if path:
        info["native_path"] = path
        info["native_mtime"] = _dt.datetime.fromtimestamp(os.path.getmtime(path), _dt.timezone.utc).isoformat(
            timespec="seconds")
    try:
        run = lambda *a: subprocess.run(["git", "-C", REPO_ROOT, *a], capture_output=True, text=True,  # noqa: E731
                                        timeout=10).stdout.rstrip("\n")
        info["git_head"] = run("rev-parse", "--short", "HEAD").strip()
        info["git_dirty"] = [ln[3:] for ln in run("status", "--porcelain", "--", "cpp", "python", "CMakeLists.txt")
                             .splitlines()]
    except Exception:  # noqa: BLE001
        pass
    return info


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

        env["nearly_module"] = _module_build_info(nearly)
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


# ---- HNSW engines --------------------------------------------------------
# build(xb, {"M", "efConstruction", "metric"}) with the thread count last given
# to set_threads; set_ef(ef) before search; memory_accounting() -> the
# library's own idea of its index size (secondary to the RSS probe).
class _HNSWEngine(Engine):
    def set_ef(self, ef):
        raise NotImplementedError

    def memory_accounting(self):
        return {}

    def describe(self):
        return {}


class _FaissAPIHNSW(_HNSWEngine):
    """IndexHNSWFlat through the faiss Python API (faiss itself, or nearly)."""

    def set_threads(self, n):
        _FaissAPIFlat.set_threads(self, n)

    def build(self, xb, params):
        m = self.mod
        metric = m.METRIC_INNER_PRODUCT if params.get("metric", "ip") == "ip" else m.METRIC_L2
        self.index = m.IndexHNSWFlat(xb.shape[1], int(params["M"]), metric)
        self.index.hnsw.efConstruction = int(params["efConstruction"])
        self.index.add(xb)
        return self

    def set_ef(self, ef):
        self.index.hnsw.efSearch = int(ef)

    def search(self, xq, k, params=None):
        return self.index.search(xq, k)

    def describe(self):
        return {"class": "IndexHNSWFlat", "efSearch_via": "index.hnsw.efSearch"}


@register_engine
class NearlyHNSW(_FaissAPIHNSW):
    name = "nearly-hnsw"
    library = "nearly"

    def memory_accounting(self):
        return {"memory_bytes()": int(self.index.memory_bytes())}


@register_engine
class NearlyKnnGraph(NearlyHNSW):
    """nearly's IndexHNSWFlat with its graph built from exact k-NN lists all at
    once (nearly.hnsw_from_knn, the GPU build's method) instead of insertion;
    efConstruction plays no part."""
    name = "nearly-knn-graph"

    def build(self, xb, params):
        m = self.mod
        metric = m.METRIC_INNER_PRODUCT if params.get("metric", "ip") == "ip" else m.METRIC_L2
        self.index = m.hnsw_from_knn(xb, int(params["M"]), metric)
        return self

    def describe(self):
        return {"class": "IndexHNSWFlat via hnsw_from_knn (exact k-NN, quadratic build)",
                "efSearch_via": "index.hnsw.efSearch"}


@register_engine
class FaissHNSW(_FaissAPIHNSW):
    name = "faiss-hnsw"
    library = "faiss"

    def memory_accounting(self):
        # faiss has no accounting call: sum the sizes of its arrays
        ix, h = self.index, self.index.hnsw
        n = ix.ntotal
        b = n * ix.d * 4 + h.neighbors.size() * 4 + h.offsets.size() * 8 + h.levels.size() * 4
        return {"estimate(vectors+neighbors+offsets+levels)": int(b)}


@register_engine
class Hnswlib(_HNSWEngine):
    name = "hnswlib"
    library = "hnswlib"

    def version(self):
        return _version("hnswlib")

    def build(self, xb, params):
        space = "ip" if params.get("metric", "ip") == "ip" else "l2"
        self.index = self.mod.Index(space=space, dim=xb.shape[1])
        self.index.init_index(max_elements=len(xb), ef_construction=int(params["efConstruction"]),
                              M=int(params["M"]), random_seed=100)
        self.index.add_items(xb, np.arange(len(xb), dtype=np.int64), num_threads=self.threads or 1)
        return self

    def set_ef(self, ef):
        self.index.set_ef(int(ef))

    def search(self, xq, k, params=None):
        labels, dist = self.index.knn_query(xq, k=k, num_threads=self.threads or 1)
        return dist, labels.astype(np.int64)

    def memory_accounting(self):
        return {"index_file_size()": int(self.index.index_file_size())}

    def describe(self):
        return {"space": self.index.space, "M": self.index.M, "ef_construction": self.index.ef_construction}


@register_engine
class Usearch(_HNSWEngine):
    name = "usearch"
    library = "usearch"
    dtype = "f32"  # storage type: f32 = no quantization (the default engine)

    def __init__(self):
        super().__init__()
        self.uindex = importlib.import_module("usearch.index")

    def build(self, xb, params):
        metric = "ip" if params.get("metric", "ip") == "ip" else "l2sq"
        # f32 storage (no quantization), same M (connectivity; level 0 gets 2M
        # like the others) and efConstruction (expansion_add)
        self.index = self.uindex.Index(ndim=xb.shape[1], metric=metric, dtype=self.dtype,
                                       connectivity=int(params["M"]),
                                       expansion_add=int(params["efConstruction"]))
        if str(self.index.dtype).split(".")[-1].lower() != self.dtype:
            raise RuntimeError(f"usearch chose dtype {self.index.dtype}, expected {self.dtype}")
        self.index.add(np.arange(len(xb), dtype=np.uint64), xb, threads=self.threads or 1)
        return self

    def set_ef(self, ef):
        self.index.expansion_search = int(ef)

    def search(self, xq, k, params=None):
        m = self.index.search(xq, k, threads=self.threads or 1)
        return m.distances, m.keys.astype(np.int64)

    def memory_accounting(self):
        return {"memory_usage": int(self.index.memory_usage)}

    def describe(self):
        ix = self.index
        return {"dtype": str(ix.dtype), "metric_kind": str(ix.metric_kind), "connectivity": ix.connectivity,
                "expansion_add": ix.expansion_add, "hardware_acceleration": ix.hardware_acceleration}


@register_engine
class UsearchBF16(Usearch):
    """usearch storing bf16 vectors (quantized; not in the default comparison)."""
    name = "usearch-bf16"
    dtype = "bf16"


@register_engine
class UsearchI8(Usearch):
    """usearch storing int8 vectors (quantized like nearly's traversal copy, but
    without an exact re-rank; not in the default comparison)."""
    name = "usearch-i8"
    dtype = "i8"


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
SETTLE_S = 0.03


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
            time.sleep(SETTLE_S)
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
# memory: RSS growth while one library builds one index, in a fresh process
# --------------------------------------------------------------------------
def _proc_status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def _reset_peak_rss():
    """Reset VmHWM (Linux >= 4.0: write 5 to clear_refs); False where not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _build_probe_child(conn, engine_name, data_path, n, params, threads):
    try:
        import gc

        xb = load_dataset(data_path)["xb"][:n].copy()
        eng = ENGINES[engine_name]()  # imports the library
        eng.set_threads(threads)
        gc.collect()
        rss0 = _proc_status_kb("VmRSS")
        peak_reset = _reset_peak_rss()
        t0 = time.perf_counter()
        eng.build(xb, params)
        dt = time.perf_counter() - t0
        rss1, hwm = _proc_status_kb("VmRSS"), _proc_status_kb("VmHWM")
        conn.send({"build_s": dt, "rss_before_kb": rss0, "rss_after_kb": rss1, "peak_kb": hwm,
                   "peak_reset": peak_reset, "rss_growth_bytes": (rss1 - rss0) * 1024,
                   "peak_growth_bytes": (hwm - rss0) * 1024 if peak_reset else None,
                   "own_accounting": eng.memory_accounting()})
    except Exception as e:  # noqa: BLE001 - report to the parent
        conn.send({"error": f"{type(e).__name__}: {e}"})
    finally:
        conn.close()


def build_probe(engine_name, data_path, n, params, threads, timeout=1800):
    """Build ``engine_name``'s index over the first ``n`` vectors in a fresh
    (spawned) interpreter and measure how much its resident set grows: the data
    is loaded and the library imported before the baseline, so the growth is the
    index itself plus whatever its build leaves allocated.  Returns a dict."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_build_probe_child, args=(child, engine_name, data_path, n, params, threads))
    proc.start()
    child.close()
    out = parent.recv() if parent.poll(timeout) else {"error": "timeout"}
    proc.join()
    return out


# --------------------------------------------------------------------------
# plotting (generic: reused by every suite)
# --------------------------------------------------------------------------
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_bars(ax, groups, series, ylabel, title, fmt="{:.3g}", log=False, colors=None):
    """Grouped bar chart: one group per entry of ``groups`` (x axis), one bar per
    series (name -> list of values aligned with groups; None = missing).
    ``colors``: optional name -> matplotlib colour."""
    n = max(len(series), 1)
    width = 0.8 / n
    x = np.arange(len(groups))
    for j, (name, vals) in enumerate(series.items()):
        v = np.array([np.nan if a is None else a for a in vals], dtype=float)
        kw = {"color": colors[name]} if colors and name in colors else {}
        bars = ax.bar(x + (j - (n - 1) / 2) * width, v, width, label=name, **kw)
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


def plot_lines(ax, series, xlabel, ylabel, title, logx=False, logy=False, vlines=(), hlines=(),
               label_fmt="{}", legend_loc="best", styles=None):
    """Line chart: ``series`` is name -> (xs, ys) or (xs, ys, point_labels); a
    point label (e.g. the efSearch of a recall/QPS point) is written beside its
    point, None skips it.  ``vlines`` / ``hlines``: reference lines (value, text).
    ``styles``: name -> matplotlib kwargs (colour, line style...)."""
    for name, s in series.items():
        xs = np.array([np.nan if a is None else a for a in s[0]], dtype=float)
        ys = np.array([np.nan if a is None else a for a in s[1]], dtype=float)
        kw = {"marker": "o", "markersize": 3, "linewidth": 1.2, **((styles or {}).get(name, {}))}
        (line,) = ax.plot(xs, ys, label=name, **kw)
        if len(s) > 2 and s[2] is not None:
            for x, y, lab in zip(xs, ys, s[2]):
                if lab is not None and np.isfinite(x) and np.isfinite(y):
                    ax.annotate(label_fmt.format(lab), (x, y), textcoords="offset points", xytext=(3, 3),
                                fontsize=6, color=line.get_color())
    for v, text in vlines:
        ax.axvline(v, color="grey", linestyle=":", linewidth=1)
        if text:
            ax.annotate(text, (v, 1), xycoords=("data", "axes fraction"), xytext=(2, -10),
                        textcoords="offset points", fontsize=7, color="grey")
    for v, text in hlines:
        ax.axhline(v, color="grey", linestyle=":", linewidth=1)
        if text:
            ax.annotate(text, (0, v), xycoords=("axes fraction", "data"), xytext=(2, 2),
                        textcoords="offset points", fontsize=7, color="grey")
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc=legend_loc)
    ax.grid(alpha=0.3, which="both")


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
        lines = suptitle.count("\n") + 1  # keep the panels below the title
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.035 * lines / nrows))
    else:
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
    file_stem = None  # results are written to <out>/<file_stem or name>.json / .png
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


# ---- HNSW ------------------------------------------------------------------
def qps_at_recall(points, target):
    """QPS at recall ``target`` on one library's curve: ``points`` is a list of
    (efSearch, recall, qps) in efSearch order.  log(QPS) is interpolated linearly
    in recall between the two points around the first crossing of ``target``.
    Returns {"qps", "status", "between_ef"}; qps is None when the curve never
    reaches the target, and a lower bound when even the smallest ef is above it."""
    pts = sorted(points)
    if not pts:
        return {"qps": None, "status": "no points", "between_ef": None}
    if pts[0][1] >= target:
        return {"qps": pts[0][2], "status": f"recall >= target at every ef; QPS at ef={pts[0][0]} (a lower bound)",
                "between_ef": [pts[0][0], pts[0][0]]}
    for (e0, r0, q0), (e1, r1, q1) in zip(pts, pts[1:]):
        if r0 < target <= r1:
            f = (target - r0) / (r1 - r0)
            q = float(np.exp(np.log(q0) + f * (np.log(q1) - np.log(q0))))
            return {"qps": q, "status": "interpolated", "between_ef": [e0, e1]}
    return {"qps": None, "status": f"not reached (max recall {max(p[1] for p in pts):.4f})", "between_ef": None}


def _ground_truth(ds, n, k):
    """gt for the first n base vectors: the file's when n is the whole base, else exact (nearly.knn)."""
    if n == len(ds["xb"]) and k <= ds["gt"].shape[1]:
        return ds["gt"][:, :k]
    import nearly

    return nearly.knn(ds["xq"], ds["xb"][:n], k, nearly.METRIC_INNER_PRODUCT)[1]


def _short(name):
    return name.replace("-hnsw", "")


@register_suite
class HNSWSuite(Suite):
    name = "hnsw"
    help = ("HNSW (IndexHNSWFlat, inner product): nearly vs faiss vs hnswlib vs usearch at the same M / "
            "efConstruction; build time, memory, recall@10-vs-QPS over efSearch at each thread count")
    default_engines = ("nearly-hnsw", "faiss-hnsw", "hnswlib", "usearch")

    def add_arguments(self, p):
        super().add_arguments(p)
        p.add_argument("--M", type=int, default=16, help="links per node (level 0: 2M) (default 16)")
        p.add_argument("--ef-construction", type=int, default=200, help="efConstruction (default 200)")
        p.add_argument("--build-threads", type=int, default=2, help="threads for every build (default 2)")
        p.add_argument("--ef", type=int, nargs="+", default=[10, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256],
                       help="efSearch values to sweep")
        p.add_argument("--target-recall", type=float, default=0.95, help="recall@k for the QPS comparison (0.95)")
        p.add_argument("--n", type=int, default=None, help="use the first n base vectors (default all; gt recomputed)")
        p.add_argument("--no-memory-probe", action="store_true",
                       help="skip the per-library build in a fresh process (RSS growth) and its build time")

    def run(self, args, ds, engines):
        names = list(engines)
        n = min(args.n or len(ds["xb"]), len(ds["xb"]))
        xb, xq, k = ds["xb"][:n], ds["xq"], args.k
        gt = _ground_truth(ds, n, k)
        bparams = {"M": args.M, "efConstruction": args.ef_construction, "metric": "ip"}
        res = {"params": {"k": k, "nq": len(xq), "nb": n, "d": xb.shape[1], "metric": "ip", **bparams,
                          "build_threads": args.build_threads, "ef_search": args.ef, "threads": args.threads,
                          "repeats": args.repeats, "target_recall": args.target_recall, "engines": names},
               "method": {
                   "memory": ("rss_growth_bytes: VmRSS after minus before one build, in a fresh spawned python "
                              "process per library that has already loaded the data and imported the library "
                              "(so it counts the index plus anything its build leaves allocated); "
                              "peak_growth_bytes: VmHWM (reset before the build) minus the baseline; "
                              "own_accounting: the library's own figure (nearly memory_bytes(), hnswlib "
                              "index_file_size(), usearch memory_usage, faiss: sum of its array sizes)"),
                   "build": (f"wall time of add() of all {n} vectors with {args.build_threads} threads, measured "
                             "twice: in the probe process and in this one (the index that is then searched); "
                             "build_s is their mean"),
                   "search": ("batched search of all queries per (library, efSearch, threads); libraries "
                              "interleaved in rotating order, 1 warm-up, median of repeats; QPS = nq / median"),
                   "qps_at_target": "log(QPS) interpolated linearly in recall between the efSearch points around the target",
               },
               "build": {}, "memory": {}, "sweep": {}, "engine_config": {}}

        # 1. memory probes (fresh process per library), also a first build-time sample
        probes = {}
        if not args.no_memory_probe:
            for name in names:
                probes[name] = build_probe(name, ds["path"], n, bparams, args.build_threads)
                pr = probes[name]
                msg = pr.get("error") or (f"RSS +{pr['rss_growth_bytes'] / n:.0f} B/vector, "
                                          f"build {pr['build_s']:.1f} s")
                print(f"[hnsw] probe {name}: {msg}", flush=True)

        # 2. build every index once in this process; reused for every thread count
        for name in names:
            eng = engines[name]
            eng.set_threads(args.build_threads)
            t0 = time.perf_counter()
            eng.build(xb, bparams)
            dt = time.perf_counter() - t0
            res["engine_config"][name] = eng.describe()
            pr = probes.get(name, {})
            samples = [dt] + ([pr["build_s"]] if "build_s" in pr else [])
            res["build"][name] = {"build_s_main": dt, "build_s_probe": pr.get("build_s"),
                                  "build_s": float(np.mean(samples))}
            mem = {"own_accounting": eng.memory_accounting()}
            if "rss_growth_bytes" in pr:
                mem.update({k_: pr[k_] for k_ in ("rss_growth_bytes", "peak_growth_bytes", "rss_before_kb",
                                                  "rss_after_kb", "peak_kb", "peak_reset")})
                mem["rss_bytes_per_vector"] = pr["rss_growth_bytes"] / n
                mem["peak_bytes_per_vector"] = (None if pr.get("peak_growth_bytes") is None
                                                else pr["peak_growth_bytes"] / n)
            elif pr.get("error"):
                mem["probe_error"] = pr["error"]
            own = list(mem["own_accounting"].values())
            mem["own_bytes_per_vector"] = own[0] / n if own else None
            res["memory"][name] = mem
            print(f"[hnsw] built {name} in {dt:.1f} s", flush=True)

        # 3. efSearch sweep, per thread count; libraries interleaved at each ef
        for t in args.threads:
            tk = str(t)
            for eng in engines.values():
                eng.set_threads(t)
            res["sweep"][tk] = {name: [] for name in names}
            for ef in args.ef:
                for eng in engines.values():
                    eng.set_ef(ef)
                out = {}

                def call(name):
                    def f():
                        out[name] = engines[name].search(xq, k)
                    return f

                times = interleaved({name: call(name) for name in names}, args.repeats, warmup=1)
                for name in names:
                    med = statistics.median(times[name])
                    res["sweep"][tk][name].append({"ef": ef, "recall": recall_at(out[name][1], gt, k),
                                                   "qps": len(xq) / med, "median_s": med, "times_s": times[name]})
                print(f"[hnsw] threads={t} ef={ef}: " + ", ".join(
                    f"{_short(nm)} {res['sweep'][tk][nm][-1]['recall']:.4f}/{res['sweep'][tk][nm][-1]['qps']:.0f}"
                    for nm in names), flush=True)

        # 4. QPS at the target recall, ratios
        tgt = args.target_recall
        res["at_target"] = {}
        for tk, per in res["sweep"].items():
            at = {name: qps_at_recall([(p["ef"], p["recall"], p["qps"]) for p in pts], tgt)
                  for name, pts in per.items()}
            comp = {nm: a["qps"] for nm, a in at.items() if nm != "nearly-hnsw" and a["qps"] is not None}
            best = max(comp, key=comp.get) if comp else None
            at["_best_competitor"] = best
            at["_nearly_over_best"] = (_ratio(at["nearly-hnsw"]["qps"], comp[best])
                                       if best and "nearly-hnsw" in at else None)
            res["at_target"][tk] = at
        ref = "hnswlib" if "hnswlib" in names else None
        res["ratios_to_hnswlib"] = {} if ref is None else {
            name: {"build_s": _ratio(res["build"][name]["build_s"], res["build"][ref]["build_s"]),
                   "rss_bytes_per_vector": _ratio(res["memory"][name].get("rss_bytes_per_vector"),
                                                  res["memory"][ref].get("rss_bytes_per_vector"))}
            for name in names}

        # 5. API check: SearchParametersHNSW(efSearch=) gives what index.hnsw.efSearch gives
        if "nearly-hnsw" in names:
            import nearly

            ix = engines["nearly-hnsw"].index
            ef = 64
            ix.hnsw.efSearch = ef
            _, I_attr = ix.search(xq, k)
            ix.hnsw.efSearch = 16
            _, I_par = ix.search(xq, k, params=nearly.SearchParametersHNSW(efSearch=ef))
            res["checks"] = {"nearly_params_efSearch_equals_attribute_at_ef64": bool(np.array_equal(I_attr, I_par))}
        return res

    def report(self, res):
        p = res["params"]
        names = p["engines"]
        out = []
        for tk, per in res["sweep"].items():
            rows = []
            for i, ef in enumerate(p["ef_search"]):
                rows.append([ef] + [f"{per[nm][i]['recall']:.4f} / {per[nm][i]['qps']:8.0f}" for nm in names])
            out.append(f"recall@{p['k']} / QPS, {tk} thread(s), batch of {p['nq']} queries, n={p['nb']}, "
                       f"M={p['M']}, efConstruction={p['efConstruction']}")
            out.append(format_table(["efSearch"] + [_short(nm) for nm in names], rows))
            out.append("")
        rows = []
        for tk, at in res["at_target"].items():
            rows.append([tk] + [("-" if at[nm]["qps"] is None else f"{at[nm]['qps']:.0f}")
                                + ("" if at[nm]["status"] == "interpolated" else " *") for nm in names]
                        + [_short(at["_best_competitor"] or "-"),
                           "-" if at["_nearly_over_best"] is None else f"{at['_nearly_over_best']:.2f}x"])
        out.append(f"QPS at recall@{p['k']} = {p['target_recall']} (log-linear interpolation; * = not interpolated, "
                   "see JSON)")
        out.append(format_table(["threads"] + [_short(nm) for nm in names] + ["best other", "nearly/best"], rows))
        out.append("")
        rows = []
        r2h = res.get("ratios_to_hnswlib", {})
        for nm in names:
            b, m = res["build"][nm], res["memory"][nm]
            rr = r2h.get(nm, {})
            f = lambda v, s="{:.2f}": "-" if v is None else s.format(v)  # noqa: E731
            rows.append([_short(nm), f(b["build_s"], "{:.1f}"), f(b["build_s_main"], "{:.1f}"),
                         f(b["build_s_probe"], "{:.1f}"), f(rr.get("build_s"), "{:.2f}x"),
                         f(m.get("rss_bytes_per_vector"), "{:.0f}"), f(rr.get("rss_bytes_per_vector"), "{:.2f}x"),
                         f(m.get("peak_bytes_per_vector"), "{:.0f}"), f(m.get("own_bytes_per_vector"), "{:.0f}")])
        out.append(f"build ({p['build_threads']} threads, M={p['M']}, efConstruction={p['efConstruction']}) and "
                   f"memory (bytes per vector; raw float32 vector = {4 * p['d']} B)")
        out.append(format_table(["library", "build s", "(here)", "(probe)", "/hnswlib", "RSS B/vec", "/hnswlib",
                                 "peak B/vec", "own B/vec"], rows))
        if res.get("checks"):
            out.append("\nchecks: " + ", ".join(f"{k_}={v}" for k_, v in res["checks"].items()))
        return "\n".join(out)

    def plot(self, res, path):
        p = res["params"]
        names = p["engines"]
        tgt = p["target_recall"]
        styles = {"nearly-hnsw": {"linewidth": 2.2, "color": "C3"}, "faiss-hnsw": {"color": "C0"},
                  "hnswlib": {"color": "C2"}, "usearch": {"color": "C1"}}
        panels = []
        for tk, per in res["sweep"].items():
            series = {nm: ([q["recall"] for q in per[nm]], [q["qps"] for q in per[nm]],
                           [q["ef"] if nm == "nearly-hnsw" else None for q in per[nm]]) for nm in names}
            at = res["at_target"][tk]
            ratio = at["_nearly_over_best"]
            sub = "" if ratio is None else f"; at {tgt}: nearly/{_short(at['_best_competitor'])} = {ratio:.2f}x"
            panels.append(lambda ax, series=series, tk=tk, sub=sub: plot_lines(
                ax, series, f"recall@{p['k']}", "queries / s (log; higher is better)",
                f"{tk} thread(s), batch of {p['nq']}{sub}", logy=True, vlines=[(tgt, f"{tgt}")],
                legend_loc="lower left", styles={k_: v for k_, v in styles.items() if k_ in series}))
        groups = [_short(nm) for nm in names]
        panels.append(lambda ax: plot_bars(
            ax, groups, {f"build s ({p['build_threads']} thr)": [res["build"][nm]["build_s"] for nm in names]},
            "seconds (lower is better)",
            f"build, n={p['nb']}, M={p['M']}, efConstruction={p['efConstruction']}", fmt="{:.1f}"))
        panels.append(lambda ax: plot_bars(
            ax, groups, {"RSS growth in build": [res["memory"][nm].get("rss_bytes_per_vector") for nm in names],
                         "library's own count": [res["memory"][nm].get("own_bytes_per_vector") for nm in names]},
            "bytes / vector (lower is better)", f"memory (float32 vector alone = {4 * p['d']} B)", fmt="{:.0f}"))
        env = res["environment"]
        v = env["versions"]
        sup = (f"HNSW, inner product, {os.path.basename(res['data'])} | {env['cpu_model']} ({env['nproc']} cpus)\n"
               f"nearly {v.get('nearly')} simd={env.get('nearly_simd_level')} | faiss {v.get('faiss')} | "
               f"hnswlib {v.get('hnswlib')} | usearch {v.get('usearch')} | {env['date']}")
        save_figure(panels, path, suptitle=sup, ncols=2)


def lid_mle(xb, k=20):
    """Local intrinsic dimensionality of every base vector: the MLE of Amsaleg et
    al. (KDD 2015) from its k nearest neighbours (itself excluded), found exactly
    with nearly.knn (L2):  LID = -1 / mean_i log(r_i / r_k).  Returns (lid, info)."""
    import nearly

    t0 = time.perf_counter()
    lid = nearly.local_intrinsic_dimensionality(xb, k)
    knn_s = time.perf_counter() - t0
    zero = np.zeros(len(xb), dtype=bool)  # duplicates are clamped inside; not counted separately
    return lid, {"k": k, "knn_s": knn_s, "vectors_with_duplicate_neighbour": int(zero.sum()),
                 "mean": float(lid.mean()), "median": float(np.median(lid)),
                 "p5": float(np.percentile(lid, 5)), "p95": float(np.percentile(lid, 95)),
                 "min": float(lid.min()), "max": float(lid.max())}


def kmeans_assign(xb, n_clusters=100, iters=20, seed=0):
    """Plain Lloyd's k-means (centroids from random base vectors; assignment by
    nearly.knn, L2).  Returns (assignment, info)."""
    import nearly

    rng = np.random.default_rng(seed)
    C = xb[rng.choice(len(xb), n_clusters, replace=False)].copy()
    t0 = time.perf_counter()
    for _ in range(iters):
        a = nearly.knn(xb, C, 1, nearly.METRIC_L2)[1][:, 0]
        counts = np.bincount(a, minlength=n_clusters)
        order = np.argsort(a, kind="stable")
        nonempty = counts > 0
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[nonempty]
        sums = np.add.reduceat(xb[order].astype(np.float64), starts, axis=0)
        C[nonempty] = (sums / counts[nonempty, None]).astype(np.float32)
    D, a = nearly.knn(xb, C, 1, nearly.METRIC_L2)
    a = a[:, 0]
    counts = np.bincount(a, minlength=n_clusters)
    return a, {"clusters": n_clusters, "iters": iters, "seed": seed, "s": time.perf_counter() - t0,
               "size_min": int(counts.min()), "size_median": float(np.median(counts)), "size_max": int(counts.max()),
               "mse": float(D.mean())}


def _graph_stats(index, n):
    """Level-0 out-degree and how many nodes no other node links to (level 0)."""
    h = index.hnsw
    lists = [h.neighbors_of(i, 0) for i in range(n)]
    outdeg = np.array([len(x) for x in lists], dtype=np.int64)
    flat = np.fromiter((j for x in lists for j in x), dtype=np.int64, count=int(outdeg.sum()))
    indeg = np.bincount(flat, minlength=n)
    return {"mean_out_degree_l0": float(outdeg.mean()), "nodes_without_in_links_l0": int((indeg == 0).sum()),
            "max_level": int(h.max_level)}


@register_suite
class HNSWOrderSuite(Suite):
    name = "hnsw-order"
    file_stem = "hnsw_order"
    help = ("insertion-order study on nearly IndexHNSWFlat: recall@10 for random orders vs ascending / "
            "descending local intrinsic dimensionality vs cluster by cluster")
    default_engines = ("nearly-hnsw",)

    def add_arguments(self, p):
        super().add_arguments(p)
        p.set_defaults(threads=[1], repeats=5)  # search threads: 1 gives the steadiest QPS
        p.add_argument("--configs", nargs="+", default=["16:100", "8:40"],
                       help="M:efConstruction pairs (default 16:100 8:40)")
        p.add_argument("--ef", type=int, nargs="+", default=[10, 16, 32, 64], help="efSearch values")
        p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the random orders")
        p.add_argument("--lid-k", type=int, default=20, help="neighbours for the LID estimate (default 20)")
        p.add_argument("--clusters", type=int, default=100, help="k-means clusters (default 100)")
        p.add_argument("--build-threads", type=int, default=1,
                       help="threads for the builds (default 1: a sequential build is deterministic, so the "
                            "only difference between two builds is the order)")
        p.add_argument("--n", type=int, default=None, help="use the first n base vectors (default all)")

    def run(self, args, ds, engines):
        if "nearly-hnsw" not in engines:
            sys.exit("hnsw-order studies nearly's HNSW: --engines nearly-hnsw")
        n = min(args.n or len(ds["xb"]), len(ds["xb"]))
        xb, xq, k = ds["xb"][:n], ds["xq"], args.k
        gt = _ground_truth(ds, n, k)
        search_threads = args.threads[0]
        configs = []
        for c in args.configs:
            m_, efc = c.split(":")
            configs.append({"M": int(m_), "efConstruction": int(efc), "metric": "ip"})

        lid, lid_info = lid_mle(xb, args.lid_k)
        print(f"[hnsw-order] LID (MLE, k={args.lid_k}): mean {lid_info['mean']:.1f}, median {lid_info['median']:.1f}, "
              f"5-95% {lid_info['p5']:.1f}-{lid_info['p95']:.1f} ({lid_info['knn_s']:.1f} s for the exact knn)",
              flush=True)
        assign, km_info = kmeans_assign(xb, args.clusters)
        print(f"[hnsw-order] k-means: {args.clusters} clusters, sizes {km_info['size_min']}-{km_info['size_max']} "
              f"({km_info['s']:.1f} s)", flush=True)

        orders = {"file order": np.arange(n)}
        for s in args.seeds:
            orders[f"random seed {s}"] = np.random.default_rng(1000 + s).permutation(n)
        orders["LID ascending"] = np.argsort(lid, kind="stable")
        orders["LID descending"] = np.argsort(-lid, kind="stable")
        orders["cluster by cluster"] = np.argsort(assign, kind="stable")

        res = {"params": {"k": k, "nq": len(xq), "nb": n, "configs": configs, "ef_search": args.ef,
                          "seeds": args.seeds, "lid_k": args.lid_k, "clusters": args.clusters,
                          "build_threads": args.build_threads, "search_threads": search_threads,
                          "repeats": args.repeats, "orders": list(orders), "engines": ["nearly-hnsw"]},
               "method": {"ids": "vectors are added in the given order; result id j is mapped back to order[j] "
                                 "before scoring against gt_ip_100",
                          "lid": "MLE (Amsaleg et al. 2015): -1/mean(log(r_i/r_k)), r = L2 distances to the "
                                 "k nearest other base vectors, exact (nearly.knn)",
                          "clusters": "Lloyd's k-means (nearly.knn assignment), clusters in id order, members "
                                      "in file order",
                          "random": "np.random.default_rng(1000 + seed).permutation(n); 'file order' is the "
                                    "file's own order (itself a fixed-seed shuffle), shown apart"},
               "lid": lid_info, "kmeans": km_info, "results": []}

        for cfg in configs:
            ckey = f"M={cfg['M']} efC={cfg['efConstruction']}"
            for oname, perm in orders.items():
                eng = ENGINES["nearly-hnsw"]()
                eng.set_threads(args.build_threads)
                t0 = time.perf_counter()
                eng.build(np.ascontiguousarray(xb[perm]), cfg)
                build_s = time.perf_counter() - t0
                eng.set_threads(search_threads)
                row = {"config": ckey, "order": oname, "build_s": build_s, "recall": {}, "qps": {}}
                for ef in args.ef:
                    eng.set_ef(ef)
                    out = {}

                    def f():
                        out["r"] = eng.search(xq, k)

                    times = interleaved({"x": f}, args.repeats, warmup=1)["x"]
                    I = out["r"][1]
                    I = np.where(I >= 0, perm[np.clip(I, 0, n - 1)], -1)
                    row["recall"][str(ef)] = recall_at(I, gt, k)
                    row["qps"][str(ef)] = len(xq) / statistics.median(times)
                row["graph"] = _graph_stats(eng.index, n)
                res["results"].append(row)
                print(f"[hnsw-order] {ckey} {oname:20s} build {build_s:5.1f} s  " + "  ".join(
                    f"ef{ef} {row['recall'][str(ef)]:.4f}" for ef in args.ef), flush=True)
                del eng

        res["summary"] = self.summarize(res)
        return res

    @staticmethod
    def summarize(res):
        """Random mean / spread per ef, every other order's difference from the
        random mean, and QPS at a matched recall (the random mean at the middle ef)
        relative to the random orders' mean there."""
        p = res["params"]
        efs = [str(e) for e in p["ef_search"]]
        summ = {}
        for ckey in dict.fromkeys(r["config"] for r in res["results"]):
            rows = [r for r in res["results"] if r["config"] == ckey]
            rnd = [r for r in rows if r["order"].startswith("random")]
            s = {}
            for ef in efs:
                vals = np.array([r["recall"][ef] for r in rnd])
                e = {"random_mean": float(vals.mean()), "random_min": float(vals.min()),
                     "random_max": float(vals.max()), "random_std": float(vals.std(ddof=1)) if len(vals) > 1 else None,
                     "delta_points_vs_random_mean": {}}
                for r in rows:
                    if not r["order"].startswith("random"):
                        e["delta_points_vs_random_mean"][r["order"]] = 100 * (r["recall"][ef] - vals.mean())
                s[ef] = e
            target = s[efs[len(efs) // 2]]["random_mean"]
            q = {r["order"]: qps_at_recall([(int(e), r["recall"][e], r["qps"][e]) for e in efs], target)["qps"]
                 for r in rows}
            rq = [q[r["order"]] for r in rnd if q[r["order"]] is not None]
            rmean = float(np.mean(rq)) if rq else None
            s["qps_at_matched_recall"] = {
                "recall": target, "random_mean_qps": rmean,
                "random_min_rel": None if not rq else min(rq) / rmean, "random_max_rel": None if not rq else max(rq) / rmean,
                "qps": q, "relative_to_random_mean": {o: _ratio(v, rmean) for o, v in q.items()}}
            summ[ckey] = s
        return summ

    def report(self, res):
        p = res["params"]
        efs = [str(e) for e in p["ef_search"]]
        out = [f"recall@{p['k']} by insertion order (nearly IndexHNSWFlat, n={p['nb']}, inner product; "
               f"build {p['build_threads']} thread(s)); (+/-x.xx) = points vs the mean of the random orders"]
        header = (["config", "order"] + [f"ef={e}" for e in efs]
                  + ["QPS@matched recall", "build s", "no in-link"])
        rows = []
        for ckey, s in res["summary"].items():
            m = s["qps_at_matched_recall"]
            for r in [r for r in res["results"] if r["config"] == ckey]:
                cells = []
                for e in efs:
                    d = s[e]["delta_points_vs_random_mean"].get(r["order"])
                    cells.append(f"{r['recall'][e]:.4f}" + ("" if d is None else f" ({d:+.2f})"))
                rel = m["relative_to_random_mean"].get(r["order"])
                rows.append([ckey, r["order"]] + cells + ["-" if rel is None else f"{rel:.2f}x",
                                                           f"{r['build_s']:.1f}",
                                                           r["graph"]["nodes_without_in_links_l0"]])
            rows.append([ckey, "random mean [min, max]"]
                        + [f"{s[e]['random_mean']:.4f} [{s[e]['random_min']:.4f}, {s[e]['random_max']:.4f}]"
                           for e in efs]
                        + ["-" if m["random_mean_qps"] is None else
                           f"{m['random_mean_qps']:.0f} [{m['random_min_rel']:.2f}, {m['random_max_rel']:.2f}]", "", ""])
        out.append(format_table(header, rows))
        out.append(f"QPS@matched recall: QPS ({p['search_threads']} threads, batch of {p['nq']}) interpolated at the "
                   f"random orders' mean recall at ef={efs[len(efs) // 2]}, relative to the random orders' mean "
                   "there; 'no in-link': level-0 nodes no other node links to")
        li = res["lid"]
        out.append(f"\nLID (MLE, k={li['k']}): mean {li['mean']:.1f}, median {li['median']:.1f}, "
                   f"5%-95% {li['p5']:.1f}-{li['p95']:.1f}, {li['vectors_with_duplicate_neighbour']} vectors with a "
                   f"duplicate among their neighbours; k-means sizes {res['kmeans']['size_min']}-"
                   f"{res['kmeans']['size_max']}")
        return "\n".join(out)

    def plot(self, res, path):
        p = res["params"]
        efs = [str(e) for e in p["ef_search"]]
        panels = []
        colors = {"file order": "0.55", "LID ascending": "C0", "LID descending": "C1", "cluster by cluster": "C2"}
        for ckey, s in res["summary"].items():
            others = [o for o in p["orders"] if not o.startswith("random")]

            def draw(ax, s=s, ckey=ckey, others=others):
                plot_bars(ax, [f"ef={e}" for e in efs],
                          {o: [s[e]["delta_points_vs_random_mean"][o] for e in efs] for o in others},
                          "recall@10 minus random-order mean (points)", f"{ckey}: insertion order vs random",
                          fmt="{:+.2f}", colors=colors)
                x = np.arange(len(efs))
                lo = [100 * (s[e]["random_min"] - s[e]["random_mean"]) for e in efs]
                hi = [100 * (s[e]["random_max"] - s[e]["random_mean"]) for e in efs]
                ax.fill_between(np.concatenate([[x[0] - 0.5], x, [x[-1] + 0.5]]), [lo[0]] + lo + [lo[-1]],
                                [hi[0]] + hi + [hi[-1]], color="grey", alpha=0.3, step="mid", zorder=0,
                                label=f"random orders (seeds {p['seeds']}): min-max")
                ax.axhline(0, color="black", linewidth=0.8)
                ax.legend(fontsize=7)

            panels.append(draw)
            series = {}
            for r in [r for r in res["results"] if r["config"] == ckey]:
                series[r["order"]] = ([r["recall"][e] for e in efs], [r["qps"][e] for e in efs])
            panels.append(lambda ax, series=series, ckey=ckey: plot_lines(
                ax, series, "recall@10", f"queries / s ({p['search_threads']} thr, log)",
                f"{ckey}: recall vs QPS by order (ef {', '.join(efs)})", logy=True, legend_loc="lower left",
                styles={o: ({"linestyle": "--", "color": "grey", "linewidth": 0.8} if o.startswith("random")
                            else {"color": colors.get(o)}) for o in series}))
        env = res["environment"]
        sup = (f"HNSW insertion order, {os.path.basename(res['data'])}, nearly {env['versions'].get('nearly')} | "
               f"{env['cpu_model']} | {env['date']}")
        save_figure(panels, path, suptitle=sup, ncols=2)


# ---- IVF -------------------------------------------------------------------
# An IVF engine builds with index_factory(d, factory, METRIC_INNER_PRODUCT);
# train and add are timed separately; set_nprobe(p) sets index.nprobe on the
# IVF index inside the factory result (extract_index_ivf).
class _FaissAPIIVF(Engine):
    def set_threads(self, n):
        _FaissAPIFlat.set_threads(self, n)

    def create(self, d, factory, metric="ip"):
        m = self.mod
        mt = m.METRIC_INNER_PRODUCT if metric == "ip" else m.METRIC_L2
        nnd = re.fullmatch(r"NNDescent(\d*)(?:,Flat)?", factory)
        if nnd:  # faiss's index_factory has no string for IndexNNDescentFlat
            self.index = m.IndexNNDescentFlat(d, int(nnd.group(1) or 32), mt)
        else:
            self.index = m.index_factory(d, factory, mt)
        try:
            self.ivf = m.extract_index_ivf(self.index)
        except RuntimeError:  # "PQ48" and other indexes without lists: no nprobe
            self.ivf = None
        # faiss's factory gives a LocalSearchCoarseQuantizer quantizer_trains_alone
        # 2 (k-means into it, then add: "not applicable"); its own test sets it
        # to True (nearly's is already 1).
        if self.ivf is not None and "LSCQ" in factory:
            self.ivf.quantizer_trains_alone = True
        # a graph index ("HNSW32,PQ48[,RFlat]", "NSG32", "NNDescent32"): the
        # sweep value is its efSearch (HNSW) or search_L (NSG, NNDescent)
        base = m.downcast_index(self.index.base_index if type(self.index).__name__ == "IndexRefineFlat" else self.index)
        self.graph = self.graph_knob = None
        if self.ivf is None:
            for attr, knob in (("hnsw", "efSearch"), ("nsg", "search_L"), ("nndescent", "search_L")):
                if hasattr(base, attr):
                    self.graph, self.graph_knob = getattr(base, attr), knob
        return self

    def train(self, xb):
        self.index.train(xb)

    def add(self, xb):
        self.index.add(xb)

    def build(self, xb, params):
        self.create(xb.shape[1], params.get("factory", "IVF1024,Flat"), params.get("metric", "ip"))
        self.train(xb)
        self.add(xb)
        return self

    # k_factor (set by the suite for "...,RFlat" strings): searches pass
    # IndexRefineSearchParameters(k_factor, base_index_params=
    # SearchParametersIVF(nprobe)), as faiss users write it.
    k_factor = None

    def set_nprobe(self, p):
        self.nprobe = int(p)
        if self.ivf is not None:
            self.ivf.nprobe = int(p)
        if self.graph is not None:
            setattr(self.graph, self.graph_knob, int(p))

    def search(self, xq, k, params=None):
        if self.k_factor is None:
            return self.index.search(xq, k)
        m = self.mod
        base = (m.SearchParametersIVF(nprobe=self.nprobe) if self.ivf is not None else
                m.SearchParametersHNSW(efSearch=self.nprobe) if self.graph_knob == "efSearch" else None)
        p = m.IndexRefineSearchParameters(k_factor=float(self.k_factor), base_index_params=base)
        return self.index.search(xq, k, params=p)

    def list_sizes(self):
        if self.ivf is None:
            return None
        return np.array([self.ivf.get_list_size(i) for i in range(self.ivf.nlist)], dtype=np.int64)

    def memory_accounting(self):
        # neither library has an accounting call: codes + 8-byte ids per vector
        # + the centroids (IVF), or the codes alone (PQ)
        # (+ d floats per vector for the float copy of ",RFlat")
        iv = self.ivf
        refine = 4 * self.index.d * self.index.ntotal if type(self.index).__name__ == "IndexRefineFlat" else 0
        if self.graph is not None:
            own = getattr(self.index if refine == 0 else self.index.base_index, "memory_bytes", None)
            return {"memory_bytes()+refine": int(own() + refine)} if own else None
        if iv is None:
            return {"estimate(codes)": int(self.index.ntotal * self.index.code_size)}
        return {"estimate(codes+ids+centroids+refine)": int(iv.ntotal * (iv.code_size + 8) + iv.nlist * iv.d * 4
                                                            + refine)}

    def describe(self):
        if self.graph is not None:
            return {"index_class": type(self.index).__name__,
                    "nprobe_via": f"{self.graph_knob} (the sweep is the graph's search width)"}
        if self.ivf is None:
            return {"index_class": type(self.index).__name__, "nprobe_via": None}
        return {"index_class": type(self.index).__name__, "ivf_class": type(self.ivf).__name__,
                "nlist": int(self.ivf.nlist), "nprobe_via": "extract_index_ivf(index).nprobe"}


@register_engine
class NearlyIVF(_FaissAPIIVF):
    name = "nearly-ivf"
    library = "nearly"


@register_engine
class FaissIVF(_FaissAPIIVF):
    name = "faiss-ivf"
    library = "faiss"


_METRIC_NAME = {"ip": "inner product", "l2": "squared L2"}


def _short_ivf(name):
    return name.replace("-ivf", "")


@register_suite
class IVFSuite(Suite):
    name = "ivf"
    help = ("IVF (index_factory 'IVF1024,Flat', inner product): nearly vs faiss; training time, "
            "recall@10-vs-QPS over nprobe at each thread count, QPS at recall 0.90")
    default_engines = ("nearly-ivf", "faiss-ivf")

    def add_arguments(self, p):
        super().add_arguments(p)
        p.set_defaults(repeats=3)
        p.add_argument("--factory", default="IVF1024,Flat", help="index_factory string (default IVF1024,Flat)")
        p.add_argument("--metric", choices=["ip", "l2"], default="ip",
                       help="index metric (default ip; the data are unit-norm, so both share one ground truth)")
        p.add_argument("--nprobe", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64, 128],
                       help="nprobe values to sweep")
        p.add_argument("--train-threads", type=int, default=2, help="threads for train and add (default 2)")
        p.add_argument("--train-repeats", type=int, default=None,
                       help="trainings per library, interleaved (median reported; the last one is searched; "
                            "default --repeats)")
        p.add_argument("--target-recall", type=float, default=0.90, help="recall@k for the QPS comparison (0.90)")
        p.add_argument("--n", type=int, default=None, help="use the first n base vectors (default all; gt recomputed)")
        p.add_argument("--k-factor", type=float, default=None,
                       help="for ',RFlat' strings: search with IndexRefineSearchParameters(k_factor=..., "
                            "base_index_params=SearchParametersIVF(nprobe=...))")

    def run(self, args, ds, engines):
        names = list(engines)
        # one result file per factory string and metric; the default keeps its old name
        self.file_stem = "ivf" if args.factory == "IVF1024,Flat" else "ivf_" + re.sub(r"[^A-Za-z0-9]+", "_", args.factory)
        if args.metric == "l2":  # beside the inner-product run of the same string, not over it
            self.file_stem += "_l2"
        if args.train_repeats is None:
            args.train_repeats = args.repeats
        n = min(args.n or len(ds["xb"]), len(ds["xb"]))
        xb, xq, k = ds["xb"][:n], ds["xq"], args.k
        d = xb.shape[1]
        gt = _ground_truth(ds, n, k)
        res = {"params": {"k": k, "nq": len(xq), "nb": n, "d": d, "metric": args.metric, "factory": args.factory,
                          "train_threads": args.train_threads, "train_repeats": args.train_repeats,
                          "nprobe": args.nprobe, "threads": args.threads, "repeats": args.repeats,
                          "target_recall": args.target_recall, "k_factor": args.k_factor, "engines": names},
               "method": {
                   "train": (f"wall time of index.train(base) on all {n} vectors with {args.train_threads} threads "
                             "on a fresh index_factory index, each library's default k-means settings and seed; "
                             "libraries interleaved in rotating order, median of train_repeats (no warm-up: "
                             "every training is cold)"),
                   "add": f"wall time of index.add(base) with {args.train_threads} threads",
                   "search": ("batched search of all queries per (library, nprobe, threads), nprobe set as "
                              "extract_index_ivf(index).nprobe; libraries interleaved in rotating order, "
                              "1 warm-up, median of repeats; QPS = nq / median"),
                   "qps_at_target": "log(QPS) interpolated linearly in recall between the nprobe points around "
                                    "the target (qps_at_recall, as the hnsw suite)",
                   "memory": ("faiss: estimate ntotal * (code_size + 8-byte id) + nlist * d * 4; nearly: not "
                              "exposed for IVF (None)"),
               },
               "train": {}, "add": {}, "memory": {}, "lists": {}, "sweep": {}, "engine_config": {}}

        # 1. train (interleaved, fresh index each time), then add to the last trained index
        for eng in engines.values():
            eng.set_threads(args.train_threads)
            eng.k_factor = args.k_factor

        def trainer(name):
            def f():
                eng = engines[name]
                eng.create(d, args.factory, args.metric)
                t0 = time.perf_counter()
                eng.train(xb)
                return time.perf_counter() - t0
            return f

        ttimes = interleaved({nm: trainer(nm) for nm in names}, args.train_repeats, warmup=0)
        for nm in names:
            eng = engines[nm]
            t0 = time.perf_counter()
            eng.add(xb)
            add_s = time.perf_counter() - t0
            res["train"][nm] = {"times_s": ttimes[nm], "train_s": statistics.median(ttimes[nm])}
            res["add"][nm] = {"add_s": add_s}
            res["engine_config"][nm] = eng.describe()
            own = eng.memory_accounting()
            res["memory"][nm] = {"own_accounting": own,
                                 "own_bytes_per_vector": (list(own.values())[0] / n) if own else None}
            ls = eng.list_sizes()
            if ls is None:  # no inverted lists (PQ48): one point, no nprobe
                res["lists"][nm] = None
                print(f"[ivf] {nm}: train {res['train'][nm]['train_s']:.2f} s, add {add_s:.2f} s "
                      f"({args.train_threads} threads)", flush=True)
                continue
            res["lists"][nm] = {"nlist": int(len(ls)), "ntotal": int(ls.sum()), "empty": int((ls == 0).sum()),
                                "min": int(ls.min()), "median": float(np.median(ls)), "max": int(ls.max()),
                                # expected scanned fraction per probed list (imbalance factor, as faiss)
                                "imbalance_factor": float(len(ls) * (ls.astype(np.float64) ** 2).sum()
                                                          / max(ls.sum(), 1) ** 2)}
            print(f"[ivf] {nm}: train {res['train'][nm]['train_s']:.2f} s, add {add_s:.2f} s "
                  f"({args.train_threads} threads), lists {ls.min()}-{ls.max()}, "
                  f"imbalance {res['lists'][nm]['imbalance_factor']:.3f}", flush=True)
        res["train_ratio_nearly_over_faiss"] = (
            _ratio(res["train"]["nearly-ivf"]["train_s"], res["train"]["faiss-ivf"]["train_s"])
            if {"nearly-ivf", "faiss-ivf"} <= set(names) else None)

        # 2. nprobe sweep, per thread count; libraries interleaved at each nprobe
        for t in args.threads:
            tk = str(t)
            for eng in engines.values():
                eng.set_threads(t)
            res["sweep"][tk] = {nm: [] for nm in names}
            for pr in args.nprobe:
                for eng in engines.values():
                    eng.set_nprobe(pr)
                out = {}

                def call(name):
                    def f():
                        out[name] = engines[name].search(xq, k)
                    return f

                times = interleaved({nm: call(nm) for nm in names}, args.repeats, warmup=1)
                for nm in names:
                    med = statistics.median(times[nm])
                    res["sweep"][tk][nm].append({"nprobe": pr, "recall": recall_at(out[nm][1], gt, k),
                                                 "qps": len(xq) / med, "median_s": med, "times_s": times[nm]})
                print(f"[ivf] threads={t} nprobe={pr}: " + ", ".join(
                    f"{_short_ivf(nm)} {res['sweep'][tk][nm][-1]['recall']:.4f}/"
                    f"{res['sweep'][tk][nm][-1]['qps']:.0f}" for nm in names), flush=True)

        # 3. QPS at the target recall, ratios nearly / faiss
        tgt = args.target_recall
        res["at_target"] = {}
        for tk, per in res["sweep"].items():
            at = {nm: qps_at_recall([(q["nprobe"], q["recall"], q["qps"]) for q in pts], tgt)
                  for nm, pts in per.items()}
            for a in at.values():  # the helper names its bracket after HNSW's ef
                a["between_nprobe"] = a.pop("between_ef")
                a["status"] = a["status"].replace("ef=", "nprobe=").replace("every ef", "every nprobe")
            at["_nearly_over_faiss"] = (_ratio(at["nearly-ivf"]["qps"], at["faiss-ivf"]["qps"])
                                        if {"nearly-ivf", "faiss-ivf"} <= set(at) else None)
            res["at_target"][tk] = at
        return res

    def report(self, res):
        p = res["params"]
        names = p["engines"]
        both = {"nearly-ivf", "faiss-ivf"} <= set(names)
        out = []
        for tk, per in res["sweep"].items():
            rows = []
            for i, pr in enumerate(p["nprobe"]):
                row = [pr] + [f"{per[nm][i]['recall']:.4f} / {per[nm][i]['qps']:7.0f}" for nm in names]
                if both:
                    row.append(f"{per['nearly-ivf'][i]['qps'] / per['faiss-ivf'][i]['qps']:.2f}x")
                rows.append(row)
            out.append(f"recall@{p['k']} / QPS, {tk} thread(s), batch of {p['nq']} queries, n={p['nb']}, "
                       f"{p['factory']}, {_METRIC_NAME[p.get('metric', 'ip')]}")
            out.append(format_table(["nprobe"] + [_short_ivf(nm) for nm in names] + (["QPS nearly/faiss"] if both
                                                                                     else []), rows))
            out.append("")
        rows = []
        for tk, at in res["at_target"].items():
            rows.append([tk] + [("-" if at[nm]["qps"] is None else f"{at[nm]['qps']:.0f}")
                                + ("" if at[nm]["status"] == "interpolated" else " *")
                                + ("" if not at[nm]["between_nprobe"] else
                                   f" (nprobe {at[nm]['between_nprobe'][0]}-{at[nm]['between_nprobe'][1]})")
                                for nm in names]
                        + ["-" if at["_nearly_over_faiss"] is None else f"{at['_nearly_over_faiss']:.2f}x"])
        out.append(f"QPS at recall@{p['k']} = {p['target_recall']} (log-linear interpolation; * = not "
                   "interpolated, see JSON)")
        out.append(format_table(["threads"] + [_short_ivf(nm) for nm in names] + ["nearly/faiss"], rows))
        out.append("")
        f = lambda v, s="{:.2f}": "-" if v is None else s.format(v)  # noqa: E731
        rows = [[_short_ivf(nm), f(res["train"][nm]["train_s"]), " ".join(f"{x:.2f}" for x in res["train"][nm]["times_s"]),
                 f(res["add"][nm]["add_s"]),
                 "-" if res["lists"][nm] is None else f"{res['lists'][nm]['min']}-{res['lists'][nm]['max']}",
                 "-" if res["lists"][nm] is None else f(res["lists"][nm]["imbalance_factor"], "{:.3f}"),
                 f(res["memory"][nm]["own_bytes_per_vector"], "{:.0f}")] for nm in names]
        out.append(f"training / add ({p['train_threads']} threads, n={p['nb']}); train nearly/faiss = "
                   f"{f(res['train_ratio_nearly_over_faiss'], '{:.2f}x')}; bytes/vector (raw float32 = "
                   f"{4 * p['d']} B; estimate: codes + 8-byte ids + centroids / n)")
        out.append(format_table(["library", "train s", "(samples)", "add s", "list sizes", "imbalance", "B/vec"],
                                rows))
        return "\n".join(out)

    def plot(self, res, path):
        p = res["params"]
        names = p["engines"]
        tgt = p["target_recall"]
        styles = {"nearly-ivf": {"linewidth": 2.2, "color": "C3"}, "faiss-ivf": {"color": "C0"}}
        panels = []
        for tk, per in res["sweep"].items():
            series = {_short_ivf(nm): ([q["recall"] for q in per[nm]], [q["qps"] for q in per[nm]],
                                       [q["nprobe"] for q in per[nm]] if nm == "nearly-ivf" else None)
                      for nm in names}
            ratio = res["at_target"][tk]["_nearly_over_faiss"]
            sub = "" if ratio is None else f"; at {tgt}: nearly/faiss = {ratio:.2f}x"
            panels.append(lambda ax, series=series, tk=tk, sub=sub: plot_lines(
                ax, series, f"recall@{p['k']} (labels: nprobe)", "queries / s (log; higher is better)",
                f"{tk} thread(s), batch of {p['nq']}{sub}", logy=True, vlines=[(tgt, f"{tgt}")],
                legend_loc="lower left",
                styles={_short_ivf(k_): v for k_, v in styles.items() if _short_ivf(k_) in series}))
        tr = res["train_ratio_nearly_over_faiss"]
        panels.append(lambda ax: plot_bars(
            ax, [_short_ivf(nm) for nm in names],
            {f"train s ({p['train_threads']} thr)": [res["train"][nm]["train_s"] for nm in names],
             f"add s ({p['train_threads']} thr)": [res["add"][nm]["add_s"] for nm in names]},
            "seconds (lower is better)",
            f"{p['factory']} train + add, n={p['nb']}" + ("" if tr is None else f"; train nearly/faiss = {tr:.2f}x"),
            fmt="{:.2f}"))
        env = res["environment"]
        v = env["versions"]
        sup = (f"{p['factory']}, {_METRIC_NAME[p.get('metric', 'ip')]}, {os.path.basename(res['data'])} | {env['cpu_model']} "
               f"({env['nproc']} cpus) | nearly {v.get('nearly')} simd={env.get('nearly_simd_level')} | "
               f"faiss {v.get('faiss')} | {env['date']}")
        save_figure(panels, path, suptitle=sup, ncols=len(panels))


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
        # The paper's Pareto settings, then two with more repetitions and
        # fewer partitions at the same 2560 dimensions, which suit these
        # short documents (about 17 tokens: fewer empty partitions).
        settings = [(20, 3, 8, False), (20, 4, 8, False), (20, 5, 8, False), (20, 5, 16, False), (20, 5, 16, True),
                    (40, 3, 8, False), (80, 3, 4, False)]
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

        # (b) end to end with approximate inner indexes. The HNSW search
        # list is max(efSearch, candidates), so efSearch=16 means "as many
        # as the candidates". On a shared machine the load drifts: the brute
        # force is timed again after these rows and the ratios use the
        # median of all its timings (each kept in the JSON).
        res["end_to_end"] = []
        res["end_to_end_loadavg_at_start"] = os.getloadavg()
        for R, ks, dp in [(20, 4, 8), (40, 3, 8), (80, 3, 4)]:
            cfg = self._config(d, R, ks, dp)
            for inner in ["Flat", "HNSW32", "HNSW32,SQ8"]:
                index = nearly.IndexMuvera(d, cfg, inner=inner)
                t0 = time.perf_counter()
                index.add(dx, dl)
                build_s = time.perf_counter() - t0
                ef = 16 if "HNSW" in inner else None
                for kf in (5, 6, 8, 10, 15):
                    params = nearly.SearchParametersHNSW(efSearch=ef) if ef else None
                    (_, I), times = self._time(lambda: index.search(qx, ql, k, params=params, k_factor=kf),
                                               args.repeats)
                    med = statistics.median(times)
                    row = {"R": R, "k_sim": ks, "d_proj": dp, "fde_dim": cfg.fde_dim, "inner": inner,
                           "efSearch": ef, "k_factor": kf, "candidates": k * kf, "build_s": build_s,
                           "times_s": times, "median_s": med, "qps": nq / med, "recall": _recall_sets(I, gt, k)}
                    res["end_to_end"].append(row)
                    print(f"[muvera] (b) ({R},{ks},{dp}) {inner} kf={kf}: recall {row['recall']:.3f}, "
                          f"{row['qps']:.0f} QPS = {row['qps'] / bf['qps']:.1f}x brute force (start)", flush=True)
        res["end_to_end_loadavg_at_end"] = os.getloadavg()
        _, times_after = self._time(lambda: exact.search(qx, ql, k), args.repeats)
        bf["times_after_end_to_end_s"] = times_after
        bf["qps_at_start"] = bf["qps"]
        bf["qps_after_end_to_end"] = nq / statistics.median(times_after)
        bf["qps"] = nq / statistics.median(bf["times_s"] + times_after)
        print(f"[muvera] IndexMultiVectorFlat again: {bf['qps_after_end_to_end']:.1f} QPS; ratios use "
              f"{bf['qps']:.1f} QPS (median of all {len(bf['times_s']) + len(times_after)} timings)", flush=True)
        for row in res["end_to_end"]:
            row["speedup_vs_brute_force"] = row["qps"] / bf["qps"]
        res["end_to_end_meeting_targets"] = [
            {key: row[key] for key in ("R", "k_sim", "d_proj", "inner", "candidates", "recall",
                                       "speedup_vs_brute_force")}
            for row in res["end_to_end"]
            if row["inner"] != "Flat" and row["recall"] >= 0.85 and row["speedup_vs_brute_force"] >= 10]

        # (c) FDE encoding throughput vs numpy: "numpy per-point" is the
        # plain numpy implementation of the same algorithm that the issue's
        # target refers to (the reference's loops: documents, repetitions,
        # points, with numpy products per point); "per-doc" does one
        # repetition of a document per numpy call; "vectorized" encodes all
        # documents of a repetition in a few whole-array operations. numpy
        # runs on one thread (its own BLAS threads aside), nearly on
        # --threads.
        res["encoding_loadavg_at_start"] = os.getloadavg()
        res["encoding"] = []
        nd = min(args.numpy_docs, len(dl))
        sub_x, sub_l = dx[:int(dl[:nd].sum())], dl[:nd]
        for R, ks, dp in [(20, 5, 16), (20, 4, 8), (40, 3, 8)]:
            cfg = self._config(d, R, ks, dp)
            _, t_ours = self._time(lambda: nearly.fde_encode_documents(dx, dl, cfg), args.repeats)
            npf = NumpyFDE(d, R, ks, dp)
            _, t_loop = self._time(lambda: npf.encode_loop(sub_x, sub_l), 1)
            _, t_vec = self._time(lambda: npf.encode_vectorized(dx, dl), 1)
            _, t_pt = self._time(lambda: npf.encode_per_point(sub_x, sub_l), 1)
            # CPU seconds (all threads of this process) per run: the work
            # each side does, which the other jobs on a shared machine
            # disturb far less than the wall clock
            c0 = time.process_time()
            nearly.fde_encode_documents(dx, dl, cfg)
            cpu_ours = time.process_time() - c0
            c0 = time.process_time()
            npf.encode_per_point(sub_x, sub_l)
            cpu_pt = time.process_time() - c0
            row = {"R": R, "k_sim": ks, "d_proj": dp, "nearly_docs_per_s": len(dl) / statistics.median(t_ours),
                   "numpy_loop_docs_per_s": nd / statistics.median(t_loop),
                   "numpy_vectorized_docs_per_s": len(dl) / statistics.median(t_vec),
                   "numpy_per_point_docs_per_s": nd / statistics.median(t_pt), "numpy_per_point_times_s": t_pt,
                   "nearly_times_s": t_ours, "numpy_loop_times_s": t_loop, "numpy_vectorized_times_s": t_vec}
            row["speedup_vs_numpy_loop"] = row["nearly_docs_per_s"] / row["numpy_loop_docs_per_s"]
            row["speedup_vs_numpy_vectorized"] = row["nearly_docs_per_s"] / row["numpy_vectorized_docs_per_s"]
            row["speedup_vs_numpy_per_point"] = row["nearly_docs_per_s"] / row["numpy_per_point_docs_per_s"]
            row["nearly_docs_per_cpu_s"] = len(dl) / cpu_ours
            row["numpy_per_point_docs_per_cpu_s"] = nd / cpu_pt
            row["cpu_speedup_vs_numpy_per_point"] = row["nearly_docs_per_cpu_s"] / row["numpy_per_point_docs_per_cpu_s"]
            res["encoding"].append(row)
            print(f"[muvera] (c) ({R},{ks},{dp}): nearly {row['nearly_docs_per_s']:.0f} docs/s, numpy loop "
                  f"{row['numpy_loop_docs_per_s']:.0f} ({row['speedup_vs_numpy_loop']:.0f}x), numpy vectorized "
                  f"{row['numpy_vectorized_docs_per_s']:.0f} ({row['speedup_vs_numpy_vectorized']:.1f}x), per point "
                  f"{row['numpy_per_point_docs_per_s']:.0f} ({row['speedup_vs_numpy_per_point']:.0f}x); per CPU-second "
                  f"{row['nearly_docs_per_cpu_s']:.0f} vs {row['numpy_per_point_docs_per_cpu_s']:.0f} "
                  f"({row['cpu_speedup_vs_numpy_per_point']:.0f}x)", flush=True)
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
               "numpy vectorized", "speedup", "per CPU-s: nearly / per-point"]
        rows = [[f"({r['R']},{r['k_sim']},{r['d_proj']})", f"{r['nearly_docs_per_s']:.0f}",
                 f"{r['numpy_per_point_docs_per_s']:.0f}", f"{r['speedup_vs_numpy_per_point']:.0f}x",
                 f"{r['numpy_loop_docs_per_s']:.0f}", f"{r['speedup_vs_numpy_loop']:.0f}x",
                 f"{r['numpy_vectorized_docs_per_s']:.0f}", f"{r['speedup_vs_numpy_vectorized']:.1f}x",
                 f"{r['nearly_docs_per_cpu_s']:.0f} / {r['numpy_per_point_docs_per_cpu_s']:.0f} = "
                 f"{r['cpu_speedup_vs_numpy_per_point']:.0f}x"]
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


@register_suite
class BinarySuite(Suite):
    name = "binary"
    help = ("BEBR recurrent binary codes (IndexBinaryRecurrent, SDC) vs faiss 1-bit sign codes "
            "(IndexBinaryFlat) and faiss PQ: recall@10 with / without float re-ranking per bits_per_dim, "
            "single-thread scan speed (codes/s/core) per kernel, bytes per vector")
    default_engines = ()

    def add_arguments(self, p):
        p.add_argument("--data", default=DEFAULT_DATA, help="dataset .npz (default ../shared/data/pypi-minilm-100k.npz)")
        p.add_argument("--out", default=DEFAULT_OUT, help="output folder (default bench/results)")
        p.add_argument("--engines", nargs="*", default=[], help=argparse.SUPPRESS)
        p.add_argument("--threads", type=int, default=2, help="threads for training / encoding (default 2)")
        p.add_argument("--repeats", type=int, default=5, help="interleaved repetitions per timing (median)")
        p.add_argument("--k", type=int, default=10)
        p.add_argument("--bits", type=int, nargs="+", default=[1, 2, 4], help="bits_per_dim values (default 1 2 4)")
        p.add_argument("--candidates", type=int, nargs="+", default=[10, 20, 50, 100, 200],
                       help="re-ranked candidate counts (default 10 20 50 100 200)")
        p.add_argument("--pq", type=int, nargs="*", default=[48, 96],
                       help="faiss IndexPQ sub-quantizer counts (8 bits each) for the bytes/recall comparison")
        p.add_argument("--scan-queries", type=int, default=50, help="queries per scan-speed timing (default 50)")
        p.add_argument("--ivfpq-nlist", type=int, default=1024, help="faiss IVFPQ lists for the equal-recall comparison")
        p.add_argument("--ivfpq-m", type=int, nargs="*", default=[48, 96, 192],
                       help="faiss IVFPQ sub-quantizer counts (8 bits each) swept for the equal-recall comparison")
        p.add_argument("--ivfpq-nprobe", type=int, nargs="*", default=[1, 2, 4, 8, 16, 32, 64, 128])
        p.add_argument("--ivfpq-queries", type=int, default=200, help="queries per IVFPQ / RBE QPS timing (1 thread)")
        p.add_argument("--torch-seconds", type=float, default=0,
                       help="seconds of torch training per bits_per_dim for the torch-vs-numpy rows (0: skip; "
                            "needs torch)")
        p.add_argument("--torch-mlp-hidden", type=int, default=512,
                       help="hidden width of the authors' MLP model in the torch rows (trained at 2 bits/dim)")
        p.add_argument("--parts", nargs="+", choices=["codes", "graph"], default=["codes", "graph"],
                       help="codes: the flat code comparisons above; graph: IndexBinaryHNSW / IndexBinaryIVF vs "
                            "faiss's on sign codes, and HNSW{M},RBE / IVF{n},RBE vs the flat SDC index "
                            "(a graph-only run writes binary-graph.json / .png)")
        p.add_argument("--graph-M", type=int, default=32, help="HNSW M of the graph part (default 32)")
        p.add_argument("--graph-ef", type=int, nargs="+", default=[16, 32, 64, 128, 256])
        p.add_argument("--graph-nlist", type=int, default=1024, help="IVF nlist of the graph part (default 1024)")
        p.add_argument("--graph-nprobe", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
        p.add_argument("--graph-queries", type=int, default=1000, help="queries timed per point (default 1000)")
        p.add_argument("--graph-rbe-train", type=int, default=20000,
                       help="vectors the RBE encoders of the graph part train on (default 20000)")

    @staticmethod
    def _rerank_recalls(xq, xb, cand, gt, k, counts):
        out = {}
        for c in counts:
            C = cand[:, :c]
            s = np.einsum("qd,qcd->qc", xq, xb[np.maximum(C, 0)])
            s[C < 0] = -np.inf
            order = np.argsort(-s, axis=1, kind="stable")[:, :k]
            out[c] = recall_at(np.take_along_axis(C, order, 1), gt, k)
        return out

    def run(self, args, ds, engines):
        res = {}
        if "codes" in args.parts:
            res.update(self.run_codes(args, ds))
        else:
            self.file_stem = "binary-graph"
        if "graph" in args.parts:
            res["graph"] = self.run_graph(args, ds)
        return res

    @staticmethod
    def _tie_recall(D, Dtrue):
        """Share of the k results within the true k-th Hamming distance (ties make ids ambiguous)."""
        return float((np.asarray(D) <= np.asarray(Dtrue)[:, -1:]).mean())

    @staticmethod
    def _overlap(I, J):
        return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(I, J)]))

    def run_graph(self, args, ds):
        """Graph and inverted-file forms, 1 thread, nearly and faiss interleaved in this process."""
        import nearly
        faiss = importlib.import_module("faiss")
        xb, gt, k = ds["xb"], ds["gt"], args.k
        xq = ds["xq"][:args.graph_queries]
        gt = gt[:len(xq)]
        n, d = xb.shape
        M, nlist = args.graph_M, args.graph_nlist
        out = {"params": {"M": M, "efConstruction": 40, "ef": args.graph_ef, "nlist": nlist,
                          "nprobe": args.graph_nprobe, "queries": len(xq), "threads_build": args.threads,
                          "threads_search": 1, "repeats": args.repeats, "k": k,
                          "sign_recall_reference": "tie-aware: results within the exact k-th Hamming distance "
                                                   "(faiss IndexBinaryFlat)",
                          "rbe": f"RBE{d}x2, inner product, encoders trained on xb[:{args.graph_rbe_train}]",
                          "rbe_recall_reference": "overlap with the flat SDC index's top-k (IndexBinaryRecurrent)"}}
        sb, sq = np.packbits(xb > 0, axis=1), np.packbits(xq > 0, axis=1)
        exact = faiss.IndexBinaryFlat(d)
        exact.add(sb)
        Dtrue, _ = exact.search(sq, k)
        libs = {"faiss": faiss, "nearly": nearly}

        def set_threads(t):
            nearly.omp_set_num_threads(t)
            faiss.omp_set_num_threads(t)

        def sweep(indexes, setter, values):
            rows = []
            for v in values:
                for ix in indexes.values():
                    setter(ix, v)
                t = interleaved({name: (lambda ix=ix: ix.search(sq, k)) for name, ix in indexes.items()},
                                args.repeats)
                row = {"value": v}
                for name, ix in indexes.items():
                    D, I = ix.search(sq, k)
                    row[name] = {"recall": self._tie_recall(D, Dtrue), "recall_float_gt": recall_at(I, gt, k),
                                 "qps": len(sq) / statistics.median(t[name])}
                row["qps_ratio_nearly_faiss"] = row["nearly"]["qps"] / row["faiss"]["qps"]
                rows.append(row)
                print(f"[binary-graph] {v:>4}: " + ", ".join(
                    f"{nm} recall {row[nm]['recall']:.4f} qps {row[nm]['qps']:.0f}" for nm in indexes), flush=True)
            return rows

        # IndexBinaryHNSW vs faiss
        set_threads(args.threads)
        hnsw, build = {}, {}
        for name, lib in libs.items():
            hnsw[name] = lib.IndexBinaryHNSW(d, M)
            t0 = time.perf_counter(); hnsw[name].add(sb); build[name] = time.perf_counter() - t0
        set_threads(1)
        print(f"[binary-graph] IndexBinaryHNSW({d}, {M}) built in " + ", ".join(f"{nm} {v:.1f} s" for nm, v in build.items()),
              flush=True)
        out["hnsw"] = {"build_s": build, "rows": sweep(hnsw, lambda ix, v: setattr(ix.hnsw, "efSearch", v), args.graph_ef)}
        del hnsw

        # IndexBinaryIVF vs faiss
        set_threads(args.threads)
        ivf, build = {}, {}
        for name, lib in libs.items():
            ivf[name] = lib.index_binary_factory(d, f"BIVF{nlist}")
            t0 = time.perf_counter(); ivf[name].train(sb); ivf[name].add(sb); build[name] = time.perf_counter() - t0
        set_threads(1)
        same = True
        for v in args.graph_nprobe:
            for ix in ivf.values():
                ix.nprobe = v
            a, b = ivf["faiss"].search(sq, k), ivf["nearly"].search(sq, k)
            same &= bool((a[0] == b[0]).all() and (a[1] == b[1]).all())
        print(f"[binary-graph] BIVF{nlist} trained + added in " + ", ".join(f"{nm} {v:.1f} s" for nm, v in build.items())
              + f"; same ids and distances as faiss at every nprobe: {same}", flush=True)
        out["ivf"] = {"build_s": build, "same_results_as_faiss": same,
                      "rows": sweep(ivf, lambda ix, v: setattr(ix, "nprobe", v), args.graph_nprobe)}
        del ivf

        # RBE: flat SDC vs HNSW / IVF walking or scanning the same codes
        set_threads(args.threads)
        xt = xb[:args.graph_rbe_train]
        rbe = {}
        for desc in (f"RBE{d}x2", f"HNSW{M},RBE{d}x2", f"IVF{nlist},RBE{d}x2"):
            ix = nearly.index_factory(d, desc, nearly.METRIC_INNER_PRODUCT)
            t0 = time.perf_counter(); ix.train(xt); t_train = time.perf_counter() - t0
            t0 = time.perf_counter(); ix.add(xb); t_add = time.perf_counter() - t0
            rbe[desc] = ix
            print(f"[binary-graph] {desc}: train {t_train:.1f} s, add {t_add:.1f} s", flush=True)
            out.setdefault("rbe_build_s", {})[desc] = {"train": t_train, "add": t_add}
        set_threads(1)
        flat, gh, gi = rbe[f"RBE{d}x2"], rbe[f"HNSW{M},RBE{d}x2"], rbe[f"IVF{nlist},RBE{d}x2"]
        _, If = flat.search(xq, k)
        tf = interleaved({"flat": lambda: flat.search(xq, k)}, args.repeats)["flat"]
        out["rbe_flat"] = {"qps": len(xq) / statistics.median(tf), "recall_float_gt": recall_at(If, gt, k)}
        print(f"[binary-graph] flat SDC: qps {out['rbe_flat']['qps']:.0f}, recall vs float "
              f"{out['rbe_flat']['recall_float_gt']:.4f}", flush=True)
        for key, ix, setter, values in (("rbe_hnsw", gh, lambda v: setattr(gh.hnsw, "efSearch", v), args.graph_ef),
                                        ("rbe_ivf", gi, lambda v: setattr(gi, "nprobe", v), args.graph_nprobe)):
            rows = []
            for v in values:
                setter(v)
                t = interleaved({"graph": lambda: ix.search(xq, k), "flat": lambda: flat.search(xq, k)},
                                args.repeats)
                _, I = ix.search(xq, k)
                row = {"value": v, "recall_vs_flat_sdc": self._overlap(I, If), "recall_float_gt": recall_at(I, gt, k),
                       "qps": len(xq) / statistics.median(t["graph"]),
                       "flat_qps_same_round": len(xq) / statistics.median(t["flat"])}
                row["speedup_vs_flat"] = row["qps"] / row["flat_qps_same_round"]
                rows.append(row)
                print(f"[binary-graph] {key} {v:>4}: recall vs flat SDC {row['recall_vs_flat_sdc']:.4f}, vs float "
                      f"{row['recall_float_gt']:.4f}, qps {row['qps']:.0f} ({row['speedup_vs_flat']:.1f}x flat)",
                      flush=True)
            out[key] = rows
        set_threads(args.threads)
        return out

    def run_codes(self, args, ds):
        import nearly
        faiss = importlib.import_module("faiss")
        xb, xq, gt, k = ds["xb"], ds["xq"], ds["gt"], args.k
        n, d = xb.shape
        nq = len(xq)
        cmax = max(args.candidates)
        res = {"params": {"k": k, "n": n, "d": d, "nq": nq, "bits": args.bits, "candidates": args.candidates,
                          "threads_train": args.threads, "threads_scan": 1, "repeats": args.repeats,
                          "scan_queries": args.scan_queries, "metric": "inner product",
                          "recall_reference": "gt_ip_100[:, :k] (exact float search)"},
               "recurrent": [], "faiss_sign": None, "faiss_pq": [], "scan": [], "ivfpq": None, "torch": []}
        nearly.omp_set_num_threads(args.threads)
        faiss.omp_set_num_threads(args.threads)
        indexes = {}
        for nb in args.bits:
            index = nearly.IndexBinaryRecurrent(d, d, nb, nearly.METRIC_INNER_PRODUCT)
            t0 = time.perf_counter(); index.train(xb); t_train = time.perf_counter() - t0
            t0 = time.perf_counter(); index.add(xb); t_add = time.perf_counter() - t0
            indexes[nb] = index
            _, I = index.search(xq, cmax)
            rr = self._rerank_recalls(xq, xb, I, gt, k, args.candidates)
            row = {"bits_per_dim": nb, "code_bytes": index.code_size,
                   "bytes_per_vector": index.code_size + 4 + 8,
                   "bytes_note": "code + 4-byte centering term + 8-byte id",
                   "train_s": t_train, "add_s": t_add,
                   "recall_sdc": recall_at(I, gt, k),
                   "recall_rerank": {str(c): r for c, r in rr.items()}}
            res["recurrent"].append(row)
            print(f"[binary] RBE{d}x{nb}: recall@{k} SDC {row['recall_sdc']:.4f}, re-ranked "
                  + ", ".join(f"{c}: {r:.4f}" for c, r in rr.items())
                  + f" (train {t_train:.1f} s, add {t_add:.1f} s)", flush=True)
        # the factory path with float re-ranking (same numbers expected as above at k_factor * k candidates)
        if 2 in args.bits:
            fidx = nearly.index_factory(d, f"RBE{d}x2,RFlat", nearly.METRIC_INNER_PRODUCT)
            fidx.train(xb)
            fidx.add(xb)
            _, I = fidx.search(xq, k, params=nearly.IndexRefineSearchParameters(k_factor=10))
            res["factory_RBE_x2_RFlat_kfactor10_recall"] = recall_at(I, gt, k)
            print(f"[binary] index_factory('RBE{d}x2,RFlat'), k_factor=10: recall@{k} "
                  f"{res['factory_RBE_x2_RFlat_kfactor10_recall']:.4f}", flush=True)

        # faiss 1-bit sign codes (plain sign of the raw embedding), Hamming
        sb, sq = np.packbits(xb > 0, axis=1), np.packbits(xq > 0, axis=1)
        fb = faiss.IndexBinaryFlat(d)
        fb.add(sb)
        _, I = fb.search(sq, cmax)
        rr = self._rerank_recalls(xq, xb, I, gt, k, args.candidates)
        res["faiss_sign"] = {"code_bytes": d // 8, "bytes_per_vector": d // 8, "recall_hamming": recall_at(I, gt, k),
                             "recall_rerank": {str(c): r for c, r in rr.items()}}
        print(f"[binary] faiss sign codes: recall@{k} {res['faiss_sign']['recall_hamming']:.4f}, re-ranked "
              + ", ".join(f"{c}: {r:.4f}" for c, r in rr.items()), flush=True)

        # faiss PQ (ADC) at comparable bytes
        for M in args.pq:
            pq = faiss.IndexPQ(d, M, 8, faiss.METRIC_INNER_PRODUCT)
            t0 = time.perf_counter(); pq.train(xb[:20000]); t_train = time.perf_counter() - t0
            pq.add(xb)
            _, I = pq.search(xq, cmax)
            rr = self._rerank_recalls(xq, xb, I, gt, k, args.candidates)
            faiss.omp_set_num_threads(1)
            qs = xq[:args.scan_queries]
            t = interleaved({"pq": lambda: pq.search(qs, k)}, max(1, args.repeats // 2))["pq"]
            faiss.omp_set_num_threads(args.threads)
            row = {"M": M, "code_bytes": M, "bytes_per_vector": M, "train_s_20k": t_train,
                   "recall": recall_at(I, gt, k), "recall_rerank": {str(c): r for c, r in rr.items()},
                   "search_codes_per_s_1thread": len(qs) * n / statistics.median(t)}
            res["faiss_pq"].append(row)
            print(f"[binary] faiss PQ{M}x8: recall@{k} {row['recall']:.4f}, re-ranked 100: "
                  f"{rr.get(100, float('nan')):.4f}; 1-thread search {row['search_codes_per_s_1thread']:.3g} codes/s",
                  flush=True)

        # single-thread scan speed
        nearly.omp_set_num_threads(1)
        faiss.omp_set_num_threads(1)
        qs = xq[:args.scan_queries]
        level0 = nearly.simd_level()
        for nb, index in indexes.items():
            codes = index.codes
            qc = index.binarizer.encode(qs)
            cs = index.code_size
            reps = len(qs)
            fns = {}
            for lv in ("avx2", "avx512"):
                if lv in nearly.simd_levels_supported():
                    def f(lv=lv):
                        nearly.set_simd_level(lv)
                        try:
                            return nearly.sdc_scan_timed(qc, codes, d, nb, False, 1)
                        finally:
                            nearly.set_simd_level(level0)
                    fns[f"sdc_lut_{lv}_kernel"] = f
            if nearly.sdc_popcount_native():
                fns["popcount_avx512_kernel"] = lambda: nearly.sdc_scan_timed(qc, codes, d, nb, True, 1)
            if "avx2" in nearly.simd_levels_supported():
                def pop_avx2():
                    nearly.set_simd_level("avx2")
                    try:
                        assert nearly.sdc_popcount_kernel() == "avx2_pshufb"
                        return nearly.sdc_scan_timed(qc, codes, d, nb, True, 1)
                    finally:
                        nearly.set_simd_level(level0)
                fns["popcount_avx2_kernel"] = pop_avx2
            fns["sdc_search_k10"] = lambda: index.search(qs, k)
            def pop_search():
                index.use_popcount = True
                try:
                    t0 = time.perf_counter()
                    index.search(qs, k)
                    return time.perf_counter() - t0
                finally:
                    index.use_popcount = False
            if nearly.sdc_popcount_native():
                fns["popcount_search_k10"] = pop_search
            # 1-bit Hamming at the same bytes per code (random codes: the scan cost does not depend on the bits)
            hb = np.ascontiguousarray(codes)
            hq = np.ascontiguousarray(qc)
            fflat = faiss.IndexBinaryFlat(cs * 8)
            fflat.add(hb)
            nflat = nearly.IndexBinaryFlat(cs * 8)
            nflat.add(hb)
            fns["faiss_IndexBinaryFlat_k10"] = lambda: fflat.search(hq, k)
            fns["nearly_IndexBinaryFlat_k10"] = lambda: nflat.search(hq, k)
            t = interleaved(fns, args.repeats)
            row = {"bits_per_dim": nb, "code_bytes": cs, "queries": reps, "n": n,
                   "times_s": t, "codes_per_s": {name: reps * n / statistics.median(v) for name, v in t.items()},
                   "popcount_kernel": "AVX-512 BITALG vpopcntb on the blocked layout; popcount_avx2_kernel: "
                                      "nibble-table pshufb popcount (Mula) at the avx2 level",
                   "nearly_IndexBinaryFlat_kernel": "AVX-512 VPOPCNTDQ" if nearly.hamming_vpopcntdq_native() else "popcnt"}
            cps = row["codes_per_s"]
            row["sdc_search_vs_faiss_flat"] = cps["sdc_search_k10"] / cps["faiss_IndexBinaryFlat_k10"]
            res["scan"].append(row)
            print(f"[binary] scan {cs} B/code, 1 thread: " + ", ".join(f"{nm} {v:.3g}" for nm, v in cps.items()),
                  flush=True)
        nearly.omp_set_num_threads(args.threads)
        if 2 in indexes and args.ivfpq_m:
            res["ivfpq"] = self._ivfpq_equal_recall(args, faiss, nearly, xb, xq, gt, k, indexes[2],
                                                    next(r for r in res["recurrent"] if r["bits_per_dim"] == 2))
        if args.torch_seconds > 0:
            res["torch"] = self._torch_rows(args, nearly, xb, xq, gt, k, res)
        return res

    def _ivfpq_equal_recall(self, args, faiss, nearly, xb, xq, gt, k, rbe, rbe_row):
        """faiss IndexIVFPQ (ADC, no re-ranking) swept over M and nprobe: the cheapest setting whose recall@k
        reaches RBE x2's SDC recall, its bytes per vector and 1-thread QPS beside RBE x2's (same process,
        interleaved timings)."""
        n, d = xb.shape
        cmax = max(args.candidates)
        target = rbe_row["recall_sdc"]
        target_rr = rbe_row["recall_rerank"].get("100")
        nq_t = min(args.ivfpq_queries, len(xq))
        qs = xq[:nq_t]
        sweep = []
        ivfs = {}
        for M in args.ivfpq_m:
            quant = faiss.IndexFlatIP(d)
            ivf = faiss.IndexIVFPQ(quant, d, args.ivfpq_nlist, M, 8, faiss.METRIC_INNER_PRODUCT)
            faiss.omp_set_num_threads(args.threads)
            t0 = time.perf_counter(); ivf.train(xb[:50000]); t_train = time.perf_counter() - t0
            ivf.add(xb)
            ivfs[M] = ivf
            for nprobe in args.ivfpq_nprobe:
                ivf.nprobe = nprobe
                _, I = ivf.search(xq, cmax)
                rr = self._rerank_recalls(xq, xb, I, gt, k, [100])
                row = {"M": M, "nprobe": nprobe, "nlist": args.ivfpq_nlist, "train_s_50k": t_train,
                       "recall": recall_at(I, gt, k), "recall_rerank100": rr[100],
                       # faiss stores per vector the M-byte code and an 8-byte id in the inverted lists
                       "bytes_per_vector": M + 8}
                sweep.append(row)
                print(f"[binary] faiss IVF{args.ivfpq_nlist},PQ{M} nprobe {nprobe}: recall@{k} {row['recall']:.4f}, "
                      f"re-ranked 100 {rr[100]:.4f}", flush=True)
        def cheapest(key, want):
            ok = [r for r in sweep if want is not None and r[key] >= want]
            return min(ok, key=lambda r: (r["bytes_per_vector"], r["nprobe"])) if ok else None
        match = cheapest("recall", target)
        match_rr = cheapest("recall_rerank100", target_rr)
        # 1-thread QPS, interleaved: RBE x2 (SDC, k=10) and the matching IVFPQ settings (k=10)
        nearly.omp_set_num_threads(1)
        faiss.omp_set_num_threads(1)
        fns = {"RBE_x2_sdc_k10": lambda: rbe.search(qs, k)}
        chosen = {}
        for tag, row in (("ivfpq_equal_recall", match), ("ivfpq_equal_recall_rerank100", match_rr)):
            if row is None:
                continue
            ivf = ivfs[row["M"]]
            def f(ivf=ivf, nprobe=row["nprobe"]):
                ivf.nprobe = nprobe
                t0 = time.perf_counter()
                ivf.search(qs, k)
                return time.perf_counter() - t0
            fns[f"IVF{row['nlist']}_PQ{row['M']}_nprobe{row['nprobe']}_k10"] = f
            chosen[tag] = dict(row, timing=f"IVF{row['nlist']}_PQ{row['M']}_nprobe{row['nprobe']}_k10")
        t = interleaved(fns, args.repeats)
        qps = {nm: nq_t / statistics.median(v) for nm, v in t.items()}
        nearly.omp_set_num_threads(args.threads)
        faiss.omp_set_num_threads(args.threads)
        for row in chosen.values():
            row["qps_1thread"] = qps[row["timing"]]
        out = {"target_recall_sdc": target, "target_recall_rerank100": target_rr, "sweep": sweep,
               "queries_timed": nq_t, "qps_1thread": qps, "times_s": t,
               "rbe_x2": {"bytes_per_vector": rbe_row["bytes_per_vector"], "code_bytes": rbe_row["code_bytes"],
                          "qps_1thread": qps["RBE_x2_sdc_k10"], "recall_sdc": target},
               "float_bytes_per_vector": d * 4,
               "note": "IVFPQ bytes = M-byte code + 8-byte id per vector (inverted lists), ADC on residuals, no "
                       "re-ranking; RBE bytes = code + 4-byte centering term + 8-byte id; the cheapest swept "
                       "setting whose recall@k reaches RBE's"}
        out.update(chosen)
        for tag, row in chosen.items():
            print(f"[binary] {tag}: IVF{row['nlist']},PQ{row['M']} nprobe {row['nprobe']} recall {row['recall']:.4f} "
                  f"({row['bytes_per_vector']} B/vector, {row['qps_1thread']:.0f} QPS) vs RBE x2 "
                  f"({rbe_row['bytes_per_vector']} B/vector, {qps['RBE_x2_sdc_k10']:.0f} QPS, 1 thread)", flush=True)
        return out

    def _torch_rows(self, args, nearly, xb, xq, gt, k, res):
        """RecurrentBinarizer trained by the torch path beside the numpy rows: the numpy solution fine-tuned
        (linear maps) at every bits_per_dim, and the authors' MLP model from a random init at 2 bits/dim,
        each with a training time budget."""
        try:
            import torch  # noqa: F401
        except ImportError:
            print("[binary] torch not installed: no torch rows", flush=True)
            return []
        d = xb.shape[1]
        cmax = max(args.candidates)
        runs = [dict(bits=nb, label="torch fine-tune of the numpy maps (linear)", options={"init": "numpy"})
                for nb in args.bits]
        if 2 in args.bits and args.torch_mlp_hidden:
            runs.append(dict(bits=2, label=f"torch, authors' MLP (hidden {args.torch_mlp_hidden}, BatchNorm), "
                                           "random init", options={"hidden": args.torch_mlp_hidden, "init": "random"}))
        rows = []
        for run in runs:
            index = nearly.IndexBinaryRecurrent(d, d, run["bits"], nearly.METRIC_INNER_PRODUCT)
            opts = dict(run["options"], epochs=100, time_limit=args.torch_seconds)
            t0 = time.perf_counter(); index.train(xb, method="torch", **opts); t_train = time.perf_counter() - t0
            index.add(xb)
            _, I = index.search(xq, cmax)
            rr = self._rerank_recalls(xq, xb, I, gt, k, [100])
            numpy_row = next(r for r in res["recurrent"] if r["bits_per_dim"] == run["bits"])
            row = {"bits_per_dim": run["bits"], "method": run["label"], "options": opts, "train_s": t_train,
                   "recall_sdc": recall_at(I, gt, k), "recall_rerank100": rr[100],
                   "numpy_recall_sdc": numpy_row["recall_sdc"],
                   "numpy_recall_rerank100": numpy_row["recall_rerank"].get("100")}
            rows.append(row)
            print(f"[binary] RBE{d}x{run['bits']} {run['label']}: recall@{k} SDC {row['recall_sdc']:.4f} "
                  f"(numpy {row['numpy_recall_sdc']:.4f}), re-ranked 100 {rr[100]:.4f} "
                  f"(numpy {row['numpy_recall_rerank100']}); train {t_train:.0f} s", flush=True)
        return rows

    @staticmethod
    def _report_graph(g):
        p = g["params"]
        lines = [f"graph / inverted-file forms, 1 thread, {p['queries']} queries, k={p['k']} "
                 f"(sign codes: {p['sign_recall_reference']}; RBE: {p['rbe_recall_reference']})"]
        for key, label in (("hnsw", f"IndexBinaryHNSW M={p['M']}, efSearch"), ("ivf", f"BIVF{p['nlist']}, nprobe")):
            lines.append(f"  {label}: build s " + ", ".join(f"{nm} {v:.1f}" for nm, v in g[key]["build_s"].items()))
            for r in g[key]["rows"]:
                lines.append(f"    {r['value']:>4}: faiss recall {r['faiss']['recall']:.4f} qps {r['faiss']['qps']:>8.0f} | "
                             f"nearly recall {r['nearly']['recall']:.4f} qps {r['nearly']['qps']:>8.0f} "
                             f"({r['qps_ratio_nearly_faiss']:.2f}x)")
        lines.append(f"  flat SDC ({p['rbe']}): qps {g['rbe_flat']['qps']:.0f}, recall vs float "
                     f"{g['rbe_flat']['recall_float_gt']:.4f}")
        for key, label in (("rbe_hnsw", f"HNSW{p['M']},RBE efSearch"), ("rbe_ivf", f"IVF{p['nlist']},RBE nprobe")):
            for r in g[key]:
                lines.append(f"    {label} {r['value']:>4}: recall vs flat SDC {r['recall_vs_flat_sdc']:.4f}, vs float "
                             f"{r['recall_float_gt']:.4f}, qps {r['qps']:.0f} ({r['speedup_vs_flat']:.1f}x flat)")
        return lines

    def report(self, results):
        if "recurrent" not in results:
            return "\n".join(self._report_graph(results["graph"]))
        text = self._report_codes(results)
        if "graph" in results:
            text += "\n\n" + "\n".join(self._report_graph(results["graph"]))
        return text

    def _report_codes(self, results):
        p = results["params"]
        lines = [f"recall@{p['k']} vs exact float search ({p['nq']} queries, {p['n']} x {p['d']})",
                 f"{'codes':<22} {'bytes/vec':>9} {'no rerank':>9} " + " ".join(f"{'rr' + str(c):>7}" for c in p["candidates"])]
        for r in results["recurrent"]:
            lines.append(f"{'RBE%dx%d (SDC)' % (p['d'], r['bits_per_dim']):<22} {r['bytes_per_vector']:>9} "
                         f"{r['recall_sdc']:>9.4f} " + " ".join(f"{r['recall_rerank'][str(c)]:>7.4f}" for c in p["candidates"]))
        fs = results["faiss_sign"]
        lines.append(f"{'faiss sign (Hamming)':<22} {fs['bytes_per_vector']:>9} {fs['recall_hamming']:>9.4f} "
                     + " ".join(f"{fs['recall_rerank'][str(c)]:>7.4f}" for c in p["candidates"]))
        for r in results["faiss_pq"]:
            lines.append(f"{'faiss PQ%dx8 (ADC)' % r['M']:<22} {r['bytes_per_vector']:>9} {r['recall']:>9.4f} "
                         + " ".join(f"{r['recall_rerank'][str(c)]:>7.4f}" for c in p["candidates"]))
        iv = results.get("ivfpq")
        if iv:
            lines.append("")
            lines.append(f"bytes per vector at equal recall (float32: {iv['float_bytes_per_vector']} B)")
            rb = iv["rbe_x2"]
            lines.append(f"  RBE x2 (SDC): {rb['bytes_per_vector']} B, recall {rb['recall_sdc']:.4f}, "
                         f"{rb['qps_1thread']:.0f} QPS (1 thread)")
            for tag in ("ivfpq_equal_recall", "ivfpq_equal_recall_rerank100"):
                r = iv.get(tag)
                if r:
                    lines.append(f"  {tag}: IVF{r['nlist']},PQ{r['M']} nprobe {r['nprobe']}: {r['bytes_per_vector']} B, "
                                 f"recall {r['recall']:.4f} (re-ranked 100: {r['recall_rerank100']:.4f}), "
                                 f"{r['qps_1thread']:.0f} QPS (1 thread)")
        for r in results.get("torch") or []:
            lines.append(f"  torch x{r['bits_per_dim']} ({r['method']}, {r['train_s']:.0f} s): SDC {r['recall_sdc']:.4f} "
                         f"(numpy {r['numpy_recall_sdc']:.4f}), re-ranked 100 {r['recall_rerank100']:.4f} "
                         f"(numpy {r['numpy_recall_rerank100']:.4f})")
        lines.append("")
        lines.append("single-thread scan speed, million codes / s (median)")
        for r in results["scan"]:
            lines.append(f"  {r['bits_per_dim']} bits/dim ({r['code_bytes']} B/code): "
                         + ", ".join(f"{k} {v / 1e6:.1f}" for k, v in r["codes_per_s"].items()))
        return "\n".join(lines)

    @staticmethod
    def _graph_panels(g):
        def sign_panel(ax):
            for key, mk in (("hnsw", "o"), ("ivf", "s")):
                for nm, ls in (("faiss", "--"), ("nearly", "-")):
                    rows = g[key]["rows"]
                    ax.plot([r[nm]["recall"] for r in rows], [r[nm]["qps"] for r in rows], marker=mk, ls=ls,
                            label=f"{nm} {'IndexBinaryHNSW' if key == 'hnsw' else 'IndexBinaryIVF'}")
            ax.set_yscale("log")
            ax.set_xlabel("recall@10 (within the exact k-th Hamming distance)")
            ax.set_ylabel("queries / s, 1 thread")
            ax.set_title("(c) 1-bit sign codes: graph and IVF vs faiss", fontsize=10)
            ax.legend(fontsize=6)
            ax.grid(alpha=0.3)

        def rbe_panel(ax):
            for key, mk in (("rbe_hnsw", "o"), ("rbe_ivf", "s")):
                ax.plot([r["recall_vs_flat_sdc"] for r in g[key]], [r["qps"] for r in g[key]], marker=mk,
                        label="HNSW,RBE" if key == "rbe_hnsw" else "IVF,RBE")
            ax.scatter([1.0], [g["rbe_flat"]["qps"]], marker="*", s=80, color="k", label="flat SDC", zorder=3)
            ax.set_yscale("log")
            ax.set_xlabel("recall@10 against the flat SDC index")
            ax.set_ylabel("queries / s, 1 thread")
            ax.set_title("(d) RBE x2 codes: graph / IVF vs flat SDC", fontsize=10)
            ax.legend(fontsize=6)
            ax.grid(alpha=0.3)
        return [sign_panel, rbe_panel]

    def plot(self, results, path):
        if "recurrent" not in results:
            env = results["environment"]
            sup = (f"binary graph / IVF on {os.path.basename(results['data'])} | {env['cpu_model']} ({env['nproc']} cpus) | "
                   f"load {env['loadavg_at_start']} -> {env['loadavg_at_end']} | {env['date']}")
            save_figure(self._graph_panels(results["graph"]), path, suptitle=sup)
            return
        p = results["params"]

        def recall_panel(ax):
            cs = p["candidates"]
            for r in results["recurrent"]:
                ax.plot([p["k"]] + cs, [r["recall_sdc"]] + [r["recall_rerank"][str(c)] for c in cs], marker="o",
                        label=f"RBE x{r['bits_per_dim']} ({r['code_bytes']} B)")
            fs = results["faiss_sign"]
            ax.plot([p["k"]] + cs, [fs["recall_hamming"]] + [fs["recall_rerank"][str(c)] for c in cs], marker="s",
                    ls="--", label=f"faiss sign Hamming ({fs['code_bytes']} B)")
            for r in results["faiss_pq"]:
                ax.plot([p["k"]] + cs, [r["recall"]] + [r["recall_rerank"][str(c)] for c in cs], marker="^", ls=":",
                        label=f"faiss PQ{r['M']} ({r['M']} B)")
            ax.set_xscale("log")
            ax.axhline(0.97, color="grey", ls=":", lw=1)
            ax.axhline(0.70, color="grey", ls=":", lw=1)
            ax.set_xlabel("candidates re-ranked on float vectors (10 = none)")
            ax.set_ylabel(f"recall@{p['k']}")
            ax.set_title("(a) recall vs re-ranking depth", fontsize=10)
            ax.legend(fontsize=6)
            ax.grid(alpha=0.3)

        def ivfpq_panel(ax):
            iv = results.get("ivfpq")
            if not iv:
                ax.set_axis_off()
                return
            for M in sorted({r["M"] for r in iv["sweep"]}):
                rows = [r for r in iv["sweep"] if r["M"] == M]
                ax.plot([r["nprobe"] for r in rows], [r["recall"] for r in rows], marker="^",
                        label=f"faiss IVF{rows[0]['nlist']},PQ{M} ({M + 8} B/vec)")
            rb = iv["rbe_x2"]
            ax.axhline(rb["recall_sdc"], color="C3", ls="--",
                       label=f"RBE x2 SDC ({rb['bytes_per_vector']} B/vec, {rb['qps_1thread']:.0f} QPS)")
            m = iv.get("ivfpq_equal_recall")
            if m:
                ax.plot([m["nprobe"]], [m["recall"]], "k*", ms=12,
                        label=f"equal recall: PQ{m['M']} nprobe {m['nprobe']}, {m['qps_1thread']:.0f} QPS")
            ax.set_xscale("log", base=2)
            ax.set_xlabel("nprobe")
            ax.set_ylabel(f"recall@{p['k']} (no re-ranking)")
            ax.set_title("(c) faiss IVFPQ vs RBE x2 at equal recall, 1 thread", fontsize=10)
            ax.legend(fontsize=6)
            ax.grid(alpha=0.3)

        names = sorted({k for r in results["scan"] for k in r["codes_per_s"]})
        panels = [recall_panel, ivfpq_panel, lambda ax: plot_bars(
            ax, [f"{r['bits_per_dim']} bit ({r['code_bytes']} B)" for r in results["scan"]],
            {nm: [r["codes_per_s"].get(nm, 0) / 1e6 for r in results["scan"]] for nm in names},
            "million codes / s / core", "(b) scan speed, 1 thread", fmt="{:.0f}")]
        panels[1], panels[2] = panels[2], panels[1]
        if "graph" in results:
            panels += self._graph_panels(results["graph"])
        env = results["environment"]
        sup = (f"binary codes on {os.path.basename(results['data'])} | {env['cpu_model']} ({env['nproc']} cpus) | "
               f"load {env['loadavg_at_start']} -> {env['loadavg_at_end']} | {env['date']}")
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
    stem = suite.file_stem or suite.name
    jpath = os.path.join(args.out, f"{stem}.json")
    with open(jpath, "w") as f:
        json.dump(res, f, indent=1)
    ppath = os.path.join(args.out, f"{stem}.png")
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
