"""Torch trainer of RecurrentBinarizer: the BEBR authors' model (Gan et al.,
KDD 2023), trained contrastively and exported to the native encoder.

Needs the ``train`` extra (torch); nothing else in nearly imports this module,
so encoding and search never need torch.

The model, as the authors' code builds it:

* maps W: d -> m, B_i: m -> d, R_i: d -> m, each a Linear layer or an MLP
  block Linear -> BatchNorm -> ReLU (``blocks`` times) -> Linear;
* b = sign(W(x - mean)); for i = 1..u: f = normalize(B_i(b)),
  b += 2^-i sign(R_i(x - f)), with a straight-through sign (gradient passed
  where |z| <= 1);
* a symmetric InfoNCE loss over in-batch negatives plus hard negatives.

Two differences from the authors' code, both so that training optimizes what
the index ranks by: the logits are the index's own score, alpha^2 <b_q, b_x>
+ <x, mean> with alpha learned (the authors divide by the code norms, which
SDC never sees), and the input is centered before W (the index adds the exact
centering terms). ``normalize_f`` (unit f, the authors' choice for unit-norm
embeddings) defaults to on when the training vectors are unit norm.

Training data: (query, document) pairs, or the embeddings alone, where each
anchor's positive is one of its ``positives`` exact nearest neighbours and its
mined hard negatives come from ranks ``positives .. hard_rank``.

Export: in eval mode BatchNorm is an affine map per channel, folded into the
Linear before it: A' = A diag(g), a' = (a - running_mean) g + beta, g = gamma /
sqrt(running_var + eps). The native encoder then applies exactly the eval-mode
model (tests/test_binary_torch.py checks the codes bit for bit, up to float
rounding at sign boundaries).
"""
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import _nearly
from .binary import _calibrate, _lstsq_affine, fit_recurrent

__all__ = ["RecurrentBinaryModel", "fit_torch", "export_params", "model_from_params"]


class _SignST(torch.autograd.Function):
    """sign with sign(0) = +1 (as the native encoder); straight-through gradient on |z| <= 1."""

    @staticmethod
    def forward(ctx, z):
        ctx.save_for_backward(z)
        return torch.where(z >= 0, torch.ones_like(z), -torch.ones_like(z))

    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        return g * (z.abs() <= 1).to(g.dtype)


def _map(n_in, n_out, hidden, blocks):
    if hidden == 0:
        return nn.Linear(n_in, n_out)
    layers, w = [], n_in
    for _ in range(blocks):
        layers += [nn.Linear(w, hidden), nn.BatchNorm1d(hidden), nn.ReLU()]
        w = hidden
    layers.append(nn.Linear(w, n_out))
    return nn.Sequential(*layers)


class RecurrentBinaryModel(nn.Module):
    """b = sum_i 2^-i b_i in {-1,+1} levels; forward returns b (n, m)."""

    def __init__(self, d, m, bits_per_dim, hidden=0, blocks=1, normalize_f=True, mean=None):
        super().__init__()
        if not 1 <= bits_per_dim <= 4:
            raise _nearly.InvalidArgumentError(f"bits_per_dim must be in 1..4, got {bits_per_dim}")
        self.d, self.m, self.nb = d, m, bits_per_dim
        self.hidden, self.blocks, self.normalize_f = hidden, blocks, normalize_f
        self.register_buffer("mean", torch.zeros(d) if mean is None else torch.as_tensor(mean, dtype=torch.float32))
        self.W = _map(d, m, hidden, blocks)
        self.B = nn.ModuleList([_map(m, d, hidden, blocks) for _ in range(bits_per_dim - 1)])
        self.R = nn.ModuleList([_map(d, m, hidden, blocks) for _ in range(bits_per_dim - 1)])
        for mod in self.modules():
            if isinstance(mod, nn.Linear):
                nn.init.xavier_normal_(mod.weight)
                nn.init.zeros_(mod.bias)
        # alpha^2 = exp(log_s) / m: the score scale of the index
        self.log_s = nn.Parameter(torch.tensor(0.0))

    def forward(self, x):
        b = _SignST.apply(self.W(x - self.mean))
        for i in range(1, self.nb):
            f = self.B[i - 1](b)
            if self.normalize_f:
                f = F.normalize(f, dim=1)
            b = b + 2.0 ** -i * _SignST.apply(self.R[i - 1](x - f))
        return b

    def alpha2(self):
        return torch.exp(self.log_s) / self.m


def _layers(mod):
    """[(A (in, out), a)] of a map in eval mode, BatchNorm folded into the Linear before it."""
    mods = [mod] if isinstance(mod, nn.Linear) else list(mod)
    out = []
    for j, layer in enumerate(mods):
        if isinstance(layer, nn.Linear):
            A = layer.weight.detach().double().T.clone()
            a = layer.bias.detach().double().clone()
            nxt = mods[j + 1] if j + 1 < len(mods) else None
            if isinstance(nxt, nn.BatchNorm1d):
                g = nxt.weight.detach().double() / torch.sqrt(nxt.running_var.double() + nxt.eps)
                A = A * g[None, :]
                a = (a - nxt.running_mean.double()) * g + nxt.bias.detach().double()
            out.append((np.ascontiguousarray(A.numpy(), np.float32), np.ascontiguousarray(a.numpy(), np.float32)))
        elif not isinstance(layer, (nn.BatchNorm1d, nn.ReLU)):
            raise TypeError(f"cannot export layer {layer!r}")
    return out


