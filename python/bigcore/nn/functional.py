"""``bigcore.nn.functional``: stateless neural-network ops with PyTorch's names, arguments and defaults.

Hot ops (``linear``, ``softmax``, ``layer_norm``, ``cross_entropy``, ``embedding``, ``gelu``,
``scaled_dot_product_attention``) are single fused Rust calls; the losses are short compositions of them.
"""

import numbers

import numpy as np

from .. import _core
from .._tracing import traced
from .._dtype import int64
from .._random import _handle
from .._tensor import Tensor, _as_c, _wrap
from ..errors import DTypeError, ShapeError

_REDUCTIONS = ("none", "mean", "sum")


def _check_reduction(reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction!r} is not a valid value for reduction; use 'none', 'mean' or 'sum'")


def _reduce(loss, reduction):
    _check_reduction(reduction)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def linear(input, weight, bias=None):
    """``input @ weight.T + bias``.

    Shape: input ``(*, in_features)``, weight ``(out_features, in_features)``, bias ``(out_features,)``,
    output ``(*, out_features)``.
    """
    return _wrap(_core.linear(input._c, weight._c, None if bias is None else bias._c))


def relu(input, inplace=False):
    """``max(input, 0)`` elementwise."""
    return input.relu()


def gelu(input, approximate="none"):
    """GELU: ``x * Phi(x)`` with the exact normal CDF (``approximate="none"``) or its tanh approximation
    (``approximate="tanh"``)."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
    return _wrap(_core.unary(input._c, "gelu" if approximate == "none" else "gelu_tanh"))


def sigmoid(input):
    """``1 / (1 + exp(-input))``."""
    return input.sigmoid()


def tanh(input):
    """Hyperbolic tangent."""
    return input.tanh()


def softmax(input, dim, dtype=None):
    """``exp(x) / sum(exp(x))`` along ``dim``."""
    if dtype is not None:
        input = input.to(dtype)
    return input.softmax(dim)


def log_softmax(input, dim, dtype=None):
    """``log(softmax(x))`` along ``dim``, computed stably."""
    if dtype is not None:
        input = input.to(dtype)
    return input.log_softmax(dim)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalize over the trailing ``normalized_shape`` dims to zero mean and unit variance (biased), then
    scale by ``weight`` and shift by ``bias``."""
    if isinstance(normalized_shape, numbers.Integral):
        normalized_shape = (normalized_shape,)
    return _wrap(
        _core.layer_norm(
            input._c, [int(s) for s in normalized_shape],
            None if weight is None else weight._c, None if bias is None else bias._c, float(eps),
        )
    )


@traced("embedding")
def embedding(input, weight, padding_idx=None):
    """Rows of ``weight`` (num_embeddings, embedding_dim) picked by the int64 ids in ``input``; the result has
    shape ``input.shape + (embedding_dim,)``. Ids outside ``[0, num_embeddings)`` raise an IndexError.
    The row at ``padding_idx`` gets no gradient."""
    ids = input if isinstance(input, Tensor) else _wrap(_as_c(input))
    out = _wrap(_core.embedding(ids._c, weight._c))
    if padding_idx is not None:
        n = weight.shape[0]
        p = padding_idx + n if padding_idx < 0 else padding_idx
        if not 0 <= p < n:
            raise ValueError(f"padding_idx {padding_idx} must be within num_embeddings ({n})")
        pad = (ids == p).unsqueeze(-1)
        out = out.masked_fill(pad, 0.0) + out.detach().masked_fill(~pad, 0.0)
    return out


def dropout(input, p=0.5, training=True, inplace=False, *, generator=None):
    """Zero each element with probability ``p`` and scale the others by ``1 / (1 - p)``; the identity when
    ``training`` is False. The mask comes from ``generator`` (a :class:`bigcore.Generator`; a bigcore extension
    of PyTorch's signature), by default from the seeded default generator."""
    out = _core.dropout(input._c, float(p), bool(training), _handle(generator))
    return input if out.id == input._c.id else _wrap(out)  # identity when not training, as PyTorch


