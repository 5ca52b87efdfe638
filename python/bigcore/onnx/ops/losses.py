"""Emitters of the losses: ``cross_entropy`` (``SoftmaxCrossEntropyLoss``; label smoothing and probability
targets as formulas), ``nll_loss`` (``NegativeLogLikelihoodLoss``) and ``binary_cross_entropy``. The other losses
(``mse_loss``, ``binary_cross_entropy_with_logits``) are compositions of elementwise ops and need no emitter."""

from ..graph import ONNX_DTYPES
from . import emitter


def _reduce_all(g, loss, reduction, out):
    if reduction == "mean":
        return g.reduce("ReduceMean", loss, None, False, out=out)
    if reduction == "sum":
        return g.reduce("ReduceSum", loss, None, False, out=out)
    return g.op("Identity", [loss], out=out)


def _class_weights(g, w, rank, cdim, dtype):
    """The class weights reshaped to broadcast along the class dim."""
    shape = [1] * rank
    shape[cdim] = -1
    return g.op("Reshape", [g.cast(w, dtype), g.axes(shape)])


def _soft_targets(g, node, x, t, w, reduction, smoothing, out):
    # -sum_c t_c w_c log_softmax(x)_c over the class dim, t mixed with the uniform distribution when smoothing
    dtype = out.dtype
    cdim = 1 if x.rank > 1 else 0
    c = x.shape[cdim]
    if smoothing > 0:
        t = g.op("Add", [g.op("Mul", [t, g.scalar(1 - smoothing, dtype)]), g.scalar(smoothing / c, dtype)])
    prod = g.op("Mul", [g.op("LogSoftmax", [x], axis=cdim), t])
    if w is not None:
        prod = g.op("Mul", [prod, _class_weights(g, w, x.rank, cdim, dtype)])
    loss = g.op("Neg", [g.reduce("ReduceSum", prod, [cdim], False)])
    _reduce_all(g, loss, reduction, out=node)


@emitter
def cross_entropy(g, node):
    a = node.args
    x, y, w = a["input"], a["target"], a["weight"]
    reduction, ignore, smoothing = a["reduction"], int(a["ignore_index"]), float(a["label_smoothing"])
    out = node.outputs[0]
    if y.dtype != "int64":
        _soft_targets(g, node, x, y, w, reduction, smoothing, out)
        return
    unbatched = x.rank == 1
    if unbatched:  # (C,) logits and a () target: a batch of one
        x, y = g.unsqueeze(x, [0]), g.unsqueeze(y, [0])
    if smoothing == 0:
        res = g.op("SoftmaxCrossEntropyLoss", [x, y, w], out=None if unbatched and reduction == "none" else node,
                   reduction=reduction, ignore_index=ignore)
        if unbatched and reduction == "none":
            g.squeeze(res, [0], out=node)
        return
    # (1 - s) * nll + s * smooth, where smooth = -sum_c w_c log p_c / C; both 0 at ignored targets; the mean
    # divides by the summed weight of the kept targets (their count without weights), as PyTorch
    rank = a["input"].rank + (1 if unbatched else 0)
    dtype, c = out.dtype, a["input"].shape[0 if unbatched else 1]
    logp = g.op("LogSoftmax", [x], axis=1)
    nll = g.op("NegativeLogLikelihoodLoss", [logp, y, w], reduction="none", ignore_index=ignore)
    keep = g.op("Cast", [g.op("Not", [g.op("Equal", [y, g.scalar(ignore, "int64")])])], to=ONNX_DTYPES[dtype])
    terms = logp if w is None else g.op("Mul", [logp, _class_weights(g, w, rank, 1, dtype)])
    smooth = g.op("Mul", [g.op("Neg", [g.reduce("ReduceSum", terms, [1], False)]), keep])
    loss = g.op("Add", [g.op("Mul", [nll, g.scalar(1 - smoothing, dtype)]),
                        g.op("Mul", [smooth, g.scalar(smoothing / c, dtype)])])
    if reduction == "mean":
        if w is None:
            weight_sum = g.reduce("ReduceSum", keep, None, False)
        else:
            safe = g.op("Where", [g.cast(keep, "bool", from_dtype=dtype), y, g.scalar(0, "int64")])
            weight_sum = g.reduce("ReduceSum", g.op("Mul", [g.op("Gather", [w, safe], axis=0), keep]), None, False)
        g.op("Div", [g.reduce("ReduceSum", loss, None, False), weight_sum], out=node)
    elif unbatched and reduction == "none":
        g.squeeze(loss, [0], out=node)
    else:
        _reduce_all(g, loss, reduction, out=node)


@emitter
def nll_loss(g, node):
    a = node.args
    x, y = a["input"], a["target"]
    unbatched = x.rank == 1
    if unbatched:
        x, y = g.unsqueeze(x, [0]), g.unsqueeze(y, [0])
    squeeze = unbatched and a["reduction"] == "none"
    res = g.op("NegativeLogLikelihoodLoss", [x, y, a["weight"]], out=None if squeeze else node,
               reduction=a["reduction"], ignore_index=int(a["ignore_index"]))
    if squeeze:
        g.squeeze(res, [0], out=node)


@emitter
def binary_cross_entropy(g, node):
    # -(t max(log p, -100) + (1 - t) max(log(1 - p), -100)), times the weight
    a = node.args
    p, t, w, dtype = a["input"], a["target"], a["weight"], node.outputs[0].dtype
    t = g.cast(t, dtype) if not isinstance(t, (int, float)) else g.scalar(t, dtype)
    floor = g.scalar(-100.0, dtype)
    one = g.scalar(1.0, dtype)
    log_p = g.op("Max", [g.op("Log", [p]), floor])
    log_q = g.op("Max", [g.op("Log", [g.op("Sub", [one, p])]), floor])
    loss = g.op("Neg", [g.op("Add", [g.op("Mul", [t, log_p]), g.op("Mul", [g.op("Sub", [one, t]), log_q])])])
    if w is not None:
        loss = g.op("Mul", [loss, g.cast(w, dtype) if not isinstance(w, (int, float)) else g.scalar(w, dtype)])
    _reduce_all(g, loss, a["reduction"], out=node)

