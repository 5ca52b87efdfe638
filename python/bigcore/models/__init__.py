"""Models built from bigcore's layers: ``GPT`` and its ``GPTConfig`` (nanoGPT's GPT-2), and
``GPTForSequenceClassification`` (Hugging Face's GPT-2 classifier), ``CrossModalFusion`` (concatenation, gated
or cross-attention fusion of several modalities)."""

from .fusion import CrossModalFusion
from .gpt import GPT, GPTConfig
from .gpt_classification import GPTForSequenceClassification

__all__ = ["CrossModalFusion", "GPT", "GPTConfig", "GPTForSequenceClassification"]
