"""An independent numpy float64 oracle: for every bigcore op, its forward and the gradient of each input.

Each entry is ``REF[name] = (forward(*inputs, **kw), backward(g, *inputs, **kw) -> tuple of grads)``; the
backward is written out by hand from the math, not derived from bigcore, so the two can disagree.
"""

import math

import numpy as np

REF = {}


def unbroadcast(g, shape):
    """Sum ``g`` down to ``shape`` (the adjoint of numpy broadcasting)."""
    while g.ndim > len(shape):
        g = g.sum(0)
    for i, s in enumerate(shape):
        if s == 1 and g.shape[i] != 1:
            g = g.sum(i, keepdims=True)
    return g


_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


# ----- unary: forward, d/dx -----
_UNARY = {
    "neg": (lambda x: -x, lambda x: -np.ones_like(x)),
    "exp": (np.exp, np.exp),
    "log": (np.log, lambda x: 1 / x),
    "sqrt": (np.sqrt, lambda x: 0.5 / np.sqrt(x)),
    "tanh": (np.tanh, lambda x: 1 - np.tanh(x) ** 2),
    "sigmoid": (_sigmoid, lambda x: _sigmoid(x) * (1 - _sigmoid(x))),
    "relu": (lambda x: np.maximum(x, 0), lambda x: (x > 0).astype(np.float64)),
    "abs": (np.abs, np.sign),
    "gelu": (
        lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))),
        lambda x: 0.5 * (1 + _erf(x / math.sqrt(2))) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi),
    ),
}
_K = math.sqrt(2 / math.pi)


def _gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(_K * (x + 0.044715 * x**3)))


def _gelu_tanh_d(x):
    t = np.tanh(_K * (x + 0.044715 * x**3))
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _K * (1 + 3 * 0.044715 * x * x)


_UNARY["gelu_tanh"] = (_gelu_tanh, _gelu_tanh_d)

for _name, (_f, _d) in _UNARY.items():
    REF[_name] = ((lambda f: lambda x: f(x))(_f), (lambda d: lambda g, x: (g * d(x),))(_d))


REF["clamp"] = (
    lambda x, min=None, max=None: np.clip(x, -np.inf if min is None else min, np.inf if max is None else max),
    lambda g, x, min=None, max=None: (g * ((x >= (-np.inf if min is None else min)) & (x <= (np.inf if max is None else max))),),
)

# ----- binary with broadcasting -----
REF["add"] = (np.add, lambda g, a, b: (unbroadcast(g, a.shape), unbroadcast(g, b.shape)))
REF["sub"] = (np.subtract, lambda g, a, b: (unbroadcast(g, a.shape), unbroadcast(-g, b.shape)))
REF["mul"] = (np.multiply, lambda g, a, b: (unbroadcast(g * b, a.shape), unbroadcast(g * a, b.shape)))
REF["div"] = (np.divide, lambda g, a, b: (unbroadcast(g / b, a.shape), unbroadcast(-g * a / b**2, b.shape)))
REF["pow"] = (
    np.power,
    lambda g, a, b: (
        # PyTorch's convention: 0 where b == 0 (x ** 0 is constant), also at a == 0 where 0 * 0**-1 is NaN
        unbroadcast(np.where(b == 0, 0.0, g * b * np.where(b == 0, 1.0, a) ** (b - 1)), a.shape),
        unbroadcast(g * a**b * np.log(np.where(a > 0, a, 1)), b.shape),
    ),
)


# ----- matrix products -----
def _matmul_bwd(g, a, b):
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    g2 = g
    if a.ndim == 1 and b.ndim == 1:
        g2 = np.reshape(g, (1, 1))
    elif a.ndim == 1:
        g2 = np.expand_dims(g, -2)
    elif b.ndim == 1:
        g2 = np.expand_dims(g, -1)
    ga = g2 @ np.swapaxes(b2, -1, -2)
    gb = np.swapaxes(a2, -1, -2) @ g2
    ga = unbroadcast(ga, a2.shape).reshape(a.shape)
    gb = unbroadcast(gb, b2.shape).reshape(b.shape)
    return ga, gb


