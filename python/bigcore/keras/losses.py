"""Keras losses: classes (``SparseCategoricalCrossentropy(from_logits=False)``...), the functions that give one
loss value per sample (``sparse_categorical_crossentropy(y_true, y_pred)``...), and ``get`` by name (snake case
or class name), instance or callable.

A ``Loss`` instance called as ``loss(y_true, y_pred, sample_weight=None)`` computes the per-sample values
(``call``), multiplies them by ``sample_weight`` (``(B,)``, or one weight per value, e.g. ``(B, T)`` for
sequence outputs) and reduces them as Keras 3 does: ``"sum_over_batch_size"`` (the default) divides the
weighted sum by the number of values, not by the sum of the weights; ``"sum"``, ``"mean_with_sample_weight"``
(divide by the sum of the weights) and ``"none"`` are the others.

Labels are checked against the outputs as Keras does, and a mismatch is a ValueError naming both shapes, never a
silent broadcast: sparse labels are ``y_pred.shape[:-1]`` (``(B,)`` or ``(B, 1)`` for ``(B, C)`` outputs;
``(B, T)`` for per-step outputs ``(B, T, C)``); one-hot labels are ``y_pred``'s shape; binary and regression
targets are ``y_pred``'s shape up to a trailing axis of size 1. Probability inputs are clipped to
``[1e-7, 1 - 1e-7]`` before the log, as Keras does; ``from_logits=True`` uses the fused, stable forms.
"""

import numpy as np

from .._tensor import Tensor
from ..errors import OutOfRangeError
from ..nn import functional as F
from .layers.layer import as_tensor, snake_case

EPSILON = 1e-7
_REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)


# ----- shape rules, shared with the metrics -----
def sparse_labels_shape(y_true_shape, y_pred_shape, what):
    """The shape sparse labels are read as (a trailing axis of 1 dropped), checked against ``y_pred_shape``."""
    y_true_shape, y_pred_shape = tuple(y_true_shape), tuple(y_pred_shape)
    shape = y_true_shape
    if len(shape) == len(y_pred_shape) and shape and shape[-1] == 1:
        shape = shape[:-1]
    if not y_pred_shape or shape != y_pred_shape[:-1]:
        hint = ""
        if len(y_pred_shape) > len(y_true_shape) + 1:
            hint = (" The outputs have more axes than one class axis beyond the labels: for one label per sample, "
                    "flatten the inputs first (keras.layers.Flatten()), or give one label per position.")
        raise ValueError(f"{what}: Arguments `target` and `output` must have the same shape up until the last "
                         f"dimension: target.shape={y_true_shape}, output.shape={y_pred_shape}.{hint}")
    return shape


def same_shape(y_true_shape, y_pred_shape, what, allow_trailing_one=True):
    """Check targets against outputs: the same shape, up to a trailing axis of size 1 when allowed."""
    a, b = tuple(y_true_shape), tuple(y_pred_shape)
    if a == b or (allow_trailing_one and (a == b + (1,) or b == a + (1,))):
        return
    raise ValueError(f"{what}: Arguments `target` and `output` must have the same shape. Received: "
                     f"target.shape={a}, output.shape={b}")


def _class_ids(y_true, shape, classes, what):
    """Sparse labels as int64 of ``shape``, checked to be whole numbers in ``[0, classes)``."""
    ids = y_true.numpy().reshape(shape)
    if ids.dtype.kind == "f":
        if not np.all(ids == np.round(ids)):
            raise ValueError(f"{what}: labels must be whole class numbers, got {ids[ids != np.round(ids)][0]}")
        ids = ids.astype(np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= classes):
        bad = int(ids[(ids < 0) | (ids >= classes)][0])
        raise OutOfRangeError(f"{what}: label {bad} is out of range for {classes} classes")
    return ids


def _mean_last(values):
    return values.mean(-1) if values.ndim >= 2 else values


def _regression_pair(y_true, y_pred, what):
    same_shape(y_true.shape, y_pred.shape, what)
    return y_true.to(y_pred.dtype).reshape(*y_pred.shape)


