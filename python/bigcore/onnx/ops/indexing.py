"""Emitters of indexing: ``getitem`` (``x[...]`` with ints, slices, ``None``, ``...`` and one index tensor),
``setitem`` (``x[...] = v``), ``narrow``, ``index_select``, the engine's strided ``slice``, and indexing along a
dim with index tensors: ``gather`` (``GatherElements``), ``scatter``/``scatter_add``/``put`` (``ScatterElements``),
``one_hot`` (``OneHot``).

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
    x = node.args["t"]
    g.op("Identity", [_pick(g, x, x.rank, node.args["key"])], out=node)


def _pick(g, x, rank, key):
    """``x[key]`` for ``x`` (a Value or a graph name) of ``rank``: the name of the result."""
    key = _expand_key(key, rank)
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
    return cur


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


@emitter
def gather(g, node):
    x = node.args["input"]
    g.op("GatherElements", [x, node.args["index"]], out=node, axis=int(node.args["dim"]) % max(x.rank, 1))


def _scatter(reduction):
    def emit(g, node):
        x, index, src = node.args["input"], node.args["index"], node.args["src"]
        axis = int(node.args["dim"]) % max(x.rank, 1)
        if tuple(src.dims) != tuple(index.dims):
            # ONNX takes as many updates as indices; bigcore's source may be larger: its corner at the index
            src = g.op("Slice", [src, g.ints([0] * src.rank), g.shape_of(index), g.axes(range(src.rank))])
        g.op("ScatterElements", [x, index, src], out=node, axis=axis, reduction=reduction)

    return emit


for _name, _reduction in {"scatter": None, "scatter_add": "add"}.items():
    emitter(_scatter(_reduction), _name)


@emitter
def put(g, node):
    # ScatterElements on the flattened tensor (negative positions count from the end in both)
    x, out = node.args["input"], node.outputs[0]
    flat = g.op("Reshape", [x, g.ints([-1])])
    index = g.op("Reshape", [node.args["index"], g.ints([-1])])
    source = g.op("Reshape", [g.cast(node.args["source"], out.dtype), g.ints([-1])])
    done = g.op("ScatterElements", [flat, index, source], axis=0, reduction="add" if node.args["accumulate"] else None)
    g.op("Reshape", [done, g.shape_of(x)], out=node)


@emitter
def one_hot(g, node):
    out = node.outputs[0]
    values = g.const(np.array([0, 1], np.int64))
    g.op("OneHot", [node.args["tensor"], g.int_1d(out.dims[-1]), values], out=node, axis=-1)


def _is_mask(k):
    return (isinstance(k, Value) and k.dtype == "bool") or (isinstance(k, np.ndarray) and k.dtype == np.bool_)


def _one_element(v):
    return not isinstance(v, Value) or int(np.prod(v.shape)) == 1


@emitter
def setitem(g, node):
    x, key, value, out = node.args["t"], node.args["key"], node.args["value"], node.outputs[0]
    k = key[0] if isinstance(key, tuple) and len(key) == 1 else key
    if _is_mask(k):
        # x[mask] = v with a mask over x's leading dims and one value: Where
        rank = k.rank if isinstance(k, Value) else k.ndim
        if not _one_element(value) or rank == 0 or rank > x.rank:
            raise g.unsupported("x[mask] = value exports with one value and a mask of x's leading dimensions")
        mask = k if isinstance(k, Value) else g.const(k)
        mask = g.unsqueeze(mask, list(range(rank, x.rank))) if rank < x.rank else mask
        v = g.scalar(value, out.dtype) if not isinstance(value, Value) else g.op(
            "Reshape", [g.cast(value, out.dtype), g.ints([])])
        if out.dtype == "bool":
            g.op("Or", [g.op("And", [mask, v]), g.op("And", [g.op("Not", [mask]), x])], out=node)
        else:
            g.op("Where", [mask, v, x], out=node)
        return
    parts = key if isinstance(key, tuple) else (key,)
    if sum(_is_index_array(p) for p in parts) > 1 or any(_is_mask(p) for p in parts):
        raise g.unsupported("x[key] = value exports with at most one integer index tensor and no bool masks")
    # the positions of the picked elements in the flattened x, then ScatterElements there
    numel = g.op("ReduceProd", [g.shape_of(x)], keepdims=0)
    positions = g.op("Reshape", [g.op("Range", [g.const(np.array(0, np.int64)), numel, g.const(np.array(1, np.int64))]),
                                 g.shape_of(x)])
    picked = _pick(g, positions, x.rank, key)
    rank = _picked_rank(key, x.rank)
    if isinstance(value, Value):
        v = g.cast(value, out.dtype)
        if value.rank > rank:  # leading size-1 dims beyond the indexed rank go, as in eager mode
            v = g.op("Reshape", [v, g.ints(value.dims[value.rank - rank:])])
    else:
        v = g.scalar(value, out.dtype)
    values = g.op("Expand", [v, g.op("Shape", [picked])])
    flat = g.op("Reshape", [x, g.ints([-1])])
    done = g.op("ScatterElements", [flat, g.op("Reshape", [picked, g.ints([-1])]), g.op("Reshape", [values, g.ints([-1])])],
                axis=0)
    g.op("Reshape", [done, g.shape_of(x)], out=node)


def _picked_rank(key, rank):
    """The rank of ``x[key]`` for ``x`` of ``rank`` (slices and Nones keep an axis, index arrays add theirs)."""
    n = 0
    for k in _expand_key(key, rank):
        if k is None or isinstance(k, slice):
            n += 1
        elif _is_index_array(k):
            n += k.rank if isinstance(k, Value) else np.asarray(k).ndim
    return n
