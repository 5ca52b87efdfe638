"""Every kernel that splits its work over threads, at shapes above the parallel threshold whose row lengths and
row counts divide nothing evenly (69, 97, 130, 257, 1000): forward and backward against the numpy float64
reference, and 1, 2, 3 and 4 threads against each other (bit-identical: each of these kernels splits by whole
rows or elements, so the split changes no rounding).

A split that cut rows (issue: softmax and layer_norm normalized windows straddling two rows on two threads) fails
here at once; the small shapes of the other test modules never reach the threaded paths.
"""

import math

import numpy as np
import pytest

import bigcore
import bigcore.nn as nn
import bigcore.nn.functional as F
from check import AWKWARD_ROWS, PARALLEL_THRESHOLD, check_op, check_threads, large_awkward_shape, rand, with_threads
from reference import REF


def _case(fn, inputs, kwargs=None, **tol):
    return fn, inputs, kwargs or {}, tol


def _unary(name, fn=None, low=-2.0, high=2.0):
    fn = fn or (lambda t: getattr(t, name)())
    return lambda rng: [_case(fn, [rand(rng, large_awkward_shape(rng, 3, row), low, high)], f32_tol=5e-5) for row in (97, 1000)]


def _binary(name, positive_b=False):
    def cases(rng):
        out = []
        for row in (69, 257):
            shape = large_awkward_shape(rng, 3, row)
            lo = 0.5 if positive_b else -2.0
            for b_shape in [(row,), (shape[0], 1, row), (1, shape[1], 1)]:
                a = rand(rng, shape, 0.5, 2.0) if name == "pow" else rand(rng, shape)
                out.append(_case(lambda s, t: getattr(s, name)(t), [a, rand(rng, b_shape, lo, 2.0)], f32_tol=1e-5))
        return out
    return cases


def _softmax(op):
    def cases(rng):
        out = [_case(lambda t: getattr(F, op)(t, -1), [rand(rng, large_awkward_shape(rng, 3, row), -4, 4)], {"dim": -1})
               for row in AWKWARD_ROWS]
        # along a middle dim: strided rows (inner > 1)
        out.append(_case(lambda t: getattr(F, op)(t, 1), [rand(rng, (13, 69, 41), -4, 4)], {"dim": 1}))
        return out
    return cases


def _layer_norm(rng):
    out = []
    for row in AWKWARD_ROWS:
        ins = [rand(rng, large_awkward_shape(rng, 2, row)), rand(rng, (row,)), rand(rng, (row,))]
        out.append(_case(lambda t, w, b, row=row: F.layer_norm(t, (row,), w, b), ins, {"nd": 1}, rtol=1e-8, atol=1e-9, f32_tol=5e-5))
    # no affine, normalized over two dims: rows of 23 x 13 = 299
    out.append(_case(lambda t: F.layer_norm(t, (23, 13)), [rand(rng, (131, 23, 13))], {"nd": 2}, rtol=1e-8, atol=1e-9, f32_tol=5e-5))
    return out


def _cross_entropy(rng):
    out = []
    for row, (reduction, ls) in zip(AWKWARD_ROWS, [("mean", 0.0), ("sum", 0.1), ("none", 0.0), ("mean", 0.1), ("sum", 0.0)]):
        n, c = large_awkward_shape(rng, 2, row)
        y = rng.integers(0, c, n)
        y[::7] = -100
        fn = lambda t, y=y, r=reduction, ls=ls: F.cross_entropy(t, bigcore.tensor(y), reduction=r, label_smoothing=ls)  # noqa: E731
        out.append(_case(fn, [rand(rng, (n, c), -3, 3)], {"y": y, "reduction": reduction, "label_smoothing": ls},
                         rtol=1e-8, atol=1e-9, f32_tol=5e-5))
    return out


