"""CrossModalFusion against a numpy reference built from the module's own weights (each mode, vectors and token
sequences, padding), gradients against finite differences in float64, float32 against the float64 result, and the
bad inputs it must name."""

import math

import numpy as np
import pytest

import bigcore
from bigcore.errors import ShapeError
from bigcore.models import CrossModalFusion


def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def np_linear(lin, x):
    return x @ lin.weight.numpy().T + lin.bias.numpy()


def np_fusion(m, xs, masks=None):
    """The three modes written out in numpy (independent of the module's tensor code)."""
    if m.fusion == "concat":
        return np_linear(m.proj, np.concatenate(xs, -1))
    if m.fusion == "gated":
        hs = np.stack([np.tanh(np_linear(p, x)) for p, x in zip(m.projs, xs)], -2)
        z = np_linear(m.gate, np.concatenate(xs, -1))
        z = np_softmax(z.reshape(*z.shape[:-1], len(xs), m.output_dim), -2)
        return (z * hs).sum(-2)
    xs = [x[:, None, :] if x.ndim == 2 else x for x in xs]
    n, C, H = len(xs), m.output_dim, m.num_heads
    masks = masks or [None] * n
    masks = [np.zeros(x.shape[:2], bool) if k is None else k for x, k in zip(xs, masks)]
    ps = [np_linear(p, x) for p, x in zip(m.projs, xs)]
    pooled = []
    for i in range(n):
        ctx = np.concatenate([ps[j] for j in range(n) if j != i], 1)
        kpm = np.concatenate([masks[j] for j in range(n) if j != i], 1)
        a = m.attns[i]
        W, b = a.in_proj_weight.numpy(), a.in_proj_bias.numpy()
        B, L, S, D = ps[i].shape[0], ps[i].shape[1], ctx.shape[1], C // H
        heads = lambda x, k, T: (x @ W[k * C:(k + 1) * C].T + b[k * C:(k + 1) * C]).reshape(B, T, H, D).transpose(0, 2, 1, 3)  # noqa: E731
        q, kk, v = heads(ps[i], 0, L), heads(ctx, 1, S), heads(ctx, 2, S)
        sc = np.where(kpm[:, None, None, :], -np.inf, q @ kk.transpose(0, 1, 3, 2) / math.sqrt(D))
        att = (np_softmax(sc) @ v).transpose(0, 2, 1, 3).reshape(B, L, C)
        y = ps[i] + np_linear(a.out_proj, att)
        y = (y - y.mean(-1, keepdims=True)) / np.sqrt(y.var(-1, keepdims=True) + 1e-5)
        y = y * m.norms[i].weight.numpy() + m.norms[i].bias.numpy()
        keep = (~masks[i]).astype(y.dtype)[..., None]
        pooled.append((y * keep).sum(1) / np.maximum(keep.sum(1), 1.0))
    return np_linear(m.out, np.concatenate(pooled, -1))


def _randomize(m, rng):
    # LayerNorm starts at (1, 0) and biases at 0: random values make the reference check every parameter
    with bigcore.no_grad():
        for p in m.parameters():
            p.copy_(bigcore.tensor(rng.standard_normal(p.shape) * 0.5, dtype=p.dtype))


CASES = [  # (fusion, input_dims, per-modality shapes without the width, num_heads)
    ("concat", (5, 3), [(4,), (4,)], 1),
    ("concat", (7, 1, 2), [(1, 3), (1, 3), (1, 3)], 1),
    ("gated", (5, 3), [(4,), (4,)], 1),
    ("gated", (2, 11, 3), [(3, 5), (3, 5), (3, 5)], 1),
    ("attention", (5, 3), [(4, 7), (4, 2)], 2),
    ("attention", (6, 4, 3), [(2, 1), (2,), (2, 5)], 3),
]


@pytest.mark.parametrize("fusion,dims,shapes,heads", CASES)
def test_matches_numpy(fusion, dims, shapes, heads, rng):
    m = CrossModalFusion(dims, 6, fusion=fusion, num_heads=heads, dtype=bigcore.float64)
    _randomize(m, rng)
    xs = [rng.standard_normal((*s, d)) for s, d in zip(shapes, dims)]
    out = m(*[bigcore.tensor(x) for x in xs])
    want = np_fusion(m, xs)
    assert out.shape == want.shape
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-10, atol=1e-12)
    # the list form is the same call
    np.testing.assert_array_equal(m([bigcore.tensor(x) for x in xs]).numpy(), out.numpy())


