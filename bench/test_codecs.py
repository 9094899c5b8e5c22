"""faiss's vector codecs and IndexLSH, nearly beside faiss on the same trained state.

    python -m pytest bench/test_codecs.py --benchmark-only [--benchmark-json bench/results/codecs.json]

Groups (compare the two rows of a group):
  sa_encode_SQ8    IndexScalarQuantizer.sa_encode of 20,000 real vectors (d=384)
  sa_decode_SQ8    sa_decode of their 20,000 codes
  sa_encode_PQ32   IndexPQ ("PQ32np", nearly given faiss's codebooks).sa_encode of 20,000 vectors
  sa_decode_PQ32   sa_decode of their codes
  sa_encode_ZnLattice12x10_4, sa_decode_ZnLattice12x10_4
                   IndexLattice (12 sub-vectors of 32 dims, sphere r2 = 10, 4-bit norms):
                   the same for faiss's lattice codes
  lattice_search   that IndexLattice searched over the 20,000 codes, 100 queries, k=10
  lsh_search       IndexLSH (384 bits, rotated) over 100,000 vectors, 100 queries, k=10
  sq_search_*      IndexScalarQuantizer search (SQ4, SQ6, SQ8, SQ8_direct, SQfp16, SQbf16; inner
                   product) over 20,000 vectors, 100 queries, k=10: the codes
                   scored without decoding
  pq_search_*      IndexPQ search (PQ48x6, PQ48x10, PQ24x12, PQ24x16; inner product) over
                   20,000 vectors, 100 queries, k=10, nearly given faiss's
                   codebook (the same codes): faiss's bit-string codes of any width
Single-threaded unless NEARLY_BENCH_THREADS is set.  Each benchmark checks that
nearly's output equals faiss's.
"""
import numpy as np
import pytest

N_ENCODE = 20_000
N_LSH, NQ, K = 100_000, 100, 10


def bench_group(name):
    return pytest.mark.benchmark(group=name, warmup=True, warmup_iterations=2)


@pytest.fixture(scope="module")
def trained(data):
    import faiss
    import nearly
    x = np.ascontiguousarray(data["base"][:N_ENCODE])
    out = {}
    for fs in ("SQ8", "PQ32np", "ZnLattice12x10_4"):
        f, n = faiss.index_factory(384, fs), nearly.index_factory(384, fs)
        if fs.startswith("PQ"):
            f.pq.cp.niter = n.pq.cp.niter = 4  # the codec is timed, not the training
        f.train(x)
        n.train(x)
        if fs.startswith("PQ"):
            n.pq.centroids = faiss.vector_to_array(f.pq.centroids)
        out[fs] = f, n
    return x, out


def _lib_index(request, trained, fs):
    x, out = trained
    f, n = out[fs]
    return x, (n if request.node.callspec.params["lib"] == "nearly" else f), f


