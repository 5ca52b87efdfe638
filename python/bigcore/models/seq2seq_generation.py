"""Decoding for ``Seq2SeqTransformer``: greedy search and beam search, with Hugging Face's argument names and
beam-scoring rules.

Both encode the source once, then run the decoder one position per step with cached keys and values
(``seq2seq_cache.DecoderCache``), dropping the rows of sources that are done. Bookkeeping is numpy.

Beam search, per source (``num_beams`` = K):

- K running hypotheses, ranked by their summed log-probability; at the start only ``[bos]`` is alive (K copies
  would repeat each other).
- Each step expands every running hypothesis by every token (K * V candidates) and walks down the best 2K: a
  candidate ending in eos among the first K is set aside as finished with the score ``sum log p / n **
  length_penalty`` (n = generated tokens, eos included, bos not) in a pool that keeps the K best; other candidates
  fill the K new running hypotheses. (At most K candidates end in eos, so 2K always holds K others.)
- A source is done once its pool holds K hypotheses and no running one can still beat the worst of them: the best
  running sum ``s`` of n generated tokens (a sum that only falls as tokens are added) can at most reach
  ``s / n_max ** length_penalty`` when ``length_penalty > 0`` and ``s / (n + 1) ** length_penalty`` otherwise
  (``n_max = max_length - 1``). So stopping early never changes the result (Hugging Face's
  ``early_stopping="never"``).
- At ``max_length`` the running hypotheses join the pool unfinished (scored the same way, without an eos); the
  best of the pool is returned.
"""

import math

import numpy as np

from .._creation import tensor
from ..autograd import no_grad
from ..errors import OutOfRangeError
from .seq2seq_cache import DecoderCache

_INTEGER = (int, np.integer)


def _check_args(model, max_length, bos_token_id, eos_token_id, num_beams, length_penalty):
    if not isinstance(num_beams, _INTEGER) or isinstance(num_beams, bool) or num_beams < 1:
        raise ValueError(f"generate: num_beams must be a positive integer, got {num_beams!r}")
    if not isinstance(max_length, _INTEGER) or isinstance(max_length, bool) or max_length < 1:
        raise ValueError(f"generate: max_length must be a positive integer, got {max_length!r}")
    if max_length - 1 > model.max_len:
        raise ValueError(f"generate: max_length {max_length} would feed the decoder {max_length - 1} tokens, more "
                         f"than max_len {model.max_len} (the positional table's length)")
    V = model.tgt_vocab_size
    for name, tok in (("bos_token_id", bos_token_id), ("eos_token_id", eos_token_id)):
        if not isinstance(tok, _INTEGER) or isinstance(tok, bool):
            raise TypeError(f"generate: {name} must be an integer token id, got {tok!r}")
        if not 0 <= tok < V:
            raise OutOfRangeError(f"generate: {name} {tok} is out of range for tgt_vocab_size {V}")
    if not isinstance(length_penalty, (int, float, np.number)) or not math.isfinite(length_penalty):
        raise ValueError(f"generate: length_penalty must be a finite number, got {length_penalty!r}")


def generate(model, src, max_length, bos_token_id, eos_token_id, num_beams=1, src_key_padding_mask=None,
             length_penalty=1.0):
    """See ``Seq2SeqTransformer.generate``: ``(B, L)`` int64 ids, bos first, padded after each row's eos."""
    _check_args(model, max_length, bos_token_id, eos_token_id, num_beams, length_penalty)
    pad = model.pad_idx if model.pad_idx is not None else eos_token_id
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            memory = model.encode(src, src_key_padding_mask)  # (B, S, C); checks src and the mask
            mask = None if src_key_padding_mask is None else src_key_padding_mask.numpy()  # (B, S)
            if max_length == 1:
                rows = [[bos_token_id]] * memory.shape[0]
            elif num_beams == 1:
                rows = greedy_search(model, memory, mask, max_length, bos_token_id, eos_token_id)
            else:
                rows = beam_search(model, memory, mask, max_length, bos_token_id, eos_token_id, int(num_beams),
                                   float(length_penalty))
    finally:
        model.train(was_training)
    out = np.full((len(rows), max((len(r) for r in rows), default=1)), pad, dtype=np.int64)  # (B, L); B = 0: (0, 1)
    for b, r in enumerate(rows):
        out[b, :len(r)] = r
    return tensor(out)


