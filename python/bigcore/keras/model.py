"""``keras.Model``: a Layer with Keras's training API (``trainer.py``), ``build(input_shape)``, weights in Keras's
order, saving (``saving.py``), ``summary`` and ``export``.

``keras.Model(inputs, outputs)`` makes a functional model (``functional.py``); a subclass defines
``call(inputs)`` (or ``forward``). A Model is an ``nn.Module``, so everything in ``nn`` works on it. Layers that
learn their sizes from the data are built by the first call (``fit``, ``predict``, ``model(x)``) or by
``model.build(input_shape)``; the input shape seen first is recorded, so a saved model can be rebuilt.
"""

import numpy as np

from .. import _creation
from .._tensor import Tensor
from . import keras_tensor, tree
from .layers.layer import Layer, as_tensor, shape_of
from .trainer import Trainer


def _is_shape(s):
    return isinstance(s, (list, tuple)) and all(d is None or isinstance(d, (int, np.integer)) for d in s)


def zeros_for(input_shape, dtype=None):
    """A batch of zeros for an input shape (batch axis first; ``None`` -> 1), or a list / dict of them for a list
    / dict of shapes. ``dtype``: one dtype name, or the same structure of them (default float32)."""
    if _is_shape(input_shape):
        d = dtype if isinstance(dtype, str) or dtype is None else "float32"
        return _creation.zeros(*[1 if s is None else int(s) for s in input_shape], dtype=d or "float32")
    if isinstance(input_shape, dict):
        return {k: zeros_for(v, dtype.get(k) if isinstance(dtype, dict) else dtype) for k, v in input_shape.items()}
    if isinstance(input_shape, (list, tuple)):
        dts = dtype if isinstance(dtype, (list, tuple)) else [dtype] * len(input_shape)
        return [zeros_for(s, d) for s, d in zip(input_shape, dts)]
    raise ValueError(f"an input shape is a tuple of sizes (None where any), or a list or dict of them; got "
                     f"{input_shape!r}")


def _batchless(shapes):
    """Shapes with the batch axis unknown, as lists (JSON)."""
    if _is_shape(shapes):
        return [None] + [None if s is None else int(s) for s in list(shapes)[1:]]
    if isinstance(shapes, dict):
        return {k: _batchless(v) for k, v in shapes.items()}
    return [_batchless(s) for s in shapes]


