"""GPU benchmarks, run on a machine with a CUDA device.

    python bench/gpu.py --make-slice ../shared/data .devdata   # here, once (git-ignored)
    python bench/gpu.py flat select ivf graph fde binary muvera --data .devdata --out bench/results   # on the GPU
    python bench/gpu.py binary --rbe-bits 1,2,4 --data .devdata --out bench/results   # recurrent codes, more widths

Data: the real MiniLM embeddings (../shared/data, or a slice of them copied to
--data) tiled to --n vectors with small Gaussian noise (sigma 0.05 per
dimension, then re-normalised), queries likewise from the real queries.
Ground truth is exact search on the tiled data, computed on the GPU.

Every figure comes from the same process: nearly beside torch on the device
(matmul + topk), and beside nearly's CPU indexes on all of the machine's cores
where the issue asks for a CPU ratio. Writes gpu-<suite>.json into --out.
"""
import argparse
import json
import os
import platform
import sys
import time

import numpy as np


def log(*a):
    print(*a, flush=True)


def load(data_dir, n, nq, seed=0):
    import torch
    if os.path.exists(os.path.join(data_dir, "base60k.npy")):
        base = np.load(os.path.join(data_dir, "base60k.npy")).astype(np.float32)
        queries = np.load(os.path.join(data_dir, "queries.npy")).astype(np.float32)
    else:
        z = np.load(os.path.join(data_dir, "pypi-minilm-100k.npz"))
        base, queries = z["base"].astype(np.float32), z["queries"].astype(np.float32)
    g = torch.Generator(device="cuda").manual_seed(seed)

    def tile(x, m):
        x = torch.from_numpy(x).cuda()
        reps = (m + len(x) - 1) // len(x)
        out = x.repeat(reps, 1)[:m]
        out[len(x):] += 0.05 * torch.randn(out[len(x):].shape, generator=g, device="cuda")
        return torch.nn.functional.normalize(out, dim=1).contiguous()

    return tile(base, n), tile(queries, nq)


def load_doc_tokens(data_dir, n_docs=1000):
    """Token vectors and lengths of the first n_docs documents: from a slice
    made by --make-slice, or from the full multi-vector file."""
    if os.path.exists(os.path.join(data_dir, "doc_tokens.npy")):
        return (np.load(os.path.join(data_dir, "doc_tokens.npy")).astype(np.float32),
                np.load(os.path.join(data_dir, "doc_lengths.npy")).astype(np.int64))
    z = np.load(os.path.join(data_dir, "pypi-minilm-tokens-6k.npz"))
    lengths, nq = z["lengths"].astype(np.int64), int(z["nq"])
    start = int(lengths[:nq].sum())
    docs = lengths[nq:nq + n_docs]
    return z["vectors"][start:start + int(docs.sum())].astype(np.float32), docs


def load_query_tokens(data_dir):
    """The token vectors and lengths of the real query sets (the first nq
    texts of the multi-vector file), from a slice or from the full file."""
    if os.path.exists(os.path.join(data_dir, "query_tokens.npy")):
        return (np.load(os.path.join(data_dir, "query_tokens.npy")).astype(np.float32),
                np.load(os.path.join(data_dir, "query_lengths.npy")).astype(np.int64))
    path = os.path.join(data_dir, "pypi-minilm-tokens-6k.npz")
    if not os.path.exists(path):
        sys.exit(f"{data_dir} has no query token vectors: make the slice again "
                 "(python bench/gpu.py --make-slice ../shared/data .devdata)")
    z = np.load(path)
    lengths, nq = z["lengths"].astype(np.int64), int(z["nq"])
    return z["vectors"][:int(lengths[:nq].sum())].astype(np.float32), lengths[:nq]


def make_slice(data_dir, out_dir):
    """The slice of ../shared/data that fits the device machine's 64 MiB
    transfer: 40k base vectors, the queries, 1,000 documents' tokens and the
    300 query sets' tokens."""
    os.makedirs(out_dir, exist_ok=True)
    z = np.load(os.path.join(data_dir, "pypi-minilm-100k.npz"))
    np.save(os.path.join(out_dir, "base60k.npy"), z["base"][:40000])
    np.save(os.path.join(out_dir, "queries.npy"), z["queries"])
    tok, lens = load_doc_tokens(data_dir)
    np.save(os.path.join(out_dir, "doc_tokens.npy"), tok.astype(np.float16))
    np.save(os.path.join(out_dir, "doc_lengths.npy"), lens)
    qtok, qlens = load_query_tokens(data_dir)
    np.save(os.path.join(out_dir, "query_tokens.npy"), qtok.astype(np.float16))
    np.save(os.path.join(out_dir, "query_lengths.npy"), qlens)


def timed(fn, repeat=3):
    import torch
    fn()  # warm-up
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best


def device_info():
    import torch
    p = torch.cuda.get_device_properties(0)
    return {"gpu": p.name, "sms": p.multi_processor_count, "memory_gib": round(p.total_memory / 2**30, 1),
            "cpu_cores": os.cpu_count(), "host": platform.node()}


def measured_peaks():
    """Copy bandwidth (bytes read + written) and dense matmul rates, measured."""
    import torch
    x = torch.empty(2**28, dtype=torch.float32, device="cuda")  # 1 GiB
    y = torch.empty_like(x)
    t = timed(lambda: y.copy_(x), 5)
    bw = 2 * x.numel() * 4 / t
    peaks = {"copy_bandwidth_GBps": bw / 1e9}
    m = 8192
    for name, dtype, tf32 in (("fp32", torch.float32, False), ("tf32", torch.float32, True), ("fp16", torch.float16, False)):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        a = torch.randn(m, m, device="cuda").to(dtype)
        b = torch.randn(m, m, device="cuda").to(dtype)
        t = timed(lambda: a @ b, 3)
        peaks[f"matmul_{name}_TFLOPs"] = 2 * m**3 / t / 1e12
    torch.backends.cuda.matmul.allow_tf32 = False
    return peaks


