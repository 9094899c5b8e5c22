"""MUVERA Fixed Dimensional Encodings and exact Chamfer scores.

- every line of Google's reference outputs (tests/data/muvera/reference_vectors.txt)
  is reproduced bit for bit;
- an independent Python/numpy implementation of the reference (its random
  draws written out again here, on numpy's legacy MT19937, which is
  std::mt19937) gives the same matrices bit for bit and the same encodings to
  float tolerance on random clouds;
- Chamfer scores match numpy; bad inputs raise InvalidArgumentError; results
  do not depend on the thread count.
"""
import ctypes
import ctypes.util
import math
import os
import pickle
import shutil
import subprocess

import numpy as np
import pytest

import nearly
from nearly import _nearly

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE = os.path.join(ROOT, "tests", "data", "muvera", "reference_vectors.txt")


def reference_lines():
    out = {}
    with open(REFERENCE) as f:
        for line in f:
            parts = line.split()
            if parts:
                out[parts[0]] = parts[1:]
    return out


REF = reference_lines()


def hex_words(a):
    return [format(int(v), "08x") for v in np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)]


def assert_matches_reference(name, values):
    count, words = int(REF[name][0]), REF[name][1:]
    assert len(words) == count
    got = hex_words(values)
    assert len(got) == count, f"{name}: {len(got)} values, reference has {count}"
    diff = [i for i, (a, b) in enumerate(zip(got, words)) if a != b]
    assert not diff, f"{name}: {len(diff)} words differ, first at {diff[0]}: {got[diff[0]]} != {words[diff[0]]}"


def make_cloud(n, d, salt):
    """The reference's MakeCloud: exact in float32."""
    i = np.arange(n)[:, None]
    j = np.arange(d)[None, :]
    return ((((i * 131 + j * 29 + 7 + 5 * salt) % 17) - 8) / 8).astype(np.float32)


QUERY = make_cloud(5, 16, 0)
DOC = make_cloud(7, 16, 1)
BASE = dict(dimension=16, num_repetitions=2, num_simhash_projections=3, seed=1)


# ------------------------------------------------------- the reference, line by line


def test_reference_mt19937_10000th():
    assert int(_nearly._mt19937_outputs(5489, 10000)[-1]) == int(REF["mt19937_10000th"][0])


def test_reference_simhash_matrix():
    assert_matches_reference("simhash_seed1_8x3_colmajor", _nearly._fde_simhash_matrix(1, 8, 3))


def test_reference_ams_matrix():
    assert_matches_reference("ams_seed1_8x4_colmajor", _nearly._fde_ams_matrix(1, 8, 4))


def test_reference_count_sketch():
    x = np.arange(1, 11, dtype=np.float32)
    assert_matches_reference("countsketch_seed1_10to4", _nearly._fde_count_sketch(x, 4, 1))


def test_reference_query_sum_identity():
    cfg = nearly.FDEConfig(**BASE)
    assert cfg.fde_dim == 2 * 8 * 16
    assert_matches_reference("query_sum_id_r2_k3_d16", nearly.fde_encode_queries(QUERY, [5], cfg)[0])


def test_reference_document_average_identity():
    cfg = nearly.FDEConfig(**BASE)
    assert_matches_reference("doc_avg_id_r2_k3_d16", nearly.fde_encode_documents(DOC, [7], cfg)[0])


def test_reference_document_fill_identity():
    cfg = nearly.FDEConfig(**BASE, fill_empty_partitions=True)
    assert_matches_reference("doc_avg_fill_id_r2_k3_d16", nearly.fde_encode_documents(DOC, [7], cfg)[0])


def test_reference_query_ams_sketch():
    cfg = nearly.FDEConfig(**BASE, projection_type="ams_sketch", projection_dimension=4)
    assert cfg.fde_dim == 2 * 8 * 4
    assert_matches_reference("query_sum_ams4_r2_k3_d16", nearly.fde_encode_queries(QUERY, [5], cfg)[0])


def test_reference_document_fill_ams_final_projection():
    cfg = nearly.FDEConfig(**BASE, projection_type="ams_sketch", projection_dimension=4,
                           fill_empty_partitions=True, final_projection_dimension=8)
    assert cfg.fde_dim == 8
    assert_matches_reference("doc_fill_ams4_final8_r2_k3_d16", nearly.fde_encode_documents(DOC, [7], cfg)[0])


