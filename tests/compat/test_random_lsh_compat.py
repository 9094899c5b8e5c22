"""faiss's random draws and what is built on them, against faiss-cpu:
rand / randn / randint give the same values for the same seed (arrays cut
into 1,024 blocks from 1,024 values on); RandomRotationMatrix gives faiss's
matrix (faiss orthonormalizes in float, nearly in double: 1e-5 apart), so
"RR" prefixes, OPQ's starting rotation and IndexLSH match faiss; IndexLSH
(every factory form) gives faiss's codes, distances, ids, padding and
decoded vectors."""
import pickle

import numpy as np
import pytest

import nearly
from _testutil import randn

faiss = pytest.importorskip("faiss")

MOD = {"faiss": faiss, "nearly": nearly}


@pytest.mark.parametrize("n", [1, 7, 1023, 1024, 1025, 50001])
@pytest.mark.parametrize("seed", [0, 12345, -3, 2**40 + 7])
def test_same_draws_as_faiss(n, seed):
    np.testing.assert_array_equal(nearly.rand(n, seed), faiss.rand(n, seed))
    np.testing.assert_array_equal(nearly.randn(n, seed), faiss.randn(n, seed))
    np.testing.assert_array_equal(nearly.randint(n, seed), faiss.randint(n, seed))
    np.testing.assert_array_equal(nearly.randint(n, seed, vmax=97), faiss.randint(n, seed, vmax=97))


def test_draws_take_shapes_and_default_seed():
    a = nearly.randn((30, 40))
    assert a.shape == (30, 40) and a.dtype == np.float32
    np.testing.assert_array_equal(a, faiss.randn((30, 40)))
    assert nearly.randint(5).dtype == np.int64
    assert (nearly.rand(10000) >= 0).all() and (nearly.rand(10000) <= 1).all()
    with pytest.raises(ValueError):
        nearly.randint(5, vmax=0)


def test_draws_do_not_depend_on_the_thread_count():
    before = nearly.omp_get_max_threads()
    try:
        nearly.omp_set_num_threads(1)
        one = nearly.randn(200000, 9)
        nearly.omp_set_num_threads(max(2, before))
        np.testing.assert_array_equal(nearly.randn(200000, 9), one)
    finally:
        nearly.omp_set_num_threads(before)


@pytest.mark.parametrize("d_in,d_out", [(16, 8), (32, 32), (8, 24), (384, 384), (64, 200), (1, 1)])
@pytest.mark.parametrize("seed", [5, 12345])
def test_random_rotation_matrix_like_faiss(d_in, d_out, seed):
    f = faiss.RandomRotationMatrix(d_in, d_out)
    f.init(seed)
    n = nearly.RandomRotationMatrix(d_in, d_out)
    n.init(seed)
    np.testing.assert_allclose(n.A.reshape(d_out, d_in), faiss.vector_to_array(f.A).reshape(d_out, d_in), atol=1e-5)
    x = randn(np.random.default_rng(0), 20, d_in)
    np.testing.assert_allclose(n.apply(x), f.apply(x), atol=1e-4)


def test_rr_prefix_searches_like_faiss():
    rng = np.random.default_rng(3)
    xb, xq = randn(rng, 3000, 32), randn(rng, 50, 32)
    out = {}
    for lib, mod in MOD.items():
        index = mod.index_factory(32, "RR32,Flat")
        index.train(xb)
        index.add(xb)
        out[lib] = index.search(xq, 10)
    np.testing.assert_array_equal(out["nearly"][1], out["faiss"][1])
    np.testing.assert_allclose(out["nearly"][0], out["faiss"][0], rtol=1e-4)


def test_opq_starts_from_faiss_rotation():
    # with no iteration, OPQ's matrix is its starting rotation: faiss's
    x = randn(np.random.default_rng(4), 2000, 32)
    A = {}
    for lib, mod in MOD.items():
        opq = mod.OPQMatrix(32, 4)
        opq.niter = 0
        opq.train(x)
        A[lib] = np.asarray(mod.vector_to_array(opq.A)).reshape(32, 32)
    np.testing.assert_allclose(A["nearly"], A["faiss"], atol=1e-5)


LSH_STRINGS = ["LSH", "LSHr", "LSHt", "LSHrt", "LSH64rt", "LSH16r", "LSH100r", "LSH20", "LSH8t"]


