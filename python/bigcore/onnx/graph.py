"""``GraphBuilder``: the ONNX graph an export builds, and the helpers every emitter uses to add to it.

An emitter receives the builder ``g`` and one recorded :class:`~bigcore.onnx.trace.Node`, and writes ONNX nodes
whose last outputs carry the names of the recorded node's outputs::

    @emitter
    def relu(g, node):
        g.op("Relu", [node.args["input"]], out=node)

Inputs of ``g.op`` may be traced ``Value``s (a parameter or constant becomes an initializer on first use), traced
sizes (``SymInt``), names of values already in the graph, numpy arrays or Python numbers (constants), or None (an
absent optional input).
"""

import itertools
from collections import Counter

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from .errors import UnsupportedOperatorError
from .symint import is_sym
from .trace import Value, _values_in

#: bigcore dtype name -> ONNX element type
ONNX_DTYPES = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE, "int64": TensorProto.INT64,
               "bool": TensorProto.BOOL}
NUMPY_DTYPES = {"float32": np.float32, "float64": np.float64, "int64": np.int64, "bool": np.bool_}
_RANK = {"bool": 0, "int64": 1, "float32": 2, "float64": 3}


def promote(*dtypes):
    """The dtype PyTorch (and the engine) computes two tensors in: float64 > float32 > int64 > bool."""
    return max(dtypes, key=_RANK.__getitem__)