def _class_losses(rng):
    """The weighted cross-entropy (with smoothing), probability targets and nll_loss: compositions of the split
    kernels (log_softmax, reductions, elementwise), over many rows of awkward length."""
    out = {"cross_entropy_weighted": [], "cross_entropy_probs": [], "nll_loss": []}
    for row, reduction in zip((97, 257), ("mean", "none")):
        n, c = large_awkward_shape(rng, 2, row)
        y = rng.integers(0, c, n)
        y[::5] = -100
        w = rng.uniform(0.5, 2.0, c)
        kw = {"y": y, "weight": w, "ignore_index": -100, "reduction": reduction}
        out["cross_entropy_weighted"].append(_case(
            lambda t, y=y, w=w, r=reduction: F.cross_entropy(t, bigcore.tensor(y), weight=bigcore.tensor(w, dtype=t.dtype), reduction=r,
                                                              label_smoothing=0.1),
            [rand(rng, (n, c), -3, 3)], kw | {"label_smoothing": 0.1}, rtol=1e-8, atol=1e-9, f32_tol=5e-5))
        out["nll_loss"].append(_case(
            lambda t, y=y, w=w, r=reduction: F.nll_loss(t, bigcore.tensor(y), weight=bigcore.tensor(w, dtype=t.dtype), reduction=r),
            [rand(rng, (n, c), -3, 3)], kw, rtol=1e-8, atol=1e-9, f32_tol=5e-5))
        out["cross_entropy_probs"].append(_case(
            lambda t, p, w=w, r=reduction: F.cross_entropy(t, p, weight=bigcore.tensor(w, dtype=t.dtype), reduction=r, label_smoothing=0.2),
            [rand(rng, (n, c), -3, 3), rng.dirichlet(np.ones(c), n)],
            {"weight": w, "reduction": reduction, "label_smoothing": 0.2}, rtol=1e-8, atol=1e-9, f32_tol=5e-5))
    return out


def _losses(name, fn, low=-2.0, high=2.0, t_low=-2.0, t_high=2.0):
    def cases(rng):
        shape = large_awkward_shape(rng, 2, 97)
        return [_case(lambda a, t, r=r: fn(a, t, reduction=r), [rand(rng, shape, low, high), rand(rng, shape, t_low, t_high)],
                      {"reduction": r}, f32_tol=5e-5) for r in ("mean", "none")]
    return cases


def _matmul(rng):
    return [_case(lambda s, t: s @ t, [rand(rng, a), rand(rng, b)], f32_tol=5e-5) for a, b in [
        ((69, 97), (97, 130)),          # one product split into tiles
        ((1, 1000), (1000, 257)),       # one row: the gemv path, split by columns
        ((37, 5, 69), (37, 69, 13)),    # many small products: one product per task
        ((3, 1, 69, 97), (7, 97, 41)),  # broadcast batch dims
    ]]


