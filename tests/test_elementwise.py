"""Elementwise ops: unary math, broadcast arithmetic with tensors and scalars, comparisons, where, dtypes."""

import numpy as np
import pytest

import bigcore
from check import AWKWARD, check_op, rand

UNARY = ["neg", "exp", "tanh", "sigmoid", "relu", "abs", "gelu"]


def shape(rng, ndim=None):
    ndim = rng.integers(0, 4) if ndim is None else ndim
    return tuple(int(rng.choice(AWKWARD[:5])) for _ in range(ndim))


@pytest.mark.parametrize("name", UNARY)
def test_unary(name, rng):
    x = rand(rng, shape(rng))
    check_op(name, lambda t: getattr(t, name)() if name != "gelu" else bigcore.nn.functional.gelu(t), [x])


def test_gelu_tanh(rng):
    x = rand(rng, (3, 7))
    check_op("gelu_tanh", lambda t: bigcore.nn.functional.gelu(t, approximate="tanh"), [x])


@pytest.mark.parametrize("name", ["log", "sqrt"])
def test_positive_domain(name, rng):
    # y = log x, sqrt x on x > 0
    x = rand(rng, (5, 3), 0.5, 3.0)
    check_op(name, lambda t: getattr(t, name)(), [x])


@pytest.mark.parametrize("lo,hi", [(-0.5, 0.7), (None, 0.3), (-0.2, None)])
def test_clamp(lo, hi, rng):
    x = rand(rng, (4, 17))
    check_op("clamp", lambda t: t.clamp(lo, hi), [x], kwargs={"min": lo, "max": hi})


BROADCASTS = [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((2, 3, 5), (5,)), ((), (4, 2)), ((7, 1, 3), (2, 1)), ((1,), ())]


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
@pytest.mark.parametrize("shapes", BROADCASTS)
def test_binary_broadcast(op, shapes, rng):
    a, b = rand(rng, shapes[0]), rand(rng, shapes[1])
    if op == "div":
        b = np.where(np.abs(b) < 0.3, 0.5, b)
    fn = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y, "div": lambda x, y: x / y}[op]
    check_op(op, fn, [a, b])


@pytest.mark.parametrize("shapes", BROADCASTS[:4])
def test_pow(shapes, rng):
    # d(a^b) = b a^(b-1) da + a^b ln(a) db, a > 0
    a, b = rand(rng, shapes[0], 0.5, 2.0), rand(rng, shapes[1])
    check_op("pow", lambda x, y: x**y, [a, b])


def test_scalars_on_either_side(rng):
    x = rand(rng, (3, 5))
    t = bigcore.tensor(x)
    np.testing.assert_allclose((2 - t).numpy(), 2 - x)
    np.testing.assert_allclose((2.5 / t).numpy(), 2.5 / x)
    np.testing.assert_allclose((t ** 2).numpy(), x**2)
    np.testing.assert_allclose((2 ** t).numpy(), 2**x)
    np.testing.assert_allclose((-t).numpy(), -x)
    # a Python float does not widen a float32 tensor; a float scalar makes int tensors float32
    assert (bigcore.ones(2) * 3.5).dtype is bigcore.float32
    assert (bigcore.tensor([1, 2]) * 2).dtype is bigcore.int64
    assert (bigcore.tensor([1, 2]) * 2.5).dtype is bigcore.float32
    assert (bigcore.tensor([1, 2]) / 2).dtype is bigcore.float32


def test_dtype_promotion_and_grad_dtype():
    a = bigcore.ones(3, requires_grad=True)
    b = bigcore.ones(3, dtype=bigcore.float64, requires_grad=True)
    y = (a * b).sum()
    assert y.dtype is bigcore.float64
    y.backward()
    assert a.grad.dtype is bigcore.float32 and b.grad.dtype is bigcore.float64


def test_integer_arithmetic_is_exact_and_wraps_like_int64():
    big = 2**62
    t = bigcore.tensor([big, -3])
    np.testing.assert_array_equal((t + t).numpy(), np.array([big, -3], np.int64) * 2)
    np.testing.assert_array_equal((t * 3).numpy(), np.array([big, -3], np.int64) * 3)
    np.testing.assert_array_equal(abs(bigcore.tensor([-4, 5])).numpy(), [4, 5])


def test_nan_flows_like_numpy():
    x = np.array([np.nan, 1.0, -np.inf, np.inf], np.float32)
    t = bigcore.tensor(x)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal((t + 1).numpy(), x + 1)
        np.testing.assert_array_equal((t * 0).numpy(), x * 0)
        # NaN and infinities land exactly where numpy's do; finite values agree to float32 rounding
        np.testing.assert_allclose(t.exp().numpy(), np.exp(x), rtol=2e-7)
        np.testing.assert_array_equal(t.relu().numpy(), np.array([np.nan, 1, 0, np.inf], np.float32))
    assert np.isnan(t.sum().item()) and np.isnan(t.max().item())


@pytest.mark.parametrize("op", ["eq", "ne", "lt", "le", "gt", "ge"])
def test_comparisons(op, rng):
    a = rng.integers(0, 3, (4, 5)).astype(np.float64)
    b = rng.integers(0, 3, (5,)).astype(np.float64)
    got = getattr(bigcore.tensor(a), op)(bigcore.tensor(b))
    assert got.dtype is bigcore.bool
    np.testing.assert_array_equal(got.numpy(), getattr(np, {"eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal", "gt": "greater", "ge": "greater_equal"}[op])(a, b))
    np.testing.assert_array_equal((bigcore.tensor(a) > 1).numpy(), a > 1)


def test_bool_logic():
    a = bigcore.tensor([True, False, True])
    b = bigcore.tensor([True, True, False])
    np.testing.assert_array_equal((a & b).numpy(), [True, False, False])
    np.testing.assert_array_equal((a | b).numpy(), [True, True, True])
    np.testing.assert_array_equal((~a).numpy(), [False, True, False])


@pytest.mark.parametrize("shapes", [((3, 4), (3, 4), (3, 4)), ((3, 1), (1, 4), (3, 4)), ((4,), (2, 1), (2, 4))])
def test_where(shapes, rng):
    a, b = rand(rng, shapes[0]), rand(rng, shapes[1])
    cond = rng.random(shapes[2]) > 0.5
    check_op("where", lambda x, y: bigcore.where(bigcore.tensor(cond), x, y), [a, b], kwargs={"cond": cond})


def test_masked_fill(rng):
    x = rand(rng, (3, 5))
    mask = rng.random((1, 5)) > 0.5
    got = bigcore.tensor(x, requires_grad=True)
    out = got.masked_fill(bigcore.tensor(mask), -7.0)
    np.testing.assert_array_equal(out.numpy(), np.where(mask, -7.0, x))
    out.sum().backward()
    np.testing.assert_array_equal(got.grad.numpy(), np.broadcast_to(~mask, x.shape).astype(np.float64))


def test_cast_is_differentiable_between_floats():
    x = bigcore.tensor([1.5, -2.0], requires_grad=True)
    y = (x.double() * 3).sum()
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3, 3])
    assert x.grad.dtype is bigcore.float32
    np.testing.assert_array_equal(bigcore.tensor([1.7, -2.7]).long().numpy(), [1, -2])