def test_reference_cases_inside_a_batch():
    """A set encodes the same wherever it sits in a ragged batch."""
    cfg = nearly.FDEConfig(**BASE, fill_empty_partitions=True)
    rng = np.random.default_rng(3)
    other = [rng.standard_normal((n, 16)).astype(np.float32) for n in (3, 1, 9)]
    out = nearly.fde_encode_documents([other[0], DOC, other[1], DOC, other[2]], None, cfg)
    assert_matches_reference("doc_avg_fill_id_r2_k3_d16", out[1])
    assert_matches_reference("doc_avg_fill_id_r2_k3_d16", out[3])


# ------------------------------------------- libstdc++'s <random> itself, where g++ exists


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_draws_match_libstdcxx_random(tmp_path):
    exe = str(tmp_path / "libstdcxx_random_check")
    subprocess.run(["g++", "-std=c++17", "-O2", "-ffp-contract=off", "-I", os.path.join(ROOT, "cpp", "include"),
                    os.path.join(ROOT, "tests", "native", "libstdcxx_random_check.cpp"),
                    os.path.join(ROOT, "cpp", "src", "libstdcxx_random.cpp"), "-o", exe], check=True)
    run = subprocess.run([exe], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    if run.stdout.startswith("SKIP"):
        pytest.skip(run.stdout.strip())
    assert "OK: 0 failures" in run.stdout


# ------------------------------------------------ an independent Python reference

_libm_name = ctypes.util.find_library("m")
_LIBM = ctypes.CDLL(_libm_name) if _libm_name else None
if _LIBM is not None:
    _LIBM.logf.restype = ctypes.c_float
    _LIBM.logf.argtypes = [ctypes.c_float]


class PyRandom:
    """std::mt19937 (numpy's legacy RandomState seeds and steps it the same
    way) and libstdc++'s distributions, written out in Python."""

    def __init__(self, seed):
        self._rs = np.random.RandomState(seed & 0xFFFFFFFF)
        self._buf, self._pos = [], 0
        self._saved = None

    def u32(self):
        if self._pos == len(self._buf):
            self._buf, self._pos = self._rs.randint(0, 2 ** 32, size=4096, dtype=np.uint32).tolist(), 0
        self._pos += 1
        return self._buf[self._pos - 1]

    def canonical_float(self):
        r = np.float32(self.u32()) / np.float32(2 ** 32)
        return r if r < 1 else np.nextafter(np.float32(1), np.float32(0))

    def canonical_double(self):
        s = float(self.u32())
        s += float(self.u32()) * 4294967296.0
        r = s / 18446744073709551616.0
        return r if r < 1 else math.nextafter(1.0, 0.0)

    def bernoulli(self):
        return self.canonical_double() < 0.5

    def uniform_below(self, n):
        product = self.u32() * n
        low = product & 0xFFFFFFFF
        if low < n:
            threshold = (2 ** 32 - n) % n
            while low < threshold:
                product = self.u32() * n
                low = product & 0xFFFFFFFF
        return product >> 32

    def normal(self):
        if self._saved is not None:
            v, self._saved = self._saved, None
            return v
        while True:
            x = np.float32(float(np.float32(2) * self.canonical_float()) - 1.0)
            y = np.float32(float(np.float32(2) * self.canonical_float()) - 1.0)
            r2 = x * x + y * y
            if not (r2 > 1 or r2 == 0):
                break
        mult = np.sqrt(np.float32(-2) * np.float32(_LIBM.logf(r2)) / r2)
        self._saved = x * mult
        return y * mult


def py_simhash(seed, d, k):
    rng = PyRandom(seed)
    return np.array([rng.normal() for _ in range(d * k)], dtype=np.float32).reshape(k, d).T  # column-major fill


def py_sparse_signs(seed, n, m):
    """Per input coordinate: target in [0, m) then a sign (AMS sketch, Count-Sketch)."""
    rng = PyRandom(seed)
    target, sign = np.empty(n, np.int64), np.empty(n, np.float64)
    for i in range(n):
        target[i] = rng.uniform_below(m)
        sign[i] = 1.0 if rng.bernoulli() else -1.0
    return target, sign


def numpy_fde(points, cfg, document):
    """The reference's algorithm in plain numpy (float64 sums)."""
    d, R, k = cfg.dimension, cfg.num_repetitions, cfg.num_simhash_projections
    P = 2 ** k
    ams = cfg.projection_type == "ams_sketch"
    B = cfg.projection_dimension if ams else d
    x = points.astype(np.float64)
    out = np.zeros((R, P, B))
    for r in range(R):
        seed = (cfg.seed + r) & 0xFFFFFFFF
        if k:
            bits = (x @ py_simhash(seed, d, k).astype(np.float64)) > 0
            words = bits.astype(np.int64) @ (1 << np.arange(k - 1, -1, -1))
            part = words.copy()
            shift = 1
            while shift < 32:  # Gray code -> binary: the partition whose code is the sign word
                part ^= part >> shift
                shift *= 2
        else:
            words = part = np.zeros(len(x), np.int64)
        if ams:
            target, sign = py_sparse_signs(seed, d, B)
            A = np.zeros((d, B))
            A[np.arange(d), target] = sign
            proj = x @ A
        else:
            proj = x
        np.add.at(out[r], part, proj)
        if document:
            counts = np.bincount(part, minlength=P)
            out[r][counts > 0] /= counts[counts > 0, None]
            if cfg.fill_empty_partitions and k:
                for p in np.flatnonzero(counts == 0):
                    hamming = [bin(int(w) ^ (int(p) ^ (int(p) >> 1))).count("1") for w in words]
                    out[r][p] = proj[int(np.argmin(hamming))]
    out = out.ravel()
    if cfg.final_projection_dimension:
        target, sign = py_sparse_signs(cfg.seed & 0xFFFFFFFF, len(out), cfg.final_projection_dimension)
        final = np.zeros(cfg.final_projection_dimension)
        np.add.at(final, target, sign * out)
        out = final
    return out


needs_libm = pytest.mark.skipif(_LIBM is None, reason="needs the C library's logf through ctypes")


def test_python_reference_reproduces_reference_lines():
    """The Python reference itself is right (so it can judge random configs)."""
    if _LIBM is None:
        pytest.skip("no libm")
    assert_matches_reference("simhash_seed1_8x3_colmajor", py_simhash(1, 8, 3).T.ravel())
    target, sign = py_sparse_signs(1, 8, 4)
    A = np.zeros((8, 4), np.float32)
    A[np.arange(8), target] = sign
    assert_matches_reference("ams_seed1_8x4_colmajor", A.T.ravel())
    cfg = nearly.FDEConfig(**BASE, projection_type="ams_sketch", projection_dimension=4)
    assert_matches_reference("query_sum_ams4_r2_k3_d16", numpy_fde(QUERY, cfg, False).astype(np.float32))
    cfg = nearly.FDEConfig(**BASE, fill_empty_partitions=True)
    assert_matches_reference("doc_avg_fill_id_r2_k3_d16", numpy_fde(DOC, cfg, True).astype(np.float32))


@needs_libm
@pytest.mark.parametrize("seed,d,k", [(1, 8, 3), (2, 16, 5), (12345, 33, 4), (0, 7, 1), (2 ** 31 - 1, 5, 2),
                                      (2 ** 32 - 3, 64, 6)])
def test_simhash_matrix_bits_against_python(seed, d, k):
    ours = _nearly._fde_simhash_matrix(seed, d, k)
    assert hex_words(ours) == hex_words(py_simhash(seed, d, k).T.ravel())


@pytest.mark.parametrize("seed,d,p", [(1, 8, 4), (7, 100, 3), (99, 384, 16), (5, 10, 1), (3, 50, 7)])
def test_ams_matrix_against_python(seed, d, p):
    target, sign = py_sparse_signs(seed, d, p)
    A = np.zeros((d, p), np.float32)
    A[np.arange(d), target] = sign
    assert hex_words(_nearly._fde_ams_matrix(seed, d, p)) == hex_words(A.T.ravel())


def test_count_sketch_against_python():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(1000).astype(np.float32)
    for seed, m in [(1, 4), (17, 33), (2 ** 31 + 5, 1000), (3, 1)]:
        target, sign = py_sparse_signs(seed, len(x), m)
        want = np.zeros(m, np.float32)
        for i in range(len(x)):  # float32, in index order, like the reference
            want[target[i]] += np.float32(sign[i]) * x[i]
        assert hex_words(_nearly._fde_count_sketch(x, m, seed)) == hex_words(want)


CONFIGS = [
    dict(dimension=16, num_repetitions=1, num_simhash_projections=0),
    dict(dimension=16, num_repetitions=3, num_simhash_projections=4, seed=7),
    dict(dimension=32, num_repetitions=2, num_simhash_projections=3, seed=5, fill_empty_partitions=True),
    dict(dimension=24, num_repetitions=4, num_simhash_projections=5, seed=11, projection_type="ams_sketch",
         projection_dimension=8),
    dict(dimension=24, num_repetitions=3, num_simhash_projections=4, seed=-3, projection_type="ams_sketch",
         projection_dimension=6, fill_empty_partitions=True, final_projection_dimension=64),
    dict(dimension=20, num_repetitions=2, num_simhash_projections=2, seed=1, final_projection_dimension=17),
]


@needs_libm
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(f"{k[:4]}{v}" for k, v in c.items()))
def test_encodings_match_numpy_reference(config):
    cfg = nearly.FDEConfig(**config)
    rng = np.random.default_rng(42)
    sets = [rng.standard_normal((n, cfg.dimension)).astype(np.float32) for n in (1, 2, 5, 17, 40)]
    for document in (False, True):
        if cfg.fill_empty_partitions and not document:
            continue
        encode = nearly.fde_encode_documents if document else nearly.fde_encode_queries
        got = encode(sets, None, cfg)
        assert got.shape == (len(sets), cfg.fde_dim) and got.dtype == np.float32
        for s, row in zip(sets, got):
            want = numpy_fde(s, cfg, document)
            scale = max(1.0, float(np.abs(s).sum(axis=0).max()))
            np.testing.assert_allclose(row, want, rtol=0, atol=1e-5 * scale)


