"""``keras.layers.Layer``: the base of every Keras layer and model, an ``nn.Module`` with Keras's names.

What it adds to ``nn.Module``:

- a ``name`` (``"dense"``, ``"dense_1"``... unique per process, as Keras names them), ``trainable``, ``built``;
- ``build(input_shape)``: a layer that defines it gets it called with its first input's shape (batch first)
  before the first call, as Keras does; ``Dense(64)`` learns its input size that way;
- calls on symbolic ``KerasTensor`` inputs (``keras.Input``), which record the functional graph;
- ``get_config()`` / ``from_config(config)``: the constructor arguments as JSON-able values. A subclass that
  does not define ``get_config`` gets one made from the arguments it was constructed with, when they are plain
  values (numbers, strings, bools, None, and lists or dicts of them), as Keras 3 does; otherwise
  ``get_config`` raises NotImplementedError saying so;
- ``get_weights()`` / ``set_weights(list of arrays)`` in Keras's layouts (a Dense kernel is ``(in, units)``),
  with shape checks naming the shapes.
"""

import collections
import inspect
import re

import numpy as np

from ... import nn
from ..._creation import tensor
from ..._tensor import Tensor
from ...autograd import no_grad
from .. import keras_tensor, tree

_NAME_COUNTS = collections.Counter()
_PLAIN = (bool, int, float, str, type(None))


def unique_name(prefix):
    """``prefix``, then ``prefix_1``, ``prefix_2``... : Keras's automatic names."""
    n = _NAME_COUNTS[prefix]
    _NAME_COUNTS[prefix] += 1
    return prefix if n == 0 else f"{prefix}_{n}"


def snake_case(name):
    """``"LayerNormalization"`` -> ``"layer_normalization"``, ``"DNN"`` -> ``"dnn"`` (Keras's rule)."""
    name = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def is_plain(value):
    """A value that JSON stores as itself: numbers, strings, bools, None, and lists, tuples, str-keyed dicts of them."""
    if isinstance(value, _PLAIN):
        return not isinstance(value, float) or np.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_plain(v) for k, v in value.items())
    return False


