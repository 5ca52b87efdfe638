"""``SymInt``: a size read from a dynamic axis while exporting.

It is an ``int`` holding the size of the traced example, so every Python use of it works as before (comparisons,
``range``, error messages), and it carries the graph value that computes the size from the inputs, so that
arithmetic on it (``B * T``, ``C // NH``, ``T - 1``) records graph nodes and a ``view(B, T, NH, HS)`` or
``arange(T)`` built from it stays dynamic in the exported graph.

The graph value is made on first use: a SymInt for axis ``d`` of value ``x`` becomes a ``size(x, d)`` node
(ONNX ``Shape`` + ``Squeeze``) only when a recorded op consumes it.

Traps (as with PyTorch's tracer): ``float(n)``, ``math.sqrt(n)``, ``n / 2`` and ``range(n)`` use the traced value
and lose the link to the graph; comparisons (``if T > 8``) decide once, for the traced sizes.
"""


class SymInt(int):
    """A traced size: ``int(self)`` is the example's size, ``self.value`` the graph value computing it.

    Args:
        size: the traced example's size.
        tracer: the tracer that records arithmetic on it.
        source: ``(Value, axis)`` whose size this is, for a size not yet in the graph; or None.
        value: the graph value (a 0-d int64 ``Value``) once it exists.
        name: the ``dim_param`` name when the size is a declared dynamic axis of an input.

    Example::

        B, T, C = x.shape  # B and T are SymInts when axes 0 and 1 are dynamic
        q = q.view(B, T, NH, C // NH)  # the Reshape reads B and T from the graph
    """

    def __new__(cls, size, tracer, source=None, value=None, name=None):
        self = super().__new__(cls, size)
        self.tracer, self.source, self.value, self.name = tracer, source, value, name
        return self

    def __repr__(self):
        return f"SymInt({int(self)})"

    def _arith(self, op, a, b):
        if not isinstance(b, int) or isinstance(b, bool):
            return NotImplemented
        result = _PY_OPS[op](int(a), int(b))
        if not self.tracer.recording():
            return result
        return self.tracer.record_size_arith(op, a, b, result)

    def __add__(self, o):
        return self._arith("add", self, o)

    def __radd__(self, o):
        return self._arith("add", o, self)

    def __sub__(self, o):
        return self._arith("sub", self, o)

    def __rsub__(self, o):
        return self._arith("sub", o, self)

    def __mul__(self, o):
        return self._arith("mul", self, o)

    def __rmul__(self, o):
        return self._arith("mul", o, self)

    def __floordiv__(self, o):
        return self._arith("floordiv", self, o)

    def __rfloordiv__(self, o):
        return self._arith("floordiv", o, self)

    def __mod__(self, o):
        return self._arith("mod", self, o)

    def __rmod__(self, o):
        return self._arith("mod", o, self)

    def __neg__(self):
        return self._arith("sub", 0, self)

    def __pos__(self):
        return self


_PY_OPS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "floordiv": lambda a, b: a // b,
    "mod": lambda a, b: a % b,
}


def is_sym(x):
    """Whether ``x`` is a traced size."""
    return isinstance(x, SymInt)


__all__ = ["SymInt", "is_sym"]
