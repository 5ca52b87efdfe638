"""Keras metrics computed on numpy predictions and averaged over samples. ``"accuracy"`` picks the right kind
from the loss (sparse, categorical or binary), as Keras does."""

import numpy as np


def _sparse_acc(y, p):
    return (p.argmax(-1) == y.reshape(p.shape[:-1])).astype(np.float64)


def _cat_acc(y, p):
    return (p.argmax(-1) == y.argmax(-1)).astype(np.float64)


def _bin_acc(y, p, threshold=0.5):
    return ((p > threshold) == (y.reshape(p.shape) > 0.5)).astype(np.float64).reshape(len(p), -1).mean(1)


_FUNCS = {
    "sparse_categorical_accuracy": _sparse_acc,
    "categorical_accuracy": _cat_acc,
    "binary_accuracy": _bin_acc,
    "mae": lambda y, p: np.abs(p - y.reshape(p.shape)).reshape(len(p), -1).mean(1),
    "mse": lambda y, p: ((p - y.reshape(p.shape)) ** 2).reshape(len(p), -1).mean(1),
}


def resolve(name, loss):
    """``(display name, function(y_true, y_pred) -> per-sample values)`` for a metric name."""
    if callable(name):
        return getattr(name, "__name__", "metric"), name
    if name in ("accuracy", "acc"):
        lname = getattr(loss, "name", "")
        if lname == "sparse_categorical_crossentropy":
            return "accuracy", _sparse_acc
        if lname == "categorical_crossentropy":
            return "accuracy", _cat_acc
        if lname == "binary_crossentropy":
            threshold = 0.0 if getattr(loss, "from_logits", False) else 0.5
            return "accuracy", lambda y, p: _bin_acc(y, p, threshold)
        return "accuracy", _sparse_acc
    if name not in _FUNCS:
        raise ValueError(f"unknown metric {name!r}; use 'accuracy' or one of {sorted(_FUNCS)}")
    return name, _FUNCS[name]
