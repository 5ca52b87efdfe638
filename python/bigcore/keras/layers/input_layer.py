"""``keras.Input`` and ``keras.layers.InputLayer``: where a functional model's symbolic graph starts."""

from .. import keras_tensor
from .layer import Layer


class InputLayer(Layer):
    """The layer behind ``keras.Input``: holds the input's ``batch_shape`` and dtype, and passes data through.

    Args:
        shape: the per-sample shape (no batch axis); ``None`` for an axis of any size.
        batch_size: a fixed batch size (None: any).
        dtype: ``"float32"`` (default), ``"float64"``, ``"int64"`` or ``"bool"``.
        batch_shape: the full shape instead of ``shape`` and ``batch_size``.
        name: the input's name (``fit`` and ``predict`` take dicts keyed by it).
    """

    _build_before_call = False

    def __init__(self, shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None, name=None, **kwargs):
        kwargs.pop("trainable", None)
        kwargs.pop("input_shape", None)
        super().__init__(name=name or _input_name(), **kwargs)
        if sparse:
            raise ValueError("sparse inputs are not supported by bigcore")
        if batch_shape is None:
            if shape is None:
                raise ValueError("You must pass a `shape` argument to keras.Input (the shape of one sample).")
            if isinstance(shape, int):
                shape = (shape,)
            batch_shape = (batch_size,) + tuple(shape)
        elif shape is not None:
            raise ValueError("keras.Input takes `shape` or `batch_shape`, not both")
        self.batch_shape = tuple(None if s is None else int(s) for s in batch_shape)
        if any(s is not None and s < 0 for s in self.batch_shape):
            raise ValueError(f"keras.Input: sizes must be non-negative, got batch_shape={self.batch_shape}")
        self.input_dtype = str(getattr(dtype, "name", dtype) or "float32")
        self.output = keras_tensor.KerasTensor(self.batch_shape, self.input_dtype, name=self.name)
        keras_tensor.Node(self, outputs=self.output)
        self.built = True

    def call(self, inputs):
        return inputs

    def get_config(self):
        return {"batch_shape": list(self.batch_shape), "dtype": self.input_dtype, "sparse": False, "name": self.name}


def _input_name():
    from .layer import unique_name

    return unique_name("input_layer")


def Input(shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None, name=None, tensor=None,
          optional=False):
    """A symbolic input for the functional API: ``x = keras.Input(shape=(28, 28), name="image")``.

    Args:
        shape: the per-sample shape (no batch axis), ``None`` for an axis of any size.
        batch_size: a fixed batch size (None: any).
        dtype: ``"float32"`` (default), ``"float64"``, ``"int64"`` or ``"bool"``.
        batch_shape: the full shape instead of ``shape`` and ``batch_size``.
        name: the input's name (``fit`` and ``predict`` take dicts keyed by it).

    Returns:
        A ``KerasTensor`` of shape ``(batch_size, *shape)``: call layers on it, then build
        ``keras.Model(inputs, outputs)``. As the first element of a ``Sequential`` it fixes the input shape.
    """
    if tensor is not None or optional:
        raise ValueError("keras.Input: `tensor` and `optional` are not supported by bigcore")
    return InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, sparse=sparse, batch_shape=batch_shape,
                      name=name).output
