"""Models built from bigcore's layers: ``GPT`` and its ``GPTConfig`` (nanoGPT's GPT-2),
``GPTForSequenceClassification`` (Hugging Face's GPT-2 classifier), ``CrossModalFusion`` (concatenation, gated
or cross-attention fusion of several modalities), and the sequence GAN's ``LSTMGenerator``,
``LSTMDiscriminator`` and ``SequenceGAN`` trainer."""

from .fusion import CrossModalFusion
from .gan import LSTMDiscriminator, LSTMGenerator, SequenceGAN
from .gpt import GPT, GPTConfig
from .gpt_classification import GPTForSequenceClassification

__all__ = ["CrossModalFusion", "GPT", "GPTConfig", "GPTForSequenceClassification", "LSTMGenerator",
           "LSTMDiscriminator", "SequenceGAN"]
