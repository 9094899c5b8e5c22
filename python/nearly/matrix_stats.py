"""faiss's MatrixStats: a check of a data matrix before indexing it (NaN and
infinities, copies, norms, constant or badly scaled dimensions), reported in
faiss's words in ``comments``. numpy does the counting.

The hash of the matrix is nearly's (64 bits of BLAKE2b), not faiss's
hash_bytes; copies are found exactly (row by row), so there are never hash
collisions (n_collision is 0).
"""
import hashlib

import numpy as np


class PerDimStats:
    """One dimension's counts and moments (faiss's MatrixStats::PerDimStats)."""

    def __init__(self, column):
        finite = np.isfinite(column)
        self.n = int(column.size)
        self.n_nan = int(np.isnan(column).sum())
        self.n_inf = int(column.size - finite.sum() - self.n_nan)
        values = column[finite].astype(np.float64)
        self.n0 = int((values == 0).sum())
        self.min = float(values.min()) if values.size else float("inf")
        self.max = float(values.max()) if values.size else float("-inf")
        self.sum = float(values.sum())
        self.sum2 = float(np.dot(values, values))
        self.n_valid = self.n - self.n_nan - self.n_inf
        self.mean = self.sum / self.n_valid if self.n_valid else float("nan")
        var = self.sum2 / self.n_valid - self.mean * self.mean if self.n_valid else float("nan")
        self.stddev = float(np.sqrt(max(var, 0.0))) if self.n_valid else float("nan")


class MatrixStats:
    """MatrixStats(x): x is (n, d); read ``comments`` for the findings."""

    def __init__(self, x):
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"MatrixStats: x must be a 2-D (n, d) array, got shape {x.shape}")
        n, d = x.shape
        self.n, self.d = n, d
        lines = [f"analyzing {n} vectors of size {d}"]
        if d > 1024:
            lines.append("indexing this many dimensions is hard, please consider dimensionality reduction "
                         "(with PCAMatrix)")
        self.hash_value = int.from_bytes(hashlib.blake2b(x.tobytes(), digest_size=8).digest(), "little")
        lines.append(f"hash value 0x{self.hash_value:016x}")

        with np.errstate(over="ignore", invalid="ignore"):
            norm2 = np.einsum("ij,ij->i", x.astype(np.float64), x.astype(np.float64))
        valid = np.isfinite(norm2)
        self.n_valid = int(valid.sum())
        self.n0 = int((norm2[valid] == 0).sum())
        nonzero = norm2[valid & (norm2 != 0)]
        self.min_norm2 = float(nonzero.min()) if nonzero.size else float("inf")
        self.max_norm2 = float(nonzero.max()) if nonzero.size else 0.0
        if self.n_valid == n:
            lines.append("no NaN or Infs in data")
        else:
            lines.append(f"{n - self.n_valid} vectors contain NaN or Inf (or have too large components), "
                         "expect bad results with indexing!")

        self.n_collision = 0
        if n:
            rows = x.view(np.dtype((np.void, 4 * d))).ravel() if d else np.zeros(n, dtype="V1")
            _, first, counts = np.unique(rows, return_index=True, return_counts=True)
            distinct = int(first.size)
        else:
            first, counts, distinct = np.zeros(0, np.int64), np.zeros(0, np.int64), 0
        if distinct == n:
            lines.append("all vectors are distinct")
        else:
            lines.append(f"{distinct} vectors are distinct ({distinct * 100.0 / n:.2f}%)")
            most = int(np.argmax(counts))
            lines.append(f"vector {int(first[most])} has {int(counts[most])} copies")

        min_norm, max_norm = np.sqrt(self.min_norm2), np.sqrt(self.max_norm2)
        lines.append(f"range of L2 norms=[{min_norm:g}, {max_norm:g}] ({self.n0} null vectors)")
        if max_norm < min_norm * 1.0001:
            lines.append("vectors are normalized, inner product and L2 search are equivalent")
        if max_norm > min_norm * 100:
            lines.append("vectors have very large differences in norms, is this normal?")

        self.per_dim_stats = [PerDimStats(x[:, j]) for j in range(d)]
        zeros = sum(st.n0 for st in self.per_dim_stats)
        constant = sum(st.max == st.min for st in self.per_dim_stats)
        dangerous = sum(st.max != st.min and st.max < 1.001 * st.min for st in self.per_dim_stats)
        stds = [st.stddev for st in self.per_dim_stats]
        max_std, min_std = max(stds, default=0.0), min(stds, default=float("inf"))
        lines.append("matrix contains no 0s" if zeros == 0 else f"matrix contains {zeros * 100.0 / (n * d):.2f} % 0 entries")
        lines.append("no constant dimensions" if constant == 0 else
                     f"{constant} dimensions are constant: they can be removed")
        lines.append("no dimension has a too large mean" if dangerous == 0 else
                     f"{dangerous} dimensions are too large wrt. their variance, may lose precision in IndexFlatL2 "
                     "(use CenteringTransform)")
        lines.append(f"stddevs per dimension are in [{min_std:g} {max_std:g}]")
        small = sum(s < max_std * 1e-4 for s in stds)
        if small:
            lines.append(f"{small} dimensions have negligible stddev wrt. the largest dimension, they could be ignored")
        self.comments = "\n".join(lines) + "\n"

    def __repr__(self):
        return f"<nearly.MatrixStats n={self.n} d={self.d}>"
