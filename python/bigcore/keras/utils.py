"""``keras.utils``: ``to_categorical`` (integer labels to one-hot rows)."""

import numpy as np


def to_categorical(x, num_classes=None):
    """One-hot encode integer labels: shape ``(N, ...)`` (a trailing axis of 1 dropped) -> ``(N, ..., num_classes)``,
    float32.

    Args:
        x: integer class labels (array-like; whole-number floats too), each in ``[0, num_classes)``.
        num_classes: the number of classes (default ``max(x) + 1``).

    Example::

        keras.utils.to_categorical([0, 2, 1], num_classes=3)  # [[1, 0, 0], [0, 0, 1], [0, 1, 0]]
    """
    x = np.asarray(x.numpy() if hasattr(x, "numpy") else x)
    if x.size and x.dtype.kind == "f" and not np.all(x == np.round(x)):
        raise ValueError("to_categorical: labels must be whole numbers")
    if x.dtype.kind not in "iuf" and x.size:
        raise ValueError(f"to_categorical: labels must be integers, got dtype {x.dtype}")
    x = x.astype(np.int64)
    if x.ndim > 1 and x.shape[-1] == 1:
        x = x.reshape(x.shape[:-1])
    if num_classes is None:
        num_classes = int(x.max()) + 1 if x.size else 0
    num_classes = int(num_classes)
    if x.size and (x.min() < 0 or x.max() >= num_classes):
        bad = int(x[(x < 0) | (x >= num_classes)].reshape(-1)[0])
        raise ValueError(f"to_categorical: label {bad} is out of range for num_classes={num_classes}")
    out = np.zeros(x.shape + (num_classes,), np.float32)
    np.put_along_axis(out, x[..., None], 1.0, axis=-1)
    return out