def shape_of(x):
    """The shape structure of a call's input: a tuple for a tensor, a list or dict of them for several."""
    if isinstance(x, dict):
        return {k: shape_of(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [shape_of(v) for v in x]
    return tuple(x.shape) if hasattr(x, "shape") else None


class Layer(nn.Module):
    """Base of Keras layers: subclasses define ``call(inputs)`` (the forward pass) and may define
    ``build(input_shape)`` to create weights once the input shape is known.

    Args:
        name: the layer's name (unique names are made from the class name by default); no ``/`` or ``.``.
        trainable: False freezes the layer's weights (``requires_grad`` off, also for weights built later).
        dtype: the weights' dtype (``"float32"`` by default, or ``"float64"``).
        input_shape: the per-sample input shape, as in ``Dense(64, input_shape=(784,))``: makes a Sequential
            model whose first layer it is built at once.

    Example::

        class Scale(keras.layers.Layer):
            def __init__(self, factor, **kwargs):
                super().__init__(**kwargs)
                self.factor = factor

            def call(self, inputs):  # (B, *) -> (B, *)
                return inputs * self.factor
    """

    _build_before_call = True  # models build by calling themselves, so they opt out

    def __new__(cls, *args, **kwargs):
        obj = super().__new__(cls)
        object.__setattr__(obj, "_auto_config", _constructor_arguments(cls, args, kwargs))
        return obj

    def __init__(self, *, name=None, trainable=True, dtype=None, input_shape=None, input_dim=None, **kwargs):
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to {type(self).__name__}: {kwargs}")
        super().__init__()
        if name is not None and (not isinstance(name, str) or not name or "/" in name or "." in name):
            raise ValueError(f"a layer name must be a non-empty string without '/' or '.', got {name!r}")
        self.name = name or unique_name(snake_case(type(self).__name__))
        self.dtype = None if dtype is None else str(getattr(dtype, "name", dtype))
        if self.dtype not in (None, "float32", "float64"):
            raise ValueError(f"{type(self).__name__}: dtype must be 'float32' or 'float64', got {dtype!r}")
        self.built = False
        self._trainable = bool(trainable)
        self._inbound_nodes = []
        if input_dim is not None and input_shape is None:
            input_shape = (input_dim,)
        self._input_shape_arg = None if input_shape is None else tuple(input_shape)

    # ----- calling -----
    def __call__(self, *args, **kwargs):
        if keras_tensor.any_keras_tensor(args, kwargs):
            return keras_tensor.symbolic_call(self, args, kwargs)
        if args and isinstance(args[0], np.ndarray):  # Keras layers take numpy data too
            args = (as_tensor(args[0]),) + args[1:]
        if not self.built and self._build_before_call and type(self).build is not Layer.build and args:
            self.build(shape_of(args[0]))
        out = super().__call__(*args, **kwargs)
        if not self.built:
            self._mark_built()
        return out

    def forward(self, *args, **kwargs):
        return self.call(*args, **kwargs)

    def call(self, inputs):
        raise NotImplementedError(f"{type(self).__name__} must implement call()")

    def build(self, input_shape):
        """Create the weights for inputs of ``input_shape`` (batch axis first, ``None`` where unknown). The base
        runs the layer once on zeros of that shape, which builds every sublayer."""
        from ..model import zeros_for

        keras_tensor._run_in_eval(self, (zeros_for(input_shape),), {})
        self._mark_built()

    def _mark_built(self):
        self.built = True
        if not self._trainable:
            self.requires_grad_(False)

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)
        self.requires_grad_(self._trainable)

    # ----- configuration -----
    def get_config(self):
        """The arguments that rebuild this layer with ``from_config``: ``name``, ``trainable``, ``dtype`` and the
        layer's own. A subclass without its own ``get_config`` gets the plain arguments it was made with."""
        config = {"name": self.name, "trainable": self._trainable, "dtype": self.dtype or "float32"}
        if _overrides(type(self), "get_config"):
            return config  # a subclass's get_config adds its own to this base
        if type(self).__module__.startswith("bigcore.keras"):
            return config
        args = self.__dict__.get("_auto_config")
        if args is None:
            raise NotImplementedError(
                f"{type(self).__name__} was created with arguments that are not plain values (numbers, strings, "
                "bools, None, lists or dicts of them), so it must define get_config() to be saved: return the "
                "arguments its constructor takes, and define from_config(cls, config) if they differ")
        accepted = _accepted_arguments(type(self))
        return {**{k: v for k, v in config.items() if accepted is None or k in accepted}, **args}

    @classmethod
    def from_config(cls, config):
        """A new layer from ``get_config()``'s output."""
        try:
            return cls(**config)
        except TypeError as e:
            raise TypeError(f"Error when deserializing class {cls.__name__!r} using config={config}: {e}. Define "
                            f"{cls.__name__}.from_config(cls, config) when the constructor does not take the "
                            "config's keys") from None

    # ----- weights in Keras's layouts -----
    def _keras_weights(self):
        """This layer's weights as ``KerasWeight`` slots, in Keras's order. The base: its own parameters and
        persistent buffers as they are, then its children's."""
        return module_weights(self, own_mapping=False)

    def get_weights(self):
        """The layer's weights as numpy arrays, in Keras's order and layouts (empty before it is built)."""
        return [w.get() for w in self._keras_weights()]

    def set_weights(self, weights):
        """Set the weights from numpy arrays in Keras's order and layouts (as ``get_weights`` returns them).

        Raises:
            ValueError: a different number of arrays, or an array of the wrong shape (both shapes named).
        """
        set_keras_weights(self._keras_weights(), weights, f"layer {self.name!r}", self.built)

    @property
    def weights(self):
        """The layer's weight tensors (bigcore layouts), in Keras's order."""
        return [t for w in self._keras_weights() for t in w.tensors]

    @property
    def trainable_weights(self):
        return [t for t in self.weights if t.requires_grad]

    @property
    def non_trainable_weights(self):
        return [t for t in self.weights if not t.requires_grad]

    def count_params(self):
        """The number of weight values."""
        return int(sum(t.numel() for t in self.weights))


class KerasWeight:
    """One weight as Keras holds it: ``tensor``, or its transpose (``transpose=True``: a Dense kernel is
    ``(in, units)`` in Keras, ``(units, in)`` in bigcore as in PyTorch)."""

    def __init__(self, tensor, transpose=False):
        self.tensor, self.transpose = tensor, transpose
        self.tensors = [tensor]
        self.shape = tuple(reversed(tensor.shape)) if transpose else tuple(tensor.shape)

    def get(self):
        arr = self.tensor.detach().numpy()
        return np.ascontiguousarray(arr.T) if self.transpose else arr

    def set(self, value):
        value = np.ascontiguousarray(value.T if self.transpose else value)
        with no_grad():
            self.tensor.copy_(tensor(value, dtype=self.tensor.dtype))


class SummedBias(KerasWeight):
    """Keras's one LSTM bias for PyTorch's two (``bias_ih + bias_hh``); setting it puts it all in ``bias_ih``."""

    def __init__(self, b_ih, b_hh):
        super().__init__(b_ih)
        self.b_hh = b_hh
        self.tensors = [b_ih, b_hh]

    def get(self):
        return self.tensor.detach().numpy() + self.b_hh.detach().numpy()

    def set(self, value):
        super().set(value)
        with no_grad():
            self.b_hh.zero_()


def set_keras_weights(slots, weights, what, built=True):
    """Check ``weights`` (arrays) against ``slots`` (count and each shape), then set them all."""
    weights = [np.asarray(w) for w in weights]
    if len(weights) != len(slots):
        hint = "" if built or slots else " (it is not built yet: call it on data or build(input_shape) first)"
        raise ValueError(f"You called set_weights(weights) on {what} with a weight list of length {len(weights)}, "
                         f"but it was expecting {len(slots)} weights{hint}.")
    for i, (slot, w) in enumerate(zip(slots, weights)):
        if tuple(w.shape) != slot.shape:
            raise ValueError(f"{what}: weight {i} has shape {slot.shape}, which is not compatible with the provided "
                             f"weight shape {tuple(w.shape)}.")
    for slot, w in zip(slots, weights):
        slot.set(w)


def module_weights(module, own_mapping=True):
    """The weights of any module in Keras's order: a Keras layer's own mapping, else the module's parameters and
    persistent buffers (as they are) followed by its children's."""
    if own_mapping and isinstance(module, Layer):
        return module._keras_weights()
    out = [KerasWeight(p) for p in module._parameters.values() if p is not None]
    out += [KerasWeight(b) for n, b in module._buffers.items() if b is not None and n not in module._non_persistent]
    for child in module.children():
        out += module_weights(child)
    return out


def _overrides(cls, name):
    """Does ``cls`` (a Layer subclass) define ``name`` below the base classes of bigcore.keras?"""
    for klass in cls.__mro__:
        if klass.__module__.startswith("bigcore.keras"):
            return False
        if name in klass.__dict__:
            return True
    return False


def _accepted_arguments(cls):
    """The names ``cls.__init__`` takes, or None when it takes ``**kwargs``."""
    params = inspect.signature(cls.__init__).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params}


