"""Emitters of sorting and running sums: ``topk`` and ``sort`` as ONNX ``TopK`` (whose ties keep the lower index
first, as bigcore's), ``cumsum`` as ``CumSum``. (``argsort`` is ``sort``'s second output.)"""

import numpy as np

from . import emitter


@emitter
def topk(g, node):
    x = node.args["input"]
    values, indices = node.outputs
    axis = int(node.args["dim"]) % x.rank
    k = g.int_1d(node.args["k"])
    largest = int(bool(node.args["largest"]))
    if node.args["sorted"]:
        g.op("TopK", [x, k], out=[values.name, indices.name], axis=axis, largest=largest, sorted=1)
        return
    # bigcore returns unsorted picks in the order of their positions: sort the indices, carry the values along
    v, i = g.op("TopK", [x, k], n_out=2, axis=axis, largest=largest, sorted=1)
    _, order = g.op("TopK", [i, k], out=[indices.name, g.fresh("order")], axis=axis, largest=0, sorted=1)
    g.op("GatherElements", [v, order], out=values.name, axis=axis)


@emitter
def sort(g, node):
    # every element, largest first when descending
    x = node.args["input"]
    values, indices = node.outputs
    axis = int(node.args["dim"]) % x.rank
    g.op("TopK", [x, g.int_1d(x.dims[axis])], out=[values.name, indices.name], axis=axis,
         largest=int(bool(node.args["descending"])), sorted=1)


@emitter
def cumsum(g, node):
    x, out = node.args["input"], node.outputs[0]
    axis = g.const(np.array(int(node.args["dim"]) % max(x.rank, 1), np.int64))
    g.op("CumSum", [g.cast(x, out.dtype), axis], out=node)
