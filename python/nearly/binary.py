"""Recurrent binary embeddings (BEBR): the numpy trainer of RecurrentBinarizer.

The native encoder (C++, all threads) applies the maps fitted here:

    b_0 = sign((x - mean) W)
    for i = 1..u:  f = b B_i + c_i ;  d_i = sign((x - f) R_i + r_i) ;  b += 2^-i d_i

``fit_recurrent`` learns them from the embeddings themselves:

* centering, then PCA to m dims and an ITQ-style rotation refined against the
  multi-level quantizer (alternating: codes for the current rotation and
  scale, scale by least squares, rotation by orthogonal Procrustes);
* for each residual plane, B_i / c_i by least squares (the decode of x from
  the code so far) and R_i / r_i by least squares from the residual x - f to
  the ideal next plane 2^i (x W / alpha - b). The fitted map is kept only when
  it quantizes the training set at least as well as the closed-form successive
  approximation (B_i = alpha W^T, R_i = 2^i W / alpha), which is used otherwise;
* the decoder D / e by least squares from the final code;
* the score scale: alpha^2 2^(-2u) S estimates <x - mean, y - mean>; alpha is
  fitted by least squares on the top-100 true neighbours of 500 training
  queries (the pairs ranking depends on), which ranks better on real
  embeddings than the quantizer's own scale once the exact per-vector
  centering terms are added (MiniLM 100k, 2 bits/dim: recall@10 0.75 vs 0.72).

The plane scales stay fixed at 2^-i, so SDC scores remain exact integers.
"""
import numpy as np

from . import _nearly

__all__ = ["RecurrentBinarizer", "IndexBinaryRecurrent", "fit_recurrent", "fit_params"]

RecurrentBinarizer = _nearly.RecurrentBinarizer
IndexBinaryRecurrent = _nearly.IndexBinaryRecurrent


def _sign(z):
    return 1.0 - 2.0 * (z < 0)


def _quantize(z, nb):
    """Successive approximation: the nearest of the 2^nb levels b = sum_i 2^-i b_i."""
    b = _sign(z)
    for i in range(1, nb):
        b = b + 2.0 ** -i * _sign(z - b)
    return b


def _lstsq_affine(a, y):
    """(M, c) minimizing ||a M + c - y|| (normal equations, a tiny ridge)."""
    a1 = np.hstack([a, np.ones((len(a), 1))])
    g = a1.T @ a1
    g[np.diag_indices_from(g)] += 1e-9 * np.trace(g) / len(g) + 1e-12
    sol = np.linalg.solve(g, a1.T @ y)
    return sol[:-1], sol[-1]


def _calibrate(xc, b, rng, alpha, nq=500, top=100):
    """alpha with alpha^2 <b_q, b_x> ~ <x_q - mean, x - mean> on near pairs."""
    n = len(xc)
    if n < 3:
        return alpha
    qi = rng.choice(n, min(nq, n), replace=False)
    true = xc[qi] @ xc.T
    true[np.arange(len(qi)), qi] = -np.inf
    kk = min(top, n - 1)
    nn = np.argpartition(-true, kk - 1, axis=1)[:, :kk]
    t = np.take_along_axis(true, nn, 1)
    s = np.einsum("qm,qkm->qk", b[qi], b[nn])
    den = (s * s).sum()
    if not np.isfinite(den) or den <= 0 or (s * t).sum() <= 0:
        return alpha
    return float(np.sqrt((s * t).sum() / den))


def _best_scale(z, nb):
    z = z[:5000]
    s = z.std() + 1e-12
    grid = s * np.linspace(0.1, 3.0, 30)
    err = [((z - a * _quantize(z / a, nb)) ** 2).sum() for a in grid]
    return float(grid[int(np.argmin(err))])


