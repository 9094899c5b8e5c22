"""The torch trainer of RecurrentBinarizer (extra 'train'): the exported maps
run in the native encoder and give the torch model's codes; training improves
on the untrained model; torch is never needed to import nearly."""
import subprocess
import sys

import numpy as np
import pytest

import nearly
from _hnswutil import real_data
from test_binary_sdc import levels_np

torch = pytest.importorskip("torch")
from nearly import binary_torch  # noqa: E402


@pytest.fixture(scope="module")
def data():
    base, queries = real_data()
    return np.ascontiguousarray(base[:5000]), np.ascontiguousarray(queries[:100])


def torch_levels(model, x):
    model.eval()
    with torch.no_grad():
        b = model(torch.from_numpy(np.array(x, np.float32))).double().numpy()
    return np.rint(b * 2 ** (model.nb - 1)).astype(np.int64)


def native_levels(params, x, d, m, nb):
    enc = nearly.RecurrentBinarizer(d, m, nb)
    enc.set_params(params)
    return levels_np(enc.encode(x), m, nb), enc


def shake_batchnorm(model, x, steps=3):
    """A few optimizer steps in train mode: BatchNorm running stats and weights away from their init."""
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    model.train()
    xt = torch.as_tensor(x)
    for _ in range(steps):
        loss = (model(xt) * torch.randn(len(x), model.m)).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            for mod in model.modules():
                if isinstance(mod, torch.nn.BatchNorm1d):
                    mod.weight.uniform_(0.5, 1.5)
                    mod.bias.uniform_(-0.2, 0.2)


@pytest.mark.parametrize("nb", [1, 2, 3, 4])
@pytest.mark.parametrize("hidden,blocks,normalize_f", [(0, 1, False), (0, 1, True), (96, 1, True), (48, 2, False)])
def test_export_matches_torch_eval(data, nb, hidden, blocks, normalize_f):
    x, _ = data
    torch.manual_seed(nb * 10 + hidden)
    d, m = 384, 64
    model = binary_torch.RecurrentBinaryModel(d, m, nb, hidden=hidden, blocks=blocks, normalize_f=normalize_f,
                                              mean=x.mean(0))
    if hidden:
        shake_batchnorm(model, x[:512])
    model.eval()
    p = binary_torch.export_params(model, x[:2000])
    L_native, enc = native_levels(p, x[2000:3000], d, m, nb)
    L_torch = torch_levels(model, x[2000:3000])
    # float32 GEMMs in two libraries: only values within rounding of 0 may flip
    # (a flip in plane i changes the residual of the planes after it)
    assert (L_native != L_torch).mean() < 2e-3
    assert (L_native == L_torch).all(1).mean() > 0.7
    # the exported encoder survives persistence bit for bit (layered format)
    index = nearly.IndexBinaryRecurrent(d, m, nb)
    index.binarizer.set_params(p)
    index2 = nearly.deserialize_index(nearly.serialize_index(index))
    assert index2.is_trained
    np.testing.assert_array_equal(index2.binarizer.encode(x[:300]), enc.encode(x[:300]))


def test_export_folds_batchnorm_numpy_reference(data):
    """The exported layers, applied in float64 numpy (ReLU between layers), give the model's pre-sign values."""
    x, _ = data
    torch.manual_seed(3)
    model = binary_torch.RecurrentBinaryModel(384, 32, 1, hidden=64, blocks=2, mean=x.mean(0))
    shake_batchnorm(model, x[:256])
    model.eval()
    p = binary_torch.export_params(model)
    v = x[:200].astype(np.float64) - p["mean"]
    for j, (A, a) in enumerate(p["W_layers"]):
        v = v @ A.astype(np.float64) + a
        if j + 1 < len(p["W_layers"]):
            v = np.maximum(v, 0)
    with torch.no_grad():
        want = model.W(torch.as_tensor(x[:200]) - model.mean).double().numpy()
    np.testing.assert_allclose(v, want, atol=1e-4)
    assert len(p["W_layers"]) == 3  # BatchNorm left no layer of its own