def test_input_forms_agree():
    cfg = nearly.FDEConfig(dimension=8, num_repetitions=2, num_simhash_projections=3)
    rng = np.random.default_rng(1)
    sets = [rng.standard_normal((4, 8)).astype(np.float32) for _ in range(3)]
    ragged = nearly.fde_encode_documents(np.concatenate(sets), [4, 4, 4], cfg)
    assert np.array_equal(nearly.fde_encode_documents(sets, None, cfg), ragged)
    assert np.array_equal(nearly.fde_encode_documents(np.stack(sets), None, cfg), ragged)
    assert np.array_equal(nearly.fde_encode_documents(sets[1], None, cfg)[0], ragged[1])
    f64 = nearly.fde_encode_documents(np.concatenate(sets).astype(np.float64), np.array([4, 4, 4], np.int32), cfg)
    assert np.array_equal(f64, ragged)
    assert nearly.fde_encode_queries([], None, cfg).shape == (0, cfg.fde_dim)


def test_config_object():
    cfg = nearly.FDEConfig(16, num_repetitions=2, num_simhash_projections=3)
    assert cfg.fde_dim == 256
    cfg.projection_type, cfg.projection_dimension = "ams_sketch", 4  # matrices are drawn again
    assert cfg.fde_dim == 64
    cfg.final_projection_dimension = 10
    assert cfg.fde_dim == 10
    back = pickle.loads(pickle.dumps(cfg))
    assert back == cfg and back.fde_dim == 10
    assert "ams_sketch" in repr(cfg)
    x = np.random.default_rng(0).standard_normal((6, 16)).astype(np.float32)
    assert np.array_equal(nearly.fde_encode_queries(x, [6], back), nearly.fde_encode_queries(x, [6], cfg))