REF["matmul"] = (np.matmul, _matmul_bwd)


def _linear_fwd(x, w, b=None):
    y = x @ w.T
    return y if b is None else y + b


def _linear_bwd(g, x, w, b=None):
    g2 = g.reshape(-1, w.shape[0])
    x2 = x.reshape(-1, w.shape[1])
    out = ((g2 @ w).reshape(x.shape), g2.T @ x2)
    return out if b is None else out + (g2.sum(0),)


REF["linear"] = (_linear_fwd, _linear_bwd)


# ----- reductions -----
def _axes(dim, ndim):
    if dim is None:
        return tuple(range(ndim))
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    return tuple(sorted(d % ndim for d in dims))


def _expand_back(g, shape, axes, keepdim):
    if not keepdim:
        for a in axes:
            g = np.expand_dims(g, a)
    return np.broadcast_to(g, shape)


REF["sum"] = (
    lambda x, dim=None, keepdim=False: x.sum(axis=_axes(dim, x.ndim), keepdims=keepdim),
    lambda g, x, dim=None, keepdim=False: (_expand_back(g, x.shape, _axes(dim, x.ndim), keepdim).copy(),),
)
REF["mean"] = (
    lambda x, dim=None, keepdim=False: x.mean(axis=_axes(dim, x.ndim), keepdims=keepdim),
    lambda g, x, dim=None, keepdim=False: (
        _expand_back(g, x.shape, _axes(dim, x.ndim), keepdim) / max(1, int(np.prod([x.shape[a] for a in _axes(dim, x.ndim)]))),
    ),
)


def _max_fwd(x, dim, keepdim=False, is_min=False):
    return (x.min if is_min else x.max)(axis=dim, keepdims=keepdim)


def _max_bwd(g, x, dim, keepdim=False, is_min=False):
    idx = (np.argmin if is_min else np.argmax)(x, axis=dim)
    gx = np.zeros_like(x)
    gk = g if keepdim else np.expand_dims(g, dim)
    np.put_along_axis(gx, np.expand_dims(idx, dim), gk, axis=dim)
    return (gx,)


REF["max"] = (_max_fwd, _max_bwd)


# ----- movement -----
REF["reshape"] = (lambda x, shape: x.reshape(shape), lambda g, x, shape: (g.reshape(x.shape),))
REF["permute"] = (lambda x, dims: np.transpose(x, dims), lambda g, x, dims: (np.transpose(g, np.argsort(dims)),))
REF["expand"] = (lambda x, shape: np.broadcast_to(x, shape).copy(), lambda g, x, shape: (unbroadcast(g, x.shape),))


def _getitem_bwd(g, x, key):
    gx = np.zeros_like(x)
    np.add.at(gx, key, g)
    return (gx,)


REF["getitem"] = (lambda x, key: x[key], _getitem_bwd)


def _cat_bwd(g, *xs, dim=0):
    cuts = np.cumsum([x.shape[dim] for x in xs])[:-1]
    return tuple(np.split(g, cuts, axis=dim))


REF["cat"] = (lambda *xs, dim=0: np.concatenate(xs, axis=dim), _cat_bwd)
REF["stack"] = (
    lambda *xs, dim=0: np.stack(xs, axis=dim),
    lambda g, *xs, dim=0: tuple(np.take(g, i, axis=dim) for i in range(len(xs))),
)


def _index_select_bwd(g, x, dim, index):
    gx = np.zeros_like(x)
    gm = np.moveaxis(gx, dim, 0)
    np.add.at(gm, index, np.moveaxis(g, dim, 0))
    return (gx,)


