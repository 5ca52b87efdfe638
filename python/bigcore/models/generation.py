"""Text generation for the GPT: ``generate`` (the whole continuation) and ``stream`` (token by token), with
Hugging Face's sampling options and nanoGPT's cropping of the context to the block size.

The fused path keeps a key/value cache in the engine (``_core._GptKv``): the prompt goes through the model once
(prefill) and each new token costs one position's work against the cached keys and values, O(current length)
rather than a whole forward. Once a row reaches ``block_size`` tokens the context is cropped to the last
``block_size`` (nanoGPT's ``idx[:, -block_size:]``), which restarts the cache from position 0 with that window.
A model on its composed path (``fused=False``) runs a whole forward of the cropped context for each token.
The next token is picked by ``_core.sample_next``: temperature, top-k, top-p, then a draw from the library's
generator (``bigcore.manual_seed`` makes it reproducible) or the ``generator`` given, or the arg-max when ``do_sample=False`` or the
temperature is 0.
"""

import numpy as np

from .. import _core
from .._creation import tensor
from .._functions import cat
from .._random import _handle
from .._tensor import Tensor, _wrap
from ..autograd import no_grad
from ..errors import DTypeError, ShapeError


def _check(model, idx, max_new_tokens, temperature, top_k, top_p):
    from .._dtype import int64

    if not isinstance(idx, Tensor) or idx.dtype is not int64 or idx.ndim != 2:
        got = f"{idx.dtype} of shape {idx.shape}" if isinstance(idx, Tensor) else type(idx).__name__
        raise (DTypeError if isinstance(idx, Tensor) and idx.ndim == 2 else ShapeError)(
            f"generate: idx must be int64 token ids of shape (B, T), got {got}")
    if idx.shape[1] < 1:
        raise ValueError("generate: the prompt must hold at least one token per row")
    if not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens < 0:
        raise ValueError(f"generate: max_new_tokens must be a non-negative integer, got {max_new_tokens!r}")
    if temperature is None or not temperature >= 0:
        raise ValueError(f"generate: temperature must be non-negative, got {temperature}")
    if top_k is not None and (not isinstance(top_k, (int, np.integer)) or top_k < 1):
        raise ValueError(f"generate: top_k must be a positive integer, got {top_k!r}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"generate: top_p must be in (0, 1], got {top_p}")
    ids = idx.numpy()
    V = model.config.vocab_size
    if ids.min() < 0 or ids.max() >= V:
        bad = ids[(ids < 0) | (ids >= V)][0]
        from ..errors import OutOfRangeError

        raise OutOfRangeError(f"generate: token id {bad} is out of range for vocab_size {V}")
    return ids


class _Logits:
    """The last position's logits (B, V) of each row, from the cache or from whole forwards."""

    def __init__(self, model, batch):
        self.model = model
        self.block = model.config.block_size
        params = model._fused_params()
        cfg = model.config
        self.kv = None if params is None else _core._GptKv([p._c for p in params], cfg.n_layer, cfg.n_head, cfg.bias,
                                                           batch)

    def first(self, ids):
        context = ids[:, -self.block:]
        if self.kv is None:
            return self.model(tensor(context))[0][:, -1]
        return _wrap(self.kv.step(tensor(context)._c))

    def next(self, ids, new):
        if self.kv is None or len(self.kv) + 1 > self.block:
            if self.kv is not None:
                self.kv.clear()
            return self.first(ids)
        return _wrap(self.kv.step(tensor(new[:, None])._c))


def stream(model, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, do_sample=True, eos_token_id=None,
           generator=None):
    """Yield the next token of every row, (B,) int64, as each is produced (see :func:`generate`)."""
    ids = _check(model, idx, max_new_tokens, temperature, top_k, top_p)
    handle = _handle(generator)
    if max_new_tokens == 0:
        return
    finished = np.zeros(ids.shape[0], dtype=bool)
    with no_grad():
        source = _Logits(model, ids.shape[0])
        logits = source.first(ids)
        for i in range(max_new_tokens):
            new = _wrap(_core.sample_next(logits._c, float(temperature), top_k, top_p, bool(do_sample),
                                              handle)).numpy()
            if eos_token_id is not None:
                new[finished] = eos_token_id  # rows that ended keep emitting the end token
                finished |= new == eos_token_id
            ids = np.concatenate([ids, new[:, None]], axis=1)
            yield tensor(new)
            if i + 1 == max_new_tokens or (eos_token_id is not None and finished.all()):
                return
            logits = source.next(ids, new)


def generate(model, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, do_sample=True, eos_token_id=None,
             generator=None):
    """Extend each row of ``idx`` by up to ``max_new_tokens`` tokens (see ``GPT.generate``)."""
    new = [t.reshape(-1, 1) for t in stream(model, idx, max_new_tokens, temperature, top_k, top_p, do_sample,
                                               eos_token_id, generator)]
    return cat([idx] + new, dim=1) if new else idx.clone()
