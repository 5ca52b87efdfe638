"""Emitter of ``F.scaled_dot_product_attention``: decomposed into ``MatMul``, ``Div``/``Mul``, the mask and
``Softmax``, with the causal mask built in the graph from the query's and key's lengths (``Trilu`` of a
``ConstantOfShape``), so it follows a dynamic sequence length. From opset 23, float32 attention over 3-D or 4-D
inputs is one ONNX ``Attention`` node instead (same masks; ask for it with ``opset_version=23``: the default
opset keeps the decomposition, which every runtime runs). Dropout is off (eval semantics)."""

import math

import numpy as np

from ..graph import ONNX_DTYPES
from ..symint import is_sym
from . import emitter


@emitter
def scaled_dot_product_attention(g, node):
    a = node.args
    q, k, v, mask = a["query"], a["key"], a["value"], a["attn_mask"]
    dtype = node.outputs[0].dtype
    if g.opset >= 23 and dtype == "float32" and q.rank == k.rank == v.rank and q.rank in (3, 4):
        heads = {"q_num_heads": 1, "kv_num_heads": 1} if q.rank == 3 else {}  # 3-D: one head of the whole width
        scale = None if a["scale"] is None else float(a["scale"])
        m = None if mask is None or mask.dtype == "bool" else g.cast(mask, dtype)
        g.op("Attention", [q, k, v, mask if m is None else m], out=node, is_causal=int(bool(a["is_causal"])),
             scale=scale, **heads)
        return
    perm = list(range(k.rank))
    perm[-2], perm[-1] = perm[-1], perm[-2]
    scores = g.op("MatMul", [q, g.op("Transpose", [k], perm=perm)])  # (..., L, S)
    E = q.dims[-1]
    if a["scale"] is not None:
        scores = g.op("Mul", [scores, g.scalar(float(a["scale"]), dtype)])
    elif is_sym(E):
        sqrt_e = g.op("Sqrt", [g.cast(g.size_scalar(E), dtype, from_dtype="int64")])
        scores = g.op("Div", [scores, sqrt_e])
    else:
        scores = g.op("Div", [scores, g.scalar(math.sqrt(E), dtype)])  # q k^T / sqrt(E)
    neg_inf = g.scalar(-np.inf, dtype)
    if a["is_causal"]:
        # keep key j <= query i: the lower triangle of an (L, S) bool matrix of the traced lengths' graph values
        L, S = q.dims[-2], k.dims[-2]
        full = g.op("ConstantOfShape", [g.ints([L, S])], value=_bool_one())
        causal = g.op("Trilu", [full], upper=0)
        scores = g.op("Where", [causal, scores, neg_inf])
    elif mask is not None:
        if mask.dtype == "bool":
            scores = g.op("Where", [mask, scores, neg_inf])
        else:
            scores = g.op("Add", [scores, g.cast(mask, dtype)])
    attn = g.op("Softmax", [scores], axis=-1)
    g.op("MatMul", [attn, v], out=node)


def _bool_one():
    from onnx import helper

    return helper.make_tensor("value", ONNX_DTYPES["bool"], [1], [True])

