"""Reductions: sum, mean, max/min (values and indices), amax, argmax, over ints, tuples, negative dims."""

import numpy as np
import pytest

import bigcore
from check import check_op, rand

CASES = [((4, 5), None), ((4, 5), 1), ((3, 1, 5), (0, 2)), ((2, 3, 4), -1), ((7,), 0), ((2, 3, 5), (1, -1)), ((), None)]


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("shape,dim", CASES)
@pytest.mark.parametrize("op", ["sum", "mean"])
def test_sum_mean(op, shape, dim, keepdim, rng):
    x = rand(rng, shape)
    check_op(op, lambda t: getattr(t, op)(dim, keepdim) if dim is not None else getattr(t, op)(keepdim=keepdim) if keepdim else getattr(t, op)(), [x],
             kwargs={"dim": dim, "keepdim": keepdim})


def test_sum_of_empty_and_bool():
    assert bigcore.zeros(0, 3).sum().item() == 0.0
    np.testing.assert_array_equal(bigcore.zeros(0, 3).sum(0).numpy(), [0, 0, 0])
    s = bigcore.tensor([True, False, True]).sum()
    assert s.dtype is bigcore.int64 and s.item() == 2
    assert np.isnan(bigcore.zeros(0).mean().item())


def test_float32_sum_is_accurate():
    # 1e6 values: a naive float32 running sum drifts by ~1e-3 relative; accumulation is in float64
    x = np.random.default_rng(0).random(1_000_003).astype(np.float32)
    got = bigcore.tensor(x).sum().item()
    assert abs(got - x.astype(np.float64).sum()) <= 1e-6 * x.size


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("shape,dim", [((4, 5), 1), ((3, 7, 2), 0), ((5,), -1), ((2, 17, 3), -2)])
@pytest.mark.parametrize("is_min", [False, True])
def test_max_min_dim(shape, dim, keepdim, is_min, rng):
    x = rand(rng, shape)
    f = (lambda t: t.min(dim, keepdim).values) if is_min else (lambda t: t.max(dim, keepdim).values)
    check_op("max", f, [x], kwargs={"dim": dim, "keepdim": keepdim, "is_min": is_min})
    v, i = (bigcore.tensor(x).min if is_min else bigcore.tensor(x).max)(dim, keepdim)
    want = (np.argmin if is_min else np.argmax)(x, axis=dim)
    np.testing.assert_array_equal(i.numpy(), np.expand_dims(want, dim) if keepdim else want)
    assert i.dtype is bigcore.int64


def test_global_max_amax_argmax(rng):
    x = rand(rng, (3, 4, 5))
    t = bigcore.tensor(x)
    assert t.max().item() == x.max() and t.min().item() == x.min()
    np.testing.assert_array_equal(t.amax((0, 2)).numpy(), x.max(axis=(0, 2)))
    np.testing.assert_array_equal(t.amin(1, keepdim=True).numpy(), x.min(axis=1, keepdims=True))
    assert t.argmax().item() == x.argmax()
    np.testing.assert_array_equal(t.argmax(1).numpy(), x.argmax(1))
    np.testing.assert_array_equal(t.argmin(-1, keepdim=True).numpy(), x.argmin(-1)[..., None])
    # gradient of a global max goes to the maximum
    t.requires_grad = True
    t.max().backward()
    want = np.zeros_like(x)
    want[np.unravel_index(x.argmax(), x.shape)] = 1
    np.testing.assert_array_equal(t.grad.numpy(), want)


def test_max_ties_pick_first_and_nan_wins():
    t = bigcore.tensor([[1.0, 3.0, 3.0], [np.nan, 5.0, 1.0]])
    v, i = t.max(1)
    np.testing.assert_array_equal(i.numpy(), [1, 0])
    assert v.numpy()[0] == 3 and np.isnan(v.numpy()[1])
    assert bigcore.tensor([2, 9, 4]).max().item() == 9
