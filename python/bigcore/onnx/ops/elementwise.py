"""Emitters of elementwise ops: unary math, GELU, arithmetic (on tensors and on traced sizes), comparisons,
``where``, casts and ``clone``. Inputs are cast to the dtype the engine computes in (PyTorch's promotion)."""

import math

from ..graph import ONNX_DTYPES, promote
from ..symint import is_sym
from ..trace import Value
from . import emitter


def _unary(op_type):
    def emit(g, node):
        x, out = node.args["input"], node.outputs[0]
        g.op(op_type, [g.cast(x, out.dtype)], out=node)

    return emit


for _name, _op_type in {"neg": "Neg", "exp": "Exp", "log": "Log", "sqrt": "Sqrt", "tanh": "Tanh",
                        "sigmoid": "Sigmoid", "relu": "Relu", "abs": "Abs"}.items():
    emitter(_unary(_op_type), _name)


@emitter
def clamp(g, node):
    # Clip(x, min, max): a bound that is None stays absent
    x, out = node.args["input"], node.outputs[0]
    lo, hi = node.args["min"], node.args["max"]
    bounds = [None if b is None else g.scalar(b, out.dtype) for b in (lo, hi)]
    g.op("Clip", [g.cast(x, out.dtype)] + bounds, out=node)


@emitter
def gelu(g, node):
    # x * Phi(x): ONNX Gelu from opset 20; before, the formulas in the node patterns onnxruntime's transformer
    # optimizer fuses (Gelu: x/sqrt(2) -> Erf -> +1 -> * (0.5 x); FastGelu: its tanh form, Pow first)
    # (a second GELU of the same value reuses the first: onnxruntime's fusions break on two identical patterns)
    x, out = node.args["input"], node.outputs[0]
    approximate = node.args["approximate"]
    done = g.memo.get(("gelu", x.name, approximate))
    if done is not None:
        g.op("Identity", [done], out=node)
        return
    g.memo[("gelu", x.name, approximate)] = out.name
    if g.opset >= 20:
        g.op("Gelu", [x], out=node, approximate=approximate)
        return
    c = lambda v: g.scalar(v, out.dtype)  # noqa: E731
    if approximate == "tanh":
        # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); 0.5 first, so it never equals the erf form's Mul(x, 0.5)
        half_x = g.op("Mul", [c(0.5), x])
        cube = g.op("Mul", [g.op("Pow", [x, c(3.0)]), c(0.044715)])
        inner = g.op("Mul", [g.op("Add", [x, cube]), c(math.sqrt(2.0 / math.pi))])
        g.op("Mul", [g.op("Add", [g.op("Tanh", [inner]), c(1.0)]), half_x], out=node)
    else:
        # 0.5 x (1 + erf(x / sqrt(2)))
        half_x = g.op("Mul", [x, c(0.5)])
        erf = g.op("Erf", [g.op("Div", [x, c(math.sqrt(2.0))])])
        g.op("Mul", [g.op("Add", [erf, c(1.0)]), half_x], out=node)


def _arith(op_type):
    def emit(g, node):
        a, b, out = node.args["input"], node.args["other"], node.outputs[0]
        g.op(op_type, [_as(g, a, out.dtype), _as(g, b, out.dtype)], out=node)

    return emit


def _as(g, x, dtype):
    """An operand as ``dtype``: a Value or size cast if needed, a Python number as a constant."""
    if isinstance(x, (int, float)) and not is_sym(x):
        return g.scalar(x, dtype)
    return g.cast(x, dtype, from_dtype=_dtype(x))


def _dtype(x):
    return getattr(x, "dtype", "int64")  # a SymInt is an int64 size


for _name, _op_type in {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow": "Pow",
                        "floordiv": "Div", "mod": "Mod"}.items():
    emitter(_arith(_op_type), _name)  # floordiv and mod only on sizes (non-negative ints: ONNX Div truncates, Mod follows Python)


def _compare(op_type, negate=False):
    def emit(g, node):
        a, b = node.args["input"], node.args["other"]
        dt = promote(_dtype(a), _dtype(b))
        if dt == "bool" and op_type != "Equal":
            dt = "int64"  # ONNX orders numbers, not bools
        args = [_as(g, a, dt), _as(g, b, dt)]
        if negate:
            g.op("Not", [g.op(op_type, args)], out=node)
        else:
            g.op(op_type, args, out=node)

    return emit


for _name, (_op_type, _neg) in {"eq": ("Equal", False), "ne": ("Equal", True), "lt": ("Less", False),
                                "le": ("LessOrEqual", False), "gt": ("Greater", False),
                                "ge": ("GreaterOrEqual", False)}.items():
    emitter(_compare(_op_type, _neg), _name)


@emitter
def where(g, node):
    cond, a, b, out = node.args["condition"], node.args["input"], node.args["other"], node.outputs[0]
    cond = g.cast(cond, "bool")
    if out.dtype != "bool":
        g.op("Where", [cond, _as(g, a, out.dtype), _as(g, b, out.dtype)], out=node)
        return
    # onnxruntime's Where takes no bools: c ? a : b as logic (a & b is where(a, b, False), a | b where(a, True, b))
    a, b = _as(g, a, "bool"), _as(g, b, "bool")
    if _constant(node.args["other"]) is False:
        g.op("And", [cond, a], out=node)
    elif _constant(node.args["input"]) is True:
        g.op("Or", [cond, b], out=node)
    else:
        g.op("Or", [g.op("And", [cond, a]), g.op("And", [g.op("Not", [cond]), b])], out=node)


def _constant(x):
    """The Python value of a one-element constant, else None."""
    if isinstance(x, Value) and x.kind == "const" and x.tensor.numel() == 1:
        return x.tensor.item()
    return x if isinstance(x, (bool, int, float)) else None


@emitter
def to(g, node):
    x, out = node.args["input"], node.outputs[0]
    g.op("Cast", [x], out=node, to=ONNX_DTYPES[out.dtype])


@emitter
def clone(g, node):
    g.op("Identity", [node.args["self"]], out=node)

