"""The GPT language model (the GPT-2 architecture) composed from bigcore's ``nn`` layers, after nanoGPT's model.py.

Parameter names, shapes and layouts are nanoGPT's, so a nanoGPT state dict converted to numpy loads with
``load_state_dict`` and gives the same logits. This composed path is the readable reference that the fused Rust
path is tested against. Where it differs from nanoGPT, on purpose:

- GELU is the tanh approximation (``approximate="tanh"``, GPT-2's own form); nanoGPT's ``nn.GELU()`` is exact.
- ``forward`` returns logits for every position, also without targets (nanoGPT keeps only the last one then).
- Bad input raises ValueError / IndexError / ShapeError naming the sizes, where nanoGPT asserts.

Dimension letters: B batch, T sequence length, C = n_embd, NH = n_head, HS = C // NH, V = vocab_size.
"""

import math
import numbers
from dataclasses import dataclass

from . import generation
from .. import _core, _tracing, nn
from .._creation import arange
from .._dtype import float32, int64, to_dtype
from .._tensor import Tensor, _wrap
from ..autograd import no_grad
from ..errors import DTypeError, OutOfRangeError, ShapeError
from ..nn import functional as F
from ..optim import AdamW


@dataclass
class GPTConfig:
    """The sizes of a GPT. The defaults are GPT-2 small (124M parameters)."""

    block_size: int = 1024  # longest sequence the model reads: the rows of the position embedding
    vocab_size: int = 50304  # GPT-2's 50257 tokens padded up to a multiple of 64
    n_layer: int = 12  # transformer blocks
    n_head: int = 12  # attention heads per block; n_embd must be a multiple of it
    n_embd: int = 768  # width of the residual stream (C)
    dropout: float = 0.0  # dropout on embeddings, attention weights and residual branches while training
    bias: bool = True  # biases in the Linears and LayerNorms, as GPT-2; False: none at all


def _is_size(n):
    return isinstance(n, numbers.Integral) and not isinstance(n, bool)


