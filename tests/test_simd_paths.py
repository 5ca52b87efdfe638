"""Every SIMD path the CPU has gives the right results: BIGCORE_SIMD forces a path in a fresh interpreter, where
the products and the vectorized kernels (softmax, layer norm, GELU, cross-entropy, embedding, AdamW, RMSprop, the
common element-wise ops) are checked against the float64 reference, float32 forwards and gradients included, and on
1 to 4 threads against each other."""

import os
import subprocess
import sys

import pytest

from check import simd_levels

SCRIPT = r"""
import numpy as np, bigcore, sys
rng = np.random.default_rng(0)
for m, k, n in [(1, 1, 1), (7, 300, 33), (65, 257, 129), (130, 17, 2)]:
    for dt in (np.float32, np.float64):
        a, b = rng.standard_normal((m, k)).astype(dt), rng.standard_normal((k, n)).astype(dt)
        got = (bigcore.tensor(a) @ bigcore.tensor(b)).numpy()
        want = a.astype(np.float64) @ b.astype(np.float64)
        tol = (2e-6 if dt == np.float32 else 1e-12) * np.sqrt(k) * np.abs(want).max()
        assert np.abs(got - want).max() <= tol, (m, k, n, dt)
        # transposed operands in the backward pass
        x = bigcore.tensor(a, requires_grad=True); w = bigcore.tensor(b.T.copy(), requires_grad=True)
        bigcore.nn.functional.linear(x, w).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), np.ones((m, n)) @ b.T, rtol=1e-4, atol=1e-4 * np.sqrt(n))
print(bigcore.simd_level())
"""


KERNELS = r"""
import os, sys
import numpy as np, bigcore
import bigcore.nn.functional as F
sys.path.insert(0, os.environ["BIGCORE_TESTS"])
from check import check_op, check_threads, rand

rng = np.random.default_rng(1)
# row lengths around the vector widths (8, 16) and the cross-entropy's 4-vector blocks (32, 64)
for d in (1, 7, 16, 17, 69, 257):
    x = rand(rng, (37, d), -4, 4)
    check_op("softmax", lambda t: F.softmax(t, -1), [x], kwargs={"dim": -1}, fd=False)
    check_op("log_softmax", lambda t: F.log_softmax(t, -1), [x], kwargs={"dim": -1}, fd=False)
    w, b = rand(rng, (d,)), rand(rng, (d,))
    check_op("layer_norm", lambda t, ww, bb, d=d: F.layer_norm(t, (d,), ww, bb), [x + 50, w, b], kwargs={"nd": 1},
             rtol=1e-8, atol=1e-9, fd=False, f32_tol=5e-5)
    y = rng.integers(0, d, 37)
    y[::5] = -100
    check_op("cross_entropy", lambda t, y=y: F.cross_entropy(t, bigcore.tensor(y), label_smoothing=0.1), [x],
             kwargs={"y": y, "label_smoothing": 0.1}, rtol=1e-8, atol=1e-9, fd=False, f32_tol=5e-5)
x = rand(rng, (97, 69), -5, 5)
check_op("gelu", F.gelu, [x], fd=False)
check_op("gelu_tanh", lambda t: F.gelu(t, approximate="tanh"), [x], fd=False)
for name in ["exp", "tanh", "sigmoid", "relu", "abs", "neg"]:
    check_op(name, lambda t, name=name: getattr(t, name)(), [x], fd=False)
for name in ["add", "sub", "mul", "div"]:
    for b_shape in [(97, 69), (69,), (97, 1), ()]:
        b = rand(rng, b_shape, 0.5, 2.0)
        check_op(name, lambda s, t, name=name: getattr(s, name)(t), [x, b], fd=False, f32_tol=1e-5)
ids = rng.integers(0, 97, (13, 69))
check_op("embedding", lambda t: F.embedding(bigcore.tensor(ids), t), [rand(rng, (97, 65))], kwargs={"ids": ids}, fd=False)

# above the parallel threshold: 1 to 4 threads give the same bits at this level too
big = rand(rng, (301, 257), -4, 4).astype(np.float32)
yb = rng.integers(0, 257, 301)
for fn in [lambda t: F.softmax(t, -1), lambda t: F.log_softmax(t, -1), lambda t: F.gelu(t, approximate="tanh"),
           lambda t: F.layer_norm(t, (257,)), lambda t: F.cross_entropy(t, bigcore.tensor(yb)), lambda t: t.exp() * t]:
    check_threads(fn, [big])

# AdamW: three steps of float32 and float64 parameters (one cut into pieces: more than 2^18 elements) against
# numpy in float64
def np_adamw(p, g, lr=1e-2, b1=0.9, b2=0.999, eps=1e-8, wd=0.1, steps=3):
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t in range(1, steps + 1):
        p = p * (1 - lr * wd)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr / (1 - b1**t) * m / (np.sqrt(v) / np.sqrt(1 - b2**t) + eps)
    return p
for dt, tol in [(np.float32, 2e-6), (np.float64, 1e-13)]:
    vals = [rand(rng, s) for s in [(600001,), (97, 13), (1,)]]
    grads = [rand(rng, v.shape) for v in vals]
    ps = [bigcore.nn.Parameter(bigcore.tensor(v.astype(dt))) for v in vals]
    opt = bigcore.optim.AdamW(ps, lr=1e-2, weight_decay=0.1)
    for _ in range(3):
        for p, g in zip(ps, grads):
            p.grad = bigcore.tensor(g.astype(dt))
        opt.step()
    for p, v, g in zip(ps, vals, grads):
        want = np_adamw(v.astype(dt).astype(np.float64), g.astype(dt).astype(np.float64))
        np.testing.assert_allclose(p.numpy(), want, rtol=tol, atol=tol)

# RMSprop, centered with momentum, in PyTorch's form and Keras's (eps inside the root, lr inside the buffer)
def np_rmsprop(p, g, lr=1e-2, a=0.9, eps=1e-3, mu=0.5, keras_form=False, steps=3):
    v, ga, buf = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for _ in range(steps):
        v = a * v + (1 - a) * g * g
        ga = a * ga + (1 - a) * g
        x = lr * g / np.sqrt(v - ga * ga + eps) if keras_form else g / (np.sqrt(v - ga * ga) + eps)
        buf = mu * buf + x
        p = p - (buf if keras_form else lr * buf)
    return p
for keras_form in (False, True):
    cls = bigcore.keras.optimizers._KerasRMSprop if keras_form else bigcore.optim.RMSprop
    for dt, tol in [(np.float32, 2e-5), (np.float64, 1e-12)]:
        vals = [rand(rng, s) for s in [(300001,), (97, 13)]]
        grads = [rand(rng, v.shape) for v in vals]
        ps = [bigcore.nn.Parameter(bigcore.tensor(v.astype(dt))) for v in vals]
        opt = cls(ps, lr=1e-2, alpha=0.9, eps=1e-3, momentum=0.5, centered=True)
        for _ in range(3):
            for p, g in zip(ps, grads):
                p.grad = bigcore.tensor(g.astype(dt))
            opt.step()
        for p, v, g in zip(ps, vals, grads):
            want = np_rmsprop(v.astype(dt).astype(np.float64), g.astype(dt).astype(np.float64), keras_form=keras_form)
            np.testing.assert_allclose(p.numpy(), want, rtol=tol, atol=tol)
print(bigcore.simd_level())
"""


