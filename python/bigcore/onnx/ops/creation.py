"""Emitters of creation ops inside a forward: ``full`` (``zeros``, ``ones``...) and ``arange``, whose sizes and
bounds may be traced sizes, so that ``tril(ones(T, T))`` or ``arange(T)`` follow the input's length.
(``rand``/``randn`` have no emitter: a random draw in an exported forward is almost always a mistake.)"""

import numpy as np

from ..graph import NUMPY_DTYPES, ONNX_DTYPES
from ..symint import is_sym
from . import emitter


@emitter
def full(g, node):
    from onnx import helper

    dtype = node.outputs[0].dtype
    fill = node.args["fill_value"]
    if is_sym(fill):
        # a traced size as a tensor value (``x + T``): the size, cast and broadcast to the shape
        scalar = g.cast(g.size_scalar(fill), dtype, from_dtype="int64")
        g.op("Expand", [scalar, g.ints(node.args["size"])], out=node)
        return
    value = helper.make_tensor("value", ONNX_DTYPES[dtype], [1], [NUMPY_DTYPES[dtype](fill).item()])
    g.op("ConstantOfShape", [g.ints(node.args["size"])], out=node, value=value)


@emitter
def arange(g, node):
    dtype = node.outputs[0].dtype
    bounds = []
    for b in (node.args["start"], node.args["end"], node.args["step"]):
        if is_sym(b):
            bounds.append(g.cast(g.size_scalar(b), dtype, from_dtype="int64"))
        else:
            bounds.append(g.const(np.array(b, NUMPY_DTYPES[dtype])))
    g.op("Range", bounds, out=node)
