"""Making tensors: ``tensor`` from data, ``zeros/ones/full/arange/rand/randn`` and the ``*_like`` forms,
``manual_seed``. Defaults follow PyTorch: Python floats become float32, Python ints int64."""

import numbers

import numpy as np

from . import _core
from ._dtype import bool_, float32, float64, from_numpy_dtype, int64, to_dtype
from ._random import _handle, default_generator
from ._tensor import Tensor, _dims, _tensor_from_numpy, _wrap
from .errors import DTypeError


def tensor(data, dtype=None, requires_grad=False):
    """A tensor holding a copy of ``data``: a numpy array of any layout, a (nested) list, or a scalar.

    Args:
        data: the values. Later changes to a numpy array never reach the tensor.
        dtype: ``bigcore.float32``, ``float64``, ``int64`` or ``bool`` (a name or numpy dtype works too).
            By default float64 numpy data stays float64, other floats (and Python floats) become float32,
            integers int64, bools bool.
        requires_grad: record operations on the tensor for autograd (float dtypes only).

    Example::

        >>> bigcore.tensor([[1, 2], [3, 4]]).dtype
        bigcore.int64
    """
    if isinstance(data, Tensor):
        data = data.numpy()
    if isinstance(data, str) or (isinstance(data, (list, tuple)) and _has_str(data)):
        raise DTypeError("cannot make a tensor from strings")
    from_numpy = isinstance(data, (np.ndarray, np.generic))
    try:
        arr = np.asarray(data)
    except (ValueError, TypeError) as e:
        raise DTypeError(f"cannot make a tensor from {type(data).__name__}: {e}") from None
    if dtype is None:
        d = from_numpy_dtype(arr.dtype)
        if d is float64 and not from_numpy:
            d = float32
    else:
        d = to_dtype(dtype)
        from_numpy_dtype(arr.dtype)  # rejects strings and objects even with an explicit dtype
    if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise OverflowError("value too large for int64")
    if arr.dtype != d.numpy:
        arr = arr.astype(d.numpy)
    return _tensor_from_numpy(arr, requires_grad)


def _has_str(seq):
    for x in seq:
        if isinstance(x, str):
            return True
        if isinstance(x, (list, tuple)) and _has_str(x):
            return True
    return False


def _new(c, requires_grad):
    t = _wrap(c)
    if requires_grad:
        t.requires_grad = True
    return t


def full(size, fill_value, dtype=None, requires_grad=False):
    """A tensor of ``size`` filled with ``fill_value`` (dtype from the value unless given)."""
    if dtype is None:
        dtype = bool_ if isinstance(fill_value, bool) else int64 if isinstance(fill_value, numbers.Integral) else float32
    if isinstance(fill_value, np.generic):
        fill_value = fill_value.item()
    # an int stays an int: exact in int64 beyond 2**53, OverflowError beyond int64 (as PyTorch)
    fill = fill_value if isinstance(fill_value, int) and not isinstance(fill_value, bool) else float(fill_value)
    return _new(_core.full(_dims((size,)), fill, to_dtype(dtype).name), requires_grad)


def zeros(*size, dtype=None, requires_grad=False):
    """A tensor of zeros (float32 unless ``dtype`` is given)."""
    return _new(_core.full(_dims(size), 0.0, (to_dtype(dtype) or float32).name), requires_grad)


def ones(*size, dtype=None, requires_grad=False):
    """A tensor of ones (float32 unless ``dtype`` is given)."""
    return _new(_core.full(_dims(size), 1.0, (to_dtype(dtype) or float32).name), requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad=False):
    """Values from ``start`` to ``end`` (excluded) by ``step``; int64 when all three are integers."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = all(isinstance(v, numbers.Integral) for v in (start, end, step))
        dtype = int64 if ints else float32
    bounds = [v if isinstance(v, int) and not isinstance(v, bool) else float(v) for v in (start, end, step)]
    return _new(_core.arange(*bounds, to_dtype(dtype).name), requires_grad)  # ints stay: traced sizes


def rand(*size, generator=None, dtype=None, requires_grad=False):
    """Uniform samples in [0, 1) from ``generator`` (default: the seeded default generator, see
    :func:`manual_seed`)."""
    return _new(_core.rand(_dims(size), (to_dtype(dtype) or float32).name, _handle(generator)), requires_grad)


def randn(*size, generator=None, dtype=None, requires_grad=False):
    """Standard normal samples from ``generator`` (default: the seeded default generator, see
    :func:`manual_seed`)."""
    return _new(_core.randn(_dims(size), (to_dtype(dtype) or float32).name, _handle(generator)), requires_grad)


def param_storage(shape, dtype=None):
    """Zeros of ``shape`` for a layer to wrap in a Parameter and initialize right after."""
    return zeros(shape, dtype=to_dtype(dtype) or float32)


def zeros_like(t, dtype=None, requires_grad=False):
    return zeros(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def ones_like(t, dtype=None, requires_grad=False):
    return ones(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def full_like(t, fill_value, dtype=None, requires_grad=False):
    return full(t.shape, fill_value, dtype=dtype or t.dtype, requires_grad=requires_grad)


def rand_like(t, dtype=None, requires_grad=False):
    return rand(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def randn_like(t, dtype=None, requires_grad=False):
    return randn(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def manual_seed(seed):
    """Seed bigcore's default random generator: later ``rand``, ``randn``, ``randint``, ``multinomial``,
    dropout masks and initializations repeat. Returns :data:`bigcore.default_generator`."""
    if not isinstance(seed, (numbers.Integral, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"manual_seed expects an int, got {type(seed).__name__}")
    _core.manual_seed(int(seed))
    return default_generator