# ----- per-sample functions: (y_true, y_pred) -> values of shape y_pred.shape[:-1] -----
def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False):
    """``-log p[label]`` for integer labels ``(B, ...)`` against probabilities (or logits) ``(B, ..., C)``."""
    y_true, y_pred = as_tensor(y_true), as_tensor(y_pred)
    what = "sparse_categorical_crossentropy"
    shape = sparse_labels_shape(y_true.shape, y_pred.shape, what)
    c = y_pred.shape[-1]
    ids = _class_ids(y_true, shape, c, what).reshape(-1)
    if from_logits:
        from .._creation import tensor

        return F.cross_entropy(y_pred.reshape(-1, c), tensor(ids), reduction="none").reshape(*shape)
    picked = y_pred.reshape(-1)[np.arange(ids.size, dtype=np.int64) * c + ids]  # one differentiable gather
    return -(picked.clamp(EPSILON, 1 - EPSILON).log()).reshape(*shape)


def categorical_crossentropy(y_true, y_pred, from_logits=False):
    """``-sum(y_true * log p)`` over the last axis, for one-hot (or probability) labels shaped like ``y_pred``."""
    y_true, y_pred = as_tensor(y_true), as_tensor(y_pred)
    same_shape(y_true.shape, y_pred.shape, "categorical_crossentropy", allow_trailing_one=False)
    y_true = y_true.to(y_pred.dtype)
    if from_logits:
        return -(y_true * F.log_softmax(y_pred, -1)).sum(-1)
    p = y_pred / y_pred.sum(-1, keepdim=True)
    return -(y_true * p.clamp(EPSILON, 1 - EPSILON).log()).sum(-1)


def binary_crossentropy(y_true, y_pred, from_logits=False):
    """Binary cross-entropy of 0/1 targets, averaged over the last axis."""
    y_true, y_pred = as_tensor(y_true), as_tensor(y_pred)
    y_true = _regression_pair(y_true, y_pred, "binary_crossentropy")
    if from_logits:
        return _mean_last(F.binary_cross_entropy_with_logits(y_pred, y_true, reduction="none"))
    p = y_pred.clamp(EPSILON, 1 - EPSILON)
    return _mean_last(-(y_true * p.log() + (1 - y_true) * (1 - p).log()))


def mean_squared_error(y_true, y_pred):
    """``mean((y_true - y_pred) ** 2)`` over the last axis."""
    y_true, y_pred = as_tensor(y_true), as_tensor(y_pred)
    d = y_pred - _regression_pair(y_true, y_pred, "mean_squared_error")
    return _mean_last(d * d)


def mean_absolute_error(y_true, y_pred):
    """``mean(|y_true - y_pred|)`` over the last axis."""
    y_true, y_pred = as_tensor(y_true), as_tensor(y_pred)
    return _mean_last((y_pred - _regression_pair(y_true, y_pred, "mean_absolute_error")).abs())


# ----- reduction -----
def align_weights(values, sample_weight, what):
    """``sample_weight`` as a tensor that broadcasts against ``values``: ``(B,)`` weights are expanded over the
    other axes, a trailing axis of 1 is dropped; anything else that does not fit is a ValueError."""
    w = as_tensor(sample_weight).to(values.dtype)
    shape = tuple(w.shape)
    while len(shape) > values.ndim and shape[-1] == 1:
        shape = shape[:-1]
    shape = shape + (1,) * (values.ndim - len(shape))
    if len(shape) != values.ndim or any(s not in (1, v) for s, v in zip(shape, values.shape)) or (
            values.ndim and shape[0] != values.shape[0]):
        raise ValueError(f"{what}: sample_weight of shape {tuple(w.shape)} does not fit the losses of shape "
                         f"{tuple(values.shape)} (give one weight per sample, or one per loss value)")
    return w.reshape(*shape)


def reduce_weighted_values(values, sample_weight=None, reduction="sum_over_batch_size", what="loss"):
    """Weight the per-sample ``values`` and reduce them (see the module docstring)."""
    w = None
    if sample_weight is not None:
        w = align_weights(values, sample_weight, what)
        values = values * w
    if reduction in ("none", None):
        return values
    total = values.sum()
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight" and w is not None:
        return total / float(np.broadcast_to(w.numpy(), tuple(values.shape)).sum())
    n = values.numel()
    return total / n if n else total


