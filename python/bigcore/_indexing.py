"""``Tensor.__getitem__``: ints, slices (positive steps), ``None``, ``...`` and one integer index array, turned
into one strided slice in Rust, an ``index_select`` for the array, and a reshape."""

import numbers

import numpy as np

from . import _core, _tracing
from .errors import OutOfRangeError


def _index_array(k, size, d):
    from ._tensor import Tensor

    arr = k.numpy() if isinstance(k, Tensor) else np.asarray(k)
    if arr.dtype.kind == "b":
        raise IndexError("boolean mask indexing is not supported; use masked_fill() or bigcore.where()")
    if arr.dtype.kind not in "iu" and arr.size:
        raise IndexError(f"tensors used as indices must be integer tensors, got {arr.dtype}")
    arr = arr.astype(np.int64)
    bad = (arr < -size) | (arr >= size)
    if bad.any():
        raise OutOfRangeError(f"index {int(arr[bad][0])} is out of bounds for dimension {d} with size {size}")
    return np.where(arr < 0, arr + size, arr)


@_tracing.traced("getitem")
def getitem(t, key):
    from ._tensor import Tensor, _wrap

    # fast path for batching: a 1-D integer numpy array picks rows
    if isinstance(key, np.ndarray) and key.ndim == 1 and key.dtype.kind in "iu" and t.ndim > 0:
        idx = _index_array(key, t.shape[0], 0)
        return _wrap(_core.index_select(t._c, 0, _core.from_numpy(np.ascontiguousarray(idx))))

    if not isinstance(key, tuple):
        key = (key,)
    shape = t.shape
    if sum(k is Ellipsis for k in key if not isinstance(k, (Tensor, np.ndarray))) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    consumed = sum(isinstance(k, (Tensor, np.ndarray)) or (k is not None and k is not Ellipsis) for k in key)
    if consumed > len(shape):
        raise IndexError(f"too many indices for tensor of dimension {len(shape)}")
    # `...` stands for the dims no other index consumes; without one, missing trailing dims are taken whole
    at = [i for i, k in enumerate(key) if not isinstance(k, (Tensor, np.ndarray)) and k is Ellipsis]
    fill = (slice(None),) * (len(shape) - consumed)
    key = key[: at[0]] + fill + key[at[0] + 1 :] if at else key + fill

    specs, out_shape, adv = [], [], None
    d = 0
    for k in key:
        if k is None:
            out_shape.append(1)
            continue
        size = shape[d]
        if isinstance(k, (bool, np.bool_)):
            raise IndexError("indexing with a Python bool is not supported")
        if isinstance(k, (numbers.Integral, np.integer)) or (isinstance(k, Tensor) and k.ndim == 0 and not k.is_floating_point() and k.dtype.name == "int64"):
            i = int(k)
            if not -size <= i < size:
                raise OutOfRangeError(f"index {i} is out of bounds for dimension {d} with size {size}")
            specs.append((i % size, 1, 1))
        elif isinstance(k, slice):
            start, stop, step = k.indices(size)
            if step <= 0:
                raise ValueError("step must be greater than zero")
            n = len(range(start, stop, step))
            specs.append((start if n else 0, step, n))
            out_shape.append(n)
        elif isinstance(k, (Tensor, np.ndarray, list, tuple)):
            if adv is not None:
                raise IndexError("only one integer index array per indexing expression is supported")
            idx = _index_array(k, size, d)
            adv = (d, idx, len(out_shape))
            specs.append((0, 1, size))
            out_shape.append(None)
        else:
            raise IndexError(f"unsupported index of type {type(k).__name__}")
        d += 1

    c = t._c
    if any(s != (0, 1, n) for s, n in zip(specs, shape)):
        c = _core.slice(c, specs)
    if adv is not None:
        dim, idx, pos = adv
        c = _core.index_select(c, dim, _core.from_numpy(np.ascontiguousarray(idx.reshape(-1))))
        out_shape[pos : pos + 1] = list(idx.shape)
    return _wrap(_core.reshape(c, out_shape))