def recall_codes(enc, xb, xq, k=10):
    gt = np.argsort(-(xq @ xb.T), axis=1)[:, :k]
    S = levels_np(enc.encode(xq), enc.m, enc.bits_per_dim) @ levels_np(enc.encode(xb), enc.m, enc.bits_per_dim).T
    est = enc.alpha ** 2 * S / 4 ** (enc.bits_per_dim - 1) + (xb @ enc.mean)[None]
    I = np.argsort(-est, axis=1, kind="stable")[:, :k]
    return np.mean([len(set(a) & set(b)) / k for a, b in zip(I, gt)])


@pytest.mark.parametrize("hidden", [0, 128])
def test_training_improves_recall(data, hidden):
    x, q = data
    kw = dict(init="random", hidden=hidden, max_train=4000, batch_size=256, seed=7)
    before = nearly.RecurrentBinarizer(384, 64, 2)
    before.train(x[:4000], method="torch", epochs=0, **kw)
    after = nearly.RecurrentBinarizer(384, 64, 2)
    after.train(x[:4000], method="torch", epochs=6, **kw)
    r0, r1 = recall_codes(before, x, q), recall_codes(after, x, q)
    assert r1 > r0 + 0.05, (r0, r1)


def test_pairs_training_and_index(data):
    """(query, document) pairs: the index trains through the torch path and searches."""
    x, q = data
    rng = np.random.default_rng(0)
    docs = x[:2000]
    noisy = docs + 0.05 * rng.standard_normal(docs.shape).astype(np.float32)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    index = nearly.IndexBinaryRecurrent(384, 64, 2)
    index.train(x[:3000], method="torch", pairs=(noisy, docs), epochs=2, init="random", batch_size=256)
    assert index.is_trained
    index.add(docs)
    _, I = index.search(noisy[:200], 10)
    assert (I[:, 0] == np.arange(200)).mean() > 0.5  # a noisy copy finds its document


def test_numpy_init_reproduces_numpy_codes(data):
    x, _ = data
    p = nearly.binary.fit_recurrent(x[:3000], 64, 3)
    model = binary_torch.model_from_params(p, 384, 64, 3)
    L_native, _ = native_levels(p, x[3000:4000], 384, 64, 3)
    assert (torch_levels(model, x[3000:4000]) != L_native).mean() < 2e-3


def test_bad_options(data):
    x, _ = data
    enc = nearly.RecurrentBinarizer(384, 64, 2)
    with pytest.raises(ValueError, match="unknown training method"):
        enc.train(x[:100], method="tensorflow")
    with pytest.raises(ValueError, match="init='numpy' needs linear maps"):
        enc.train(x[:100], method="torch", hidden=32, init="numpy")
    with pytest.raises(ValueError, match="pairs"):
        enc.train(x[:100], method="torch", pairs=(x[:10], x[:9]))
    with pytest.raises(TypeError):
        enc.train(x[:100], method="torch", no_such_option=1)
    assert not enc.is_trained
    with pytest.raises(ValueError, match="layer widths do not chain|wrong shape|must map"):
        enc.set_params({"mean": np.zeros(384, np.float32), "alpha": 1.0,
                        "W_layers": [(np.zeros((384, 10), np.float32), np.zeros(10, np.float32)),
                                     (np.zeros((11, 64), np.float32), np.zeros(64, np.float32))],
                        "B_layers": [[(np.zeros((64, 384), np.float32), np.zeros(384, np.float32))]],
                        "R_layers": [[(np.zeros((384, 64), np.float32), np.zeros(64, np.float32))]],
                        "D": np.zeros((64, 384), np.float32), "e": np.zeros(384, np.float32)})


def test_import_never_needs_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import numpy as np, nearly\n"
            "x = np.random.default_rng(0).standard_normal((500, 32)).astype('float32')\n"
            "i = nearly.index_factory(32, 'RBE32x2'); i.train(x); i.add(x); i.search(x[:3], 5)\n"
            "try:\n"
            "    i.train(x, method='torch')\n"
            "except ImportError as e:\n"
            "    assert 'nearly[train]' in str(e), e\n"
            "else:\n"
            "    raise SystemExit('no ImportError')\n"
            "assert 'nearly.binary_torch' not in sys.modules or sys.modules['nearly.binary_torch'] is None\n")
    subprocess.run([sys.executable, "-c", code], check=True)
