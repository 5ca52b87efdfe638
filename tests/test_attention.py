"""F.scaled_dot_product_attention (the fused flash-style kernel) against the numpy float64 reference: awkward
sizes, causal with T != S, bool and additive masks broadcast over batch and heads, scale, broadcast batch dims,
grouped-query heads, fully masked queries, dropout (reproducible, the right rate, the backward using the forward's
mask), every SIMD level in a fresh interpreter, and PyTorch's errors.

    softmax(q k^T * scale + mask) v ; a query whose every key is masked gets 0 (PyTorch 2.15 does the same)
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import bigcore
import bigcore.nn as nn
import bigcore.nn.functional as F
from check import check_op, rand, simd_levels
from reference import REF

SDPA = "scaled_dot_product_attention"


def _sdpa(mask=None, causal=False, scale=None):
    """bigcore's SDPA on tensors, with a numpy mask converted to the inputs' dtype when it is float."""
    def fn(q, k, v):
        m = None
        if mask is not None:
            m = bigcore.tensor(mask) if mask.dtype == bool else bigcore.tensor(mask).to(q.dtype)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=m, is_causal=causal, scale=scale)
    return fn


def _qkv(rng, b, nh, t, s, hs, hv):
    return [rand(rng, (b, nh, t, hs)), rand(rng, (b, nh, s, hs)), rand(rng, (b, nh, s, hv))]


# (B, NH, T, S, HS, HV): sizes 1, primes, 69, 130; T != S both ways
SIZES = [(1, 1, 1, 1, 1, 1), (1, 3, 2, 7, 8, 13), (3, 1, 7, 2, 13, 8), (1, 1, 69, 130, 64, 64),
         (1, 1, 130, 69, 13, 13), (3, 5, 7, 7, 64, 1)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("causal", [False, True])
def test_forward_and_gradients(size, causal, rng):
    ins = _qkv(rng, *size)
    small = np.prod(size) <= 3 * 7 * 13 * 8
    check_op(SDPA, _sdpa(causal=causal), ins, kwargs={"causal": causal}, rtol=1e-10, atol=1e-11, fd=small,
             f32_tol=5e-5)


@pytest.mark.parametrize("kind", ["bool (T, S)", "bool padding (B, 1, 1, S)", "bool (NH, T, S)", "additive (B, NH, T, S)",
                                  "additive (B, 1, T, 1)", "additive (S,)"])
def test_masks_broadcast(kind, rng):
    b, nh, t, s = 3, 5, 7, 13
    ins = _qkv(rng, b, nh, t, s, 8, 3)
    if kind == "bool (T, S)":
        mask = rng.random((t, s)) > 0.4
    elif kind.startswith("bool padding"):
        mask = np.arange(s)[None, None, None, :] < np.array([13, 9, 1])[:, None, None, None]
    elif kind == "bool (NH, T, S)":
        mask = rng.random((nh, t, s)) > 0.5
    elif kind == "additive (B, NH, T, S)":
        mask = rand(rng, (b, nh, t, s))
        mask[0, 1, 2, :5] = -np.inf
    elif kind == "additive (B, 1, T, 1)":
        mask = rand(rng, (b, 1, t, 1))
    else:
        mask = rand(rng, (s,))
    check_op(SDPA, _sdpa(mask=mask), ins, kwargs={"mask": mask}, rtol=1e-10, atol=1e-11, f32_tol=5e-5)


def test_scale_and_a_mask_over_some_leading_batch_dims(rng):
    # batch dims (2, 3, 4): the mask broadcasts over the middle one only, which the kernel cannot stride over
    ins = [rand(rng, (2, 3, 4, 5, 8)), rand(rng, (2, 3, 4, 6, 8)), rand(rng, (2, 3, 4, 6, 2))]
    mask = rng.random((2, 1, 4, 5, 6)) > 0.3
    check_op(SDPA, _sdpa(mask=mask, scale=0.3), ins, kwargs={"mask": mask, "scale": 0.3}, rtol=1e-10, atol=1e-11)


def test_batch_dims_broadcast(rng):
    # q (2, 3, L, E), k (1, 3, S, E), v (3, S, Ev), as PyTorch: gradients sum over the broadcast dims
    ins = [rand(rng, (2, 3, 4, 5)), rand(rng, (1, 3, 6, 5)), rand(rng, (3, 6, 2))]
    check_op(SDPA, _sdpa(causal=True), ins, kwargs={"causal": True}, rtol=1e-10, atol=1e-11)
    # 2-D operands: one head
    check_op(SDPA, _sdpa(), [rand(rng, (4, 3)), rand(rng, (7, 3)), rand(rng, (7, 5))], rtol=1e-10, atol=1e-11)


def test_float32_gradients_within_rounding_of_float64(rng):
    ins = _qkv(rng, 3, 1, 69, 130, 64, 64)
    for causal in (False, True):
        g = rng.standard_normal((3, 1, 69, 64))
        want = REF[SDPA][1](g, *ins, causal=causal)
        ts = [bigcore.tensor(a.astype(np.float32), requires_grad=True) for a in ins]
        (F.scaled_dot_product_attention(*ts, is_causal=causal) * bigcore.tensor(g.astype(np.float32))).sum().backward()
        for t, w in zip(ts, want):
            np.testing.assert_allclose(t.grad.numpy(), w, rtol=1e-4, atol=2e-5 * np.abs(w).max())


def test_grouped_query_heads(rng):
    q, k, v = rand(rng, (2, 6, 5, 4)), rand(rng, (2, 2, 7, 4)), rand(rng, (2, 2, 7, 3))
    rep = lambda x: np.repeat(x, 3, axis=1)  # noqa: E731  query heads 0-2 share kv head 0, 3-5 head 1
    got = F.scaled_dot_product_attention(bigcore.tensor(q), bigcore.tensor(k), bigcore.tensor(v), enable_gqa=True)
    np.testing.assert_allclose(got.numpy(), REF[SDPA][0](q, rep(k), rep(v)), rtol=1e-12, atol=1e-13)
    with pytest.raises(bigcore.ShapeError, match="multiple"):
        F.scaled_dot_product_attention(bigcore.tensor(q), bigcore.tensor(k[:, :1].repeat(4, 1)), bigcore.tensor(v),
                                       enable_gqa=True)


def test_a_query_with_every_key_masked_gets_zeros(rng):
    q, k, v = _qkv(rng, 1, 2, 3, 4, 5, 2)
    mask = np.ones((3, 4), bool)
    mask[1] = False
    ts = [bigcore.tensor(a, requires_grad=True) for a in (q, k, v)]
    out = F.scaled_dot_product_attention(*ts, attn_mask=bigcore.tensor(mask))
    np.testing.assert_array_equal(out.numpy()[:, :, 1], 0.0)
    out.sum().backward()
    assert all(np.isfinite(t.grad.numpy()).all() for t in ts)
    np.testing.assert_array_equal(ts[0].grad.numpy()[:, :, 1], 0.0)
    check_op(SDPA, _sdpa(mask=mask), [q, k, v], kwargs={"mask": mask}, rtol=1e-10, atol=1e-11)
    additive = np.where(mask, 0.0, -np.inf)
    np.testing.assert_allclose(_sdpa(mask=additive)(*[bigcore.tensor(a) for a in (q, k, v)]).numpy(), out.numpy(),
                               rtol=1e-13, atol=1e-14)


# ---- dropout on the attention weights ----

def _dropped_weights(q, k, p, seed, **kw):
    """The weights after dropout, read off as the output for v = I (value head size S)."""
    bigcore.manual_seed(seed)
    eye = np.broadcast_to(np.eye(k.shape[-2]), k.shape[:-1] + (k.shape[-2],)).copy()
    return F.scaled_dot_product_attention(bigcore.tensor(q), bigcore.tensor(k), bigcore.tensor(eye), dropout_p=p,
                                          **kw).numpy()


def test_dropout_rate_and_scale(rng):
    q, k = rand(rng, (3, 5, 61, 8)), rand(rng, (3, 5, 67, 8))
    weights = REF[SDPA][0](q, k, np.broadcast_to(np.eye(67), (3, 5, 67, 67)))
    for p in (0.1, 0.5):
        got = _dropped_weights(q, k, p, 11)
        kept = got != 0
        n = kept.size
        # binomial: the kept fraction within 5 standard deviations of 1 - p
        assert abs(kept.sum() - n * (1 - p)) < 5 * np.sqrt(n * p * (1 - p)), (p, kept.mean())
        np.testing.assert_allclose(got[kept], weights[kept] / (1 - p), rtol=1e-12)


def test_dropout_is_reproducible_under_manual_seed(rng):
    q, k, v = _qkv(rng, 2, 3, 17, 19, 8, 8)

    def run(seed):
        bigcore.manual_seed(seed)
        ts = [bigcore.tensor(a, requires_grad=True) for a in (q, k, v)]
        out = F.scaled_dot_product_attention(*ts, dropout_p=0.3, is_causal=True)
        out.sum().backward()
        return [out.numpy()] + [t.grad.numpy() for t in ts]

    a, b, c = run(5), run(5), run(6)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("causal", [False, True])
def test_dropout_backward_uses_the_forwards_mask(causal, rng):
    # reveal the mask through v = I, then the same seed with a real v: output and gradients match the reference
    # computed with that mask, (P Z) v with Z = keep / (1 - p)
    p, seed = 0.4, 21
    q, k, v = _qkv(rng, 2, 3, 13, 11, 5, 4)
    weights = _dropped_weights(q, k, p, seed, is_causal=causal)
    keep = weights != 0
    kw = {"causal": causal, "keep": keep, "p": p}
    assert 0.4 < keep[REF[SDPA][0](q, k, np.broadcast_to(np.eye(11), (2, 3, 11, 11)), causal=causal) > 0].mean() < 0.8

    def fn(a, b, c):
        bigcore.manual_seed(seed)
        return F.scaled_dot_product_attention(a, b, c, dropout_p=p, is_causal=causal)
    check_op(SDPA, fn, [q, k, v], kwargs=kw, rtol=1e-10, atol=1e-11, fd=True, f32_tol=5e-5)


def test_no_dropout_at_zero_or_in_eval(rng):
    q, k, v = _qkv(rng, 2, 2, 9, 9, 4, 4)
    t = [bigcore.tensor(a) for a in (q, k, v)]
    np.testing.assert_array_equal(F.scaled_dot_product_attention(*t, dropout_p=0.0).numpy(),
                                  F.scaled_dot_product_attention(*t).numpy())
    m = nn.MultiheadAttention(8, 2, dropout=0.5, batch_first=True, dtype=bigcore.float64)
    x = bigcore.tensor(rng.standard_normal((2, 9, 8)))
    m.eval()
    a, b = m(x, x, x, need_weights=False)[0].numpy(), m(x, x, x, need_weights=False)[0].numpy()
    np.testing.assert_array_equal(a, b)
    m.train()
    c = m(x, x, x, need_weights=False)[0].numpy()
    assert not np.allclose(a, c)


# ---- every SIMD level, forced in a fresh interpreter ----

SIMD_SCRIPT = r"""
import numpy as np, bigcore, bigcore.nn.functional as F, sys
sys.path.insert(0, sys.argv[1])
from reference import REF
fwd, bwd = REF["scaled_dot_product_attention"]
rng = np.random.default_rng(0)
for (b, nh, t, s, hs, hv), causal in [((1, 3, 69, 130, 64, 64), True), ((3, 1, 7, 2, 13, 8), False),
                                      ((1, 2, 130, 69, 8, 1), True), ((2, 1, 1, 1, 1, 1), False)]:
    q, k, v = rng.uniform(-2, 2, (b, nh, t, hs)), rng.uniform(-2, 2, (b, nh, s, hs)), rng.uniform(-2, 2, (b, nh, s, hv))
    mask = rng.random((t, s)) > 0.3 if not causal else None
    g = rng.standard_normal((b, nh, t, hv))
    want = [fwd(q, k, v, mask, causal)] + list(bwd(g, q, k, v, mask, causal))
    for dt, tol in ((np.float32, 5e-5), (np.float64, 1e-11)):
        ts = [bigcore.tensor(a.astype(dt), requires_grad=True) for a in (q, k, v)]
        m = None if mask is None else bigcore.tensor(mask)
        out = F.scaled_dot_product_attention(*ts, attn_mask=m, is_causal=causal)
        (out * bigcore.tensor(g.astype(dt))).sum().backward()
        for got, w in zip([out] + [x.grad for x in ts], want):
            np.testing.assert_allclose(got.numpy(), w, rtol=tol, atol=tol * max(1, np.abs(w).max()))
