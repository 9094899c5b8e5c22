"""IndexIVFIndependentQuantizer beside faiss-cpu's: the same lists, the same
transform, the same results; faiss's precomputed-table quirk is not copied
(nearly scans with centroid terms of the IVF index's own space)."""
import numpy as np
import pytest

import nearly

faiss = pytest.importorskip("faiss")

D_IN, D_OUT, NLIST = 32, 16, 24


def _selection(lib, d_in, d_out):
    lt = lib.LinearTransform(d_in, d_out, False)
    lib.copy_array_to_vector(np.eye(d_in, dtype=np.float32)[:d_out].ravel(), lt.A)
    lt.is_trained = True
    return lt


@pytest.mark.parametrize("inner", ["IVF24,Flat", "IVF24,SQ8"])
def test_same_results_as_faiss(inner):
    rng = np.random.default_rng(6)
    xt = rng.random((3000, D_IN), dtype=np.float32)
    xq = rng.random((40, D_IN), dtype=np.float32)
    km = faiss.Kmeans(D_IN, NLIST, niter=5, seed=2)
    km.train(xt)
    out = {}
    for lib in (nearly, faiss):
        quantizer = lib.IndexFlatL2(D_IN)
        quantizer.add(km.centroids)
        index = lib.IndexIVFIndependentQuantizer(quantizer, lib.index_factory(D_OUT, inner), _selection(lib, D_IN, D_OUT))
        index.train(xt)
        index.add(xt)
        lib.extract_index_ivf(index).nprobe = 3
        out[lib.__name__] = index.search(xq, 10), index
    (Dn, In), ours = out["nearly"]
    (Df, If), theirs = out["faiss"]
    np.testing.assert_allclose(Dn, Df, rtol=1e-5, atol=1e-5)
    assert (In == If).mean() > 0.99
    # the IVF index's quantizer holds the transformed centroids in both
    np.testing.assert_allclose(ours.index_ivf.quantizer.reconstruct_n(0, NLIST),
                               faiss.downcast_index(theirs.index_ivf.quantizer).reconstruct_n(0, NLIST))
