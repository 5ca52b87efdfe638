"""Emitters of movement ops: ``reshape``/``view``, ``permute``, ``transpose``, ``expand``, ``unsqueeze``,
``squeeze``, ``flatten``, ``repeat``, ``cat``, ``stack``, ``split``, ``tril``/``triu``, and ``size`` (a traced
size read from a shape). Sizes given as traced integers become graph computations (``GraphBuilder.ints``)."""

import numpy as np

from ..symint import is_sym
from . import emitter


def _axis(d, rank):
    return int(d) % rank if rank else 0


@emitter
def reshape(g, node):
    # ONNX Reshape reads 0 as "copy this dim" unless allowzero: a literal 0 size asks for it
    shape = node.args["shape"]
    allowzero = 1 if any(not is_sym(s) and s == 0 for s in shape) and -1 not in shape else None
    g.op("Reshape", [node.args["input"], g.ints(shape)], out=node, allowzero=allowzero)


@emitter
def permute(g, node):
    x = node.args["input"]
    g.op("Transpose", [x], out=node, perm=[_axis(d, x.rank) for d in node.args["dims"]])


@emitter
def transpose(g, node):
    x = node.args["input"]
    perm = list(range(x.rank))
    i, j = _axis(node.args["dim0"], x.rank), _axis(node.args["dim1"], x.rank)
    perm[i], perm[j] = perm[j], perm[i]
    g.op("Transpose", [x], out=node, perm=perm)


@emitter
def expand(g, node):
    # -1 keeps a dim; ONNX Expand broadcasts, so a 1 there keeps the input's size
    size = [1 if not is_sym(s) and s == -1 else s for s in node.args["size"]]
    g.op("Expand", [node.args["input"], g.ints(size)], out=node)


@emitter
def unsqueeze(g, node):
    x = node.args["input"]
    g.unsqueeze(x, [_axis(node.args["dim"], x.rank + 1)], out=node)


@emitter
def squeeze(g, node):
    # the dims of size 1 in the traced tensor among those asked for (all when dim is None), as the engine did
    x, dim = node.args["input"], node.args["dim"]
    asked = range(x.rank) if dim is None else [_axis(d, x.rank) for d in dim]
    axes = [d for d in asked if x.shape[d] == 1]
    if axes:
        g.squeeze(x, axes, out=node)
    else:
        g.op("Identity", [x], out=node)


@emitter
def flatten(g, node):
    # dims before start_dim are copied (Reshape's 0), the merged ones are -1, the ones after end_dim stay
    x = node.args["input"]
    if x.rank == 0:
        g.op("Reshape", [x, g.axes([1])], out=node)
        return
    s, e = _axis(node.args["start_dim"], x.rank), _axis(node.args["end_dim"], x.rank)
    g.op("Reshape", [x, g.ints([0] * s + [-1] + list(x.dims[e + 1 :]))], out=node)


@emitter
def repeat(g, node):
    # Tile after giving the input as many dims as repeats (leading 1s), as torch.Tensor.repeat
    x, reps = node.args["input"], node.args["repeats"]
    lead = len(reps) - x.rank
    src = g.unsqueeze(x, list(range(lead))) if lead > 0 else x
    g.op("Tile", [src, g.ints(reps)], out=node)


def _common(g, tensors, dtype):
    return [g.cast(t, dtype) for t in tensors]


@emitter
def cat(g, node):
    tensors, out = node.args["tensors"], node.outputs[0]
    g.op("Concat", _common(g, tensors, out.dtype), out=node, axis=_axis(node.args["dim"], out.rank))


@emitter
def stack(g, node):
    tensors, out = node.args["tensors"], node.outputs[0]
    axis = _axis(node.args["dim"], out.rank)
    g.op("Concat", [g.unsqueeze(t, [axis]) for t in _common(g, tensors, out.dtype)], out=node, axis=axis)


@emitter
def split(g, node):
    # pieces of the sizes the traced call made (a split of a dynamic dim is fixed to the traced pieces, as PyTorch)
    x = node.args["self"]
    axis = _axis(node.args["dim"], x.rank)
    sizes = [v.shape[axis] for v in node.outputs]
    if len(sizes) == 1:
        g.op("Identity", [x], out=node)
    else:
        g.op("Split", [x, g.const(np.array(sizes, np.int64))], out=node, axis=axis)


def _triangle(upper):
    def emit(g, node):
        x = node.args["input"]
        k = node.args["diagonal"]
        g.op("Trilu", [x, g.const(np.array(int(k), np.int64))], out=node, upper=int(upper))

    return emit


emitter(_triangle(False), "tril")
emitter(_triangle(True), "triu")


@emitter
def size(g, node):
    # x.size(d) of a dynamic axis: Shape(x)[d] as a 0-d int64
    d = node.args["dim"]
    one = g.op("Shape", [node.args["input"]], start=d, end=d + 1)
    g.squeeze(one, [0], out=node)
