"""The emitter registry: one function per op, named as the op (``layer_norm`` emits ``F.layer_norm``), each
turning one recorded node into ONNX nodes with ``onnx.helper`` through a :class:`~bigcore.onnx.graph.GraphBuilder`.

Files by op family: ``elementwise``, ``reduce``, ``movement``, ``indexing``, ``sorting``, ``inplace``, ``creation``,
``nn`` (layers), ``losses``, ``attention``, ``recurrent`` (the LSTM module). Adding an op to export is adding one ``@emitter`` function.
"""

#: op name -> emitter(g, node)
EMITTERS = {}
#: module class -> op name, for modules recorded whole (module-level emitters such as nn.LSTM -> ONNX LSTM)
MODULE_OPS = {}


def emitter(fn, name=None):
    """Register ``fn`` as the emitter of the op named ``fn.__name__`` (or ``name``: for emitters made by a
    factory, one per op of a family)."""
    if name is not None:
        fn.__name__ = fn.__qualname__ = name
    EMITTERS[fn.__name__] = fn
    return fn


def module_emitter(module_class):
    """Register the decorated function as the emitter of ``module_class``, recorded as one op (the function's
    name) whenever such a module is called while exporting."""

    def register(fn):
        EMITTERS[fn.__name__] = fn
        MODULE_OPS[module_class] = fn.__name__
        return fn

    return register


from . import attention, creation, elementwise, indexing, inplace, losses, movement, nn, recurrent, reduce, sorting  # noqa: E402,F401,E501 - registration
