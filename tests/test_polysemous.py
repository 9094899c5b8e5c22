"""Polysemous codes: the centroid renumbering (simulated annealing, its swap
delta against the full objective), IndexPQ's search types and IndexIVFPQ's
Hamming filter, each checked against numpy; persistence, the factory,
parameters and bad input."""
import os
import signal
import struct

import numpy as np
import pytest

import nearly
from nearly import _nearly
from _hnswutil import reseal
from _testutil import seconds_until_interrupted

D, M = 32, 8


def quick(pt, n_iter=20000):
    pt.n_iter = n_iter
    pt.n_redo = 1
    return pt


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    # clustered, so that neighbours exist and Hamming filtering has something to keep
    centers = rng.standard_normal((40, D)).astype(np.float32) * 3
    xb = (centers[rng.integers(0, 40, 3000)] + rng.standard_normal((3000, D))).astype(np.float32)
    xq = (centers[rng.integers(0, 40, 30)] + rng.standard_normal((30, D))).astype(np.float32)
    return xb, xq


@pytest.fixture(scope="module")
def pq_index(data):
    xb, _ = data
    index = nearly.IndexPQ(D, M, 8)
    index.do_polysemous_training = True
    quick(index.polysemous_training)
    index.train(xb)
    index.add(xb)
    return index


def popcount_rows(a):
    return np.unpackbits(a, axis=-1).sum(-1)


def adc_numpy(index, xq, codes):
    pq = index.pq
    cent = nearly.vector_to_array(pq.centroids).reshape(pq.M, pq.ksub, pq.dsub)
    sub = xq.reshape(len(xq), pq.M, 1, pq.dsub)
    tab = ((sub - cent[None]) ** 2).sum(-1)  # (nq, M, ksub)
    return tab[:, np.arange(pq.M)[None, :], codes.astype(np.int64)].sum(-1)  # (nq, nb)


def topk(dis, k, keep=None):
    """ids of the k smallest of each row among `keep` (True entries), ties to the smaller id."""
    out_D, out_I = [], []
    for i, row in enumerate(dis):
        ids = np.flatnonzero(keep[i]) if keep is not None else np.arange(len(row))
        order = ids[np.lexsort((ids, row[ids]))][:k]
        out_I.append(np.pad(order, (0, k - len(order)), constant_values=-1))
        out_D.append(np.pad(row[order], (0, k - len(order)), constant_values=np.inf))
    return np.array(out_D), np.array(out_I)


@pytest.mark.parametrize("nbits", [1, 2, 3, 5, 8])
def test_swap_delta_is_the_change_of_the_full_cost(nbits):
    rng = np.random.default_rng(nbits)
    n = 1 << nbits
    c = rng.standard_normal((n, 4)).astype(np.float32)
    dis = ((c[:, None] - c[None]) ** 2).sum(-1).astype(np.float32)
    for _ in range(20 if n > 2 else 1):
        perm = [int(v) for v in rng.permutation(n)]
        a, b = (int(v) for v in rng.choice(n, 2, replace=False))
        before, after, delta = _nearly._polysemous_swap(nbits, dis, np.log(2), perm, a, b)
        assert delta == pytest.approx(after - before, rel=1e-5, abs=1e-4 * max(1.0, abs(before)))


def centroid_table(pq):
    return nearly.vector_to_array(pq.centroids).reshape(pq.M, pq.ksub, pq.dsub)


def test_training_renumbers_centroids_and_fits_hamming_to_distances(data):
    xb, _ = data
    plain = nearly.ProductQuantizer(D, M, 8)
    plain.train(xb)
    renumbered = nearly.ProductQuantizer(D, M, 8)
    renumbered.train(xb)
    pt = quick(nearly.PolysemousTraining(), 100000)
    pt.optimize_pq_for_hamming(renumbered, xb)
    a, b = centroid_table(plain), centroid_table(renumbered)
    bits = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1)
    ham = (bits[:, None] != bits[None]).sum(-1)
    iu = np.triu_indices(256, 1)
    gains = []
    for m in range(M):
        # the same centroids, other numbers
        order_a = np.lexsort(a[m].T[::-1])
        order_b = np.lexsort(b[m].T[::-1])
        np.testing.assert_array_equal(a[m][order_a], b[m][order_b])
        # Hamming distances between numbers now follow the centroid distances
        da = ((a[m][:, None] - a[m][None]) ** 2).sum(-1)[iu]
        db = ((b[m][:, None] - b[m][None]) ** 2).sum(-1)[iu]
        before, after = np.corrcoef(da, ham[iu])[0, 1], np.corrcoef(db, ham[iu])[0, 1]
        assert abs(before) < 0.05 and after > 0.2, (m, before, after)
        gains.append(after)
    # faiss's training reaches 0.29 on average on these centroids (100k steps)
    assert np.mean(gains) > 0.26


