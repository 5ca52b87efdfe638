"""Positional encodings added to token embeddings: ``SinusoidalPositionalEncoding`` (the fixed table of
"Attention Is All You Need", as in PyTorch's translation tutorial) and ``LearnedPositionalEncoding`` (a trained
table, as GPT-2's ``wpe``). Both hold ``max_len`` rows and refuse longer sequences.

Dimension letters: B batch, T sequence length, C = d_model.
"""

import math

import numpy as np

from .. import nn
from .._creation import arange, tensor
from .._dtype import float32, to_dtype


def _check_length(what, start, T, max_len):
    if start < 0:
        raise ValueError(f"{what}: start must be non-negative, got {start}")
    if start + T > max_len:
        need = f"positions {start} to {start + T - 1}" if start else f"sequence length {T}"
        raise ValueError(f"{what}: {need} need {start + T} rows, more than max_len {max_len} (the rows of the "
                         f"positional table)")


def _check_sizes(what, d_model, max_len):
    for name, n in (("d_model", d_model), ("max_len", max_len)):
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
            raise ValueError(f"{what}: {name} must be a positive integer, got {n!r}")


def sinusoid_table(max_len, d_model):
    """The fixed encoding as a numpy float64 array ``(max_len, d_model)``: for position ``t`` and ``i < d_model/2``,
    ``pe[t, 2i] = sin(t / 10000^(2i/d_model))`` and ``pe[t, 2i+1] = cos(t / 10000^(2i/d_model))``."""
    position = np.arange(max_len, dtype=np.float64)[:, None]  # (max_len, 1)
    div = np.exp(-np.arange(0, d_model, 2, dtype=np.float64) * (math.log(10000.0) / d_model))  # (ceil(C/2),)
    pe = np.zeros((max_len, d_model), dtype=np.float64)
    pe[:, 0::2] = np.sin(position * div)
    pe[:, 1::2] = np.cos(position * div[: d_model // 2])
    return pe


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the fixed sinusoidal table of "Attention Is All You Need" (:func:`sinusoid_table`) to its input.

    The table is a non-persistent buffer ``pe``: it is rebuilt from ``(max_len, d_model)``, so ``state_dict``
    does not hold it.

    Args:
        d_model: the embedding width C.
        max_len: the longest sequence it encodes.
        dtype: the table's dtype (default float32).

    Shape: input and output ``(B, T, C)`` with ``T <= max_len``.

    Example::

        pos = SinusoidalPositionalEncoding(16, max_len=100)
        y = pos(bigcore.zeros(2, 7, 16))  # (2, 7, 16): rows 0..6 of the table
    """

    def __init__(self, d_model, max_len=5000, dtype=None):
        super().__init__()
        _check_sizes("SinusoidalPositionalEncoding", d_model, max_len)
        self.d_model, self.max_len = int(d_model), int(max_len)
        dtype = to_dtype(dtype) or float32
        self.register_buffer("pe", tensor(sinusoid_table(self.max_len, self.d_model), dtype=dtype), persistent=False)

    def forward(self, x, start=0):
        """``x`` ``(B, T, C)`` holding positions ``start .. start + T - 1`` (``start``: the tokens before it, as
        in incremental decoding)."""
        T = x.shape[1]
        _check_length("SinusoidalPositionalEncoding", start, T, self.max_len)
        return x + self.pe[start:start + T]  # (B, T, C) + (T, C)

    def extra_repr(self):
        return f"{self.d_model}, max_len={self.max_len}"


class LearnedPositionalEncoding(nn.Module):
    """Adds a trained row per position (``embedding.weight`` ``(max_len, d_model)``, starting N(0, 1) as
    ``nn.Embedding``) to its input.

    Args:
        d_model: the embedding width C.
        max_len: the longest sequence it encodes.
        dtype: the table's dtype (default float32).

    Shape: input and output ``(B, T, C)`` with ``T <= max_len``.

    Example::

        pos = LearnedPositionalEncoding(16, max_len=100)
        y = pos(bigcore.zeros(2, 7, 16))  # (2, 7, 16)
    """

    def __init__(self, d_model, max_len=5000, dtype=None):
        super().__init__()
        _check_sizes("LearnedPositionalEncoding", d_model, max_len)
        self.d_model, self.max_len = int(d_model), int(max_len)
        self.embedding = nn.Embedding(self.max_len, self.d_model, dtype=dtype)

    def forward(self, x, start=0):
        """``x`` ``(B, T, C)`` holding positions ``start .. start + T - 1``."""
        T = x.shape[1]
        _check_length("LearnedPositionalEncoding", start, T, self.max_len)
        return x + self.embedding(arange(start, start + T))  # (B, T, C) + (T, C)

    def extra_repr(self):
        return f"{self.d_model}, max_len={self.max_len}"