@traced("gumbel_softmax")
def gumbel_softmax(logits, tau=1, hard=False, eps=1e-10, dim=-1, *, generator=None):
    """A sample from the Gumbel-softmax (Concrete) distribution over ``dim``, optionally discretized, as PyTorch's:
    ``softmax((logits + g) / tau)`` with ``g`` standard Gumbel noise, ``g = -log(eps - log(u + eps))``,
    ``u ~ U[0, 1)``.

    Args:
        logits: unnormalized log-probabilities (float32 or float64).
        tau: the temperature, > 0: small values give nearly one-hot samples, large ones nearly uniform.
        hard: return exactly one-hot vectors (the argmax of the soft sample) whose gradient is the soft
            sample's (the straight-through estimator: ``y_hard - y_soft.detach() + y_soft``).
        eps: keeps both logs finite (PyTorch's original noise formula; PyTorch has since deprecated it).
        dim: the dimension of the categories.
        generator: the :class:`bigcore.Generator` the noise comes from (a bigcore extension of PyTorch's
            signature, as on :func:`dropout`); by default the seeded default generator.

    Returns:
        a tensor of ``logits``' shape and dtype whose slices along ``dim`` sum to 1. The argmax along ``dim`` is
        distributed as ``softmax(logits, dim)`` (the Gumbel-max trick), whatever ``tau``.

    Shape:
        ``logits`` ``(*, V)`` (categories along ``dim``), output the same.

    Example::

        >>> y = F.gumbel_softmax(bigcore.randn(4, 10, requires_grad=True), tau=0.5, hard=True)  # (4, 10) one-hot
        >>> (y * bigcore.arange(10.0)).sum().backward()  # the gradient of the soft sample reaches the logits
    """
    from .._creation import rand, zeros

    if not isinstance(logits, Tensor):
        raise TypeError(f"gumbel_softmax expects a bigcore.Tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise DTypeError(f"gumbel_softmax: logits must be float32 or float64, got {logits.dtype!r}")
    if isinstance(tau, bool) or not isinstance(tau, numbers.Real) or not tau > 0:
        raise ValueError(f"gumbel_softmax: tau must be a positive number, got {tau!r}")
    if logits.ndim == 0:
        raise ShapeError("gumbel_softmax: logits must have a category dimension, got a 0-d tensor")
    u = rand(*logits.shape, dtype=logits.dtype, generator=generator)
    gumbels = -((u + eps).log().neg() + eps).log()  # standard Gumbel noise, finite for u in [0, 1)
    y_soft = ((logits + gumbels) / tau).softmax(dim)
    if not hard:
        return y_soft
    index = y_soft.argmax(dim, keepdim=True)
    y_hard = zeros(*logits.shape, dtype=logits.dtype).scatter(dim, index, 1.0)
    return y_hard - y_soft.detach() + y_soft  # forward: y_hard; backward: y_soft's gradient


def one_hot(tensor, num_classes=-1):
    """One-hot rows of int64 class ids: ``out[..., c] = 1`` where ``tensor[...] == c``, else 0.

    Args:
        tensor: int64 class ids in ``0..num_classes``.
        num_classes: the number of classes; -1 (default) means the largest id plus one.

    Returns:
        an int64 tensor.

    Shape:
        ``tensor`` ``(*)``, output ``(*, num_classes)``.

    Example::

        >>> F.one_hot(bigcore.tensor([0, 2]), 3)
        tensor([[1, 0, 0], [0, 0, 1]])
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"one_hot expects a bigcore.Tensor, got {type(tensor).__name__}")
    return _wrap(_core.one_hot(tensor._c, int(num_classes)))


def _check_class_target(op, input, target):
    """ShapeError unless class-index ``target`` fits ``input``: ``()`` for ``(C,)``, ``(N, d1, ...)`` for
    ``(N, C, d1, ...)``. Never broadcast: a target of shape (1,) for 4 rows is a mistake, not 4 copies."""
    ishape, tshape = tuple(input.shape), tuple(target.shape)
    if input.ndim == 0:
        raise ShapeError(f"{op}: input must have a class dimension, got a 0-d tensor")
    want = () if input.ndim == 1 else (ishape[0],) + ishape[2:]
    if tshape != want:
        raise ShapeError(f"{op}: target of shape {tshape} does not match input of shape {ishape} "
                         f"(expected a target of shape {want})")


def _class_dim_last(input, target):
    """(N, C, d1, ...) logits and (N, d1, ...) targets as (N*d1*..., C) and (N*d1*...,)."""
    if input.ndim == 1:
        return input.unsqueeze(0), target.reshape(1)
    if input.ndim > 2:
        c = input.shape[1]
        perm = [0] + list(range(2, input.ndim)) + [1]
        return input.permute(*perm).reshape(-1, c), target.reshape(-1)
    return input, target


@traced("cross_entropy")
def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean", label_smoothing=0.0):
    """Cross-entropy between logits and targets.

    Args:
        input: logits ``(N, C)``, ``(C,)`` or ``(N, C, d1, ...)``.
        target: class indices (int64) of shape ``(N,)``, ``()`` or ``(N, d1, ...)``; or class probabilities
            of the same shape as ``input``.
        weight: optional per-class weights ``(C,)``.
        ignore_index: target value whose positions add nothing (class-index targets).
        reduction: ``"mean"`` (over non-ignored positions, weighted), ``"sum"`` or ``"none"``.
        label_smoothing: mixes the target with the uniform distribution, as in PyTorch.
    """
    if size_average is not None or reduce is not None:
        raise TypeError("size_average and reduce are deprecated in PyTorch and not supported; use reduction=")
    _check_reduction(reduction)
    label_smoothing = float(label_smoothing)
    if not 0.0 <= label_smoothing <= 1.0:  # on every path: class indices, weighted, probabilities
        raise ValueError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
    target = target if isinstance(target, Tensor) else _wrap(_as_c(target))
    if target.is_floating_point():
        return _cross_entropy_probs(input, target, weight, reduction, label_smoothing)
    if target.dtype is not int64:
        raise DTypeError(f"cross_entropy: class-index targets must be int64, got {target.dtype!r}")
    shape = target.shape
    _check_class_target("cross_entropy", input, target)
    x, y = _class_dim_last(input, target)
    if weight is None:
        loss = _wrap(_core.cross_entropy(x._c, y._c, int(ignore_index), float(label_smoothing), reduction))
    else:
        loss = _weighted_cross_entropy(x, y, weight, int(ignore_index), float(label_smoothing), reduction)
    if reduction == "none":
        return loss.reshape(shape)
    return loss


def _one_hot(y, c, ignore_index=None, op="cross_entropy"):
    ids = y.numpy()
    keep = np.ones(ids.shape, bool) if ignore_index is None else ids != ignore_index
    if np.any(keep & ((ids < 0) | (ids >= c))):
        from ..errors import OutOfRangeError

        bad = ids[keep & ((ids < 0) | (ids >= c))][0]
        raise OutOfRangeError(f"{op}: target {bad} is out of bounds for {c} classes")
    oh = np.zeros((ids.size, c), np.float64)
    oh[np.arange(ids.size)[keep], ids[keep]] = 1.0
    return oh, keep


def _weighted_cross_entropy(x, y, weight, ignore_index, label_smoothing, reduction):
    from .._creation import tensor

    n, c = x.shape
    _check_weight("cross_entropy", weight, c)
    oh, keep = _one_hot(y, c, ignore_index)
    oh_t = tensor(oh, dtype=x.dtype)
    logp = x.log_softmax(1)
    w_y = (oh_t * weight).sum(1)  # weight of each row's class, 0 for ignored rows
    nll = -(logp * oh_t).sum(1) * w_y
    if label_smoothing > 0:
        keep_t = tensor(keep.astype(np.float64), dtype=x.dtype)
        smooth = -(logp * weight).sum(1) * keep_t / c
        loss = (1 - label_smoothing) * nll + label_smoothing * smooth
    else:
        loss = nll
    if reduction == "mean":
        return loss.sum() / w_y.sum()
    return loss.sum() if reduction == "sum" else loss


def _check_weight(op, weight, c):
    if tuple(weight.shape) != (c,):
        raise ShapeError(f"{op}: weight of shape {tuple(weight.shape)} does not match {c} classes (expected ({c},))")


def _cross_entropy_probs(input, target, weight, reduction, label_smoothing):
    if target.shape != input.shape:
        raise ShapeError(f"cross_entropy: probability target of shape {target.shape} must match input {input.shape}")
    c = input.shape[1] if input.ndim > 1 else input.shape[0]
    cdim = 1 if input.ndim > 1 else 0
    if weight is not None:
        _check_weight("cross_entropy", weight, c)
    if label_smoothing > 0:
        target = target * (1 - label_smoothing) + label_smoothing / c
    prod = input.log_softmax(cdim) * target
    if weight is not None:
        shape = [1] * input.ndim
        shape[cdim] = c
        prod = prod * weight.reshape(*shape)
    loss = -prod.sum(cdim)
    return _reduce(loss, reduction)


@traced("nll_loss")
def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of log-probabilities at int64 class indices: input ``(N, C)``, ``(C,)`` or
    ``(N, C, d1, ...)``, target ``(N,)``, ``()`` or ``(N, d1, ...)`` (never broadcast). ``weight`` ``(C,)`` weighs
    each class; positions whose target is ``ignore_index`` add nothing; ``"mean"`` divides by the summed weights of
    the other positions, as PyTorch."""
    from .._creation import tensor

    _check_reduction(reduction)
    target = target if isinstance(target, Tensor) else _wrap(_as_c(target))
    if target.dtype is not int64:
        raise DTypeError(f"nll_loss: targets must be int64 class indices, got {target.dtype!r}")
    _check_class_target("nll_loss", input, target)
    x, y = _class_dim_last(input, target)
    n, c = x.shape
    if weight is not None:
        _check_weight("nll_loss", weight, c)
    oh, keep = _one_hot(y, c, ignore_index, op="nll_loss")
    oh_t = tensor(oh, dtype=x.dtype)
    w_y = oh_t.sum(1) if weight is None else (oh_t * weight).sum(1)
    loss = -(x * oh_t).sum(1) * (w_y if weight is not None else 1.0)
    if reduction == "mean":
        return loss.sum() / w_y.sum()
    return loss.sum() if reduction == "sum" else loss.reshape(target.shape)


def mse_loss(input, target, reduction="mean"):
    """Mean squared error ``(input - target) ** 2``, reduced."""
    _check_reduction(reduction)
    _same_shape("mse_loss", input, target)
    d = input - target
    return _reduce(d * d, reduction)


def _same_shape(op, input, target):
    if isinstance(target, Tensor) and target.shape != input.shape:
        raise ShapeError(f"{op}: target size {target.shape} must be the same as input size {input.shape}")


@traced("binary_cross_entropy")
def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """``-(t log p + (1 - t) log(1 - p))`` for probabilities ``p`` in [0, 1]; logs are clamped at -100 as in
    PyTorch, so p = 0 or 1 gives a finite loss."""
    _check_reduction(reduction)
    _same_shape("binary_cross_entropy", input, target)
    arr = input.detach().numpy()
    if not np.all((arr >= 0) & (arr <= 1)):  # written so that NaN fails too, as PyTorch's check
        raise ValueError("binary_cross_entropy: all elements of input should be between 0 and 1")
    loss = -(target * input.log().clamp(min=-100) + (1 - target) * (1 - input).log().clamp(min=-100))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None, reduction="mean", pos_weight=None):
    """Sigmoid plus binary cross-entropy in one stable expression:
    ``max(x, 0) - x t + log(1 + exp(-|x|))``, with ``pos_weight`` scaling the positive term."""
    if size_average is not None or reduce is not None:
        raise TypeError("size_average and reduce are deprecated in PyTorch and not supported; use reduction=")
    _check_reduction(reduction)
    _same_shape("binary_cross_entropy_with_logits", input, target)
    softplus_neg = (1 + (-input.abs()).exp()).log() + (-input).relu()  # log(1 + exp(-x))
    if pos_weight is None:
        loss = (1 - target) * input + softplus_neg
    else:
        # PyTorch: (1 - t) x + (1 + (pw - 1) t) * log(1 + exp(-x))
        loss = (1 - target) * input + (1 + (pos_weight - 1) * target) * softplus_neg
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


