"""One helper that checks any op: forward against the numpy float64 reference, every input's gradient against
the reference backward and against central finite differences in float64, and the float32 result against the
float64 one within float32 rounding."""

import numpy as np

import bigcore
from reference import REF

#: sizes chosen to hit edge cases: 1, primes, one past a power of two
AWKWARD = [1, 2, 3, 5, 7, 13, 17]


def rand(rng, shape, low=-2.0, high=2.0):
    return rng.uniform(low, high, size=shape)


def _evaluate(fn, arrays, diff, dtype=None):
    ts = []
    for i, a in enumerate(arrays):
        if a.dtype == np.float64 and dtype is not None:
            a = a.astype(dtype)
        ts.append(bigcore.tensor(a, requires_grad=i in diff))
    return ts, fn(*ts)


def check_op(name, fn, inputs, diff=None, kwargs=None, rtol=1e-9, atol=1e-10, fd=True, f32_tol=2e-5, seed=0):
    """Check ``fn`` (bigcore tensors -> tensor) against ``REF[name]`` on numpy ``inputs``.

    ``diff`` lists the inputs to differentiate (default: the float64 ones); ``kwargs`` go to the reference.
    """
    fwd, bwd = REF[name]
    kwargs = kwargs or {}
    inputs = [np.asarray(a) for a in inputs]
    diff = [i for i, a in enumerate(inputs) if a.dtype == np.float64] if diff is None else list(diff)
    rng = np.random.default_rng(seed)

    # forward, float64
    ts, out = _evaluate(fn, inputs, diff)
    want = np.asarray(fwd(*inputs, **kwargs), dtype=np.float64)
    assert out.shape == want.shape, f"{name}: shape {out.shape} != reference {want.shape}"
    assert out.dtype is bigcore.float64, f"{name}: float64 inputs gave {out.dtype}"
    np.testing.assert_allclose(out.numpy(), want, rtol=rtol, atol=atol, err_msg=f"{name} forward")

    # backward against the reference
    if diff:
        g = rng.standard_normal(want.shape)
        out.backward(bigcore.tensor(g))
        grads = bwd(g, *inputs, **kwargs)
        for i in diff:
            assert ts[i].grad is not None, f"{name}: input {i} got no gradient"
            assert ts[i].grad.shape == inputs[i].shape
            np.testing.assert_allclose(ts[i].grad.numpy(), grads[i], rtol=1e-7, atol=1e-9, err_msg=f"{name} grad {i}")

        # central finite differences of sum(f(x) * g)
        if fd:
            h = 1e-6
            with bigcore.no_grad():
                for i in diff:
                    num = np.zeros(inputs[i].shape)
                    for j in np.ndindex(inputs[i].shape):
                        x = [a.copy() for a in inputs]
                        x[i][j] += h
                        up = (fn(*[bigcore.tensor(a) for a in x]).numpy() * g).sum()
                        x[i][j] -= 2 * h
                        down = (fn(*[bigcore.tensor(a) for a in x]).numpy() * g).sum()
                        num[j] = (up - down) / (2 * h)
                    np.testing.assert_allclose(ts[i].grad.numpy(), num, rtol=1e-5, atol=1e-6, err_msg=f"{name} finite differences {i}")

    # float32: within float32 rounding of the float64 result
    if f32_tol is not None and any(a.dtype == np.float64 for a in inputs):
        _, out32 = _evaluate(fn, inputs, [], dtype=np.float32)
        assert out32.dtype is bigcore.float32, f"{name}: float32 inputs gave {out32.dtype}"
        scale = max(1.0, float(np.abs(want).max())) if want.size else 1.0
        np.testing.assert_allclose(out32.numpy(), want, rtol=f32_tol, atol=f32_tol * scale, err_msg=f"{name} float32")
    return out
