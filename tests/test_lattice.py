"""The Z^n sphere codecs and IndexLattice on their own: properties of the
numbering (a bijection onto the sphere's points), persistence, threads and
bad input. tests/compat/test_lattice_compat.py holds the faiss comparisons."""
import itertools

import numpy as np
import pytest

import nearly
from nearly import swig_ptr


def sphere_points(dim, r2):
    """Every point of Z^dim with squared norm r2, by brute force."""
    r = int(np.floor(np.sqrt(r2)))
    pts = [p for p in itertools.product(range(-r, r + 1), repeat=dim) if sum(v * v for v in p) == r2]
    return np.array(pts, dtype="float32").reshape(-1, dim)


@pytest.mark.parametrize("cls", ["ZnSphereCodec", "ZnSphereCodecRec", "ZnSphereCodecAlt"])
@pytest.mark.parametrize("dim,r2", [(1, 4), (2, 5), (4, 3), (4, 9), (3, 6), (8, 2)])
def test_numbering_is_a_bijection_onto_the_sphere(cls, dim, r2):
    if cls == "ZnSphereCodecRec" and dim & (dim - 1):
        pytest.skip("Rec needs a power of 2")
    codec = getattr(nearly, cls)(dim, r2)
    pts = sphere_points(dim, r2)
    assert codec.nv == len(pts)
    dec = np.empty((codec.nv, dim), dtype="float32")
    codes = np.arange(codec.nv, dtype=np.uint64)
    codec.decode_multi(codec.nv, swig_ptr(codes), swig_ptr(dec))
    assert sorted(map(tuple, dec)) == sorted(map(tuple, pts))
    for code, p in zip(codes, dec):
        assert codec.encode(swig_ptr(p)) == code


def test_search_finds_the_closest_direction(rng):
    codec = nearly.ZnSphereCodec(4, 9)
    pts = sphere_points(4, 9)
    for _ in range(200):
        x = rng.standard_normal(4).astype("float32")
        c = np.zeros(4, dtype="float32")
        dp = codec.search(swig_ptr(x), swig_ptr(c))
        assert dp == pytest.approx(float((pts @ x).max()), rel=1e-6)
        assert float(c @ x) == pytest.approx(dp, rel=1e-6)


def test_repeats_roundtrip(rng):
    for _ in range(200):
        dim = int(rng.integers(1, 60))
        vec = np.floor(rng.random(dim) ** 7 * 3).astype("float32")
        vecs = np.sort(vec)
        rep = nearly.Repeats(dim, swig_ptr(vecs))
        code = rep.encode(swig_ptr(vec))
        assert 0 <= code < rep.count()
        back = np.zeros(dim, dtype="float32")
        rep.decode(code, swig_ptr(back))
        np.testing.assert_array_equal(back, vec)


def test_repeats_count_is_the_multinomial():
    vals = np.array([2, 2, 1, 0, 0, 0, 5], dtype="float32")
    assert nearly.Repeats(7, swig_ptr(vals)).count() == 5040 // (2 * 6)


