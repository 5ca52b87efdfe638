"""Incremental decoding for ``Seq2SeqTransformer``: one new target position per step against cached keys and
values, in evaluation semantics (no dropout).

``Seq2SeqTransformer.decode`` recomputes the whole prefix for every new token, and the keys and values of the
encoder's output in every layer too. ``DecoderCache`` computes the cross-attention keys and values of ``memory``
once, keeps each layer's self-attention keys and values of the positions so far, and runs the new position alone:
the same layers (``nn.TransformerDecoderLayer``: post-norm or ``norm_first``) with the same parameters, so its
log-probabilities equal ``decode``'s last position's (the tests check every position). Rows can be dropped or
reordered between steps (finished sources, beam search's surviving hypotheses) with :meth:`select`.

Dimension letters: N rows (sources, or sources times beams), S source length, t tokens so far, C = d_model,
NH heads, HS = C // NH, V = tgt_vocab_size.
"""

import numpy as np

from .. import nn
from .._creation import tensor
from .._functions import cat
from ..nn import functional as F


def _heads(x, NH):
    """``(N, T, C)`` -> ``(N, NH, T, HS)``."""
    N, T, C = x.shape
    return x.reshape(N, T, NH, C // NH).transpose(1, 2)


def _project(mha, x, which):
    """Rows ``which`` (0: query, 1: key, 2: value) of ``mha``'s packed input projection applied to ``x``."""
    w = mha.in_proj_weight.chunk(3)[which]  # (C, C)
    b = mha.in_proj_bias.chunk(3)[which] if mha.in_proj_bias is not None else None
    return F.linear(x, w, b)


def _attend(mha, x, k, v, mask):
    """``mha`` for the query ``x`` ``(N, 1, C)`` over projected keys and values ``(N, NH, S, HS)``."""
    N, _, C = x.shape
    q = _heads(_project(mha, x, 0), mha.num_heads)  # (N, NH, 1, HS)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (N, NH, 1, HS)
    return mha.out_proj(out.transpose(1, 2).reshape(N, 1, C))  # (N, 1, C)


class DecoderCache:
    """The decoder of ``model`` run one position at a time.

    Args:
        model: a ``Seq2SeqTransformer`` whose decoder layers are ``nn.TransformerDecoderLayer``.
        memory: the encoder's output ``(N, S, C)``.
        memory_key_padding_mask: ``(N, S)`` numpy bool (True = padding) or float (added to the scores), or None.

    Example::

        cache = DecoderCache(model, model.encode(src), None)
        log_p = cache.step(np.full(B, bos))  # (B, V) log-probabilities of the first target token
    """

    def __init__(self, model, memory, memory_key_padding_mask):
        decoder = model.transformer.decoder
        if not all(type(layer) is nn.TransformerDecoderLayer for layer in decoder.layers):
            raise NotImplementedError("Seq2SeqTransformer.generate: incremental decoding needs the decoder layers to "
                                      "be nn.TransformerDecoderLayer")
        self.model, self.layers, self.norm = model, list(decoder.layers), decoder.norm
        self.rows = np.arange(memory.shape[0])  # which source each row decodes
        self.mask = None
        if memory_key_padding_mask is not None:
            m = np.asarray(memory_key_padding_mask)
            # F.scaled_dot_product_attention's convention: bool True takes part; float is added
            m = ~m if m.dtype == np.bool_ else m
            self.mask = tensor(m[:, None, None, :])  # (N, 1, 1, S)
            if m.dtype != np.bool_:
                self.mask = self.mask.to(memory.dtype)
        self.cross = [(_heads(_project(layer.multihead_attn, memory, 1), layer.multihead_attn.num_heads),
                       _heads(_project(layer.multihead_attn, memory, 2), layer.multihead_attn.num_heads))
                      for layer in self.layers]  # per layer: keys, values (N, NH, S, HS)
        self.past = [None] * len(self.layers)  # per layer: keys, values (N, NH, t, HS) of the positions so far
        self.length = 0  # t

    def select(self, index):
        """Keep rows ``index`` (numpy ints into the current rows, in the new order; repeats allowed)."""
        idx = tensor(np.asarray(index, dtype=np.int64))
        rows = self.rows[index]
        if not np.array_equal(rows, self.rows):  # the sources changed: their keys, values and mask follow
            self.cross = [(k.index_select(0, idx), v.index_select(0, idx)) for k, v in self.cross]
            if self.mask is not None:
                self.mask = self.mask.index_select(0, idx)
        self.rows = rows
        self.past = [None if kv is None else (kv[0].index_select(0, idx), kv[1].index_select(0, idx))
                     for kv in self.past]

    def step(self, tokens):
        """Feed the next token of every row, ``(N,)`` numpy ids; return float64 log-probabilities of the token
        after it, ``(N, V)``."""
        model = self.model
        ids = tensor(np.asarray(tokens, dtype=np.int64)[:, None])  # (N, 1)
        x = model._embed(ids, model.tgt_tok_emb, self.length)  # (N, 1, C) at position t
        for i, layer in enumerate(self.layers):
            x = self._layer(i, layer, x)
        if self.norm is not None:
            x = self.norm(x)
        self.length += 1
        return model.generator(x[:, 0]).log_softmax(-1).numpy().astype(np.float64)  # (N, V)

    def _self_attention(self, i, layer, x):
        sa = layer.self_attn
        k, v = _heads(_project(sa, x, 1), sa.num_heads), _heads(_project(sa, x, 2), sa.num_heads)  # (N, NH, 1, HS)
        if self.past[i] is not None:
            k, v = cat([self.past[i][0], k], dim=2), cat([self.past[i][1], v], dim=2)  # (N, NH, t + 1, HS)
        self.past[i] = (k, v)
        return _attend(sa, x, k, v, None)  # the new position sees every position so far, itself included

    def _layer(self, i, layer, x):
        # nn.TransformerDecoderLayer.forward for one position, in eval mode (its dropouts are the identity)
        def ff(h):
            return layer.linear2(layer.activation(layer.linear1(h)))

        k, v = self.cross[i]
        if layer.norm_first:
            x = x + self._self_attention(i, layer, layer.norm1(x))
            x = x + _attend(layer.multihead_attn, layer.norm2(x), k, v, self.mask)
            return x + ff(layer.norm3(x))
        x = layer.norm1(x + self._self_attention(i, layer, x))
        x = layer.norm2(x + _attend(layer.multihead_attn, x, k, v, self.mask))
        return layer.norm3(x + ff(x))