def test_training_is_deterministic_and_seeded(data):
    xb, _ = data
    out = []
    for seed in (123, 123, 5):
        pq = nearly.ProductQuantizer(D, 4, 8)
        pq.train(xb)
        pt = quick(nearly.PolysemousTraining())
        pt.seed = seed
        pt.optimize_pq_for_hamming(pq, xb)
        out.append(nearly.vector_to_array(pq.centroids))
    np.testing.assert_array_equal(out[0], out[1])
    assert not np.array_equal(out[0], out[2])


def test_options_of_the_annealing(data):
    xb, _ = data
    base = nearly.ProductQuantizer(D, 2, 6)
    base.train(xb)
    ref = nearly.vector_to_array(base.centroids)
    for opts in ({"only_bit_flips": True}, {"init_random": True}, {"n_iter": 0}, {"n_redo": 3}):
        pq = nearly.ProductQuantizer(D, 2, 6)
        pq.centroids = base.centroids
        pt = quick(nearly.PolysemousTraining(), 5000)
        for k, v in opts.items():
            setattr(pt, k, v)
        pt.optimize_pq_for_hamming(pq, xb)
        got = nearly.vector_to_array(pq.centroids)
        # always a renumbering of the same centroids
        np.testing.assert_array_equal(np.sort(got.reshape(2, 64, -1), axis=1), np.sort(ref.reshape(2, 64, -1), axis=1))
        if opts == {"n_iter": 0}:
            np.testing.assert_array_equal(got, ref)  # no step: the identity
    pt = nearly.PolysemousTraining()
    pt.optimization_type = nearly.PolysemousTraining.OT_None
    pt.optimize_pq_for_hamming(base, xb)
    np.testing.assert_array_equal(nearly.vector_to_array(base.centroids), ref)
    pt.optimization_type = nearly.PolysemousTraining.OT_Ranking_weighted_diff
    with pytest.raises(RuntimeError, match="OT_Ranking_weighted_diff"):
        pt.optimize_pq_for_hamming(base, xb)
    with pytest.raises(ValueError):
        pt.optimization_type = 7


def test_memory_limit_refuses_wide_codes():
    x = np.random.default_rng(0).standard_normal((2000, 32)).astype(np.float32)
    index = nearly.IndexPQ(32, 2, 13)
    index.do_polysemous_training = True
    index.pq.cp.niter = 0
    index.polysemous_training.max_memory = 128 << 20
    assert index.polysemous_training.memory_usage_per_thread(index.pq) == 3 * 8192 * 8192 * 4
    with pytest.raises(RuntimeError, match="max_memory"):
        index.train(x)
    assert not index.is_trained


def test_adc_results_do_not_change_with_the_numbering(data):
    xb, xq = data
    res = []
    for poly in (False, True):
        index = nearly.IndexPQ(D, M, 8)
        index.do_polysemous_training = poly
        quick(index.polysemous_training)
        index.train(xb)
        index.add(xb)
        res.append(index.search(xq, 10))
    np.testing.assert_allclose(res[0][0], res[1][0], rtol=1e-5)
    assert (res[0][1] == res[1][1]).mean() > 0.99  # ties may swap


@pytest.mark.parametrize("ht", [0, 20, 26, 30, 65, 1000])
def test_polysemous_search_is_the_filtered_adc_search(pq_index, data, ht):
    _, xq = data
    index = pq_index
    codes = np.asarray(index.codes).reshape(-1, M)
    qcodes = index.sa_encode(xq)
    ham = popcount_rows(qcodes[:, None, :] ^ codes[None])
    keep = ham < (ht if ht else M * 8 + 1)
    ref_D, ref_I = topk(adc_numpy(index, xq, codes), 10, keep)
    index.search_type = nearly.IndexPQ.ST_polysemous
    index.polysemous_ht = ht
    stats = nearly.cvar.indexPQ_stats
    stats.reset()
    Dn, In = index.search(xq, 10)
    index.search_type = nearly.IndexPQ.ST_PQ
    assert stats.nq == len(xq) and stats.ncode == len(xq) * index.ntotal
    assert stats.n_hamming_pass == keep.sum()
    np.testing.assert_array_equal(In == -1, ref_I == -1)
    found = In >= 0
    np.testing.assert_allclose(Dn[found], ref_D[found], rtol=1e-4, atol=1e-3)
    assert (In == ref_I).mean() > 0.97
    assert np.all(np.take_along_axis(keep, np.maximum(In, 0), 1)[found])


