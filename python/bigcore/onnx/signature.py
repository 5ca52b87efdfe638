"""The graph's signature: which of ``forward``'s arguments are graph inputs and under which names, how its result
flattens into graph outputs, and ``dynamic_axes`` in its two PyTorch spellings. Shared by ``export`` and
``verify``, so both see the same inputs in the same order."""

import contextlib
import inspect

import numpy as np

from .._tensor import Tensor


def split_args(args, kwargs):
    """PyTorch's convention: ``args`` a tuple (or one tensor); a dict as its last element holds keyword arguments."""
    if isinstance(args, (Tensor, np.ndarray)) or not isinstance(args, (tuple, list)):
        args = (args,)
    args = tuple(args)
    kwargs = dict(kwargs or {})
    if args and isinstance(args[-1], dict):
        kwargs = {**args[-1], **kwargs}
        args = args[:-1]
    as_tensor = lambda a: _tensor(a) if isinstance(a, np.ndarray) else a  # noqa: E731
    return tuple(as_tensor(a) for a in args), {k: as_tensor(v) for k, v in kwargs.items()}


def distinct(args, kwargs):
    """The arguments with a tensor given at several places (``mha(x, x, x)``) replaced, after its first place, by
    aliases sharing its values: each place becomes its own graph input, as each is in forward's signature."""
    seen = set()

    def alias(a):
        if isinstance(a, Tensor):
            if a._c.id in seen:
                return a.detach()
            seen.add(a._c.id)
        elif isinstance(a, (tuple, list)):
            return type(a)(alias(x) for x in a)
        return a

    args = tuple(alias(a) for a in args)
    return args, {k: alias(v) for k, v in kwargs.items()}


def _tensor(a):
    from .._creation import tensor

    return tensor(a)


def input_tensors(model, args, kwargs):
    """``[(tensor, default name)]`` of the tensors among the arguments, positional first: named by forward's
    parameters (``hx_0``, ``hx_1`` for the tensors in a tuple argument ``hx``)."""
    try:
        params = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = []
    for i, _ in enumerate(args):
        if i < len(params) and params[i].kind in (params[i].POSITIONAL_ONLY, params[i].POSITIONAL_OR_KEYWORD):
            names.append(params[i].name)
        else:
            star = next((p.name for p in params if p.kind == p.VAR_POSITIONAL), "input")
            names.append(f"{star}_{i}")
    out = []
    for name, a in list(zip(names, args)) + list(kwargs.items()):
        if isinstance(a, Tensor):
            out.append((a, name))
        elif isinstance(a, (tuple, list)):
            out.extend((t, f"{name}_{j}") for j, t in enumerate(a) if isinstance(t, Tensor))
    return out


def flatten_outputs(result):
    """``[(tensor, default name or None)]`` of what forward returned: a tensor, or tuples/lists/dicts of tensors
    (None entries are skipped, as GPT's missing loss). Anything else is a TypeError."""
    out = []

    def walk(x, key, where):
        if isinstance(x, Tensor):
            out.append((x, key))
        elif x is None and where:
            return
        elif isinstance(x, (tuple, list)):
            for i, y in enumerate(x):
                walk(y, None, f"{where}[{i}]")
        elif isinstance(x, dict):
            for k, y in x.items():
                walk(y, str(k), f"{where}[{k!r}]")
        else:
            raise TypeError(f"bigcore.onnx.export: forward returned {type(x).__name__} at output{where}; an exported "
                            "forward must return a tensor or a tuple, list or dict of tensors")

    walk(result, None, "")
    if not out:
        raise TypeError("bigcore.onnx.export: forward returned no tensor")
    return out


def name_all(found, given, what):
    """Final names: ``given`` first (a list of at most as many names), then defaults (``output_0``...)."""
    given = list(given or [])
    if len(given) > len(found):
        raise ValueError(f"bigcore.onnx.export: {len(given)} {what}_names given for {len(found)} {what}s")
    names = []
    for i, (_, default) in enumerate(found):
        if i < len(given):
            names.append(str(given[i]))
        elif default is not None:
            names.append(default)
        else:
            names.append(what if len(found) == 1 else f"{what}_{i}")
    if len(set(names)) != len(names):
        raise ValueError(f"bigcore.onnx.export: {what} names must be distinct, got {names}")
    return names


def normalize_dynamic_axes(dynamic_axes):
    """``{name: [axes]}`` or ``{name: {axis: dim_param}}`` as ``{name: {axis: dim_param}}`` (PyTorch's default
    names ``<name>_dynamic_axes_<axis + 1>`` for a list)."""
    out = {}
    for name, axes in (dynamic_axes or {}).items():
        if isinstance(axes, dict):
            out[name] = {_int_axis(name, a): str(p) for a, p in axes.items()}
        elif isinstance(axes, (list, tuple)):
            out[name] = {_int_axis(name, a): f"{name}_dynamic_axes_{int(a) + 1}" for a in axes}
        else:
            raise TypeError(f"bigcore.onnx.export: dynamic_axes[{name!r}] must be a list of axes or a dict "
                            f"axis -> name, got {type(axes).__name__}")
    return out


def _int_axis(name, a):
    if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
        raise TypeError(f"bigcore.onnx.export: dynamic_axes[{name!r}] has a non-integer axis {a!r}")
    return int(a)


def check_axes(name, axes, rank):
    """Axes of one input or output within its rank (negative ones counted from the end)."""
    fixed = {}
    for a, p in axes.items():
        if not -rank <= a < rank:
            raise ValueError(f"bigcore.onnx.export: dynamic_axes[{name!r}] names axis {a}, but {name!r} has "
                             f"{rank} dimensions")
        fixed[a % rank] = p
    return fixed


@contextlib.contextmanager
def eval_mode(model):
    """The model in eval mode (dropout off) for the block; each module's own mode back afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, mode in modes:
            object.__setattr__(m, "training", mode)
