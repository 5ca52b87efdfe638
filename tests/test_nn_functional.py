"""nn.functional: softmax, log_softmax, layer_norm, embedding, dropout, the losses and attention, against the
numpy reference with gradients."""

import numpy as np
import pytest

import bigcore
import bigcore.nn.functional as F
from check import check_op, rand


@pytest.mark.parametrize("shape,dim", [((3, 5), -1), ((4, 7), 0), ((2, 3, 4), 1), ((17,), 0), ((2, 1, 3), -1)])
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax(op, shape, dim, rng):
    check_op(op, lambda t: getattr(F, op)(t, dim), [rand(rng, shape, -3, 3)], kwargs={"dim": dim})


def test_softmax_large_logits_do_not_overflow():
    t = bigcore.tensor([[1000.0, 1000.0], [-1000.0, 0.0]])
    np.testing.assert_allclose(F.softmax(t, -1).numpy(), [[0.5, 0.5], [0.0, 1.0]])
    assert np.isfinite(F.log_softmax(t, -1).numpy()).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [3, 21])  # shorter than a vector, and a vector plus a tail
def test_softmax_special_rows_as_pytorch(dtype, d):
    # all -inf: NaN; a NaN anywhere: the whole row NaN; -inf entries: exactly 0 (log: -inf); huge: uniform
    inf, nan = np.inf, np.nan
    x = np.ones((4, d), dtype)
    x[0] = -inf
    x[1, d - 1] = nan
    x[2, 1] = -inf
    x[3] = 3e38 if dtype == np.float32 else 1e300
    p, lp = F.softmax(bigcore.tensor(x), -1).numpy(), F.log_softmax(bigcore.tensor(x), -1).numpy()
    assert np.isnan(p[:2]).all() and np.isnan(lp[:2]).all()
    assert p[2, 1] == 0.0 and lp[2, 1] == -inf
    np.testing.assert_allclose(np.delete(p[2], 1), 1 / (d - 1), rtol=1e-6)
    np.testing.assert_allclose(np.delete(lp[2], 1), -np.log(d - 1), rtol=1e-6)
    np.testing.assert_allclose(p[3], 1 / d, rtol=1e-6)
    np.testing.assert_allclose(lp[3], -np.log(d), rtol=1e-6)


@pytest.mark.parametrize("shape,nd,affine", [((4, 5), 1, True), ((2, 3, 7), 1, False), ((3, 2, 4), 2, True), ((1, 17), 1, True)])
def test_layer_norm(shape, nd, affine, rng):
    ns = shape[-nd:]
    x = rand(rng, shape)
    ins = [x] + ([rand(rng, ns), rand(rng, ns)] if affine else [])
    fn = (lambda t, w, b: F.layer_norm(t, ns, w, b)) if affine else (lambda t: F.layer_norm(t, ns))
    check_op("layer_norm", fn, ins, kwargs={"nd": nd}, rtol=1e-8, atol=1e-9, f32_tol=5e-5)


def test_layer_norm_weight_only(rng):
    x, w = rand(rng, (3, 6)), rand(rng, (6,))
    check_op("layer_norm", lambda t, ww: F.layer_norm(t, (6,), ww), [x, w], kwargs={"nd": 1}, f32_tol=5e-5)


@pytest.mark.parametrize("ids_shape", [(5,), (2, 3), (1,), (0,)])
def test_embedding(ids_shape, rng):
    w = rand(rng, (7, 4))
    ids = rng.integers(0, 7, ids_shape)
    check_op("embedding", lambda t: F.embedding(bigcore.tensor(ids), t), [w], kwargs={"ids": ids})


def test_embedding_padding_idx_gets_no_gradient():
    w = bigcore.ones(4, 2, requires_grad=True)
    out = F.embedding(bigcore.tensor([0, 2, 2, 1]), w, padding_idx=2)
    np.testing.assert_array_equal(out.numpy(), np.ones((4, 2)))
    out.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy()[:, 0], [1, 1, 0, 0])


def test_dropout_scales_kept_values_and_masks_gradient():
    bigcore.manual_seed(3)
    x = bigcore.ones(1000, 10, requires_grad=True)
    y = F.dropout(x, 0.3, training=True)
    vals = y.numpy()
    kept = vals != 0
    np.testing.assert_allclose(vals[kept], 1 / 0.7, rtol=1e-6)
    assert 0.25 < 1 - kept.mean() < 0.35  # 10,000 draws: the drop rate is 0.3 within many standard errors
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), vals, rtol=1e-6)
    assert F.dropout(x, 0.3, training=False) is x
    bigcore.manual_seed(3)
    np.testing.assert_array_equal(F.dropout(bigcore.ones(1000, 10), 0.3).numpy(), vals)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_cross_entropy(reduction, ls, rng):
    n, c = 6, 5
    x = rand(rng, (n, c), -3, 3)
    y = rng.integers(0, c, n)
    y[2] = -100
    check_op("cross_entropy", lambda t: F.cross_entropy(t, bigcore.tensor(y), reduction=reduction, label_smoothing=ls), [x],
             kwargs={"y": y, "reduction": reduction, "label_smoothing": ls}, rtol=1e-8, atol=1e-9, f32_tol=5e-5)