def _attention(rng):
    def sdpa(mask=None, **kw):
        return lambda a, b, c: F.scaled_dot_product_attention(a, b, c, attn_mask=None if mask is None else bigcore.tensor(mask), **kw)

    def qkv(b, nh, t, s, hs, hv):
        return [rand(rng, (b, nh, t, hs)), rand(rng, (b, nh, s, hs)), rand(rng, (b, nh, s, hv))]

    padding = np.arange(130)[None, None, None, :] < np.array([130, 97, 1])[:, None, None, None]  # (B, 1, 1, S)
    bool_ts = rng.random((69, 97)) > 0.4
    additive = rand(rng, (3, 1, 97, 130))
    # dropout: the mask the kernel draws under seed 7, read off as its output for v = I
    q, k = rand(rng, (2, 3, 130, 13)), rand(rng, (2, 3, 69, 13))
    bigcore.manual_seed(7)
    eye = bigcore.tensor(np.broadcast_to(np.eye(69), (2, 3, 69, 69)).copy())
    keep = F.scaled_dot_product_attention(bigcore.tensor(q), bigcore.tensor(k), eye, dropout_p=0.3, is_causal=True).numpy() != 0

    def dropped(a, b, c):
        bigcore.manual_seed(7)
        return F.scaled_dot_product_attention(a, b, c, dropout_p=0.3, is_causal=True)

    return [
        # the shape the issue was found at: (2, 5, 69, 8) differed from PyTorch by 3.1 in float64
        _case(sdpa(is_causal=True), qkv(2, 5, 69, 69, 8, 8), {"causal": True}, f32_tol=5e-5),
        _case(sdpa(), qkv(3, 4, 97, 61, 13, 7), f32_tol=5e-5),
        # causal with T != S (top-left aligned) both ways; the GPT's head size
        _case(sdpa(is_causal=True), qkv(1, 7, 130, 69, 64, 64), {"causal": True}, f32_tol=5e-5),
        _case(sdpa(is_causal=True), qkv(3, 1, 69, 130, 64, 64), {"causal": True}, f32_tol=5e-5),
        # masks broadcast over batch and heads: bool (T, S), bool key padding (B, 1, 1, S), additive (B, 1, T, S)
        _case(sdpa(bool_ts), qkv(3, 5, 69, 97, 13, 13), {"mask": bool_ts}, f32_tol=5e-5),
        _case(sdpa(padding), qkv(3, 3, 97, 130, 64, 64), {"mask": padding}, f32_tol=5e-5),
        _case(sdpa(additive), qkv(3, 3, 97, 130, 8, 1), {"mask": additive}, f32_tol=5e-5),
        _case(dropped, [q, k, rand(rng, (2, 3, 69, 13))], {"causal": True, "keep": keep, "p": 0.3}, f32_tol=5e-5),
    ]


def _index(rng, n, d):
    return rng.integers(0, d, n)


