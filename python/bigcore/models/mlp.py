"""Multi-layer perceptrons, one for each side of bigcore:

- ``MLP``: ``torchvision.ops.MLP``'s arguments and layout (an ``nn.Sequential`` of Linear, optional norm,
  activation and Dropout per hidden layer, then a Linear and Dropout), so its state dict reads like torchvision's;
- ``DNN``: the specification's model, ``Flatten -> Dense(hidden, relu) ... -> Dense(output, softmax)``, as a
  ``keras.Model``: it compiles, fits and saves with ``model.save`` / ``keras.models.load_model``, and, being an
  ``nn.Module``, trains in a plain PyTorch-style loop too.
"""

import numbers

from .. import nn
from ..keras import activations
from ..keras.layers import Dense, Flatten
from ..keras.model import Model
from ..keras.saving import register_keras_serializable


def _positive_ints(name, values):
    if isinstance(values, numbers.Integral) and not isinstance(values, bool):
        values = [values]
    values = list(values)
    if not values or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v <= 0 for v in values):
        raise ValueError(f"{name} must be a positive int or a non-empty list of them, got {values!r}")
    return [int(v) for v in values]


class MLP(nn.Sequential):
    """``torchvision.ops.MLP``: ``Linear -> [norm] -> activation -> Dropout`` for each hidden size but the last,
    then ``Linear -> Dropout``.

    Args:
        in_channels: the input size.
        hidden_channels: the output size of each Linear (a list; the last is the MLP's output size).
        norm_layer: a module class called with the size (e.g. ``nn.LayerNorm``), after each hidden Linear; None
            for none.
        activation_layer: a module class (default ``nn.ReLU``) after each hidden Linear (and norm).
        inplace: passed to the activation and Dropout when not None (as torchvision does).
        bias: give the Linear layers biases.
        dropout: the probability of each Dropout.

    Shape: input ``(*, in_channels)``, output ``(*, hidden_channels[-1])``.

    Example::

        mlp = bigcore.models.MLP(784, [256, 128, 10], dropout=0.1)
        logits = mlp(x.flatten(1))  # (B, 784) -> (B, 10)
    """

    def __init__(self, in_channels, hidden_channels, norm_layer=None, activation_layer=nn.ReLU, inplace=None,
                 bias=True, dropout=0.0):
        (in_channels,) = _positive_ints("in_channels", in_channels)
        hidden = _positive_ints("hidden_channels", hidden_channels)
        params = {} if inplace is None else {"inplace": inplace}
        layers, in_dim = [], in_channels
        for hidden_dim in hidden[:-1]:
            layers.append(nn.Linear(in_dim, hidden_dim, bias=bias))
            if norm_layer is not None:
                layers.append(norm_layer(hidden_dim))
            layers.append(activation_layer(**params))
            layers.append(nn.Dropout(dropout, **params))
            in_dim = hidden_dim
        layers.append(nn.Linear(in_dim, hidden[-1], bias=bias))
        layers.append(nn.Dropout(dropout, **params))
        super().__init__(*layers)


@register_keras_serializable(package="bigcore")
class DNN(Model):
    """The specification's DNN as a Keras model: ``Flatten``, a ``Dense(units, activation)`` per hidden size,
    then ``Dense(output_units, output_activation)``. The layers are ``flatten``, ``dense1``... and the output
    ``dense<K+1>`` (``dense1``, ``dense2`` for one hidden layer, as in the specification).

    Args:
        hidden_units: the hidden layers' sizes (an int for one).
        output_units: the number of outputs (classes).
        activation: the hidden layers' activation (default ``"relu"``).
        output_activation: the last layer's activation (default ``"softmax"``; None for logits).
        input_shape: the per-sample input shape, e.g. ``(28, 28)``: builds the weights at once (for a
            PyTorch-style loop, which needs ``parameters()`` before the first call).
        **kwargs: ``name``, ``trainable``, ``dtype`` (see ``keras.layers.Layer``).

    Shape: input ``(B, *input_shape)``, output ``(B, output_units)``.

    Example::

        model = bigcore.models.DNN(128, 10)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(x_train, y_train, epochs=10, batch_size=32)  # x_train (N, 28, 28)
        model.save("dnn.keras")                                 # keras.models.load_model("dnn.keras")
    """

    def __init__(self, hidden_units, output_units, activation="relu", output_activation="softmax",
                 input_shape=None, **kwargs):
        super().__init__(**kwargs)
        self.hidden_units = _positive_ints("hidden_units", hidden_units)
        (self.output_units,) = _positive_ints("output_units", output_units)
        self._single = isinstance(hidden_units, numbers.Integral)
        self.flatten = Flatten()
        for i, units in enumerate(self.hidden_units, 1):
            setattr(self, f"dense{i}", Dense(units, activation=activation))
        setattr(self, f"dense{len(self.hidden_units) + 1}", Dense(self.output_units, activation=output_activation))
        self._activation, self._output_activation = activation, output_activation
        self._input_shape = None if input_shape is None else [int(s) for s in input_shape]
        if self._input_shape is not None:
            self.build((None, *self._input_shape))

    def call(self, inputs):
        x = self.flatten(inputs)  # (B, *input_shape) -> (B, features)
        for i in range(1, len(self.hidden_units) + 2):
            x = getattr(self, f"dense{i}")(x)
        return x  # (B, output_units)

    def get_config(self):
        def name(activation):
            return activations.serialize(activations.get(activation))

        return {**super().get_config(), "hidden_units": self.hidden_units[0] if self._single else self.hidden_units,
                "output_units": self.output_units, "activation": name(self._activation),
                "output_activation": name(self._output_activation), "input_shape": self._input_shape}
