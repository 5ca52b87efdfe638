"""``Seq2SeqTransformer``: the encoder-decoder Transformer of "Attention Is All You Need" as a whole model, token
ids in and next-token logits out, after PyTorch's translation tutorial (``Seq2SeqTransformer`` there, with the
same submodule names: ``src_tok_emb``, ``tgt_tok_emb``, ``positional_encoding``, ``transformer``, ``generator``).

Token embeddings are multiplied by sqrt(d_model) and added to a positional encoding (sinusoidal or learned, up to
``max_len`` positions), then dropout; ``nn.Transformer`` (batch first) maps them to the decoder's states; a Linear
projects those to the target vocabulary. The causal target mask is built in. Greedy and beam-search decoding live
in ``seq2seq_generation.py``.

Dimension letters: B batch, S source length, T target length, C = d_model, V = tgt_vocab_size.
"""

import math

import numpy as np

from . import seq2seq_generation
from .. import nn
from .._dtype import bool_, int64, to_dtype
from .._tensor import Tensor
from ..autograd import no_grad
from ..errors import DTypeError, OutOfRangeError, ShapeError
from .positional import LearnedPositionalEncoding, SinusoidalPositionalEncoding

_POSITIONAL = {"sinusoidal": SinusoidalPositionalEncoding, "learned": LearnedPositionalEncoding}


def _positive(name, n):
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"Seq2SeqTransformer: {name} must be a positive integer, got {n!r}")
    return int(n)


