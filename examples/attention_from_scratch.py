"""Multi-head attention written by hand, as in the specification, checked against ``nn.MultiheadAttention`` with
the same weights: without a mask, with a causal mask, and with padding.

The one correction to the specification's code is how the heads are split. ``(B, T, d_model)`` must become
``(B, H, T, d_k)`` by ``view(B, T, H, d_k)`` then ``permute(0, 2, 1, 3)``: the features of one position are cut into
``H`` slices. A bare ``view(B, H, T, d_k)`` reinterprets memory instead, so each "head" gets a block of consecutive
positions' features and attends between pieces of different positions — the shapes are right and the numbers are
wrong. The script runs that version too and prints how far off it is.

    python examples/attention_from_scratch.py

The last line is machine-readable: ``unmasked=… causal=… padding=… naive_view=…`` (largest absolute differences
from ``nn.MultiheadAttention``).
"""

import argparse
import math

import numpy as np

import bigcore
import bigcore.nn as nn
import bigcore.nn.functional as F


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention over ``num_heads`` heads; ``mask`` is 1 (or True) where attention is allowed,
    broadcastable to ``(B, H, T_q, T_k)``. Inputs ``(B, T, d_model)``; returns the output and the weights."""

    def __init__(self, d_model, num_heads, dropout=0.1, split="permute"):
        super().__init__()
        assert d_model % num_heads == 0, "d_model must be divisible by num_heads"
        self.d_model, self.num_heads, self.d_k = d_model, num_heads, d_model // num_heads
        self.W_q = nn.Linear(d_model, d_model)
        self.W_k = nn.Linear(d_model, d_model)
        self.W_v = nn.Linear(d_model, d_model)
        self.W_o = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)
        self.split = split

    def split_heads(self, x):
        B, T, _ = x.shape
        if self.split == "naive_view":  # the mistake: same shape, wrong elements
            return x.view(B, self.num_heads, T, self.d_k)
        return x.view(B, T, self.num_heads, self.d_k).permute(0, 2, 1, 3)  # (B, H, T, d_k)

    def forward(self, query, key, value, mask=None):
        B, T, _ = query.shape
        Q, K, V = self.split_heads(self.W_q(query)), self.split_heads(self.W_k(key)), self.split_heads(self.W_v(value))
        scores = Q @ K.transpose(-2, -1) / math.sqrt(self.d_k)  # (B, H, T_q, T_k)
        if mask is not None:
            scores = scores.masked_fill(mask == 0, float("-inf"))
        weights = self.dropout(F.softmax(scores, dim=-1))
        out = (weights @ V).permute(0, 2, 1, 3).reshape(B, T, self.d_model)  # heads side by side again
        return self.W_o(out), weights


def copy_into(mine, theirs):
    """Give ``nn.MultiheadAttention`` the hand-written module's weights: its ``in_proj`` stacks W_q, W_k, W_v."""
    with bigcore.no_grad():
        theirs.in_proj_weight.copy_(bigcore.cat([mine.W_q.weight, mine.W_k.weight, mine.W_v.weight]))
        theirs.in_proj_bias.copy_(bigcore.cat([mine.W_q.bias, mine.W_k.bias, mine.W_v.bias]))
        theirs.out_proj.weight.copy_(mine.W_o.weight)
        theirs.out_proj.bias.copy_(mine.W_o.bias)


def compare(batch=3, seq=7, d_model=32, heads=4, seed=0):
    """Largest absolute differences between the hand-written attention and ``nn.MultiheadAttention``."""
    bigcore.manual_seed(seed)
    mine = MultiHeadAttention(d_model, heads, dropout=0.1).eval()  # eval: dropout off, as theirs
    theirs = nn.MultiheadAttention(d_model, heads, dropout=0.1, batch_first=True).eval()
    copy_into(mine, theirs)
    x = bigcore.randn(batch, seq, d_model)
    lengths = np.random.default_rng(seed).integers(1, seq + 1, size=batch)
    padded = np.arange(seq)[None, :] >= lengths[:, None]  # (B, T): True on padding
    causal = np.tril(np.ones((seq, seq), bool))  # 1 = may attend
    cases = {
        # the hand-written module's mask says where attention is allowed; nn.MultiheadAttention's bool masks say
        # where it is not (PyTorch's convention)
        "unmasked": (None, {}),
        "causal": (bigcore.tensor(causal), {"attn_mask": bigcore.tensor(~causal)}),
        "padding": (bigcore.tensor(~padded[:, None, None, :]), {"key_padding_mask": bigcore.tensor(padded)}),
    }
    diffs = {}
    with bigcore.no_grad():
        for name, (mask, kwargs) in cases.items():
            a, w_mine = mine(x, x, x, mask)
            b, w_theirs = theirs(x, x, x, need_weights=True, average_attn_weights=False, **kwargs)
            diffs[name] = max(float(np.abs(a.numpy() - b.numpy()).max()),
                              float(np.abs(w_mine.numpy() - w_theirs.numpy()).max()))
        mine.split = "naive_view"
        diffs["naive_view"] = float(np.abs(mine(x, x, x)[0].numpy() - theirs(x, x, x)[0].numpy()).max())
    return diffs


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    diffs = compare(seed=args.seed)
    for name, d in diffs.items():
        verdict = "differs: heads mixed up" if name == "naive_view" else "agrees"
        print(f"  {name:10s} max |hand-written - nn.MultiheadAttention| = {d:.2e}  ({verdict})")
    print(" ".join(f"{k}={v:.2e}" for k, v in diffs.items()))
    return diffs


if __name__ == "__main__":
    main()