def export_params(model, x=None, seed=0):
    """The set_params dict of the native encoder for model (eval mode).

    x (optional, a sample of the data): fits the least-squares decoder; without
    it decode() returns the mean.
    """
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    m, d = model.m, model.d
    mean = model.mean.detach().cpu().numpy().astype(np.float64)
    D, e = np.zeros((m, d)), mean.copy()
    if x is not None:
        was = model.training
        model.eval()
        with torch.no_grad():
            b = model(torch.from_numpy(np.array(x, np.float32))).double().numpy()
        model.train(was)
        D, e = _lstsq_affine(b, np.asarray(x, np.float64))
    return {
        "mean": f32(mean), "alpha": float(math.sqrt(float(model.alpha2().detach()))),
        "W_layers": _layers(model.W),
        "B_layers": [_layers(mod) for mod in model.B],
        "R_layers": [_layers(mod) for mod in model.R],
        "normalize_f": bool(model.normalize_f),
        "D": f32(D), "e": f32(e),
    }


def model_from_params(p, d, m, bits_per_dim):
    """A linear model (hidden=0) holding the linear maps of a fit_recurrent dict (the numpy warm start)."""
    model = RecurrentBinaryModel(d, m, bits_per_dim, hidden=0, normalize_f=False, mean=p["mean"])
    with torch.no_grad():
        model.W.weight.copy_(torch.as_tensor(np.asarray(p["W"]).T))
        model.W.bias.zero_()
        for i in range(bits_per_dim - 1):
            model.B[i].weight.copy_(torch.as_tensor(np.asarray(p["B"][i]).T))
            model.B[i].bias.copy_(torch.as_tensor(p["c"][i]))
            model.R[i].weight.copy_(torch.as_tensor(np.asarray(p["R"][i]).T))
            model.R[i].bias.copy_(torch.as_tensor(p["r"][i]))
        model.log_s.fill_(math.log(p["alpha"] ** 2 * m))
    return model


def _neighbours(x, k):
    """Indices of the k exact inner-product neighbours of every row of x in x (self excluded)."""
    index = _nearly.IndexFlatIP(x.shape[1])
    index.add(x)
    _, I = index.search(x, k + 1)
    out = np.empty((len(x), k), np.int64)
    for r in range(len(x)):
        row = I[r][I[r] != r][:k]
        out[r] = row if len(row) == k else np.resize(row, k)
    return out


