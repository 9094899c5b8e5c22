"""faiss's IndexFlat1D: exact search of 1-D vectors through a sorted
permutation (a binary search and a walk outwards per query, O(log n + k)
instead of O(n)). As faiss's, the distances are |q - x|, not squared,
missing results are (inf, -1), and it is stored as an IndexFlatL2."""
import numpy as np

from . import _nearly


class IndexFlat1D(_nearly.IndexFlatL2):
    """continuous_update: the permutation follows every add (else call
    update_permutation() before searching, as in faiss)."""

    def __init__(self, continuous_update=True):
        super().__init__(1)
        self.continuous_update = bool(continuous_update)
        self.perm = np.zeros(0, dtype=np.int64)

    def update_permutation(self):
        values = self.reconstruct_n(0, self.ntotal)[:, 0] if self.ntotal else np.zeros(0, np.float32)
        self.perm = np.argsort(values, kind="stable").astype(np.int64)
        self._sorted = values[self.perm]

    def add(self, x):
        super().add(x)
        if self.continuous_update:
            self.update_permutation()

    def reset(self):
        super().reset()
        self.update_permutation()

    def remove_ids(self, sel):
        removed = super().remove_ids(sel)
        self.update_permutation()
        return removed

    def search(self, x, k, *, params=None):
        if params is not None:
            raise RuntimeError("IndexFlat1D: search params not supported for this index (as in faiss)")
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != 1:
            raise _nearly.InvalidArgumentError(f"IndexFlat1D: x must be (n, 1), got shape {x.shape}")
        if np.isnan(x).any():
            raise _nearly.InvalidArgumentError("IndexFlat1D: x holds NaN")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
            raise _nearly.InvalidArgumentError(f"k must be a positive integer (got {k!r})")
        if self.perm.size != self.ntotal:
            raise RuntimeError("IndexFlat1D: call update_permutation before search (as in faiss)")
        k, n, q = int(k), self.ntotal, x[:, 0]
        D = np.full((len(q), k), np.inf, dtype=np.float32)
        I = np.full((len(q), k), -1, dtype=np.int64)
        if n == 0 or len(q) == 0:
            return D, I
        # The k nearest lie among the k values on each side of the query's
        # place in the sorted order.
        pos = np.searchsorted(self._sorted, q, side="right")
        offsets = np.arange(-k, k)
        window = pos[:, None] + offsets[None, :]
        inside = (window >= 0) & (window < n)
        vals = self._sorted[np.clip(window, 0, n - 1)]
        dist = np.where(inside, np.abs(q[:, None] - vals), np.inf).astype(np.float32)
        order = np.argsort(dist, axis=1, kind="stable")[:, :k]
        m = min(k, n)
        D[:, :m] = np.take_along_axis(dist, order, axis=1)[:, :m]
        I[:, :m] = self.perm[np.clip(np.take_along_axis(window, order, axis=1), 0, n - 1)][:, :m]
        return D, I
