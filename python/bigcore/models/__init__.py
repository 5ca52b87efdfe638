"""Models built from bigcore's layers: ``GPT`` and its ``GPTConfig`` (nanoGPT's GPT-2), and
``GPTForSequenceClassification`` (Hugging Face's GPT-2 classifier)."""

from .gan import LSTMDiscriminator, LSTMGenerator, SequenceGAN
from .gpt import GPT, GPTConfig
from .gpt_classification import GPTForSequenceClassification

__all__ = ["GPT", "GPTConfig", "GPTForSequenceClassification", "LSTMGenerator", "LSTMDiscriminator", "SequenceGAN"]
