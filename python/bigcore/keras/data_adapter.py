"""The data ``fit``, ``evaluate`` and ``predict`` accept, as Keras 3 does, turned into batches
``(x, y, sample_weight)`` of tensors:

- arrays (numpy arrays, tensors, anything ``np.asarray`` takes) for ``x``, ``y`` and ``sample_weight``, each a
  single array, a list (several inputs or outputs, in order) or a dict keyed by input / output name; all with the
  same number of samples. Batched here, shuffled each epoch when asked.
- a ``bigcore.data.DataLoader`` or any other iterable of batches, or a Python generator: each batch ``x``,
  ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``; ``y`` must then be None. A re-iterable source (a
  DataLoader, a list) starts again each epoch; a generator is drawn from until it ends, and with
  ``steps_per_epoch`` that many batches make an epoch (running out stops training with a warning, as in Keras).

``class_weight`` (a dict class -> weight, single output only) becomes per-sample weights from the labels: the
weight of each integer label, or of the argmax of one-hot labels (classes not in the dict weigh 1).
"""

import itertools
import math
import warnings

import numpy as np

from .. import _core
from .._tensor import _wrap
from . import tree
from .layers.layer import as_tensor, map_tensors


def unpack_x_y_sample_weight(data):
    """A batch from an iterable as ``(x, y, sample_weight)``."""
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return data, None, None
    if len(data) == 1:
        return data[0], None, None
    if len(data) == 2:
        return data[0], data[1], None
    if len(data) == 3:
        return data
    raise ValueError("Data is expected to be in format `x`, `(x,)`, `(x, y)`, or `(x, y, sample_weight)`, found a "
                     f"tuple of {len(data)} items")


def _is_array_structure(x):
    """Arrays (possibly a list or dict of them), as opposed to an iterable of batches."""
    if x is None or hasattr(x, "shape") or isinstance(x, (dict, list, tuple, int, float)):
        return True
    return False


def class_weights_for(y, class_weight):
    """Per-sample weights (numpy, float32) for labels ``y`` from ``class_weight``."""
    labels = y.numpy() if hasattr(y, "numpy") else np.asarray(y)
    if labels.ndim >= 2 and labels.shape[-1] > 1 and labels.dtype.kind == "f":
        labels = labels.argmax(-1)  # one-hot
    elif labels.ndim >= 2 and labels.shape[-1] == 1:
        labels = labels.reshape(labels.shape[:-1])
    labels = np.round(labels).astype(np.int64)
    weights = np.ones(labels.shape, np.float32)
    for cls, w in class_weight.items():
        weights[labels == int(cls)] = float(w)
    return weights


