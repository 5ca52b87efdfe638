"""Export tracing: run a model's forward once and record every op it runs, with its real name, its arguments and
the module it ran in, whatever the grad mode, in eval semantics (dropout is the identity), never freed.

The autograd graph cannot serve: it records nothing under ``no_grad()``, frees itself in ``backward()``, leaves out
comparisons, casts and creation ops, and names some ops by their derivative's form. So while one forward runs on
the exporting thread, the tracer:

- wraps every function of ``bigcore._core`` (each public op is one or a few engine calls made from ``_tensor.py``,
  ``_functions.py``, ``_creation.py``, ``nn/functional.py``...) and records each call under the op's public name
  (``engine_calls.py``); the wrappers are removed when the forward returns;
- records functions marked ``@traced(name)`` (``clone``, indexing, ``split``, the losses, attention) and modules
  with a module-level emitter (``nn.LSTM``) as one op each, not the engine calls inside;
- gives ``.shape`` of each value as its symbolic dims (``shapes.py``): ``SymInt`` where a size follows a declared
  dynamic axis.

The record is a list of :class:`Node` in execution order over :class:`Value` objects, turned into ONNX by the
emitters in ``ops/``.
"""

import contextlib
import inspect
import itertools
import os
import sys
import threading
import warnings

from .. import _core, _tracing
from .._tensor import Tensor
from ..autograd import no_grad
from . import engine_calls
from .errors import TracerWarning
from .shapes import output_dims
from .signature import eval_mode
from .symint import SymInt

_EngineTensor = _core._Tensor
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Value:
    """A tensor of the traced graph.

    Attributes:
        name: its name in the ONNX graph.
        dtype: ``"float32"``, ``"float64"``, ``"int64"`` or ``"bool"``.
        dims: one entry per dimension, an ``int`` (fixed) or a ``SymInt`` (follows a dynamic axis).
        kind: ``"input"``, ``"param"`` (parameter or buffer, named by its state_dict key), ``"const"`` or
            ``"node"`` (an op's output).
        tensor: the engine tensor of a param or const (its values become an initializer).
    """

    __slots__ = ("name", "dtype", "dims", "kind", "tensor")

    def __init__(self, name, dtype, dims, kind, tensor=None):
        self.name, self.dtype, self.dims, self.kind, self.tensor = name, dtype, tuple(dims), kind, tensor

    @property
    def shape(self):
        return tuple(int(d) for d in self.dims)

    @property
    def rank(self):
        return len(self.dims)

    def __repr__(self):
        return f"Value({self.name!r}, {self.dtype}, {self.dims})"


class Node:
    """One recorded op: ``op`` (the public name, e.g. ``"layer_norm"``), ``args`` (argument name -> Value,
    SymInt, or Python value, under PyTorch's argument names), ``outputs`` (Values) and ``module`` (the module
    path where it ran, ``""`` for the model's own forward)."""

    __slots__ = ("op", "args", "outputs", "module")

    def __init__(self, op, args, outputs, module):
        self.op, self.args, self.outputs, self.module = op, args, outputs, module

    def inputs(self):
        """The Values among the arguments, in order (SymInts count by the Value computing them)."""
        return list(_values_in(self.args))

    def __repr__(self):
        return f"Node({self.op}, {[v.name for v in self.outputs]}, module={self.module!r})"


def _values_in(obj):
    if isinstance(obj, Value):
        yield obj
    elif isinstance(obj, SymInt):
        if obj.value is not None:
            yield obj.value
    elif isinstance(obj, dict):
        for x in obj.values():
            yield from _values_in(x)
    elif isinstance(obj, (list, tuple)):
        for x in obj:
            yield from _values_in(x)
    elif isinstance(obj, slice):
        yield from _values_in((obj.start, obj.stop, obj.step))