MODELS = r"""
import numpy as np, bigcore
from bigcore.models import GPT, GPTConfig
from bigcore.models.generation import _Logits
rng = np.random.default_rng(2)
cfg = GPTConfig(block_size=40, vocab_size=29, n_layer=2, n_head=3, n_embd=24)
fused, composed = GPT(cfg, fused=True), GPT(cfg, fused=False)
sd = {k: rng.standard_normal(v.shape).astype(np.float32) * 0.3 for k, v in composed.state_dict().items()}
sd["lm_head.weight"] = sd["transformer.wte.weight"]
for m in (fused, composed):
    m.load_state_dict(sd)
# the fused training step against the composed one: logits, loss and every gradient within float32 rounding
idx, y = rng.integers(0, 29, (3, 37)), rng.integers(0, 29, (3, 37))
out = {}
for name, m in (("fused", fused), ("composed", composed)):
    logits, loss = m(bigcore.tensor(idx), bigcore.tensor(y))
    loss.backward()
    out[name] = (logits.numpy(), loss.item(), [p.grad.numpy() for p in m.parameters()])
np.testing.assert_allclose(out["fused"][0], out["composed"][0], rtol=0, atol=2e-5 * np.abs(out["composed"][0]).max())
np.testing.assert_allclose(out["fused"][1], out["composed"][1], rtol=5e-6)
for a, b in zip(out["fused"][2], out["composed"][2]):
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-4 * np.abs(b).max())
# the key/value cache's logits at every position (full score vectors and masked tails)
fused.eval(); composed.eval()
source = _Logits(fused, 2)
logits = source.first(idx[:2, :3])
for t in range(3, 37):
    want = composed(bigcore.tensor(idx[:2, :t]))[0].numpy()[:, -1]
    np.testing.assert_allclose(logits.numpy(), want, rtol=0, atol=2e-5 * np.abs(want).max())
    logits = source.next(idx[:2, :t + 1], idx[:2, t])
print(bigcore.simd_level())
"""


@pytest.mark.parametrize("level", simd_levels())
def test_forced_simd_path(level):
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                       env={**os.environ, "BIGCORE_SIMD": level, "BIGCORE_NUM_THREADS": "2"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == level


@pytest.mark.parametrize("level", simd_levels())
def test_forced_simd_path_kernels(level):
    r = subprocess.run([sys.executable, "-c", KERNELS], capture_output=True, text=True,
                       env={**os.environ, "BIGCORE_SIMD": level, "BIGCORE_NUM_THREADS": "2",
                            "BIGCORE_TESTS": os.path.dirname(os.path.abspath(__file__))})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == level


@pytest.mark.parametrize("level", simd_levels())
def test_forced_simd_path_gpt(level):
    # the fused GPT's training step and its key/value cache on each level, against the composed model
    r = subprocess.run([sys.executable, "-c", MODELS], capture_output=True, text=True,
                       env={**os.environ, "BIGCORE_SIMD": level, "BIGCORE_NUM_THREADS": "2"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == level