def test_lattice_persistence_and_threads(rng, restore_threads):
    x = rng.standard_normal((3000, 64)).astype("float32")
    index = nearly.index_factory(64, "ZnLattice2x10_6")
    index.train(x)
    nearly.omp_set_num_threads(1)
    one = index.sa_encode(x)
    nearly.omp_set_num_threads(2)
    np.testing.assert_array_equal(index.sa_encode(x), one)
    index.add(x)
    back = nearly.deserialize_index(nearly.serialize_index(index))
    assert isinstance(back, nearly.IndexLattice) and back.ntotal == 3000
    np.testing.assert_array_equal(back.trained, index.trained)
    np.testing.assert_array_equal(back.sa_encode(x[:100]), one[:100])
    np.testing.assert_array_equal(back.search(x[:50], 5)[1], index.search(x[:50], 5)[1])
    empty = nearly.deserialize_index(nearly.serialize_index(nearly.IndexLattice(64, 2, 6, 10)))
    assert not empty.is_trained
    good = bytes(nearly.serialize_index(index))
    for n in (len(good) // 3, len(good) - 1):
        with pytest.raises(nearly.IndexFileError):
            nearly.deserialize_index(np.frombuffer(good[:n], dtype=np.uint8).copy())


def test_lattice_search_is_exact_on_the_decoded_vectors(rng):
    x = rng.standard_normal((500, 32)).astype("float32")
    index = nearly.IndexLattice(32, 4, 5, 6)
    index.train(x)
    index.add(x)
    dec = index.reconstruct_n(0, 500)
    q = rng.standard_normal((10, 32)).astype("float32")
    D, I = index.search(q, 7)
    ref = ((q[:, None, :] - dec[None]) ** 2).sum(-1)
    np.testing.assert_allclose(D, np.sort(ref, axis=1)[:, :7], rtol=1e-5)
    sel = nearly.SearchParameters(sel=nearly.IDSelectorRange(100, 200))
    assert ((index.search(q, 5, params=sel)[1] >= 100) & (index.search(q, 5, params=sel)[1] < 200)).all()


def test_lattice_bad_input(rng):
    with pytest.raises(ValueError, match="multiple of nsq"):
        nearly.IndexLattice(30, 4, 4, 10)
    with pytest.raises(ValueError, match="dim must be in"):
        nearly.IndexLattice(130, 1, 4, 10)
    with pytest.raises(ValueError, match="scale_nbit"):
        nearly.IndexLattice(32, 1, 40, 10)
    index = nearly.IndexLattice(32, 2, 4, 10)
    x = rng.standard_normal((100, 32)).astype("float32")
    with pytest.raises(RuntimeError):
        index.add(x)  # untrained
    with pytest.raises(RuntimeError):
        index.search(x, 1)
    with pytest.raises(ValueError):
        index.train(x[:0])
    bad = x.copy()
    bad[3, 5] = np.nan
    with pytest.raises(ValueError):
        index.train(bad)
    index.train(x)
    with pytest.raises(ValueError):
        index.add(bad)
    with pytest.raises(ValueError):
        index.add(x[:, :16])
    index.add(x)
    with pytest.raises(ValueError):
        index.search(x, 0)
    with pytest.raises(RuntimeError):
        index.is_trained = False
    # a code whose sphere-point number is past nv
    codes = np.full((1, index.code_size), 0xFF, dtype=np.uint8)
    with pytest.raises(ValueError, match="out of range"):
        index.sa_decode(codes)


def test_codec_bad_input():
    with pytest.raises(ValueError, match="no point"):
        nearly.ZnSphereCodec(1, 2)
    with pytest.raises(ValueError, match="dim must be in"):
        nearly.ZnSphereCodec(65, 4)
    with pytest.raises(ValueError, match="power of 2"):
        nearly.ZnSphereCodecRec(6, 4)
    with pytest.raises(ValueError, match="2\\^64"):
        nearly.ZnSphereCodecRec(64, 300)
    codec = nearly.ZnSphereCodecRec(8, 5)
    with pytest.raises(ValueError, match="squared norm"):
        codec.encode_centroid(swig_ptr(np.ones(8, dtype="float32")))
    with pytest.raises(ValueError, match="point of Z"):
        codec.encode_centroid(swig_ptr(np.full(8, 0.5, dtype="float32")))
    with pytest.raises(ValueError, match="out of range"):
        codec.decode(codec.nv, swig_ptr(np.zeros(8, dtype="float32")))
    alt = nearly.ZnSphereCodecAlt(8, 5)
    with pytest.raises(ValueError, match="float32"):
        alt.decode(0, swig_ptr(np.zeros(8, dtype="float64")))  # written to: must be float32
    with pytest.raises(ValueError, match="contiguous"):
        alt.decode(0, np.zeros(16, dtype="float32")[::2])
    ro = np.zeros(8, dtype="float32")
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        alt.decode(0, ro)
    with pytest.raises(ValueError, match="needed"):
        alt.decode(0, swig_ptr(np.zeros(4, dtype="float32")))
    with pytest.raises(ValueError, match="needed"):
        alt.encode(swig_ptr(np.zeros(4, dtype="float32")))
    with pytest.raises(ValueError, match="finite"):
        alt.encode(swig_ptr(np.full(8, np.nan, dtype="float32")))
    vals = np.array([1, 1, 0], dtype="float32")
    rep = nearly.Repeats(3, swig_ptr(vals))
    with pytest.raises(ValueError, match="arrangement"):
        rep.encode(swig_ptr(np.array([1, 0, 0], dtype="float32")))
    with pytest.raises(ValueError, match="out of range"):
        rep.decode(3, swig_ptr(np.zeros(3, dtype="float32")))