class GraphBuilder:
    """Nodes and initializers of the graph being emitted.

    Args:
        opset: the ``opset_version`` emitters target (``g.opset``).
        tracer: the record being emitted (its parameters are looked up by module emitters).
    """

    def __init__(self, opset, tracer):
        self.opset = opset
        self.tracer = tracer
        self.model_name = type(tracer.model).__name__
        self.nodes = []
        self.initializers = {}  # name -> numpy array
        self._consts = {}  # (dtype, shape, bytes) of small constants -> name
        self._shape_dims = {}  # id(SymInt) -> name of its 1-D size
        self._transposed = {}  # weight name -> name of its transpose
        self._shapes = {}  # sizes (ints and ids of SymInts) -> name of their 1-D tensor
        self.memo = {}  # for emitters that reuse what they emitted before (keys start with the op's name)
        self._uses = Counter(id(v) for n in tracer.nodes for v in set(_values_in(n.args)))
        # names the trace gave its values are taken already
        self._names = {v.name for v in tracer.values.values()} | {v.name for n in tracer.nodes for v in n.outputs}
        self._count = itertools.count()
        self.node = None  # the recorded node being emitted

    # ----- names -----
    def fresh(self, hint):
        """A new value name under the current node's module path."""
        path = self.node.module if self.node is not None else ""
        while True:
            name = f"/{path}/{hint}_{next(self._count)}" if path else f"/{hint}_{next(self._count)}"
            if name not in self._names:
                self._names.add(name)
                return name

    def unsupported(self, detail):
        """An UnsupportedOperatorError for the node being emitted."""
        return UnsupportedOperatorError(self.node.op, self.node.module or self.model_name, self.opset, detail)

    # ----- values -----
    def name(self, x):
        """The graph name of an emitter input (see the module docstring)."""
        if x is None:
            return ""
        if isinstance(x, str):
            return x
        if isinstance(x, Value):
            if x.kind in ("param", "const") and x.name not in self.initializers:
                self.initializers[x.name] = x.tensor.numpy()
            return x.name
        if is_sym(x):
            return self.size_scalar(x)
        if isinstance(x, np.ndarray):
            return self.const(x)
        if isinstance(x, (list, tuple)):  # data given as a list (indices, as PyTorch takes them)
            a = np.asarray(x)
            return self.const(a.astype(np.float32) if a.dtype.kind == "f" else a)
        if isinstance(x, (bool, np.bool_)):
            return self.const(np.array(x, np.bool_))
        if isinstance(x, (int, np.integer)):
            return self.const(np.array(x, np.int64))
        if isinstance(x, (float, np.floating)):
            return self.const(np.array(x, np.float32))
        raise TypeError(f"bigcore.onnx: cannot use {type(x).__name__} as an ONNX input")

    def const(self, array, name=None):
        """An initializer holding ``array`` (small constants are shared by value)."""
        array = np.asarray(array)
        key = None
        if array.size <= 64 and name is None:
            key = (array.dtype.str, array.shape, array.tobytes())
            if key in self._consts:
                return self._consts[key]
        name = name or self.fresh("const")
        self._names.add(name)
        self.initializers[name] = array
        if key is not None:
            self._consts[key] = name
        return name

    def scalar(self, value, dtype):
        """A 0-d constant of bigcore dtype ``dtype``."""
        return self.const(np.array(value, NUMPY_DTYPES[dtype]))

    def op(self, op_type, inputs, out=None, n_out=1, domain=None, **attrs):
        """Add one node; returns its output name (or the list of them when there are several).

        ``out``: the recorded node whose outputs this node produces, an explicit name or list of names, or None
        for fresh names.
        """
        if out is None:
            outputs = [self.fresh(op_type) for _ in range(n_out)]
        elif isinstance(out, str):
            outputs = [out]
        elif isinstance(out, list):
            outputs = out
        else:
            outputs = [v.name for v in out.outputs]
        names = [self.name(x) for x in inputs]
        while names and names[-1] == "":
            names.pop()  # trailing absent optional inputs are left out
        attrs = {k: v for k, v in attrs.items() if v is not None}
        node_name = self.fresh(op_type)
        self.nodes.append(helper.make_node(op_type, names, outputs, name=node_name, domain=domain, **attrs))
        return outputs[0] if len(outputs) == 1 else outputs

    def uses(self, value):
        """How many recorded ops read ``value`` (a weight read twice is tied)."""
        return self._uses[id(value)]

    def param(self, tensor):
        """The Value of a parameter or buffer (a module emitter reads its module's weights with it)."""
        return self.tracer.value_of(tensor._c)

    def transposed(self, w):
        """``w`` with its last two dims swapped, once per weight; a parameter's is named ``<key>.T``."""
        name = self.name(w)
        if name not in self._transposed:
            perm = list(range(w.rank))
            perm[-2], perm[-1] = perm[-1], perm[-2]
            out = f"{name}.T" if w.kind == "param" and f"{name}.T" not in self._names else None
            if out is not None:
                self._names.add(out)
            self._transposed[name] = self.op("Transpose", [w], out=out, perm=perm)
        return self._transposed[name]

    # ----- sizes -----
    def size_1d(self, sym):
        """A SymInt as a 1-D int64 tensor of one element (read from its source's shape if it has no value yet)."""
        key = id(sym)
        if key not in self._shape_dims:
            if sym.value is not None:
                name = self.op("Unsqueeze", [sym.value, self.const(np.array([0], np.int64))])
            else:
                src, axis = sym.source
                name = self.op("Shape", [src], start=axis, end=axis + 1)
            self._shape_dims[key] = name
        return self._shape_dims[key]

    def size_scalar(self, sym):
        """A SymInt as a 0-d int64 tensor."""
        if sym.value is not None:
            return self.name(sym.value)
        return self.op("Squeeze", [self.size_1d(sym), self.const(np.array([0], np.int64))])

    def ints(self, items):
        """A 1-D int64 tensor of sizes: a constant when all are plain ints, else a Concat of constants and sizes."""
        items = list(items)
        if not any(is_sym(i) for i in items):
            return self.const(np.array([int(i) for i in items], np.int64))
        key = tuple(id(i) if is_sym(i) else int(i) for i in items)
        if key not in self._shapes:  # the same sizes (a view repeated per head, per layer) are built once
            self._shapes[key] = self._concat_sizes(items)
        return self._shapes[key]

    def _concat_sizes(self, items):
        parts, run = [], []
        for i in items:
            if is_sym(i):
                if run:
                    parts.append(self.const(np.array(run, np.int64)))
                    run = []
                parts.append(self.size_1d(i))
            else:
                run.append(int(i))
        if run:
            parts.append(self.const(np.array(run, np.int64)))
        return parts[0] if len(parts) == 1 else self.op("Concat", parts, axis=0)

    def int_1d(self, value):
        """One size (an int or a SymInt) as a 1-D int64 tensor."""
        return self.ints([value])

    def axes(self, axes):
        """A constant 1-D int64 tensor of axes."""
        return self.const(np.array(list(axes), np.int64))

    # ----- common idioms -----
    def cast(self, x, dtype, from_dtype=None):
        """``x`` as bigcore dtype ``dtype`` (no node when ``from_dtype`` already is it)."""
        from_dtype = from_dtype or (x.dtype if isinstance(x, Value) else None)
        if from_dtype == dtype:
            return self.name(x)
        return self.op("Cast", [x], to=ONNX_DTYPES[dtype])

    def reduce(self, op_type, x, axes, keepdims, out=None):
        """``Reduce*`` over ``axes`` (None: all), with the axes as an input or an attribute as the opset wants."""
        if axes is None:
            return self.op(op_type, [x], out=out, keepdims=int(keepdims))
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.op(op_type, [x, self.axes(axes)], out=out, keepdims=int(keepdims))
        return self.op(op_type, [x], out=out, axes=list(axes), keepdims=int(keepdims))

    def unsqueeze(self, x, axes, out=None):
        return self.op("Unsqueeze", [x, self.axes(axes)], out=out)

    def squeeze(self, x, axes, out=None):
        return self.op("Squeeze", [x, self.axes(axes)], out=out)

    def shape_of(self, value):
        """The dims of a Value as a 1-D int64 tensor (constant where fixed)."""
        return self.ints(value.dims)

    def initializer_list(self):
        return [numpy_helper.from_array(a, name) for name, a in self.initializers.items()]


__all__ = ["GraphBuilder", "ONNX_DTYPES", "NUMPY_DTYPES", "promote"]
