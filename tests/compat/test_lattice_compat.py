"""The Z^n sphere codecs and IndexLattice beside faiss-cpu: the same atoms,
the same numbers for every sphere point, the same codes for the same
vectors, byte-equal IndexLattice codes and the same decoded vectors and
search results."""
import numpy as np
import pytest

import nearly
from _hnswutil import real_data

faiss = pytest.importorskip("faiss")

SPHERES = [(1, 4), (2, 5), (3, 9), (5, 0), (8, 5), (12, 7), (16, 6), (24, 14), (32, 10), (32, 20)]


def f_decode(codec, code, dim):
    c = np.zeros(dim, dtype="float32")
    codec.decode(int(code), faiss.swig_ptr(c))
    return c


def n_decode(codec, code, dim):
    c = np.zeros(dim, dtype="float32")
    codec.decode(int(code), nearly.swig_ptr(c))
    return c


def codes_to_check(nv, rng, most=3000):
    """Every code of a small codec, else the first and last ones and a sample."""
    if nv <= most:
        return np.arange(nv, dtype=np.uint64)
    sample = rng.integers(0, nv, size=most, dtype=np.uint64)
    return np.concatenate([np.arange(50, dtype=np.uint64), np.uint64(nv) - 1 - np.arange(50, dtype=np.uint64), sample])


@pytest.mark.parametrize("dim,r2", SPHERES)
def test_atoms_and_numbering_equal_faiss(dim, r2, rng):
    ref, ours = faiss.ZnSphereCodec(dim, r2), nearly.ZnSphereCodec(dim, r2)
    assert ours.natom == ref.natom
    np.testing.assert_array_equal(ours.voc, faiss.vector_to_array(ref.voc))
    assert ours.nv == ref.nv and ours.code_size == ref.code_size
    codes = codes_to_check(ref.nv, rng)
    mine = np.empty((len(codes), dim), dtype="float32")
    ours.decode_multi(len(codes), nearly.swig_ptr(codes), nearly.swig_ptr(mine))
    for code, c in zip(codes, mine):
        np.testing.assert_array_equal(c, f_decode(ref, code, dim))
        assert float(c @ c) == r2
    # every point is numbered back to itself
    back = np.empty(len(codes), dtype=np.uint64)
    ours.encode_multi(len(codes), nearly.swig_ptr(mine), nearly.swig_ptr(back))
    np.testing.assert_array_equal(back, codes)


# faiss's Rec codec fails to build at dim 1 (its decode cache level is -1);
# tests/test_lattice.py checks nearly's there.
@pytest.mark.parametrize("dim,r2", [(d, r) for d, r in SPHERES if d & (d - 1) == 0 and d > 1])
def test_rec_numbering_equals_faiss(dim, r2, rng):
    ref, ours = faiss.ZnSphereCodecRec(dim, r2), nearly.ZnSphereCodecRec(dim, r2)
    assert ours.nv == ref.nv == nearly.ZnSphereCodec(dim, r2).nv
    assert ours.log2_dim == ref.log2_dim and ours.code_size == ref.code_size
    for ld in range(ours.log2_dim + 1):
        for r in range(r2 + 1):
            assert ours.get_nv(ld, r) == ref.get_nv(ld, r)
    for code in codes_to_check(ref.nv, rng, most=1500):
        c = n_decode(ours, code, dim)
        np.testing.assert_array_equal(c, f_decode(ref, code, dim))
        assert ours.encode_centroid(nearly.swig_ptr(c)) == code


def assert_codes_match(ours_codes, ref_codes, dp_ours, dp_ref):
    """Equal codes, but for near ties of the search's inner products (the
    two libraries sum them in different orders)."""
    differ = ours_codes != ref_codes
    assert differ.mean() <= 0.002
    np.testing.assert_allclose(dp_ours[differ], dp_ref[differ], rtol=1e-5)


@pytest.mark.parametrize("cls", ["ZnSphereCodec", "ZnSphereCodecAlt"])
@pytest.mark.parametrize("dim,r2", [(3, 9), (8, 5), (12, 7), (24, 14), (32, 14), (32, 20)])
def test_encode_equals_faiss(cls, dim, r2, rng):
    ref, ours = getattr(faiss, cls)(dim, r2), getattr(nearly, cls)(dim, r2)
    assert ours.nv == ref.nv
    x = rng.standard_normal((2000, dim)).astype("float32")
    x[:20] = np.round(x[:20] * 2)  # integer vectors: exact inner products, ties broken alike
    mine, theirs = np.empty(len(x), dtype=np.uint64), np.empty(len(x), dtype=np.uint64)
    ours.encode_multi(len(x), nearly.swig_ptr(x), nearly.swig_ptr(mine))
    ref.encode_multi(len(x), faiss.swig_ptr(x), faiss.swig_ptr(theirs))
    c = np.zeros(dim, dtype="float32")
    dp_ours = np.array([ours.search(nearly.swig_ptr(v), nearly.swig_ptr(c)) for v in x])
    dp_ref = np.array([ref.search(faiss.swig_ptr(v), faiss.swig_ptr(c)) for v in x])
    assert_codes_match(mine, theirs, dp_ours, dp_ref)
    np.testing.assert_array_equal(mine[:20], theirs[:20])
    # the decoded point is the closest direction: no sphere point beats it
    dec = np.empty_like(x)
    ours.decode_multi(len(x), nearly.swig_ptr(mine), nearly.swig_ptr(dec))
    np.testing.assert_allclose((dec * x).sum(1), dp_ours, rtol=1e-5, atol=1e-5)


