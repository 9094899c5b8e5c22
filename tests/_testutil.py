"""Shared helpers for the nearly test suite (imported by tests via conftest's sys.path entry).

Reference results are computed in float64 with numpy; comparisons tolerate the
float32 rounding of the library under test and reordering among tied distances.
"""
import numpy as np

FLT_MAX = float(np.finfo(np.float32).max)
METRIC_IP = 0
METRIC_L2 = 1


def randn(rng, n, d, dtype=np.float32):
    return rng.standard_normal((n, d)).astype(dtype)


def blobs(rng, n, d, centers=20):
    """Gaussian blobs of unit spread around centres of scale 3 (float32)."""
    c = randn(rng, centers, d) * np.float32(3)
    return (c[rng.integers(0, centers, n)] + randn(rng, n, d)).astype(np.float32)


def pad_value(metric):
    return FLT_MAX if metric == METRIC_L2 else -FLT_MAX


def distances64(xq, xb, metric):
    """(nq, nb) float64 distance matrix: squared L2 or inner product."""
    xq = np.asarray(xq, dtype=np.float64)
    xb = np.asarray(xb, dtype=np.float64)
    ip = xq @ xb.T
    if metric == METRIC_L2:
        d = (xq ** 2).sum(1)[:, None] + (xb ** 2).sum(1)[None, :] - 2 * ip
        return np.maximum(d, 0)
    return ip


def tolerance(xq, xb, metric, rel=2e-5):
    """Absolute tolerance for float32 distances, scaled with the vector norms."""
    xq = np.asarray(xq, dtype=np.float64)
    xb = np.asarray(xb, dtype=np.float64)
    if len(xq) == 0 or len(xb) == 0:
        return 1e-6
    nq = (xq ** 2).sum(1).max()
    nb = (xb ** 2).sum(1).max()
    scale = nq + nb if metric == METRIC_L2 else np.sqrt(nq * nb)
    return max(1e-6, rel * scale)


