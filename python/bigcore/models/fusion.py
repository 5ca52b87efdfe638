"""``CrossModalFusion``: one representation from several modalities (an image's pixels and its text, audio and
video, two views of the same object), by concatenation, by a learned gate, or by cross-attention.

The three modes, for modalities ``x_1 .. x_n`` of widths ``D_1 .. D_n`` and an output width ``C``:

- ``"concat"``: ``Linear(D_1 + .. + D_n, C)(cat(x_1, .., x_n))``, the specification's concatenate-then-project
  (its projection was ``Linear(D, C)`` after concatenating two ``D``-wide inputs: the width is the sum).
- ``"gated"``: each modality projected to ``h_i = tanh(W_i x_i)``; a gate ``z = softmax_i(G cat(x_1, .., x_n))``
  chooses, feature by feature, how much of each modality to take: ``sum_i z_i * h_i`` (for two modalities this
  is the Gated Multimodal Unit of Arevalo et al., 2017, whose sigmoid gate is a softmax over two).
- ``"attention"``: each modality's tokens, projected to ``C``, attend to the tokens of all the others
  (``nn.MultiheadAttention``, with a residual connection and ``LayerNorm``); each modality's tokens are then
  averaged (padding excluded) and the averages concatenated and projected to ``C``. Attention and the average
  are blind to token order: when order matters, put it in the tokens (a positional embedding or feature).
"""

import numbers

from .. import nn
from .._creation import zeros
from .._dtype import bool_
from .._functions import cat, stack
from ..errors import ShapeError
from ..nn import functional as F

FUSIONS = ("concat", "gated", "attention")