#: for every op of the numpy reference, cases above the parallel threshold with awkward sizes
LARGE = {
    **{name: _unary(name) for name in ["neg", "exp", "tanh", "sigmoid", "relu", "abs"]},
    "log": _unary("log", low=0.1, high=3.0),
    "sqrt": _unary("sqrt", low=0.1, high=3.0),
    "gelu": _unary("gelu", F.gelu),
    "gelu_tanh": _unary("gelu_tanh", lambda t: F.gelu(t, approximate="tanh")),
    "clamp": lambda rng: [_case(lambda t: t.clamp(-0.5, 1.0), [rand(rng, large_awkward_shape(rng, 2, 130))], {"min": -0.5, "max": 1.0})],
    **{name: _binary(name, positive_b=name == "div") for name in ["add", "sub", "mul", "div"]},
    "pow": _binary("pow"),
    "where": lambda rng: [_case(
        lambda s, t, c=c: bigcore.where(bigcore.tensor(c), s, t), [rand(rng, c.shape), rand(rng, (257,))], {"cond": c})
        for c in [rng.random(large_awkward_shape(rng, 2, 257)) < 0.3]],
    "softmax": _softmax("softmax"),
    "log_softmax": _softmax("log_softmax"),
    "layer_norm": _layer_norm,
    "cross_entropy": _cross_entropy,
    "cross_entropy_weighted": lambda rng: _class_losses(rng)["cross_entropy_weighted"],
    "cross_entropy_probs": lambda rng: _class_losses(rng)["cross_entropy_probs"],
    "nll_loss": lambda rng: _class_losses(rng)["nll_loss"],
    "mse_loss": _losses("mse_loss", F.mse_loss),
    "binary_cross_entropy": _losses("binary_cross_entropy", F.binary_cross_entropy, 0.05, 0.95, 0.0, 1.0),
    "binary_cross_entropy_with_logits": _losses("binary_cross_entropy_with_logits", F.binary_cross_entropy_with_logits, -3, 3, 0.0, 1.0),
    **{op: (lambda op: lambda rng: [_case(lambda t, d=d: getattr(t, op)(d, keepdim=op == "mean") if op != "max" else t.max(d)[0],
                                          [rand(rng, large_awkward_shape(rng, 3, 130))],
                                          {"dim": d, **({"keepdim": True} if op == "mean" else {})}) for d in (0, 1, -1)])(op)
       for op in ["sum", "mean", "max"]},
    "matmul": _matmul,
    "linear": lambda rng: [_case(F.linear, [rand(rng, (3, 97, 257)), rand(rng, (130, 257)), rand(rng, (130,))], f32_tol=1e-4)],
    "reshape": lambda rng: [_case(lambda t: t.reshape(69, -1), [rand(rng, (97, 69, 7))], {"shape": (69, 679)})],
    "permute": lambda rng: [_case(lambda t, d=d: t.permute(*d), [rand(rng, large_awkward_shape(rng, 3, 69))], {"dims": d})
                            for d in [(1, 0, 2), (2, 0, 1), (0, 2, 1)]],
    "expand": lambda rng: [_case(lambda t: t.expand(97, 5, 257), [rand(rng, (97, 1, 257))], {"shape": (97, 5, 257)})],
    "getitem": lambda rng: [_case(lambda t: t[3:293:3, 1::2], [rand(rng, (301, 257))], {"key": (slice(3, 293, 3), slice(1, None, 2))})],
    "cat": lambda rng: [_case(lambda *ts: bigcore.cat(ts, 1), [rand(rng, (97, 69, 5)), rand(rng, (97, 13, 5)), rand(rng, (97, 1, 5))] * 3,
                              {"dim": 1})],
    "stack": lambda rng: [_case(lambda *ts: bigcore.stack(ts, 1), [rand(rng, (131, 97)) for _ in range(3)], {"dim": 1})],
    "index_select": lambda rng: [_case(lambda t, i=i: t.index_select(1, bigcore.tensor(i)), [rand(rng, (13, 69, 97))],
                                       {"dim": 1, "index": i}) for i in [_index(rng, 61, 69)]],
    # the backward splits the vocabulary rows: few rows of many columns, and many rows (repeated ids) of 97
    "embedding": lambda rng: [_case(lambda t, i=i: F.embedding(bigcore.tensor(i), t), [rand(rng, (v, c))], {"ids": i})
                              for v, c, i in [(97, 257, _index(rng, (13, 69), 97)), (1000, 97, _index(rng, (7, 131), 1000))]],
    "repeat": lambda rng: [_case(lambda t: t.repeat(3, 1, 5), [rand(rng, (97, 29, 7))], {"reps": (3, 1, 5)})],
    "tril": lambda rng: [_case(lambda t: t.tril(1), [rand(rng, (7, 69, 97))], {"k": 1})],
    "triu": lambda rng: [_case(lambda t: t.triu(-2), [rand(rng, (7, 69, 97))], {"k": -2})],
    "scaled_dot_product_attention": _attention,
}


def _distinct(rng, shape):
    """Values without ties (a permutation, jittered), so sort and topk rank them one way."""
    n = int(np.prod(shape))
    # neighbours at least 2/n apart: far above float32's rounding of values near 2 (2.4e-7), so float32 ranks alike
    return (rng.permutation(n).reshape(shape) / n - 0.5) * 4 + rng.uniform(-1 / n, 1 / n, shape)


def _scatter(name):
    def cases(rng):
        # index (301, 97) into (301, 130) along dim 1, distinct targets per row; the source one column wider
        index = np.stack([rng.permutation(130)[:97] for _ in range(301)])
        return [_case(lambda t, i, u: getattr(t, name)(1, i, u), [rand(rng, (301, 130)), index, rand(rng, (301, 98))],
                      {"dim": 1})]
    return cases


