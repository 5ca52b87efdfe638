"""Models built from bigcore's layers: ``GPT`` and its ``GPTConfig`` (nanoGPT's GPT-2), and
``GPTForSequenceClassification`` (Hugging Face's GPT-2 classifier)."""

from .gpt import GPT, GPTConfig
from .gpt_classification import GPTForSequenceClassification
from .seq2seq import Seq2SeqTransformer

__all__ = ["GPT", "GPTConfig", "GPTForSequenceClassification", "Seq2SeqTransformer"]
