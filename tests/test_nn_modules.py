"""nn modules: registration and names as PyTorch gives them, PyTorch-layout state dicts (as numpy arrays) that
load and give the same outputs and gradients as the formulas, train/eval, dtype conversion, init, clipping."""

import collections

import numpy as np
import pytest

import bigcore
import bigcore.nn as nn
import bigcore.nn.functional as F
from check import check_op, rand


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.norm = nn.LayerNorm(4)
        self.layers = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 2, bias=False)])
        self.heads = nn.ModuleDict({"a": nn.Linear(2, 1)})
        self.register_buffer("scale", bigcore.ones(2))
        self.register_buffer("scratch", bigcore.zeros(1), persistent=False)

    def forward(self, x):
        h = self.norm(self.fc(x))
        for layer in self.layers:
            h = layer(h)
        return self.heads["a"](h * self.scale)


def test_parameter_names_and_shapes_follow_pytorch():
    m = Block()
    names = {n: p.shape for n, p in m.named_parameters()}
    assert names == {
        "fc.weight": (4, 3), "fc.bias": (4,), "norm.weight": (4,), "norm.bias": (4,),
        "layers.0.weight": (4, 4), "layers.0.bias": (4,), "layers.1.weight": (2, 4),
        "heads.a.weight": (1, 2), "heads.a.bias": (1,),
    }
    # PyTorch's order: a module's own parameters and persistent buffers, then its children's, depth first
    assert list(m.state_dict()) == ["scale"] + list(names)
    assert "scratch" not in m.state_dict()
    assert nn.Embedding(10, 3).weight.shape == (10, 3)
    assert [n for n, _ in m.named_children()] == ["fc", "norm", "layers", "heads"]
    assert len(list(m.modules())) == 8  # Block, fc, norm, layers, layers.0, layers.1, heads, heads.a


def test_shared_parameters_are_listed_once():
    m = nn.Module()
    m.a = nn.Linear(2, 2)
    m.b = m.a
    assert len(list(m.parameters())) == 2


def test_load_numpy_state_dict_and_match_the_formula(rng):
    m = Block()
    sd = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in m.state_dict().items()}
    kept = m.fc.weight
    m.load_state_dict(sd)
    assert m.fc.weight is kept  # in place: optimizers holding the parameter see the values
    np.testing.assert_array_equal(m.fc.weight.numpy(), sd["fc.weight"])
    x = rng.standard_normal((5, 3)).astype(np.float32)
    h = x @ sd["fc.weight"].T + sd["fc.bias"]
    h = (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + 1e-5) * sd["norm.weight"] + sd["norm.bias"]
    h = h @ sd["layers.0.weight"].T + sd["layers.0.bias"]
    h = h @ sd["layers.1.weight"].T
    want = (h * sd["scale"]) @ sd["heads.a.weight"].T + sd["heads.a.bias"]
    np.testing.assert_allclose(m(bigcore.tensor(x)).numpy(), want, rtol=1e-5, atol=1e-5)


def test_load_state_dict_errors_and_non_strict():
    m = nn.Linear(3, 2)
    with pytest.raises(RuntimeError, match='Missing key.*"bias"'):
        m.load_state_dict({"weight": np.zeros((2, 3))})
    with pytest.raises(RuntimeError, match='Unexpected key.*"extra"'):
        m.load_state_dict({"weight": np.zeros((2, 3)), "bias": np.zeros(2), "extra": np.zeros(1)})
    with pytest.raises(RuntimeError, match=r"size mismatch for weight.*\(3, 2\)"):
        m.load_state_dict({"weight": np.zeros((3, 2)), "bias": np.zeros(2)})
    before = m.weight.numpy().copy()
    keys = m.load_state_dict({"bias": np.ones(2), "other": np.ones(1)}, strict=False)
    assert keys.missing_keys == ["weight"] and keys.unexpected_keys == ["other"]
    np.testing.assert_array_equal(m.weight.numpy(), before)
    np.testing.assert_array_equal(m.bias.numpy(), [1, 1])


@pytest.mark.parametrize("shape,bias", [((4, 3), True), ((2, 5, 3), False), ((0, 3), True)])
def test_linear_module_matches_reference(shape, bias, rng):
    lin = nn.Linear(3, 5, bias=bias, dtype=bigcore.float64)
    x = rand(rng, shape)
    w = lin.weight.numpy()
    ins = [x, w] + ([lin.bias.numpy()] if bias else [])
    check_op("linear", lambda *t: F.linear(*t), ins)
    lin.load_state_dict({"weight": w, **({"bias": ins[2]} if bias else {})})
    np.testing.assert_allclose(lin(bigcore.tensor(x)).numpy(), x @ w.T + (ins[2] if bias else 0), rtol=1e-12)


