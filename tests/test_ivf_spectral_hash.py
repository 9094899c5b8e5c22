"""IndexIVFSpectralHash against numpy references: the thresholds (the
centroids' transforms, the lists' medians), the bits (the parity of
floor((y - c) * 2 / period)), exhaustive Hamming search over the probed
lists, range search, selectors; then persistence, the settings that are
fixed once codes are stored, and bad input."""
import io
import threading

import numpy as np
import pytest

import nearly
from _testutil import clustered

SH = nearly.IndexIVFSpectralHash
D, NLIST = 24, 8


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    xb = clustered(rng, 3000, D, nclusters=NLIST)
    xq = clustered(rng, 40, D, nclusters=NLIST)
    return xb[:1500], xb, xq


def built(xt, xb, nbit=40, period=1.5, tt=SH.Thresh_global, nprobe=3):
    index = SH(nearly.IndexFlatL2(D), D, NLIST, nbit, period)
    index.threshold_type = tt
    index.nprobe = nprobe
    index.train(xt)
    index.add(xb)
    return index


def bits_ref(y, c, period):
    """The scalar definition: bit j = floor((y_j - c_j) * 2 / period) mod 2, packed little-endian."""
    freq = np.float32(2.0 / period)
    f = np.floor((y - c).astype(np.float32) * freq)
    return np.packbits((f.astype(np.int64) & 1).astype(np.uint8), axis=1, bitorder="little")


def thresholds_ref(index, xt):
    nbit, tt = index.nbit, index.threshold_type
    centroids = index.quantizer.reconstruct_n(0, NLIST)
    if tt == SH.Thresh_global:
        return np.zeros((NLIST, nbit), np.float32)
    if tt in (SH.Thresh_centroid, SH.Thresh_centroid_half):
        t = index.vt.apply(centroids)
        return t - (0.25 * index.period if tt == SH.Thresh_centroid_half else 0)
    assign = index.quantizer.assign(xt, 1).ravel()
    y = index.vt.apply(xt)
    return np.array([np.median(y[assign == l], axis=0) if (assign == l).any() else np.zeros(nbit)
                     for l in range(NLIST)], np.float32)


def hamming(a, b):
    return np.unpackbits(a[:, None, :] ^ b[None, :, :], axis=2).sum(2)


@pytest.mark.parametrize("tt", [SH.Thresh_global, SH.Thresh_centroid, SH.Thresh_centroid_half, SH.Thresh_median])
@pytest.mark.parametrize("nbit,period", [(40, 1.5), (64, -1e10), (7, 0.3)])
def test_against_numpy(data, tt, nbit, period):
    xt, xb, xq = data
    index = built(xt, xb, nbit, period, tt)
    thr = thresholds_ref(index, xt)
    if tt != SH.Thresh_global:
        np.testing.assert_allclose(index.trained.reshape(NLIST, nbit), thr, rtol=1e-5, atol=1e-5)
    thr = index.trained.reshape(NLIST, nbit) if tt != SH.Thresh_global else thr
    # codes: the bits of each vector against its list's thresholds
    lists = index.quantizer.assign(xb, 1).ravel()
    y = index.vt.apply(xb)
    codes = bits_ref(y, thr[lists], period)
    np.testing.assert_array_equal(index.sa_encode(xb)[:, 1:], codes)  # byte 0: the list number
    # search: the exhaustive Hamming top k over the probed lists, the query's
    # bits taken against each list's thresholds
    k = 12
    Dn, In = index.search(xq, k)
    probes = index.quantizer.search(xq, index.nprobe)[1]
    yq = index.vt.apply(xq)
    for i in range(len(xq)):
        cand, dist = [], []
        for l in probes[i]:
            members = np.flatnonzero(lists == l)
            qcode = bits_ref(yq[i:i + 1], thr[l:l + 1], period)
            cand.append(members)
            dist.append(hamming(qcode, codes[members])[0])
        cand, dist = np.concatenate(cand), np.concatenate(dist)
        ref = np.sort(dist)[:k]
        np.testing.assert_array_equal(Dn[i], ref.astype(np.float32))
        by_id = dict(zip(cand.tolist(), dist.tolist()))
        assert all(by_id[j] == dd for j, dd in zip(In[i], Dn[i]))


