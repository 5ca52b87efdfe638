"""``keras.Sequential``: layers applied in order. Children are named ``"0"``, ``"1"``... as in
``nn.Sequential``, so state dicts read the same (``0.linear.weight``).

With ``keras.Input(shape=...)`` as the first element, or ``input_shape=`` on the first layer, the model is built
at once (its weights exist, ``summary`` shows the shapes); otherwise at its first call or ``build``.
"""

from ..nn import Module
from .keras_tensor import KerasTensor
from .layers.input_layer import InputLayer
from .model import Model


class Sequential(Model):
    """A stack of layers, each called on the previous one's output.

    Args:
        layers: the layers, optionally led by a ``keras.Input``.
        name: the model's name.

    Example::

        model = keras.Sequential([keras.Input(shape=(64,)), keras.layers.Dense(32, activation="relu"),
                                  keras.layers.Dense(10, activation="softmax")])
        model.summary()
    """

    def __init__(self, layers=None, trainable=True, name=None):
        super().__init__(trainable=trainable, name=name)
        object.__setattr__(self, "_input_layer", None)
        object.__setattr__(self, "_output_shapes", {})
        for layer in layers or []:
            self.add(layer, rebuild=False)
        if self._build_input_shape is not None:
            self.build()

    def add(self, layer, rebuild=True):
        """Append a layer (or a ``keras.Input`` as the first element); rebuild when the input shape is known."""
        if isinstance(layer, KerasTensor):
            layer = layer._keras_history[0]
        if isinstance(layer, InputLayer):
            if self._modules or self._input_layer is not None:
                raise ValueError(f"Sequential model {self.name!r} takes a keras.Input only as its first element "
                                 f"(it has {len(self._modules)} layers already)")
            object.__setattr__(self, "_input_layer", layer)
            self._build_input_shape = list(layer.batch_shape)
            self._build_input_dtype = layer.input_dtype
        elif not isinstance(layer, Module):
            raise TypeError(f"Sequential.add expects a layer, got {type(layer).__name__}")
        else:
            shape_arg = getattr(layer, "_input_shape_arg", None)
            if not self._modules and self._input_layer is None and shape_arg is not None:
                self._build_input_shape = [None, *shape_arg]
            self.add_module(str(len(self._modules)), layer)
        if rebuild and self._build_input_shape is not None:
            self.build()

    def pop(self, rebuild=True):
        """Remove and return the last layer."""
        if not self._modules:
            raise TypeError("There are no layers in the model.")
        layer = self._modules.pop(str(len(self._modules) - 1))
        self._output_shapes.pop(id(layer), None)
        return layer

    def call(self, inputs):
        record = len(self._output_shapes) < len(self._modules)
        for layer in self._modules.values():
            inputs = layer(inputs)
            if record and hasattr(inputs, "shape"):
                self._output_shapes[id(layer)] = (None, *inputs.shape[1:])
        return inputs

    def _layer_output_shapes(self):
        return dict(self._output_shapes)

    @property
    def layers(self):
        return list(self._modules.values())

    @property
    def input_shape(self):
        return None if self._build_input_shape is None else tuple(self._build_input_shape)

    def get_config(self):
        from .saving import serialize_keras_object

        layers = [serialize_keras_object(la) for la in self.layers]
        if self._input_layer is not None:
            layers.insert(0, serialize_keras_object(self._input_layer))
        return {"name": self.name, "trainable": self.trainable, "layers": layers,
                "build_input_shape": self._build_input_shape}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from .saving import deserialize_keras_object

        layers = [deserialize_keras_object(c, custom_objects) for c in config["layers"]]
        model = cls(layers, trainable=config.get("trainable", True), name=config.get("name"))
        if not model.built and config.get("build_input_shape") is not None:
            model.build(config["build_input_shape"])
        return model
