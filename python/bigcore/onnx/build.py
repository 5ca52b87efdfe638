"""From a trace to an ONNX ``ModelProto``: run each recorded op's emitter, name inputs and outputs, declare their
dims (``dim_param`` names on dynamic axes), fold constants and drop what no output needs."""

from onnx import helper

from .. import __version__
from .fold import fold_constants, prune
from .graph import ONNX_DTYPES, GraphBuilder
from .ops import EMITTERS
from .symint import is_sym
from .trace import _values_in


def _needed(nodes, outputs):
    """The recorded nodes the outputs depend on, in order (ops whose results nothing uses are not emitted)."""
    producer = {id(v): n for n in nodes for v in n.outputs}
    needed, stack = set(), [producer.get(id(v)) for v in outputs]
    while stack:
        n = stack.pop()
        if n is None or id(n) in needed:
            continue
        needed.add(id(n))
        for v in _values_in(n.args):
            stack.append(producer.get(id(v)))
        for v in n.outputs:  # sizes read lazily from an output's dims come from its inputs' shapes
            for d in v.dims:
                if is_sym(d) and d.value is not None:
                    stack.append(producer.get(id(d.value)))
    return [n for n in nodes if id(n) in needed]


def _dims(value, name, dynamic):
    """An input's or output's dims for its value_info: fixed sizes, or dim_param names on dynamic axes."""
    out = []
    for axis, d in enumerate(value.dims):
        if axis in dynamic:
            out.append(dynamic[axis])
        elif is_sym(d):
            out.append(d.name or f"{name}_dim_{axis}")
        else:
            out.append(int(d))
    return out


def build(tracer, inputs, outputs, opset, dynamic_axes, do_constant_folding):
    """The ModelProto of a trace.

    Args:
        tracer: the record (``trace.Tracer``).
        inputs: ``[(Value, name)]`` graph inputs, in order.
        outputs: ``[(Value, name)]`` graph outputs, in order.
        opset: the ONNX opset.
        dynamic_axes: ``{input or output name: {axis: dim_param}}``.
        do_constant_folding: fold constant subgraphs into initializers.
    """
    g = GraphBuilder(opset, tracer)
    # an output produced by an op takes the output's name; others (an input, a parameter, a value returned twice)
    # are copied out through Identity
    copies, taken = [], {name for _, name in inputs}
    for v, name in outputs:
        if v.kind == "node" and v.name not in taken and name not in taken:
            v.name = name
        else:
            copies.append((v, name))
        taken.add(name)
    for node in _needed(tracer.nodes, [v for v, _ in outputs]):
        g.node = node
        emit = EMITTERS.get(node.op)
        if emit is None:
            raise g.unsupported("")
        emit(g, node)
    g.node = None
    for v, name in copies:
        g.op("Identity", [v], out=name)

    out_names = [name for _, name in outputs]
    nodes = prune(g.nodes, g.initializers, out_names)
    if do_constant_folding:
        nodes = prune(fold_constants(nodes, g.initializers, out_names, opset), g.initializers, out_names)
    graph = helper.make_graph(
        nodes,
        type(tracer.model).__name__,
        [helper.make_tensor_value_info(name, ONNX_DTYPES[v.dtype], _dims(v, name, dynamic_axes.get(name, {})))
         for v, name in inputs],
        [helper.make_tensor_value_info(name, ONNX_DTYPES[v.dtype], _dims(v, name, dynamic_axes.get(name, {})))
         for v, name in outputs],
        initializer=g.initializer_list(),
    )
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="bigcore", producer_version=__version__,
                              ir_version=helper.find_min_ir_version_for(opsets))
    return model
