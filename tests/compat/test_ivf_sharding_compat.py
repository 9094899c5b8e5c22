"""shard_ivf_index_centroids beside faiss-cpu's: the same centroids in each
shard's quantizer, under the same ids."""
import numpy as np
import pytest

import nearly

faiss = pytest.importorskip("faiss")

D, NLIST = 32, 24


def test_faiss_writes_the_same_shard_quantizers(tmp_path):
    rng = np.random.default_rng(11)
    xc = rng.random((200, D), dtype=np.float32)
    for generate_ids in (False, True):
        ours = nearly.IndexIVFFlat(nearly.IndexFlatL2(D), D, NLIST)
        theirs = faiss.IndexIVFFlat(faiss.IndexFlatL2(D), D, NLIST)
        ours.quantizer.add(xc)
        theirs.quantizer.add(xc)
        fn = lambda i, n: (i // 3) % n  # noqa: E731
        nearly.shard_ivf_index_centroids(ours, 7, str(tmp_path / "n%d"), fn, generate_ids)
        faiss.shard_ivf_index_centroids(theirs, 7, str(tmp_path / "f%d"), fn, generate_ids)
        for s in range(7):
            ia = nearly.read_index(str(tmp_path / f"n{s}"))
            ib = faiss.read_index(str(tmp_path / f"f{s}"))  # kept alive: it owns its quantizer
            a, b = ia.quantizer, ib.quantizer
            assert a.ntotal == b.ntotal
            if generate_ids:
                ids = faiss.vector_to_array(faiss.downcast_index(b).id_map)
                np.testing.assert_array_equal(nearly.vector_to_array(a.id_map), ids)
                for i in ids:
                    np.testing.assert_array_equal(a.reconstruct(int(i)), b.reconstruct(int(i)))
            else:
                np.testing.assert_array_equal(a.reconstruct_n(0, a.ntotal), b.reconstruct_n(0, b.ntotal))


def test_index_shards_ivf_gives_faiss_results():
    rng = np.random.default_rng(2)
    xt = rng.random((2000, D), dtype=np.float32)
    xq = rng.random((30, D), dtype=np.float32)
    km = faiss.Kmeans(D, NLIST, niter=5, seed=1)
    km.train(xt)
    out = []
    for lib in (nearly, faiss):
        quantizer = lib.IndexFlatL2(D)
        quantizer.add(km.centroids)
        sharded = lib.IndexShardsIVF(quantizer, NLIST, False, True)
        shards = [lib.IndexIVFFlat(lib.IndexFlatL2(D), D, NLIST) for _ in range(3)]
        for s in shards:
            s.quantizer.add(km.centroids)
            s.is_trained = True
            s.nprobe = 4
            sharded.add_shard(s)
        sharded.add(xt)
        out.append((sharded.search(xq, 10), shards))
    (Dn, In), _ = out[0]
    (Df, If), faiss_shards = out[1]
    np.testing.assert_allclose(Dn, Df, rtol=1e-5, atol=1e-5)
    assert (In == If).mean() > 0.99
