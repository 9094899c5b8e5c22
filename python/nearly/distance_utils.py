"""faiss's vector helpers from utils/distances.h and utils/utils.h in its
pointer style (swig_ptr hands over the arrays themselves): fvec_L2sqr_ny /
fvec_inner_products_ny / fvec_L2sqr / fvec_inner_product with faiss's
argument lists beside nearly's array forms, fvec_norm(s)_L2(sqr),
fvec_renorm_L2, fvec_L1 / fvec_Linf, the *_by_idx and pairwise_indexed_*
forms, fvec_madd(_and_argmin), ranklist_intersection_size, and the id maps
MapLong2Long / MapInt64ToInt64. Sizes are checked where faiss would read or
write past an array; the distance kernels are nearly's SIMD ones."""
import numpy as np

from . import _nearly
from .compat import pointer_view


def _f32(ptr, n, what, writeable=False):
    """The first n float32 values that swig_ptr handed over."""
    return pointer_view(ptr, n, (np.float32,), what, writeable)


def _ids(ptr, n, what):
    return pointer_view(ptr, n, (np.int64,), what)


def _rows(ptr, n, d, what):
    return _f32(ptr, int(n) * int(d), what).reshape(int(n), int(d))


def fvec_L2sqr_ny(*args):
    """fvec_L2sqr_ny(q, x) -> squared L2 distances of q to the rows of x
    (nearly's form), or faiss's fvec_L2sqr_ny(dis, x, y, d, ny)."""
    if len(args) == 2:
        return _nearly.fvec_L2sqr_ny(*args)
    dis, x, y, d, ny = args
    _f32(dis, ny, "fvec_L2sqr_ny dis", True)[:] = _nearly.fvec_L2sqr_ny(_f32(x, d, "fvec_L2sqr_ny x"),
                                                                        _rows(y, ny, d, "fvec_L2sqr_ny y"))


def fvec_inner_products_ny(*args):
    """fvec_inner_products_ny(q, x) (nearly's form), or faiss's
    fvec_inner_products_ny(ip, x, y, d, ny)."""
    if len(args) == 2:
        return _nearly.fvec_inner_products_ny(*args)
    ip, x, y, d, ny = args
    _f32(ip, ny, "fvec_inner_products_ny ip", True)[:] = _nearly.fvec_inner_products_ny(
        _f32(x, d, "fvec_inner_products_ny x"), _rows(y, ny, d, "fvec_inner_products_ny y"))


def fvec_L2sqr(x, y, d=None):
    """Squared L2 distance of two vectors: (x, y) or faiss's (x, y, d)."""
    if d is None:
        return _nearly.fvec_L2sqr(x, y)
    return _nearly.fvec_L2sqr(_f32(x, d, "fvec_L2sqr x"), _f32(y, d, "fvec_L2sqr y"))


def fvec_inner_product(x, y, d=None):
    """Inner product of two vectors: (x, y) or faiss's (x, y, d)."""
    if d is None:
        return _nearly.fvec_inner_product(x, y)
    return _nearly.fvec_inner_product(_f32(x, d, "fvec_inner_product x"), _f32(y, d, "fvec_inner_product y"))


def fvec_norm_L2sqr(x, d):
    v = _f32(x, d, "fvec_norm_L2sqr x")
    return _nearly.fvec_inner_product(v, v)


def fvec_L1(x, y, d):
    return float(np.abs(_f32(x, d, "fvec_L1 x") - _f32(y, d, "fvec_L1 y")).sum(dtype=np.float32))


def fvec_Linf(x, y, d):
    return float(np.abs(_f32(x, d, "fvec_Linf x") - _f32(y, d, "fvec_Linf y")).max(initial=0))


def fvec_norms_L2sqr(norms, x, d, nx):
    X = _rows(x, nx, d, "fvec_norms_L2sqr x")
    _f32(norms, nx, "fvec_norms_L2sqr norms", True)[:] = np.einsum("ij,ij->i", X, X)


def fvec_norms_L2(norms, x, d, nx):
    X = _rows(x, nx, d, "fvec_norms_L2 x")
    _f32(norms, nx, "fvec_norms_L2 norms", True)[:] = np.sqrt(np.einsum("ij,ij->i", X, X))


def fvec_renorm_L2(d, nx, x):
    """Scales the nx rows of x to unit L2 norm, in place (zero rows stay)."""
    flat = _f32(x, int(nx) * int(d), "fvec_renorm_L2 x", True)
    _nearly.normalize_L2(flat.reshape(int(nx), int(d)))


def _by_idx(out, x, y, ids, d, nx, ny, what, metric):
    d, nx, ny = int(d), int(nx), int(ny)
    X = _rows(x, nx, d, what + " x")
    I = _ids(ids, nx * ny, what + " ids").reshape(nx, ny)
    res = _f32(out, nx * ny, what + " out", True).reshape(nx, ny)
    _f32(y, 0, what + " y")  # type checks
    ymax = y.size // d if d else 0
    valid = I >= 0
    if (I[valid] >= ymax).any():
        raise IndexError(f"{what}: an id is past the {ymax} rows of y")
    Y = y.reshape(-1)[: ymax * d].reshape(ymax, d)
    rows = Y[np.where(valid, I, 0)]  # (nx, ny, d)
    if metric == "ip":
        vals = np.einsum("ijk,ik->ij", rows, X)
    else:
        diff = rows - X[:, None, :]
        vals = np.einsum("ijk,ijk->ij", diff, diff)
    res[:] = np.where(valid, vals, -np.inf if metric == "ip" else np.inf)  # id -1: the worst value, as faiss


