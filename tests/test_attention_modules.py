"""MultiheadAttention and the Transformer layers against a numpy reference using the modules' own weights:
PyTorch's parameter names and shapes, both batch layouts, bool and float masks (True = masked out, PyTorch's MHA
convention), key padding, causal masking, post- and pre-norm, and gradients against finite differences."""

import math

import numpy as np
import pytest

import bigcore
import bigcore.nn as nn


def np_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_mha(m, q, k, v, attn_mask=None, kpm=None, causal=False):
    """numpy reference; q (N, L, E), k/v (N, S, E)."""
    Win, bin_ = m.in_proj_weight.numpy(), m.in_proj_bias.numpy()
    Wo, bo = m.out_proj.weight.numpy(), m.out_proj.bias.numpy()
    N, L, E = q.shape
    S, H = k.shape[1], m.num_heads
    D = E // H
    heads = lambda x, W, b, T: (x @ W.T + b).reshape(N, T, H, D).transpose(0, 2, 1, 3)  # noqa: E731
    Q = heads(q, Win[:E], bin_[:E], L)
    K = heads(k, Win[E:2 * E], bin_[E:2 * E], S)
    V = heads(v, Win[2 * E:], bin_[2 * E:], S)
    sc = Q @ K.transpose(0, 1, 3, 2) / math.sqrt(D)
    if causal:
        sc = np.where(np.triu(np.ones((L, S), bool), 1), -np.inf, sc)
    if attn_mask is not None:
        sc = np.where(attn_mask, -np.inf, sc) if attn_mask.dtype == bool else sc + attn_mask
    if kpm is not None:
        sc = np.where(kpm[:, None, None, :], -np.inf, sc)
    P = np_softmax(sc)
    out = (P @ V).transpose(0, 2, 1, 3).reshape(N, L, E) @ Wo.T + bo
    return out, P.mean(1)


def test_parameter_names_and_shapes():
    m = nn.MultiheadAttention(12, 3)
    assert {n: p.shape for n, p in m.named_parameters()} == {
        "in_proj_weight": (36, 12), "in_proj_bias": (36,), "out_proj.weight": (12, 12), "out_proj.bias": (12,)}
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16)
    assert [n for n, _ in layer.named_parameters()] == [
        "self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight", "self_attn.out_proj.bias",
        "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias", "norm1.weight", "norm1.bias",
        "norm2.weight", "norm2.bias"]
    dec = nn.TransformerDecoderLayer(8, 2, dim_feedforward=16)
    assert "multihead_attn.in_proj_weight" in dict(dec.named_parameters()) and "norm3.bias" in dict(dec.named_parameters())


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("mask", [None, "bool", "float", "padding", "causal", "3d", "causal+padding", "float+padding",
                                  "bool+padding"])
def test_mha_matches_numpy(batch_first, mask, rng):
    N, L, S, E, H = 2, 3, 5, 8, 2
    m = nn.MultiheadAttention(E, H, batch_first=batch_first, dtype=bigcore.float64)
    nn.init.normal_(m.in_proj_bias, std=0.1)
    q, k, v = rng.standard_normal((N, L, E)), rng.standard_normal((N, S, E)), rng.standard_normal((N, S, E))
    kw, ref_kw = {}, {}
    if mask == "bool":
        am = rng.random((L, S)) > 0.7
        am[:, 0] = False
        kw["attn_mask"], ref_kw["attn_mask"] = bigcore.tensor(am), am
    elif mask == "float":
        am = rng.standard_normal((L, S))
        kw["attn_mask"], ref_kw["attn_mask"] = bigcore.tensor(am), am
    elif mask == "padding":
        kpm = np.zeros((N, S), bool)
        kpm[0, 3:] = True
        kw["key_padding_mask"], ref_kw["kpm"] = bigcore.tensor(kpm), kpm
    elif mask == "causal":
        k, v = k[:, :L], v[:, :L]
        kw["is_causal"], ref_kw["causal"] = True, True
    elif mask == "3d":
        am = rng.standard_normal((N * H, L, S))
        kw["attn_mask"] = bigcore.tensor(am)
        ref_kw["attn_mask"] = am.reshape(N, H, L, S)
    elif mask is not None and mask.endswith("+padding"):
        # the key padding merged with another mask into the one SDPA mask
        kpm = np.zeros((N, S), bool)
        kpm[1, 2:] = True
        kw["key_padding_mask"], ref_kw["kpm"] = bigcore.tensor(kpm), kpm
        if mask == "causal+padding":
            k, v = k[:, :L], v[:, :L]
            kpm = kpm[:, :L]
            kw["key_padding_mask"], ref_kw["kpm"] = bigcore.tensor(kpm), kpm
            kw["is_causal"], ref_kw["causal"] = True, True
        else:
            am = rng.standard_normal((L, S)) if mask == "float+padding" else rng.random((L, S)) > 0.7
            if am.dtype == bool:
                am[:, 0] = False
            kw["attn_mask"], ref_kw["attn_mask"] = bigcore.tensor(am), am
    t = (lambda a: bigcore.tensor(a)) if batch_first else (lambda a: bigcore.tensor(a.transpose(1, 0, 2)))
    out, w = m(t(q), t(k), t(v), **kw)
    want_out, want_w = np_mha(m, q, k, v, **ref_kw)
    got = out.numpy() if batch_first else out.numpy().transpose(1, 0, 2)
    np.testing.assert_allclose(got, want_out, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w.numpy(), want_w, rtol=1e-10, atol=1e-12)
    assert m(t(q), t(k), t(v), need_weights=False, **kw)[1] is None
    assert m(t(q), t(k), t(v), average_attn_weights=False, **kw)[1].shape == (N, H, L, k.shape[1])