def fit_torch(x, m, bits_per_dim, *, pairs=None, hidden=0, blocks=1, init=None, normalize_f=None,
              epochs=10, batch_size=512, lr=None, weight_decay=0.0, temperature=0.05,
              positives=10, hard_negatives=4, hard_rank=100, max_train=20000, seed=1234,
              time_limit=None, verbose=False, return_model=False):
    """Trains the BEBR model on x (n, d) and returns the native encoder's parameters.

    pairs: optional (queries, documents), two (p, d) arrays of positive pairs
        (row i of each); x then only provides the centering mean, the decoder
        fit and the scale. Without pairs, embedding-to-embedding: the positive
        of an anchor is one of its ``positives`` exact neighbours in x, its
        ``hard_negatives`` mined negatives are drawn from neighbour ranks
        positives .. hard_rank.
    hidden, blocks: 0 = linear maps; > 0 = the authors' MLP block
        (Linear -> BatchNorm -> ReLU) x blocks -> Linear of width hidden.
    init: "numpy" (linear maps only: start from fit_recurrent's solution) or
        "random" (Xavier, as the authors); default "numpy" when hidden == 0.
    normalize_f: unit-normalize B_i(b) (the authors' model); default: on when
        the training vectors are unit norm, and off for the numpy warm start
        (its B_i decode x itself).
    time_limit: stop after this many seconds (the epochs then run short).
    return_model: also return the trained torch model (eval mode).
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    n, d = x.shape
    nb = int(bits_per_dim)
    if not 1 <= nb <= 4:
        raise _nearly.InvalidArgumentError(f"bits_per_dim must be in 1..4, got {bits_per_dim}")
    if m <= 0 or m % 8:
        raise _nearly.InvalidArgumentError(f"the code dimension m must be a positive multiple of 8, got {m}")
    if init is None:
        init = "numpy" if hidden == 0 else "random"
    if init not in ("numpy", "random"):
        raise _nearly.InvalidArgumentError(f"init must be 'numpy' or 'random', got {init!r}")
    if init == "numpy" and hidden:
        raise _nearly.InvalidArgumentError("init='numpy' needs linear maps (hidden=0)")
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    if n > max_train:
        x = x[np.sort(rng.choice(n, max_train, replace=False))]
        n = len(x)
    if not x.flags.writeable:  # torch.from_numpy wants a writable array
        x = x.copy()
    if pairs is not None:
        xq, xd = (np.ascontiguousarray(a, dtype=np.float32) for a in pairs)
        if xq.ndim != 2 or xq.shape != xd.shape or xq.shape[1] != d or len(xq) < 2:
            raise _nearly.InvalidArgumentError(f"pairs must be two arrays of the same shape (p, {d}), p >= 2")
        npos = len(xq)
    else:
        if n < positives + 2:
            raise _nearly.InvalidArgumentError(f"embedding-to-embedding training needs more than {positives + 1} vectors")
        hard_rank = min(hard_rank, n - 1)
        if hard_rank <= positives:
            hard_negatives = 0
        nbr = _neighbours(x, max(positives, hard_rank))
        npos = n
    mean = x.mean(0)
    if normalize_f is None:
        unit = np.abs(np.linalg.norm(x[:1000], axis=1) - 1).max() < 1e-3
        normalize_f = bool(unit) and init != "numpy"
    if init == "numpy":
        model = model_from_params(fit_recurrent(x, m, nb, seed=seed), d, m, nb)
        model.normalize_f = normalize_f
    else:
        model = RecurrentBinaryModel(d, m, nb, hidden=hidden, blocks=blocks, normalize_f=normalize_f, mean=mean)
        with torch.no_grad():  # alpha^2 <b, b'> of the size of <x - mean, y - mean>
            eb2 = sum(4.0 ** -i for i in range(nb))
            model.log_s.fill_(math.log(float(((x - mean) ** 2).sum(1).mean()) / eb2))
    if lr is None:
        lr = 1e-5 if init == "numpy" else 1e-3
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = max(1, npos // batch_size)
    total = max(1, epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    xt = torch.from_numpy(x)
    mean_t = torch.from_numpy(mean)
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, _nearly.omp_get_max_threads()))
    t0 = time.perf_counter()
    H = hard_negatives if pairs is None else 0
    try:
        model.train()
        step = 0
        for ep in range(epochs):
            perm = rng.permutation(npos)
            tot = 0.0
            for s in range(steps_per_epoch):
                idx = perm[s * batch_size:(s + 1) * batch_size]
                if pairs is not None:
                    a_x, p_x = torch.from_numpy(xq[idx]), torch.from_numpy(xd[idx])
                    same_a = same_b = None
                else:
                    pos = nbr[idx, rng.integers(0, positives, len(idx))]
                    a_x, p_x = xt[idx], xt[pos]
                    # no negatives that are the positive itself: another anchor's positive equal to
                    # mine, the anchor itself among the positives (la), my positive among the anchors (lb)
                    dup = pos[None, :] == pos[:, None]
                    same_a = torch.from_numpy(dup | (pos[None, :] == idx[:, None]))
                    same_b = torch.from_numpy(dup | (idx[None, :] == pos[:, None]))
                    same_a.fill_diagonal_(False)
                    same_b.fill_diagonal_(False)
                parts = [a_x, p_x]
                if H:
                    hn = nbr[idx[:, None], rng.integers(positives, hard_rank, (len(idx), H))]
                    parts.append(xt[hn.reshape(-1)])
                bsz = len(idx)
                codes = model(torch.cat(parts))
                ba, bp = codes[:bsz], codes[bsz:2 * bsz]
                a2 = model.alpha2()
                # the index's ranking score: alpha^2 <b_q, b_x> + <x, mean>
                la = (a2 * ba @ bp.T + (p_x @ mean_t)[None, :]) / temperature
                lb = (a2 * bp @ ba.T + (a_x @ mean_t)[None, :]) / temperature
                if same_a is not None:
                    la = la.masked_fill(same_a, -1e9)
                    lb = lb.masked_fill(same_b, -1e9)
                if H:
                    bh = codes[2 * bsz:].view(bsz, H, -1)
                    xh = parts[2].view(bsz, H, -1)
                    lh = (a2 * torch.einsum("bm,bhm->bh", ba, bh) + xh @ mean_t) / temperature
                    la = torch.cat([la, lh], 1)
                target = torch.arange(bsz)
                loss = F.cross_entropy(la, target) + F.cross_entropy(lb, target)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                step += 1
                tot += loss.item()
                if time_limit is not None and time.perf_counter() - t0 > time_limit:
                    break
            if verbose:
                print(f"[fit_torch] epoch {ep + 1}/{epochs}: loss {tot / max(1, s + 1):.4f} "
                      f"({time.perf_counter() - t0:.1f} s)", flush=True)
            if time_limit is not None and time.perf_counter() - t0 > time_limit:
                break
    finally:
        torch.set_num_threads(threads)
    model.eval()
    p = export_params(model, x[:min(n, 20000)])
    # alpha: the learned scale ranks as trained; recalibrate only if it degenerated
    if not np.isfinite(p["alpha"]) or p["alpha"] <= 0:
        with torch.no_grad():
            b = model(xt).double().numpy()
        p["alpha"] = _calibrate(x.astype(np.float64) - mean, b, rng, 1.0)
    return (p, model) if return_model else p
