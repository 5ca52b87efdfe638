"""Symbolic tensors for the functional API: ``KerasTensor`` (a shape with ``None`` for unknown sizes, a dtype,
and the layer call that produced it) and ``Node`` (one call of a layer on symbolic inputs).

A layer called on KerasTensors does not compute on data: it runs once on a small batch of zeros (which also
builds it: ``Dense(64)`` learns its input size here) to learn its output shapes, and records a Node. The batch
axis of every output is unknown (``None``) unless every input's batch size is known; other sizes that are
``None`` in an input are found by a second run with another size (an output size that changes with it is
``None``). ``keras.Model(inputs, outputs)`` walks the nodes back from the outputs (``functional.py``).
"""

from .. import _creation
from .._dtype import to_dtype
from ..autograd import no_grad
from . import tree

_PROBE_SIZES = (2, 3)  # the sizes tried for unknown axes: two runs tell a size that follows the input's


class KerasTensor:
    """A symbolic tensor: ``shape`` (``None`` where unknown, the batch axis first), ``dtype``, ``name``.

    Made by ``keras.Input(shape=(28, 28))`` and by layers called on KerasTensors; it holds no values.
    ``_keras_history`` is ``(layer, node_index, tensor_index)``: which call of which layer made it.
    """

    def __init__(self, shape, dtype="float32", name=None):
        self.shape = tuple(None if s is None else int(s) for s in shape)
        self.dtype = to_dtype(dtype)
        self.name = name
        self._keras_history = None

    @property
    def ndim(self):
        return len(self.shape)

    def _probe(self, size):
        """A batch of zeros with this shape, ``size`` for every unknown axis."""
        return _creation.zeros(*[size if s is None else s for s in self.shape], dtype=self.dtype)

    def __repr__(self):
        name = f", name={self.name}" if self.name else ""
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype.name}{name}>"

    def __bool__(self):
        raise TypeError("a KerasTensor is symbolic: it has no value to test; use it as a layer's input")

    def __array__(self, *args, **kwargs):
        raise TypeError(f"{self!r} is symbolic (an input of the functional API) and holds no values: build a "
                        "keras.Model(inputs, outputs) and call the model on data")


class Node:
    """One call of ``layer`` on ``args``/``kwargs`` holding KerasTensors, which gave ``outputs``."""

    def __init__(self, layer, args=(), kwargs=None, outputs=None):
        self.layer, self.args, self.kwargs, self.outputs = layer, tuple(args), dict(kwargs or {}), outputs
        self.flat_outputs = tree.flatten(outputs)
        self.parents = [t for t in tree.flatten((list(self.args), self.kwargs)) if isinstance(t, KerasTensor)]
        layer._inbound_nodes.append(self)
        index = len(layer._inbound_nodes) - 1
        for i, t in enumerate(self.flat_outputs):
            t._keras_history = (layer, index, i)

    @property
    def is_input(self):
        return not self.parents and not self.args


def any_keras_tensor(args, kwargs):
    return any(isinstance(t, KerasTensor) for t in tree.flatten((list(args), kwargs)))


def symbolic_call(layer, args, kwargs):
    """Call ``layer`` on KerasTensors: run it on zeros to build it and learn the output shapes, record a Node,
    return KerasTensors shaped like its outputs (same structure)."""
    flat_in = [t for t in tree.flatten((list(args), kwargs)) if isinstance(t, KerasTensor)]
    for t in flat_in:
        if t._keras_history is None:
            raise ValueError(f"{t!r} was not made by keras.Input or by a layer: a functional model needs them")
    batch_known = all(t.shape and t.shape[0] is not None for t in flat_in)
    other_unknown = any(None in t.shape[1:] for t in flat_in)
    runs = []
    for size in _PROBE_SIZES[: 2 if other_unknown else 1]:
        def probe(v, size=size):
            return v._probe(size) if isinstance(v, KerasTensor) else v

        concrete = tree.map_structure(probe, (list(args), kwargs))
        try:
            runs.append(_run_in_eval(layer, concrete[0], concrete[1]))
        except (ValueError, TypeError) as e:
            shapes = [t.shape for t in flat_in]
            note = (f"{e}\n(calling layer {layer.name!r} on symbolic inputs of shapes {shapes}, run on zeros with "
                    f"{size} for every unknown size)")
            try:
                wrapped = type(e)(note)
            except Exception:
                raise e from None
            raise wrapped from None
    flat_runs = [tree.flatten(r) for r in runs]
    outputs = []
    for i, out in enumerate(flat_runs[0]):
        if not hasattr(out, "shape") or not hasattr(out, "dtype"):
            raise TypeError(f"layer {layer.name!r} returned a {type(out).__name__}; a layer of a functional "
                            "model must return tensors (or a list, tuple or dict of them)")
        shape = list(out.shape)
        for other in flat_runs[1:]:
            shape = [s if s == o else None for s, o in zip(shape, other[i].shape)]
        if shape and not batch_known:
            shape[0] = None
        name = layer.name if len(flat_runs[0]) == 1 else f"{layer.name}_{i}"
        outputs.append(KerasTensor(shape, out.dtype, name=name))
    structured = tree.pack_sequence_as(runs[0], outputs)
    Node(layer, args, kwargs, structured)
    return structured


def _run_in_eval(layer, args, kwargs):
    """``layer(*args, **kwargs)`` in evaluation mode without a graph, every submodule's mode restored after."""
    modes = [(m, m.training) for m in layer.modules()]
    layer.eval()
    try:
        with no_grad():
            return layer(*args, **kwargs)
    finally:
        for m, mode in modes:
            object.__setattr__(m, "training", mode)
