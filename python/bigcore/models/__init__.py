"""Models built from bigcore's layers: ``GPT`` and its ``GPTConfig`` (nanoGPT's GPT-2),
``GPTForSequenceClassification`` (Hugging Face's GPT-2 classifier), ``Seq2SeqTransformer`` (an encoder-decoder
Transformer over token ids, with greedy and beam-search generation), ``CrossModalFusion`` (concatenation, gated
or cross-attention fusion of several modalities), the sequence GAN's ``LSTMGenerator``, ``LSTMDiscriminator``
and ``SequenceGAN`` trainer, and the specification's ``MLP`` (an ``nn.Module``) and ``DNN`` (a ``keras.Model``)."""

from .fusion import CrossModalFusion
from .gan import LSTMDiscriminator, LSTMGenerator, SequenceGAN
from .gpt import GPT, GPTConfig
from .gpt_classification import GPTForSequenceClassification
from .mlp import DNN, MLP
from .seq2seq import Seq2SeqTransformer

__all__ = ["CrossModalFusion", "GPT", "GPTConfig", "GPTForSequenceClassification", "LSTMGenerator",
           "LSTMDiscriminator", "SequenceGAN", "MLP", "DNN", "Seq2SeqTransformer"]
