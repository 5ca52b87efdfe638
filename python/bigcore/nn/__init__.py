"""Neural-network building blocks with PyTorch's names: ``Module``, ``Parameter``, containers, layers, losses,
``init``, ``utils`` and the stateless ``functional`` ops (imported as ``F``)."""

from . import functional, init, parallel, utils
from .attention import MultiheadAttention
from .activation import GELU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .containers import ModuleDict, ModuleList, Sequential
from .layers import Dropout, Embedding, Flatten, Identity, LayerNorm, Linear
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss
from .module import Module
from .parameter import Parameter
from .rnn import LSTM
from .transformer import (
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)

__all__ = [
    "functional", "init", "parallel", "utils", "Module", "Parameter", "Sequential", "ModuleList", "ModuleDict",
    "Linear", "Embedding", "LayerNorm", "Dropout", "Flatten", "Identity",
    "ReLU", "GELU", "Tanh", "Sigmoid", "Softmax", "LogSoftmax",
    "LSTM", "MultiheadAttention", "Transformer", "TransformerEncoder", "TransformerDecoder", "TransformerEncoderLayer",
    "TransformerDecoderLayer", "CrossEntropyLoss", "NLLLoss", "MSELoss", "BCELoss", "BCEWithLogitsLoss",
]
