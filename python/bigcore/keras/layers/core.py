"""Keras's core layers: ``Dense``, ``Flatten``, ``Dropout``, ``Activation``, ``Embedding``,
``LayerNormalization``. Input sizes are taken from the first call (``Dense(128)`` needs no input size), and
defaults follow Keras (Glorot-uniform kernels, zero biases, ``LayerNormalization(epsilon=1e-3)``)."""

from ... import nn
from ...nn import functional as F
from ...nn import init
from .. import activations
from .layer import KerasWeight, Layer


class Dense(Layer):
    """``activation(inputs @ kernel + bias)`` on the last axis, with ``units`` outputs.

    Args:
        units: output size.
        activation: a name (``"relu"``, ``"softmax"``...), a callable, or None (linear).
        use_bias: add a bias.
        **kwargs: ``name``, ``trainable``, ``dtype``, ``input_shape`` (see ``Layer``).

    Shape: input ``(B, ..., in)`` of any rank >= 2, output ``(B, ..., units)``; ``in`` is taken from the first
    call. The weights are stored PyTorch-style as ``linear.weight`` ``(units, in)`` and ``linear.bias``;
    ``get_weights()`` gives Keras's kernel ``(in, units)`` and bias.

    Example::

        dense = keras.layers.Dense(64, activation="relu")
        dense(bigcore.randn(32, 28, 100)).shape  # (32, 28, 64)
    """

    def __init__(self, units, activation=None, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        if isinstance(units, bool) or int(units) != units or int(units) <= 0:
            raise ValueError(f"Received an invalid value for `units`, expected a positive integer. Received: "
                             f"units={units}")
        self.units, self.use_bias = int(units), bool(use_bias)
        self.activation = activations.get(activation)
        self.linear = None

    def build(self, input_shape):
        in_features = input_shape[-1]
        if in_features is None:
            raise ValueError(f"Dense {self.name!r}: the last axis of its input must be known, got shape {input_shape}")
        self.linear = nn.Linear(in_features, self.units, bias=self.use_bias, dtype=self.dtype)
        init.xavier_uniform_(self.linear.weight)
        if self.use_bias:
            init.zeros_(self.linear.bias)
        self._mark_built()

    def call(self, inputs):
        if self.linear is None:
            self.build(tuple(inputs.shape))
        if inputs.shape[-1] != self.linear.in_features:
            raise ValueError(f"Dense {self.name!r} expects inputs with last axis {self.linear.in_features}, got "
                             f"shape {tuple(inputs.shape)}")
        return self.activation(self.linear(inputs))

    def _keras_weights(self):
        if self.linear is None:
            return []
        kernel = [KerasWeight(self.linear.weight, transpose=True)]  # (in, units) in Keras
        return kernel + ([KerasWeight(self.linear.bias)] if self.use_bias else [])

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias}

    def extra_repr(self):
        return f"units={self.units}, activation={activations.serialize(self.activation)}"


class Flatten(Layer):
    """Flatten everything but the batch axis: ``(B, d1, d2, ...)`` -> ``(B, d1 * d2 * ...)``; ``(B,)`` -> ``(B, 1)``."""

    def call(self, inputs):
        return inputs.flatten(1) if inputs.ndim > 1 else inputs.unsqueeze(1)


class Dropout(Layer):
    """Zero a fraction ``rate`` of the inputs while training (scaling the rest by ``1 / (1 - rate)``)."""

    def __init__(self, rate, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"rate must be in [0, 1), got {rate}")
        self.rate = float(rate)

    def call(self, inputs):
        return F.dropout(inputs, self.rate, self.training)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}


class Activation(Layer):
    """Apply an activation by name (or a callable)."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def call(self, inputs):
        return self.activation(inputs)

    def get_config(self):
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


class Embedding(Layer):
    """``Embedding(input_dim, output_dim)``: int ids ``(B, ...)`` to vectors ``(B, ..., output_dim)``, initialized
    uniform(-0.05, 0.05) as Keras does. Float ids are cast to int, as Keras does."""

    def __init__(self, input_dim, output_dim, **kwargs):
        super().__init__(**kwargs)
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.embedding = nn.Embedding(self.input_dim, self.output_dim, dtype=self.dtype)
        init.uniform_(self.embedding.weight, -0.05, 0.05)
        self._mark_built()

    def call(self, inputs):
        if inputs.is_floating_point():
            inputs = inputs.long()
        return self.embedding(inputs)

    def _keras_weights(self):
        return [KerasWeight(self.embedding.weight)]

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim, "output_dim": self.output_dim}


class LayerNormalization(Layer):
    """Normalize the last axis (size taken from the first call), with Keras's default ``epsilon=1e-3``."""

    def __init__(self, axis=-1, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        if axis != -1:
            raise ValueError("LayerNormalization normalizes the last axis (axis=-1)")
        self.axis, self.epsilon = -1, float(epsilon)
        self.norm = None

    def build(self, input_shape):
        self.norm = nn.LayerNorm(input_shape[-1], eps=self.epsilon, dtype=self.dtype)
        self._mark_built()

    def call(self, inputs):
        if self.norm is None:
            self.build(tuple(inputs.shape))
        return self.norm(inputs)

    def _keras_weights(self):  # gamma, beta
        return [] if self.norm is None else [KerasWeight(self.norm.weight), KerasWeight(self.norm.bias)]

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon}