def test_default_initialization_follows_pytorch():
    bigcore.manual_seed(0)
    lin = nn.Linear(400, 300)
    bound = 1 / np.sqrt(400)
    w = lin.weight.numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.01 * bound  # U(-b, b) has std b / sqrt(3)
    emb = nn.Embedding(1000, 50, padding_idx=3).weight.numpy()
    assert abs(emb.std() - 1) < 0.02 and not emb[3].any()
    ln = nn.LayerNorm((2, 3))
    assert (ln.weight.numpy() == 1).all() and (ln.bias.numpy() == 0).all()


def test_init_functions_fill_in_place_and_repeat_with_the_seed():
    t = nn.Parameter(bigcore.zeros(200, 100))
    bigcore.manual_seed(5)
    nn.init.xavier_uniform_(t)
    a = np.sqrt(6 / 300)
    v = t.numpy()
    assert np.abs(v).max() <= a and np.abs(v).max() > 0.95 * a
    bigcore.manual_seed(5)
    np.testing.assert_array_equal(nn.init.xavier_uniform_(nn.Parameter(bigcore.zeros(200, 100))).numpy(), v)
    nn.init.kaiming_normal_(t, nonlinearity="relu")
    assert abs(t.numpy().std() - np.sqrt(2 / 100)) < 0.01
    nn.init.trunc_normal_(t, std=0.02, a=-0.03, b=0.03)
    assert np.abs(t.numpy()).max() <= 0.03
    nn.init.constant_(t, 0.5)
    assert (t.numpy() == 0.5).all()
    assert nn.init.calculate_gain("tanh") == pytest.approx(5 / 3)


def test_train_eval_switches_dropout():
    m = nn.Sequential(nn.Dropout(0.5))
    x = bigcore.ones(100, 100)
    assert (m(x).numpy() == 0).any()
    m.eval()
    assert not m.training and not m[0].training
    np.testing.assert_array_equal(m(x).numpy(), x.numpy())
    assert m.train() is m and m[0].training


def test_to_double_and_zero_grad():
    m = nn.Linear(3, 2)
    w = m.weight
    m.double()
    assert m.weight is w and w.dtype is bigcore.float64 and w.requires_grad
    m(bigcore.ones(1, 3, dtype=bigcore.float64)).sum().backward()
    assert w.grad.dtype is bigcore.float64
    m.zero_grad()
    assert w.grad is None


def test_sequential_ordered_dict_slicing_and_repr():
    m = nn.Sequential(collections.OrderedDict([("fc", nn.Linear(2, 3)), ("act", nn.GELU(approximate="tanh"))]))
    assert [n for n, _ in m.named_parameters()] == ["fc.weight", "fc.bias"]
    assert isinstance(m[1], nn.GELU) and len(m[:1]) == 1
    assert repr(m) == "Sequential(\n  (fc): Linear(in_features=2, out_features=3, bias=True)\n  (act): GELU(approximate='tanh')\n)"


def test_module_attribute_rules():
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="parameter 'weight'"):
        m.weight = bigcore.ones(2, 2)
    m.weight = nn.Parameter(bigcore.ones(2, 2))
    assert m.weight.numpy().sum() == 4
    with pytest.raises(AttributeError, match="no attribute"):
        m.nothing

    class Bad(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match="__init__"):
        Bad()
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(1)


# loss and activation modules against the numpy reference (tests/reference.py), forward and gradients: never
# against the F functions the modules themselves call