def fit_params(x, m, bits_per_dim, method="numpy", **options):
    """The encoder parameters RecurrentBinarizer.train(x, method, **options) sets.

    ``method="numpy"``: :func:`fit_recurrent` (linear maps, no extra
    dependency). ``method="torch"``: :func:`nearly.binary_torch.fit_torch`, the
    authors' model trained contrastively (needs the ``train`` extra: torch);
    the exported maps run in the native encoder, so encoding and search never
    need torch.
    """
    if method == "numpy":
        return fit_recurrent(x, m, bits_per_dim, **options)
    if method == "torch":
        try:
            from . import binary_torch
        except ModuleNotFoundError as e:
            if e.name != "torch":
                raise
            raise ImportError("RecurrentBinarizer.train(method='torch') needs torch: pip install 'nearly[train]'") from e
        return binary_torch.fit_torch(x, m, bits_per_dim, **options)
    raise _nearly.InvalidArgumentError(f"RecurrentBinarizer: unknown training method {method!r} (use 'numpy' or 'torch')")


def fit_recurrent(x, m, bits_per_dim, n_iter=15, max_train=20000, max_rotation=10000, seed=1234):
    """Fits the encoder maps on x (n, d); returns the dict RecurrentBinarizer.set_params takes."""
    x = np.asarray(x, dtype=np.float64)
    nb = int(bits_per_dim)
    n, d = x.shape
    if m > d:
        raise _nearly.InvalidArgumentError(f"RecurrentBinarizer: m={m} must not exceed d={d} for the numpy trainer")
    if n < 2:
        raise _nearly.InvalidArgumentError("RecurrentBinarizer: train needs at least 2 vectors")
    rng = np.random.default_rng(seed)
    if n > max_train:
        x = x[np.sort(rng.choice(n, max_train, replace=False))]
    mean = x.mean(0)
    xc = x - mean
    evals, evecs = np.linalg.eigh(xc.T @ xc / len(xc))
    P = evecs[:, ::-1][:, :m]
    rot = np.sort(rng.choice(len(xc), max_rotation, replace=False)) if len(xc) > max_rotation else slice(None)
    z0 = xc[rot] @ P  # the rotation is fitted on a subsample
    R = np.linalg.qr(rng.standard_normal((m, m)))[0]
    alpha = _best_scale(z0 @ R, nb)
    for _ in range(n_iter):
        z = z0 @ R
        b = _quantize(z / alpha, nb)
        alpha = float((z * b).sum() / (b * b).sum())
        u, _, vt = np.linalg.svd(z0.T @ b)
        R = u @ vt
    W = P @ R
    z = xc @ W / alpha

    b = _sign(z)
    Bs, cs, Rs, rs = [], [], [], []
    for i in range(1, nb):
        target = 2.0 ** i * (z - b)
        want = _sign(target)
        B, c = _lstsq_affine(b, x)
        e = x - (b @ B + c)
        Ri, ri = _lstsq_affine(e, target)
        fitted = _sign(e @ Ri + ri)
        # Closed form: f = mean + alpha b W^T, so (x - f) W / alpha = z - b exactly.
        B0, c0 = alpha * W.T, mean.copy()
        R0, r0 = (2.0 ** i / alpha) * W, np.zeros(m)
        plain = _sign((x - (b @ B0 + c0)) @ R0 + r0)
        err_fit = ((z - (b + 2.0 ** -i * fitted)) ** 2).sum()
        err_plain = ((z - (b + 2.0 ** -i * plain)) ** 2).sum()
        if err_fit <= err_plain and (fitted == want).mean() >= (plain == want).mean():
            Bs.append(B); cs.append(c); Rs.append(Ri); rs.append(ri)
            b = b + 2.0 ** -i * fitted
        else:
            Bs.append(B0); cs.append(c0); Rs.append(R0); rs.append(r0)
            b = b + 2.0 ** -i * plain
    D, e = _lstsq_affine(b, x)
    alpha = _calibrate(xc, b, rng, alpha)
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    return {
        "mean": f32(mean), "W": f32(W), "alpha": float(alpha),
        "B": [f32(a) for a in Bs], "c": [f32(a) for a in cs],
        "R": [f32(a) for a in Rs], "r": [f32(a) for a in rs],
        "D": f32(D), "e": f32(e),
    }