@pytest.mark.parametrize("lib", ["nearly", "faiss"])
@pytest.mark.parametrize("fs,op", [(fs, op) for fs in ("SQ8", "PQ32np", "ZnLattice12x10_4") for op in ("encode", "decode")])
def test_codec(benchmark, request, trained, nearly_mod, faiss_mod, lib, fs, op):
    x, index, ref = _lib_index(request, trained, fs)
    benchmark.group = f"sa_{op}_{fs.replace('np', '')}"
    codes = ref.sa_encode(x)
    if op == "encode":
        got = benchmark(index.sa_encode, x)
        # lattice codes: a norm on a level's edge, or a near tie of directions, may differ
        assert (got == codes).all(axis=1).mean() >= (0.99 if "Lattice" in fs else 0.999)
    else:
        got = benchmark(index.sa_decode, codes)
        np.testing.assert_allclose(got, ref.sa_decode(codes), rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def lsh(data):
    import faiss
    import nearly
    x = np.ascontiguousarray(data["base"][:N_LSH])
    out = {}
    for name, mod in (("nearly", nearly), ("faiss", faiss)):
        index = mod.IndexLSH(384, 384, True, False)
        index.add(x)
        out[name] = index
    return np.ascontiguousarray(data["queries"][:NQ]), out


@bench_group("lsh_search")
@pytest.mark.parametrize("lib", ["nearly", "faiss"])
def test_lsh_search(benchmark, lsh, nearly_mod, faiss_mod, lib):
    xq, out = lsh
    D, I = benchmark(out[lib].search, xq, K)
    Df, If = out["faiss"].search(xq, K)
    np.testing.assert_array_equal(D, Df)
    assert (I == If).mean() > 0.99


SQ_TOKENS = ["SQ4", "SQ6", "SQ8", "SQ8_direct", "SQfp16", "SQbf16"]


@pytest.fixture(scope="module")
def sq_indexes(data):
    import faiss
    import nearly
    x = np.ascontiguousarray(data["base"][:N_ENCODE])
    xq = np.ascontiguousarray(data["queries"][:NQ])
    out = {}
    for tok in SQ_TOKENS:
        xs, qs = x, xq
        if tok == "SQ8_direct":  # uint8 data, as the type is meant for
            xs = np.clip(np.round(x * 400 + 128), 0, 255).astype(np.float32)
            qs = np.clip(np.round(xq * 400 + 128), 0, 255).astype(np.float32)
        for name, mod in (("nearly", nearly), ("faiss", faiss)):
            index = mod.index_factory(384, tok, mod.METRIC_INNER_PRODUCT)
            index.train(xs)
            index.add(xs)
            out[tok, name] = index, qs
    return out


@pytest.mark.parametrize("lib", ["nearly", "faiss"])
@pytest.mark.parametrize("tok", SQ_TOKENS)
def test_sq_search(benchmark, sq_indexes, nearly_mod, faiss_mod, lib, tok):
    # faiss scores the direct type on the query cast to integers, nearly on the
    # float query: the same ranking here (integer queries), ties aside.
    _bench_search(benchmark, f"sq_search_{tok}", sq_indexes, tok, lib, 0.9 if tok == "SQ8_direct" else 0.98)


def _bench_search(benchmark, group, indexes, tok, lib, agreement):
    """Times indexes[tok, lib].search and checks its ids against faiss's."""
    benchmark.group = group
    index, xq = indexes[tok, lib]
    D, I = benchmark(index.search, xq, K)
    ref, _ = indexes[tok, "faiss"]
    Df, If = ref.search(xq, K)
    assert np.mean(I == If) > agreement


PQ_WIDTHS = ["PQ48x6", "PQ48x10", "PQ24x12", "PQ24x16"]


@pytest.fixture(scope="module")
def pq_indexes(data):
    import faiss
    import nearly
    x = np.ascontiguousarray(data["base"][:N_ENCODE])
    xq = np.ascontiguousarray(data["queries"][:NQ])
    out = {}
    for tok in PQ_WIDTHS:
        M, nbits = (int(v) for v in tok[2:].split("x"))
        f = faiss.IndexPQ(384, M, nbits, faiss.METRIC_INNER_PRODUCT)
        if nbits <= 10:
            f.pq.cp.niter = 4  # the search is timed, not the training
            f.train(x)
        else:  # 4,096 / 65,536 words per subspace: sampled vectors as the codebook
            rng = np.random.default_rng(nbits)
            sub = x.reshape(len(x), M, -1)
            cent = np.stack([sub[rng.integers(0, len(x), 1 << nbits), m] for m in range(M)])
            faiss.copy_array_to_vector(np.ascontiguousarray(cent, np.float32).ravel(), f.pq.centroids)
            f.is_trained = True
        n = nearly.IndexPQ(384, M, nbits, nearly.METRIC_INNER_PRODUCT)
        n.pq.centroids = faiss.vector_to_array(f.pq.centroids)
        n.is_trained = True
        # faiss encodes through an n x M x 2^nbits table of distances: 16-bit
        # codes take small batches there.
        for i in range(0, len(x), 64 if nbits > 10 else len(x)):
            f.add(x[i:i + 64] if nbits > 10 else x)
        n.add(x)
        out[tok, "faiss"], out[tok, "nearly"] = (f, xq), (n, xq)
    return out


@pytest.mark.parametrize("lib", ["nearly", "faiss"])
@pytest.mark.parametrize("tok", PQ_WIDTHS)
def test_pq_search(benchmark, pq_indexes, nearly_mod, faiss_mod, lib, tok):
    _bench_search(benchmark, f"pq_search_{tok}", pq_indexes, tok, lib, 0.98)


@pytest.fixture(scope="module")
def lattice_indexes(trained, data):
    x, out = trained
    xq = np.ascontiguousarray(data["queries"][:NQ])
    f, n = out["ZnLattice12x10_4"]
    f.reset()
    n.reset()
    f.add(x)
    n.add(x)
    return {("ZnLattice12x10_4", "faiss"): (f, xq), ("ZnLattice12x10_4", "nearly"): (n, xq)}


@pytest.mark.parametrize("lib", ["nearly", "faiss"])
def test_lattice_search(benchmark, lattice_indexes, nearly_mod, faiss_mod, lib):
    # L2 to every decoded vector: faiss decodes a code per distance, nearly a
    # block of codes once for a group of queries
    _bench_search(benchmark, "lattice_search", lattice_indexes, "ZnLattice12x10_4", lib, 0.98)