def _setitem(rng):
    x = rand(rng, large_awkward_shape(rng, 2, 257))
    keys = [(slice(1, None, 3), slice(None, -5)), (np.arange(x.shape[0]) % 3 == 1,), (slice(None), rng.permutation(257)[:97])]
    return [_case(lambda t, u, k=k: _setitem_fn(t, k, u), [x, rand(rng, x[k].shape[-1:])], {"key": k}) for k in keys]


def _setitem_fn(t, key, value):
    t = t.clone()
    t[tuple(bigcore.tensor(k) if isinstance(k, np.ndarray) else k for k in key)] = value
    return t


#: the in-place ops and their new cases, checked as written into a clone
LARGE_INPLACE = {
    "setitem": _setitem,
    "add_": lambda rng: [_case(lambda t, u: t.clone().add_(u, alpha=0.5), [rand(rng, large_awkward_shape(rng, 3, 69)), rand(rng, (69,))],
                               {"alpha": 0.5})],
    "mul_": lambda rng: [_case(lambda t, u: t.clone().mul_(u), [rand(rng, large_awkward_shape(rng, 2, 97)), rand(rng, (97,))])],
    "clamp_": lambda rng: [_case(lambda t: t.clone().clamp_(-0.5, 1.0), [rand(rng, large_awkward_shape(rng, 2, 130))],
                                 {"min": -0.5, "max": 1.0})],
    "masked_fill_": lambda rng: [_case(lambda t, v, m: t.clone().masked_fill_(m, v),
                                       [rand(rng, (301, 257)), np.asarray(0.5), rng.random((301, 257)) < 0.3])],
    "copy_": lambda rng: [_case(lambda t, u: t.clone().copy_(u), [rand(rng, large_awkward_shape(rng, 2, 257)), rand(rng, (257,))])],
    "fill_": lambda rng: [_case(lambda t, v: t.clone().fill_(v), [rand(rng, large_awkward_shape(rng, 2, 69)), np.asarray(-1.5)])],
}

LARGE.update({
    # sort and topk split by whole rows; along dim 0 the rows are the moved columns
    "sort": lambda rng: [_case(lambda t, d=d, desc=desc: t.sort(d, desc).values, [_distinct(rng, (301, 257))],
                               {"dim": d, "descending": desc}) for d, desc in [(-1, False), (0, True)]],
    "topk": lambda rng: [_case(lambda t, d=d, k=k: t.topk(k, d).values, [_distinct(rng, (301, 257))], {"k": k, "dim": d})
                         for d, k in [(-1, 50), (0, 7), (-1, 257)]],
    "cumsum": lambda rng: [_case(lambda t, d=d: t.cumsum(d), [rand(rng, (7, 301, 69))], {"dim": d}) for d in (0, 1, 2)],
    "gather": lambda rng: [_case(lambda t, i: t.gather(1, i), [rand(rng, (301, 130)), rng.integers(0, 130, (301, 257))],
                                 {"dim": 1})],
    "scatter": _scatter("scatter"),
    "scatter_add": _scatter("scatter_add"),
    **LARGE_INPLACE,
})


def test_every_reference_op_has_a_large_awkward_case():
    # a new op added to the reference must add its cases here: that is how it gets this check by default
    assert sorted(set(REF) - set(LARGE)) == []


@pytest.mark.parametrize("name", sorted(LARGE))
def test_large_awkward_shapes_against_the_reference_and_across_threads(name, rng):
    cases = LARGE[name](rng)
    assert cases
    for fn, inputs, kwargs, tol in cases:
        assert sum(np.size(a) for a in inputs) > PARALLEL_THRESHOLD or max(np.size(a) for a in inputs) > 4000, name
        check_op(name, fn, inputs, kwargs=kwargs, fd=False, **tol)
        check_threads(fn, inputs)


def test_large_awkward_shapes_lie_above_the_threshold_and_divide_nothing(rng):
    for ndim in (1, 2, 3, 4):
        for row in AWKWARD_ROWS:
            shape = large_awkward_shape(rng, ndim, row)
            assert len(shape) == ndim and math.prod(shape) > PARALLEL_THRESHOLD
            if ndim > 1:
                rows = math.prod(shape[:-1])
                assert shape[-1] == row and rows % 2 == 1