def test_fde_inner_product_tracks_chamfer():
    """Sanity of meaning: a larger Chamfer similarity gives, on average, a larger FDE inner product."""
    rng = np.random.default_rng(5)
    d = 32
    cfg = nearly.FDEConfig(d, num_repetitions=20, num_simhash_projections=4, projection_type="ams_sketch",
                           projection_dimension=16)
    docs = [rng.standard_normal((20, d)).astype(np.float32) for _ in range(60)]
    docs = [x / np.linalg.norm(x, axis=1, keepdims=True) for x in docs]
    q = docs[0][:8] + 0.1 * rng.standard_normal((8, d)).astype(np.float32)
    exact = nearly.chamfer_scores(q, docs)
    approx = nearly.fde_encode_documents(docs, None, cfg) @ nearly.fde_encode_queries(q, None, cfg)[0]
    assert np.argmax(approx) == np.argmax(exact) == 0
    assert np.corrcoef(exact, approx)[0, 1] > 0.5


@pytest.fixture
def restore_simd():
    before = nearly.simd_level()
    yield nearly.simd_levels_supported()
    nearly.set_simd_level(before)


VECMAT_SHAPES = [(1, 1), (7, 3), (16, 8), (33, 17), (128, 100), (384, 64), (5, 65), (9, 127), (9, 128),
                 (9, 129), (20, 200), (3, 257), (2, 16), (4, 63), (8, 256)]


