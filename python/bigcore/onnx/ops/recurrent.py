"""Module-level emitter of ``nn.LSTM``: one ONNX ``LSTM`` node per layer, both directions in one node.

PyTorch's gates are stacked (i, f, g, o), ONNX's (i, o, f, c): the weights ``W`` (D, 4H, I), ``R`` (D, 4H, H)
and bias ``B`` (D, 8H) (input then recurrent bias) are the module's parameters with their gate blocks reordered
(Split + Concat on the state_dict initializers, folded into initializers ``<path>.W_l<k>``, ``R``, ``B`` by
constant folding). ONNX runs sequence-first; ``batch_first`` and unbatched input are transposes and reshapes
around it. Between layers dropout is off (eval semantics). (onnxruntime's LSTM runs float32 only: a float64 LSTM
exports to a valid file that onnxruntime refuses.)
"""

import numpy as np

from ...nn import LSTM
from . import module_emitter


def _gates(g, p, hidden):
    """A (4H, ...) PyTorch gate stack (i, f, g, o) as ONNX's (i, o, f, c)."""
    i, f, c, o = g.op("Split", [p, g.const(np.array([hidden] * 4, np.int64))], n_out=4, axis=0)
    return g.op("Concat", [i, o, f, c], axis=0)


def _layer_weights(g, m, layer, prefix):
    dirs = ["", "_reverse"] if m.bidirectional else [""]
    H = m.hidden_size
    weights = {}
    for key, stack in (("W", "weight_ih"), ("R", "weight_hh")):
        per_dir = [g.unsqueeze(_gates(g, g.param(getattr(m, f"{stack}_l{layer}{d}")), H), [0]) for d in dirs]
        weights[key] = g.op("Concat", per_dir, out=f"{prefix}{key}_l{layer}", axis=0)
    weights["B"] = None
    if m.bias:
        per_dir = []
        for d in dirs:
            b = g.op("Concat", [_gates(g, g.param(getattr(m, f"bias_ih_l{layer}{d}")), H),
                                _gates(g, g.param(getattr(m, f"bias_hh_l{layer}{d}")), H)], axis=0)
            per_dir.append(g.unsqueeze(b, [0]))
        weights["B"] = g.op("Concat", per_dir, out=f"{prefix}B_l{layer}", axis=0)
    return weights


@module_emitter(LSTM)
def lstm(g, node):
    m, x, hx = node.args["self"], node.args["input"], node.args["hx"]
    D, H = (2 if m.bidirectional else 1), m.hidden_size
    prefix = f"{node.module}." if node.module else ""
    out, h_out, c_out = node.outputs
    unbatched = x.rank == 2
    if unbatched:
        seq = g.unsqueeze(x, [1])  # (T, 1, I)
    elif m.batch_first:
        seq = g.op("Transpose", [x], perm=[1, 0, 2])  # (T, B, I)
    else:
        seq = x
    h0 = c0 = None
    if hx is not None:
        h0, c0 = hx
        if unbatched:
            h0, c0 = g.unsqueeze(h0, [1]), g.unsqueeze(c0, [1])
    hs, cs = [], []
    for layer in range(m.num_layers):
        w = _layer_weights(g, m, layer, prefix)
        init = []
        for s in (h0, c0):  # this layer's (D, B, H) slice of the initial states
            init.append(None if s is None else g.op(
                "Slice", [s, g.axes([layer * D]), g.axes([(layer + 1) * D]), g.axes([0])]))
        y, y_h, y_c = g.op("LSTM", [seq, w["W"], w["R"], w["B"], None, init[0], init[1]], n_out=3,
                           hidden_size=H, direction="bidirectional" if D == 2 else "forward")
        # Y (T, D, B, H) -> (T, B, D * H): the directions side by side, as PyTorch
        seq = g.op("Reshape", [g.op("Transpose", [y], perm=[0, 2, 1, 3]), g.axes([0, 0, -1])])
        hs.append(y_h)
        cs.append(y_c)
    if unbatched:
        g.squeeze(seq, [1], out=out.name)
    elif m.batch_first:
        g.op("Transpose", [seq], out=out.name, perm=[1, 0, 2])
    else:
        g.op("Identity", [seq], out=out.name)
    for states, value in ((hs, h_out), (cs, c_out)):
        joined = states[0] if len(states) == 1 else g.op("Concat", states, axis=0)  # (L * D, B, H)
        if unbatched:
            g.squeeze(joined, [1], out=value.name)
        else:
            g.op("Identity", [joined], out=value.name)