class Seq2SeqTransformer(nn.Module):
    """An encoder-decoder Transformer over token ids: source ids ``(B, S)`` and target ids ``(B, T)`` to logits of
    the next target token ``(B, T, V)``.

    ``logits[:, t]`` depends on the whole source and on target tokens ``0..t`` only (the causal mask is built in),
    so training is teacher forcing: feed ``[bos] + y`` and score against ``y + [eos]``. Padding masks are the
    caller's (True = a padding position, as PyTorch's ``key_padding_mask``); ``src_key_padding_mask`` also masks
    the decoder's attention over the encoder's output.

    Parameters: ``src_tok_emb.weight`` ``(src_vocab_size, C)`` and ``tgt_tok_emb.weight`` ``(V, C)`` start
    N(0, 1/C), so that after the sqrt(C) scaling they have unit variance (the ``pad_idx`` row is zero and gets no
    gradient); ``transformer`` is ``nn.Transformer`` (Xavier-uniform matrices); ``generator`` is
    ``Linear(C, V)``; a learned ``positional_encoding.embedding.weight`` ``(max_len, C)`` starts N(0, 1), the
    sinusoidal table is a non-persistent buffer.

    Args:
        src_vocab_size: source vocabulary size.
        tgt_vocab_size: target vocabulary size V.
        d_model: embedding and model width C (a multiple of ``nhead``).
        nhead: attention heads.
        num_encoder_layers, num_decoder_layers: layers in the encoder and the decoder.
        dim_feedforward: hidden width of each feed-forward block.
        dropout: dropout after the positional encoding and inside every layer while training.
        max_len: the longest source or target the positional table covers.
        positional: ``"sinusoidal"`` (fixed) or ``"learned"``.
        pad_idx: the padding id of both vocabularies (its embedding rows stay zero), also what ``generate`` pads
            finished rows with; None: no padding id.
        activation: ``"relu"`` or ``"gelu"`` in the feed-forward blocks.
        norm_first: pre-norm layers (``nn.Transformer``'s ``norm_first``).
        dtype: ``bigcore.float32`` (default) or ``bigcore.float64``.

    Shape: src ``(B, S)``, tgt ``(B, T)`` int64 with ``S, T <= max_len``; masks ``(B, S)``, ``(B, T)`` bool;
    output ``(B, T, V)``.

    Example::

        model = Seq2SeqTransformer(12, 12, d_model=64, nhead=4, num_encoder_layers=2, num_decoder_layers=2,
                                   dim_feedforward=128, max_len=32, pad_idx=0)
        logits = model(src, tgt_in)  # (B, S), (B, T) -> (B, T, 12)
        loss = F.cross_entropy(logits.reshape(-1, 12), tgt_out.reshape(-1), ignore_index=0)
        out = model.generate(src, max_length=20, bos_token_id=1, eos_token_id=2, num_beams=4)  # (B, <= 20)

    Raises:
        ValueError: a size below 1, d_model not a multiple of nhead, an unknown ``positional``, ``pad_idx`` outside
            either vocabulary.
    """

    def __init__(self, src_vocab_size, tgt_vocab_size, d_model=512, nhead=8, num_encoder_layers=6,
                 num_decoder_layers=6, dim_feedforward=2048, dropout=0.1, max_len=5000, positional="sinusoidal",
                 pad_idx=None, activation="relu", norm_first=False, dtype=None):
        super().__init__()
        self.src_vocab_size = _positive("src_vocab_size", src_vocab_size)
        self.tgt_vocab_size = _positive("tgt_vocab_size", tgt_vocab_size)
        self.d_model = _positive("d_model", d_model)
        self.max_len = _positive("max_len", max_len)
        if positional not in _POSITIONAL:
            raise ValueError(f"Seq2SeqTransformer: positional must be 'sinusoidal' or 'learned', got {positional!r}")
        if pad_idx is not None and not 0 <= pad_idx < min(self.src_vocab_size, self.tgt_vocab_size):
            raise ValueError(f"Seq2SeqTransformer: pad_idx {pad_idx} must be a valid id of both vocabularies "
                             f"(src_vocab_size {self.src_vocab_size}, tgt_vocab_size {self.tgt_vocab_size})")
        self.positional, self.pad_idx = positional, pad_idx
        dtype = to_dtype(dtype)
        self.src_tok_emb = nn.Embedding(self.src_vocab_size, self.d_model, padding_idx=pad_idx, dtype=dtype)
        self.tgt_tok_emb = nn.Embedding(self.tgt_vocab_size, self.d_model, padding_idx=pad_idx, dtype=dtype)
        self.positional_encoding = _POSITIONAL[positional](self.d_model, self.max_len, dtype=dtype)
        self.dropout = nn.Dropout(dropout)
        self.transformer = nn.Transformer(self.d_model, nhead, num_encoder_layers, num_decoder_layers,
                                          dim_feedforward, dropout, activation=activation, batch_first=True,
                                          norm_first=norm_first, dtype=dtype)
        self.generator = nn.Linear(self.d_model, self.tgt_vocab_size, dtype=dtype)  # weight (V, C)
        with no_grad():
            for emb in (self.src_tok_emb, self.tgt_tok_emb):
                nn.init.normal_(emb.weight, std=self.d_model ** -0.5)
                if pad_idx is not None:
                    emb.weight[pad_idx] = 0.0

    def _embed(self, ids, emb, start=0):
        # (B, T) ids at positions start.. -> (B, T, C): token rows scaled by sqrt(C), plus the position rows, dropout
        return self.dropout(self.positional_encoding(emb(ids) * math.sqrt(self.d_model), start))

    def encode(self, src, src_key_padding_mask=None):
        """The encoder's output (the decoder's ``memory``) for source ids.

        Args:
            src: int64 ids ``(B, S)`` in ``[0, src_vocab_size)``, ``S <= max_len``.
            src_key_padding_mask: bool ``(B, S)``, True at padding positions (they are not attended to), or None.

        Returns:
            memory ``(B, S, C)``.
        """
        B, S = _check_ids("src", src, self.src_vocab_size, self.max_len)
        _check_mask("src_key_padding_mask", src_key_padding_mask, (B, S))
        return self.transformer.encoder(self._embed(src, self.src_tok_emb), src_key_padding_mask=src_key_padding_mask)

    def decode(self, tgt, memory, tgt_key_padding_mask=None, memory_key_padding_mask=None):
        """The decoder's output states (before ``generator``) for target ids, each position attending to itself
        and the positions before it, and to the whole ``memory``.

        Args:
            tgt: int64 ids ``(B, T)`` in ``[0, tgt_vocab_size)``, ``T <= max_len``.
            memory: the encoder's output ``(B, S, C)`` (:meth:`encode`).
            tgt_key_padding_mask: bool ``(B, T)``, True at padding positions, or None.
            memory_key_padding_mask: bool ``(B, S)`` (the source's padding mask), or None.

        Returns:
            ``(B, T, C)``.
        """
        B, T = _check_ids("tgt", tgt, self.tgt_vocab_size, self.max_len)
        if memory.ndim != 3 or memory.shape[0] != B or memory.shape[2] != self.d_model:
            raise ShapeError(f"Seq2SeqTransformer: memory of shape {memory.shape} should be ({B}, S, {self.d_model}) "
                             f"for tgt of shape {tgt.shape}")
        _check_mask("tgt_key_padding_mask", tgt_key_padding_mask, (B, T))
        _check_mask("memory_key_padding_mask", memory_key_padding_mask, (B, memory.shape[1]))
        x = self._embed(tgt, self.tgt_tok_emb)  # (B, T, C)
        causal = nn.Transformer.generate_square_subsequent_mask(T, dtype=x.dtype)  # (T, T): -inf above the diagonal
        return self.transformer.decoder(x, memory, tgt_mask=causal, tgt_key_padding_mask=tgt_key_padding_mask,
                                        memory_key_padding_mask=memory_key_padding_mask, tgt_is_causal=True)

    def forward(self, src, tgt, src_key_padding_mask=None, tgt_key_padding_mask=None):
        """Logits of the next target token at every target position (teacher forcing).

        Args:
            src: int64 source ids ``(B, S)``.
            tgt: int64 target ids ``(B, T)``, usually ``[bos] + target`` without its last token.
            src_key_padding_mask: bool ``(B, S)``, True at source padding (for the encoder's self-attention and
                the decoder's attention over the source), or None.
            tgt_key_padding_mask: bool ``(B, T)``, True at target padding, or None.

        Returns:
            logits ``(B, T, V)``.

        Example::

            logits = model(src, tgt[:, :-1], src_key_padding_mask=src == pad, tgt_key_padding_mask=tgt[:, :-1] == pad)
            loss = F.cross_entropy(logits.reshape(-1, V), tgt[:, 1:].reshape(-1), ignore_index=pad)

        Raises:
            ValueError: S or T longer than ``max_len``.
            IndexError (``bigcore.OutOfRangeError``): an id outside its vocabulary.
            bigcore.ShapeError: src or tgt not 2-D, different batch sizes, or a mask of another shape.
            TypeError (``bigcore.DTypeError``): ids that are not int64, a mask neither bool nor float.
        """
        B, _ = _check_ids("src", src, self.src_vocab_size, self.max_len)
        if isinstance(tgt, Tensor) and tgt.ndim == 2 and tgt.shape[0] != B:
            raise ShapeError(f"Seq2SeqTransformer: src of shape {src.shape} and tgt of shape {tgt.shape} have "
                             f"different batch sizes")
        memory = self.encode(src, src_key_padding_mask)  # (B, S, C)
        x = self.decode(tgt, memory, tgt_key_padding_mask, src_key_padding_mask)  # (B, T, C)
        return self.generator(x)  # (B, T, V)

    def generate(self, src, max_length, bos_token_id, eos_token_id, num_beams=1, src_key_padding_mask=None,
                 length_penalty=1.0):
        """Decode a target for each source: greedy when ``num_beams == 1``, beam search otherwise.

        Runs under ``no_grad`` in eval mode (the model's mode is restored afterwards) and encodes the source once.
        Every row starts with ``bos_token_id``; a row ends at its first ``eos_token_id`` (kept) or at
        ``max_length`` tokens. Positions after a row's end hold ``pad_idx`` (``eos_token_id`` when the model has
        no ``pad_idx``). Beam search keeps ``num_beams`` hypotheses per source, ranks them by summed log-probability,
        sets finished ones aside and returns the best by ``sum log p / n ** length_penalty`` (n: generated tokens,
        the eos included, bos not), as Hugging Face's; see ``seq2seq_generation.py``.

        Args:
            src: int64 source ids ``(B, S)``.
            max_length: the most tokens in a returned row, bos included (so at most ``max_length - 1`` generated;
                ``max_length - 1`` must not exceed ``max_len``).
            bos_token_id: the first target token.
            eos_token_id: the token that ends a row.
            num_beams: hypotheses kept per source; 1 is greedy.
            src_key_padding_mask: bool ``(B, S)``, True at source padding, or None.
            length_penalty: the exponent of the length in the beam score (> 0 favours longer, < 0 shorter).

        Returns:
            int64 ids ``(B, L)``, ``L <= max_length``: bos, the generated tokens, eos, then padding.

        Example::

            out = model.generate(src, max_length=50, bos_token_id=1, eos_token_id=2, num_beams=4)
        """
        return seq2seq_generation.generate(self, src, max_length, bos_token_id, eos_token_id, num_beams,
                                           src_key_padding_mask, length_penalty)