# ----- classes -----
class Loss:
    """Base of Keras losses: subclasses define ``call(y_true, y_pred)`` giving per-sample values.

    Args:
        name: shown in logs (default: the class name in snake case).
        reduction: ``"sum_over_batch_size"`` (default), ``"sum"``, ``"mean"``, ``"mean_with_sample_weight"``,
            ``"none"``.
    """

    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None):
        if reduction not in _REDUCTIONS:
            raise ValueError(f"Invalid value for argument `reduction`. Expected one of {_REDUCTIONS}. "
                             f"Received: reduction={reduction}")
        self.name = name or snake_case(type(self).__name__)
        self.reduction = reduction

    def __call__(self, y_true, y_pred, sample_weight=None):
        values = self.call(as_tensor(y_true), as_tensor(y_pred))
        return reduce_weighted_values(values, sample_weight, self.reduction, self.name)

    def call(self, y_true, y_pred):
        raise NotImplementedError(f"{type(self).__name__} must implement call(y_true, y_pred)")

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class LossFunctionWrapper(Loss):
    """A loss from a function ``fn(y_true, y_pred, **kwargs)`` that returns one value per sample (or a scalar,
    which cannot be weighted per sample)."""

    def __init__(self, fn, reduction="sum_over_batch_size", name=None, **kwargs):
        super().__init__(name=name or getattr(fn, "__name__", "loss"), reduction=reduction)
        self.fn, self.fn_kwargs = fn, kwargs

    def call(self, y_true, y_pred):
        return self.fn(y_true, y_pred, **self.fn_kwargs)

    def __call__(self, y_true, y_pred, sample_weight=None):
        values = self.call(as_tensor(y_true), as_tensor(y_pred))
        if not isinstance(values, Tensor):
            raise TypeError(f"loss function {self.name!r} returned a {type(values).__name__}, not a tensor")
        if values.ndim == 0:
            if sample_weight is not None:
                raise ValueError(f"loss function {self.name!r} returns one value for the batch, so sample_weight "
                                 "cannot weight its samples: return one loss value per sample instead")
            return values
        return reduce_weighted_values(values, sample_weight, self.reduction, self.name)

    def get_config(self):
        return {**super().get_config(), **self.fn_kwargs}


class _FromLogits(LossFunctionWrapper):
    fn_default = None

    def __init__(self, from_logits=False, reduction="sum_over_batch_size", name=None):
        super().__init__(type(self).fn_default, reduction=reduction, name=name or self.fn_default.__name__,
                         from_logits=bool(from_logits))
        self.from_logits = bool(from_logits)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction, "from_logits": self.from_logits}


class SparseCategoricalCrossentropy(_FromLogits):
    """Integer labels ``(B, ...)`` against probabilities (or logits, ``from_logits=True``) ``(B, ..., C)``."""

    fn_default = staticmethod(sparse_categorical_crossentropy)


class CategoricalCrossentropy(_FromLogits):
    """One-hot (or probability) labels against probabilities (or logits) of the same shape."""

    fn_default = staticmethod(categorical_crossentropy)


class BinaryCrossentropy(_FromLogits):
    """0/1 targets against probabilities (or logits) of the same shape."""

    fn_default = staticmethod(binary_crossentropy)


class MeanSquaredError(LossFunctionWrapper):
    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error"):
        super().__init__(mean_squared_error, reduction=reduction, name=name)


class MeanAbsoluteError(LossFunctionWrapper):
    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_error"):
        super().__init__(mean_absolute_error, reduction=reduction, name=name)


_CLASSES = {c.__name__: c for c in (SparseCategoricalCrossentropy, CategoricalCrossentropy, BinaryCrossentropy,
                                     MeanSquaredError, MeanAbsoluteError)}
_BY_NAME = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
}


def get(identifier):
    """A loss from a Keras name (``"sparse_categorical_crossentropy"``, ``"mse"``...), a class name
    (``"SparseCategoricalCrossentropy"``), a saved config dict, a ``Loss``, or a callable
    ``(y_true, y_pred) -> per-sample values`` (wrapped so it can be weighted)."""
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier) or _CLASSES.get(identifier)
        if cls is not None:
            return cls()
        from .saving import lookup_custom_object

        found = lookup_custom_object(identifier)
        if found is not None:
            return get(found() if isinstance(found, type) else found)
        raise ValueError(f"unknown loss {identifier!r}; use one of {sorted(_BY_NAME)} or a class name "
                         f"{sorted(_CLASSES)}")
    if isinstance(identifier, dict):
        from .saving import deserialize_keras_object

        return deserialize_keras_object(identifier)
    if isinstance(identifier, Loss):
        return identifier
    if callable(identifier):
        return LossFunctionWrapper(identifier)
    raise TypeError(f"loss must be a name or a callable, got {type(identifier).__name__}")