def _check_config(config):
    sizes = {"block_size": config.block_size, "vocab_size": config.vocab_size, "n_head": config.n_head,
             "n_embd": config.n_embd}
    for name, size in sizes.items():
        if not _is_size(size) or size < 1:
            raise ValueError(f"GPTConfig: {name} must be a positive integer, got {size!r}")
    if not _is_size(config.n_layer) or config.n_layer < 0:
        raise ValueError(f"GPTConfig: n_layer must be a non-negative integer, got {config.n_layer!r}")
    if config.n_embd % config.n_head != 0:
        raise ValueError(f"GPTConfig: n_embd ({config.n_embd}) must be divisible by n_head ({config.n_head})")
    if not 0.0 <= config.dropout < 1.0:
        raise ValueError(f"GPTConfig: dropout must be in [0, 1), got {config.dropout}")


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which each position attends to itself and the positions before it.

    Args:
        config: a :class:`GPTConfig` (``n_embd``, ``n_head``, ``dropout``, ``bias`` are used).
        dtype: the parameters' dtype.

    Shape: input and output ``(B, T, C)``.

    Example::

        attn = CausalSelfAttention(GPTConfig(n_embd=12, n_head=3))
        y = attn(bigcore.randn(2, 5, 12))  # (2, 5, 12)
    """

    def __init__(self, config, dtype=None):
        super().__init__()
        # query, key and value projections of all heads in one product: weight (3C, C), rows q, then k, then v
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias, dtype=dtype)
        # output projection back into the residual stream: weight (C, C)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias, dtype=dtype)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.dropout = config.dropout

    def forward(self, x):
        B, T, C = x.shape  # batch, sequence length, n_embd
        NH, HS = self.n_head, C // self.n_head  # heads, head size
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)  # 3 x (B, T, C)
        q = q.view(B, T, NH, HS).transpose(1, 2)  # (B, NH, T, HS)
        k = k.view(B, T, NH, HS).transpose(1, 2)  # (B, NH, T, HS)
        v = v.view(B, T, NH, HS).transpose(1, 2)  # (B, NH, T, HS)
        # softmax(q k^T / sqrt(HS)) v over keys at or before each query, dropout on the weights while training
        dropout_p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)  # (B, NH, T, HS)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C): the heads side by side
        return self.resid_dropout(self.c_proj(y))  # (B, T, C)


class MLP(nn.Module):
    """The feed-forward block: ``Linear(C, 4C)``, GELU (tanh form), ``Linear(4C, C)``, dropout.

    Args:
        config: a :class:`GPTConfig` (``n_embd``, ``dropout``, ``bias`` are used).
        dtype: the parameters' dtype.

    Shape: input and output ``(B, T, C)``.

    Example::

        mlp = MLP(GPTConfig(n_embd=12, n_head=3))
        y = mlp(bigcore.randn(2, 5, 12))  # (2, 5, 12)
    """

    def __init__(self, config, dtype=None):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias, dtype=dtype)
        self.gelu = nn.GELU(approximate="tanh")
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias, dtype=dtype)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        x = self.c_fc(x)  # (B, T, 4C)
        x = self.gelu(x)  # (B, T, 4C)
        x = self.c_proj(x)  # (B, T, C)
        return self.dropout(x)  # (B, T, C)


class Block(nn.Module):
    """One transformer block, pre-norm: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``.

    Args:
        config: a :class:`GPTConfig`.
        dtype: the parameters' dtype.

    Shape: input and output ``(B, T, C)``.

    Example::

        block = Block(GPTConfig(n_embd=12, n_head=3))
        y = block(bigcore.randn(2, 5, 12))  # (2, 5, 12)
    """

    def __init__(self, config, dtype=None):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias, dtype=dtype)
        self.attn = CausalSelfAttention(config, dtype)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias, dtype=dtype)
        self.mlp = MLP(config, dtype)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))  # (B, T, C)
        x = x + self.mlp(self.ln_2(x))  # (B, T, C)
        return x


class GPT(nn.Module):
    """A GPT language model (GPT-2's architecture, nanoGPT's names, layouts and initialization).

    The token embedding and the output head share one weight: ``transformer.wte.weight`` is ``lm_head.weight``
    (one Parameter: ``parameters()`` yields it once, ``state_dict()`` lists it under both names). Weights start
    N(0, 0.02), biases at zero, the residual projections (``c_proj.weight``) at N(0, 0.02 / sqrt(2 n_layer)).
    The MLP's GELU is the tanh approximation (nanoGPT uses the exact erf form).

    Two paths compute the same model. ``fused=True`` (the default) runs the whole forward as one call into the
    engine and the whole backward as one more (``rust/src/model/gpt.rs``: kernels called directly, activations in
    an arena reused across steps of one shape); ``fused=False`` composes the ``nn`` layers below, the readable
    reference the fused path is tested against (equal logits, loss and gradients). The composed path also runs
    when the fused one cannot: an untied head, modules replaced after construction, or dropout probabilities
    changed on single modules (the engine applies ``config.dropout`` at every site). With dropout while
    training the two paths draw different masks (the fused one from Philox counters, regenerated in its
    backward), so they agree in distribution, not sample by sample.

    Args:
        config: a :class:`GPTConfig`.
        dtype: ``bigcore.float32`` (the default) or ``bigcore.float64``.
        fused: run the fused engine path when it applies.

    Shape: ``idx`` and ``targets`` ``(B, T)`` int64 with ``T <= block_size``; logits ``(B, T, V)``; loss ``()``.

    Example::

        model = GPT(GPTConfig(block_size=64, vocab_size=65, n_layer=4, n_head=4, n_embd=128))
        logits, loss = model(idx, targets)  # (B, T, 65), ()

    Raises:
        ValueError: a config whose n_embd is not divisible by n_head, or with a size below 1.
        TypeError (``bigcore.DTypeError``): a dtype that is not floating point.
    """

    def __init__(self, config, dtype=None, fused=True):
        super().__init__()
        _check_config(config)
        self.fused = bool(fused)
        self._arena = _core._GptCache()  # the fused path's activations, reused while (B, T) stays the same
        dtype = to_dtype(dtype) or float32
        if not dtype.is_floating_point:
            raise DTypeError(f"GPT: dtype must be bigcore.float32 or bigcore.float64, got {dtype!r}")
        self.config = config
        C = config.n_embd
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, C, dtype=dtype),  # (V, C) token embedding
            wpe=nn.Embedding(config.block_size, C, dtype=dtype),  # (block_size, C) position embedding
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config, dtype) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(C, bias=config.bias, dtype=dtype),
        ))
        self.lm_head = nn.Linear(C, config.vocab_size, bias=False, dtype=dtype)  # weight (V, C)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying: one Parameter under two names

        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):  # residual projections, scaled as in GPT-2
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self, non_embedding=True):
        """The number of parameters, the tied embedding counted once.

        Args:
            non_embedding: leave out the position embedding (the token embedding stays in: it is also the
                output head's weight), as nanoGPT's ``get_num_params``.

        Returns:
            int.

        Example::

            model = GPT(GPTConfig())
            model.num_params()  # 123,689,472 (GPT-2 small with the padded vocabulary)
        """
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.transformer.wpe.weight.numel()
        return n

    def forward(self, idx, targets=None):
        """Logits of the next token at every position, and the mean cross-entropy when targets are given.

        Args:
            idx: int64 token ids in ``[0, vocab_size)``.
            targets: int64 ids of the next tokens, or None; positions with -1 are ignored.

        Returns:
            ``(logits, loss)``; loss is None without targets.

        Shape: idx ``(B, T)`` with ``T <= block_size``; targets ``(B, T)``; logits ``(B, T, V)``; loss ``()``.

        Example::

            logits, loss = model(idx, targets)  # (B, T, V), ()
            loss.backward()

        Raises:
            ValueError: T longer than block_size.
            IndexError (``bigcore.OutOfRangeError``): a token id outside ``[0, vocab_size)``, or a target id
                outside it other than -1.
            bigcore.ShapeError: idx not 2-D, or targets not of idx's shape.
            TypeError (``bigcore.DTypeError``): idx or targets not int64 tensors.
        """
        B, T = self._check_input(idx, targets)
        params = self._fused_params()
        if params is not None:
            dropout = self.config.dropout if self.training else 0.0
            logits = _wrap(_core.gpt(idx._c, [p._c for p in params], self.config.n_layer, self.config.n_head,
                                     self.config.bias, self._arena, dropout))  # (B, T, V)
        else:
            logits = self._composed_logits(idx, T)  # (B, T, V)
        if targets is None:
            return logits, None
        V = logits.shape[-1]
        loss = F.cross_entropy(logits.view(B * T, V), targets.view(B * T), ignore_index=-1)  # ()
        return logits, loss

    def _fused_params(self):
        """The parameters in the fused engine's order, or None when the fused path does not apply."""
        if not self.fused or _tracing.is_exporting():
            return None  # exporting to ONNX takes the composed path: the fused op has no ONNX form
        t = self.transformer
        if self.lm_head.weight is not t.wte.weight or type(t.ln_f) is not nn.LayerNorm or t.ln_f.eps != 1e-5:
            return None
        p_drop = self.config.dropout
        if t.drop.p != p_drop:
            return None  # the fused engine applies one dropout probability at every site
        params = [t.wte.weight, t.wpe.weight]  # (V, C), (block_size, C)
        for block in t.h:
            if type(block) is not Block or type(block.attn) is not CausalSelfAttention or type(block.mlp) is not MLP:
                return None
            if (block.attn.dropout, block.attn.resid_dropout.p, block.mlp.dropout.p) != (p_drop, p_drop, p_drop):
                return None
            for m in (block.ln_1, block.attn.c_attn, block.attn.c_proj, block.ln_2, block.mlp.c_fc, block.mlp.c_proj):
                params.append(m.weight)
                if self.config.bias:
                    params.append(m.bias)
        params.append(t.ln_f.weight)
        if self.config.bias:
            params.append(t.ln_f.bias)
        if any(p is None for p in params):
            return None
        return params

    def _composed_logits(self, idx, T):
        return self.lm_head(hidden_states(self.transformer, idx))  # (B, T, V)

    def _check_input(self, idx, targets):
        if not isinstance(idx, Tensor):
            raise TypeError(f"GPT: idx must be a bigcore.Tensor of int64 token ids, got {type(idx).__name__}")
        if idx.dtype is not int64:
            raise DTypeError(f"GPT: idx must hold int64 token ids, got {idx.dtype!r}")
        if idx.ndim != 2:
            raise ShapeError(f"GPT: idx must be (B, T) token ids, got shape {idx.shape}")
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"Cannot forward sequence of length {T}, block size is only {self.config.block_size}")
        # (B, T): a small copy, so that a bad id is named against the vocabulary; read from the engine handle, as
        # a check and not a value the forward computes with (no TracerWarning while exporting)
        ids = idx._c.numpy()
        if ids.size and (ids.min() < 0 or ids.max() >= self.config.vocab_size):
            bad = ids[(ids < 0) | (ids >= self.config.vocab_size)][0]
            raise OutOfRangeError(f"GPT: token id {bad} is out of range for vocab_size {self.config.vocab_size}")
        if targets is not None:
            if not isinstance(targets, Tensor):
                raise TypeError(f"GPT: targets must be a bigcore.Tensor of int64 ids, got {type(targets).__name__}")
            if targets.dtype is not int64:
                raise DTypeError(f"GPT: targets must hold int64 token ids, got {targets.dtype!r}")
            if targets.shape != idx.shape:
                raise ShapeError(f"GPT: targets of shape {targets.shape} do not match idx of shape {idx.shape}")
        return B, T

    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, do_sample=True,
                 eos_token_id=None, generator=None):
        """Continue each row of ``idx`` by up to ``max_new_tokens`` tokens.

        The fused path keeps a key/value cache in the engine, so each new token costs O(current length); once a
        row holds ``block_size`` tokens the context is cropped to the last ``block_size``, as nanoGPT does.
        Dropout is never applied (the cache computes in evaluation semantics); call ``eval()`` for the composed
        path too.

        Args:
            idx: int64 prompt ids, every row the same length (at least 1).
            max_new_tokens: how many tokens to add.
            temperature: divides the logits; 0 is greedy.
            top_k: keep only the k most likely tokens (None: all).
            top_p: keep the smallest set of most likely tokens whose probability reaches top_p (None: all).
            do_sample: draw from the distribution (``bigcore.manual_seed`` makes it reproducible); False is
                greedy (the arg-max).
            eos_token_id: stop once every row has produced it; a row that ended repeats it.
            generator: a ``bigcore.Generator`` to draw from (None: the library's default generator).

        Returns:
            int64 ids ``(B, T + new)``, the prompt first.

        Example::

            out = model.generate(bigcore.tensor([[0]]), 100, temperature=0.8, top_k=40)  # (1, 101)
            text = tokenizer.decode(out[0].tolist())
        """
        return generation.generate(self, idx, max_new_tokens, temperature, top_k, top_p, do_sample, eos_token_id,
                                   generator)

    def stream(self, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, do_sample=True,
               eos_token_id=None, generator=None):
        """:meth:`generate` one token at a time: yields each new token of every row, ``(B,)`` int64, as soon as it
        is picked.

        Example::

            for tok in model.stream(prompt, 200):
                print(tokenizer.decode(tok.tolist()), end="", flush=True)
        """
        return generation.stream(self, idx, max_new_tokens, temperature, top_k, top_p, do_sample, eos_token_id,
                                 generator)

    def crop_block_size(self, block_size):
        """Shorten the longest sequence the model reads (model surgery, e.g. after loading GPT-2's 1024):
        keeps the first ``block_size`` rows of the position embedding in a new Parameter.

        Args:
            block_size: the new block size, from 1 to the current one.

        Example::

            model.crop_block_size(256)
            model.config.block_size  # 256
        """
        if not _is_size(block_size) or not 1 <= block_size <= self.config.block_size:
            raise ValueError(f"crop_block_size: block_size must be in [1, {self.config.block_size}], got {block_size}")
        block_size = int(block_size)
        self.config.block_size = block_size
        wpe = self.transformer.wpe
        with no_grad():
            wpe.weight = nn.Parameter(wpe.weight[:block_size].contiguous())  # (block_size, C)
        wpe.num_embeddings = block_size

    @classmethod
    def from_pretrained(cls, path, dtype=None, dropout=0.0):
        """A GPT with the weights of a local Hugging Face GPT-2 directory (``config.json`` and
        ``model.safetensors``, as ``transformers`` writes them and the Hub serves them; nothing is downloaded).

        Sizes come from the config (``n_positions``, ``n_embd``, ``n_layer``, ``n_head``, ``vocab_size``), the
        ``Conv1D`` weights are transposed to ``Linear`` layout, the ``attn.bias`` mask buffers are ignored. The
        logits equal ``transformers.GPT2LMHeadModel``'s on the same files. As with Hugging Face, the model comes
        back in eval mode.

        Args:
            path: the directory (``gpt2/`` holding ``config.json`` and ``model.safetensors`` or its shards).
            dtype: ``bigcore.float32`` (the default) or ``bigcore.float64``.
            dropout: the dropout for fine-tuning (nanoGPT's ``override_args``); the config's ``*_pdrop`` are not used.

        Returns:
            GPT.

        Example::

            model = GPT.from_pretrained("gpt2")  # a local copy of Hugging Face's gpt2 directory
            logits, _ = model(bigcore.tensor([[15496, 995]]))  # (1, 2, 50257)

        Raises:
            FileNotFoundError: no such directory, or no config.json / model.safetensors in it.
            ValueError: a config bigcore's GPT does not compute (the option is named: e.g. an activation other
                than the tanh GELU, a layer_norm_epsilon other than 1e-5), a tensor missing or of the wrong shape,
                a corrupt weights file.
        """
        from .hf_gpt2 import load_gpt

        return load_gpt(cls, path, dtype=dtype, dropout=dropout)

    def save_pretrained(self, path):
        """Write the model as a Hugging Face GPT-2 directory: ``config.json`` and ``model.safetensors`` (Conv1D
        layouts, the tied head not repeated), which ``transformers.GPT2LMHeadModel.from_pretrained(path)`` and
        :meth:`from_pretrained` load. A model built with ``bias=False`` is written with zero biases.

        Args:
            path: a directory, created if missing; the two files in it are replaced.

        Example::

            model.save_pretrained("my-gpt")
            same = GPT.from_pretrained("my-gpt")
        """
        from .hf_gpt2 import save_gpt

        save_gpt(self, path)

    def configure_optimizers(self, weight_decay, learning_rate, betas):
        """AdamW with weight decay on the parameters of two or more dims (matrices and embeddings) only; biases
        and layer-norm weights are not decayed, as nanoGPT.

        Args:
            weight_decay: decoupled weight decay of the first group.
            learning_rate: AdamW's ``lr``.
            betas: AdamW's ``(beta1, beta2)``.

        Returns:
            ``bigcore.optim.AdamW`` with two parameter groups: ``[decayed, not decayed]``.

        Example::

            optimizer = model.configure_optimizers(0.1, 1e-3, (0.9, 0.99))
            optimizer.step()
        """
        params = [p for p in self.parameters() if p.requires_grad]
        decay = [p for p in params if p.ndim >= 2]
        no_decay = [p for p in params if p.ndim < 2]
        groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        return AdamW(groups, lr=learning_rate, betas=betas)


def hidden_states(transformer, idx):
    """The trunk of a GPT, composed: token and position embeddings, the blocks, the final layer norm.

    Args:
        transformer: a GPT's ``transformer`` (``wte``, ``wpe``, ``drop``, ``h``, ``ln_f``).
        idx: int64 token ids, checked by the caller.

    Returns:
        The last hidden states, the input of the output head (or of a classifier's ``score``).

    Shape: idx ``(B, T)``; output ``(B, T, C)``.

    Example::

        x = hidden_states(model.transformer, idx)  # (B, T, C)
        logits = model.lm_head(x)  # (B, T, V)
    """
    T = idx.shape[1]
    pos = arange(0, T, dtype=int64)  # (T,)
    tok_emb = transformer.wte(idx)  # (B, T, C)
    pos_emb = transformer.wpe(pos)  # (T, C)
    x = transformer.drop(tok_emb + pos_emb)  # (B, T, C)
    for block in transformer.h:
        x = block(x)  # (B, T, C)
    return transformer.ln_f(x)  # (B, T, C)


__all__ = ["GPTConfig", "GPT", "Block", "CausalSelfAttention", "MLP", "hidden_states"]