def recall(I, gt, k=10):
    I, gt = np.asarray(I)[:, :k], np.asarray(gt)[:, :k]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(I, gt)]))


# ---- suites -----------------------------------------------------------------

def suite_flat(args, xb, xq, out):
    import torch
    import nearly
    res = nearly.StandardGpuResources()
    n, d = xb.shape
    nq, k = len(xq), args.k
    peaks = measured_peaks()
    log("peaks", peaks)
    rows = []
    flops = 2.0 * nq * n * d
    gt = None
    for prec in ("fp32", "tf32", "fp16"):
        cfg = nearly.GpuIndexFlatConfig()
        cfg.useFloat16 = prec == "fp16"
        idx = nearly.GpuIndexFlat(res, d, nearly.METRIC_INNER_PRODUCT, cfg)
        idx.allow_tf32 = prec == "tf32"
        idx.add(xb)
        holder = {}
        t = timed(lambda: holder.update(r=idx.search(xq, k)))
        I = holder["r"][1].cpu().numpy()
        if gt is None:
            gt = I
        del idx
        torch.cuda.empty_cache()
        # torch: matmul + topk in the same precision, chunked to fit memory.
        torch.backends.cuda.matmul.allow_tf32 = prec == "tf32"
        xbt = xb.half() if prec == "fp16" else xb
        xqt = xq.half() if prec == "fp16" else xq
        chunk = 2048

        def torch_knn():
            outs = []
            for i in range(0, nq, chunk):
                s = xqt[i:i + chunk] @ xbt.T
                outs.append(torch.topk(s, k, dim=1).indices)
            return torch.cat(outs)

        tt = timed(torch_knn)
        It = torch_knn().cpu().numpy()
        torch.backends.cuda.matmul.allow_tf32 = False
        elem = 2 if prec == "fp16" else 4
        peak = peaks[f"matmul_{prec}_TFLOPs"] * 1e12
        t_compute = flops / peak
        t_memory = (n * d * elem + nq * d * 4) / (peaks["copy_bandwidth_GBps"] * 1e9 / 2)  # read rate = copy/2
        roof = max(t_compute, t_memory)
        row = {"precision": prec, "nearly_s": t, "torch_s": tt, "nearly_qps": nq / t, "torch_qps": nq / tt,
               "speedup_vs_torch": tt / t, "roofline_s": roof, "roofline_bound": "compute" if t_compute > t_memory else "memory",
               "fraction_of_roofline": roof / t, "nearly_TFLOPs": flops / t / 1e12,
               "recall_vs_fp32": recall(I, gt, k), "torch_recall_vs_nearly_fp32": recall(It, gt, k)}
        log(row)
        rows.append(row)
        del xbt, xqt
        torch.cuda.empty_cache()
    # Tile size sweep (fp16 storage): the default is 32 MB, chosen to stay in L2.
    sweep = []
    cfg = nearly.GpuIndexFlatConfig()
    cfg.useFloat16 = True
    idx = nearly.GpuIndexFlat(res, d, nearly.METRIC_INNER_PRODUCT, cfg)
    idx.add(xb)
    for mb in (8, 16, 32, 64, 128, 256):
        os.environ["NEARLY_GPU_TILE_MB"] = str(mb)
        t = timed(lambda: idx.search(xq, k))
        sweep.append({"tile_mb": mb, "fp16_s": t})
        log("tile", mb, t)
    os.environ.pop("NEARLY_GPU_TILE_MB")
    del idx
    out["flat"] = {"n": n, "d": d, "nq": nq, "k": k, "metric": "IP", "peaks": peaks, "rows": rows, "tile_sweep": sweep}


def suite_select(args, xb, xq, out):
    import cupy
    import torch
    import nearly
    from nearly.gpu import select_k
    res = nearly.StandardGpuResources()
    rows_n, cols = 10000, 32768
    x = torch.randn(rows_n, cols, device="cuda")
    xc = cupy.from_dlpack(x)
    rows = []
    for k in (10, 100, 1000):
        t = timed(lambda: select_k(res, xc, k))
        tt = timed(lambda: torch.topk(x, k, dim=1, largest=False, sorted=True))
        Dn, In = select_k(res, xc, k)
        ref = torch.topk(x, k, dim=1, largest=False, sorted=True)
        same = bool(torch.equal(torch.from_dlpack(Dn), ref.values))
        row = {"k": k, "rows": rows_n, "cols": cols, "nearly_rows_per_s": rows_n / t, "torch_rows_per_s": rows_n / tt,
               "speedup_vs_torch": tt / t, "nearly_GBps": rows_n * cols * 4 / t / 1e9, "values_equal_torch": same}
        log(row)
        rows.append(row)
    out["select_k"] = rows


def exact_ground_truth(xb, xq, k):
    import nearly
    res = nearly.StandardGpuResources()
    idx = nearly.GpuIndexFlat(res, xb.shape[1], nearly.METRIC_INNER_PRODUCT)
    idx.add(xb)
    I = idx.search(xq, k)[1].cpu().numpy()
    del idx
    return I


