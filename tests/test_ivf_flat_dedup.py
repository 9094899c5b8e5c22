"""IndexIVFFlatDedup: IVF-Flat storing each distinct vector once. Checked
against numpy brute force over every vector added (copies included), against
IndexIVFFlat holding all of them (the same lists probed), against faiss-cpu's
IndexIVFFlatDedup, and through removal, merging, persistence and bad input."""
import numpy as np
import pytest

import nearly
from _testutil import (assert_knn_equiv, assert_knn_valid, assert_range_equiv, blobs, range_ref, range_to_dicts,
                       tolerance)

D, NLIST = 16, 16


def with_copies(rng, n):
    """n vectors of which about 40% are copies of others (some many times)."""
    x = blobs(rng, n, D, centers=30)
    src = rng.integers(0, n // 2, size=int(n * 0.4))
    dst = rng.choice(np.arange(n // 2, n), size=len(src), replace=False)
    x[dst] = x[src]
    x[n - 5:] = x[0]  # one vector six times
    return x


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    xb = with_copies(rng, 3000)
    xq = np.vstack([blobs(rng, 30, D, centers=30), xb[:10]])  # queries that are stored vectors too
    return xb, xq


def _pair(xb, metric=nearly.METRIC_L2, nprobe=4):
    """A Dedup index and an IVFFlat over the same trained quantizer, both holding xb."""
    q = nearly.IndexFlatL2(D) if metric == nearly.METRIC_L2 else nearly.IndexFlatIP(D)
    dedup = nearly.IndexIVFFlatDedup(q, D, NLIST, metric)
    dedup.train(xb)
    ref = nearly.IndexIVFFlat(q, D, NLIST, metric)
    assert ref.is_trained
    for index in (dedup, ref):
        index.nprobe = nprobe
        index.add(xb)
    return dedup, ref


def _distinct(x):
    return len(np.unique(x.view(np.uint8).reshape(len(x), -1), axis=0))


@pytest.mark.parametrize("metric", [nearly.METRIC_L2, nearly.METRIC_INNER_PRODUCT])
def test_every_list_is_exact_search(data, metric):
    xb, xq = data
    dedup, _ = _pair(xb, metric, nprobe=NLIST)
    assert dedup.ntotal == len(xb)
    stored = sum(dedup.invlists.list_size(l) for l in range(NLIST))
    assert stored == _distinct(xb) < len(xb)
    assert len(dedup._instances()) == len(xb) - stored
    for k in (1, 10, 40):
        D_, I_ = dedup.search(xq, k)
        assert_knn_valid(D_, I_, xq, xb, k, metric)


@pytest.mark.parametrize("metric", [nearly.METRIC_L2, nearly.METRIC_INNER_PRODUCT])
def test_same_results_as_ivf_flat(data, metric):
    xb, xq = data
    dedup, ref = _pair(xb, metric)
    atol = tolerance(xq, xb, metric)
    for k in (5, 20):
        Dr, Ir = ref.search(xq, k)
        Dd, Id = dedup.search(xq, k)
        assert_knn_equiv(Dd, Id, Dr, Ir, atol)
        # the stored vectors queried find themselves and all their copies first
        for q in range(30, 40):
            copies = np.flatnonzero((xb == xq[q]).all(1))
            if len(copies) <= k and metric == nearly.METRIC_L2:
                assert set(Id[q, :len(copies)]) == set(copies)


def test_faiss_dedup_gives_the_same(data, faiss):
    xb, xq = data
    dedup, _ = _pair(xb)
    fq = faiss.IndexFlatL2(D)
    fq.add(dedup.quantizer.reconstruct_n(0, NLIST))
    fd = faiss.IndexIVFFlatDedup(fq, D, NLIST)
    assert fd.is_trained
    fd.add(xb)
    fd.nprobe = dedup.nprobe
    Df, If = fd.search(xq, 20)
    Dd, Id = dedup.search(xq, 20)
    assert_knn_equiv(Dd, Id, Df, If, tolerance(xq, xb, nearly.METRIC_L2))
    assert type(nearly.index_factory(D, f"IVF{NLIST},FlatDedup")).__name__ == "IndexIVFFlatDedup"


def test_copies_found_across_batches_and_within_one(rng):
    x = blobs(rng, 200, D)
    dedup, _ = _pair(x)  # ids 0 .. 199
    dedup.add(x)  # ids 200 .. 399: all copies
    again = np.vstack([x[:50], x[:50], x[10:12]])  # ids 400 .. 501, copies within the batch too
    dedup.add(again)
    assert dedup.ntotal == 502
    assert sum(dedup.invlists.list_size(l) for l in range(NLIST)) == 200
    pairs = dedup._instances()
    assert len(pairs) == 302
    assert list(pairs[pairs[:, 0] == 0, 1]) == [200, 400, 450]  # in the order they came
    D_, I_ = dedup.search(x[:1], 6)
    assert set(I_[0, :4]) == {0, 200, 400, 450} and np.all(D_[0, :4] == 0)


def test_every_way_in_deduplicates(rng):
    x = blobs(rng, 300, D)
    dedup, _ = _pair(x[:150])
    ids = np.arange(1000, 1150)
    dedup.add_with_ids(x[:150], ids)
    lists = dedup.quantizer.assign(x[:150], 1).ravel()
    dedup.add_preassigned(x[:150], lists, ids + 1000)
    dedup.add_sa_codes(dedup.sa_encode(x[:150]), ids + 2000)
    assert dedup.ntotal == 600
    assert sum(dedup.invlists.list_size(l) for l in range(NLIST)) == 150
    D_, I_ = dedup.search(x[7:8], 4)
    assert set(I_[0]) == {7, 1007, 2007, 3007}


def test_filtered_search_tests_each_copy(data):
    """A selector keeping a copy but not the stored vector (or the other way
    round) gives IndexIVFFlat's filtered results (faiss tests only the stored id)."""
    xb, xq = data
    dedup, ref = _pair(xb)
    atol = tolerance(xq, xb, nearly.METRIC_L2)
    for sel in (nearly.IDSelectorRange(len(xb) // 2, len(xb)),  # the later copies, not the stored ones
                nearly.IDSelectorRange(0, len(xb) // 2),
                nearly.IDSelectorBatch(np.arange(0, len(xb), 3))):
        params = nearly.SearchParametersIVF(sel=sel, nprobe=4)
        Dr, Ir = ref.search(xq, 10, params=params)
        Dd, Id = dedup.search(xq, 10, params=params)
        assert_knn_equiv(Dd, Id, Dr, Ir, atol)
        radius = float(np.median(Dr[:, 5]))
        got = range_to_dicts(*dedup.range_search(xq, radius, params=params))
        want = range_to_dicts(*ref.range_search(xq, radius, params=params))
        assert sum(map(len, want)) > 100
        assert_range_equiv(got, want, atol, radius)


@pytest.mark.parametrize("metric", [nearly.METRIC_L2, nearly.METRIC_INNER_PRODUCT])
def test_range_search_returns_the_copies(data, metric):
    xb, xq = data
    dedup, _ = _pair(xb, metric, nprobe=NLIST)
    radius = float(np.median(dedup.search(xq, 8)[0][:, 7]))
    lims, Dd, Id = dedup.range_search(xq, radius)
    atol = tolerance(xq, xb, metric)
    assert_range_equiv(range_to_dicts(lims, Dd, Id), range_ref(xq, xb, radius, metric), atol, radius)


def test_remove_ids(data):
    xb, xq = data
    dedup, ref = _pair(xb)
    pairs = dedup._instances()
    stored_with_copies = np.unique(pairs[:, 0])
    # stored entries whose copies stay, copies whose stored entry stays, and both
    gone = np.unique(np.concatenate([stored_with_copies[::2], pairs[1::3, 1], np.arange(0, len(xb), 7)]))
    sel = nearly.IDSelectorBatch(gone)
    assert dedup.remove_ids(sel) == ref.remove_ids(sel) == len(gone)
    assert dedup.ntotal == ref.ntotal == len(xb) - len(gone)
    assert_knn_equiv(*dedup.search(xq, 20), *ref.search(xq, 20), tolerance(xq, xb, nearly.METRIC_L2))
    left = np.setdiff1d(np.arange(len(xb)), gone)
    dedup.nprobe = NLIST
    assert_knn_valid(*dedup.search(xq, 20), xq, xb[left], 20, nearly.METRIC_L2, ids=left)
    assert dedup.remove_ids(nearly.IDSelectorBatch(left)) == len(left)
    assert dedup.ntotal == 0 and len(dedup._instances()) == 0


def test_merge_from_carries_the_copies(data):
    xb, xq = data
    half = len(xb) // 2
    a, ref = _pair(xb[:half])
    b = nearly.IndexIVFFlatDedup(a.quantizer, D, NLIST)
    b.add(xb[half:])
    a.merge_from(b, half)
    ref.add(xb[half:])
    assert a.ntotal == ref.ntotal == len(xb) and b.ntotal == 0 and len(b._instances()) == 0
    assert_knn_equiv(*a.search(xq, 20), *ref.search(xq, 20), tolerance(xq, xb, nearly.METRIC_L2))


def test_persistence(data, tmp_path):
    xb, xq = data
    dedup, _ = _pair(xb)
    path = str(tmp_path / "dedup.index")
    nearly.write_index(dedup, path)
    for back in (nearly.read_index(path), nearly.deserialize_index(nearly.serialize_index(dedup)),
                 nearly.clone_index(dedup)):
        assert type(back).__name__ == "IndexIVFFlatDedup" and back.ntotal == dedup.ntotal
        np.testing.assert_array_equal(back._instances(), dedup._instances())
        back.nprobe = dedup.nprobe
        np.testing.assert_array_equal(back.search(xq, 20)[1], dedup.search(xq, 20)[1])
    blob = nearly.serialize_index(dedup)
    for cut in (len(blob) // 3, len(blob) - 9):
        with pytest.raises(RuntimeError):
            nearly.deserialize_index(blob[:cut])


def test_train_uses_the_distinct_vectors(rng, capfd):
    x = blobs(rng, 500, D)
    x[250:] = x[:250]
    index = nearly.IndexIVFFlatDedup(nearly.IndexFlatL2(D), D, NLIST)
    index.verbose = True
    index.train(x)
    assert "train on 250 points after dedup (was 500 points)" in capfd.readouterr().out


def test_refused_and_bad_input(data):
    xb, xq = data
    untrained = nearly.IndexIVFFlatDedup(nearly.IndexFlatL2(D), D, NLIST)
    with pytest.raises(RuntimeError, match="trained"):
        untrained.add(xb)
    dedup, ref = _pair(xb)
    for call in (lambda: dedup.make_direct_map(), lambda: dedup.reconstruct_n(0, 5),
                 lambda: dedup.search_and_reconstruct(xq, 3),
                 lambda: dedup.copy_subset_to(nearly.IndexIVFFlatDedup(dedup.quantizer, D, NLIST), 0, 0, 100)):
        with pytest.raises(RuntimeError, match="IndexIVFFlatDedup"):
            call()
    with pytest.raises(RuntimeError):
        dedup.reconstruct(0)  # no direct map
    bad = xq.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        dedup.search(bad, 5)
    with pytest.raises(ValueError):
        dedup.add(bad)
    with pytest.raises((ValueError, AssertionError)):
        dedup.search(xq, 0)
    with pytest.raises((ValueError, AssertionError)):
        dedup.search(xq[:, :5], 3)
    with pytest.raises(RuntimeError):
        nearly.IndexIVFFlatDedup(nearly.IndexFlatL2(D), D, NLIST, nearly.METRIC_L1)
    with pytest.raises(RuntimeError, match="own_invlists"):
        nearly.IndexIVFFlatDedup(nearly.IndexFlatL2(D), D, NLIST, nearly.METRIC_L2, False)
