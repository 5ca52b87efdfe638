"""A Keras-shaped high-level API over bigcore: ``keras.Model``, ``keras.Sequential``, ``keras.layers``,
``compile / fit / evaluate / predict``, callbacks, losses and optimizers by name.

Use it where you would use ``tf.keras``::

    from bigcore import keras
    model = keras.Sequential([keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=10, batch_size=32)
"""

from . import callbacks, layers, losses, metrics, optimizers
from .callbacks import Callback, EarlyStopping, History, LearningRateScheduler, ModelCheckpoint
from .model import Model, Sequential

__all__ = ["Model", "Sequential", "layers", "losses", "metrics", "optimizers", "callbacks", "Callback", "History",
           "EarlyStopping", "ModelCheckpoint", "LearningRateScheduler"]