REF["index_select"] = (lambda x, dim, index: np.take(x, index, axis=dim), _index_select_bwd)
REF["repeat"] = (
    lambda x, reps: np.tile(x, reps),
    lambda g, x, reps: (
        g.reshape([v for r, s in zip(reps, (1,) * (len(reps) - x.ndim) + x.shape) for v in (r, s)])
        .sum(axis=tuple(range(0, 2 * len(reps), 2)))
        .reshape(x.shape),
    ),
)
REF["tril"] = (lambda x, k=0: np.tril(x, k), lambda g, x, k=0: (np.tril(g, k),))
REF["triu"] = (lambda x, k=0: np.triu(x, k), lambda g, x, k=0: (np.triu(g, k),))
REF["where"] = (
    lambda a, b, cond: np.where(cond, a, b),
    lambda g, a, b, cond: (unbroadcast(np.where(cond, g, 0.0), a.shape), unbroadcast(np.where(cond, 0.0, g), b.shape)),
)


# ----- nn -----
def _softmax(x, dim):
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


REF["softmax"] = (
    _softmax,
    lambda g, x, dim: (_softmax(x, dim) * (g - (g * _softmax(x, dim)).sum(axis=dim, keepdims=True)),),
)
def _log_softmax(x, dim):
    # x - max - log(sum(exp(x - max))): finite for rows spanning any range (log(softmax) is -inf past ~745)
    z = x - x.max(axis=dim, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=dim, keepdims=True))


REF["log_softmax"] = (
    _log_softmax,
    lambda g, x, dim: (g - _softmax(x, dim) * g.sum(axis=dim, keepdims=True),),
)


def _ln_parts(x, nd, eps):
    axes = tuple(range(x.ndim - nd, x.ndim))
    mu = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    return axes, (x - mu) / np.sqrt(var + eps), 1 / np.sqrt(var + eps)


def _ln_fwd(x, w=None, b=None, nd=1, eps=1e-5):
    _, n, _ = _ln_parts(x, nd, eps)
    return n * (1 if w is None else w) + (0 if b is None else b)


def _ln_bwd(g, x, w=None, b=None, nd=1, eps=1e-5):
    axes, n, rstd = _ln_parts(x, nd, eps)
    dn = g * (1 if w is None else w)
    c = np.prod([x.shape[a] for a in axes])
    dx = rstd * (dn - dn.sum(axis=axes, keepdims=True) / c - n * (dn * n).sum(axis=axes, keepdims=True) / c)
    lead = tuple(range(x.ndim - nd))
    out = (dx,)
    if w is not None:
        out += ((g * n).sum(axis=lead),)
    if b is not None:
        out += (g.sum(axis=lead),)
    return out


REF["layer_norm"] = (_ln_fwd, _ln_bwd)
REF["embedding"] = (
    lambda w, ids: w[ids],
    lambda g, w, ids: (_getitem_bwd(g, w, ids)[0],),
)


def _ce_rows(x, y, ignore_index, ls):
    n, c = x.shape
    logp = np.log(_softmax(x, 1))
    keep = y != ignore_index
    ys = np.where(keep, y, 0)
    q = np.full((n, c), ls / c) + (1 - ls) * np.eye(c)[ys]
    loss = -(q * logp).sum(1) * keep
    return loss, q, keep


