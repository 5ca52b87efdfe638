"""Layers that merge several inputs (a list of tensors): ``Concatenate(axis=-1)``, ``Add``, ``Subtract``,
``Multiply``, ``Average``. Shapes that do not fit raise a ValueError naming them."""

from ..._functions import cat
from .layer import Layer


def _shapes(layer, inputs, least=2):
    if not isinstance(inputs, (list, tuple)) or len(inputs) < least:
        raise ValueError(f"A `{type(layer).__name__}` layer should be called on a list of at least {least} inputs. "
                         f"Received: inputs={inputs!r}")
    return [tuple(t.shape) for t in inputs]


class Concatenate(Layer):
    """Join a list of tensors along ``axis`` (default the last); every other axis must agree.

    Shape: inputs ``(B, ..., d_i, ...)``; output ``(B, ..., sum d_i, ...)``.

    Example::

        merged = keras.layers.Concatenate()([a, b])  # (B, 3) and (B, 5) -> (B, 8)
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def call(self, inputs):
        shapes = _shapes(self, inputs, least=1)
        rank = len(shapes[0])
        axis = self.axis + rank if self.axis < 0 else self.axis
        if not 0 <= axis < rank or any(len(s) != rank for s in shapes):
            raise ValueError(f"Concatenate(axis={self.axis}) needs inputs of one rank with that axis; got shapes "
                             f"{shapes}")
        if any(s[:axis] + s[axis + 1 :] != shapes[0][:axis] + shapes[0][axis + 1 :] for s in shapes):
            raise ValueError(f"A `Concatenate` layer requires inputs with matching shapes except for the concatenation "
                             f"axis. Received: input_shape={shapes} (axis={self.axis})")
        return cat(list(inputs), axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class _Merge(Layer):
    """An element-wise merge of inputs of one shape (or shapes that broadcast)."""

    least, most = 2, None

    def call(self, inputs):
        shapes = _shapes(self, inputs, self.least)
        if self.most is not None and len(shapes) > self.most:
            raise ValueError(f"A `{type(self).__name__}` layer should be called on exactly {self.most} inputs. "
                             f"Received: {len(shapes)} inputs of shapes {shapes}")
        for s in shapes[1:]:
            if not _broadcastable(shapes[0], s):
                raise ValueError(f"Inputs of `{type(self).__name__}` have incompatible shapes: {shapes}")
        return self.merge(list(inputs))


def _broadcastable(a, b):
    return all(x == y or x == 1 or y == 1 for x, y in zip(reversed(a), reversed(b)))


class Add(_Merge):
    """The element-wise sum of a list of tensors of one shape: ``Add()([a, b, c])``."""

    def merge(self, inputs):
        out = inputs[0]
        for t in inputs[1:]:
            out = out + t
        return out


class Subtract(_Merge):
    """``a - b`` for exactly two inputs: ``Subtract()([a, b])``."""

    most = 2

    def merge(self, inputs):
        return inputs[0] - inputs[1]


class Multiply(_Merge):
    """The element-wise product of a list of tensors."""

    def merge(self, inputs):
        out = inputs[0]
        for t in inputs[1:]:
            out = out * t
        return out


class Average(_Merge):
    """The element-wise mean of a list of tensors."""

    def merge(self, inputs):
        out = inputs[0]
        for t in inputs[1:]:
            out = out + t
        return out / len(inputs)