def _np_adamw(p, g, lr, b1, b2, eps, wd, steps):
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t in range(1, steps + 1):
        p = p * (1 - lr * wd)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr / (1 - b1**t) * m / (np.sqrt(v) / np.sqrt(1 - b2**t) + eps)
    return p


@pytest.mark.parametrize("opt", ["adamw", "sgd"])
def test_optimizer_steps(opt, rng):
    shapes = [(97, 257), (1000,), (69, 130), (3,), (601, 1001)]  # the last is cut into 3 pieces of 2^18
    values = [rand(rng, s) for s in shapes]
    grads = [rand(rng, s) for s in shapes]

    def run():
        ps = [nn.Parameter(bigcore.tensor(v)) for v in values]
        o = (bigcore.optim.AdamW(ps, lr=1e-2, weight_decay=0.1) if opt == "adamw"
             else bigcore.optim.SGD(ps, lr=1e-2, momentum=0.9, weight_decay=0.1))
        for _ in range(3):
            for p, g in zip(ps, grads):
                p.grad = bigcore.tensor(g)
            o.step()
        return [p.numpy() for p in ps]

    results = [with_threads(n, run) for n in (1, 2, 3, 4)]
    for r in results[1:]:
        for a, b in zip(r, results[0]):
            np.testing.assert_array_equal(a, b)
    if opt == "adamw":
        for got, v, g in zip(results[0], values, grads):
            np.testing.assert_allclose(got, _np_adamw(v, g, 1e-2, 0.9, 0.999, 1e-8, 0.1, 3), rtol=1e-12, atol=1e-14)


# ---- the same check one level up: attention and a Transformer layer at T = 69 ----

def _np_encoder_layer(layer, x):
    p = {k: v.numpy() for k, v in layer.state_dict().items()}
    B, T, C = x.shape
    NH = layer.self_attn.num_heads
    HS = C // NH

    def ln(h, w, b):
        return (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + 1e-5) * w + b

    def attn(h):
        qkv = h @ p["self_attn.in_proj_weight"].T + p["self_attn.in_proj_bias"]
        q, k, v = (qkv[..., i * C:(i + 1) * C].reshape(B, T, NH, HS).transpose(0, 2, 1, 3) for i in range(3))
        s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(HS)
        s = np.exp(s - s.max(-1, keepdims=True))
        y = (s / s.sum(-1, keepdims=True)) @ v
        return y.transpose(0, 2, 1, 3).reshape(B, T, C) @ p["self_attn.out_proj.weight"].T + p["self_attn.out_proj.bias"]

    def ff(h):
        return np.maximum(h @ p["linear1.weight"].T + p["linear1.bias"], 0) @ p["linear2.weight"].T + p["linear2.bias"]

    h = ln(x + attn(x), p["norm1.weight"], p["norm1.bias"])
    return ln(h + ff(h), p["norm2.weight"], p["norm2.bias"])


def test_transformer_encoder_layer_at_t69(rng):
    B, T, C, NH = 3, 69, 165, 3  # layer norms over 207 rows of 165 and scores of 3 x 3 x 69 x 69: both threaded
    assert B * T * C > PARALLEL_THRESHOLD and B * NH * T * T > PARALLEL_THRESHOLD
    layer = nn.TransformerEncoderLayer(C, NH, dim_feedforward=2 * C, dropout=0.0, batch_first=True, dtype=bigcore.float64)
    x = rng.standard_normal((B, T, C))
    want = _np_encoder_layer(layer, x)
    for n in (1, 2, 3):
        got = with_threads(n, lambda: layer(bigcore.tensor(x)).numpy())
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10, err_msg=f"{n} threads")
    check_threads(lambda t: layer(t), [x])