def _ce_fwd(x, y, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
    loss, _, keep = _ce_rows(x, y, ignore_index, label_smoothing)
    return {"none": loss, "sum": loss.sum(), "mean": loss.sum() / keep.sum()}[reduction]


def _ce_bwd(g, x, y, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
    _, q, keep = _ce_rows(x, y, ignore_index, label_smoothing)
    scale = {"none": g, "sum": np.full(len(y), g), "mean": np.full(len(y), g / keep.sum())}[reduction]
    return (((_softmax(x, 1) - q) * keep[:, None]) * scale[:, None],)


REF["cross_entropy"] = (_ce_fwd, _ce_bwd)


def _red(v, reduction):
    return {"none": v, "sum": v.sum(), "mean": v.mean()}[reduction]


def _red_g(g, shape, reduction):
    n = int(np.prod(shape))
    return {"none": g, "sum": np.full(shape, g), "mean": np.full(shape, g / n)}[reduction]


REF["mse_loss"] = (
    lambda a, t, reduction="mean": _red((a - t) ** 2, reduction),
    lambda g, a, t, reduction="mean": (2 * (a - t) * _red_g(g, a.shape, reduction), -2 * (a - t) * _red_g(g, a.shape, reduction)),
)
REF["binary_cross_entropy"] = (
    lambda p, t, reduction="mean": _red(-(t * np.log(p) + (1 - t) * np.log(1 - p)), reduction),
    lambda g, p, t, reduction="mean": (
        _red_g(g, p.shape, reduction) * (p - t) / (p * (1 - p)),
        _red_g(g, p.shape, reduction) * (np.log(1 - p) - np.log(p)),
    ),
)
REF["binary_cross_entropy_with_logits"] = (
    lambda x, t, reduction="mean": _red(np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x))), reduction),
    lambda g, x, t, reduction="mean": (_red_g(g, x.shape, reduction) * (_sigmoid(x) - t), -_red_g(g, x.shape, reduction) * x),
)



# class-index losses with per-class weights (PyTorch's formulas). Rows: n, classes: c; w_y is the weight of each
# row's class (0 for ignored rows); "mean" divides by the sum of w_y.
def _weights(c, weight):
    return np.ones(c) if weight is None else weight


def _nll_fwd(x, y, weight=None, ignore_index=-100, reduction="mean"):
    # loss_i = -w[y_i] x[i, y_i] (0 where y_i == ignore_index)
    keep = y != ignore_index
    ys = np.where(keep, y, 0)
    w_y = _weights(x.shape[1], weight)[ys] * keep
    loss = -x[np.arange(len(y)), ys] * w_y
    return {"none": loss, "sum": loss.sum(), "mean": loss.sum() / w_y.sum()}[reduction]


def _nll_bwd(g, x, y, weight=None, ignore_index=-100, reduction="mean"):
    # d loss_i / d x[i, j] = -w[y_i] [j == y_i]
    keep = y != ignore_index
    ys = np.where(keep, y, 0)
    w_y = _weights(x.shape[1], weight)[ys] * keep
    scale = {"none": g, "sum": np.full(len(y), g), "mean": np.full(len(y), g / w_y.sum())}[reduction]
    dx = np.zeros_like(x)
    dx[np.arange(len(y)), ys] = -w_y * scale
    return (dx,)


REF["nll_loss"] = (_nll_fwd, _nll_bwd)


def _wce_parts(x, y, weight, ignore_index, label_smoothing):
    # loss_i = (1 - ls) w[y_i] (-logp[i, y_i]) + ls / c sum_k w[k] (-logp[i, k])   (0 for ignored rows)
    n, c = x.shape
    w = _weights(c, weight)
    keep = y != ignore_index
    ys = np.where(keep, y, 0)
    w_y = w[ys] * keep
    q = (1 - label_smoothing) * np.eye(c)[ys] * w_y[:, None] + label_smoothing / c * w[None, :] * keep[:, None]
    return q, w_y