def greedy_search(model, memory, mask, max_length, bos, eos):
    """The arg-max token at each step until eos or ``max_length`` tokens: one list of ids per source."""
    B = memory.shape[0]
    ids = np.full((B, max_length), bos, dtype=np.int64)  # (B, max_length); only [:, :length] is meaningful
    length = np.ones(B, dtype=np.int64)
    cache = DecoderCache(model, memory, mask)
    rows, tokens = np.arange(B), ids[:, 0]  # the sources still decoding, and their last tokens
    for t in range(1, max_length):
        nxt = cache.step(tokens).argmax(-1)  # (N,)
        ids[rows, t] = nxt
        length[rows] = t + 1
        going = nxt != eos
        if not going.all():
            rows, nxt = rows[going], nxt[going]
            if rows.size == 0:
                break
            cache.select(np.flatnonzero(going))
        tokens = nxt
    return [ids[b, :length[b]].tolist() for b in range(B)]


class _Finished:
    """The ``capacity`` best finished hypotheses of one source, as ``(score, ids)``."""

    def __init__(self, capacity):
        self.capacity, self.items = capacity, []

    def add(self, score, ids):
        if len(self.items) < self.capacity or score > self.worst():
            self.items.append((score, ids))
            self.items.sort(key=lambda item: -item[0])
            del self.items[self.capacity:]

    def worst(self):
        return self.items[-1][0]

    def full(self):
        return len(self.items) == self.capacity


def beam_search(model, memory, mask, max_length, bos, eos, num_beams, length_penalty):
    """Beam search as described at the top of this file: one list of ids per source."""
    B, K, V = memory.shape[0], num_beams, model.tgt_vocab_size
    n_max = max_length - 1  # the most tokens a hypothesis generates

    def score(sum_log_prob, n):
        return sum_log_prob / n ** length_penalty

    seqs = np.full((B, K, 1), bos, dtype=np.int64)  # (B, K, t) running hypotheses
    sums = np.full((B, K), -np.inf)  # (B, K) their summed log-probabilities; -inf: no hypothesis
    sums[:, 0] = 0.0
    finished = [_Finished(K) for _ in range(B)]
    done = np.zeros(B, dtype=bool)
    cache = DecoderCache(model, memory, mask)
    cache.select(np.repeat(np.arange(B), K))  # row i * K + k: hypothesis k of source i
    rows = np.arange(B)  # the sources still searching
    for t in range(1, max_length):  # each running hypothesis holds t tokens, t - 1 of them generated
        log_p = cache.step(seqs[rows, :, -1].ravel())  # (N*K, V)
        cand = (sums[rows][:, :, None] + log_p.reshape(rows.size, K, V)).reshape(rows.size, K * V)
        new_seqs = np.concatenate([seqs, np.full((B, K, 1), eos, dtype=np.int64)], axis=2)  # (B, K, t + 1)
        parents = np.zeros((rows.size, K), dtype=np.int64)  # the hypothesis each new one extends
        for i, b in enumerate(rows):
            order = np.argsort(-cand[i], kind="stable")[:2 * K]
            kept = []  # (beam, token, sum) of the new running hypotheses
            for rank, j in enumerate(order):
                k, tok, s = j // V, j % V, cand[i, j]
                if s == -np.inf:
                    break
                if tok == eos:
                    if rank < K:
                        finished[b].add(score(s, t), seqs[b, k].tolist() + [eos])
                else:
                    kept.append((k, tok, s))
                    if len(kept) == K:
                        break
            sums[b] = -np.inf
            for slot, (k, tok, s) in enumerate(kept):
                new_seqs[b, slot, :t] = seqs[b, k]
                new_seqs[b, slot, t] = tok
                sums[b, slot] = s
                parents[i, slot] = k
            best = sums[b].max()
            if best == -np.inf:
                done[b] = True
            elif finished[b].full() and t < n_max:
                reach = score(best, n_max if length_penalty > 0 else t + 1)  # the most a running one can score
                done[b] = finished[b].worst() >= reach
        seqs = new_seqs
        going = ~done[rows]
        if not going.any():
            break
        cache.select((np.flatnonzero(going)[:, None] * K + parents[going]).ravel())
        rows = rows[going]
    out = []
    for b in range(B):
        if not done[b]:  # max_length reached: the running hypotheses compete unfinished
            for k in np.flatnonzero(sums[b] > -np.inf):
                finished[b].add(score(sums[b, k], seqs.shape[2] - 1), seqs[b, k].tolist())
        out.append(finished[b].items[0][1])
    return out
