"""Symbolic sizes of traced values: which dimensions of an op's output are fixed and which follow a dynamic axis.

Each traced value carries ``dims``: one entry per dimension, a plain ``int`` where the size is the same for every
input the graph accepts, a :class:`SymInt` where it follows a dynamic axis. ``Tensor.shape`` returns these while
exporting, so Python code reading sizes gets traced integers exactly where sizes vary.

A rule per op (by the op's name) derives an output's dims from its arguments (``None``: fixed, the engine's size;
``LAZY``: dynamic, read from the output's shape). An op without a rule, or whose rule disagrees with the sizes the
engine produced, gets the safe answer: every dimension of an output that depends on a dynamic size is itself
dynamic, read from the graph (``Shape``) when Python uses it.
"""

from .symint import SymInt, is_sym


#: a dim a rule cannot name: dynamic, read from the output's own shape when Python uses it
LAZY = object()


def _dims(x):
    return x.dims if hasattr(x, "dims") else ()


def _axis(d, rank):
    d = int(d)
    return d + rank if d < 0 else d


def broadcast(*dims_list):
    """Broadcast dims aligned from the right: a fixed size other than 1 wins, then a dynamic one, else 1."""
    n = max((len(d) for d in dims_list), default=0)
    out = []
    for i in range(n):
        cands = [d[i - n + len(d)] for d in dims_list if i - n + len(d) >= 0]
        fixed = [c for c in cands if not is_sym(c) and c != 1]
        syms = [c for c in cands if is_sym(c)]
        out.append(fixed[0] if fixed else syms[0] if syms else 1)
    return tuple(out)


def _same(a):
    return [_dims(a["input"])]


def _binary(a):
    return [broadcast(_dims(a["input"]), _dims(a["other"]))]


def _where(a):
    return [broadcast(_dims(a["condition"]), _dims(a["input"]), _dims(a["other"]))]


def _reduce(a, n_out=1):
    dims = _dims(a["input"])
    r = len(dims)
    dim = a["dim"]
    axes = set(range(r)) if dim is None else {_axis(d, r) for d in (dim if isinstance(dim, (list, tuple)) else [dim])}
    keep = a["keepdim"]
    out = tuple(1 if i in axes else d for i, d in enumerate(dims) if keep or i not in axes)
    return [out] * n_out


def _reshape(a):
    dims = _dims(a["input"])
    out = []
    for s in a["shape"]:
        if is_sym(s) or s != -1:
            out.append(s)
        else:  # the size -1 stands for: fixed when every input dim is, else dynamic
            out.append(None if all(not is_sym(d) for d in dims) else LAZY)
    return [tuple(out)]


def _permute(a):
    dims = _dims(a["input"])
    return [tuple(dims[_axis(p, len(dims))] for p in a["dims"])]


def _transpose(a):
    dims = list(_dims(a["input"]))
    i, j = _axis(a["dim0"], len(dims)), _axis(a["dim1"], len(dims))
    dims[i], dims[j] = dims[j], dims[i]
    return [tuple(dims)]


def _unsqueeze(a):
    dims = list(_dims(a["input"]))
    dims.insert(_axis(a["dim"], len(dims) + 1), 1)
    return [tuple(dims)]


def _flatten(a):
    dims = _dims(a["input"])
    if not dims:
        return [(1,)]
    s, e = _axis(a["start_dim"], len(dims)), _axis(a["end_dim"], len(dims))
    merged = dims[s : e + 1]
    if any(is_sym(d) for d in merged):
        mid = merged[0] if len(merged) == 1 else LAZY
    else:
        mid = 1
        for d in merged:
            mid *= d
    return [tuple(dims[:s]) + (mid,) + tuple(dims[e + 1 :])]


def _expand(a):
    dims, size = _dims(a["input"]), a["size"]
    lead = len(size) - len(dims)
    return [tuple(dims[i - lead] if not is_sym(s) and s == -1 else s for i, s in enumerate(size))]


def _slice(a):
    # (start, step, n) per dim: a whole dim keeps its entry, else the length n (an int or a traced size)
    out = []
    for d, (start, step, n) in zip(_dims(a["input"]), a["specs"]):
        whole = start == 0 and step == 1 and (n is d or (not is_sym(n) and not is_sym(d) and n == d))
        out.append(d if whole else n)
    return [tuple(out)]


def _cat_like(tensors, dim, new_axis):
    all_dims = [_dims(t) for t in tensors]
    rank = len(all_dims[0])
    if new_axis:
        base = [next((ds[i] for ds in all_dims if not is_sym(ds[i])), all_dims[0][i]) for i in range(rank)]
        base.insert(_axis(dim, rank + 1), len(tensors))
        return [tuple(base)]
    d = _axis(dim, rank)
    base = [next((ds[i] for ds in all_dims if not is_sym(ds[i])), all_dims[0][i]) for i in range(rank)]
    along = [ds[d] for ds in all_dims]
    base[d] = LAZY if any(is_sym(x) for x in along) else sum(along)
    return [tuple(base)]


