"""Keras metrics, computed with numpy on the predictions and averaged over every value seen: per-sample functions
(``sparse_categorical_accuracy(y_true, y_pred)``...), ``Metric`` objects with ``update_state / result /
reset_state``, and ``get`` by name. ``"accuracy"`` picks the right kind from the shapes, as Keras 3 does: binary
when the outputs have one column, sparse when the labels have fewer axes than the outputs (or one column against
several), categorical otherwise.

Labels are checked against the outputs with the losses' rules (a ValueError naming both shapes). With a
``sample_weight`` a metric is the weighted mean ``sum(w * value) / sum(w)``. A custom metric is a function
``(y_true, y_pred) -> per-sample values`` on numpy arrays.
"""

import numpy as np

from .losses import same_shape, sparse_labels_shape


def _np(x):
    return x.detach().numpy() if hasattr(x, "detach") else np.asarray(x)


def sparse_categorical_accuracy(y_true, y_pred):
    """1.0 where ``argmax(y_pred)`` is the label, per label position."""
    y_true, y_pred = _np(y_true), _np(y_pred)
    shape = sparse_labels_shape(y_true.shape, y_pred.shape, "sparse_categorical_accuracy")
    return (y_pred.argmax(-1) == y_true.reshape(shape)).astype(np.float64)


def categorical_accuracy(y_true, y_pred):
    """1.0 where ``argmax(y_pred) == argmax(y_true)`` (one-hot labels)."""
    y_true, y_pred = _np(y_true), _np(y_pred)
    same_shape(y_true.shape, y_pred.shape, "categorical_accuracy", allow_trailing_one=False)
    return (y_pred.argmax(-1) == y_true.argmax(-1)).astype(np.float64)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """The fraction of values on the right side of ``threshold``, per sample (mean over the last axis)."""
    y_true, y_pred = _np(y_true), _np(y_pred)
    same_shape(y_true.shape, y_pred.shape, "binary_accuracy")
    hits = ((y_pred > threshold) == (y_true.reshape(y_pred.shape) > 0.5)).astype(np.float64)
    return hits.mean(-1) if hits.ndim >= 2 else hits


def mean_squared_error(y_true, y_pred):
    y_true, y_pred = _np(y_true), _np(y_pred)
    same_shape(y_true.shape, y_pred.shape, "mean_squared_error")
    d = (y_pred - y_true.reshape(y_pred.shape)) ** 2
    return d.mean(-1) if d.ndim >= 2 else d


def mean_absolute_error(y_true, y_pred):
    y_true, y_pred = _np(y_true), _np(y_pred)
    same_shape(y_true.shape, y_pred.shape, "mean_absolute_error")
    d = np.abs(y_pred - y_true.reshape(y_pred.shape))
    return d.mean(-1) if d.ndim >= 2 else d


class Metric:
    """Base of metrics: ``update_state(y_true, y_pred, sample_weight=None)`` accumulates, ``result()`` reads,
    ``reset_state()`` clears."""

    def __init__(self, name=None):
        self.name = name or type(self).__name__.lower()

    def update_state(self, y_true, y_pred, sample_weight=None):
        raise NotImplementedError

    def result(self):
        raise NotImplementedError

    def reset_state(self):
        raise NotImplementedError


class MeanMetricWrapper(Metric):
    """The (weighted) mean of ``fn(y_true, y_pred, **kwargs)`` over every value seen."""

    def __init__(self, fn, name=None, **kwargs):
        super().__init__(name or getattr(fn, "__name__", "metric"))
        self.fn, self.kwargs = fn, kwargs
        self.reset_state()

    def update_state(self, y_true, y_pred, sample_weight=None):
        values = np.asarray(self.fn(_np(y_true), _np(y_pred), **self.kwargs), np.float64)
        if sample_weight is None:
            self.total += float(values.sum())
            self.count += values.size
            return
        w = np.asarray(_np(sample_weight), np.float64)
        while w.ndim > values.ndim and w.shape[-1] == 1:
            w = w.reshape(w.shape[:-1])
        w = w.reshape(w.shape + (1,) * (values.ndim - w.ndim))
        try:
            w = np.broadcast_to(w, values.shape)
        except ValueError:
            raise ValueError(f"metric {self.name!r}: sample_weight of shape {w.shape} does not fit its values of "
                             f"shape {values.shape}") from None
        self.total += float((values * w).sum())
        self.count += float(w.sum())

    def result(self):
        return self.total / self.count if self.count else 0.0

    def reset_state(self):
        self.total, self.count = 0.0, 0.0


class SparseCategoricalAccuracy(MeanMetricWrapper):
    def __init__(self, name="sparse_categorical_accuracy"):
        super().__init__(sparse_categorical_accuracy, name)


class CategoricalAccuracy(MeanMetricWrapper):
    def __init__(self, name="categorical_accuracy"):
        super().__init__(categorical_accuracy, name)


class BinaryAccuracy(MeanMetricWrapper):
    def __init__(self, name="binary_accuracy", threshold=0.5):
        super().__init__(binary_accuracy, name, threshold=threshold)


class MeanSquaredError(MeanMetricWrapper):
    def __init__(self, name="mean_squared_error"):
        super().__init__(mean_squared_error, name)


class MeanAbsoluteError(MeanMetricWrapper):
    def __init__(self, name="mean_absolute_error"):
        super().__init__(mean_absolute_error, name)


_BY_NAME = {
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "binary_accuracy": BinaryAccuracy,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
}
_CLASSES = {c.__name__: c for c in set(_BY_NAME.values())}


def accuracy_for(y_true_shape, y_pred_shape, name="accuracy", threshold=0.5):
    """The accuracy that fits these shapes (Keras 3's rule; see the module docstring)."""
    t, p = tuple(y_true_shape), tuple(y_pred_shape)
    if p and p[-1] == 1:
        return BinaryAccuracy(name, threshold)
    if len(t) < len(p) or (t and t[-1] == 1 and p and p[-1] > 1):
        return SparseCategoricalAccuracy(name)
    return CategoricalAccuracy(name)


def get(identifier):
    """A metric from a name (``"mae"``, ``"sparse_categorical_accuracy"``, a class name...), a ``Metric``, or a
    function ``(y_true, y_pred) -> per-sample values`` on numpy arrays. ``"accuracy"`` is chosen by
    ``accuracy_for`` once the shapes are known."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier) or _CLASSES.get(identifier)
        if cls is not None:
            return cls(name=identifier)  # logged under the name given, as Keras does
        from .saving import lookup_custom_object

        found = lookup_custom_object(identifier)
        if found is not None:
            return get(found() if isinstance(found, type) else found)
        raise ValueError(f"unknown metric {identifier!r}; use 'accuracy' or one of {sorted(_BY_NAME)}")
    if callable(identifier):
        return MeanMetricWrapper(identifier)
    raise TypeError(f"a metric must be a name, a Metric or a callable, got {type(identifier).__name__}")
