"""``nn.init``: fill tensors in place from the seeded generator, with PyTorch's names, formulas and defaults."""

import math
import warnings

import numpy as np

from .._creation import full, rand, randn, tensor
from ..autograd import no_grad
from .parameter import _replace_values


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for a nonlinearity (PyTorch's table)."""
    linear = {"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "sigmoid"}
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(t):
    if t.ndim < 2:
        raise ValueError("fan in and fan out can not be computed for a tensor with fewer than 2 dimensions")
    receptive = int(np.prod(t.shape[2:])) if t.ndim > 2 else 1
    return t.shape[1] * receptive, t.shape[0] * receptive


def _fan(t, mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode {mode!r} not supported, use 'fan_in' or 'fan_out'")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(t)
    return fan_in if mode == "fan_in" else fan_out


@no_grad()
def uniform_(t, a=0.0, b=1.0, generator=None):
    """Fill with U(a, b), drawn from ``generator`` (default: the seeded default generator)."""
    _replace_values(t, rand(t.shape, dtype=t.dtype, generator=generator) * (b - a) + a)
    return t


@no_grad()
def normal_(t, mean=0.0, std=1.0, generator=None):
    """Fill with N(mean, std^2), drawn from ``generator`` (default: the seeded default generator)."""
    _replace_values(t, randn(t.shape, dtype=t.dtype, generator=generator) * std + mean)
    return t


@no_grad()
def trunc_normal_(t, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """Fill with N(mean, std^2) restricted to [a, b] (rejection sampling from the seeded generator)."""
    n = t.numel()
    out = np.empty(0)
    while out.size < n:
        draw = randn(max(2 * (n - out.size), 16), dtype="float64", generator=generator).numpy() * std + mean
        out = np.concatenate([out, draw[(draw >= a) & (draw <= b)]])
    _replace_values(t, tensor(out[:n].reshape(t.shape), dtype=t.dtype))
    return t


@no_grad()
def constant_(t, val):
    """Fill with ``val``."""
    _replace_values(t, full(t.shape, float(val), dtype=t.dtype))
    return t


def zeros_(t):
    return constant_(t, 0.0)


def ones_(t):
    return constant_(t, 1.0)


def xavier_uniform_(t, gain=1.0, generator=None):
    """U(-a, a) with ``a = gain * sqrt(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(t)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -a, a, generator)


def xavier_normal_(t, gain=1.0, generator=None):
    """N(0, std^2) with ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(t)
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def _no_op_if_empty(t):
    """True (with PyTorch's warning) for a zero-element tensor, whose fans may be 0: initializing it does nothing."""
    if 0 in t.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return True
    return False


def kaiming_uniform_(t, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """U(-b, b) with ``b = gain * sqrt(3 / fan)`` (He initialization)."""
    if _no_op_if_empty(t):
        return t
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(t, mode))
    return uniform_(t, -bound, bound, generator)


def kaiming_normal_(t, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """N(0, std^2) with ``std = gain / sqrt(fan)`` (He initialization)."""
    if _no_op_if_empty(t):
        return t
    return normal_(t, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(_fan(t, mode)), generator)