class CrossModalFusion(nn.Module):
    """Fuse ``n >= 2`` modalities into one ``output_dim``-wide representation.

    Args:
        input_dims: the feature width of each modality, e.g. ``(64, 16)``; an int ``D`` means two modalities of
            ``D`` features each (the specification's form).
        output_dim: the width ``C`` of the fused representation.
        fusion: ``"concat"``, ``"gated"`` or ``"attention"`` (see the module's docstring).
        num_heads: attention heads (``"attention"`` only; ``output_dim`` must be a multiple of it).
        dropout: dropout on the fused representation (``"concat"``, ``"gated"``) or inside the attention.
        dtype: ``bigcore.float32`` (default) or ``bigcore.float64``.

    Shape, called as ``fusion(x_1, .., x_n)`` (or ``fusion([x_1, .., x_n])``):

    - ``"concat"``, ``"gated"``: each ``x_i`` is ``(B, D_i)`` or ``(B, L, D_i)`` with one ``L`` for all (fused
      position by position); the output is ``(B, C)`` or ``(B, L, C)``.
    - ``"attention"``: each ``x_i`` is a token sequence ``(B, L_i, D_i)`` (lengths may differ; a ``(B, D_i)``
      vector is one token); ``key_padding_masks`` is an optional list with one ``(B, L_i)`` bool mask or None per
      modality, True marking padding. The output is ``(B, C)``.

    Example::

        fusion = CrossModalFusion((64, 16), 128, fusion="gated")
        z = fusion(pixels, profiles)  # (B, 64), (B, 16) -> (B, 128)

    Raises:
        ValueError: fewer than two modalities, an unknown ``fusion``, ``output_dim`` not a multiple of
            ``num_heads``; at call time (``ShapeError``) a wrong number of modalities, a width other than the
            declared one, batch sizes or sequence lengths that differ, or a padding mask of the wrong shape.
    """

    def __init__(self, input_dims, output_dim, fusion="concat", num_heads=1, dropout=0.0, dtype=None):
        super().__init__()
        if isinstance(input_dims, numbers.Integral):
            input_dims = (int(input_dims), int(input_dims))
        input_dims = tuple(int(d) for d in input_dims)
        if len(input_dims) < 2:
            raise ValueError(f"CrossModalFusion: needs at least two modalities, got input_dims={input_dims}")
        if any(d <= 0 for d in input_dims) or output_dim <= 0:
            raise ValueError(f"CrossModalFusion: widths must be positive, got input_dims={input_dims}, "
                             f"output_dim={output_dim}")
        if fusion not in FUSIONS:
            raise ValueError(f"CrossModalFusion: fusion must be one of {FUSIONS}, got {fusion!r}")
        if fusion == "attention" and (num_heads <= 0 or output_dim % num_heads):
            raise ValueError(f"CrossModalFusion: output_dim ({output_dim}) must be a positive multiple of "
                             f"num_heads ({num_heads})")
        self.input_dims, self.output_dim, self.fusion = input_dims, int(output_dim), fusion
        self.num_heads, self.dropout = int(num_heads), float(dropout)
        n, total = len(input_dims), sum(input_dims)
        if fusion == "concat":
            self.proj = nn.Linear(total, output_dim, dtype=dtype)
        elif fusion == "gated":
            self.projs = nn.ModuleList(nn.Linear(d, output_dim, dtype=dtype) for d in input_dims)
            self.gate = nn.Linear(total, n * output_dim, dtype=dtype)
        else:
            self.projs = nn.ModuleList(nn.Linear(d, output_dim, dtype=dtype) for d in input_dims)
            self.attns = nn.ModuleList(
                nn.MultiheadAttention(output_dim, num_heads, dropout=dropout, batch_first=True, dtype=dtype)
                for _ in input_dims)
            self.norms = nn.ModuleList(nn.LayerNorm(output_dim, dtype=dtype) for _ in input_dims)
            self.out = nn.Linear(n * output_dim, output_dim, dtype=dtype)

    def forward(self, *inputs, key_padding_masks=None):
        if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)):
            inputs = tuple(inputs[0])
        self._check(inputs)
        if self.fusion == "attention":
            return self._attend(inputs, key_padding_masks)
        if key_padding_masks is not None:
            raise ValueError(f"CrossModalFusion: key_padding_masks apply to fusion='attention', not {self.fusion!r}")
        if self.fusion == "concat":
            return F.dropout(self.proj(cat(list(inputs), -1)), self.dropout, self.training)
        hs = stack([F.tanh(p(x)) for p, x in zip(self.projs, inputs)], -2)  # (..., n, C)
        z = self.gate(cat(list(inputs), -1))
        z = F.softmax(z.reshape(*z.shape[:-1], len(inputs), self.output_dim), -2)  # (..., n, C)
        return F.dropout((z * hs).sum(-2), self.dropout, self.training)

    def _check(self, inputs):
        n = len(self.input_dims)
        if len(inputs) != n:
            raise ShapeError(f"CrossModalFusion: expected {n} modalities, got {len(inputs)}")
        for i, (x, d) in enumerate(zip(inputs, self.input_dims)):
            if x.ndim not in (2, 3) or x.shape[-1] != d:
                raise ShapeError(f"CrossModalFusion: modality {i} should be (B, {d}) or (B, L, {d}), got {x.shape}")
        batches = [x.shape[0] for x in inputs]
        if len(set(batches)) > 1:
            raise ShapeError(f"CrossModalFusion: the modalities' batch sizes differ: {batches} "
                             f"(shapes {[x.shape for x in inputs]})")
        if self.fusion != "attention":
            lead = [x.shape[:-1] for x in inputs]
            if len(set(lead)) > 1:
                raise ShapeError(f"CrossModalFusion(fusion={self.fusion!r}) fuses position by position: the "
                                 f"modalities' leading shapes must agree, got {lead}")

    def _attend(self, inputs, masks):
        n = len(inputs)
        xs = [x.unsqueeze(1) if x.ndim == 2 else x for x in inputs]  # (B, L_i, D_i)
        B = xs[0].shape[0]
        if masks is None:
            masks = [None] * n
        if len(masks) != n:
            raise ShapeError(f"CrossModalFusion: key_padding_masks needs one entry per modality ({n}), got {len(masks)}")
        keep = []  # (B, L_i) float: 1 for real tokens, 0 for padding
        for i, (x, m) in enumerate(zip(xs, masks)):
            if m is None:
                keep.append(None)
                continue
            if tuple(m.shape) != (B, x.shape[1]) or m.dtype is not bool_:
                raise ShapeError(f"CrossModalFusion: key_padding_masks[{i}] should be bool ({B}, {x.shape[1]}), "
                                 f"got {m.dtype} {m.shape}")
            keep.append((~m).to(x.dtype))
        ps = [p(x) for p, x in zip(self.projs, xs)]  # (B, L_i, C)
        pooled = []
        for i in range(n):
            others = [j for j in range(n) if j != i]
            ctx = cat([ps[j] for j in others], 1)
            kpm = None
            if any(masks[j] is not None for j in others):
                kpm = cat([masks[j] if masks[j] is not None else zeros(B, xs[j].shape[1], dtype=bool_) for j in others], 1)
            a, _ = self.attns[i](ps[i], ctx, ctx, key_padding_mask=kpm, need_weights=False)
            h = self.norms[i](ps[i] + a)
            if keep[i] is None:
                pooled.append(h.mean(1))
            else:
                w = keep[i].unsqueeze(-1)
                pooled.append((h * w).sum(1) / w.sum(1).clamp(min=1.0))
        return self.out(cat(pooled, -1))

    def extra_repr(self):
        s = f"input_dims={self.input_dims}, output_dim={self.output_dim}, fusion={self.fusion!r}"
        if self.fusion == "attention":
            s += f", num_heads={self.num_heads}"
        return s + (f", dropout={self.dropout}" if self.dropout else "")

