"""Keras-style layers. Sizes of inputs are inferred at the first call (``Dense(128)`` needs no input size), and
defaults follow Keras (Glorot-uniform kernels, zero biases, ``LayerNormalization(epsilon=1e-3)``)."""

from .. import nn
from ..nn import functional as F
from ..nn import init

_ACTIVATIONS = {
    None: lambda x: x,
    "linear": lambda x: x,
    "relu": F.relu,
    "sigmoid": F.sigmoid,
    "tanh": F.tanh,
    "gelu": F.gelu,
    "softmax": lambda x: F.softmax(x, -1),
    "log_softmax": lambda x: F.log_softmax(x, -1),
}


def get_activation(activation):
    """An activation by Keras name (``"relu"``, ``"softmax"``, ...), a callable, or None for the identity."""
    if callable(activation):
        return activation
    if activation not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; use one of {sorted(k for k in _ACTIVATIONS if k)}")
    return _ACTIVATIONS[activation]


class Layer(nn.Module):
    """Base of Keras layers: ``call(inputs)`` is the forward pass."""

    def forward(self, inputs):
        return self.call(inputs)

    def call(self, inputs):
        raise NotImplementedError(f"{type(self).__name__} must implement call()")


class Dense(Layer):
    """``activation(inputs @ kernel + bias)`` with ``units`` outputs; the input size is taken from the first call.

    Parameters are stored PyTorch-style as ``weight`` ``(units, in_features)`` and ``bias`` ``(units,)``.
    """

    def __init__(self, units, activation=None, use_bias=True):
        super().__init__()
        if int(units) <= 0:
            raise ValueError(f"units must be positive, got {units}")
        self.units, self.use_bias = int(units), bool(use_bias)
        self.activation_name = activation if isinstance(activation, str) or activation is None else getattr(activation, "__name__", "custom")
        self.activation = get_activation(activation)
        self.linear = None

    def build(self, in_features):
        self.linear = nn.Linear(in_features, self.units, bias=self.use_bias)
        init.xavier_uniform_(self.linear.weight)
        if self.use_bias:
            init.zeros_(self.linear.bias)

    def call(self, inputs):
        if self.linear is None:
            self.build(inputs.shape[-1])
        return self.activation(self.linear(inputs))

    def extra_repr(self):
        return f"units={self.units}, activation={self.activation_name}"


class Flatten(Layer):
    """Flatten everything but the batch dim."""

    def call(self, inputs):
        return inputs.flatten(1) if inputs.ndim > 1 else inputs.unsqueeze(1)


class Dropout(Layer):
    """Drop a fraction ``rate`` of the inputs while training."""

    def __init__(self, rate):
        super().__init__()
        if not 0 <= rate < 1:
            raise ValueError(f"rate must be in [0, 1), got {rate}")
        self.rate = float(rate)

    def call(self, inputs):
        return F.dropout(inputs, self.rate, self.training)


class Activation(Layer):
    """Apply an activation by name."""

    def __init__(self, activation):
        super().__init__()
        self.activation = get_activation(activation)

    def call(self, inputs):
        return self.activation(inputs)


class Embedding(Layer):
    """``Embedding(input_dim, output_dim)``: int ids to vectors (uniform(-0.05, 0.05) init, as Keras)."""

    def __init__(self, input_dim, output_dim):
        super().__init__()
        self.embedding = nn.Embedding(input_dim, output_dim)
        init.uniform_(self.embedding.weight, -0.05, 0.05)

    def call(self, inputs):
        return self.embedding(inputs)


class LayerNormalization(Layer):
    """Normalize the last axis (size taken from the first call), Keras's default ``epsilon=1e-3``."""

    def __init__(self, axis=-1, epsilon=1e-3):
        super().__init__()
        if axis != -1:
            raise ValueError("LayerNormalization normalizes the last axis (axis=-1)")
        self.epsilon = float(epsilon)
        self.norm = None

    def call(self, inputs):
        if self.norm is None:
            self.norm = nn.LayerNorm(inputs.shape[-1], eps=self.epsilon)
        return self.norm(inputs)


class LSTM(Layer):
    """``LSTM(units, return_sequences=False, return_state=False)`` over batch-first input ``(B, T, features)``;
    the input size is taken from the first call. Returns the last output ``(B, units)``, or all of them
    ``(B, T, units)``, plus ``[h, c]`` with ``return_state``."""

    def __init__(self, units, return_sequences=False, return_state=False):
        super().__init__()
        self.units, self.return_sequences, self.return_state = int(units), return_sequences, return_state
        self.lstm = None

    def call(self, inputs):
        if self.lstm is None:
            self.lstm = nn.LSTM(inputs.shape[-1], self.units, batch_first=True)
        out, (h, c) = self.lstm(inputs)
        result = out if self.return_sequences else out[:, -1]
        return (result, h[0], c[0]) if self.return_state else result
