"""bigcore: train small and mid-size neural networks fast on a CPU.

A Rust engine (SIMD kernels, threads, reverse-mode autograd) under a PyTorch-shaped API::

    import bigcore
    x = bigcore.randn(4, 3, requires_grad=True)
    w = bigcore.randn(3, 2, requires_grad=True)
    loss = (x @ w).relu().sum()
    loss.backward()
    w.grad.shape  # (3, 2)
"""

from . import _core
from ._creation import (
    arange,
    full,
    full_like,
    manual_seed,
    ones,
    ones_like,
    rand,
    rand_like,
    randn,
    randn_like,
    tensor,
    zeros,
    zeros_like,
)
from ._dtype import bool_ as bool  # noqa: A001 - PyTorch's name
from ._dtype import dtype, float32, float64, int64
from ._functions import *  # noqa: F401,F403 - the torch.* functional forms
from ._random import Generator, default_generator, multinomial, randint, randperm
from ._functions import __all__ as _functions_all
from ._tensor import Tensor
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .errors import AutogradError, BigcoreError, DTypeError, OutOfRangeError, ShapeError
from . import data, distributed, io, keras, models, nn, onnx, optim, tokenizers  # noqa: E402 - bigcore.onnx imports onnx only to export
from .io import get_rng_state, load, save, set_rng_state  # noqa: E402

__version__ = _core.__version__

float = float32  # noqa: A001 - PyTorch's alias
double = float64
long = int64


def set_num_threads(n):
    """Set the number of threads bigcore's kernels use (also ``BIGCORE_NUM_THREADS``)."""
    if not isinstance(n, int) or isinstance(n, type(True)):
        raise TypeError(f"set_num_threads expects an int, got {type(n).__name__}")
    _core.set_num_threads(n)


def get_num_threads():
    """The number of threads bigcore's kernels use."""
    return _core.get_num_threads()


def simd_level():
    """The instruction set the kernels were dispatched to: ``"avx512"``, ``"avx2"`` or ``"scalar"``
    (force one with ``BIGCORE_SIMD``)."""
    return _core.simd_level()


__all__ = [
    "Tensor", "tensor", "zeros", "ones", "full", "arange", "rand", "randn",
    "zeros_like", "ones_like", "full_like", "rand_like", "randn_like", "manual_seed",
    "dtype", "float32", "float64", "int64", "bool", "float", "double", "long",
    "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
    "set_num_threads", "get_num_threads", "simd_level", "nn", "optim", "data", "io", "keras", "onnx", "tokenizers",
    "distributed",
    "save", "load", "get_rng_state", "set_rng_state", "randperm", "randint", "multinomial",
    "Generator", "default_generator",
    "BigcoreError", "ShapeError", "OutOfRangeError", "DTypeError", "AutogradError",
] + _functions_all
