"""Keras layers: ``Dense``, ``Flatten``, ``Dropout``, ``Activation``, ``Embedding``, ``LayerNormalization``,
``LSTM``, the merging layers (``Concatenate``, ``Add``, ``Subtract``, ``Multiply``, ``Average``), ``Input`` /
``InputLayer``, and the base ``Layer`` to subclass. Every layer is an ``nn.Module`` and can be called on
tensors or, to build a functional model, on ``keras.Input`` tensors."""

from .core import Activation, Dense, Dropout, Embedding, Flatten, LayerNormalization
from .input_layer import Input, InputLayer
from .layer import Layer
from .lstm import LSTM
from .merging import Add, Average, Concatenate, Multiply, Subtract


__all__ = ["Layer", "Input", "InputLayer", "Dense", "Flatten", "Dropout", "Activation", "Embedding",
           "LayerNormalization", "LSTM", "Concatenate", "Add", "Subtract", "Multiply", "Average"]