def _matmul(a):
    x, y = _dims(a["input"]), _dims(a["other"])
    if len(x) == 1 and len(y) == 1:
        return [()]
    if len(y) == 1:
        return [tuple(x[:-1])]
    if len(x) == 1:
        return [tuple(y[:-2]) + (y[-1],)]
    return [broadcast(x[:-2], y[:-2]) + (x[-2], y[-1])]


def _linear(a):
    return [tuple(_dims(a["input"])[:-1]) + (_dims(a["weight"])[0],)]


def _embedding(a):
    return [tuple(_dims(a["input"])) + (_dims(a["weight"])[1],)]


def _index_select(a):
    dims = list(_dims(a["input"]))
    idx = _dims(a["index"])
    dims[_axis(a["dim"], len(dims))] = idx[0] if idx else 1
    return [tuple(dims)]


def _sized(a):
    return [tuple(a["size"])]


def _arange(a):
    return [(LAZY if any(is_sym(a[k]) for k in ("start", "end", "step")) else None,)]


def _split(a):
    dims = _dims(a["self"])
    d = _axis(a["dim"], len(dims))
    return "per_output", lambda shape: tuple(dims[:d]) + (shape[d],) + tuple(dims[d + 1 :])


def _narrow(a):
    dims = list(_dims(a["self"]))
    d = _axis(a["dim"], len(dims))
    dims[d] = a["length"]
    return [tuple(dims)]


def _sdpa(a):
    return [tuple(_dims(a["query"])[:-1]) + (_dims(a["value"])[-1],)]


def _scalar(a):
    return [()]


def _topk(a):
    dims = list(_dims(a["input"]))
    dims[_axis(a["dim"], len(dims))] = a["k"]
    return [tuple(dims)] * 2


def _one_hot(a):
    n = a["num_classes"]
    return [tuple(_dims(a["tensor"])) + (LAZY if not is_sym(n) and n == -1 else n,)]


RULES = {
    **{op: _same for op in ("neg", "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs", "gelu", "clamp", "to",
                            "softmax", "log_softmax", "layer_norm", "tril", "triu", "clone")},
    **{op: _binary for op in ("add", "sub", "mul", "div", "pow", "eq", "ne", "lt", "le", "gt", "ge")},
    "matmul": _matmul,
    "where": _where,
    **{op: _reduce for op in ("sum", "mean", "amax", "amin")},
    "max": lambda a: _reduce(a, 2), "min": lambda a: _reduce(a, 2),
    "reshape": _reshape, "permute": _permute, "transpose": _transpose, "unsqueeze": _unsqueeze,
    "flatten": _flatten, "expand": _expand, "slice": _slice, "index_select": _index_select,
    "cat": lambda a: _cat_like(a["tensors"], a["dim"], False),
    "stack": lambda a: _cat_like(a["tensors"], a["dim"], True),
    "linear": _linear, "embedding": _embedding, "full": _sized, "arange": _arange,
    "split": _split, "narrow": _narrow, "scaled_dot_product_attention": _sdpa, "size": _scalar,
    **{op: _scalar for op in ("floordiv", "mod")},
    "topk": _topk, "sort": lambda a: [_dims(a["input"])] * 2, "gather": lambda a: [_dims(a["index"])],
    "one_hot": _one_hot, "setitem": lambda a: [_dims(a["t"])],
    **{op: _same for op in ("cumsum", "scatter", "scatter_add", "put", "add_", "sub_", "mul_", "div_", "clamp_",
                            "fill_", "zero_", "copy_", "masked_fill_", "scatter_", "scatter_add_", "put_")},
}


def output_dims(tracer, op, args, outputs, input_values):
    """The dims of each output of one recorded op (``outputs``: the new Values, with concrete shapes)."""
    dynamic = any(is_sym(d) for v in input_values for d in v.dims) or any(
        is_sym(x) for x in _scalars(args))
    rule = RULES.get(op)
    got = None
    if rule is not None and dynamic:
        try:
            got = rule(args)
        except (KeyError, IndexError, TypeError, ValueError):
            got = None
    result = []
    for i, v in enumerate(outputs):
        shape = v.shape
        if not dynamic:
            result.append(tuple(shape))
            continue
        dims = None
        if isinstance(got, tuple) and got[0] == "per_output":
            dims = got[1](shape)
        elif isinstance(got, list) and i < len(got):
            dims = got[i]
        if dims is not None and len(dims) == len(shape):
            dims = tuple(shape[k] if d is None else SymInt(shape[k], tracer, source=(v, k)) if d is LAZY else d
                         for k, d in enumerate(dims))
            if all(int(d) == s for d, s in zip(dims, shape)):
                result.append(dims)
                continue
        result.append(tuple(SymInt(s, tracer, source=(v, k)) for k, s in enumerate(shape)))
    return result


def _scalars(obj):
    if isinstance(obj, dict):
        for x in obj.values():
            yield from _scalars(x)
    elif isinstance(obj, (list, tuple)):
        for x in obj:
            yield from _scalars(x)
    elif isinstance(obj, slice):
        yield from (obj.start, obj.stop, obj.step)
    elif isinstance(obj, int):
        yield obj