def test_float32_follows_float64(rng):
    for fusion, dims, shapes, heads in CASES:
        m64 = CrossModalFusion(dims, 6, fusion=fusion, num_heads=heads, dtype=bigcore.float64)
        _randomize(m64, rng)
        m32 = CrossModalFusion(dims, 6, fusion=fusion, num_heads=heads)
        m32.load_state_dict({k: v.to(bigcore.float32) for k, v in m64.state_dict().items()})
        xs = [rng.standard_normal((*s, d)) for s, d in zip(shapes, dims)]
        want = m64(*[bigcore.tensor(x) for x in xs]).numpy()
        got = m32(*[bigcore.tensor(x.astype(np.float32)) for x in xs]).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_attention_padding_is_ignored(rng):
    m = CrossModalFusion((5, 3), 4, fusion="attention", num_heads=2, dtype=bigcore.float64)
    _randomize(m, rng)
    a, b = rng.standard_normal((3, 6, 5)), rng.standard_normal((3, 4, 3))
    ma, mb = np.zeros((3, 6), bool), np.zeros((3, 4), bool)
    ma[0, 4:], ma[2, 1:] = True, True
    mb[1, 2:] = True
    masks = [bigcore.tensor(ma), bigcore.tensor(mb)]
    out = m(bigcore.tensor(a), bigcore.tensor(b), key_padding_masks=masks).numpy()
    np.testing.assert_allclose(out, np_fusion(m, [a, b], [ma, mb]), rtol=1e-10, atol=1e-12)
    a2, b2 = a.copy(), b.copy()
    a2[ma], b2[mb] = 1e3, -1e3  # whatever sits in the padding
    out2 = m(bigcore.tensor(a2), bigcore.tensor(b2), key_padding_masks=masks).numpy()
    np.testing.assert_allclose(out2, out, rtol=1e-12, atol=1e-12)
    # a row cut to its real tokens gives the same result as the padded row
    short = m(bigcore.tensor(a[2:, :1]), bigcore.tensor(b[2:])).numpy()
    np.testing.assert_allclose(short, out[2:], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fusion", ["concat", "gated", "attention"])
def test_gradients_match_finite_differences(fusion, rng):
    m = CrossModalFusion((3, 2), 4, fusion=fusion, num_heads=2, dtype=bigcore.float64)
    _randomize(m, rng)
    shapes = [(2, 3, 3), (2, 2, 2)] if fusion == "attention" else [(2, 3), (2, 2)]
    xs0 = [rng.standard_normal(s) for s in shapes]
    g = rng.standard_normal((2, 4))
    xs = [bigcore.tensor(x, requires_grad=True) for x in xs0]
    (m(*xs) * bigcore.tensor(g)).sum().backward()

    def f(arrays):
        with bigcore.no_grad():
            return float((m(*[bigcore.tensor(x) for x in arrays]).numpy() * g).sum())

    h = 1e-6
    for i, x0 in enumerate(xs0):
        num = np.zeros_like(x0)
        for j in np.ndindex(x0.shape):
            up = [x.copy() for x in xs0]
            down = [x.copy() for x in xs0]
            up[i][j] += h
            down[i][j] -= h
            num[j] = (f(up) - f(down)) / (2 * h)
        np.testing.assert_allclose(xs[i].grad.numpy(), num, rtol=1e-6, atol=1e-8)
    for name, p in m.named_parameters():
        assert p.grad is not None and np.abs(p.grad.numpy()).sum() > 0, name


def test_int_input_dims_means_two_modalities():
    m = CrossModalFusion(8, 5)
    assert m.input_dims == (8, 8) and m.proj.in_features == 16  # the width doubles when two are concatenated
    assert m(bigcore.randn(3, 8), bigcore.randn(3, 8)).shape == (3, 5)
    assert "fusion='concat'" in repr(m)


def test_bad_input():
    with pytest.raises(ValueError, match="at least two modalities"):
        CrossModalFusion((4,), 3)
    with pytest.raises(ValueError, match="fusion must be one of"):
        CrossModalFusion((4, 4), 3, fusion="sum")
    with pytest.raises(ValueError, match=r"output_dim \(5\) must be a positive multiple of num_heads \(2\)"):
        CrossModalFusion((4, 4), 5, fusion="attention", num_heads=2)
    with pytest.raises(ValueError, match="widths must be positive"):
        CrossModalFusion((4, 0), 3)
    m = CrossModalFusion((4, 2), 3, fusion="gated")
    with pytest.raises(ShapeError, match=r"batch sizes differ: \[5, 6\]"):
        m(bigcore.randn(5, 4), bigcore.randn(6, 2))
    with pytest.raises(ShapeError, match=r"modality 1 should be \(B, 2\) or \(B, L, 2\), got \(5, 3\)"):
        m(bigcore.randn(5, 4), bigcore.randn(5, 3))
    with pytest.raises(ShapeError, match="expected 2 modalities, got 3"):
        m(bigcore.randn(5, 4), bigcore.randn(5, 2), bigcore.randn(5, 2))
    with pytest.raises(ShapeError, match="leading shapes must agree"):
        m(bigcore.randn(5, 7, 4), bigcore.randn(5, 6, 2))
    with pytest.raises(ValueError, match="key_padding_masks apply to fusion='attention'"):
        m(bigcore.randn(5, 4), bigcore.randn(5, 2), key_padding_masks=[None, None])
    a = CrossModalFusion((4, 2), 4, fusion="attention", num_heads=2)
    with pytest.raises(ShapeError, match=r"batch sizes differ: \[5, 6\]"):
        a(bigcore.randn(5, 3, 4), bigcore.randn(6, 2, 2))
    with pytest.raises(ShapeError, match=r"key_padding_masks\[0\] should be bool \(5, 3\)"):
        a(bigcore.randn(5, 3, 4), bigcore.randn(5, 2, 2), key_padding_masks=[bigcore.zeros(5, 4, dtype=bigcore.bool), None])
    with pytest.raises(ShapeError, match=r"one entry per modality \(2\), got 1"):
        a(bigcore.randn(5, 3, 4), bigcore.randn(5, 2, 2), key_padding_masks=[None])