@traced("scaled_dot_product_attention")
def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False):
    """``softmax(query @ key^T * scale + mask) @ value`` in one fused kernel (flash style: no ``(L, S)`` matrix of
    weights is ever formed), as PyTorch's.

    Args:
        query, key, value: float tensors of one dtype; their batch dims ``*`` broadcast.
        attn_mask: bool (True = takes part in attention) or float (added to the scores), broadcastable to
            ``(*, L, S)``; not together with ``is_causal``. No gradient flows into it.
        dropout_p: probability of dropping each attention weight (always applied when > 0, as in PyTorch: pass 0
            in evaluation). The mask comes from ``bigcore.manual_seed``'s generator.
        is_causal: query ``i`` attends to keys ``j <= i`` (``tril(ones(L, S))``, top-left aligned when L != S).
        scale: multiplies ``query @ key^T``; default ``1 / sqrt(E)``.
        enable_gqa: key and value may have fewer heads (dim -3) than query, a divisor of its count; each serves
            a group of consecutive query heads.

    Returns:
        The attention output. A query whose every key is masked out gets zeros (PyTorch 2.15 does the same).

    Shape: query ``(*, L, E)``, key ``(*, S, E)``, value ``(*, S, Ev)``, output ``(*, L, Ev)``.

    Example::

        >>> q = k = v = bigcore.randn(2, 4, 16, 8)  # (B, NH, T, HS)
        >>> F.scaled_dot_product_attention(q, k, v, is_causal=True).shape
        (2, 4, 16, 8)
    """
    if enable_gqa and query.ndim >= 3 and key.ndim >= 3 and value.ndim >= 3:
        key, value = _repeat_kv_heads(key, query.shape[-3]), _repeat_kv_heads(value, query.shape[-3])
    mask = None
    if attn_mask is not None:
        mask = attn_mask if isinstance(attn_mask, Tensor) else _wrap(_as_c(attn_mask))
    return _wrap(_core.scaled_dot_product_attention(
        query._c, key._c, value._c, None if mask is None else mask._c, float(dropout_p), bool(is_causal),
        None if scale is None else float(scale)))


def _repeat_kv_heads(x, heads):
    """``x`` (..., H, S, E) with each head repeated for ``heads // H`` consecutive query heads (grouped-query
    attention; PyTorch's ``repeat_interleave`` along dim -3)."""
    h = x.shape[-3]
    if h == heads:
        return x
    if h == 0 or heads % h:
        raise ShapeError(f"scaled_dot_product_attention: enable_gqa needs the query's {heads} heads to be a multiple "
                         f"of the key's and value's {h}")
    lead, (s, e) = tuple(x.shape[:-3]), x.shape[-2:]
    return x.unsqueeze(-3).expand(*lead, h, heads // h, s, e).reshape(*lead, heads, s, e)


__all__ = [
    "linear", "relu", "gelu", "sigmoid", "tanh", "softmax", "log_softmax", "layer_norm", "embedding", "dropout",
    "cross_entropy", "nll_loss", "mse_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "scaled_dot_product_attention", "one_hot", "gumbel_softmax",
]
