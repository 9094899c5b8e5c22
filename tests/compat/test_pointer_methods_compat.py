"""faiss's raw SWIG methods (search_c, add_c, range_search_c with a
RangeSearchResult, *_preassigned_c, ...) against faiss-cpu: the same calls
on both libraries, the same outputs; sizes and dtypes checked where faiss
would read or write past an array."""
import numpy as np
import pytest

import nearly
from _hnswutil import real_data

faiss = pytest.importorskip("faiss")


@pytest.fixture(scope="module")
def data():
    base, queries = real_data()
    return np.ascontiguousarray(base[:3000]), np.ascontiguousarray(queries[:30])


def run(lib, key, xb, xq, k=5):
    sp = lib.swig_ptr
    d = xb.shape[1]
    index = lib.index_factory(d, key)
    index.train_c(len(xb), sp(xb))
    if key == "Flat":
        index.add_c(len(xb), sp(xb))
    else:
        ids = np.arange(len(xb), dtype=np.int64) * 2  # held: faiss's swig_ptr keeps no reference
        index.add_with_ids_c(len(xb), sp(xb), sp(ids))
        index.nprobe = 4
    n = len(xq)
    D, I = np.empty((n, k), np.float32), np.empty((n, k), np.int64)
    index.search_c(n, sp(xq), k, sp(D), sp(I))
    res = lib.RangeSearchResult(n)
    radius = float(np.median(D[:, -1]))
    index.range_search_c(n, sp(xq), radius, res)
    lims = lib.rev_swig_ptr(res.lims, n + 1).copy()
    RD = lib.rev_swig_ptr(res.distances, int(lims[-1])).copy()
    RI = lib.rev_swig_ptr(res.labels, int(lims[-1])).copy()
    out = {"D": D, "I": I, "lims": lims, "RD": RD, "RI": RI}
    if key == "Flat":
        labels = np.empty(n * 2, np.int64)
        index.assign_c(n, sp(xq), sp(labels), 2)
        out["assign"] = labels
        r = np.empty(d, np.float32)
        index2 = lib.IndexFlatL2(d)
        index2.add_c(len(xb), sp(xb))
        index2.reconstruct_c(7, sp(r))
        rn = np.empty((3, d), np.float32)
        index2.reconstruct_n_c(10, 3, sp(rn))
        out["recons"], out["recons_n"] = r, rn
    else:
        q = index.quantizer
        Dq, Iq = q.search(xq, index.nprobe)
        D2, I2 = np.empty((n, k), np.float32), np.empty((n, k), np.int64)
        index.search_preassigned_c(n, sp(xq), k, sp(Iq), sp(Dq), sp(D2), sp(I2), False)
        res2 = lib.RangeSearchResult(n)
        index.range_search_preassigned_c(n, sp(xq), radius, sp(Iq), sp(Dq), res2)
        out["pre_D"], out["pre_I"] = D2, I2
        out["pre_lims"] = lib.rev_swig_ptr(res2.lims, n + 1).copy()
        codes = np.empty(n * index.sa_code_size(), np.uint8)
        index.sa_encode_c(n, sp(xq), sp(codes))
        dec = np.empty((n, d), np.float32)
        index.sa_decode_c(n, sp(codes), sp(dec))
        out["sa_codes"], out["sa_dec"] = codes, dec
    return out


@pytest.mark.parametrize("key", ["Flat", "IVF16,Flat"])
def test_like_faiss(data, key):
    xb, xq = data
    ours, theirs = run(nearly, key, xb, xq), run(faiss, key, xb, xq)
    assert ours.keys() == theirs.keys()
    for name in ours:
        a, b = ours[name], theirs[name]
        if name.startswith(("I", "pre_I", "assign", "lims", "pre_lims", "RI", "sa_codes")):
            if name in ("RI",):  # range results come in list order per query
                for i in range(len(ours["lims"]) - 1):
                    s = slice(int(ours["lims"][i]), int(ours["lims"][i + 1]))
                    assert sorted(a[s]) == sorted(b[s])
            elif name == "sa_codes" and key != "Flat":
                continue  # the list number is the same; IVF centroids may differ by k-means roundoff
            else:
                np.testing.assert_array_equal(a, b, err_msg=name)
        elif name == "RD":
            np.testing.assert_allclose(np.sort(a), np.sort(b), rtol=1e-4, atol=1e-5)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=name)


def test_binary_like_faiss(data):
    xb, xq = data
    cb, cq = np.packbits(xb > 0, axis=1), np.packbits(xq > 0, axis=1)
    outs = []
    for lib in (nearly, faiss):
        sp = lib.swig_ptr
        index = lib.IndexBinaryFlat(cb.shape[1] * 8)
        index.add_c(len(cb), sp(cb))
        D, I = np.empty((len(cq), 4), np.int32), np.empty((len(cq), 4), np.int64)
        index.search_c(len(cq), sp(cq), 4, sp(D), sp(I))
        res = lib.RangeSearchResult(len(cq))
        index.range_search_c(len(cq), sp(cq), int(np.median(D[:, -1])), res)
        outs.append((D, I, lib.rev_swig_ptr(res.lims, len(cq) + 1).copy()))
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


def test_bad_input(data):
    xb, xq = data
    sp = nearly.swig_ptr
    index = nearly.IndexFlatL2(xb.shape[1])
    with pytest.raises(ValueError, match="values needed"):  # faiss reads past x
        index.add_c(len(xb) + 1, sp(xb))
    index.add_c(len(xb), sp(xb))
    D, I = np.empty((30, 5), np.float32), np.empty((30, 4), np.int64)
    with pytest.raises(ValueError, match="values needed"):  # faiss writes past I
        index.search_c(30, sp(xq), 5, sp(D), sp(I))
    with pytest.raises(TypeError, match="int64"):
        index.search_c(30, sp(xq), 5, sp(D), sp(np.empty((30, 5), np.int32)))
    with pytest.raises(TypeError, match="float32"):
        index.search_c(30, sp(xq.astype(np.float64)), 5, sp(D), sp(np.empty((30, 5), np.int64)))
    with pytest.raises(TypeError, match="RangeSearchResult"):
        index.range_search_c(30, sp(xq), 1.0, (None, None, None))
    with pytest.raises(ValueError, match="nq must be"):
        nearly.RangeSearchResult(-1)