print(bigcore.simd_level())
"""


@pytest.mark.parametrize("level", simd_levels())
def test_every_simd_level(level):
    r = subprocess.run([sys.executable, "-c", SIMD_SCRIPT, os.path.dirname(__file__)], capture_output=True, text=True,
                       env={**os.environ, "BIGCORE_SIMD": level, "BIGCORE_NUM_THREADS": "2"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == level


# ---- errors, as PyTorch raises them (ValueError where it raises RuntimeError for a bad argument) ----

def test_errors(rng):
    q, k, v = (bigcore.tensor(a) for a in _qkv(rng, 1, 2, 3, 4, 5, 6))
    with pytest.raises(ValueError, match="is_causal"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=bigcore.ones(3, 4, dtype=bigcore.bool), is_causal=True)
    for p in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="dropout probability"):
            F.scaled_dot_product_attention(q, k, v, dropout_p=p)
    with pytest.raises(bigcore.ShapeError, match=r"\[1, 2, 3, 5\]"):
        F.scaled_dot_product_attention(q, v, v)
    with pytest.raises(bigcore.ShapeError, match="broadcast"):
        F.scaled_dot_product_attention(q, k.repeat(1, 3, 1, 1), v.repeat(1, 3, 1, 1))
    with pytest.raises(bigcore.ShapeError, match="attn_mask"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=bigcore.ones(3, 5, dtype=bigcore.bool))
    with pytest.raises(bigcore.ShapeError, match="at least 2"):
        F.scaled_dot_product_attention(q.reshape(-1), k, v)
    with pytest.raises(bigcore.DTypeError):
        F.scaled_dot_product_attention(q, k.float(), v)
    with pytest.raises(bigcore.DTypeError):
        F.scaled_dot_product_attention(q.long(), k.long(), v.long())
    with pytest.raises(bigcore.DTypeError, match="bool or float"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=bigcore.ones(3, 4, dtype=bigcore.int64))
    with pytest.raises(NotImplementedError, match="attn_mask"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=bigcore.zeros(3, 4, dtype=bigcore.float64, requires_grad=True))
    with pytest.raises(ValueError, match="scale"):
        F.scaled_dot_product_attention(q, k, v, scale=float("inf"))
