"""ITQ binary codes ("ITQ[d],LSHt") beside faiss-cpu on the real
embeddings: the same chain, a lower quantization loss than faiss's rotation
(whose update is not ITQ's minimizer, tests/../itq.h) and recall at least
faiss's."""
import numpy as np
import pytest

import nearly
from _hnswutil import real_data

faiss = pytest.importorskip("faiss")


@pytest.mark.parametrize("spec", ["ITQ64,LSHt", "ITQ128,LSHt"])
def test_itq_lsh_as_faiss(spec):
    base, queries = real_data()
    xb, xq = base[:20000], queries[:200]
    d = xb.shape[1]
    gt = faiss.knn(xq, xb, 10)[1]
    out = {}
    for lib in (nearly, faiss):
        index = lib.index_factory(d, spec)
        assert index.chain.size() == 1
        index.train(xb)
        index.add(xb)
        I = index.search(xq, 100)[1]
        rec = np.mean([len(set(I[i]) & set(gt[i])) / 10 for i in range(len(xq))])
        t = lib.downcast_VectorTransform(index.chain.at(0))
        y = t.apply(xb[:5000]) if lib is nearly else t.apply_py(xb[:5000])
        out[lib.__name__] = (rec, float(((np.where(y < 0, -1, 1) - y) ** 2).sum(1).mean()))
        np.testing.assert_allclose(lib.vector_to_array(t.mean), xb.mean(0), atol=1e-5)
    assert out["nearly"][1] <= out["faiss"][1]
    assert out["nearly"][0] >= out["faiss"][0] - 0.01