def _constructor_arguments(cls, args, kwargs):
    """The arguments ``cls(*args, **kwargs)`` was given, by name, when all are plain values; else None."""
    try:
        bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
    except TypeError:
        return None  # the constructor itself will say what is wrong
    out = {}
    for name, value in list(bound.arguments.items())[1:]:
        kind = inspect.signature(cls.__init__).parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            if value:
                return None
            continue
        if kind is inspect.Parameter.VAR_KEYWORD:
            out.update(value)
            continue
        out[name] = value
    if not all(is_plain(v) for v in out.values()):
        return None
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def as_tensor(x):
    """A Tensor from array-like data (float64 arrays become float32, as Keras computes); tensors as they are."""
    if x is None or isinstance(x, Tensor):
        return x
    arr = np.asarray(x)
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    return tensor(arr)


def map_tensors(x):
    """``as_tensor`` on every leaf of a nested structure. A list or tuple holding no array or tensor anywhere
    (``[0, 2, 1]``, ``[[1, 2], [3, 4]]``) is one array of data, not several inputs."""
    if isinstance(x, (list, tuple)) and not any(isinstance(v, (np.ndarray, Tensor, dict)) for v in tree.flatten(x)):
        return as_tensor(x)
    return tree.map_structure(as_tensor, x)