def qps_at(points, target):
    """QPS at a recall level, interpolated along the best (recall, qps)
    points (those no other point beats on both), None if never reached."""
    pts = sorted(p for p in points if not any(o[0] >= p[0] and o[1] > p[1] for o in points))
    for (r0, q0), (r1, q1) in zip(pts, pts[1:]):
        if r0 <= target <= r1:
            return q0 + (q1 - q0) * (target - r0) / max(r1 - r0, 1e-12)
    best = [q for r, q in pts if r >= target]
    return max(best) if best else None


def sweep(index, xq, gt, k, nprobes, nq_limit=None, host=False):
    import torch
    rows = []
    q = xq[:nq_limit] if nq_limit else xq
    if host:
        q = q.cpu().numpy()
    for nprobe in nprobes:
        index.nprobe = nprobe
        holder = {}

        def run():
            holder["I"] = index.search(q, k)[1]
        if host:
            run()
            t = time.perf_counter()
            run()
            t = time.perf_counter() - t
        else:
            t = timed(run, 2)
        I = holder["I"]
        I = I if isinstance(I, np.ndarray) else I.cpu().numpy()
        rows.append({"nprobe": nprobe, "recall": recall(I, gt[:len(q)], k), "qps": len(q) / t})
        log(type(index).__name__, rows[-1])
    return rows


def suite_ivf(args, xb, xq, out):
    import torch
    import nearly
    k, nlist, M = args.k, 1024, 48
    gt = exact_ground_truth(xb, xq, k)
    res = nearly.StandardGpuResources()
    xb_host = xb.cpu().numpy()
    nprobes = [1, 2, 4, 8, 16, 32, 64, 128, 256]
    args.ivf = args.ivf.split(";")
    result = {"nlist": nlist, "M": M, "n": len(xb), "nq_gpu": len(xq), "metric": "IP", "cpu_threads": os.cpu_count()}
    for name, make_gpu, make_cpu in (
        ("IVF1024,PQ48",
         lambda: nearly.GpuIndexIVFPQ(res, xb.shape[1], nlist, M, 8, nearly.METRIC_INNER_PRODUCT),
         (lambda: nearly.index_factory(xb.shape[1], "IVF1024,PQ48", nearly.METRIC_INNER_PRODUCT))
         if hasattr(nearly, "IndexIVFPQ") else None),
        ("IVF1024,Flat",
         lambda: nearly.GpuIndexIVFFlat(res, xb.shape[1], nlist, nearly.METRIC_INNER_PRODUCT),
         lambda: nearly.index_factory(xb.shape[1], "IVF1024,Flat", nearly.METRIC_INNER_PRODUCT)),
    ):
        if name not in args.ivf:
            continue
        entry = {}
        g = make_gpu()
        torch.cuda.synchronize()
        t = time.perf_counter(); g.train(xb); torch.cuda.synchronize(); t_train = time.perf_counter() - t
        t = time.perf_counter(); g.add(xb); torch.cuda.synchronize(); t_add = time.perf_counter() - t
        entry["gpu"] = {"train_s": t_train, "add_s": t_add, "sweep": sweep(g, xq, gt, k, nprobes)}
        log(name, "gpu build", t_train, t_add)
        del g
        torch.cuda.empty_cache()
        if make_cpu is not None:
            nearly.omp_set_num_threads(os.cpu_count())
            c = make_cpu()
            t = time.perf_counter(); c.train(xb_host); t_train = time.perf_counter() - t
            t = time.perf_counter(); c.add(xb_host); t_add = time.perf_counter() - t
            log(name, "cpu build", t_train, t_add)
            cpu_nq = len(xq)  # the same queries: recall is compared point for point
            entry["cpu"] = {"train_s": t_train, "add_s": t_add, "nq": cpu_nq,
                            "sweep": sweep(c, xq, gt, k, [p for p in nprobes if p <= 128], cpu_nq, host=True)}
            del c
            gp = [(r["recall"], r["qps"]) for r in entry["gpu"]["sweep"]]
            cp_ = [(r["recall"], r["qps"]) for r in entry["cpu"]["sweep"]]
            ratios = {}
            for target in (0.5, 0.6, 0.8, 0.9, 0.95):
                a, b = qps_at(gp, target), qps_at(cp_, target)
                if a and b:
                    ratios[str(target)] = a / b
            entry["qps_ratio_gpu_over_cpu"] = ratios
            entry["build_ratio_cpu_over_gpu"] = (entry["cpu"]["train_s"] + entry["cpu"]["add_s"]) / (
                entry["gpu"]["train_s"] + entry["gpu"]["add_s"])
            log(name, "ratios", ratios, "build", entry["build_ratio_cpu_over_gpu"])
        result[name] = entry
    if hasattr(nearly, "IndexIVFPQ"):
        result["IVF1024,PQ48,RFlat"] = refine_ivfpq(res, xb, xb_host, xq, gt, k, nlist, M)
    if args.diagnose:
        result["diagnose"] = diagnose_ivfpq(xb, xb_host, xq, gt, k, nlist, M)
    out["ivf"] = result


