"""Top-level functions that mirror ``torch.*``: ``matmul``, ``cat``, ``stack``, ``where`` and the functional forms
of Tensor methods (``bigcore.exp(x)``, ``bigcore.sum(x, dim)``, ...)."""

from . import _core
from ._tensor import Tensor, _as_c, _wrap


def _t(x):
    if not isinstance(x, Tensor):
        raise TypeError(f"expected a bigcore.Tensor, got {type(x).__name__}")
    return x


def matmul(input, other):
    """Matrix product with PyTorch's rules (1-D operands, broadcast batch dimensions)."""
    return _wrap(_core.matmul(_as_c(input), _as_c(other)))


def cat(tensors, dim=0):
    """Concatenate tensors along an existing dimension."""
    return _wrap(_core.cat([_t(t)._c for t in tensors], int(dim)))


concat = concatenate = cat


def stack(tensors, dim=0):
    """Stack equal-shaped tensors along a new dimension."""
    return _wrap(_core.stack([_t(t)._c for t in tensors], int(dim)))


def where(condition, input, other):
    """``input`` where ``condition`` is True, else ``other`` (scalars allowed; all three broadcast)."""
    like = input if isinstance(input, Tensor) else other if isinstance(other, Tensor) else None
    return _wrap(_core.where_(_as_c(condition), _as_c(input, like), _as_c(other, like)))


def _method(name):
    def f(input, *args, **kwargs):
        return getattr(_t(input), name)(*args, **kwargs)

    f.__name__ = name
    f.__doc__ = f"Functional form of :meth:`Tensor.{name}`."
    return f


_NAMES = [
    "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs", "clamp", "clip", "neg",
    "sum", "mean", "max", "min", "amax", "amin", "argmax", "argmin",
    "reshape", "transpose", "permute", "flatten", "squeeze", "unsqueeze", "split", "chunk", "narrow",
    "tril", "triu", "masked_fill", "softmax", "log_softmax", "index_select",
    "eq", "ne", "lt", "le", "gt", "ge", "logical_not", "add", "sub", "mul", "div", "pow",
    "topk", "sort", "argsort", "cumsum", "gather", "scatter", "scatter_add",
]
for _n in _NAMES:
    globals()[_n] = _method(_n)

__all__ = ["matmul", "cat", "concat", "concatenate", "stack", "where"] + _NAMES
