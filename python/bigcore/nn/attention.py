"""``MultiheadAttention`` with PyTorch's parameters (``in_proj_weight (3E, E)``, ``in_proj_bias``, ``out_proj``),
arguments, mask conventions and returned attention weights."""

import math

from .. import _core
from .._dtype import bool_
from .._tensor import Tensor, _as_c, _wrap
from ..errors import ShapeError
from . import functional as F
from . import init
from .layers import Linear
from .module import Module
from .parameter import Parameter


def _mask_tensor(mask, like, what):
    """A mask given as a Tensor or array-like: bool as is, float in ``like``'s dtype."""
    m = mask if isinstance(mask, Tensor) else _wrap(_as_c(mask))
    if m.dtype is bool_:
        return m
    if not m.is_floating_point():
        raise TypeError(f"{what} must be bool or float, got {m.dtype!r}")
    return m.to(like.dtype)


def _additive(m, like):
    """A mask in ``scaled_dot_product_attention``'s convention (bool: True takes part) as added scores."""
    if m.dtype is not bool_:
        return m
    return _wrap(_core.where_(m._c, _as_c(0.0, like), _as_c(float("-inf"), like)))


def _causal(L, S):
    """PyTorch's causal mask in SDPA's convention: query i takes keys j <= i, ``tril(ones(L, S))``."""
    from .._creation import ones

    return ones(L, S, dtype=bool_).tril()


def _combined(a, b, like):
    """Two masks in SDPA's convention as one: both bool stay bool (a key takes part where both let it), else
    their additive forms are summed."""
    if a is None or b is None:
        return b if a is None else a
    if a.dtype is bool_ and b.dtype is bool_:
        return a & b
    return _additive(a, like) + _additive(b, like)


class MultiheadAttention(Module):
    """Attention over ``num_heads`` heads of size ``embed_dim // num_heads``.

    Shapes (``batch_first=False``): query ``(L, N, E)``, key/value ``(S, N, E)``, output ``(L, N, E)``;
    with ``batch_first=True`` the batch comes first; unbatched ``(L, E)`` inputs work too.
    ``attn_mask`` ``(L, S)`` or ``(N*num_heads, L, S)`` and ``key_padding_mask`` ``(N, S)``: bool masks mark
    positions NOT allowed to attend (True = masked), float masks are added to the scores.
    Returns ``(output, weights)``; weights are ``(N, L, S)`` averaged over heads (or ``(N, num_heads, L, S)``),
    or None when ``need_weights=False``.

    The output comes from ``F.scaled_dot_product_attention`` (the fused kernel, with dropout in training); the
    weights, which that kernel never forms, are computed separately and only when ``need_weights`` asks for them
    (they are the probabilities before dropout). A query whose every key is masked gets a zero output.
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False,
                 kdim=None, vdim=None, batch_first=False, dtype=None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be a positive multiple of num_heads ({num_heads})")
        if add_bias_kv or add_zero_attn or (kdim not in (None, embed_dim)) or (vdim not in (None, embed_dim)):
            raise ValueError("add_bias_kv, add_zero_attn and kdim/vdim different from embed_dim are not supported")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout probability has to be in [0, 1), but got {dropout}")
        from .._creation import param_storage

        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.dropout, self.batch_first = float(dropout), batch_first
        self.in_proj_weight = Parameter(param_storage((3 * embed_dim, embed_dim), dtype))
        if bias:
            self.in_proj_bias = Parameter(param_storage((3 * embed_dim,), dtype))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype)
        init.xavier_uniform_(self.in_proj_weight)
        if bias:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        unbatched = query.ndim == 2
        if unbatched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        if query.ndim != 3 or key.ndim != 3 or value.ndim != 3:
            raise ShapeError(f"MultiheadAttention: expected 2-D or 3-D query, key, value, got {query.shape}, {key.shape}, {value.shape}")
        if not self.batch_first:  # (L, N, E) -> (N, L, E)
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        N, L, E = query.shape
        S = key.shape[1]
        if E != self.embed_dim or key.shape[2] != E or value.shape[2] != E or key.shape[0] != N or value.shape[:2] != key.shape[:2]:
            raise ShapeError(f"MultiheadAttention(embed_dim={self.embed_dim}): query {query.shape}, key {key.shape}, value {value.shape} do not fit")
        H, D = self.num_heads, self.head_dim
        w_q, w_k, w_v = self.in_proj_weight.chunk(3)
        b_q, b_k, b_v = self.in_proj_bias.chunk(3) if self.in_proj_bias is not None else (None, None, None)
        q = F.linear(query, w_q, b_q).reshape(N, L, H, D).transpose(1, 2)  # (N, H, L, D)
        k = F.linear(key, w_k, b_k).reshape(N, S, H, D).transpose(1, 2)  # (N, H, S, D)
        v = F.linear(value, w_v, b_v).reshape(N, S, H, D).transpose(1, 2)  # (N, H, S, D)
        # one mask in F.scaled_dot_product_attention's convention (bool: True takes part), broadcast over
        # (N, H, L, S); this module's bool masks mean the opposite (True = masked out), so they are inverted here
        mask, causal = None, False
        if attn_mask is not None:
            m = _mask_tensor(attn_mask, q, "attn_mask")
            if m.ndim == 3 and m.shape == (N * H, L, S):
                m = m.reshape(N, H, L, S)
            elif m.shape != (L, S):
                raise ShapeError(f"attn_mask of shape {m.shape} should be ({L}, {S}) or ({N * H}, {L}, {S})")
            mask = ~m if m.dtype is bool_ else m
        elif is_causal:
            causal = True
        if key_padding_mask is not None:
            kpm = _mask_tensor(key_padding_mask, q, "key_padding_mask")
            if kpm.shape != (N, S):
                raise ShapeError(f"key_padding_mask of shape {kpm.shape} should be ({N}, {S})")
            kpm = (~kpm if kpm.dtype is bool_ else kpm).reshape(N, 1, 1, S)
            if causal:  # is_causal joins the padding as an explicit mask
                mask, causal = _causal(L, S), False
            mask = _combined(mask, kpm, q)
        dropout_p = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=causal)
        out = out.transpose(1, 2).reshape(N, L, E)  # (N, L, E)
        out = self.out_proj(out)
        if not self.batch_first:
            out = out.transpose(0, 1)
        if unbatched:
            out = out.squeeze(1)
        weights = None
        if need_weights:
            # the fused kernel never forms the weights: they are computed here, composed, only when asked for
            # (the probabilities before dropout)
            scores = (q @ k.mT) * (1.0 / math.sqrt(D))  # (N, H, L, S)
            if causal:
                mask = _causal(L, S)
            if mask is not None:
                scores = scores + _additive(mask, scores)
            attn = scores.softmax(-1)
            weights = attn.mean(1) if average_attn_weights else attn
            if unbatched:
                weights = weights.squeeze(0)
        return out, weights

    def extra_repr(self):
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, batch_first={self.batch_first}"