class ArrayAdapter:
    """Nested arrays with one sample count, cut into batches of ``batch_size`` rows."""

    one_shot = False

    def __init__(self, x, y=None, sample_weight=None, class_weight=None, batch_size=32):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.x, self.y, self.sample_weight = map_tensors(x), map_tensors(y), map_tensors(sample_weight)
        self.class_weight, self.batch_size = class_weight, int(batch_size)
        for name, v in (("x", self.x), ("y", self.y), ("sample_weight", self.sample_weight)):
            if v is not None and any(t.ndim == 0 for t in tree.flatten(v)):
                raise ValueError(f"{name} holds a scalar where arrays with a sample axis are expected (a list is read "
                                 "as several inputs or outputs: pass np.array(...) for one)")
        sizes = {name: [len(t) for t in tree.flatten(v)] for name, v in
                 (("x", self.x), ("y", self.y), ("sample_weight", self.sample_weight)) if v is not None}
        counts = {n for v in sizes.values() for n in v}
        if len(counts) > 1:
            detail = " ".join(f"'{k}' sizes: {', '.join(map(str, v))}" for k, v in sizes.items())
            raise ValueError(f"Data cardinality is ambiguous: x and y have different numbers of samples. Make sure "
                             f"all arrays contain the same number of samples. {detail}")
        if not counts:
            raise ValueError("no data: x is empty")
        self.size = counts.pop()
        self.num_batches = -(-self.size // self.batch_size)

    def split(self, validation_split):
        """``(training part, validation part)``: the last ``validation_split`` of the samples validate, as Keras
        cuts them (before any shuffling)."""
        if not 0 < validation_split < 1:
            raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
        n = self.size
        cut = int(math.floor(n * (1.0 - validation_split)))  # Keras 3's split point
        if cut == 0 or cut == n:
            raise ValueError(f"Training data contains {n} samples, which is not sufficient to split it into a "
                             f"validation and training set as specified by `validation_split={validation_split}`. "
                             "Either provide more data, or a different value for the `validation_split` argument.")
        parts = []
        for rows in (slice(0, cut), slice(cut, n)):
            part = object.__new__(ArrayAdapter)
            part.__dict__.update(self.__dict__)
            part.x, part.y, part.sample_weight = (None if v is None else tree.map_structure(lambda t, r=rows: t[r], v)
                                                  for v in (self.x, self.y, self.sample_weight))
            part.size = rows.stop - rows.start
            part.num_batches = -(-part.size // self.batch_size)
            parts.append(part)
        return parts[0], parts[1]

    def iterator(self, shuffle=False, generator=None):
        """Index arrays of one pass over the samples (shuffled with bigcore's seeded generator when asked)."""
        if shuffle:
            order = _wrap(_core.randperm(self.size, generator and generator._g)).numpy()
        else:
            order = np.arange(self.size)
        return (order[s : s + self.batch_size] for s in range(0, self.size, self.batch_size))

    def take(self, idx):
        """The batch ``(x, y, sample_weight)`` of the rows ``idx``."""
        x, y, w = (None if v is None else tree.map_structure(lambda t: t[idx], v)
                   for v in (self.x, self.y, self.sample_weight))
        if self.class_weight is not None:
            w = as_tensor(class_weights_for(y, self.class_weight))
        return x, y, w


class IterableAdapter:
    """Batches from a DataLoader, an iterable or a generator."""

    def __init__(self, source, class_weight=None):
        self.source, self.class_weight = source, class_weight
        self.one_shot = iter(source) is source  # a generator or iterator: drawn from, never restarted
        self.num_batches = len(source) if hasattr(source, "__len__") else None
        self.size = None
        self._pending = None

    def peek(self):
        """The first batch (None when there is none), which the first pass then still yields."""
        it = iter(self.source)
        try:
            first = next(it)
        except StopIteration:
            return None
        self._pending = itertools.chain([first], it)
        return first

    def iterator(self, shuffle=False, generator=None):
        if self._pending is not None:
            it, self._pending = self._pending, None
            return it
        return iter(self.source)

    def take(self, batch):
        x, y, w = unpack_x_y_sample_weight(batch)
        x, y, w = map_tensors(x), map_tensors(y), map_tensors(w)
        if self.class_weight is not None:
            if w is not None:
                raise ValueError("You cannot `class_weight` and `sample_weight` at the same time.")
            w = as_tensor(class_weights_for(y, self.class_weight))
        return x, y, w


def adapter_for(x, y=None, sample_weight=None, class_weight=None, batch_size=None, what="fit"):
    """The adapter for ``fit``/``evaluate``/``predict``'s data (see the module docstring)."""
    if class_weight is not None:
        if sample_weight is not None:
            raise ValueError("You cannot `class_weight` and `sample_weight` at the same time.")
        if not isinstance(class_weight, dict):
            raise ValueError(f"class_weight must be a dict of class -> weight, got {type(class_weight).__name__}")
        if tree.is_nested(y):
            raise ValueError("`class_weight` is only supported for Models with a single output.")
    if x is None:
        raise ValueError(f"{what} needs data: x is None")
    if _is_array_structure(x):
        return ArrayAdapter(x, y, sample_weight, class_weight, 32 if batch_size is None else batch_size)
    try:
        iter(x)
    except TypeError:
        raise TypeError(f"{what}: x must be arrays (or a list or dict of them), a DataLoader, an iterable of "
                        f"batches or a generator; got {type(x).__name__}") from None
    if y is not None or sample_weight is not None:
        raise ValueError(f"{what}: when x is a DataLoader, an iterable or a generator, its batches hold the labels "
                         "(and sample weights): y and sample_weight must be None")
    if batch_size is not None:
        raise ValueError(f"{what}: batch_size must not be given with a DataLoader, an iterable or a generator: its "
                         "batches already have their size")
    return IterableAdapter(x, class_weight)


class EpochIterator:
    """The batches of each epoch from an adapter, ``steps`` at a time when given: a re-iterable source starts
    again once used up, a one-shot source (a generator) that runs out sets ``ran_out``."""

    def __init__(self, adapter, steps=None, shuffle=False, generator=None):
        if steps is not None and (isinstance(steps, bool) or int(steps) != steps or steps <= 0):
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
        self.adapter, self.steps, self.shuffle, self.generator = adapter, steps, shuffle, generator
        self.num_steps = steps if steps is not None else adapter.num_batches
        self.ran_out, self._it = False, None

    def __iter__(self):
        a = self.adapter
        if self.steps is None:
            count = 0
            for batch in a.iterator(self.shuffle, self.generator):
                count += 1
                yield batch
            if a.one_shot and count == 0:
                self._out_of_data()
            return
        if self._it is None:
            self._it = a.iterator(self.shuffle, self.generator)
        for _ in range(self.steps):
            try:
                batch = next(self._it)
            except StopIteration:
                self._it = None
                if a.one_shot:
                    self._out_of_data()
                return
            yield batch

    def _out_of_data(self):
        self.ran_out = True
        warnings.warn("Your input ran out of data; interrupting training. Make sure that your dataset or generator "
                      "can generate at least `steps_per_epoch * epochs` batches.", stacklevel=4)
