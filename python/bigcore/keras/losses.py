"""Keras losses, by name or class. Probability inputs are clipped to ``[1e-7, 1 - 1e-7]`` before the log, as
Keras does; ``from_logits=True`` uses the fused, stable forms."""

import numpy as np

from ..nn import functional as F

EPSILON = 1e-7


def _pick(probs, labels):
    """``probs[i, labels[i]]`` for probs ``(N, C)`` and int labels ``(N,)``, as one differentiable gather."""
    c = probs.shape[-1]
    ids = labels.numpy().reshape(-1)
    if ids.size and (ids.min() < 0 or ids.max() >= c):
        from ..errors import OutOfRangeError

        bad = int(ids[(ids < 0) | (ids >= c)][0])
        raise OutOfRangeError(f"sparse_categorical_crossentropy: label {bad} is out of range for {c} classes")
    return probs.reshape(-1)[np.arange(ids.size, dtype=np.int64) * c + ids]


class Loss:
    name = "loss"

    def __call__(self, y_true, y_pred):
        raise NotImplementedError


class SparseCategoricalCrossentropy(Loss):
    """Integer labels against probabilities (or logits with ``from_logits=True``)."""

    name = "sparse_categorical_crossentropy"

    def __init__(self, from_logits=False):
        self.from_logits = from_logits

    def __call__(self, y_true, y_pred):
        y_true = y_true.long() if y_true.is_floating_point() else y_true
        if self.from_logits:
            return F.cross_entropy(y_pred, y_true.reshape(-1))
        p = _pick(y_pred, y_true)  # the probability of each sample's label
        return -(p.clamp(EPSILON, 1 - EPSILON).log()).mean()


class CategoricalCrossentropy(Loss):
    """One-hot (or probability) labels against probabilities (or logits)."""

    name = "categorical_crossentropy"

    def __init__(self, from_logits=False):
        self.from_logits = from_logits

    def __call__(self, y_true, y_pred):
        y_true = y_true.to(y_pred.dtype)
        if self.from_logits:
            return F.cross_entropy(y_pred, y_true)
        p = y_pred / y_pred.sum(-1, keepdim=True)
        return -(y_true * p.clamp(EPSILON, 1 - EPSILON).log()).sum(-1).mean()


class BinaryCrossentropy(Loss):
    """0/1 labels against probabilities (or logits)."""

    name = "binary_crossentropy"

    def __init__(self, from_logits=False):
        self.from_logits = from_logits

    def __call__(self, y_true, y_pred):
        y_true = y_true.to(y_pred.dtype).reshape(*y_pred.shape)
        if self.from_logits:
            return F.binary_cross_entropy_with_logits(y_pred, y_true)
        p = y_pred.clamp(EPSILON, 1 - EPSILON)
        return -(y_true * p.log() + (1 - y_true) * (1 - p).log()).mean()


class MeanSquaredError(Loss):
    name = "mean_squared_error"

    def __call__(self, y_true, y_pred):
        return F.mse_loss(y_pred, y_true.to(y_pred.dtype).reshape(*y_pred.shape))


class MeanAbsoluteError(Loss):
    name = "mean_absolute_error"

    def __call__(self, y_true, y_pred):
        return (y_pred - y_true.to(y_pred.dtype).reshape(*y_pred.shape)).abs().mean()


_BY_NAME = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
}


def get(loss):
    """A loss from a Keras name, a Loss instance, or any callable ``(y_true, y_pred) -> scalar tensor``."""
    if isinstance(loss, str):
        if loss not in _BY_NAME:
            raise ValueError(f"unknown loss {loss!r}; use one of {sorted(_BY_NAME)}")
        return _BY_NAME[loss]()
    if callable(loss):
        return loss
    raise TypeError(f"loss must be a name or a callable, got {type(loss).__name__}")