def _check_ids(what, ids, vocab_size, max_len):
    """``(B, L)`` of a 2-D int64 tensor of ids in ``[0, vocab_size)`` no longer than ``max_len``."""
    if not isinstance(ids, Tensor):
        raise TypeError(f"Seq2SeqTransformer: {what} must be a bigcore.Tensor of int64 token ids, got "
                        f"{type(ids).__name__}")
    if ids.dtype is not int64:
        raise DTypeError(f"Seq2SeqTransformer: {what} must hold int64 token ids, got {ids.dtype!r}")
    if ids.ndim != 2:
        raise ShapeError(f"Seq2SeqTransformer: {what} must be (B, L) token ids, got shape {ids.shape}")
    B, L = ids.shape
    if L > max_len:
        raise ValueError(f"Seq2SeqTransformer: {what} length {L} is longer than max_len {max_len} (the positional "
                         f"table's length)")
    values = ids._c.numpy()  # a check, not a value the forward computes with
    if values.size and (values.min() < 0 or values.max() >= vocab_size):
        bad = values[(values < 0) | (values >= vocab_size)][0]
        raise OutOfRangeError(f"Seq2SeqTransformer: {what} token id {bad} is out of range for a vocabulary of "
                              f"{vocab_size}")
    return B, L


def _check_mask(what, mask, shape):
    if mask is None:
        return
    if not isinstance(mask, Tensor):
        raise TypeError(f"Seq2SeqTransformer: {what} must be a bigcore.Tensor, got {type(mask).__name__}")
    if mask.dtype is not bool_ and not mask.is_floating_point():
        raise DTypeError(f"Seq2SeqTransformer: {what} must be bool (True = padding) or float, got {mask.dtype!r}")
    if mask.shape != shape:
        raise ShapeError(f"Seq2SeqTransformer: {what} of shape {mask.shape} should be {shape}")