def test_mha_unbatched_and_errors(rng):
    m = nn.MultiheadAttention(4, 2)
    x = bigcore.randn(3, 4)
    out, w = m(x, x, x)
    assert out.shape == (3, 4) and w.shape == (3, 3)
    with pytest.raises(ValueError, match="multiple"):
        nn.MultiheadAttention(5, 2)
    with pytest.raises(bigcore.ShapeError):
        m(bigcore.randn(3, 2, 5), bigcore.randn(3, 2, 5), bigcore.randn(3, 2, 5))


def test_mha_gradients_match_finite_differences(rng):
    m = nn.MultiheadAttention(4, 2, batch_first=True, dtype=bigcore.float64)
    q0 = rng.standard_normal((1, 3, 4))
    g = rng.standard_normal((1, 3, 4))
    q = bigcore.tensor(q0, requires_grad=True)
    (m(q, q, q)[0] * bigcore.tensor(g)).sum().backward()
    h = 1e-6

    def f(x):
        with bigcore.no_grad():
            t = bigcore.tensor(x)
            return float((m(t, t, t)[0].numpy() * g).sum())

    num = np.zeros_like(q0)
    for j in np.ndindex(q0.shape):
        up, down = q0.copy(), q0.copy()
        up[j] += h
        down[j] -= h
        num[j] = (f(up) - f(down)) / (2 * h)
    np.testing.assert_allclose(q.grad.numpy(), num, rtol=1e-5, atol=1e-7)
    w = m.in_proj_weight
    assert w.grad is not None and w.grad.shape == (12, 4)


def np_layer_norm(x, w, b, eps=1e-5):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps) * w + b


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_matches_numpy(norm_first, rng):
    E = 8
    layer = nn.TransformerEncoderLayer(E, 2, dim_feedforward=12, dropout=0.0, batch_first=True, norm_first=norm_first, dtype=bigcore.float64)
    x = rng.standard_normal((2, 5, E))
    p = {k: v.numpy() for k, v in layer.state_dict().items()}
    sa = lambda h: np_mha(layer.self_attn, h, h, h)[0]  # noqa: E731
    ff = lambda h: np.maximum(h @ p["linear1.weight"].T + p["linear1.bias"], 0) @ p["linear2.weight"].T + p["linear2.bias"]  # noqa: E731
    n1 = lambda h: np_layer_norm(h, p["norm1.weight"], p["norm1.bias"])  # noqa: E731
    n2 = lambda h: np_layer_norm(h, p["norm2.weight"], p["norm2.bias"])  # noqa: E731
    if norm_first:
        h = x + sa(n1(x))
        want = h + ff(n2(h))
    else:
        h = n1(x + sa(x))
        want = n2(h + ff(h))
    np.testing.assert_allclose(layer(bigcore.tensor(x)).numpy(), want, rtol=1e-9, atol=1e-10)


def test_decoder_and_full_transformer(rng):
    m = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=1, dim_feedforward=16, dropout=0.0, batch_first=True)
    assert len(m.encoder.layers) == 2 and len(m.decoder.layers) == 1
    # the encoder's layers are deep copies: equal values, separate storage
    a, b = m.encoder.layers[0].linear1.weight, m.encoder.layers[1].linear1.weight
    assert a is not b and not a._c.shares_storage(b._c)
    src, tgt = bigcore.randn(2, 5, 8), bigcore.randn(2, 4, 8)
    mask = nn.Transformer.generate_square_subsequent_mask(4)
    out = m(src, tgt, tgt_mask=mask)
    assert out.shape == (2, 4, 8)
    # causality: changing the last target step leaves earlier outputs unchanged
    tgt2 = tgt.numpy().copy()
    tgt2[:, -1] += 1.0
    out2 = m(src, bigcore.tensor(tgt2), tgt_mask=mask)
    np.testing.assert_allclose(out2.numpy()[:, :-1], out.numpy()[:, :-1], rtol=1e-5, atol=1e-6)
    assert not np.allclose(out2.numpy()[:, -1], out.numpy()[:, -1])
    out.sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    np.testing.assert_array_equal(mask.numpy(), np.triu(np.full((4, 4), -np.inf), 1))