def test_unfused_kernel_same_bits_at_every_level(restore_simd):
    rng = np.random.default_rng(4)
    for d, n in VECMAT_SHAPES:
        x = rng.standard_normal(d).astype(np.float32)
        w = rng.standard_normal((d, n)).astype(np.float32)
        want = np.zeros(n, np.float32)
        for i in range(d):  # in order, rounding the product before the add
            want = want + (x[i] * w[i]).astype(np.float32)
        for level in restore_simd:
            nearly.set_simd_level(level)
            assert _nearly._vecmat(x, w).tobytes() == want.tobytes(), (level, d, n)


def test_fused_kernel_same_bits_at_every_level(restore_simd):
    """vecmat_fused (PQ distance tables): one fused multiply-add per step, in
    order; the scalar reference uses std::fma, every level gives its bits."""
    rng = np.random.default_rng(5)
    for d, n in VECMAT_SHAPES:
        x = rng.standard_normal(d).astype(np.float32)
        w = rng.standard_normal((d, n)).astype(np.float32)
        nearly.set_simd_level("scalar")
        want = _nearly._vecmat(x, w, fused=True)
        np.testing.assert_allclose(want, x.astype(np.float64) @ w, rtol=1e-4, atol=1e-4 * np.sqrt(d))
        unfused = _nearly._vecmat(x, w)
        if d > 4:
            assert want.tobytes() != unfused.tobytes(), (d, n)  # it does fuse
        for level in restore_simd:
            nearly.set_simd_level(level)
            assert _nearly._vecmat(x, w, fused=True).tobytes() == want.tobytes(), (level, d, n)


def test_encodings_same_bits_at_every_level(restore_simd):
    rng = np.random.default_rng(8)
    docs = [rng.standard_normal((int(n), 48)).astype(np.float32) for n in rng.integers(1, 30, size=50)]
    cfg = nearly.FDEConfig(48, num_repetitions=7, num_simhash_projections=5, projection_type="ams_sketch",
                           projection_dimension=8, fill_empty_partitions=True)
    results = []
    for level in restore_simd:
        nearly.set_simd_level(level)
        results.append(nearly.fde_encode_documents(docs, None, cfg).tobytes())
    assert all(r == results[0] for r in results)


# ----------------------------------------------------------------------- Chamfer


def numpy_chamfer(q, docs):
    q = q.astype(np.float64)
    return np.array([(q @ x.astype(np.float64).T).max(axis=1).sum() for x in docs])


def random_docs(rng, n, d, max_len=50):
    return [rng.standard_normal((int(rng.integers(1, max_len)), d)).astype(np.float32) for _ in range(n)]


@pytest.mark.parametrize("d", [1, 7, 64, 130])
def test_chamfer_matches_numpy(d):
    rng = np.random.default_rng(d)
    docs = random_docs(rng, 70, d)
    for m in (1, 3, 32):
        q = rng.standard_normal((m, d)).astype(np.float32)
        got = nearly.chamfer_scores(q, docs)
        assert got.shape == (70,) and got.dtype == np.float32
        want = numpy_chamfer(q, docs)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4 * m * np.sqrt(d))
        ref = np.array([_nearly._chamfer_score_reference(q, x) for x in docs])
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4 * m * np.sqrt(d))


def test_chamfer_every_simd_level():
    rng = np.random.default_rng(0)
    docs = random_docs(rng, 40, 48)
    q = rng.standard_normal((9, 48)).astype(np.float32)
    want = numpy_chamfer(q, docs)
    before = nearly.simd_level()
    try:
        for level in nearly.simd_levels_supported():
            nearly.set_simd_level(level)
            np.testing.assert_allclose(nearly.chamfer_scores(q, docs), want, rtol=1e-5, atol=1e-3)
    finally:
        nearly.set_simd_level(before)


def test_chamfer_batch_and_gather():
    rng = np.random.default_rng(2)
    d = 24
    docs = random_docs(rng, 30, d, max_len=300)  # some documents larger than a block
    queries = random_docs(rng, 6, d, max_len=400)
    batch = nearly.chamfer_scores_batch(queries, None, docs)
    assert batch.shape == (6, 30)
    for i, q in enumerate(queries):
        np.testing.assert_allclose(batch[i], numpy_chamfer(q, docs), rtol=1e-5, atol=1e-3)
        assert np.array_equal(batch[i], nearly.chamfer_scores(q, docs))
    x, lengths = np.concatenate(docs), np.array([len(v) for v in docs])
    ids = np.array([5, 0, 29, 5, 17], dtype=np.int64)
    gathered = _nearly._chamfer_scores_gather(queries[0], x, lengths, ids)
    np.testing.assert_allclose(gathered, batch[0][ids], rtol=1e-6, atol=1e-5)