def test_generalized_and_code_to_code_search_types(pq_index, data):
    _, xq = data
    index = pq_index
    codes = np.asarray(index.codes).reshape(-1, M)
    qcodes = index.sa_encode(xq)
    ham = popcount_rows(qcodes[:, None, :] ^ codes[None])
    diff = (qcodes[:, None, :] != codes[None]).sum(-1)
    cent = centroid_table(index.pq)
    sdc = sum(((cent[m][qcodes[:, m]][:, None] - cent[m][codes[:, m]][None]) ** 2).sum(-1) for m in range(M))
    for st, dis in ((nearly.IndexPQ.ST_HE, ham), (nearly.IndexPQ.ST_generalized_HE, diff), (nearly.IndexPQ.ST_SDC, sdc)):
        params = nearly.SearchParametersPQ(search_type=st)
        Dn, In = index.search(xq, 7, params=params)
        ref_D, _ = topk(dis.astype(np.float64), 7)
        np.testing.assert_allclose(Dn, ref_D, rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(np.take_along_axis(dis, In, 1), Dn, rtol=1e-4, atol=1e-3)
    # the generalized filter: fewer than ht differing centroids
    params = nearly.SearchParametersPQ(search_type=nearly.IndexPQ.ST_polysemous_generalize, polysemous_ht=6)
    Dn, In = index.search(xq, 10, params=params)
    ref_D, ref_I = topk(adc_numpy(index, xq, codes), 10, diff < 6)
    np.testing.assert_allclose(Dn[In >= 0], ref_D[In >= 0], rtol=1e-4, atol=1e-3)
    np.testing.assert_array_equal(In == -1, ref_I == -1)
    # hamming_distance_table: faiss's (n, ntotal) table
    np.testing.assert_array_equal(index.hamming_distance_table(xq), ham)


def test_selectors_with_every_search_type(pq_index, data):
    _, xq = data
    index = pq_index
    sel = nearly.IDSelectorRange(100, 900)
    for st in range(6):
        params = nearly.SearchParametersPQ(search_type=st, polysemous_ht=40, sel=sel)
        Dn, In = index.search(xq, 10, params=params)
        assert np.all((In == -1) | ((In >= 100) & (In < 900))), st
        full = index.search(xq, 10, params=nearly.SearchParametersPQ(search_type=st, polysemous_ht=40))
        assert not np.array_equal(In, full[1])


def test_search_parameters_and_bad_input(pq_index, data):
    xb, xq = data
    index = pq_index
    assert nearly.IndexPQ(D, M, 8).polysemous_ht == M * 8 + 1  # faiss's "no filter"
    p = nearly.SearchParametersPQ()
    assert (p.search_type, p.polysemous_ht) == (nearly.IndexPQ.ST_PQ, 0)
    with pytest.raises(ValueError, match="search_type"):
        index.search_type = 6
    with pytest.raises(ValueError, match="search_type"):
        nearly.SearchParametersPQ(search_type=-1)
    with pytest.raises(ValueError, match="polysemous_ht"):
        index.polysemous_ht = -1
    ip = nearly.IndexPQ(D, M, 8, nearly.METRIC_INNER_PRODUCT)
    ip.train(xb)
    ip.add(xb)
    with pytest.raises(RuntimeError, match="METRIC_L2"):
        ip.search(xq, 5, params=nearly.SearchParametersPQ(search_type=nearly.IndexPQ.ST_polysemous))
    with pytest.raises(RuntimeError, match="L2"):
        ip.search(xq, 5, params=nearly.SearchParametersPQ(search_type=nearly.IndexPQ.ST_SDC))
    six = nearly.IndexPQ(D, M, 6)
    six.train(xb)
    six.add(xb)
    with pytest.raises(RuntimeError, match="8-bit"):
        six.search(xq, 5, params=nearly.SearchParametersPQ(search_type=nearly.IndexPQ.ST_polysemous))
    # code-to-code search types take any width
    assert six.search(xq, 5, params=nearly.SearchParametersPQ(search_type=nearly.IndexPQ.ST_HE))[1].min() >= 0
    fs = nearly.IndexPQFastScan(D, M, 4)
    for attr, val in (("search_type", 1), ("polysemous_ht", 10), ("do_polysemous_training", True)):
        with pytest.raises(RuntimeError, match="IndexPQFastScan"):
            setattr(fs, attr, val)
    untrained = nearly.IndexPQ(D, M, 8)
    with pytest.raises(RuntimeError):
        untrained.search(xq, 5, params=nearly.SearchParametersPQ(search_type=nearly.IndexPQ.ST_HE))
    with pytest.raises(ValueError):
        index.search(xq[:, :5], 5, params=nearly.SearchParametersPQ(search_type=nearly.IndexPQ.ST_polysemous))
    with pytest.raises(ValueError):
        index.search(np.full((1, D), np.nan, np.float32), 5,
                     params=nearly.SearchParametersPQ(search_type=nearly.IndexPQ.ST_HE))


# by residual or not, metric, use_precomputed_table (the query's residual
# code comes from the list's table when there is one), code width
@pytest.fixture(scope="module", params=[(True, nearly.METRIC_L2, 0, 8), (False, nearly.METRIC_L2, 0, 8),
                                        (True, nearly.METRIC_INNER_PRODUCT, 0, 8), (True, nearly.METRIC_L2, -1, 8),
                                        (True, nearly.METRIC_L2, 0, 6)],
                ids=["res-L2", "direct-L2", "res-IP", "res-L2-no-table", "res-L2-6bit"])
def ivfpq(request, data):
    xb, _ = data
    by_residual, metric, upt, nbits = request.param
    index = nearly.IndexIVFPQ(nearly.IndexFlat(D, metric), D, 16, M, nbits, metric)
    index.use_precomputed_table = upt
    index.by_residual = by_residual
    index.do_polysemous_training = True
    index.polysemous_training = quick(nearly.PolysemousTraining())
    index.train(xb)
    index.add(xb)
    index.nprobe = 4
    return index


def ivf_reference(index, xq, ht, nprobe):
    """Per query: {id: passes} for the entries of its nprobe lists, passes
    when the code is within Hamming distance < ht of the query's (residual's)
    code."""
    cent = index.quantizer.reconstruct_n(0, index.nlist)
    _, lists = index.quantizer.search(xq, nprobe)
    out = []
    for qi in range(len(xq)):
        keep = {}
        for l in lists[qi]:
            ids = index.invlists.get_ids(int(l))
            codes = index.invlists.get_codes(int(l)).reshape(len(ids), -1)
            target = xq[qi] - cent[l] if index.by_residual else xq[qi]
            qc = index.pq.compute_codes(target[None])[0]
            for i, c in zip(ids, codes):
                keep[int(i)] = popcount_rows(qc ^ c) < ht
        out.append(keep)
    return out


@pytest.mark.parametrize("ht", [24, 30, 38])
def test_ivfpq_polysemous_filter_is_exact(ivfpq, data, ht):
    _, xq = data
    index = ivfpq
    ip = index.metric_type == nearly.METRIC_INNER_PRODUCT
    # scores of every probed entry, unfiltered
    Dall, Iall = index.search(xq, index.ntotal, params=nearly.SearchParametersIVFPQ(nprobe=4))
    keep = ivf_reference(index, xq, ht, 4)
    index.polysemous_ht = ht
    try:
        Dn, In = index.search(xq, 10)
    finally:
        index.polysemous_ht = 0
    npass = 0
    for qi in range(len(xq)):
        passed = [(d, i) for d, i in zip(Dall[qi], Iall[qi]) if i >= 0 and keep[qi][int(i)]]
        npass += len(passed)
        passed.sort(key=lambda t: (-t[0], t[1]) if ip else (t[0], t[1]))
        want = passed[:10]
        got = [(d, i) for d, i in zip(Dn[qi], In[qi]) if i >= 0]
        assert len(got) == len(want)
        np.testing.assert_allclose([d for d, _ in got], [d for d, _ in want], rtol=1e-5, atol=1e-4)
        assert all(keep[qi][int(i)] for _, i in got)
    assert 0 < npass < sum(len(k) for k in keep)  # the filter kept some and dropped some
    # the same through SearchParametersIVFPQ, which overrides the index (0: no filter)
    Dp, Ip = index.search(xq, 10, params=nearly.SearchParametersIVFPQ(nprobe=4, polysemous_ht=ht))
    np.testing.assert_array_equal(Ip, In)
    index.polysemous_ht = ht
    try:
        D0, I0 = index.search(xq, 10, params=nearly.IVFPQSearchParameters(nprobe=4, polysemous_ht=0))
    finally:
        index.polysemous_ht = 0
    np.testing.assert_array_equal(I0, index.search(xq, 10)[1])


def test_ivfpq_polysemous_range_search_and_selector(ivfpq, data):
    _, xq = data
    index = ivfpq
    ip = index.metric_type == nearly.METRIC_INNER_PRODUCT
    Dk, _ = index.search(xq, 50)
    radius = float(np.median(Dk[:, -1]))
    lims0, D0, I0 = index.range_search(xq, radius)
    keep = ivf_reference(index, xq, 30, 4)
    sel = nearly.IDSelectorRange(0, 2000)
    params = nearly.SearchParametersIVFPQ(nprobe=4, polysemous_ht=30)
    lims, Dr, Ir = index.range_search(xq, radius, params=params)
    for qi in range(len(xq)):
        full = {int(i): d for i, d in zip(I0[lims0[qi]:lims0[qi + 1]], D0[lims0[qi]:lims0[qi + 1]])}
        got = dict(zip(map(int, Ir[lims[qi]:lims[qi + 1]]), Dr[lims[qi]:lims[qi + 1]]))
        assert got.keys() == {i for i in full if keep[qi][i]}
        for i, d in got.items():
            assert d == pytest.approx(full[i], rel=1e-5, abs=1e-4)
    params = nearly.SearchParametersIVFPQ(nprobe=4, polysemous_ht=30, sel=sel)
    _, Is = index.search(xq, 10, params=params)
    assert np.all((Is == -1) | (Is < 2000)) and (Is >= 0).any()


def test_ivfpq_polysemous_errors(data):
    xb, _ = data
    fs = nearly.IndexIVFPQFastScan(nearly.IndexFlatL2(D), D, 16, M, 4)
    with pytest.raises(RuntimeError, match="polysemous"):
        fs.polysemous_ht = 10
    with pytest.raises(RuntimeError, match="polysemous"):
        fs.do_polysemous_training = True
    fs.train(xb)
    fs.add(xb)
    with pytest.raises(RuntimeError, match="polysemous"):
        fs.search(xb[:2], 5, params=nearly.SearchParametersIVFPQ(nprobe=2, polysemous_ht=10))
    index = nearly.IndexIVFPQ(nearly.IndexFlatL2(D), D, 16, M, 8)
    assert index.polysemous_ht == 0 and index.do_polysemous_training is False and index.polysemous_training is None
    with pytest.raises(ValueError, match="polysemous_ht"):
        index.polysemous_ht = -3
    with pytest.raises(ValueError, match="polysemous_ht"):
        nearly.SearchParametersIVFPQ(polysemous_ht=-1)
    with pytest.raises(ValueError, match="nprobe"):
        nearly.SearchParametersIVFPQ(nprobe=0)


def test_ivfpq_trains_polysemous_with_default_settings(data):
    xb, xq = data
    out = []
    for poly in (False, True):
        index = nearly.IndexIVFPQ(nearly.IndexFlatL2(D), D, 8, 4, 8)
        index.do_polysemous_training = poly  # polysemous_training None: faiss's defaults
        index.train(xb)
        index.add(xb)
        index.nprobe = 8
        out.append((index, index.search(xq, 10)))
    np.testing.assert_allclose(out[0][1][0], out[1][1][0], rtol=1e-5)
    assert not np.array_equal(nearly.vector_to_array(out[0][0].pq.centroids),
                              nearly.vector_to_array(out[1][0].pq.centroids))


def test_persistence_of_the_settings_and_older_files(pq_index, ivfpq, data):
    _, xq = data
    pq_index.search_type = nearly.IndexPQ.ST_polysemous
    pq_index.polysemous_ht = 27
    ivfpq.polysemous_ht = 31
    try:
        for index, tail in ((pq_index, 9), (ivfpq, 5)):
            blob = bytes(nearly.serialize_index(index))
            back = nearly.deserialize_index(np.frombuffer(blob, np.uint8))
            np.testing.assert_array_equal(back.search(xq, 10)[1], index.search(xq, 10)[1])
            assert back.polysemous_ht == index.polysemous_ht and back.do_polysemous_training
            # a format-6 file (before these settings): the trailing fields
            # dropped, read with the defaults
            payload = blob[24:-8]
            assert struct.unpack_from("<I", blob, 8)[0] == 8
            if isinstance(index, nearly.IndexIVFPQ):  # format 8's lists-storage word (0: inline) goes too
                cents = nearly.vector_to_array(index.pq.centroids).astype("<f4").tobytes()
                at = payload.index(struct.pack("<Q", len(cents) // 4) + cents) + 8 + len(cents)
                assert payload[at:at + 8] == bytes(8)
                payload = payload[:at] + payload[at + 8:]
            old = nearly.deserialize_index(np.frombuffer(reseal(payload[:-tail], 6), np.uint8))
            assert old.do_polysemous_training is False
            if isinstance(index, nearly.IndexIVFPQ):
                assert old.polysemous_ht == 0
            else:
                assert (old.search_type, old.polysemous_ht) == (nearly.IndexPQ.ST_PQ, M * 8 + 1)
            # corrupt settings are refused
            bad = bytearray(payload)
            bad[-tail:-tail + 4] = struct.pack("<i", -5)
            with pytest.raises(nearly.IndexFileError):
                nearly.deserialize_index(np.frombuffer(reseal(bytes(bad), 7), np.uint8))
    finally:
        pq_index.search_type = nearly.IndexPQ.ST_PQ
        ivfpq.polysemous_ht = 0


@pytest.mark.parametrize("desc, poly", [("PQ8", True), ("PQ8np", False), ("PQ8x6", True), ("IVF16,PQ8", True),
                                        ("IVF16,PQ8x8np", False), ("IVF16,PQ8x4fs", None)])
def test_factory_trains_polysemous_unless_np(desc, poly):
    index = nearly.index_factory(D, desc)
    if poly is None:
        with pytest.raises(RuntimeError):
            index.do_polysemous_training = True
    else:
        assert index.do_polysemous_training is poly


def test_parameter_space_ht(pq_index, ivfpq):
    ps = nearly.ParameterSpace()
    ps.set_index_parameter(pq_index, "ht", 30)
    assert (pq_index.search_type, pq_index.polysemous_ht) == (nearly.IndexPQ.ST_polysemous, 30)
    ps.set_index_parameter(pq_index, "ht", 64)
    assert pq_index.search_type == nearly.IndexPQ.ST_PQ
    ps.set_index_parameter(ivfpq, "ht", 22)
    assert ivfpq.polysemous_ht == 22
    ps.set_index_parameter(ivfpq, "ht", 64)
    assert ivfpq.polysemous_ht == 0
    ps.initialize(ivfpq)
    cs = ivfpq.pq.code_size  # faiss's rule: thresholds for code sizes that are multiples of 4
    want = ([float(v) for v in range(2, cs * 4 + 1, 2)] if cs % 4 == 0 else []) + [float(cs * 8)]
    assert [pr.values for pr in ps.parameter_ranges if pr.name == "ht"][0] == want


def test_verbose_training_reports_each_subquantizer(data, capfd):
    xb, _ = data
    pq = nearly.ProductQuantizer(D, 4, 8)
    pq.train(xb)
    pt = quick(nearly.PolysemousTraining(), 2000)
    pt.verbose = 2
    pt.optimize_pq_for_hamming(pq, xb)
    out = capfd.readouterr().out
    assert out.count("polysemous training, subquantizer") == 4 and "annealing run 0" in out


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name != "posix", reason="needs POSIX signals")
def test_ctrl_c_interrupts_polysemous_training(data):
    xb, _ = data
    index = nearly.IndexPQ(D, 16, 8)
    index.do_polysemous_training = True
    index.polysemous_training.n_iter = 2_000_000_000  # hours uninterrupted
    index.pq.cp.niter = 2
    elapsed = seconds_until_interrupted(lambda: index.train(xb))
    assert elapsed < 5, f"the interrupt took {elapsed:.1f}s to land"
    assert not index.is_trained
    index.polysemous_training.n_iter = 1000
    index.train(xb)
    assert index.is_trained