@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_loss_module(reduction, rng):
    x, y = rand(rng, (6, 4)), rng.integers(0, 4, 6)
    y[2] = -1
    check_op("cross_entropy", lambda a, b: nn.CrossEntropyLoss(ignore_index=-1, label_smoothing=0.1, reduction=reduction)(a, b),
             [x, y], kwargs={"ignore_index": -1, "label_smoothing": 0.1, "reduction": reduction})
    w = rng.uniform(0.5, 2.0, 4)
    check_op("cross_entropy_weighted", lambda a, b, c: nn.CrossEntropyLoss(weight=c, ignore_index=-1, reduction=reduction)(a, b),
             [x, y, w], diff=[0], kwargs={"ignore_index": -1, "reduction": reduction})


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_module(reduction, rng):
    x, y, w = rand(rng, (6, 4)), rng.integers(0, 4, 6), rng.uniform(0.5, 2.0, 4)
    check_op("nll_loss", lambda a, b: nn.NLLLoss(reduction=reduction)(a, b), [x, y], kwargs={"reduction": reduction})
    check_op("nll_loss", lambda a, b, c: nn.NLLLoss(weight=c, reduction=reduction)(a, b), [x, y, w], diff=[0],
             kwargs={"reduction": reduction})


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_regression_and_binary_loss_modules(reduction, rng):
    a, t = rand(rng, (4, 3), 0.1, 0.9), rng.random((4, 3))
    kw = {"reduction": reduction}
    check_op("mse_loss", lambda p, q: nn.MSELoss(reduction=reduction)(p, q), [a, t], kwargs=kw)
    check_op("binary_cross_entropy", lambda p, q: nn.BCELoss(reduction=reduction)(p, q), [a, t], kwargs=kw)
    check_op("binary_cross_entropy_with_logits", lambda p, q: nn.BCEWithLogitsLoss(reduction=reduction)(p, q),
             [rand(rng, (4, 3)), t], kwargs=kw)
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")


def test_bce_with_logits_module_pos_weight(rng):
    # PyTorch: loss = (1 - t) x + (1 + (pw - 1) t) log(1 + exp(-x)), mean over the elements
    x, t, pw = rand(rng, (4, 3)), rng.random((4, 3)), np.array([1.0, 2.0, 0.5])
    want = ((1 - t) * x + (1 + (pw - 1) * t) * (np.maximum(-x, 0) + np.log1p(np.exp(-np.abs(x))))).mean()
    got = nn.BCEWithLogitsLoss(pos_weight=bigcore.tensor(pw))(bigcore.tensor(x), bigcore.tensor(t))
    np.testing.assert_allclose(got.item(), want, rtol=1e-12)


@pytest.mark.parametrize("mod,name,kwargs", [
    (nn.ReLU(), "relu", {}), (nn.Tanh(), "tanh", {}), (nn.Sigmoid(), "sigmoid", {}), (nn.GELU(), "gelu", {}),
    (nn.GELU(approximate="tanh"), "gelu_tanh", {}), (nn.Softmax(dim=1), "softmax", {"dim": 1}),
    (nn.LogSoftmax(-1), "log_softmax", {"dim": -1}),
])
def test_activation_modules(mod, name, kwargs, rng):
    check_op(name, mod, [rand(rng, (3, 4))], kwargs=kwargs)


def test_shape_modules(rng):
    x = rand(rng, (3, 4, 2))
    np.testing.assert_array_equal(nn.Flatten(0)(bigcore.tensor(x)).numpy(), x.reshape(-1))
    np.testing.assert_array_equal(nn.Flatten()(bigcore.tensor(x)).numpy(), x.reshape(3, 8))
    np.testing.assert_array_equal(nn.Identity()(bigcore.tensor(x)).numpy(), x)


def test_clip_grad_norm_and_value(rng):
    ps = [nn.Parameter(bigcore.zeros(3, 2)), nn.Parameter(bigcore.zeros(4))]
    gs = [rng.standard_normal((3, 2)), rng.standard_normal(4)]
    for p, g in zip(ps, gs):
        p.grad = bigcore.tensor(g, dtype=bigcore.float32)
    total = np.sqrt(sum((g.astype(np.float32).astype(np.float64) ** 2).sum() for g in gs))
    got = nn.utils.clip_grad_norm_(ps, 0.5)
    assert got.item() == pytest.approx(total, rel=1e-6)
    after = np.sqrt(sum((p.grad.numpy().astype(np.float64) ** 2).sum() for p in ps))
    assert after == pytest.approx(0.5, rel=1e-4)
    nn.utils.clip_grad_norm_(ps, 10.0)  # already below: unchanged
    assert np.sqrt(sum((p.grad.numpy().astype(np.float64) ** 2).sum() for p in ps)) == pytest.approx(0.5, rel=1e-4)
    inf_norm = nn.utils.clip_grad_norm_(ps, 1.0, norm_type="inf")
    assert inf_norm.item() == pytest.approx(max(np.abs(p.grad.numpy()).max() for p in ps))
    nn.utils.clip_grad_value_(ps, 0.05)
    assert max(np.abs(p.grad.numpy()).max() for p in ps) <= 0.05