# ----------------------------------------------------------------------- bad input


def test_bad_configs():
    bad = [
        dict(dimension=0),
        dict(dimension=8, num_simhash_projections=31),
        dict(dimension=8, num_simhash_projections=-1),
        dict(dimension=8, num_repetitions=0),
        dict(dimension=8, projection_type="gaussian"),
        dict(dimension=8, projection_type="ams_sketch"),
        dict(dimension=8, projection_type="ams_sketch", projection_dimension=0),
        dict(dimension=8, final_projection_dimension=0),
        dict(dimension=8, seed=2 ** 31),
        dict(dimension=8.5),
        dict(dimension=8, num_repetitions=1000, num_simhash_projections=30),
    ]
    for kwargs in bad:
        with pytest.raises(nearly.InvalidArgumentError):
            nearly.FDEConfig(**kwargs)
    with pytest.raises(nearly.InvalidArgumentError, match="num_simhash_projections"):
        nearly.FDEConfig(8, num_simhash_projections=31)


def test_bad_encode_inputs():
    cfg = nearly.FDEConfig(8, num_repetitions=2, num_simhash_projections=2)
    x = np.random.default_rng(0).standard_normal((10, 8)).astype(np.float32)
    err = nearly.InvalidArgumentError
    with pytest.raises(err, match="sum to 9 but there are 10"):
        nearly.fde_encode_documents(x, [4, 5], cfg)
    with pytest.raises(err, match="sum to 11"):
        nearly.fde_encode_documents(x, [6, 5], cfg)
    with pytest.raises(err, match="at least one"):
        nearly.fde_encode_documents(x, [5, 0, 5], cfg)
    with pytest.raises(err, match="at least one"):
        nearly.fde_encode_queries(x, [12, -2], cfg)
    with pytest.raises(err, match="at least one"):
        nearly.fde_encode_documents([x[:3], x[:0]], None, cfg)
    with pytest.raises(err, match="columns"):
        nearly.fde_encode_documents(x[:, :7], [10], cfg)
    with pytest.raises(err, match=r"\(n, 8\)"):
        nearly.fde_encode_documents([x, x[:, :6]], None, cfg)
    with pytest.raises(err):
        nearly.fde_encode_documents(x[0], None, cfg)
    with pytest.raises(err):
        nearly.fde_encode_documents(x, [[5, 5]], cfg)
    for bad in (np.nan, np.inf):
        y = x.copy()
        y[3, 2] = bad
        with pytest.raises(err, match="NaN or inf"):
            nearly.fde_encode_queries(y, [10], cfg)
    fill = nearly.FDEConfig(8, num_simhash_projections=2, fill_empty_partitions=True)
    with pytest.raises(err, match="fill_empty_partitions"):
        nearly.fde_encode_queries(x, [10], fill)
    nearly.fde_encode_documents(x, [10], fill)  # fine for documents
    with pytest.raises(err, match="FDEConfig"):
        nearly.fde_encode_queries(x, [10], {"dimension": 8})


def test_bad_chamfer_inputs():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 8)).astype(np.float32)
    q = rng.standard_normal((3, 8)).astype(np.float32)
    err = nearly.InvalidArgumentError
    with pytest.raises(err, match="sum to 9"):
        nearly.chamfer_scores(q, x, [4, 5])
    with pytest.raises(err, match="at least one"):
        nearly.chamfer_scores(q, x, [10, 0])
    with pytest.raises(err, match="empty"):
        nearly.chamfer_scores(q[:0], x, [10])
    with pytest.raises(err):
        nearly.chamfer_scores(q[:, :5], x, [10])
    y = x.copy()
    y[0, 0] = np.nan
    with pytest.raises(err, match="NaN"):
        nearly.chamfer_scores(q, y, [10])
    with pytest.raises(err, match="not in"):
        _nearly._chamfer_scores_gather(q, x, [5, 5], np.array([2], np.int64))


# --------------------------------------------------------------- thread counts


