"""Emitters of reductions: ``sum``, ``mean``, ``amax``/``amin``, ``max``/``min`` along a dim (values and
indices), ``argmax``/``argmin``."""

from . import emitter


def _axes(dim, rank):
    if dim is None:
        return None
    dims = dim if isinstance(dim, (list, tuple)) else [dim]
    return sorted({int(d) % max(rank, 1) for d in dims}) if rank else None


def _reduction(op_type):
    def emit(g, node):
        x, out = node.args["input"], node.outputs[0]
        axes = _axes(node.args["dim"], x.rank)
        g.reduce(op_type, g.cast(x, out.dtype), axes, node.args["keepdim"], out=node)

    return emit


for _name, _op_type in {"sum": "ReduceSum", "mean": "ReduceMean", "amax": "ReduceMax", "amin": "ReduceMin"}.items():
    emitter(_reduction(_op_type), _name)


def _max_dim(reduce_type, arg_type):
    def emit(g, node):
        # (values, indices) along one dim; the first index of the extreme value, as PyTorch
        x = node.args["input"]
        axis = int(node.args["dim"]) % max(x.rank, 1)
        keep = int(node.args["keepdim"])
        values, indices = node.outputs
        g.reduce(reduce_type, x, [axis], keep, out=values.name)
        g.op(arg_type, [x], out=indices.name, axis=axis, keepdims=keep)

    return emit


emitter(_max_dim("ReduceMax", "ArgMax"), "max")
emitter(_max_dim("ReduceMin", "ArgMin"), "min")


def _arg(arg_type):
    def emit(g, node):
        x, dim, keep = node.args["input"], node.args["dim"], node.args["keepdim"]
        if dim is None:
            # over all elements: flatten, then index into the flat tensor (keepdim: every dim becomes 1)
            flat = g.op("Reshape", [x, g.axes([-1])])
            if keep:
                r = g.op(arg_type, [flat], axis=0, keepdims=1)
                g.op("Reshape", [r, g.axes([1] * x.rank)], out=node)
            else:
                g.op(arg_type, [flat], out=node, axis=0, keepdims=0)
            return
        g.op(arg_type, [x], out=node, axis=int(dim) % max(x.rank, 1), keepdims=int(keep))

    return emit


for _name, _op_type in {"argmax": "ArgMax", "argmin": "ArgMin"}.items():
    emitter(_arg(_op_type), _name)
