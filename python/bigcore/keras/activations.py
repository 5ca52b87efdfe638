"""Keras activations by name: ``keras.activations.get("relu")``; ``serialize`` gives the name back (for saved
configs). A callable that is not one of these is stored by its ``__name__`` and found again at load time among
``custom_objects``."""

from ..nn import functional as F


def linear(x):
    return x


def relu(x):
    return F.relu(x)


def sigmoid(x):
    return F.sigmoid(x)


def tanh(x):
    return F.tanh(x)


def gelu(x):
    return F.gelu(x)


def softmax(x, axis=-1):
    return F.softmax(x, axis)


def log_softmax(x, axis=-1):
    return F.log_softmax(x, axis)


_BY_NAME = {f.__name__: f for f in (linear, relu, sigmoid, tanh, gelu, softmax, log_softmax)}


def get(identifier):
    """An activation from a name (``"relu"``, ``"softmax"``...), a callable, or None (the identity)."""
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        if identifier in _BY_NAME:
            return _BY_NAME[identifier]
        from .saving import lookup_custom_object

        found = lookup_custom_object(identifier)
        if found is not None:
            return found
        raise ValueError(f"unknown activation {identifier!r}; use one of {sorted(_BY_NAME)}, a callable, or pass "
                         "a custom one in custom_objects when loading")
    if callable(identifier):
        return identifier
    raise TypeError(f"an activation must be a name or a callable, got {type(identifier).__name__}")


def serialize(activation):
    """The name an activation is saved under."""
    return getattr(activation, "__name__", type(activation).__name__)