def test_thread_count_does_not_change_bits(restore_threads):
    rng = np.random.default_rng(9)
    d = 64
    docs = [rng.standard_normal((int(n), d)).astype(np.float32) for n in rng.integers(1, 80, size=400)]
    cfg = nearly.FDEConfig(d, num_repetitions=8, num_simhash_projections=4, projection_type="ams_sketch",
                           projection_dimension=16, fill_empty_partitions=True, final_projection_dimension=512)
    qcfg = nearly.FDEConfig(d, num_repetitions=8, num_simhash_projections=4)
    q = rng.standard_normal((32, d)).astype(np.float32)
    results = []
    for threads in (1, 2):
        nearly.omp_set_num_threads(threads)
        results.append((nearly.fde_encode_documents(docs, None, cfg), nearly.fde_encode_queries(docs, None, qcfg),
                        nearly.chamfer_scores(q, docs), nearly.chamfer_scores_batch(docs[:20], None, docs)))
    for a, b in zip(*results):
        assert a.tobytes() == b.tobytes()


# ------------------------------------------- block kernels of the FDE encoder


def unfused_in_order(x, w):
    """Each sum over i in order, the product rounded to float32 before the add, from +0."""
    acc = np.zeros((len(x), w.shape[1]), np.float32)
    for i in range(x.shape[1]):
        acc = acc + (x[:, i:i + 1] * w[i][None, :]).astype(np.float32)
    return acc


def adversarial_points(rng, d, w):
    """Points whose sums with some columns of w are near or exactly zero (the
    fast kernels' bound cannot decide those), plus tiny, huge and zero ones."""
    pts = [rng.standard_normal((5, d))]
    for j in range(min(w.shape[1], 12)):
        x = rng.standard_normal(d)
        wj = w[:, j].astype(np.float64)
        pts.append((x - (x @ wj) / (wj @ wj) * wj)[None])  # orthogonal to column j in float64
    pts += [np.zeros((1, d)), 1e-30 * rng.standard_normal((1, d)), 1e-41 * rng.standard_normal((1, d)),
            1e30 * rng.standard_normal((1, d)), 1e36 * rng.standard_normal((1, d))]
    x = np.zeros((1, d))
    x[0, 0] = 1.0  # a sum with a single term
    pts.append(x)
    return np.ascontiguousarray(np.concatenate(pts), dtype=np.float32)


@pytest.mark.parametrize("d,n", [(1, 3), (7, 5), (16, 16), (48, 35), (384, 100), (384, 80), (33, 129), (20, 64)])
def test_fde_signs_same_bits_at_every_level(restore_simd, d, n):
    rng = np.random.default_rng(d * 1000 + n)
    w = rng.standard_normal((d, n)).astype(np.float32)
    x = adversarial_points(rng, d, w)
    with np.errstate(over="ignore", invalid="ignore"):
        want = (unfused_in_order(x, w) > 0).astype(np.uint8)
    for level in restore_simd:
        nearly.set_simd_level(level)
        got = _nearly._fde_signs(x, w)
        assert got.tobytes() == want.tobytes(), (level, d, n, np.argwhere(got != want)[:5])
    # the near-zero sums exist: the inputs do exercise the exact fallback
    x64 = x.astype(np.float64)
    sums = x64 @ w.astype(np.float64)
    undecided = np.sum(np.abs(sums) <= 1e-3 * np.linalg.norm(x64, axis=1)[:, None] * np.linalg.norm(w, axis=0)[None, :])
    assert undecided >= min(n, 12) - 2


@pytest.mark.parametrize("m", [1, 7, 8, 9, 16, 17, 24, 31, 32])
@pytest.mark.parametrize("d,n_out", [(5, 3), (48, 8), (384, 16), (37, 40), (384, 320)])
def test_ams_sketch_block_same_bits_at_every_level(restore_simd, m, d, n_out):
    rng = np.random.default_rng(m * 7 + d + n_out)
    x = rng.standard_normal((m, d)).astype(np.float32)
    x[0, :3] = 0.0  # signed zeros through the sums
    if m > 2:
        x[2] *= np.float32(1e-38)
    target = rng.integers(0, n_out, size=d).astype(np.int64)
    sign = np.where(rng.random(d) < 0.5, -1.0, 1.0).astype(np.float32)
    want = np.zeros((m, n_out), np.float32)
    for i in range(d):  # the reference's order: inputs of each output in increasing order
        want[:, target[i]] = want[:, target[i]] + sign[i] * x[:, i]
    for level in restore_simd:
        nearly.set_simd_level(level)
        got = _nearly._ams_sketch_block(x, target, sign, n_out)
        assert got.tobytes() == want.tobytes(), (level, m, d, n_out)


