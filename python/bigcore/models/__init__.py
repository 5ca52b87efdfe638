"""Models built from bigcore's layers: ``GPT`` and its ``GPTConfig`` (nanoGPT's GPT-2), and
``GPTForSequenceClassification`` (Hugging Face's GPT-2 classifier)."""

from .gpt import GPT, GPTConfig
from .gpt_classification import GPTForSequenceClassification
from .mlp import DNN, MLP

__all__ = ["GPT", "GPTConfig", "GPTForSequenceClassification", "MLP", "DNN"]
