"""matmul and linear against numpy in float64 at awkward sizes, PyTorch's 1-D and broadcast-batch rules,
transposed operands in the backward pass, and float32 accuracy."""

import numpy as np
import pytest

import bigcore
from check import check_op, rand, with_threads

SHAPES = [
    ((3, 4), (4, 5)),
    ((1, 1), (1, 1)),
    ((7, 13), (13, 2)),
    ((4,), (4,)),
    ((3,), (3, 5)),
    ((2, 5, 3), (3,)),
    ((2, 3, 4), (4, 5)),
    ((5, 1, 3, 4), (2, 4, 3)),
    ((2, 1, 3), (1, 3, 2)),
]


@pytest.mark.parametrize("a,b", SHAPES)
def test_matmul_shapes_and_grads(a, b, rng):
    check_op("matmul", lambda x, y: x @ y, [rand(rng, a), rand(rng, b)])


@pytest.mark.parametrize("n", [1, 2, 7, 15, 16, 17, 31, 33, 63, 65, 127, 129, 257])
def test_matmul_awkward_sizes_against_numpy(n, rng):
    m, k = (n * 3) % 67 + 1, (n * 7) % 301 + 1
    a, b = rand(rng, (m, k)), rand(rng, (k, n))
    out = check_op("matmul", lambda x, y: x @ y, [a, b], fd=False, rtol=1e-11, atol=1e-11, f32_tol=2e-6 * np.sqrt(k))
    assert out.shape == (m, n)


def test_matmul_large_batched_attention_shape(rng):
    q, k = rand(rng, (2, 3, 65, 16)), rand(rng, (2, 3, 65, 16))
    got = (bigcore.tensor(q) @ bigcore.tensor(k).transpose(-2, -1)).numpy()
    np.testing.assert_allclose(got, q @ k.swapaxes(-1, -2), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("xs,out_f,bias", [((4, 3), 5, True), ((2, 7, 3), 1, False), ((1,), 4, True), ((0, 3), 2, True), ((2, 33), 17, True)])
def test_linear(xs, out_f, bias, rng):
    x, w = rand(rng, xs), rand(rng, (out_f, xs[-1]))
    ins = [x, w] + ([rand(rng, (out_f,))] if bias else [])
    check_op("linear", lambda *t: bigcore.nn.functional.linear(*t), ins, fd=x.size * w.size < 400)


def test_results_agree_across_thread_counts(rng):
    # one product split into tiles over 1, 2 and 3 threads: the results are compared with each other (each output
    # element is one tile's dot product in the same k order, so bit for bit) and with float64 within rounding
    a = rng.standard_normal((257, 300)).astype(np.float32)
    b = rng.standard_normal((300, 129)).astype(np.float32)
    got = [with_threads(n, lambda: (bigcore.tensor(a) @ bigcore.tensor(b)).numpy()) for n in (1, 2, 3)]
    for n, g in zip((2, 3), got[1:]):
        np.testing.assert_array_equal(g, got[0], err_msg=f"{n} threads vs 1")
    want = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(got[0], want, rtol=0, atol=2e-6 * np.sqrt(300) * np.abs(want).max())
