"""``Tensor.__getitem__``: ints, slices (positive steps), ``None``, ``...`` and one integer index array, turned
into one strided slice in Rust, an ``index_select`` for the array, and a reshape.

``Tensor.__setitem__`` (``setitem``): any key numpy takes with positive steps (bool masks and several index
arrays too). The key picks positions of the flattened tensor (computed on broadcast views, so the cost is the
size of the indexed part, not of the tensor) and ``put_`` writes the values there; a bool mask of the tensor's
shape (or of its leading dims) with one value is a ``masked_fill_``.
"""

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


def _np_key(key):
    """The key with tensors as numpy arrays, checked for what bigcore refuses (steps below 1, Python bools)."""
    from ._tensor import Tensor

    if not isinstance(key, tuple):
        key = (key,)
    out = []
    for k in key:
        if isinstance(k, (bool, np.bool_)):
            raise IndexError("indexing with a Python bool is not supported")
        if isinstance(k, Tensor):
            k = k.numpy()
        elif isinstance(k, (list, tuple)):
            k = np.asarray(k)
        if isinstance(k, slice) and k.step is not None and k.step <= 0:
            raise ValueError("step must be greater than zero")
        if isinstance(k, np.ndarray) and k.dtype.kind not in "biu" and k.size:
            raise IndexError(f"tensors used as indices must be integer or bool tensors, got {k.dtype}")
        if isinstance(k, np.ndarray) and k.dtype.kind != "b":
            k = k.astype(np.int64)
        out.append(k)
    return tuple(out)


def _positions(shape, key):
    """The positions in the flattened tensor of ``shape`` that ``key`` picks, as an int64 array of the indexed
    shape: the sum over dims of each dim's offsets, each indexed on a broadcast (zero-copy) view."""
    n = len(shape)
    pos = np.zeros((), np.int64)
    stride = 1
    try:
        if n == 0:
            return pos[key]
        parts = []
        for d in reversed(range(n)):
            offsets = (np.arange(shape[d], dtype=np.int64) * stride).reshape([-1 if i == d else 1 for i in range(n)])
            parts.append(np.broadcast_to(offsets, shape)[key])
            stride *= shape[d]
        return sum(parts[1:], parts[0])
    except IndexError as e:
        raise OutOfRangeError(f"setitem: {e} (tensor of shape {tuple(shape)})") from None


def _mask_fill(t, key, value):
    """``t[mask] = value`` as ``masked_fill_`` when the key is one bool mask of ``t``'s shape or leading dims and
    ``value`` one element; else None."""
    from ._tensor import Tensor

    k = key[0] if isinstance(key, tuple) and len(key) == 1 else key
    if not (isinstance(k, (Tensor, np.ndarray)) and k.dtype.name == "bool"):
        return None
    one = not isinstance(value, (Tensor, np.ndarray, list, tuple)) or np.size(value) == 1
    shape = t._c.shape
    if not one or k.ndim == 0 or tuple(k.shape) != tuple(shape[: k.ndim]):
        return None
    mask = k if isinstance(k, Tensor) else _tensor(k)
    mask = mask.reshape(*mask.shape, *([1] * (len(shape) - mask.ndim)))
    v = value.reshape(()) if isinstance(value, Tensor) else value
    return _masked(t, mask, v)


def _masked(t, mask, value):
    from ._tensor import _as_c, _wrap

    return _wrap(_core.masked_fill_(t._c, mask._c, _as_c(value, t)))


def _tensor(a):
    from ._creation import tensor

    return tensor(a)


@_tracing.traced("setitem")
def setitem(t, key, value):
    """Write ``value`` at ``t[key]`` in place; returns the tensor that stands for ``t`` afterwards (see
    ``Tensor.__setitem__``)."""
    from ._tensor import Tensor, _wrap

    done = _mask_fill(t, key, value)
    if done is not None:
        return done
    pos = _positions(tuple(t._c.shape), _np_key(key))
    if isinstance(value, Tensor):
        v = value if value.dtype is t.dtype else value.to(t.dtype)
    else:
        v = _tensor(np.asarray(value)).to(t.dtype)
    while v.ndim > pos.ndim and v.shape[0] == 1:  # leading 1s beyond the indexed rank go (as PyTorch)
        v = v.reshape(v.shape[1:])
    try:
        v = v.expand(*pos.shape)
    except ValueError:
        from .errors import ShapeError

        raise ShapeError(f"setitem: a value of shape {tuple(value.shape) if hasattr(value, 'shape') else ()} "
                         f"cannot be broadcast to the indexed shape {tuple(pos.shape)}") from None
    index = _core.from_numpy(np.ascontiguousarray(pos))
    return _wrap(_core.put_(t._c, index, v._c, False))