class Tracer:
    """Records one forward pass of ``model`` on the thread that creates it.

    Args:
        model: the ``nn.Module`` (its parameters and buffers become initializers named by state_dict keys).
        module_ops: ``{module class: op name}`` for modules recorded whole (module-level emitters).
    """

    def __init__(self, model, module_ops):
        self.model = model
        self.module_ops = module_ops
        self.thread = threading.get_ident()
        self.paused = 0
        self.nodes = []
        self.values = {}  # engine tensor id -> Value
        self.alive = []  # engine tensors seen: kept alive so their ids stay theirs
        self.paths = {}
        for path, m in model.named_modules():
            self.paths.setdefault(id(m), path)
        self.param_names = {}
        for key, t in model.state_dict(keep_vars=True).items():
            self.param_names.setdefault(t._c.id, key)
        for path, m in model.named_modules():  # non-persistent buffers are initializers too
            for name, b in m._buffers.items():
                if b is not None:
                    self.param_names.setdefault(b._c.id, f"{path}.{name}" if path else name)
        self.stack = [""]
        self.counter = itertools.count()

    # ----- state -----
    def on_this_thread(self):
        return _tracing.ACTIVE is self and threading.get_ident() == self.thread

    def recording(self):
        return self.paused == 0 and self.on_this_thread()

    @contextlib.contextmanager
    def pause(self):
        self.paused += 1
        try:
            yield
        finally:
            self.paused -= 1

    @contextlib.contextmanager
    def active(self):
        """Install the tracer: engine wrappers on, model in eval mode, no autograd graph; all undone on exit."""
        if _tracing.ACTIVE is not None:
            raise RuntimeError("bigcore.onnx: an export is already tracing (exports do not nest)")
        originals = {}
        try:
            for name in dir(_core):
                fn = getattr(_core, name)
                if name.startswith("_") or name in engine_calls.NOT_OPS or isinstance(fn, type) or not callable(fn):
                    continue
                originals[name] = fn
                setattr(_core, name, self._wrapper(name, fn))
            _tracing.ACTIVE = self
            with eval_mode(self.model), no_grad():
                yield self
        finally:
            _tracing.ACTIVE = None
            for name, fn in originals.items():
                setattr(_core, name, fn)

    def _wrapper(self, name, fn):
        def wrapper(*args, **kwargs):
            if not self.recording():
                return fn(*args, **kwargs)
            return self.record_engine(name, fn, args, kwargs)

        wrapper.__name__ = name
        wrapper.__wrapped__ = fn
        return wrapper

    # ----- values -----
    def _fresh(self, op):
        path = self.stack[-1]
        n = next(self.counter)
        return f"/{path}/{op}_{n}" if path else f"/{op}_{n}"

    def value_of(self, c):
        """The Value of engine tensor ``c``: an op's output, an input, or else a parameter/buffer or constant."""
        v = self.values.get(c.id)
        if v is None:
            key = self.param_names.get(c.id)
            v = Value(key or self._fresh("const"), c.dtype, c.shape, "param" if key else "const", tensor=c)
            self.values[c.id] = v
            self.alive.append(c)
        return v

    def add_input(self, tensor, name, dynamic):
        """Declare ``tensor`` as the graph input ``name``; ``dynamic``: ``{axis: dim_param name}``."""
        c = tensor._c
        v = Value(name, c.dtype, c.shape, "input")
        v.dims = tuple(SymInt(s, self, source=(v, k), name=dynamic[k]) if k in dynamic else s
                       for k, s in enumerate(c.shape))
        self.values[c.id] = v
        self.alive.append(c)
        return v

    def shape(self, tensor):
        """``tensor.shape`` while tracing: its symbolic dims."""
        return self.value_of(tensor._c).dims

    def materialize(self, sym):
        """Make sure a SymInt has a graph value: a ``size`` node reading it from its source's shape."""
        if sym.value is None:
            src, axis = sym.source
            v = Value(self._fresh("size"), "int64", (), "node")
            self.nodes.append(Node("size", {"input": src, "dim": axis}, [v], self.stack[-1]))
            sym.value = v
        return sym

    def _resolve(self, obj):
        if isinstance(obj, Tensor):
            return self.value_of(obj._c)
        if isinstance(obj, _EngineTensor):
            return self.value_of(obj)
        if isinstance(obj, SymInt):
            return self.materialize(obj)
        if isinstance(obj, dict):
            return {k: self._resolve(x) for k, x in obj.items()}
        if isinstance(obj, (list, tuple)) and not hasattr(obj, "_fields"):
            return type(obj)(self._resolve(x) for x in obj)
        if isinstance(obj, slice):
            return slice(self._resolve(obj.start), self._resolve(obj.stop), self._resolve(obj.step))
        return obj

    # ----- recording -----
    def _run(self, fn, args, kwargs):
        with self.pause():
            return fn(*args, **kwargs)

    def _record(self, op, named, out):
        args = self._resolve(named)
        flat = _flatten_tensors(out)
        outputs = []
        for c in flat:
            v = Value(self._fresh(op), c.dtype, c.shape, "node")
            outputs.append(v)
        inputs = list(_values_in(args))
        for v, dims in zip(outputs, output_dims(self, op, args, outputs, inputs)):
            v.dims = dims
        for c, v in zip(flat, outputs):
            self.values[c.id] = v
            self.alive.append(c)
        self.nodes.append(Node(op, args, outputs, self.stack[-1]))
        return out

    def record_engine(self, name, fn, args, kwargs):
        """A call of engine function ``name``: recorded under its op's name (see ``engine_calls``)."""
        adapter = engine_calls.ADAPTERS.get(name)
        if adapter is None:
            op, named = f"_core.{name}", {f"arg{i}": a for i, a in enumerate(args)} | kwargs
        else:
            op, named = adapter(*args, **kwargs)
        if op == engine_calls.IDENTITY:
            return named["input"]
        out = self._run(fn, args, kwargs)
        if op == engine_calls.CONSTANT:
            self.value_of(out)
            return out
        return self._record(op, named, out)

    def record_call(self, op, fn, args, kwargs):
        """A call of a ``@traced`` function or a module recorded whole: one op, arguments by parameter name."""
        bound = inspect.signature(fn).bind(*args, **kwargs)
        bound.apply_defaults()
        out = self._run(fn, args, kwargs)
        return self._record(op, dict(bound.arguments), out)

    def record_size_arith(self, op, a, b, result):
        """``a <op> b`` on sizes where one is a SymInt: a node computing it, and the SymInt of its result."""
        v = Value(self._fresh(op), "int64", (), "node")
        self.nodes.append(Node(op, self._resolve({"input": a, "other": b}), [v], self.stack[-1]))
        return SymInt(result, self, value=v)

    def call_module(self, module, args, kwargs):
        """``module(*args, **kwargs)`` while tracing: its path on the stack, or one op for a module-level emitter."""
        path = self.paths.get(id(module))
        if path is None:
            parent = self.stack[-1]
            path = f"{parent}.<{type(module).__name__}>" if parent else f"<{type(module).__name__}>"
        self.stack.append(path)
        try:
            op = self.module_ops.get(type(module))
            if op is not None:
                return self.record_call(op, type(module).forward, (module,) + tuple(args), kwargs)
            return module.forward(*args, **kwargs)
        finally:
            self.stack.pop()

    def value_read(self, what):
        """Python reads tensor values: warn, naming the first line outside bigcore (like PyTorch's TracerWarning)."""
        frame = sys._getframe(1)
        while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR + os.sep):
            frame = frame.f_back
        if frame is None:
            return
        where = f"{frame.f_code.co_filename}:{frame.f_lineno}"
        msg = (f"{what} reads a tensor's values while exporting (at {where}): the result is recorded as a constant, "
               "so the exported graph may be wrong for other inputs")
        g = frame.f_globals
        warnings.warn_explicit(msg, TracerWarning, frame.f_code.co_filename, frame.f_lineno,
                               module=g.get("__name__"), registry=g.setdefault("__warningregistry__", {}))


def _flatten_tensors(out):
    """The engine tensors in an op's result, in order (tensors, nested tuples and lists; None skipped)."""
    if isinstance(out, _EngineTensor):
        return [out]
    if isinstance(out, Tensor):
        return [out._c]
    if isinstance(out, (tuple, list)):
        return [c for x in out for c in _flatten_tensors(x)]
    if out is None:
        return []
    raise TypeError(f"bigcore.onnx: an op returned {type(out).__name__}, not tensors")


def trace(model, args, kwargs, inputs, module_ops):
    """Run ``model(*args, **kwargs)`` under a tracer.

    Args:
        model: the module.
        args, kwargs: the forward's arguments.
        inputs: ``[(tensor, name, {axis: dim_param})]``: the tensors among the arguments that are graph inputs.
        module_ops: ``{module class: op name}`` recorded whole.

    Returns:
        ``(tracer, result)``: the record and what forward returned.
    """
    tracer = Tracer(model, module_ops)
    for tensor, name, dynamic in inputs:
        tracer.add_input(tensor, name, dynamic)
    with tracer.active():
        result = model(*args, **kwargs)
    return tracer, result


__all__ = ["Tracer", "Value", "Node", "trace"]
