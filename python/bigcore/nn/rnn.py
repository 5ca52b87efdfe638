"""``LSTM`` with PyTorch's arguments, parameter names (``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``,
``bias_hh_l0``, ``..._reverse``), gate order (i, f, g, o), initialization and return value
``output, (h_n, c_n)``. Each layer and direction runs its whole sequence as one fused engine call; the reverse
direction runs backwards in time inside the engine, on the sequence as it is (no flipped copies)."""

import math

from .. import _core
from .._creation import param_storage, zeros
from .._functions import cat, stack
from .._tensor import _wrap
from ..errors import ShapeError
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter


class LSTM(Module):
    """A multi-layer long short-term memory network.

    Args:
        input_size, hidden_size: features in the input and in the hidden state.
        num_layers: stacked layers (default 1). bias: use ``b_ih`` and ``b_hh`` (default True).
        batch_first: input and output are ``(B, T, *)`` instead of ``(T, B, *)``.
        dropout: dropout on the outputs of every layer but the last, while training.
        bidirectional: also run each layer backwards in time and concatenate the two outputs.

    Shape: input ``(T, B, input_size)`` (or batch first, or unbatched ``(T, input_size)``); optional
    ``(h_0, c_0)`` each ``(num_layers * num_directions, B, hidden_size)``. Returns ``output``
    ``(T, B, num_directions * hidden_size)`` and ``(h_n, c_n)`` shaped like ``h_0``.

    Memory: while a graph is recorded, each layer and direction keeps its gate activations and cell states,
    ``(5T + 1) * B * hidden_size`` values, for the backward (as PyTorch does); above 1 GiB per layer and direction
    it keeps none and its backward recomputes them (one more forward pass of that layer).

    Example::

        >>> lstm = nn.LSTM(10, 20, num_layers=2)
        >>> out, (h, c) = lstm(bigcore.randn(5, 3, 10))   # out: (5, 3, 20); h, c: (2, 3, 20)
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, dtype=None):
        super().__init__()
        if hidden_size <= 0 or num_layers <= 0 or input_size < 0:
            raise ValueError(f"hidden_size and num_layers must be positive, got {hidden_size} and {num_layers}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout should be a number in range [0, 1), got {dropout}")
        if proj_size:
            raise ValueError("proj_size is not supported")
        self.input_size, self.hidden_size, self.num_layers = int(input_size), int(hidden_size), int(num_layers)
        self.bias, self.batch_first, self.dropout, self.bidirectional = bias, batch_first, float(dropout), bidirectional
        d = 2 if bidirectional else 1
        h4 = 4 * self.hidden_size
        for layer in range(self.num_layers):
            for direction in range(d):
                sfx = f"_l{layer}" + ("_reverse" if direction else "")
                in_sz = self.input_size if layer == 0 else self.hidden_size * d
                setattr(self, "weight_ih" + sfx, Parameter(param_storage((h4, in_sz), dtype)))
                setattr(self, "weight_hh" + sfx, Parameter(param_storage((h4, self.hidden_size), dtype)))
                if bias:
                    setattr(self, "bias_ih" + sfx, Parameter(param_storage((h4,), dtype)))
                    setattr(self, "bias_hh" + sfx, Parameter(param_storage((h4,), dtype)))
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _run(self, x, h0, c0, sfx, reverse):
        """One layer and direction over ``x`` (T, B, I): the output sequence (T, B, H) in time order and the
        final ``h`` and ``c`` (B, H) of the direction's last step."""
        w_ih, w_hh = getattr(self, "weight_ih" + sfx), getattr(self, "weight_hh" + sfx)
        b = getattr(self, "bias_ih" + sfx) + getattr(self, "bias_hh" + sfx) if self.bias else None
        packed = _wrap(_core.lstm(x._c, h0._c, c0._c, w_ih._c, w_hh._c, None if b is None else b._c, reverse))
        t = x.shape[0]
        return packed[:t], packed[t], packed[t + 1]

    def forward(self, input, hx=None):
        unbatched = input.ndim == 2
        if input.ndim not in (2, 3):
            raise ShapeError(f"LSTM: expected input of 2 or 3 dimensions, got {input.shape}")
        x = input.unsqueeze(1) if unbatched else (input.transpose(0, 1) if self.batch_first else input)  # (T, B, I)
        if x.shape[2] != self.input_size:
            raise ShapeError(f"LSTM: input has {x.shape[2]} features, expected input_size={self.input_size}")
        d = 2 if self.bidirectional else 1
        B = x.shape[1]
        want = (self.num_layers * d, B, self.hidden_size)
        if hx is None:
            h0 = zeros(*want, dtype=x.dtype)
            c0 = zeros(*want, dtype=x.dtype)
        else:
            h0, c0 = hx
            if unbatched:
                h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
            if h0.shape != want or c0.shape != want:
                raise ShapeError(f"LSTM: expected hidden states of shape {want}, got {h0.shape} and {c0.shape}")
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outs = []
            for direction in range(d):
                k = layer * d + direction
                sfx = f"_l{layer}" + ("_reverse" if direction else "")
                seq, h_t, c_t = self._run(x, h0[k], c0[k], sfx, reverse=direction == 1)
                outs.append(seq)
                h_n.append(h_t)
                c_n.append(c_t)
            x = outs[0] if d == 1 else cat(outs, 2)
            if layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, self.training)
        out, h_n, c_n = x, stack(h_n), stack(c_n)
        if unbatched:
            return out.squeeze(1), (h_n.squeeze(1), c_n.squeeze(1))
        return (out.transpose(0, 1) if self.batch_first else out), (h_n, c_n)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s