def fvec_inner_products_by_idx(ip, x, y, ids, d, nx, ny):
    """ip[i, j] = <x_i, y[ids[i, j]]> (-inf for id -1)."""
    _by_idx(ip, x, y, ids, d, nx, ny, "fvec_inner_products_by_idx", "ip")


def fvec_L2sqr_by_idx(dis, x, y, ids, d, nx, ny):
    """dis[i, j] = ||x_i - y[ids[i, j]]||^2 (+inf for id -1)."""
    _by_idx(dis, x, y, ids, d, nx, ny, "fvec_L2sqr_by_idx", "l2")


def _pairwise_indexed(d, n, x, ix, y, iy, dis, what, metric):
    d, n = int(d), int(n)
    IX, IY = _ids(ix, n, what + " ix"), _ids(iy, n, what + " iy")
    X = x.reshape(-1)
    Y = y.reshape(-1)
    if not isinstance(x, np.ndarray) or x.dtype != np.float32 or not isinstance(y, np.ndarray) or \
            y.dtype != np.float32:
        raise TypeError(f"{what}: x and y must be float32 arrays")
    nxr, nyr = X.size // max(d, 1), Y.size // max(d, 1)
    if n and (IX.min() < 0 or IX.max() >= nxr or IY.min() < 0 or IY.max() >= nyr):
        raise IndexError(f"{what}: an index is outside x ({nxr} rows) or y ({nyr} rows)")
    A, B = X[: nxr * d].reshape(nxr, d)[IX], Y[: nyr * d].reshape(nyr, d)[IY]
    out = _f32(dis, n, what + " dis", True)
    out[:] = np.einsum("ij,ij->i", A, B) if metric == "ip" else np.einsum("ij,ij->i", A - B, A - B)


def pairwise_indexed_L2sqr(d, n, x, ix, y, iy, dis):
    """dis[j] = ||x[ix[j]] - y[iy[j]]||^2."""
    _pairwise_indexed(d, n, x, ix, y, iy, dis, "pairwise_indexed_L2sqr", "l2")


def pairwise_indexed_inner_product(d, n, x, ix, y, iy, dis):
    """dis[j] = <x[ix[j]], y[iy[j]]>."""
    _pairwise_indexed(d, n, x, ix, y, iy, dis, "pairwise_indexed_inner_product", "ip")


def fvec_madd(n, a, bf, b, c):
    """c = a + bf * b over n floats."""
    _f32(c, n, "fvec_madd c", True)[:] = _f32(a, n, "fvec_madd a") + np.float32(bf) * _f32(b, n, "fvec_madd b")


def fvec_madd_and_argmin(n, a, bf, b, c):
    """c = a + bf * b, and the index of c's smallest value (-1 when n = 0)."""
    fvec_madd(n, a, bf, b, c)
    return int(np.argmin(c.reshape(-1)[: int(n)])) if int(n) else -1


def ranklist_intersection_size(k1, v1, k2, v2):
    """How many distinct ids (>= 0) the two lists share."""
    a = np.unique(_ids(v1, k1, "ranklist_intersection_size v1"))
    b = np.unique(_ids(v2, k2, "ranklist_intersection_size v2"))
    return int(np.intersect1d(a[a >= 0], b[b >= 0], assume_unique=True).size)


class MapInt64ToInt64:
    """faiss's MapInt64ToInt64: int64 keys to int64 values, -1 for a
    missing key. faiss's is an open-addressing table of a fixed capacity;
    this one grows (capacity is kept for the API). Keys must be >= 0 as in
    faiss; adding a key again replaces its value."""

    def __init__(self, capacity=0):
        self.capacity = int(capacity)
        self._keys = np.zeros(0, np.int64)
        self._vals = np.zeros(0, np.int64)

    def add(self, keys, vals):
        keys = np.ascontiguousarray(keys, dtype=np.int64).reshape(-1)
        vals = np.ascontiguousarray(vals, dtype=np.int64).reshape(-1)
        if keys.shape != vals.shape:
            raise ValueError(f"add: {keys.size} keys but {vals.size} values")
        if keys.size and keys.min() < 0:
            raise ValueError("add: keys must be >= 0")
        allk = np.concatenate([self._keys, keys])
        allv = np.concatenate([self._vals, vals])
        # the last value given for a key wins
        order = np.argsort(allk, kind="stable")
        allk, allv = allk[order], allv[order]
        last = np.ones(allk.size, bool)
        last[:-1] = allk[1:] != allk[:-1]
        self._keys, self._vals = allk[last], allv[last]

    def lookup(self, keys):
        keys = np.ascontiguousarray(keys, dtype=np.int64).reshape(-1)
        pos = np.searchsorted(self._keys, keys)
        pos = np.minimum(pos, max(self._keys.size - 1, 0))
        found = (self._keys.size > 0) & (self._keys[pos] == keys) if self._keys.size else np.zeros(keys.size, bool)
        return np.where(found, self._vals[pos] if self._keys.size else -1, -1).astype(np.int64)

    def size(self):
        return int(self._keys.size)


class MapLong2Long(MapInt64ToInt64):
    """faiss's MapLong2Long: add(keys, vals), search(key) (-1 if missing),
    search_multiple(keys)."""

    def search(self, key):
        return int(self.lookup(np.array([key]))[0])

    def search_multiple(self, keys):
        return self.lookup(keys)
