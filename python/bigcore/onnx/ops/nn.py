"""Emitters of the layers' functional ops: ``linear`` (``Gemm`` for 2-D input, else ``MatMul`` + ``Add``),
``matmul``, ``softmax``/``log_softmax``, ``layer_norm`` (``LayerNormalization``) and ``embedding`` (``Gather``)."""

import numpy as np

from ..graph import NUMPY_DTYPES
from . import emitter


@emitter
def linear(g, node):
    # y = x W^T + b: Gemm(transB=1) on 2-D input; else MatMul with W^T and Add of the bias, the pattern
    # onnxruntime's fusions know. W^T is a Transpose of the initializer that do_constant_folding stores
    # transposed, unless W is also read elsewhere (a weight tied to an embedding is stored once, transposed at run)
    x, w, b = node.args["input"], node.args["weight"], node.args["bias"]
    if x.rank == 2:
        g.op("Gemm", [x, w, b], out=node, transB=1)
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