class Model(Trainer, Layer):
    """A trainable model with Keras's API: ``compile / fit / evaluate / predict``, ``save``, ``get_weights``...

    Two ways to make one, as in Keras:

    - functional: ``keras.Model(inputs, outputs)`` with ``inputs = keras.Input(shape=(28, 28))`` and
      ``outputs`` the result of calling layers on it (several inputs and outputs as lists or dicts);
    - subclassing: define the layers in ``__init__`` and the forward pass in ``call``.

    Example::

        class DNN(keras.Model):
            def __init__(self, hidden_units, output_units):
                super().__init__()
                self.flatten = keras.layers.Flatten()
                self.dense1 = keras.layers.Dense(hidden_units, activation="relu")
                self.dense2 = keras.layers.Dense(output_units, activation="softmax")

            def call(self, inputs):  # (B, 28, 28) -> (B, output_units)
                return self.dense2(self.dense1(self.flatten(inputs)))

        model = DNN(128, 10)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        history = model.fit(x_train, y_train, epochs=10, batch_size=32, validation_split=0.1)
        model.save("dnn.keras")  # keras.models.load_model("dnn.keras", custom_objects={"DNN": DNN})
    """

    _build_before_call = False

    def __new__(cls, *args, **kwargs):
        if cls is Model and (len(args) >= 2 or "inputs" in kwargs or "outputs" in kwargs):
            from .functional import Functional

            cls = Functional
        return super().__new__(cls, *args, **kwargs)

    def __init__(self, *args, **kwargs):
        if args or "inputs" in kwargs or "outputs" in kwargs:
            raise TypeError(f"{type(self).__name__}: inputs and outputs make a functional model, which is "
                            "keras.Model(inputs, outputs) itself; a subclass of keras.Model defines call() instead")
        super().__init__(**kwargs)
        self._init_trainer()
        self._build_input_shape = None
        self._build_input_dtype = None

    def forward(self, *args, **kwargs):
        if args and self._build_input_shape is None and all(isinstance(t, Tensor) for t in tree.flatten(args[0])):
            self._build_input_shape = _batchless(shape_of(args[0]))
            self._build_input_dtype = tree.map_structure(lambda t: t.dtype.name, args[0])
        if args and isinstance(args[0], Tensor) and "_input_spec" not in self.__dict__:
            # the first input's per-sample shape and dtype: what export() traces when given no input_signature
            object.__setattr__(self, "_input_spec", (tuple(int(s) for s in args[0].shape[1:]), args[0].dtype))
        return self.call(*args, **kwargs)

    def call(self, inputs):
        raise NotImplementedError(f"{type(self).__name__} must define call(inputs) or forward(inputs)")

    def build(self, input_shape=None):
        """Create the model's weights by running it once, in evaluation mode, on zeros of ``input_shape``: the
        batch axis first, ``None`` for any size (``model.build((None, 28, 28))``); a list or dict of shapes for
        several inputs. Without ``input_shape``, the shape recorded at the first call or in a saved config."""
        if input_shape is None:
            input_shape = self._build_input_shape
            if input_shape is None:
                raise ValueError(f"You must provide an `input_shape` argument to build {self.name!r}, e.g. "
                                 "model.build((None, 28, 28)) for batches of 28x28 inputs.")
        keras_tensor._run_in_eval(self, (zeros_for(input_shape, self._build_input_dtype),), {})
        self._build_input_shape = _batchless(input_shape)
        self._mark_built()

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """``nn.Module.load_state_dict``; a model whose layers are not built yet is built first from the input
        shape it recorded (at its first call, from its Input, or in a saved config), else a ValueError says to
        call ``build(input_shape)``."""
        if not self.built and any(k not in self.state_dict() for k in state_dict):
            if self._build_input_shape is None:
                raise ValueError(f"load_state_dict: {type(self).__name__} {self.name!r} is not built yet, so its "
                                 "layers have no weights to load into: call model.build(input_shape) first (e.g. "
                                 "model.build((None, 28, 28))), or run it on one batch")
            self.build()
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    # ----- layers -----
    @property
    def layers(self):
        """The model's layers (its direct sublayers, in the order they were set)."""
        return list(self.children())

    def get_layer(self, name=None, index=None):
        """A layer by name or by position in ``layers``."""
        if index is not None:
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"Was asked to retrieve layer at index {index} but model only has "
                                 f"{len(self.layers)} layers.")
            return self.layers[index]
        for layer in self.layers:
            if getattr(layer, "name", None) == name:
                return layer
        names = [getattr(la, "name", "?") for la in self.layers]
        raise ValueError(f"No such layer: {name}. Existing layers are: {names}.")

    # ----- configuration and saving -----
    @classmethod
    def from_config(cls, config, custom_objects=None):
        """A new model from ``get_config()``'s output (a subclass: ``cls(**config)``)."""
        try:
            return cls(**config)
        except TypeError as e:
            raise TypeError(f"Unable to revive model from config. When overriding the `get_config()` method, make "
                            f"sure that the returned config contains all items used as arguments in the constructor "
                            f"to {cls.__name__}, or define a `from_config(cls, config)` class method. Received "
                            f"config={config}. Error encountered during deserialization: {e}") from None

    def get_build_config(self):
        if self._build_input_shape is None:
            return None
        return {"input_shape": self._build_input_shape, "input_dtype": self._build_input_dtype}

    def save(self, filepath, overwrite=True, **kwargs):
        """Save the architecture, weights and compile settings to a ``.keras`` archive (see
        ``keras.saving.save_model``); ``keras.models.load_model`` restores it."""
        from .saving import save_model

        save_model(self, filepath, overwrite=overwrite, **kwargs)

    def save_weights(self, filepath, overwrite=True):
        """Save the weights (the state dict) to ``<name>.weights.safetensors`` (see ``keras.saving``)."""
        from .saving import save_weights

        save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath, skip_mismatch=False):
        """Load weights saved by ``save_weights`` (or from a ``.keras`` archive), building the model first if
        needed from the input shape recorded in the file."""
        from .saving import load_weights

        load_weights(self, filepath, skip_mismatch=skip_mismatch)

    # ----- inspection and export -----
    def summary(self, line_length=None, print_fn=None):
        """Print each layer's name, type, output shape (when known) and weight count, and the totals."""
        print_fn = print_fn or print
        width = line_length or 80
        shapes = self._layer_output_shapes()
        rows = [("Layer (type)", "Output Shape", "Param #")]
        for layer in self.layers:
            name = getattr(layer, "name", "?")
            count = sum(p.numel() for p in layer.parameters())
            shape = shapes.get(id(layer))
            rows.append((f"{name} ({type(layer).__name__})", "?" if shape is None else str(shape), f"{count:,}"))
        a, b = int(width * 0.45), int(width * 0.33)
        rule = "-" * width
        print_fn(f'Model: "{self.name}"')
        print_fn(rule)
        for i, (n, s, c) in enumerate(rows):
            print_fn(f"{n:<{a}}{s:<{b}}{c:>{width - a - b}}")
            print_fn("=" * width if i == 0 else rule)
        params = list(self.parameters())
        trainable = sum(p.numel() for p in params if p.requires_grad)
        total = sum(p.numel() for p in params)
        size = sum(p.numel() * p.dtype.itemsize for p in params)
        print_fn(f"Total params: {total:,} ({size / 1024:.2f} KB)")
        print_fn(f"Trainable params: {trainable:,}")
        print_fn(f"Non-trainable params: {total - trainable:,}")

    def _layer_output_shapes(self):
        """``{id(layer): output shape}`` for the layers whose outputs this model has seen (subclasses fill it)."""
        return {}

    def export(self, filepath, format="onnx", verbose=True, input_signature=None, **kwargs):
        """Save the model for inference outside bigcore, as Keras 3's ``Model.export``; ``format="onnx"`` is the
        one format bigcore writes (Keras's default, a TensorFlow SavedModel, is not available).

        Args:
            filepath: the ``.onnx`` file to write.
            format: ``"onnx"``.
            verbose: print where the model was written.
            input_signature: example inputs (arrays or tensors, one per input) whose first axis is the batch; by
                default a batch of zeros shaped like the samples the model has seen (in ``fit``, ``predict``...).
            **kwargs: passed to :func:`bigcore.onnx.export` (``opset_version``, ``external_data``...).

        Returns:
            None.

        Shape: the input ``inputs`` and the output ``output_0`` have a dynamic first (batch) axis.

        Example::

            model.fit(x, y, epochs=3)
            model.export("digits.onnx", format="onnx")
        """
        from .. import onnx as bigcore_onnx

        if format != "onnx":
            raise ValueError(f"Model.export: format {format!r} is not available; bigcore exports format='onnx'")
        if input_signature is None:
            if "_input_spec" not in self.__dict__:
                raise ValueError("Model.export: the model has not seen any input yet; call fit, predict or the "
                                 "model once, or pass input_signature=[example batch]")
            shape, dtype = self._input_spec
            examples = [_creation.tensor(np.zeros((2,) + shape, dtype.numpy))]
        else:
            examples = [as_tensor(a) for a in input_signature]
        names = ["inputs"] if len(examples) == 1 else [f"inputs_{i}" for i in range(len(examples))]
        axes = {name: {0: "batch"} for name in names}
        axes["output_0"] = {0: "batch"}
        bigcore_onnx.export(self, tuple(examples), filepath, input_names=names, output_names=["output_0"],
                            dynamic_axes=axes, **kwargs)
        if verbose:
            print(f"Saved the model to {filepath} (ONNX)")