def brute_force(xq, xb, k, metric, ids=None):
    """Exact k-NN in float64, ties broken by smaller id, padded like faiss."""
    xq = np.asarray(xq, dtype=np.float64)
    nq, nb = len(xq), len(xb)
    ids = np.arange(nb, dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
    D = np.full((nq, k), pad_value(metric), dtype=np.float64)
    I = np.full((nq, k), -1, dtype=np.int64)
    if nb == 0 or nq == 0:
        return D, I
    dist = distances64(xq, xb, metric)
    key = dist if metric == METRIC_L2 else -dist
    kk = min(k, nb)
    for q in range(nq):
        order = np.lexsort((ids, key[q]))[:kk]
        D[q, :kk] = dist[q, order]
        I[q, :kk] = ids[order]
    return D, I


def check_result_arrays(D, I, nq, k):
    assert isinstance(D, np.ndarray) and isinstance(I, np.ndarray)
    assert D.dtype == np.float32, D.dtype
    assert I.dtype == np.int64, I.dtype
    assert D.shape == (nq, k), D.shape
    assert I.shape == (nq, k), I.shape


def assert_knn_valid(D, I, xq, xb, k, metric, ids=None, atol=None):
    """Check a k-NN result against float64 brute force, tolerating ties.

    - dtypes/shapes; padding where fewer than k results exist
    - each returned id's true distance equals the returned distance
    - distances equal the sorted exact distances (so the set is right up to ties)
    - ids are unique per row and ordered by distance
    """
    xq = np.asarray(xq, dtype=np.float64)
    xb = np.asarray(xb, dtype=np.float64)
    nq, nb = len(xq), len(xb)
    check_result_arrays(D, I, nq, k)
    ids = np.arange(nb, dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
    if atol is None:
        atol = tolerance(xq, xb, metric)
    Dref, Iref = brute_force(xq, xb, k, metric, ids)
    kk = min(k, nb)
    # padding
    assert (I[:, kk:] == -1).all(), I[:, kk:]
    assert (D[:, kk:] == np.float32(pad_value(metric))).all(), D[:, kk:]
    if kk == 0 or nq == 0:
        return
    Dv, Iv = D[:, :kk].astype(np.float64), I[:, :kk]
    assert np.isin(Iv, ids).all(), f"unknown ids (or padding) among the first {kk}: {Iv}"
    np.testing.assert_allclose(Dv, Dref[:, :kk], rtol=0, atol=atol)
    pos = {int(v): j for j, v in enumerate(ids)}
    dist = distances64(xq, xb, metric)
    for q in range(nq):
        row = Iv[q]
        assert len(set(row.tolist())) == kk, f"duplicate ids in row {q}: {row}"
        cols = np.array([pos[int(v)] for v in row])
        np.testing.assert_allclose(Dv[q], dist[q, cols], rtol=0, atol=atol,
                                   err_msg=f"returned distance does not match id, row {q}")
        diffs = np.diff(Dv[q])
        if metric == METRIC_L2:
            assert (diffs >= -atol).all(), f"row {q} not ascending: {Dv[q]}"
        else:
            assert (diffs <= atol).all(), f"row {q} not descending: {Dv[q]}"


def assert_knn_equiv(Dn, In, Df, If, atol):
    """Compare two k-NN results (e.g. nearly vs faiss) tolerating tie reordering.

    Distances must agree within atol; ids must agree wherever the distance is not
    tied (within atol) with a neighbour; tied groups fully inside the top k must
    hold the same ids; a tied group cut by the k boundary is not compared.
    """
    assert Dn.shape == Df.shape and In.shape == If.shape, (Dn.shape, Df.shape)
    assert Dn.dtype == np.float32 and In.dtype == np.int64, (Dn.dtype, In.dtype)
    np.testing.assert_array_equal(In == -1, If == -1)
    np.testing.assert_allclose(Dn.astype(np.float64), Df.astype(np.float64), rtol=0, atol=atol)
    nq, k = Dn.shape
    for q in range(nq):
        d = Df[q].astype(np.float64)
        valid = int((If[q] != -1).sum())
        j = 0
        while j < valid:
            e = j + 1
            while e < valid and abs(d[e] - d[e - 1]) <= atol:
                e += 1
            cut = e == k and valid == k  # group may continue past k
            if e - j == 1 and not cut:
                assert In[q, j] == If[q, j], f"row {q} pos {j}: {In[q]} vs {If[q]}"
            elif not cut:
                assert set(In[q, j:e].tolist()) == set(If[q, j:e].tolist()), \
                    f"row {q} tied group {j}:{e}: {In[q]} vs {If[q]}"
            j = e


def assert_same_search(reference, index, xq, k, atol=1e-3, **kw):
    """index answers xq as reference does (ties may reorder); returns index's (D, I)."""
    Dr, Ir = reference.search(xq, k, **kw)
    D, I = index.search(xq, k, **kw)
    assert_knn_equiv(D, I, Dr, Ir, atol=atol)
    return D, I


def range_ref(xq, xb, radius, metric, ids=None):
    """Per-query dict id -> distance for L2 (dist < radius) or IP (ip > radius)."""
    dist = distances64(xq, xb, metric)
    ids = np.arange(len(xb)) if ids is None else np.asarray(ids)
    out = []
    for q in range(len(xq)):
        m = dist[q] < radius if metric == METRIC_L2 else dist[q] > radius
        out.append({int(i): float(v) for i, v in zip(ids[m], dist[q][m])})
    return out


def range_to_dicts(lims, D, I):
    lims = np.asarray(lims)
    out = []
    for q in range(len(lims) - 1):
        a, b = int(lims[q]), int(lims[q + 1])
        ids = I[a:b].tolist()
        assert len(set(ids)) == len(ids), f"duplicate ids in range result {q}"
        out.append(dict(zip(ids, D[a:b].astype(np.float64).tolist())))
    return out


def assert_range_equiv(got, ref, atol, radius):
    """Compare per-query {id: dist} dicts; ids whose distance is within atol of the
    radius may be present in one and not the other."""
    assert len(got) == len(ref)
    for q, (g, r) in enumerate(zip(got, ref)):
        for i in set(g) ^ set(r):
            dd = g.get(i, r.get(i))
            assert abs(dd - radius) <= atol, f"query {q}: id {i} (d={dd}) differs, radius {radius}"
        for i in set(g) & set(r):
            assert abs(g[i] - r[i]) <= atol, f"query {q}: id {i}: {g[i]} vs {r[i]}"


def clustered(rng, n, d, nclusters=50, scale=3.0, spread=0.3):
    """Gaussian clusters (float32): data with neighbours worth finding."""
    centers = rng.standard_normal((nclusters, d)).astype(np.float32) * scale
    return (centers[rng.integers(0, nclusters, n)] + spread * rng.standard_normal((n, d))).astype(np.float32)


def recall_at(I, gt, k):
    """Mean fraction of the true top k found in the first k of each row."""
    return float(np.mean([len(set(a[:k]) & set(b[:k])) / k for a, b in zip(I, gt)]))


def recurrent_reference(index, xq, k):
    """What an IndexBinaryRecurrent's search returns, and its GPU twin too:
    the k smallest (key, id) pairs, ties to the smaller id, with the key
    formed in numpy float32 from the integer SDC scores and the index's exact
    terms, one rounding per operation as recurrent_key does:
        L2: key = (qt + vt) - (2a) S      inner product: key = -((a S + qt) + vt)
    D = key (L2) or -key (inner product); padding like faiss."""
    S = index.sdc_scores(xq).astype(np.float32)  # exact: |S| < 2^24
    qt = index._query_terms(xq)[:, None]
    vt = index._vector_terms[None, :]
    enc = index.binarizer
    alpha = np.float32(enc.alpha)
    a = alpha * alpha * np.float32(2.0 ** (-2 * (enc.bits_per_dim - 1)))
    l2 = index.metric_type == METRIC_L2
    key = (qt + vt) - (np.float32(2) * a) * S if l2 else -((a * S + qt) + vt)
    assert key.dtype == np.float32
    ids = index.id_map
    D = np.full((len(xq), k), pad_value(index.metric_type), dtype=np.float32)
    I = np.full((len(xq), k), -1, dtype=np.int64)
    for q in range(len(xq)):
        order = np.lexsort((ids, key[q]))[:k]
        I[q, :len(order)] = ids[order]
        D[q, :len(order)] = key[q, order] if l2 else -key[q, order]
    return D, I


def recurrent_tied_data(seed=3, n=3000, d=64, nq=40):
    """Gaussian vectors off the origin with the first 100 repeated (equal
    codes and terms: exact ties), and queries near the repeated ones."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, d)) + 0.5).astype(np.float32)
    x[n - 100:] = x[:100]
    q = (x[:nq] + 0.01 * rng.standard_normal((nq, d))).astype(np.float32)
    return x, q


def seconds_until_interrupted(call, after=0.5):
    """Runs call() with a SIGINT sent to this process `after` seconds in,
    expects it to raise KeyboardInterrupt, and returns how long it ran."""
    import os
    import signal
    import threading
    import time

    import pytest

    timer = threading.Timer(after, lambda: os.kill(os.getpid(), signal.SIGINT))
    t0 = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        call()
    elapsed = time.perf_counter() - t0
    timer.join()
    return elapsed


def search_while(index, xq, k, write, id_limit, threads=3):
    """Calls write() while `threads` threads search index over and over;
    every result must be well formed (ids in [-1, id_limit), finite
    distances). Returns the exceptions the searches raised."""
    import threading

    errors, stop = [], threading.Event()

    def search():
        try:
            while not stop.is_set():
                D, I = index.search(xq, k)
                assert ((I >= -1) & (I < id_limit)).all() and np.isfinite(D[I >= 0]).all()
        except Exception as e:  # noqa: BLE001 - handed back to the test
            errors.append(e)

    workers = [threading.Thread(target=search) for _ in range(threads)]
    for t in workers:
        t.start()
    try:
        write()
    finally:
        stop.set()
        for t in workers:
            t.join()
    return errors


def ivf_built(spec, d, xt, xb, nprobe=8):
    """index_factory(d, spec) trained on xt, holding xb, its IVF index probing nprobe lists."""
    import nearly

    index = nearly.index_factory(d, spec)
    index.train(xt)
    index.add(xb)
    nearly.extract_index_ivf(index).nprobe = nprobe
    return index
