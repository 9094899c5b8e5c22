"""IndexMultiVectorFlat (exact Chamfer brute force) and IndexMuvera (FDE + inner index + re-ranking)."""
import os
import pickle

import numpy as np
import pytest

import nearly

FLT_MAX = float(np.finfo(np.float32).max)
DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "pypi-minilm-tokens-6k.npz")


def random_sets(rng, n_sets, d, lo=1, hi=12):
    lengths = rng.integers(lo, hi + 1, size=n_sets).astype(np.int64)
    x = rng.standard_normal((int(lengths.sum()), d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, lengths


def split(x, lengths):
    off = np.concatenate([[0], np.cumsum(lengths)])
    return [x[off[i]:off[i + 1]] for i in range(len(lengths))]


def chamfer_numpy(qx, ql, dx, dl):
    """(nq, nd) float64 Chamfer scores by plain numpy."""
    qs, ds = split(qx, ql), split(dx, dl)
    out = np.empty((len(qs), len(ds)))
    for i, q in enumerate(qs):
        for j, x in enumerate(ds):
            out[i, j] = (q.astype(np.float64) @ x.astype(np.float64).T).max(axis=1).sum()
    return out


def check_topk(D, I, S, k, ids=None, atol=1e-4):
    """D, I are a valid top-k of score matrix S (ties may reorder)."""
    ids = np.arange(S.shape[1]) if ids is None else np.asarray(ids)
    for i in range(S.shape[0]):
        order = np.argsort(-S[i], kind="stable")[:k]
        np.testing.assert_allclose(D[i], S[i][order], atol=atol, rtol=1e-5)
        pos = {int(v): p for p, v in enumerate(ids)}
        got = S[i][[pos[int(v)] for v in I[i]]]
        np.testing.assert_allclose(got, D[i], atol=atol, rtol=1e-5)
        assert np.all(np.diff(D[i]) <= 1e-6)


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(7)
    d = 16
    dx, dl = random_sets(rng, 120, d)
    qx, ql = random_sets(rng, 9, d)
    return d, dx, dl, qx, ql, chamfer_numpy(qx, ql, dx, dl)


def config(d, **kw):
    kw.setdefault("num_repetitions", 4)
    kw.setdefault("num_simhash_projections", 3)
    return nearly.FDEConfig(d, seed=3, **kw)


# ---------------------------------------------------------------- IndexMultiVectorFlat

@pytest.mark.parametrize("token_dtype", ["float32", "float16"])
def test_flat_equals_numpy(small, token_dtype):
    d, dx, dl, qx, ql, S = small
    index = nearly.IndexMultiVectorFlat(d, token_dtype=token_dtype)
    index.add(dx, dl)
    assert index.ntotal == len(dl) and index.n_vectors == len(dx)
    D, I = index.search(qx, ql, 10)
    assert D.dtype == np.float32 and I.dtype == np.int64 and D.shape == I.shape == (len(ql), 10)
    if token_dtype == "float16":
        S = chamfer_numpy(qx, ql, dx.astype(np.float16).astype(np.float32), dl)
    check_topk(D, I, S, 10)


def test_flat_list_input_and_ids(small):
    d, dx, dl, qx, ql, S = small
    index = nearly.IndexMultiVectorFlat(d)
    ids = np.arange(len(dl)) * 10 + 5
    index.add_with_ids(split(dx, dl), None, ids)
    D, I = index.search(split(qx, ql), None, 5)
    check_topk(D, I, S, 5, ids=ids)


def test_flat_k_larger_than_ntotal_pads(small):
    d, dx, dl, qx, ql, S = small
    index = nearly.IndexMultiVectorFlat(d)
    index.add(dx[:dl[:3].sum()], dl[:3])
    D, I = index.search(qx, ql, 5)
    assert (I[:, 3:] == -1).all() and (D[:, 3:] == -FLT_MAX).all()
    check_topk(D[:, :3], I[:, :3], S[:, :3], 3)


def test_flat_empty_index_and_empty_query_set():
    index = nearly.IndexMultiVectorFlat(8)
    q = np.ones((3, 8), np.float32)
    D, I = index.search(q, [3], 4)
    assert (I == -1).all() and (D == -FLT_MAX).all() and D.shape == (1, 4)
    D, I = index.search(np.zeros((0, 8), np.float32), np.zeros(0, np.int64), 4)
    assert D.shape == (0, 4) and I.shape == (0, 4)


def test_flat_remove_reset_pickle(small):
    d, dx, dl, qx, ql, S = small
    index = nearly.IndexMultiVectorFlat(d)
    index.add(dx, dl)
    drop = np.arange(0, len(dl), 3)
    assert index.remove_ids(drop) == len(drop)
    keep = np.setdiff1d(np.arange(len(dl)), drop)
    assert index.ntotal == len(keep)
    D, I = index.search(qx, ql, 7)
    check_topk(D, I, S[:, keep], 7, ids=keep)
    assert index.remove_ids(nearly.IDSelectorRange(0, 10)) == len(np.setdiff1d(np.arange(10), drop))
    clone = pickle.loads(pickle.dumps(index))
    D2, I2 = clone.search(qx, ql, 7)
    D1, I1 = index.search(qx, ql, 7)
    np.testing.assert_array_equal(I1, I2)
    np.testing.assert_array_equal(D1, D2)
    index.reset()
    assert index.ntotal == 0
    assert (index.search(qx, ql, 2)[1] == -1).all()


# ---------------------------------------------------------------- IndexMuvera

def test_muvera_flat_inner_large_k_factor_is_exact(small):
    d, dx, dl, qx, ql, S = small
    index = nearly.IndexMuvera(d, config(d), inner="Flat", k_factor=100)
    index.add(dx, dl)
    assert index.ntotal == len(dl)
    D, I = index.search(qx, ql, 10)  # 1000 candidates >= 120 documents: every document is re-ranked
    check_topk(D, I, S, 10)
    exact = nearly.IndexMultiVectorFlat(d)
    exact.add(dx, dl)
    De, Ie = exact.search(qx, ql, 10)
    np.testing.assert_allclose(D, De, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("inner", ["HNSW32", "HNSW32,SQ8", "HNSW32,SQfp16", "IDMap,Flat"])
def test_muvera_inner_variants(small, inner):
    d, dx, dl, qx, ql, S = small
    index = nearly.IndexMuvera(d, config(d), inner=inner, k_factor=50, token_dtype="float16")
    index.add_with_ids(dx, dl, np.arange(len(dl)) + 1000)
    D, I = index.search(qx, ql, 5, params=nearly.SearchParametersHNSW(efSearch=256) if "HNSW" in inner else None)
    assert (I >= 1000).all()
    # Scores are exact Chamfer scores (fp16 tokens) of the returned documents.
    S16 = chamfer_numpy(qx, ql, dx.astype(np.float16).astype(np.float32), dl)
    for i in range(len(ql)):
        np.testing.assert_allclose(D[i], S16[i][I[i] - 1000], rtol=1e-5, atol=1e-4)


def test_muvera_k_factor_per_search_and_ball_carving(small):
    d, dx, dl, qx, ql, S = small
    index = nearly.IndexMuvera(d, config(d), inner="Flat", k_factor=1, ball_carving=True)
    index.add(dx, dl)
    D1, I1 = index.search(qx, ql, 5)
    Dn, In = index.search(qx, ql, 5, k_factor=200)
    check_topk(Dn, In, S, 5)  # all documents re-ranked: exact even with carved query encodings
    assert (D1 <= Dn + 1e-4).all()
    carved, lengths = nearly._nearly._ball_carve(qx, ql, 0.7)
    assert lengths.sum() == len(carved) and (lengths <= ql).all() and (lengths >= 1).all()
    # tau = 1: nothing merges except exact duplicates; tau = -1: one cluster (the sum)
    _, l1 = nearly._nearly._ball_carve(qx, ql, 1.0)
    np.testing.assert_array_equal(l1, ql)
    v, lm = nearly._nearly._ball_carve(qx, ql, -1.0)
    assert (lm == 1).all()
    np.testing.assert_allclose(v[0], qx[:ql[0]].sum(0), rtol=1e-5, atol=1e-5)


def test_muvera_remove_ids(small):
    d, dx, dl, qx, ql, S = small
    index = nearly.IndexMuvera(d, config(d), inner="HNSW32", k_factor=200)
    index.add(dx, dl)
    drop = np.arange(1, len(dl), 2)
    assert index.remove_ids(drop) == len(drop)
    assert index.ntotal == len(dl) - len(drop) and index.inner_index.ntotal == index.ntotal
    keep = np.setdiff1d(np.arange(len(dl)), drop)
    D, I = index.search(qx, ql, 5, params=nearly.SearchParametersHNSW(efSearch=512))
    assert not np.isin(I, drop).any()
    check_topk(D, I, S[:, keep], 5, ids=keep)
    # adding after a removal keeps store and inner index in step
    index.add(dx[:dl[0]], dl[:1])
    assert index.inner_index.ntotal == index.ntotal
    index.reset()
    assert index.ntotal == 0 and index.inner_index.ntotal == 0
    D, I = index.search(qx, ql, 3)
    assert (I == -1).all() and (D == -FLT_MAX).all()


@pytest.mark.parametrize("inner", ["Flat", "HNSW32,SQ8"])
def test_muvera_persistence(small, inner):
    d, dx, dl, qx, ql, S = small
    index = nearly.IndexMuvera(d, config(d, projection_type="ams_sketch", projection_dimension=4,
                                          fill_empty_partitions=True),
                               inner=inner, k_factor=7, token_dtype="float16", ball_carving=True)
    index.add_with_ids(dx, dl, np.arange(len(dl)) * 2)
    index.remove_ids(np.array([0, 2, 4]))
    D, I = index.search(qx, ql, 6)
    for clone in (pickle.loads(pickle.dumps(index)), nearly.IndexMuvera.deserialize(index.serialize())):
        assert (clone.k_factor, clone.token_dtype, clone.ball_carving, clone.ntotal) == (7, "float16", True,
                                                                                         index.ntotal)
        assert clone.fde_config == index.fde_config
        D2, I2 = clone.search(qx, ql, 6)
        np.testing.assert_array_equal(I, I2)
        np.testing.assert_array_equal(D, D2)


@pytest.mark.parametrize("inner", ["Flat", "HNSW32"])
def test_muvera_copy_is_independent(small, inner):
    # What GpuIndexMuvera keeps for index_gpu_to_cpu: the same index, bytes
    # for bytes, that later writes to the original do not reach.
    d, dx, dl, qx, ql, S = small
    index = nearly.IndexMuvera(d, config(d), inner=inner, k_factor=5, token_dtype="float16")
    index.add_with_ids(dx, dl, np.arange(len(dl)) * 3)
    index.remove_ids(np.array([0, 3]))
    copy = index._copy()
    assert copy.serialize() == index.serialize()
    D, I = index.search(qx, ql, 4)
    index.remove_ids(np.arange(0, 300, 2))
    index.add(dx[:5], [5])
    D2, I2 = copy.search(qx, ql, 4)
    np.testing.assert_array_equal(I, I2)
    np.testing.assert_array_equal(D, D2)
    assert copy.ntotal == len(dl) - 2
    copy.add(dx[:5], [5])  # the copy is writable and keeps its own keys
    assert copy.ntotal == len(dl) - 1


def test_muvera_corrupt_data_raises(small):
    d, dx, dl, qx, ql, S = small
    index = nearly.IndexMuvera(d, config(d), inner="Flat")
    index.add(dx, dl)
    blob = bytearray(index.serialize())
    for bad in (bytes(blob[:len(blob) // 2]), b"", b"NEARLYMU" + bytes(20), bytes(blob[:-1]) + b"\x00"):
        with pytest.raises(nearly.IndexFileError):
            nearly.IndexMuvera.deserialize(bad)
    flipped = bytearray(blob)
    flipped[len(flipped) // 3] ^= 0x10
    with pytest.raises(nearly.IndexFileError):
        nearly.IndexMuvera.deserialize(bytes(flipped))
    newer = bytearray(blob)
    newer[8] = 99
    with pytest.raises(nearly.IndexFileError):
        nearly.IndexMuvera.deserialize(bytes(newer))
    store = bytearray(nearly.IndexMultiVectorFlat(4).serialize().tobytes())
    store[12] ^= 1
    with pytest.raises(nearly.IndexFileError):
        nearly.IndexMultiVectorFlat.deserialize(bytes(store))


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("make", [
    lambda d: nearly.IndexMultiVectorFlat(d),
    lambda d: nearly.IndexMuvera(d, config(d), inner="Flat"),
])
def test_bad_input(make):
    d = 8
    index = make(d)
    rng = np.random.default_rng(1)
    x, l = random_sets(rng, 5, d)
    E = nearly.InvalidArgumentError
    with pytest.raises(E, match="sum to"):
        index.add(x, l + 1)
    with pytest.raises(E, match="columns"):
        index.add(x[:, :5], l)
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(E, match="NaN"):
        index.add(bad, l)
    with pytest.raises(E, match="at least one"):
        index.add(x, np.concatenate([l[:-1], [0], l[-1:]]))
    assert index.ntotal == 0
    index.add(x, l)
    for k in (0, -3):
        with pytest.raises(E, match="k must be positive"):
            index.search(x[:4], [4], k)
    with pytest.raises(E):
        index.search(x[:4], [4], 2.5)
    with pytest.raises(E, match="columns"):
        index.search(x[:4, :7], [4], 2)
    with pytest.raises(E, match="sum to"):
        index.search(x[:4], [3], 2)
    with pytest.raises(E, match="at least one"):
        index.search(x[:4], [4, 0], 2)
    q = x[:4].copy()
    q[0, 0] = np.inf
    with pytest.raises(E, match="NaN|infinity|finite"):
        index.search(q, [4], 2)
    with pytest.raises(E):
        index.add_with_ids(x, l, np.arange(3))
    assert index.ntotal == 5


def test_muvera_bad_construction():
    E = nearly.InvalidArgumentError
    with pytest.raises(E, match="dimension"):
        nearly.IndexMuvera(8, config(16))
    with pytest.raises(E, match="k_factor"):
        nearly.IndexMuvera(8, config(8), k_factor=0)
    with pytest.raises(E, match="token_dtype"):
        nearly.IndexMuvera(8, config(8), token_dtype="int8")
    with pytest.raises(RuntimeError, match="parse"):
        nearly.IndexMuvera(8, config(8), inner="Nonsense")
    index = nearly.IndexMuvera(8, config(8), inner="Flat")
    with pytest.raises(E, match="k_factor"):
        index.search(np.ones((2, 8), np.float32), [2], 3, k_factor=0)


# ---------------------------------------------------------------- real token data

@pytest.mark.skipif(not os.path.exists(DATA), reason="../shared/data/pypi-minilm-tokens-6k.npz not present")
def test_recall_on_real_tokens():
    z = np.load(DATA)
    lengths = z["lengths"].astype(np.int64)
    nq = int(z["nq"])
    off = np.concatenate([[0], np.cumsum(lengths)])
    vectors = z["vectors"]
    n_queries = 100
    qx, ql = vectors[:off[n_queries]].astype(np.float32), lengths[:n_queries]
    dx, dl = vectors[off[nq]:].astype(np.float32), lengths[nq:]
    exact = nearly.IndexMultiVectorFlat(384)
    exact.add(dx, dl)
    De, Ie = exact.search(qx, ql, 10)
    # Spot-check the ground truth itself against numpy for a few queries.
    S = chamfer_numpy(qx[:off[3]], ql[:3], dx, dl)
    check_topk(De[:3], Ie[:3], S, 10, atol=1e-3)
    cfg = nearly.FDEConfig(384, num_repetitions=20, num_simhash_projections=5, seed=1,
                           projection_type="ams_sketch", projection_dimension=16)
    index = nearly.IndexMuvera(384, cfg, inner="Flat", k_factor=10)
    index.add(dx, dl)
    D, I = index.search(qx, ql, 10)
    recall = np.mean([len(set(I[i]) & set(Ie[i])) / 10 for i in range(n_queries)])
    assert recall >= 0.88, recall


def test_muvera_pq_compressed_fdes_need_training_and_keep_recall():
    """PQ-compressed FDEs (the paper's PQ-256-8, here PQ32x8 on 512-d FDEs):
    train first, then the candidates come from the codes and the re-ranking
    stays exact."""
    rng = np.random.default_rng(11)
    centers = rng.standard_normal((40, 32)).astype(np.float32)
    lengths = rng.integers(3, 9, size=1500)
    x = centers[rng.integers(0, 40, size=int(lengths.sum()))] + 0.3 * rng.standard_normal(
        (int(lengths.sum()), 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    cfg = nearly.FDEConfig(dimension=32, num_repetitions=8, num_simhash_projections=3, seed=1,
                           projection_type="ams_sketch", projection_dimension=8, fill_empty_partitions=True)
    q, ql = x[:int(lengths[:30].sum())], lengths[:30]
    flat = nearly.IndexMultiVectorFlat(32)
    flat.add(x, lengths)
    _, gt = flat.search(q, ql, 10)

    def recall(I):
        return np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I, gt)])

    ref = nearly.IndexMuvera(32, cfg, inner="Flat", k_factor=10)
    ref.add(x, lengths)
    pq = nearly.IndexMuvera(32, cfg, inner="PQ32x8", k_factor=10)
    assert not pq.is_trained
    with pytest.raises(RuntimeError, match="train"):
        pq.add(x, lengths)
    pq.train(x, lengths)
    assert pq.is_trained
    pq.add(x, lengths)
    D, I = pq.search(q, ql, 10)
    assert recall(I) >= recall(ref.search(q, ql, 10)[1]) - 0.1
    exact = nearly.chamfer_scores_batch(q, ql, x, lengths)
    np.testing.assert_allclose(D, np.take_along_axis(exact, I, 1), rtol=1e-5, atol=1e-5)
    back = nearly.IndexMuvera.deserialize(pq.serialize())
    np.testing.assert_array_equal(back.search(q, ql, 10)[1], I)


def numpy_ball_carve(x, tau):
    """Greedy clustering of one set: a vector joins the most similar cluster whose
    first vector has cosine >= tau (the first such on ties), else starts one; a
    cluster becomes the sum of its vectors."""
    firsts, sums = [], []
    for v in x.astype(np.float64):
        best, best_cos = None, -np.inf
        for c, f in enumerate(firsts):
            cos = v @ f / (np.linalg.norm(v) * np.linalg.norm(f))
            if cos >= tau and cos > best_cos:
                best, best_cos = c, cos
        if best is None:
            firsts.append(v)
            sums.append(v.copy())
        else:
            sums[best] += v
    return np.array(sums)


def test_ball_carving_at_tau_07_matches_numpy():
    rng = np.random.default_rng(5)
    d = 24
    sets = []
    for n in (1, 5, 12, 30):  # a few tight groups per set, so clusters do form at 0.7
        centres = rng.standard_normal((3, d))
        sets.append((centres[rng.integers(0, 3, n)] + 0.35 * rng.standard_normal((n, d))).astype(np.float32))
    x = np.concatenate(sets)
    lengths = np.array([len(s) for s in sets])
    carved, cl = nearly._nearly._ball_carve(x, lengths, 0.7)
    off = np.concatenate([[0], np.cumsum(cl)])
    for i, s in enumerate(sets):
        want = numpy_ball_carve(s, 0.7)
        assert cl[i] == len(want), (i, cl[i], len(want))
        np.testing.assert_allclose(carved[off[i]:off[i + 1]], want, rtol=1e-5, atol=1e-5)
    assert cl[-1] < lengths[-1]  # some merging happened
    # the index encodes carved queries, and still re-ranks with every original vector
    cfg = config(d)
    index = nearly.IndexMuvera(d, cfg, inner="Flat", ball_carving=True)
    np.testing.assert_array_equal(index.encode_queries(x, lengths), nearly.fde_encode_queries(carved, cl, cfg))
    index.add(x, lengths)
    D, I = index.search(x, lengths, 4, k_factor=10)
    S = nearly.chamfer_scores_batch(x, lengths, x, lengths)
    np.testing.assert_allclose(D, np.take_along_axis(S, I, axis=1), rtol=1e-5, atol=1e-4)
    with pytest.raises(nearly.InvalidArgumentError, match="tau"):
        nearly.IndexMuvera(d, cfg, ball_carving=True, ball_carving_tau=1.5)


def test_muvera_verbose_progress(small, capsys):
    d, dx, dl, qx, ql, S = small
    index = nearly.IndexMuvera(d, config(d), inner="Flat", verbose=True)
    index.add(dx, dl)
    index.search(qx, ql, 3)
    index.remove_ids(np.array([0, 1]))
    err = capsys.readouterr().err
    assert f"added {len(dl)}/{len(dl)} documents" in err
    assert "encode" in err and "inner search" in err and "re-rank" in err
    assert "removed 2 documents" in err
    quiet = nearly.IndexMuvera(d, config(d), inner="Flat")
    quiet.add(dx, dl)
    quiet.search(qx, ql, 3)
    assert capsys.readouterr().err == ""