@pytest.mark.parametrize("m", [1, 5, 16, 17, 31, 32, 33, 58, 70])
@pytest.mark.parametrize("n", [1, 3, 8, 12, 13, 17, 24, 25, 49])
def test_maxsim_kernel_every_level(restore_simd, m, n):
    rng = np.random.default_rng(m * 100 + n)
    d = 37 if (m + n) % 2 else 384
    q = rng.standard_normal((m, d)).astype(np.float32)
    x = rng.standard_normal((n, d)).astype(np.float32)
    want = (q.astype(np.float64) @ x.astype(np.float64).T).max(axis=1)
    outs = []
    for level in restore_simd:
        nearly.set_simd_level(level)
        got = _nearly._maxsim(q, x)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4 * np.sqrt(d), err_msg=level)
        outs.append(got)
    # each row's maximum is its own: moving the best row changes nothing
    nearly.set_simd_level(restore_simd[-1])
    np.testing.assert_array_equal(_nearly._maxsim(q, x[::-1].copy()), outs[-1])


def test_half_to_float_every_half_every_level(restore_simd):
    h = np.arange(65536, dtype=np.uint16)
    want = h.view(np.float16).astype(np.float32)
    nan = np.isnan(want)  # payloads may gain the quiet bit; stored tokens are never NaN
    for level in restore_simd:
        nearly.set_simd_level(level)
        for n in (65536, 65535, 17, 15, 1):  # vector bodies and tails
            got = _nearly._half_to_float(h[-n:])
            assert np.array_equal(np.isnan(got), nan[-n:]), (level, n)
            assert got[~nan[-n:]].view(np.uint32).tobytes() == want[-n:][~nan[-n:]].view(np.uint32).tobytes(), (level, n)


def float32_fde(points, cfg, document):
    """The encoder's arithmetic replayed in float32 numpy, step by step in the
    reference's order (signs from in-order unfused sums, AMS sums in input
    order, partition sums in point order, then the division): bits, not a tolerance."""
    d, R, k, B = cfg.dimension, cfg.num_repetitions, cfg.num_simhash_projections, cfg.projection_dimension
    P = 2 ** k
    out = []
    for r in range(R):
        seed = (cfg.seed + r) % 2 ** 32
        S = _nearly._fde_simhash_matrix(seed, d, k).reshape(k, d).T
        A = _nearly._fde_ams_matrix(seed, d, B).reshape(B, d).T  # d x B, one +-1 per row
        bits = unfused_in_order(points, np.ascontiguousarray(S)) > 0
        words = (bits.astype(np.int64) << np.arange(k - 1, -1, -1)).sum(axis=1)
        part_of = {}  # partition i holds the sign word i ^ (i >> 1)
        for idx in range(P):
            part_of[idx ^ (idx >> 1)] = idx
        parts = np.array([part_of[int(w)] for w in words])
        proj = np.zeros((len(points), B), np.float32)
        for i in range(d):  # each output adds its inputs in increasing order
            c = int(np.flatnonzero(A[i])[0])
            proj[:, c] = proj[:, c] + np.float32(A[i, c]) * points[:, i]
        block = np.zeros((P, B), np.float32)
        count = np.zeros(P, np.float32)
        for p in range(len(points)):
            block[parts[p]] = block[parts[p]] + proj[p]
            count[parts[p]] += 1
        if document:
            for part in range(P):
                if count[part] > 0:
                    block[part] = block[part] / count[part]
                elif cfg.fill_empty_partitions:
                    target = part ^ (part >> 1)
                    dist = [bin(int(w) ^ target).count("1") for w in words]
                    block[part] = proj[int(np.argmin(dist))]
        out.append(block.ravel())
    return np.concatenate(out)


@pytest.mark.parametrize("fill", [False, True])
def test_encodings_bit_exact_against_float32_replay(fill):
    """Single-block sets (<= 32 points) and multi-block ones take different
    paths through the encoder; both give the replay's bits."""
    cfg = nearly.FDEConfig(24, num_repetitions=3, num_simhash_projections=3, seed=9, projection_type="ams_sketch",
                           projection_dimension=6, fill_empty_partitions=fill)
    rng = np.random.default_rng(3)
    sets = [rng.standard_normal((n, 24)).astype(np.float32) for n in (1, 2, 17, 32, 33, 40, 70)]
    docs = nearly.fde_encode_documents(sets, None, cfg)
    for s, row in zip(sets, docs):
        assert row.tobytes() == float32_fde(s, cfg, True).astype(np.float32).tobytes(), len(s)
    if not fill:
        queries = nearly.fde_encode_queries(sets, None, cfg)
        for s, row in zip(sets, queries):
            assert row.tobytes() == float32_fde(s, cfg, False).astype(np.float32).tobytes(), len(s)
