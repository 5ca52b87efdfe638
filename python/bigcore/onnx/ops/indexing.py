"""Emitters of indexing: ``getitem`` (``x[...]`` with ints, slices, ``None``, ``...`` and one index tensor),
``narrow``, ``index_select`` and the engine's strided ``slice``.

Slice bounds stay as the user wrote them (negative ones count from the end, as in ONNX ``Slice``), so ``x[:, -1]``
and ``x[:, :T]`` keep working when the sliced axis is dynamic.
"""

import numpy as np

from ..symint import is_sym
from ..trace import Value
from . import emitter

_END = np.iinfo(np.int64).max  # "to the end" in ONNX Slice


def _is_full(s):
    return s.start in (None, 0) and s.stop is None and s.step in (None, 1)


def _is_index_array(k):
    return (isinstance(k, Value) and k.rank > 0) or isinstance(k, (np.ndarray, list, tuple))


def _expand_key(key, rank):
    """The key as one item per input dim (plus the ``None``s), ``...`` and missing trailing dims as full slices."""
    if isinstance(key, np.ndarray) or not isinstance(key, tuple):
        key = (key,)
    consumed = sum(k is not None and k is not Ellipsis for k in key if not _is_index_array(k)) + sum(
        _is_index_array(k) for k in key)
    fill = (slice(None),) * (rank - consumed)
    at = [i for i, k in enumerate(key) if not _is_index_array(k) and k is Ellipsis]
    return key[: at[0]] + fill + key[at[0] + 1 :] if at else key + fill


@emitter
def getitem(g, node):
    x, key = node.args["t"], node.args["key"]
    key = _expand_key(key, x.rank)
    # 1. every slice in one Slice node, on the input's own axes
    starts, ends, axes, steps = [], [], [], []
    d = 0
    gathers, news, pos = [], [], 0  # (input axis, index) applied right to left; output positions of the Nones
    for k in key:
        if k is None:
            news.append(pos)
            pos += 1
            continue
        if isinstance(k, slice):
            if not _is_full(k):
                starts.append(0 if k.start is None else k.start)
                ends.append(_END if k.stop is None else k.stop)
                steps.append(1 if k.step is None else k.step)
                axes.append(d)
            pos += 1
        elif _is_index_array(k):
            idx = k if isinstance(k, Value) else np.asarray(k, np.int64)
            gathers.append((d, idx))
            pos += idx.rank if isinstance(idx, Value) else idx.ndim
        else:  # an int, a traced size or a 0-d int64 tensor: the dim goes away
            gathers.append((d, k))
        d += 1
    cur = x
    if axes:
        cur = g.op("Slice", [cur, g.ints(starts), g.ints(ends), g.axes(axes), g.ints(steps)])
    # 2. indices, right to left so that the axes to their left keep their numbers
    for axis, idx in reversed(gathers):
        cur = g.op("Gather", [cur, idx], axis=axis)
    # 3. the new axes, at their places in the result
    if news:
        cur = g.unsqueeze(cur, news)
    g.op("Identity", [cur], out=node)


def _plus(g, a, b):
    """``a + b`` for sizes (ints or traced) as a 1-D int64 tensor."""
    if not is_sym(a) and not is_sym(b):
        return g.ints([int(a) + int(b)])
    return g.op("Add", [g.int_1d(a), g.int_1d(b)])


@emitter
def narrow(g, node):
    x, start, length = node.args["self"], node.args["start"], node.args["length"]
    axis = int(node.args["dim"]) % x.rank
    if not is_sym(start) and start < 0:
        # from the end: ONNX counts a negative start from the end too; the end is the dim's end when it reaches 0
        end = g.ints([start + length]) if not is_sym(length) and start + length < 0 else g.ints([_END])
    else:
        end = _plus(g, start, length)
    g.op("Slice", [x, g.int_1d(start), end, g.axes([axis])], out=node)


def _strided_slice(g, node):
    """The engine's strided ``slice``: (start, step, length) per dim (what ``narrow`` and indexing call)."""
    x, specs = node.args["input"], node.args["specs"]
    starts, ends, axes, steps = [], [], [], []
    for d, (start, step, n) in enumerate(specs):
        dim = x.dims[d]
        if start == 0 and step == 1 and (n is dim or (not is_sym(n) and not is_sym(dim) and n == dim)):
            continue
        starts.append(start)
        if is_sym(n):
            # end = start + (n - 1) * step + 1
            ends.append(g.op("Add", [g.op("Mul", [g.int_1d(n), g.ints([step])]), g.ints([int(start) - step + 1])]))
        else:
            ends.append(g.ints([int(start) + (n - 1) * step + 1 if n > 0 else int(start)]))
        axes.append(d)
        steps.append(step)
    if not axes:
        g.op("Identity", [x], out=node)
        return
    end = ends[0] if len(ends) == 1 else g.op("Concat", ends, axis=0)
    g.op("Slice", [x, g.ints(starts), end, g.axes(axes), g.ints(steps)], out=node)


emitter(_strided_slice, "slice")


@emitter
def index_select(g, node):
    x = node.args["input"]
    g.op("Gather", [x, node.args["index"]], out=node, axis=int(node.args["dim"]) % x.rank)
