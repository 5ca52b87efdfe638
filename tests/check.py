"""One helper that checks any op: forward against the numpy float64 reference, every input's gradient against
the reference backward and against central finite differences in float64, and the float32 result against the
float64 one within float32 rounding."""

import functools
import os
import subprocess
import sys

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


def check_op(name, fn, inputs, diff=None, kwargs=None, rtol=1e-9, atol=1e-10, fd=True, f32_tol=2e-5, f32_grad_tol=None,
             seed=0):
    """Check ``fn`` (bigcore tensors -> tensor) against ``REF[name]`` on numpy ``inputs``.

    ``diff`` lists the inputs to differentiate (default: the float64 ones); ``kwargs`` go to the reference.
    ``f32_tol`` bounds the float32 forward and ``f32_grad_tol`` (default ``f32_tol``) the float32 gradients, both
    relative to the float64 reference, with an absolute floor of the tolerance times the largest magnitude of the
    result (the forward's at least 1; each gradient's own). float32 carries about 7 digits: 2e-5 is some 170
    roundings of the largest value, room for sums of hundreds of terms.
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
    grads = None
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

    # float32: the forward and every gradient within float32 rounding of the float64 reference
    if f32_tol is not None and any(a.dtype == np.float64 for a in inputs):
        diff32 = [i for i in diff if inputs[i].dtype == np.float64]
        ts32, out32 = _evaluate(fn, inputs, diff32, dtype=np.float32)
        assert out32.dtype is bigcore.float32, f"{name}: float32 inputs gave {out32.dtype}"
        scale = max(1.0, float(np.abs(want).max())) if want.size else 1.0
        np.testing.assert_allclose(out32.numpy(), want, rtol=f32_tol, atol=f32_tol * scale, err_msg=f"{name} float32")
        if diff32:
            tol = f32_tol if f32_grad_tol is None else f32_grad_tol
            out32.backward(bigcore.tensor(g.astype(np.float32)))
            for i in diff32:
                got = ts32[i].grad
                assert got is not None and got.dtype is bigcore.float32, f"{name}: float32 input {i} got {got and got.dtype}"
                # relative to the gradient's own largest magnitude (no floor at 1: a mean over many rows gives
                # small gradients, and an absolute 1e-5 would pass any of them)
                gscale = float(np.abs(grads[i]).max()) if np.size(grads[i]) else 0.0
                gscale = gscale if gscale > 0 else 1.0
                np.testing.assert_allclose(got.numpy(), grads[i], rtol=tol, atol=tol * gscale,
                                           err_msg=f"{name} float32 grad {i}")
    return out


#: row lengths that divide nothing evenly: primes, one past a power of two, round numbers that are not powers of two
AWKWARD_ROWS = [69, 97, 130, 257, 1000]

#: element count from which the engine splits a loop over threads (`parallel::MIN_PARALLEL`)
PARALLEL_THRESHOLD = bigcore._core.MIN_PARALLEL


def large_awkward_shape(rng, ndim=2, row_len=None, factor=None):
    """A shape above the parallel threshold, so the op's work is split over threads, that divides nothing evenly.

    The last dim is ``row_len`` (default: one of :data:`AWKWARD_ROWS`), the leading dims are odd and their product
    is not a multiple of 2 or 3, the element count is 1.2 to 3 times the threshold (``factor``) and there are at
    least 300 rows, so a split into 2, 3 or 4 parts of equal element counts falls inside rows unless the kernel
    splits by whole rows (with fewer rows, a minimum chunk of many rows can hide a split that ignores rows).
    """
    row_len = int(rng.choice(AWKWARD_ROWS)) if row_len is None else row_len
    factor = rng.uniform(1.2, 3.0) if factor is None else factor
    rows = max(int(PARALLEL_THRESHOLD * factor) // row_len + 1, 301)
    while rows % 2 == 0 or rows % 3 == 0:
        rows += 1
    lead = [rows]
    if ndim > 2:
        # split the rows over the leading dims: small odd primes first, the rest in dim 0
        for p in [5, 7, 11, 13][: ndim - 2]:
            lead.append(p)
        lead[0] = max(1, rows // int(np.prod(lead[1:])))
        if lead[0] % 2 == 0:
            lead[0] += 1
    return tuple(lead) + (row_len,) if ndim > 1 else (rows * row_len,)


def with_threads(n, fn, *args):
    """Run ``fn(*args)`` on a pool of ``n`` threads, restoring the pool size afterwards."""
    before = bigcore.get_num_threads()
    bigcore.set_num_threads(n)
    try:
        return fn(*args)
    finally:
        bigcore.set_num_threads(before)


def check_threads(fn, inputs, diff=None, threads=(1, 2, 3, 4), rtol=0.0, atol=0.0, seed=0):
    """Run ``fn`` (bigcore tensors -> tensor) forward and backward on 1, 2, 3 and 4 threads and compare.

    ``rtol = atol = 0`` (the default) demands bit-identical results: right for every kernel whose work is split
    by whole rows or elements. Pass a tolerance only where the algorithm's reduction order depends on the split.
    Returns the one-thread ``(output, grads)`` as numpy arrays.
    """
    inputs = [np.asarray(a) for a in inputs]
    diff = [i for i, a in enumerate(inputs) if a.dtype.kind == "f"] if diff is None else list(diff)
    g = None

    def run():
        nonlocal g
        ts = [bigcore.tensor(a, requires_grad=i in diff) for i, a in enumerate(inputs)]
        out = fn(*ts)
        if g is None:
            g = np.random.default_rng(seed).standard_normal(out.shape).astype(out.numpy().dtype)
        if diff:
            out.backward(bigcore.tensor(g))
        return out.numpy(), [ts[i].grad.numpy() for i in diff]

    results = [with_threads(n, run) for n in threads]
    want_out, want_grads = results[0]
    for n, (out, grads) in zip(threads[1:], results[1:]):
        np.testing.assert_allclose(out, want_out, rtol=rtol, atol=atol, err_msg=f"forward on {n} threads vs 1")
        for i, (a, b) in enumerate(zip(grads, want_grads)):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"grad {diff[i]} on {n} threads vs 1")
    return want_out, want_grads


@functools.cache
def simd_levels():
    """The SIMD levels this CPU can run, lowest first (what ``BIGCORE_SIMD`` may force): asked once, of a fresh
    interpreter with no level forced."""
    best = subprocess.run([sys.executable, "-c", "import bigcore; print(bigcore.simd_level())"], capture_output=True,
                          text=True, check=True, env={**os.environ, "BIGCORE_SIMD": ""}).stdout.strip()
    return ["scalar", "avx2", "avx512"][: ["scalar", "avx2", "avx512"].index(best) + 1]