def test_range_search_and_selector(data):
    xt, xb, xq = data
    index = built(xt, xb, nprobe=NLIST)
    k = 20
    Dk, Ik = index.search(xq, k)
    radius = float(np.median(Dk[:, 5]))
    lims, Dr, Ir = index.range_search(xq, radius)
    full_D, full_I = index.search(xq, len(xb))
    for i in range(len(xq)):
        want = set(full_I[i][full_D[i] < radius].tolist())
        assert set(Ir[lims[i]:lims[i + 1]].tolist()) == want
        assert (Dr[lims[i]:lims[i + 1]] < radius).all()
    # a selector keeps the even ids: the same distances as the full ranking filtered
    sel = nearly.IDSelectorBatch(np.arange(0, len(xb), 2))
    Ds, Is = index.search(xq, k, params=nearly.SearchParametersIVF(sel=sel, nprobe=NLIST))
    assert (Is % 2 == 0).all()
    for i in range(len(xq)):
        even = full_D[i][full_I[i] % 2 == 0][:k]
        np.testing.assert_array_equal(Ds[i], even)


def test_codes_cannot_be_decoded(data):
    xt, xb, _ = data
    index = built(xt, xb[:100])
    index.make_direct_map()
    with pytest.raises(RuntimeError, match="cannot be decoded"):
        index.reconstruct(3)
    with pytest.raises(RuntimeError, match="cannot be decoded"):
        index.sa_decode(index.sa_encode(xb[:2]))


@pytest.mark.parametrize("tt", [SH.Thresh_global, SH.Thresh_centroid_half, SH.Thresh_median])
def test_persistence(data, tmp_path, tt):
    xt, xb, xq = data
    index = built(xt, xb, tt=tt)
    D0, I0 = index.search(xq, 10)
    path = str(tmp_path / "sh.index")
    nearly.write_index(index, path)
    back = nearly.read_index(path)
    assert type(back) is SH
    assert (back.nbit, back.period, back.threshold_type, back.nprobe) == (index.nbit, index.period, tt, 3)
    np.testing.assert_array_equal(back.trained, index.trained)
    D1, I1 = back.search(xq, 10)
    np.testing.assert_array_equal(D0, D1)
    np.testing.assert_array_equal(I0, I1)
    blob = nearly.serialize_index(index)
    for cut in (len(blob) // 3, len(blob) - 5):
        with pytest.raises(nearly.IndexFileError):
            nearly.deserialize_index(blob[:cut])


def test_persistence_untrained_and_itq(data):
    xt, xb, xq = data
    fresh = SH(nearly.IndexFlatL2(D), D, NLIST, 16, 2.0)
    back = nearly.deserialize_index(nearly.serialize_index(fresh))
    assert not back.is_trained and back.ntotal == 0
    back.train(xt)
    back.add(xb)
    index = nearly.index_factory(D, "IVF8,ITQ16,SH0.7m")
    index.train(xt)
    index.add(xb)
    again = nearly.deserialize_index(nearly.serialize_index(index))
    assert isinstance(again.vt, nearly.ITQTransform)
    np.testing.assert_array_equal(again.search(xq, 5)[0], index.search(xq, 5)[0])


def test_settings_fixed_once_codes_are_stored(data):
    xt, xb, _ = data
    index = built(xt, xb[:200], tt=SH.Thresh_centroid)
    for change in (lambda: setattr(index, "period", 3.0),
                   lambda: setattr(index, "threshold_type", SH.Thresh_median),
                   lambda: index.replace_vt(nearly.RandomRotationMatrix(D, 40))):
        with pytest.raises(ValueError, match="reset"):
            change()
    index.reset()
    index.threshold_type = SH.Thresh_median  # needs learning again
    assert not index.is_trained
    with pytest.raises(RuntimeError, match="trained"):
        index.add(xb[:10])
    index.train(xt)
    assert index.is_trained and index.trained.size == NLIST * 40
    index.threshold_type = SH.Thresh_centroid_half  # derived from the centroids at once
    assert index.is_trained
    half = index.trained.copy()
    index.period = 3.0
    np.testing.assert_allclose(index.trained, half + 0.25 * 1.5 - 0.25 * 3.0, atol=1e-5)
    # replace_vt: back to global thresholds; trained since the rotation is
    rr = nearly.RandomRotationMatrix(D, 40)
    rr.init(7)
    index.replace_vt(rr)
    assert index.threshold_type == SH.Thresh_global and index.is_trained and index.vt is not None


def test_quantizer_swap_and_permutation(data):
    xt, xb, xq = data
    index = built(xt, xb, tt=SH.Thresh_median, nprobe=NLIST)
    D0, I0 = index.search(xq, 10)
    # the lists permuted with the quantizer, as contrib's permute_invlists
    # does: the medians follow their lists, the results stay
    perm = np.random.default_rng(1).permutation(NLIST)
    index.quantizer.permute_entries(perm)
    index.invlists.permute_invlists(perm)
    D1, I1 = index.search(xq, 10)
    np.testing.assert_array_equal(D0, D1)
    # centroid thresholds: codes mean something only with these centroids
    cent = built(xt, xb, tt=SH.Thresh_centroid)
    other = nearly.IndexFlatL2(D)
    other.add(cent.quantizer.reconstruct_n(0, NLIST) + 0.5)
    with pytest.raises(ValueError, match="relative to its centroids"):
        cent.quantizer = other
    same = nearly.IndexHNSWFlat(D, 16)
    same.add(cent.quantizer.reconstruct_n(0, NLIST))
    before = cent.search(xq, 10)[0]
    cent.quantizer = same
    np.testing.assert_array_equal(cent.search(xq, 10)[0], before)


def test_searches_while_adding(data):
    xt, xb, xq = data
    index = built(xt, xb[:500])
    errors = []

    def search():
        try:
            for _ in range(30):
                D, I = index.search(xq, 5)
                assert ((I >= -1) & (I < len(xb))).all()
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=search) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(500, len(xb), 250):
        index.add(xb[i:i + 250])
    for t in threads:
        t.join()
    assert not errors and index.ntotal == len(xb)


