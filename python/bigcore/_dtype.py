"""Tensor element types: ``bigcore.float32`` (the default), ``float64`` (exact checks), ``int64`` (indices),
``bool`` (masks), and the conversion of user-given dtypes (names, numpy dtypes, Python types) to them."""

import numpy as np

from .errors import DTypeError


class dtype:
    """An element type, like ``torch.dtype``. Compare with ``==``; ``.is_floating_point`` tells float types."""

    __slots__ = ("name", "numpy", "itemsize", "is_floating_point")

    def __init__(self, name, np_dtype, is_float):
        self.name = name
        self.numpy = np.dtype(np_dtype)
        self.itemsize = self.numpy.itemsize
        self.is_floating_point = is_float

    def __repr__(self):
        return f"bigcore.{self.name}"

    def __reduce__(self):
        return (_by_name, (self.name,))


float32 = dtype("float32", np.float32, True)
float64 = dtype("float64", np.float64, True)
int64 = dtype("int64", np.int64, False)
bool_ = dtype("bool", np.bool_, False)

_ALL = {d.name: d for d in (float32, float64, int64, bool_)}
_ALIASES = {"float": float32, "double": float64, "long": int64, "int": int64, "int32": int64}


def _by_name(name):
    return _ALL[name]


def to_dtype(d):
    """The bigcore dtype for a dtype, a name, a numpy dtype or a Python type (``float``, ``int``, ``bool``)."""
    if d is None or isinstance(d, dtype):
        return d
    if d is float:
        return float32
    if d is int:
        return int64
    if d is bool:
        return bool_
    if isinstance(d, str):
        if d in _ALL:
            return _ALL[d]
        if d in _ALIASES:
            return _ALIASES[d]
    try:
        npd = np.dtype(d)
    except TypeError:
        raise DTypeError(f"unsupported dtype {d!r}; use bigcore.float32, float64, int64 or bool") from None
    return from_numpy_dtype(npd, explicit=True)


def from_numpy_dtype(npd, explicit=False):
    """The dtype a numpy array of ``npd`` becomes: float64 (either byte order) and longdouble become float64, smaller
    floats float32, integers
    int64, bools bool. Other kinds (strings, objects, complex, dates) raise DTypeError."""
    kind = npd.kind
    if kind == "f":
        # by size, not by equality with np.float64: a big-endian float64 ('>f8') and longdouble keep float64
        return float64 if npd.itemsize >= 8 else float32
    if kind in "iu":
        return int64
    if kind == "b":
        return bool_
    what = "dtype" if explicit else "data of dtype"
    raise DTypeError(
        f"cannot make a tensor from {what} {npd} ({npd.kind!r} kind); "
        "bigcore tensors hold float32, float64, int64 or bool"
    )