def refine_ivfpq(res, xb, xb_host, xq, gt, k, nlist, M):
    """Recall 0.9 needs re-ranking with the float vectors (48-byte codes stop
    near 0.53): IndexRefineFlat (k_factor 10) over the GPU IVF-PQ, the
    re-ranking on the CPU threads as faiss users do it, against the same
    construction over the CPU IVF-PQ."""
    import torch
    import nearly
    d = xb.shape[1]
    ip = nearly.METRIC_INNER_PRODUCT
    q = xq.cpu().numpy()
    out = {"k_factor": 10}
    g = nearly.GpuIndexIVFPQ(res, d, nlist, M, 8, ip)
    g.train(xb)
    c = nearly.index_factory(d, "IVF1024,PQ48", ip)
    c.train(xb_host)
    for name, base in (("gpu", g), ("cpu", c)):
        r = nearly.IndexRefineFlat(base)
        r.add(xb_host)
        rows = []
        for nprobe in (4, 8, 16, 32, 64, 128):
            p = nearly.IndexRefineSearchParameters(k_factor=10, base_index_params=nearly.SearchParametersIVF(nprobe=nprobe))
            r.search(q[:500], k, params=p)
            t = time.perf_counter()
            I = r.search(q, k, params=p)[1]
            dt = time.perf_counter() - t
            rows.append({"nprobe": nprobe, "recall": recall(I, gt, k), "qps": len(q) / dt})
            log("refine", name, rows[-1])
        out[name] = rows
        del r
    ratios = {}
    for target in (0.8, 0.9, 0.95):
        a = qps_at([(x["recall"], x["qps"]) for x in out["gpu"]], target)
        b = qps_at([(x["recall"], x["qps"]) for x in out["cpu"]], target)
        if a and b:
            ratios[str(target)] = a / b
    out["qps_ratio_gpu_over_cpu"] = ratios
    log("refine ratios", ratios)
    return out


def diagnose_ivfpq(xb, xb_host, xq, gt, k, nlist, M):
    """Where a GPU/CPU recall gap comes from: each training half swapped."""
    import nearly
    res = nearly.StandardGpuResources()
    d = xb.shape[1]
    ip = nearly.METRIC_INNER_PRODUCT
    q = xq[:2000].cpu().numpy()
    g2 = gt[:2000]
    out = {}

    def rec(index):
        r = {}
        for nprobe in (8, 32):
            index.nprobe = nprobe
            I = index.search(q, k)[1]
            r[nprobe] = recall(I, g2, k)
        return r

    g = nearly.GpuIndexIVFPQ(res, d, nlist, M, 8, ip)
    g.train(xb)
    g.add(xb)
    out["gpu_trained_gpu_search"] = rec(g)
    out["gpu_trained_cpu_search"] = rec(nearly.index_gpu_to_cpu(g))
    cent = g.centroids()
    del g
    c = nearly.index_factory(d, "IVF1024,PQ48", ip)
    c.train(xb_host)
    c.add(xb_host)
    out["cpu_trained_cpu_search"] = rec(c)
    out["cpu_trained_gpu_search"] = rec(nearly.index_cpu_to_gpu(res, 0, c))
    quant = nearly.IndexFlatIP(d)
    quant.add(cent)
    h = nearly.IndexIVFPQ(quant, d, nlist, M, 8, ip)
    h.train(xb_host)  # the quantizer is trained: only the PQ is learnt, on the CPU
    h.add(xb_host)
    out["gpu_centroids_cpu_pq"] = rec(h)
    log("diagnose", out)
    return out


def suite_fde(args, xb, xq, out):
    """Document FDE encoding, GPU against the CPU encoder on every core: the
    real token embeddings of 1,000 documents tiled with noise to 100,000."""
    import torch
    import nearly
    from nearly import gpu
    tok, lens = load_doc_tokens(args.data)
    reps = 100
    rng = np.random.default_rng(0)
    x = np.tile(tok, (reps, 1))
    x[len(tok):] += 0.05 * rng.standard_normal(x[len(tok):].shape).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    lengths = np.tile(lens, reps)
    cfg = nearly.FDEConfig(dimension=x.shape[1], num_repetitions=20, num_simhash_projections=5, seed=1,
                           projection_type="ams_sketch", projection_dimension=16, fill_empty_partitions=True)
    res = nearly.StandardGpuResources()
    nearly.omp_set_num_threads(os.cpu_count())
    t = time.perf_counter()
    cpu = nearly.fde_encode_documents(x, lengths, cfg)
    t_cpu = time.perf_counter() - t
    t = time.perf_counter()
    g = gpu.fde_encode_documents(res, x, lengths, cfg)
    t_gpu_host = time.perf_counter() - t
    xd = torch.from_numpy(x).cuda()
    t_gpu_dev = timed(lambda: gpu.fde_encode_documents(res, xd, lengths, cfg))
    equal = bool(np.array_equal(g.view(np.uint32), cpu.view(np.uint32)))
    nd = len(lengths)
    row = {"documents": nd, "token_vectors": len(x), "config": "R=20,k=5,ams16,fill", "fde_dim": cfg.fde_dim,
           "cpu_docs_per_s": nd / t_cpu, "cpu_threads": os.cpu_count(), "gpu_docs_per_s_host_arrays": nd / t_gpu_host,
           "gpu_docs_per_s_device_arrays": nd / t_gpu_dev, "bit_exact": equal,
           "speedup_device_arrays": t_cpu / t_gpu_dev, "speedup_host_arrays": t_cpu / t_gpu_host}
    log(row)
    out["fde"] = row