def test_bad_input(data):
    xt, xb, xq = data
    q = nearly.IndexFlatL2(D)
    for nbit in (0, -3):
        with pytest.raises(ValueError, match="nbit"):
            SH(q, D, NLIST, nbit, 1.0)
    for period in (0.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="period"):
            SH(q, D, NLIST, 16, period)
    with pytest.raises(ValueError, match="nlist"):
        SH(q, D, 0, 16, 1.0)
    index = SH(q, D, NLIST, 16, 1.0)
    with pytest.raises(ValueError, match="threshold_type"):
        index.threshold_type = 4
    with pytest.raises(ValueError, match="period"):
        index.period = 0.0
    with pytest.raises(ValueError, match="maps"):
        index.replace_vt(nearly.RandomRotationMatrix(D, 8))
    with pytest.raises(ValueError, match="IndexLSH"):
        index.replace_vt(nearly.IndexPreTransform(nearly.RandomRotationMatrix(D, 16), nearly.IndexFlatL2(16)))
    with pytest.raises(ValueError, match="nbits"):
        index.replace_vt(nearly.index_factory(D, "ITQ8,LSH"))
    with pytest.raises(RuntimeError, match="trained"):
        index.add(xb[:5])
    with pytest.raises(RuntimeError):
        index.search(xq, 3)
    index.train(xt)
    index.add(xb)
    bad = xq.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        index.search(bad, 3)
    with pytest.raises(ValueError):
        index.search(xq[:, :5], 3)
    with pytest.raises(ValueError):
        index.search(xq, 0)
    with pytest.raises(ValueError, match="inner product|L2"):
        nearly.index_factory(D, "IVF8,ITQ16,SH", nearly.METRIC_INNER_PRODUCT)


def test_merge(data):
    xt, xb, xq = data
    whole = built(xt, xb, tt=SH.Thresh_median, nprobe=4)
    empty = nearly.serialize_index(built(xt, xb[:0], tt=SH.Thresh_median, nprobe=4))
    a, b = nearly.deserialize_index(empty), nearly.deserialize_index(empty)
    a.add(xb[:1000])
    b.add(xb[1000:])
    a.merge_from(b, 1000)
    assert a.ntotal == len(xb) and b.ntotal == 0
    for x, y in zip(a.search(xq, 10), whole.search(xq, 10)):
        np.testing.assert_array_equal(x, y)
    other = built(xt, xb[:0], tt=SH.Thresh_centroid, nprobe=4)
    with pytest.raises(RuntimeError, match="trained apart"):
        a.merge_from(other)


def test_quantizer_filled_by_hand(data):
    """faiss's idiom: centroids added to the quantizer, then is_trained = True;
    the centroid thresholds are derived then, the medians need train()."""
    xt, xb, xq = data
    ref = built(xt, xb, tt=SH.Thresh_centroid)
    q = nearly.IndexFlatL2(D)
    index = SH(q, D, NLIST, 40, 1.5)
    index.threshold_type = SH.Thresh_centroid
    q.add(ref.quantizer.reconstruct_n(0, NLIST))
    assert not index.is_trained
    index.is_trained = True
    np.testing.assert_array_equal(index.trained, ref.trained)
    index.add(xb)
    index.nprobe = 3
    np.testing.assert_array_equal(index.search(xq, 10)[0], ref.search(xq, 10)[0])
    q2 = nearly.IndexFlatL2(D)
    median = SH(q2, D, NLIST, 40, 1.5)
    median.threshold_type = SH.Thresh_median
    q2.add(ref.quantizer.reconstruct_n(0, NLIST))
    with pytest.raises(ValueError, match="train"):
        median.is_trained = True