@pytest.fixture(scope="module")
def lsh_data():
    rng = np.random.default_rng(5)
    return randn(rng, 5000, 32), randn(rng, 200, 32)


@pytest.mark.parametrize("fs", LSH_STRINGS)
def test_lsh_like_faiss(lsh_data, fs):
    xb, xq = lsh_data
    out = {}
    for lib, mod in MOD.items():
        index = mod.index_factory(32, fs)
        assert index.is_trained == ("t" not in fs[3:])
        index.train(xb)
        index.add(xb)
        out[lib] = index
    f, n = out["faiss"], out["nearly"]
    assert (n.nbits, n.rotate_data, n.train_thresholds, n.code_size) == \
        (f.nbits, f.rotate_data, f.train_thresholds, f.code_size)
    np.testing.assert_array_equal(n.sa_encode(xq), f.sa_encode(xq))
    np.testing.assert_array_equal(n.codes, faiss.vector_to_array(f.codes))
    if f.train_thresholds:
        np.testing.assert_allclose(n.thresholds, faiss.vector_to_array(f.thresholds), atol=1e-5)
    Dn, In = n.search(xq, 10)
    Df, If = f.search(xq, 10)
    np.testing.assert_array_equal(Dn, Df)  # Hamming distances as floats
    assert Dn.dtype == np.float32
    assert np.mean(In == If) > 0.999  # ties go to the smaller id in both
    if n.nbits >= 32 or n.rotate_data:  # faiss's decoding of a short code without rotation reads past it
        codes = f.sa_encode(xq)
        np.testing.assert_allclose(n.sa_decode(codes), f.sa_decode(codes), atol=1e-4)


def test_lsh_padding_selector_and_writes(lsh_data):
    xb, xq = lsh_data
    index = nearly.IndexLSH(32, 64)
    f = faiss.IndexLSH(32, 64)
    for i in (index, f):
        i.add(xb[:3])
    D, I = index.search(xq[:2], 5)
    np.testing.assert_array_equal(D, f.search(xq[:2], 5)[0])
    assert (I[:, 3:] == -1).all() and (D[:, 3:] == np.float32(2147483647)).all()
    index.add(xb[3:])
    D, I = index.search(xq, 10, params=nearly.SearchParameters(sel=nearly.IDSelectorRange(100, 200)))
    assert ((I >= 100) & (I < 200)).all()
    full = nearly.IndexLSH(32, 64)
    full.add(xb[100:200])
    np.testing.assert_array_equal(D, full.search(xq, 10)[0])
    assert index.remove_ids(np.arange(10, dtype=np.int64)) == 10 and index.ntotal == len(xb) - 10
    np.testing.assert_array_equal(index.reconstruct(0), index.sa_decode(index.sa_encode(xb[10:11]))[0])


def test_lsh_persistence(lsh_data, tmp_path):
    xb, xq = lsh_data
    index = nearly.index_factory(32, "LSH48rt")
    index.train(xb)
    index.add(xb)
    want = index.search(xq, 10)
    path = str(tmp_path / "lsh.index")
    nearly.write_index(index, path)
    for copy in (nearly.read_index(path), nearly.deserialize_index(nearly.serialize_index(index)),
                 pickle.loads(pickle.dumps(index))):
        assert type(copy) is nearly.IndexLSH and copy.nbits == 48 and copy.train_thresholds
        np.testing.assert_array_equal(copy.thresholds, index.thresholds)
        for a, b in zip(copy.search(xq, 10), want):
            np.testing.assert_array_equal(a, b)
    raw = bytearray(nearly.serialize_index(index))
    with pytest.raises(nearly.IndexFileError):
        nearly.deserialize_index(bytes(raw[: len(raw) // 2]))


def test_lsh_bad_input(lsh_data):
    xb, xq = lsh_data
    with pytest.raises(ValueError):
        nearly.IndexLSH(32, 0)
    with pytest.raises(ValueError):
        nearly.IndexLSH(32, 64, False)  # more bits than components, nothing to rotate
    for mod in MOD.values():
        with pytest.raises(RuntimeError, match="is_trained"):
            mod.IndexLSH(32, 16, True, True).add(xb)
    index = nearly.IndexLSH(32, 16)
    with pytest.raises(ValueError):
        index.add(xb[:, :8])
    bad = xq.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        index.search(bad, 5)
    with pytest.raises(ValueError):
        index.search(xq, 0)
