"""A Keras-3-shaped high-level API over bigcore: ``keras.Model`` (functional or subclassed), ``keras.Sequential``,
``keras.Input``, ``keras.layers``, ``compile / fit / evaluate / predict``, callbacks, losses, metrics and
optimizers by name, and saving (``model.save("m.keras")`` / ``keras.models.load_model``).

Every layer and model is an ``nn.Module``, so a Keras model also trains in a plain PyTorch-style loop, exports to
ONNX, and saves with ``bigcore.save(model.state_dict(), ...)``.

Sequential::

    from bigcore import keras
    model = keras.Sequential([keras.Input(shape=(64,)), keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])  # optimizer="rmsprop"
    model.fit(x_train, y_train, epochs=10, batch_size=32, validation_split=0.1)

Functional, with two inputs (data as a list, or a dict by Input name)::

    a, b = keras.Input(shape=(3,), name="a"), keras.Input(shape=(5,), name="b")
    h = keras.layers.Concatenate()([keras.layers.Dense(8, activation="relu")(a), b])
    model = keras.Model(inputs=[a, b], outputs=keras.layers.Dense(1)(h))
    model.compile(optimizer="adam", loss="mse")
    model.fit({"a": xa, "b": xb}, y, epochs=5, sample_weight=w)

Saving::

    model.save("model.keras")                       # config.json + safetensors weights in a zip
    model = keras.models.load_model("model.keras")  # custom_objects={"DNN": DNN} for subclassed models
    model.save_weights("w.weights.safetensors"); model.load_weights("w.weights.safetensors")

``fit`` also takes a ``bigcore.data.DataLoader`` or a generator of ``(x, y)`` batches (``steps_per_epoch``),
``sample_weight`` and ``class_weight``. Labels are checked against the outputs: (N,) labels for (N, 28, 10)
outputs are a ValueError naming both shapes, (N, T) labels for (N, T, C) outputs a per-step loss.
"""

from . import activations, callbacks, layers, losses, metrics, models, optimizers, saving, utils
from .callbacks import Callback, EarlyStopping, History, LearningRateScheduler, ModelCheckpoint
from .functional import Functional
from .keras_tensor import KerasTensor
from .layers import Input, Layer
from .model import Model
from .sequential import Sequential

__all__ = ["Model", "Sequential", "Input", "Layer", "KerasTensor", "Functional", "layers", "losses", "metrics",
           "optimizers", "callbacks", "activations", "models", "saving", "utils", "Callback", "History",
           "EarlyStopping", "ModelCheckpoint", "LearningRateScheduler"]