def test_repeats_equal_faiss(rng):
    for _ in range(300):
        dim = int(rng.integers(1, 40))
        vals = np.floor(rng.random(dim) ** 5 * int(rng.integers(1, 5))).astype("float32")
        ref, ours = faiss.Repeats(dim, faiss.swig_ptr(vals)), nearly.Repeats(dim, nearly.swig_ptr(vals))
        assert ours.count() == ref.count()
        assert [(r.val, r.n) for r in ours.repeats] == [(ref.repeats.at(i).val, ref.repeats.at(i).n)
                                                       for i in range(ref.repeats.size())]
        perm = vals[rng.permutation(dim)].copy()
        code = ours.encode(nearly.swig_ptr(perm))
        assert code == ref.encode(faiss.swig_ptr(perm))
        back = np.zeros(dim, dtype="float32")
        ours.decode(code, nearly.swig_ptr(back))
        np.testing.assert_array_equal(back, perm)


def lattice_pair(spec, d, xt):
    ref, ours = faiss.index_factory(d, spec), nearly.index_factory(d, spec)
    assert isinstance(ours, nearly.IndexLattice)
    ref.train(xt)
    ours.train(xt)
    return ref, ours


@pytest.mark.parametrize("spec", ["ZnLattice3x10_4", "ZnLattice3x20_4", "ZnLattice3x12_1", "ZnLattice3x12_7",
                                  "ZnLattice4x9_5"])
def test_index_lattice_codes_equal_faiss(spec, rng):
    d = 96
    xt = rng.standard_normal((2000, d)).astype("float32")
    x = rng.standard_normal((1000, d)).astype("float32")
    ref, ours = lattice_pair(spec, d, xt)
    assert (ours.nsq, ours.dsq, ours.scale_nbit, ours.lattice_nbit, ours.code_size, ours.sa_code_size()) == (
        ref.nsq, ref.dsq, ref.scale_nbit, ref.lattice_nbit, ref.code_size, ref.sa_code_size())
    np.testing.assert_allclose(ours.trained, faiss.vector_to_array(ref.trained), rtol=1e-6)
    mine, theirs = ours.sa_encode(x), ref.sa_encode(x)
    assert (mine != theirs).any(axis=1).mean() <= 0.01  # a norm on a level's edge, or a near tie
    np.testing.assert_array_equal(ours.sa_decode(theirs), ref.sa_decode(theirs))
    ours.add(x)
    ref.add(x)
    xq = rng.standard_normal((20, d)).astype("float32")
    D, I = ours.search(xq, 10)
    Dr, Ir = ref.search(xq, 10)
    np.testing.assert_allclose(D, Dr, rtol=1e-4)
    assert (I == Ir).mean() > 0.95
    radius = float(np.median(Dr[:, 5]))  # about 5 results a query
    lims, RD, RI = ours.range_search(xq, radius)
    lims_r, RD_r, RI_r = ref.range_search(xq, radius)
    for q in range(len(xq)):
        mine = dict(zip(RI[lims[q]:lims[q + 1]], RD[lims[q]:lims[q + 1]]))
        theirs = dict(zip(RI_r[lims_r[q]:lims_r[q + 1]], RD_r[lims_r[q]:lims_r[q + 1]]))
        # a distance within rounding of the radius may fall on either side
        assert set(mine) ^ set(theirs) <= {i for i, v in {**mine, **theirs}.items() if abs(v - radius) < 1e-3}
        for i in set(mine) & set(theirs):
            assert mine[i] == pytest.approx(theirs[i], rel=1e-4)


def test_index_lattice_on_real_embeddings():
    """Reconstruction error on the MiniLM embeddings: equal to faiss's, and
    falling with the sphere's radius as it should."""
    base, _ = real_data()
    xt, x = base[:5000], base[5000:7000]
    d = x.shape[1]
    errs = []
    for spec in ("ZnLattice12x10_4", "ZnLattice12x20_4"):
        ref, ours = lattice_pair(spec, d, xt)
        rec_ours = ours.sa_decode(ours.sa_encode(x))
        rec_ref = ref.sa_decode(ref.sa_encode(x))
        e_ours, e_ref = ((x - rec_ours) ** 2).sum(), ((x - rec_ref) ** 2).sum()
        assert e_ours == pytest.approx(e_ref, rel=1e-3)
        errs.append(e_ours)
    assert errs[1] < errs[0] < 0.5 * len(x)  # unit-norm vectors: an error well below the norm


def test_faiss_lattice_index_test_runs_unchanged(rng):
    """faiss's LatticeTest.test_lattice_index, on nearly."""
    index = nearly.index_factory(96, "ZnLattice3x10_4")
    xq = rng.standard_normal((10, 96)).astype("float32")
    xb = rng.standard_normal((20, 96)).astype("float32")
    index.train(xb)
    index.add(xb)
    D, I = index.search(xq, 5)
    for i in range(10):
        recons = index.reconstruct_batch(I[i, :])
        np.testing.assert_allclose(D[i, :], ((recons - xq[i]) ** 2).sum(1), atol=1e-4)
