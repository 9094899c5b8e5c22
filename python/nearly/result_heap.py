"""faiss's ResultHeap: the k best results per query, accumulated over slices
of a dataset (sharded or streamed search), and the merge that IndexShards
uses too."""
import numpy as np

_FLT_MAX = float(np.finfo(np.float32).max)
_NO_ID = np.iinfo(np.int64).max


def best_k(D, I, k, keep_max):
    """The k best columns of each row of (D, I), best first: equal scores by
    smaller id, missing results (id -1) last. Vectorized over rows."""
    key = -D if keep_max else D
    order = np.lexsort((np.where(I < 0, _NO_ID, I), I < 0, key), axis=1)[:, :k]
    return (np.ascontiguousarray(np.take_along_axis(D, order, axis=1)),
            np.ascontiguousarray(np.take_along_axis(I, order, axis=1)))


class ResultHeap:
    """Accumulate query results from a sliced dataset; the result is in
    self.D, self.I (nq x k, best first) after finalize(). keep_max: keep the
    largest values (inner product) instead of the smallest. Missing results
    are id -1 with FLT_MAX (-FLT_MAX with keep_max), as faiss's heaps leave
    them. Equal values keep the smaller id (faiss's heap keeps whichever came
    first)."""

    def __init__(self, nq, k, keep_max=False):
        if nq < 0 or k <= 0:
            raise ValueError(f"ResultHeap needs nq >= 0 and k > 0 (got nq={nq}, k={k})")
        self.nq, self.k, self.keep_max = int(nq), int(k), bool(keep_max)
        self.D = np.full((self.nq, self.k), -_FLT_MAX if keep_max else _FLT_MAX, dtype=np.float32)
        self.I = np.full((self.nq, self.k), -1, dtype=np.int64)

    def _merge(self, rows, D, I):
        cd = np.concatenate([self.D[rows], D], axis=1)
        ci = np.concatenate([self.I[rows], I], axis=1)
        self.D[rows], self.I[rows] = best_k(cd, ci, self.k, self.keep_max)

    def add_result(self, D, I):
        """Results for every query: D, I of shape (nq, nres), in any order."""
        D = np.ascontiguousarray(D, dtype=np.float32)
        I = np.ascontiguousarray(I, dtype=np.int64)
        if D.ndim != 2 or I.shape != D.shape or D.shape[0] != self.nq:
            raise ValueError(f"add_result: D and I must both be ({self.nq}, nres), got {D.shape} and {I.shape}")
        self._merge(slice(None), D, I)

    def add_result_subset(self, subset, D, I):
        """Results for the queries in subset: D (len(subset), nres) and I of the
        same shape, or 1-D (nres,) when every query saw the same ids."""
        subset = np.ascontiguousarray(subset, dtype=np.int64)
        D = np.ascontiguousarray(D, dtype=np.float32)
        I = np.ascontiguousarray(I, dtype=np.int64)
        if subset.ndim != 1 or D.ndim != 2 or D.shape[0] != len(subset):
            raise ValueError(f"add_result_subset: D must be (len(subset), nres), got {D.shape} for "
                             f"{len(subset)} queries")
        if I.ndim == 1:
            if I.shape != (D.shape[1],):
                raise ValueError(f"add_result_subset: 1-D I must have nres = {D.shape[1]} ids, got {I.shape}")
            I = np.broadcast_to(I, D.shape)
        elif I.shape != D.shape:
            raise ValueError(f"add_result_subset: I must match D {D.shape}, got {I.shape}")
        if len(subset) and (subset.min() < 0 or subset.max() >= self.nq):
            raise ValueError(f"add_result_subset: query numbers must be in [0, {self.nq})")
        if len(np.unique(subset)) != len(subset):
            raise ValueError("add_result_subset: a query appears twice in subset")
        self._merge(subset, D, I)

    def finalize(self):
        """faiss sorts its heaps here; these rows are kept sorted throughout."""
