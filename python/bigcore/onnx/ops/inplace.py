"""Emitters of the in-place ops (``add_``, ``mul_``, ``masked_fill_``, ``scatter_``, ...): a graph has no state to
write, so each emits its out-of-place form, whose output stands for the written tensor from then on. The result
keeps the written tensor's dtype, as the engine's in-place ops do."""

from ..trace import Value
from . import emitter
from .elementwise import _as, clamp
from .indexing import put, _scatter


def _arith(op_type):
    def emit(g, node):
        x, other, out = node.args["input"], node.args["other"], node.outputs[0]
        o = _as(g, other, out.dtype)
        alpha = node.args.get("alpha", 1.0)
        if alpha != 1.0:
            o = g.op("Mul", [o, g.scalar(alpha, out.dtype)])
        g.op(op_type, [g.cast(x, out.dtype), o], out=node)

    return emit


for _name, _op_type in {"add_": "Add", "sub_": "Sub", "mul_": "Mul", "div_": "Div"}.items():
    emitter(_arith(_op_type), _name)


def _broadcast(g, node, value):
    """``value`` (a Value or a number) as the written tensor's dtype, expanded to its shape."""
    x, out = node.args["input"], node.outputs[0]
    v = g.cast(value, out.dtype) if isinstance(value, Value) else g.scalar(value, out.dtype)
    g.op("Expand", [v, g.shape_of(x)], out=node)


@emitter
def fill_(g, node):
    _broadcast(g, node, node.args["value"])


@emitter
def zero_(g, node):
    _broadcast(g, node, 0)


@emitter
def copy_(g, node):
    _broadcast(g, node, node.args["src"])


@emitter
def masked_fill_(g, node):
    x, out = node.args["input"], node.outputs[0]
    mask = g.cast(node.args["mask"], "bool")
    v = _as(g, node.args["value"], out.dtype)
    if out.dtype == "bool":  # onnxruntime's Where takes no bools: as logic
        g.op("Or", [g.op("And", [mask, v]), g.op("And", [g.op("Not", [mask]), x])], out=node)
    else:
        g.op("Where", [mask, v, x], out=node)


emitter(lambda g, node: clamp(g, node), "clamp_")
emitter(_scatter(None), "scatter_")
emitter(_scatter("add"), "scatter_add_")
emitter(lambda g, node: put(g, node), "put_")