def suite_muvera(args, xb, xq, out):
    """IndexMuvera end to end, its GPU copy (GpuIndexMuvera: FDE encoding,
    inner index, Chamfer re-ranking and top-k all on the device) against the
    CPU index on every core, recall@k against exact Chamfer
    (IndexMultiVectorFlat on the CPU). Documents: the real token embeddings
    of 1,000 documents tiled with noise (sigma 0.05, re-normalised) to
    --muvera-docs; queries: the 300 real query sets. FDE (R=40, k_sim=3,
    AMS 8): 2560 dimensions, the best recall at that size in muvera.json."""
    import torch
    import nearly
    from nearly import gpu
    k = args.k
    tok, lens = load_doc_tokens(args.data)
    qx, ql = load_query_tokens(args.data)
    reps = max(1, args.muvera_docs // len(lens))
    rng = np.random.default_rng(0)
    dx = np.tile(tok, (reps, 1))
    dx[len(tok):] += 0.05 * rng.standard_normal(dx[len(tok):].shape, dtype=np.float32)
    dx /= np.linalg.norm(dx, axis=1, keepdims=True)
    dl = np.tile(lens, reps)
    nq, d = len(ql), dx.shape[1]
    nearly.omp_set_num_threads(os.cpu_count())
    res = nearly.StandardGpuResources()
    result = {"n_docs": len(dl), "n_doc_vectors": len(dx), "nq": nq, "n_query_vectors": len(qx), "d": d, "k": k,
              "fde": "R=40,k_sim=3,ams8", "cpu_threads": os.cpu_count(), "inner": {}}

    def best_time(fn, repeat=3):
        fn()
        t = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            t = min(t, time.perf_counter() - t0)
        return t

    # ground truth, and exact brute force on either side
    exact = nearly.IndexMultiVectorFlat(d)
    exact.add(dx, dl)
    holder = {}
    t = time.perf_counter()
    gt = exact.search(qx, ql, k)[1]
    t_cpu = time.perf_counter() - t
    dx_dev, qx_dev = torch.from_numpy(dx).cuda(), torch.from_numpy(qx).cuda()

    def gpu_brute():
        s = gpu.chamfer_scores_batch(res, qx_dev, ql, dx_dev, dl)
        holder["bf"] = torch.topk(s, k, dim=1).indices
    t_gpu = timed(gpu_brute, 2)
    result["brute_force"] = {"cpu_qps": nq / t_cpu, "gpu_qps": nq / t_gpu,
                             "gpu_recall_vs_cpu": recall(holder["bf"].cpu().numpy(), gt, k)}
    log("muvera brute force", result["brute_force"])
    del dx_dev
    torch.cuda.empty_cache()

    cfg = nearly.FDEConfig(d, num_repetitions=40, num_simhash_projections=3, seed=1, projection_type="ams_sketch",
                           projection_dimension=8)
    q_many = np.tile(qx, (10, 1))  # the query sets ten times: GPU throughput at a larger batch
    ql_many = np.tile(ql, 10)
    for inner in args.muvera_inner.split(";"):
        hnsw = inner.startswith("HNSW")
        cpu = nearly.IndexMuvera(d, cfg, inner=inner)
        t = time.perf_counter()
        cpu.add(dx, dl)
        t_build = time.perf_counter() - t
        t = time.perf_counter()
        g = nearly.index_cpu_to_gpu(res, 0, cpu)
        t_copy = time.perf_counter() - t
        log("muvera", inner, "cpu build", t_build, "copy to gpu", t_copy)
        params = nearly.SearchParametersHNSW(efSearch=16) if hnsw else None  # list = max(16, candidates)
        rows = []
        for kf in ((5, 10, 20, 25) if hnsw else (5, 10, 20, 50, 100)):
            tc = best_time(lambda: holder.update(c=cpu.search(qx, ql, k, params=params, k_factor=kf)))
            tg = timed(lambda: holder.update(g=g.search(qx, ql, k, params=params, k_factor=kf)))
            td = timed(lambda: g.search(qx_dev, ql, k, params=params, k_factor=kf))
            tm = timed(lambda: g.search(q_many, ql_many, k, params=params, k_factor=kf))
            (Dc, Ic), (Dg, Ig) = holder["c"], holder["g"]
            same = np.all(Ic == Ig, axis=1)
            row = {"k_factor": kf, "candidates": k * kf, "cpu_qps": nq / tc, "cpu_recall": recall(Ic, gt, k),
                   "gpu_qps_host_arrays": nq / tg, "gpu_qps_device_arrays": nq / td,
                   "gpu_qps_batch_3000": len(ql_many) / tm, "gpu_recall": recall(Ig, gt, k),
                   "rows_with_cpu_ids": float(same.mean()),
                   "max_score_diff_on_those_rows": float(np.abs(Dc[same] - Dg[same]).max()) if same.any() else None,
                   "speedup_host_arrays": tc / tg}
            log("muvera", inner, row)
            rows.append(row)
        result["inner"][inner] = {"cpu_build_s": t_build, "copy_to_gpu_s": t_copy,
                                  "efSearch": 16 if hnsw else None, "rows": rows}
        del g, cpu
        torch.cuda.empty_cache()
    out["muvera"] = result


def cpu_hnsw_sweep(cpu, xq_host, gt, k, label):
    """Recall and QPS of a CPU IndexHNSWFlat over efSearch 16..256 (all queries at once, warmed up)."""
    rows = []
    for ef in (16, 32, 64, 128, 256, 384, 512):
        cpu.hnsw.efSearch = ef
        cpu.search(xq_host[:1000], k)
        t = time.perf_counter()
        I = cpu.search(xq_host, k)[1]
        dt = time.perf_counter() - t
        rows.append({"efSearch": ef, "recall": recall(I, gt, k), "qps": len(xq_host) / dt})
        log(label, rows[-1])
    return rows


def suite_graph(args, xb, xq, out):
    """HNSW built on the CPU (all cores), its base layer searched on the GPU
    in batches of all queries, beside the CPU search of the same graph; then
    the same graph size built on the GPU (gpu_graph_build)."""
    import torch
    import nearly
    k = args.k
    gt = exact_ground_truth(xb, xq, k)
    xb_host, xq_host = xb.cpu().numpy(), xq.cpu().numpy()
    nearly.omp_set_num_threads(os.cpu_count())
    cpu = nearly.IndexHNSWFlat(xb.shape[1], 16, nearly.METRIC_INNER_PRODUCT)
    cpu.hnsw.efConstruction = 100
    t = time.perf_counter()
    cpu.add(xb_host)
    t_build = time.perf_counter() - t
    log("cpu hnsw build", t_build)
    cpu_rows = cpu_hnsw_sweep(cpu, xq_host, gt, k, "cpu")
    res = nearly.StandardGpuResources()
    t = time.perf_counter()
    g = nearly.index_cpu_to_gpu(res, 0, cpu)
    t_copy = time.perf_counter() - t
    gpu_rows, errors = [], {}
    try:
        # re-sort the whole buffer each step, or merge the new candidates in
        # (scoring the rows one warp each, or in teams: graph_search.cu)
        # (and the walk over float16 rows, re-scored in float32 at the end)
        kernels = (((True, "team", False), (True, "team", True)) if args.graph_quick else
                   ((False, "warp", False), (True, "warp", False), (True, "team", False), (True, "team", True)))
        for merge, scorer, fp16 in kernels:
            g.search_merge = merge
            g.search_fp16 = fp16
            os.environ["NEARLY_GPU_GRAPH_SCORER"] = scorer
            for width in ((4,) if args.graph_quick else (1, 2, 4)):
                g.search_width = width
                for ef in ((64, 128, 256, 320, 384, 448, 512) if args.graph_quick else
                           (32, 64, 128, 256) + ((384, 512) if merge else ())):
                    g.efSearch = ef
                    holder = {}
                    dt = timed(lambda: holder.update(I=g.search(xq, k)[1]), 2)
                    I = holder["I"].cpu().numpy()
                    gpu_rows.append({"efSearch": ef, "width": width, "merge": merge, "scorer": scorer,
                                     "fp16": fp16, "recall": recall(I, gt, k), "qps": len(xq) / dt})
                    log("gpu", gpu_rows[-1])
        os.environ.pop("NEARLY_GPU_GRAPH_SCORER")
    except Exception as e:  # keep the rows measured before a failing kernel
        errors["gpu_search"] = repr(e)
        log("gpu search failed:", repr(e))
        if not gpu_rows:
            raise
    # batch-1 latency at the fastest setting of recall 0.95 or more
    best = min((r for r in gpu_rows if r["recall"] >= 0.95), key=lambda r: -r["qps"],
               default=max(gpu_rows, key=lambda r: r["recall"]))
    g.search_width, g.efSearch, g.search_merge = best["width"], best["efSearch"], best["merge"]
    g.search_fp16 = best.get("fp16", False)
    os.environ["NEARLY_GPU_GRAPH_SCORER"] = best.get("scorer", "warp")
    lat = []
    for i in range(0 if errors else 200):  # a failed kernel can leave the device unusable
        q = xq[i:i + 1]
        torch.cuda.synchronize()
        t = time.perf_counter()
        g.search(q, k)
        torch.cuda.synchronize()
        lat.append(time.perf_counter() - t)
    cp_ = [(r["recall"], r["qps"]) for r in cpu_rows]

    def ratios_of(rows):
        gp = [(r["recall"], r["qps"]) for r in rows]
        found = {}
        for target in (0.9, 0.95):
            a, b = qps_at(gp, target), qps_at(cp_, target)
            if a and b:
                found[str(target)] = a / b
        return found
    ratios = ratios_of(gpu_rows)
    by_walk = {"float32": ratios_of([r for r in gpu_rows if not r.get("fp16")]),
               "float16": ratios_of([r for r in gpu_rows if r.get("fp16")])}
    os.environ.pop("NEARLY_GPU_GRAPH_SCORER", None)
    out["graph"] = {"n": len(xb), "M": 16, "efConstruction": 100, "metric": "IP", "cpu_threads": os.cpu_count(),
                    "cpu_build_s": t_build, "gpu_copy_s": t_copy, "cpu": cpu_rows, "gpu": gpu_rows,
                    "batch1_latency_ms_median": 1000 * float(np.median(lat)) if lat else None,
                    "batch1_setting": best, "qps_ratio_gpu_over_cpu": ratios,
                    "qps_ratio_by_walk": by_walk, "errors": errors}
    log("graph ratios", ratios, by_walk, "latency ms", out["graph"]["batch1_latency_ms_median"])
    del g
    try:  # a failure keeps the figures above
        variants = [dict(kv.split("=") for kv in v.split(",")) for v in args.build_variants.split(";") if v]
        variants = [{name: int(value) for name, value in v.items()} for v in variants]
        out["graph"]["gpu_build"] = gpu_graph_build(xb, xq, xq_host, gt, k, t_build, cpu_rows, variants,
                                                    args.graph_quick)
    except Exception as e:
        errors["gpu_build"] = repr(e)
        log("gpu graph build failed:", repr(e))


def gpu_graph_build(xb, xq, xq_host, gt, k, cpu_build_s, cpu_rows, variants_to_try=(), quick=False):
    """The same graph size built on the GPU (GpuIndexHNSW(res, d, M).add),
    then searched by the CPU IndexHNSWFlat it converts to, at the efSearch
    values of the CPU-built graph above, and on the GPU."""
    import torch
    import nearly
    res = nearly.StandardGpuResources()
    builds = []
    for run in range(2):  # the first also loads cuBLAS and warms the allocator
        g = nearly.GpuIndexHNSW(res, xb.shape[1], 16, nearly.METRIC_INNER_PRODUCT)
        g.verbose = run == 1
        torch.cuda.synchronize()
        t = time.perf_counter()
        g.add(xb)
        torch.cuda.synchronize()
        builds.append(time.perf_counter() - t)
        log("gpu graph build", builds[-1])
    t = time.perf_counter()
    cpu = nearly.index_gpu_to_cpu(g)
    t_convert = time.perf_counter() - t
    rows = cpu_hnsw_sweep(cpu, xq_host, gt, k, "cpu search of the gpu-built graph")
    gpu_rows = []
    for merge in (() if quick else (False, True)):
        g.search_merge = merge
        for ef in (32, 64, 128, 256) + ((384, 512) if merge else ()):
            g.efSearch = ef
            holder = {}
            dt = timed(lambda: holder.update(I=g.search(xq, k)[1]), 2)
            gpu_rows.append({"efSearch": ef, "width": 1, "merge": merge,
                             "recall": recall(holder["I"].cpu().numpy(), gt, k), "qps": len(xq) / dt})
            log("gpu search of the gpu-built graph", gpu_rows[-1])
    recall_delta = {str(a["efSearch"]): a["recall"] - b["recall"] for a, b in zip(rows, cpu_rows)}
    params = {"knn_factor": g.build_knn_factor, "merge_factor": g.build_merge_factor,
              "far_factor": g.build_far_factor, "n_probe": g.build_n_probe, "n_lists": g.build_n_lists}
    del g, cpu
    # Cheaper settings: build time, and recall of the CPU search of each graph.
    variants = []
    for v in variants_to_try:
        g = nearly.GpuIndexHNSW(res, xb.shape[1], 16, nearly.METRIC_INNER_PRODUCT)
        for name, value in v.items():
            setattr(g, "build_" + name, value)
        g.verbose = True
        torch.cuda.synchronize()
        t = time.perf_counter()
        g.add(xb)
        torch.cuda.synchronize()
        dt = time.perf_counter() - t
        log("gpu graph build", v, dt)
        cpu = nearly.index_gpu_to_cpu(g)
        vrows = cpu_hnsw_sweep(cpu, xq_host, gt, k, f"cpu search of the gpu-built graph {v}")
        variants.append({"params": v, "gpu_build_s": dt, "build_speedup": cpu_build_s / dt, "cpu_search": vrows,
                         "cpu_qps_ratio_at_0.9": ratio(vrows, cpu_rows, 0.9),
                         "cpu_qps_ratio_at_0.95": ratio(vrows, cpu_rows, 0.95)})
        del g, cpu
    return {"gpu_build_s": builds, "cpu_build_s": cpu_build_s, "build_speedup": cpu_build_s / builds[-1],
            "convert_s": t_convert, "cpu_search": rows, "gpu_search": gpu_rows,
            "recall_minus_cpu_built_at_equal_efSearch": recall_delta,
            "cpu_qps_ratio_at_0.9": ratio(rows, cpu_rows, 0.9), "cpu_qps_ratio_at_0.95": ratio(rows, cpu_rows, 0.95),
            "params": dict(M=16, **params), "variants": variants}


def ratio(rows, ref_rows, target):
    """QPS of one CPU search sweep over another's at a recall level: above 1,
    the first graph is the better one (same search code, same machine)."""
    a = qps_at([(r["recall"], r["qps"]) for r in rows], target)
    b = qps_at([(r["recall"], r["qps"]) for r in ref_rows], target)
    return a / b if a and b else None


def suite_binary(args, xb, xq, out):
    """Scan speed of binary codes on the GPU (codes scored per second), from
    the real embeddings: 1-bit sign codes (Hamming) and 2-bit-per-dimension
    codes (SDC; plane 0 the signs, plane 1 the sign of |x| above its median:
    the speed does not depend on how the planes were learnt)."""
    import torch
    import nearly
    from nearly import gpu
    res = nearly.StandardGpuResources()
    k = args.k

    def pack(bits):  # (n, m) bool -> (n, m/8) uint8, bit k%8 of byte k/8
        b = bits.reshape(bits.shape[0], -1, 8).to(torch.uint8)
        w = (2 ** torch.arange(8, device=bits.device, dtype=torch.uint8))
        return (b * w).sum(-1).to(torch.uint8).contiguous()

    med = xb.abs().median()
    xs, qs = pack(xb > 0), pack(xq > 0)
    x2 = torch.cat([xs, pack((xb.abs() > med) == (xb > 0))], 1).contiguous()
    q2 = torch.cat([qs, pack((xq.abs() > med) == (xq > 0))], 1).contiguous()
    peaks = {"copy_bandwidth_GBps": measured_peaks()["copy_bandwidth_GBps"]}
    rows = []
    idx = gpu.GpuIndexBinaryFlat(res, xb.shape[1])
    idx.add(xs)
    t = timed(lambda: idx.search(qs, k))
    cps = len(xq) * len(xb) / t
    rows.append({"path": "hamming 1-bit (GpuIndexBinaryFlat)", "bytes_per_code": xs.shape[1], "seconds": t,
                 "codes_per_s": cps, "GBps_of_codes": cps * xs.shape[1] / 1e9,
                 "fraction_of_copy_bandwidth": cps * xs.shape[1] / 1e9 / peaks["copy_bandwidth_GBps"]})
    log(rows[-1])
    t = timed(lambda: gpu.sdc_knn(res, q2, x2, xb.shape[1], 2, k))
    cps = len(xq) * len(xb) / t
    rows.append({"path": "SDC 2 bits/dim (sdc_knn)", "bytes_per_code": x2.shape[1], "seconds": t, "codes_per_s": cps,
                 "GBps_of_codes": cps * x2.shape[1] / 1e9,
                 "fraction_of_copy_bandwidth": cps * x2.shape[1] / 1e9 / peaks["copy_bandwidth_GBps"]})
    log(rows[-1])
    out["binary"] = {"n": len(xb), "nq": len(xq), "k": k, "peaks": peaks, "rows": rows,
                     "note": "codes are re-read from L2/HBM by every query tile; bandwidth figures count the "
                             "bytes of codes scored, not bytes moved"}
    out["binary"]["recurrent"] = binary_recurrent(args, res, xb, xq, k)


def binary_recurrent(args, res, xb, xq, k):
    """IndexBinaryRecurrent (BEBR, m = d, numpy trainer on 200k of the base) end to end: the CPU
    index on all cores against its GPU copy (index_cpu_to_gpu), every query
    of the batch in one call. Both encode the queries on the host with the
    CPU encoder; the GPU scans the codes. recall@10 against exact float
    search; "identical_to_cpu" checks that D and I are bit for bit the CPU's."""
    import torch
    import nearly
    d = xb.shape[1]
    ip = nearly.METRIC_INNER_PRODUCT
    gt = exact_ground_truth(xb, xq, k)
    xb_host, xq_host = xb.cpu().numpy(), xq.cpu().numpy()
    nearly.omp_set_num_threads(os.cpu_count())
    rows = []
    for nb in [int(b) for b in args.rbe_bits.split(",")]:
        cpu = nearly.IndexBinaryRecurrent(d, d, nb, ip)
        t = time.perf_counter(); cpu.train(xb_host[:200_000]); t_train = time.perf_counter() - t
        t = time.perf_counter(); cpu.add(xb_host); t_add = time.perf_counter() - t
        t = time.perf_counter(); g = nearly.index_cpu_to_gpu(res, 0, cpu); t_copy = time.perf_counter() - t
        log("rbe", nb, "train", t_train, "add", t_add, "copy to gpu", t_copy)
        holder = {}
        t_gpu = timed(lambda: holder.update(r=g.search(xq_host, k)), 2)  # numpy in, numpy out
        Dg, Ig = holder["r"]
        t_gpu_dev = timed(lambda: g.search(xq, k), 2)  # torch in, torch out
        t = time.perf_counter(); cpu.binarizer.encode(xq_host); t_encode = time.perf_counter() - t
        cpu.search(xq_host[:200], k)
        t = time.perf_counter(); Dc, Ic = cpu.search(xq_host, k); t_cpu = time.perf_counter() - t
        nq = len(xq)
        row = {"bits_per_dim": nb, "m": d, "bytes_per_code": cpu.code_size, "train_s": t_train, "cpu_add_s": t_add,
               "copy_to_gpu_s": t_copy, "gpu_qps_host_arrays": nq / t_gpu, "gpu_qps_device_arrays": nq / t_gpu_dev,
               "cpu_qps": nq / t_cpu, "cpu_threads": os.cpu_count(), "speedup_host_arrays": t_cpu / t_gpu,
               "query_encode_s_on_host": t_encode, "recall_at_10_gpu": recall(Ig, gt, k),
               "recall_at_10_cpu": recall(Ic, gt, k),
               "identical_to_cpu": bool(np.array_equal(Ig, Ic) and np.array_equal(Dg, Dc)),
               "rows_identical_fraction": float(np.mean([np.array_equal(a, b) for a, b in zip(Ig, Ic)]))}
        log(row)
        rows.append(row)
        del g, cpu
        torch.cuda.empty_cache()
    return {"n": len(xb), "nq": len(xq), "k": k, "metric": "IP", "rows": rows}


SUITES = {"binary": suite_binary, "flat": suite_flat, "select": suite_select, "ivf": suite_ivf, "fde": suite_fde,
          "graph": suite_graph, "muvera": suite_muvera}


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--make-slice":
        make_slice(sys.argv[2], sys.argv[3])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("suites", nargs="+", choices=sorted(SUITES))
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--nq", type=int, default=10_000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--diagnose", action="store_true", help="ivf: swap the GPU and CPU training halves")
    ap.add_argument("--rbe-bits", default="2", help="binary: bits per dimension of the recurrent index, ','-separated")
    ap.add_argument("--ivf", default="IVF1024,PQ48;IVF1024,Flat", help="ivf: the factory strings to run, ';'-separated")
    ap.add_argument("--muvera-docs", type=int, default=100_000, help="muvera: documents (the 1,000 real ones tiled)")
    ap.add_argument("--muvera-inner", default="Flat;HNSW32", help="muvera: inner indexes, ';'-separated")
    ap.add_argument("--build-variants", default="",
                    help="graph: more GPU builds, ';'-separated, each name=value,... of build_ attributes")
    ap.add_argument("--graph-quick", action="store_true",
                    help="graph: the default kernel alone, around recall 0.95, and no GPU search of GPU-built graphs")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = ap.parse_args()
    xb, xq = load(args.data, args.n, args.nq)
    log(f"data: {tuple(xb.shape)} base, {tuple(xq.shape)} queries")
    os.makedirs(args.out, exist_ok=True)
    for s in args.suites:
        out = {"device": device_info(), "date": time.strftime("%Y-%m-%d %H:%M:%S"), "args": vars(args)}
        try:
            SUITES[s](args, xb, xq, out)
        except BaseException as e:  # a failure or the run's time limit (SIGINT): keep what was measured
            out["stopped_by"] = repr(e)
            log(f"{s} stopped:", repr(e))
            raise
        finally:
            path = os.path.join(args.out, f"gpu-{s}.json")
            with open(path, "w") as f:
                json.dump(out, f, indent=1, default=str)
            log("wrote", path)


if __name__ == "__main__":
    main()