def _wce_fwd(x, y, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
    q, w_y = _wce_parts(x, y, weight, ignore_index, label_smoothing)
    loss = -(q * np.log(_softmax(x, 1))).sum(1)
    return {"none": loss, "sum": loss.sum(), "mean": loss.sum() / w_y.sum()}[reduction]


def _wce_bwd(g, x, y, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
    # d(-sum_k q_k logp_k)/dx_j = softmax_j sum_k q_k - q_j
    q, w_y = _wce_parts(x, y, weight, ignore_index, label_smoothing)
    scale = {"none": g, "sum": np.full(len(y), g), "mean": np.full(len(y), g / w_y.sum())}[reduction]
    return ((_softmax(x, 1) * q.sum(1, keepdims=True) - q) * scale[:, None],)


REF["cross_entropy_weighted"] = (_wce_fwd, _wce_bwd)


def _pce_fwd(x, t, weight=None, label_smoothing=0.0, reduction="mean"):
    # probability targets (n, c), smoothed t' = (1 - ls) t + ls / c: loss_i = -sum_k w[k] t'[i, k] logp[i, k];
    # "mean" divides by n (PyTorch: probability targets are not weighted in the mean)
    c = x.shape[1]
    q = ((1 - label_smoothing) * t + label_smoothing / c) * _weights(c, weight)
    return _red(-(q * np.log(_softmax(x, 1))).sum(1), reduction)


def _pce_bwd(g, x, t, weight=None, label_smoothing=0.0, reduction="mean"):
    c = x.shape[1]
    w = _weights(c, weight)
    q = ((1 - label_smoothing) * t + label_smoothing / c) * w
    gi = _red_g(g, (x.shape[0],), reduction)[:, None]
    dx = (_softmax(x, 1) * q.sum(1, keepdims=True) - q) * gi
    dt = -(1 - label_smoothing) * w * np.log(_softmax(x, 1)) * gi
    return dx, dt


REF["cross_entropy_probs"] = (_pce_fwd, _pce_bwd)


def _sdpa_parts(q, k, v, mask=None, causal=False, scale=None, keep=None, p=0.0):
    """The weights ``P = softmax(q k^T s + mask)`` (a row with every key masked is all 0, as PyTorch 2.15's
    ``scaled_dot_product_attention`` gives), the dropout factors ``Z = keep / (1 - p)`` (1 without ``keep``), s."""
    s = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    S = q @ np.swapaxes(k, -1, -2) * s
    if causal:
        L, Sk = S.shape[-2:]
        S = np.where(np.tril(np.ones((L, Sk), bool)), S, -np.inf)
    if mask is not None:
        S = np.where(mask, S, -np.inf) if mask.dtype == bool else S + mask
    m = S.max(-1, keepdims=True)
    m = np.where(np.isneginf(m), 0.0, m)
    E = np.exp(S - m)
    total = E.sum(-1, keepdims=True)
    P = E / np.where(total == 0, 1.0, total)
    Z = np.ones_like(P) if keep is None else np.broadcast_to(keep, P.shape) / (1 - p)
    return P, Z, s


def _sdpa_fwd(q, k, v, mask=None, causal=False, scale=None, keep=None, p=0.0):
    P, Z, _ = _sdpa_parts(q, k, v, mask, causal, scale, keep, p)
    return (P * Z) @ v


def _sdpa_bwd(g, q, k, v, mask=None, causal=False, scale=None, keep=None, p=0.0):
    # out = (P Z) v: dv = (P Z)^T g; dP = Z (g v^T); dS = P (dP - rowsum(P dP)); dq = s dS k; dk = s dS^T q
    P, Z, s = _sdpa_parts(q, k, v, mask, causal, scale, keep, p)
    dv = np.swapaxes(P * Z, -1, -2) @ g
    dP = (g @ np.swapaxes(v, -1, -2)) * Z
    dS = P * (dP - (dP * P).sum(-1, keepdims=True))
    dq = dS @ k * s
    dk = np.swapaxes(dS, -1, -2) @ q * s
    return unbroadcast(dq, q.shape), unbroadcast(dk, k.shape), unbroadcast(dv, v.shape)


REF["scaled_dot_product_attention"] = (_sdpa_fwd, _sdpa_bwd)


# ----- sorting, running sums, indexing along a dim with index tensors -----
def _pick_back(g, x, index, dim):
    """The adjoint of picking ``x`` at ``index`` along ``dim``: zeros with ``g`` added at the picked places."""
    gx = np.zeros_like(x)
    np.add.at(gx, _along(index, dim), g)
    return gx


def _along(index, dim):
    """A numpy index tuple: the index tensor's own positions, with ``index`` along ``dim``."""
    full = list(np.indices(index.shape, sparse=True))
    full[dim % index.ndim] = index
    return tuple(full)


def _rank_order(x, dim, descending):
    # stable in both directions: equal values keep the lower index first
    return np.argsort(-x if descending else x, axis=dim, kind="stable")


def _topk_idx(x, k, dim=-1, largest=True, sorted=True):
    idx = np.take(_rank_order(x, dim, largest), np.arange(k), axis=dim)
    return idx if sorted else np.sort(idx, axis=dim)


REF["topk"] = (
    lambda x, k, dim=-1, largest=True, sorted=True: np.take_along_axis(x, _topk_idx(x, k, dim, largest, sorted), dim),
    lambda g, x, k, dim=-1, largest=True, sorted=True: (_pick_back(g, x, _topk_idx(x, k, dim, largest, sorted), dim),),
)
REF["sort"] = (
    lambda x, dim=-1, descending=False: np.take_along_axis(x, _rank_order(x, dim, descending), dim),
    lambda g, x, dim=-1, descending=False: (_pick_back(g, x, _rank_order(x, dim, descending), dim),),
)
# d/dx_j of sum_i g_i sum_{s <= i} x_s = sum_{i >= j} g_i: the running sum of g from the end
REF["cumsum"] = (
    lambda x, dim: np.cumsum(x, axis=dim),
    lambda g, x, dim: (np.flip(np.cumsum(np.flip(g, dim), axis=dim), dim),),
)
REF["gather"] = (
    lambda x, index, dim: x[_along(index, dim)],
    lambda g, x, index, dim: (_pick_back(g, x, index, dim), None),
)


def _corner(index, src):
    """``src``'s block at the index's positions (the index may be smaller than the source)."""
    return src[tuple(slice(0, n) for n in index.shape)]


def _scatter_fwd(x, index, src, dim, add=False):
    out = x.copy()
    if add:
        np.add.at(out, _along(index, dim), _corner(index, src))
    else:
        out[_along(index, dim)] = _corner(index, src)
    return out


def _scatter_bwd(g, x, index, src, dim, add=False):
    gx = g.copy()
    if not add:
        gx[_along(index, dim)] = 0.0  # overwritten places pass nothing back to x
    gsrc = np.zeros_like(src)
    gsrc[tuple(slice(0, n) for n in index.shape)] = g[_along(index, dim)]
    return gx, None, gsrc


REF["scatter"] = (_scatter_fwd, _scatter_bwd)
REF["scatter_add"] = (lambda x, i, s, dim: _scatter_fwd(x, i, s, dim, True), lambda g, x, i, s, dim: _scatter_bwd(g, x, i, s, dim, True))


# ----- in place: x[key] = v, and the `_` ops (their forms on a copy of x: x.clone().op_(...)) -----
def _setitem_fwd(x, v, key):
    out = x.copy()
    out[key] = v
    return out


def _setitem_bwd(g, x, v, key):
    gx = g.copy()
    gx[key] = 0.0  # overwritten (the keys tested pick each place at most once)
    return gx, unbroadcast(np.asarray(g[key]), v.shape)


REF["setitem"] = (_setitem_fwd, _setitem_bwd)
REF["add_"] = (lambda x, o, alpha=1.0: x + alpha * o, lambda g, x, o, alpha=1.0: (g, unbroadcast(alpha * g, o.shape)))
REF["mul_"] = (lambda x, o: x * o, lambda g, x, o: (g * o, unbroadcast(g * x, o.shape)))
REF["clamp_"] = REF["clamp"]
REF["masked_fill_"] = (
    lambda x, v, mask: np.where(mask, v, x),
    lambda g, x, v, mask: (np.where(mask, 0.0, g), np.asarray(np.where(mask, g, 0.0).sum())),
)
REF["copy_"] = (lambda x, s: np.broadcast_to(s, x.shape).copy(), lambda g, x, s: (np.zeros_like(x), unbroadcast(g, s.shape)))
REF["fill_"] = (lambda x, v: np.full_like(x, v), lambda g, x, v: (np.zeros_like(x), np.asarray(g.sum())))
