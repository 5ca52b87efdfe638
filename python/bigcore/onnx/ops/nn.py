"""Emitters of the layers' functional ops: ``linear`` (``Gemm`` for 2-D input, else ``MatMul`` + ``Add``),
``matmul``, ``softmax``/``log_softmax``, ``layer_norm`` (``LayerNormalization``) and ``embedding`` (``Gather``)."""

import numpy as np

from ..graph import NUMPY_DTYPES
from . import emitter


@emitter
def linear(g, node):
    # y = x W^T + b: Gemm(transB=1) on 2-D input, and on the rows of any input when W is also read elsewhere (a
    # weight tied to an embedding is stored and kept once); else MatMul with W^T (a Transpose of the
    # initializer, folded by do_constant_folding) and Add of the bias, the pattern onnxruntime's fusions know
    x, w, b = node.args["input"], node.args["weight"], node.args["bias"]
    if x.rank == 2:
        g.op("Gemm", [x, w, b], out=node, transB=1)
        return
    if x.rank > 2 and g.uses(w) > 1:
        rows = g.op("Reshape", [x, g.axes([-1, w.shape[1]])])  # (N, in)
        y = g.op("Gemm", [rows, w, b], transB=1)  # (N, out)
        lead = g.op("Shape", [x], end=-1)
        g.op("Reshape", [y, g.op("Concat", [lead, g.axes([w.shape[0]])], axis=0)], out=node)
        return
    y = g.op("MatMul", [x, g.transposed(w)], out=node if b is None else None)
    if b is not None:
        g.op("Add", [y, b], out=node)


@emitter
def matmul(g, node):
    g.op("MatMul", [node.args["input"], node.args["other"]], out=node)


@emitter
def softmax(g, node):
    g.op("Softmax", [node.args["input"]], out=node, axis=int(node.args["dim"]))


@emitter
def log_softmax(g, node):
    g.op("LogSoftmax", [node.args["input"]], out=node, axis=int(node.args["dim"]))


@emitter
def layer_norm(g, node):
    # LayerNormalization over the trailing len(normalized_shape) dims; a missing weight is ones
    x, w, b = node.args["input"], node.args["weight"], node.args["bias"]
    shape = [int(s) for s in node.args["normalized_shape"]]
    if w is None:
        w = g.const(np.ones(shape, NUMPY_DTYPES[x.dtype]))
    stash = 11 if x.dtype == "float64" else 1  # compute the statistics in the input's precision
    g.op("LayerNormalization", [x, w, b], out=node, axis=-len(shape), epsilon=float(node.args["eps"]),
         stash_type=stash)


@emitter
def embedding(g, node):
    # rows of the weight: Gather on axis 0 (padding_idx only changes gradients)
    g.op("Gather", [node.args["weight"], node.args["input"]], out=node, axis=0)