def test_cross_entropy_ignore_index_and_spatial(rng):
    x = rand(rng, (2, 4, 3))  # (N, C, d1)
    y = rng.integers(0, 4, (2, 3))
    got = F.cross_entropy(bigcore.tensor(x), bigcore.tensor(y), reduction="none")
    flat = np.moveaxis(x, 1, -1).reshape(-1, 4)
    want = -np.log(np.exp(flat) / np.exp(flat).sum(1, keepdims=True))[np.arange(6), y.reshape(-1)]
    np.testing.assert_allclose(got.numpy(), want.reshape(2, 3), rtol=1e-10)
    assert np.isnan(F.cross_entropy(bigcore.tensor(x[:, :, 0]), bigcore.tensor([-100, -100])).item())
    assert F.cross_entropy(bigcore.tensor(x[:, :, 0]), bigcore.tensor([1, 7]), ignore_index=7).item() > 0


def test_cross_entropy_with_weights_and_probabilities(rng):
    x = rand(rng, (5, 3))
    y = rng.integers(0, 3, 5)
    w = np.array([0.2, 1.0, 3.0])
    logp = x - np.log(np.exp(x).sum(1, keepdims=True))
    want = -(w[y] * logp[np.arange(5), y]).sum() / w[y].sum()
    got = F.cross_entropy(bigcore.tensor(x), bigcore.tensor(y), weight=bigcore.tensor(w))
    np.testing.assert_allclose(got.item(), want, rtol=1e-10)
    p = rng.dirichlet(np.ones(3), 5)
    got = F.cross_entropy(bigcore.tensor(x), bigcore.tensor(p))
    np.testing.assert_allclose(got.item(), -(p * logp).sum(1).mean(), rtol=1e-10)
    nll = F.nll_loss(bigcore.tensor(logp), bigcore.tensor(y))
    np.testing.assert_allclose(nll.item(), -logp[np.arange(5), y].mean(), rtol=1e-10)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss(reduction, rng):
    a, t = rand(rng, (3, 4)), rand(rng, (3, 4))
    check_op("mse_loss", lambda x, y: F.mse_loss(x, y, reduction=reduction), [a, t], kwargs={"reduction": reduction})


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_binary_cross_entropy(reduction, rng):
    p, t = rand(rng, (4, 3), 0.05, 0.95), rng.random((4, 3))
    check_op("binary_cross_entropy", lambda x, y: F.binary_cross_entropy(x, y, reduction=reduction), [p, t],
             kwargs={"reduction": reduction}, diff=[0, 1])
    assert np.isfinite(F.binary_cross_entropy(bigcore.tensor([0.0, 1.0]), bigcore.tensor([1.0, 0.0])).item())


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_bce_with_logits(reduction, rng):
    x, t = rand(rng, (5, 2), -4, 4), rng.random((5, 2))
    check_op("binary_cross_entropy_with_logits", lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction=reduction),
             [x, t], kwargs={"reduction": reduction})
    big = F.binary_cross_entropy_with_logits(bigcore.tensor([100.0, -100.0]), bigcore.tensor([0.0, 1.0]), reduction="none")
    np.testing.assert_allclose(big.numpy(), [100.0, 100.0])


def test_bce_with_logits_pos_weight(rng):
    x, t, pw = rand(rng, (4, 3)), rng.random((4, 3)), np.array([0.5, 2.0, 3.0])
    got = F.binary_cross_entropy_with_logits(bigcore.tensor(x), bigcore.tensor(t), pos_weight=bigcore.tensor(pw), reduction="none")
    sig = 1 / (1 + np.exp(-x))
    want = -(pw * t * np.log(sig) + (1 - t) * np.log(1 - sig))
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-9)


@pytest.mark.parametrize("mask_kind", [None, "bool", "additive", "causal"])
def test_scaled_dot_product_attention(mask_kind, rng):
    b, h, L, S, E = 2, 2, 3, 5, 4
    q, k, v = rand(rng, (b, h, L, E)), rand(rng, (b, h, S, E)), rand(rng, (b, h, S, 3))
    kwargs, mask = {}, None
    if mask_kind == "bool":
        mask = rng.random((L, S)) > 0.3
        mask[:, 0] = True  # every query sees at least one key
        kwargs["mask"] = mask
    elif mask_kind == "additive":
        mask = rand(rng, (b, 1, L, S))
        kwargs["mask"] = mask
    elif mask_kind == "causal":
        q = rand(rng, (b, h, S, E))
        kwargs["causal"] = True
    fn = lambda a, bb, c: F.scaled_dot_product_attention(  # noqa: E731
        a, bb, c, attn_mask=None if mask is None else bigcore.tensor(mask, dtype=None if mask.dtype == bool else a.dtype),
        is_causal=mask_kind == "causal")
    check_op("scaled_dot_product_attention", fn, [q, k, v], kwargs=kwargs, rtol=1e-8, atol=1e-9, f32_tol=5e-5)


def test_sdpa_scale_and_padding_mask(rng):
    q, k, v = rand(rng, (1, 4, 8)), rand(rng, (1, 6, 8)), rand(rng, (1, 6, 2))
    pad = np.array([True] * 4 + [False] * 2)
    got = F.scaled_dot_product_attention(bigcore.tensor(q), bigcore.tensor(k), bigcore.tensor(v),
                                         attn_mask=bigcore.tensor(pad), scale=0.3)
    from reference import REF

    np.testing.assert_allclose(got.numpy(), REF["scaled_dot_product_attention"][0](q, k, v, pad, False, 0.3), rtol=1e-10)
