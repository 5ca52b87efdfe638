"""The LSTM engine's fast paths (issue 12): the reverse direction run in place of flipped copies, the gradients in
float64 against central differences of the forward at random odd shapes, every SIMD level against float64, and
1 to 4 threads bit for bit, both for the batch-row split (each thread runs the whole sequence on its rows) and for
the per-step split of hidden units that small batches take."""

import os
import subprocess
import sys

import numpy as np
import pytest

import bigcore
import bigcore.nn as nn
from bigcore import _core
from check import simd_levels, with_threads
from test_lstm import np_lstm


def _lstm_raw(x, h0, c0, w_ih, w_hh, b, reverse):
    """One engine call: the packed (T + 2, B, H) output."""
    return bigcore._tensor._wrap(_core.lstm(x._c, h0._c, c0._c, w_ih._c, w_hh._c, b._c, reverse))


def _leaves(rng, t, b, i, h, dtype=np.float64):
    shapes = [(t, b, i), (b, h), (b, h), (4 * h, i), (4 * h, h), (4 * h,)]
    return [bigcore.tensor(rng.uniform(-1, 1, s).astype(dtype), requires_grad=True) for s in shapes]


def test_reverse_direction_is_the_forward_one_on_the_flipped_sequence(rng):
    # reverse runs t = T-1 .. 0 in place: the same bits as flipping x, running forward and flipping the states
    # back; the weight gradients sum over time in the other order, so they agree to rounding
    t, b, i, h = 6, 3, 4, 5
    ins = _leaves(rng, t, b, i, h)
    g = bigcore.tensor(rng.standard_normal((t + 2, b, h)))
    rev = _lstm_raw(*ins, reverse=True)
    rev.backward(g)
    want_grads = [v.grad.numpy() for v in ins]
    flip = np.arange(t - 1, -1, -1)
    xf = bigcore.tensor(ins[0].numpy()[flip], requires_grad=True)
    rest = [bigcore.tensor(v.numpy(), requires_grad=True) for v in ins[1:]]
    fwd = _lstm_raw(xf, *rest, reverse=False)
    gf = np.concatenate([g.numpy()[:t][flip], g.numpy()[t:]])
    fwd.backward(bigcore.tensor(gf))
    out = fwd.numpy()
    np.testing.assert_array_equal(rev.numpy(), np.concatenate([out[:t][flip], out[t:]]))
    np.testing.assert_array_equal(want_grads[0], xf.grad.numpy()[flip])
    np.testing.assert_array_equal(want_grads[1], rest[0].grad.numpy())  # h0
    np.testing.assert_array_equal(want_grads[2], rest[1].grad.numpy())  # c0
    for a, v in zip(want_grads[3:], rest[2:]):  # w_ih, w_hh, bias
        np.testing.assert_allclose(a, v.grad.numpy(), rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_float64_gradients_match_central_differences_at_random_odd_shapes(seed):
    # d/dp sum(out * g) for every input and weight, against (f(p + e) - f(p - e)) / 2e of the engine's own forward
    rng = np.random.default_rng(100 + seed)
    t, b, i, h = (int(rng.choice(v)) for v in ([1, 3, 5], [1, 3], [1, 2, 5], [1, 3, 7]))
    reverse = bool(seed % 2)
    ins = _leaves(rng, t, b, i, h)
    g = rng.standard_normal((t + 2, b, h))
    _lstm_raw(*ins, reverse=reverse).backward(bigcore.tensor(g))
    arrays = [v.numpy() for v in ins]

    def loss():
        with bigcore.no_grad():
            return float((_lstm_raw(*[bigcore.tensor(a) for a in arrays], reverse=reverse).numpy() * g).sum())

    for k, (v, a) in enumerate(zip(ins, arrays)):
        num = np.zeros_like(a)
        for j in np.ndindex(a.shape):
            old = a[j]
            a[j] = old + 1e-6
            up = loss()
            a[j] = old - 1e-6
            num[j] = (up - loss()) / 2e-6
            a[j] = old
        np.testing.assert_allclose(v.grad.numpy(), num, rtol=1e-6, atol=1e-8,
                                   err_msg=f"input {k}, T{t} B{b} I{i} H{h} reverse={reverse}")


def _module_step(m, x, g):
    """Output, input gradient and every parameter gradient of one forward + backward."""
    xt = bigcore.tensor(x, requires_grad=True)
    m.zero_grad()
    out, (hn, cn) = m(xt)
    (out * bigcore.tensor(g)).sum().backward()
    return [out.numpy(), hn.numpy(), cn.numpy(), xt.grad.numpy()] + [p.grad.numpy() for p in m.parameters()]


@pytest.mark.parametrize("t,b,i,h", [(4, 37, 9, 131), (3, 2, 5, 400)], ids=["batch-rows", "hidden-units-per-step"])
def test_one_to_four_threads_give_the_same_bits(t, b, i, h, rng):
    # above the parallel threshold: the first shape splits the batch (13 tiles of rows), the second (one tile
    # of rows) splits the hidden units of every step; two layers, both directions
    m = nn.LSTM(i, h, num_layers=2, bidirectional=True)
    x = rng.standard_normal((t, b, i)).astype(np.float32)
    g = rng.standard_normal((t, b, 2 * h)).astype(np.float32)
    first = with_threads(1, _module_step, m, x, g)
    for n in (2, 3, 4):
        for k, (a, want) in enumerate(zip(with_threads(n, _module_step, m, x, g), first)):
            np.testing.assert_array_equal(a, want, err_msg=f"value {k} on {n} threads vs 1")


SIMD_SCRIPT = r"""
import numpy as np, bigcore, bigcore.nn as nn, sys, os
sys.path.insert(0, os.environ["BIGCORE_TESTS"])
from test_lstm import np_lstm
rng = np.random.default_rng(3)
# hidden sizes around the vector widths (8, 16) and with masked tails; a batch that splits over threads
for t, b, i, h in [(3, 2, 3, 1), (4, 13, 5, 7), (3, 5, 2, 33), (2, 37, 4, 100)]:
    m = nn.LSTM(i, h, num_layers=2, bidirectional=True)
    p = {k: v.numpy().astype(np.float64) for k, v in m.state_dict().items()}
    x = rng.uniform(-2, 2, (t, b, i)).astype(np.float32)
    g = rng.standard_normal((t, b, 2 * h)).astype(np.float32)
    out, _ = m(bigcore.tensor(x))
    z = np.zeros((4, b, h))
    want, _, _ = np_lstm(p, x.astype(np.float64), z, z, 2, True)
    np.testing.assert_allclose(out.numpy(), want, rtol=0, atol=2e-6, err_msg=f"forward T{t} B{b} I{i} H{h}")
    # float32 gradients against float64 ones of the same weights
    m64 = nn.LSTM(i, h, num_layers=2, bidirectional=True, dtype=bigcore.float64)
    m64.load_state_dict({k: bigcore.tensor(v) for k, v in p.items()})
    for mod, dt in ((m, np.float32), (m64, np.float64)):
        xt = bigcore.tensor(x.astype(dt), requires_grad=True)
        (mod(xt)[0] * bigcore.tensor(g.astype(dt))).sum().backward()
        mod.xgrad = xt.grad.numpy()
    for a, w in [(m.xgrad, m64.xgrad)] + [(q.grad.numpy(), r.grad.numpy()) for q, r in zip(m.parameters(), m64.parameters())]:
        np.testing.assert_allclose(a, w, rtol=0, atol=2e-5 * max(1.0, np.abs(w).max()), err_msg=f"grads T{t} B{b} I{i} H{h}")
print(bigcore.simd_level())
"""


@pytest.mark.parametrize("level", simd_levels())
def test_every_simd_level_matches_float64(level):
    r = subprocess.run([sys.executable, "-c", SIMD_SCRIPT], capture_output=True, text=True,
                       env={**os.environ, "BIGCORE_SIMD": level, "BIGCORE_NUM_THREADS": "2",
                            "BIGCORE_TESTS": os.path.dirname(os.path.abspath(__file__))})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == level


def test_benchmark_smoke_run():
    # benchmarks/lstm.py at tiny sizes against its numpy loop: the contenders' outputs agree (the script checks
    # before timing) and it prints a ratio for both shapes
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benchmarks", "lstm.py")
    r = subprocess.run([sys.executable, script, "--quick", "--peer", "numpy"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("ratio ") == 2 + 1  # the header's legend and one line per shape
