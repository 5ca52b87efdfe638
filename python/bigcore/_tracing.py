"""The hooks through which ``bigcore.onnx`` sees a forward pass while it exports a model.

Nothing here records anything by itself: the exporter installs a tracer (``bigcore/onnx/trace.py``) for the
duration of one forward pass, on one thread, and these hooks hand it what it needs at the few places where the
Python API says more than the engine calls it makes:

- ``traced(name)``: calls of a Python function (``Tensor.clone``, indexing, ``split``, the losses, attention) are
  recorded as ONE op with the function's name and arguments, whatever engine calls it makes inside;
- ``module_call``: ``Module.__call__`` tells the tracer which module runs (error messages name ``blocks.3.attn``;
  ``nn.LSTM`` is recorded whole);
- ``shape``: sizes read from ``.shape`` / ``.size()`` may be traced integers (dynamic axes);
- ``value_read``: Python control flow on tensor values (``item()``, ``bool(t)``, ``numpy()``) warns.

Every hook costs one global lookup when no export runs. This module never imports ``onnx``.
"""

import functools

#: The tracer of the export running now, or None. Set only by ``bigcore.onnx.trace``.
ACTIVE = None


def tracer():
    """The tracer recording on this thread, or None (no export, another thread, or a call inside a recorded op)."""
    t = ACTIVE
    return t if t is not None and t.recording() else None


def is_exporting():
    """True while ``bigcore.onnx.export`` traces a forward pass on this thread.

    Models use it to take their composed path instead of a fused engine op that has no ONNX form.

    Returns:
        bool.

    Example::

        if bigcore.onnx.is_exporting():
            return None  # no fused path while exporting
    """
    t = ACTIVE
    return t is not None and t.on_this_thread()


def traced(name):
    """Decorator: while exporting, a call of the function is recorded as one op ``name`` with the function's
    tensor arguments as inputs and the other arguments as attributes; the engine calls inside are not recorded.

    Args:
        name: the op's name, the same as the function's public name (its ONNX emitter has that name too).

    Example::

        @traced("clone")
        def clone(self): ...
    """

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            t = tracer()
            if t is None:
                return fn(*args, **kwargs)
            return t.record_call(name, fn, args, kwargs)

        return wrapper

    return decorate


def value_read(what):
    """Tell the tracer that Python reads a tensor's values (``what``: ``"item()"``, ``"bool()"``...)."""
    t = tracer()
    if t is not None:
        t.value_read(what)
