"""Saving and loading: ``save(obj, path)`` / ``load(path)`` and training checkpoints.

Files are safetensors. A flat ``{name: tensor}`` dict (a model's ``state_dict``) is written as a standard
safetensors file any other tool can read. Nested objects (optimizer and scheduler state, checkpoints) keep their
tensors in the same file, named by their path (``optimizer/state/0/exp_avg``), and their structure and plain
values (numbers, strings, lists, tuples, dicts with str or int keys) as JSON in the file's metadata.
Nothing is ever pickled. Tensors keep their shape, 0-d ones included. Two tensors whose paths read the same
(``{"w/0": a, "w": [b]}``, ``{1: a, "1": b}``) get distinct names (the later one a ``~N`` suffix); the JSON
records which name each tensor has, so nothing is lost.

Writes go to a temporary file beside the target that is renamed over it (``bigcore._atomic``), so an
interrupted save never destroys the previous file, threads saving to one path never collide (the last one wins),
and the temporary files of a killed save are removed by the next save to that path. A directory that is missing
or not writable is an ``OSError`` naming the target. A truncated, corrupted or foreign file raises a ValueError
naming it; a file that cannot be opened, the ``OSError`` saying why (no such file, permission denied, a
directory).
"""

import json
import os

import numpy as np

from . import _atomic, _core, tokenizers
from ._creation import tensor
from ._tensor import Tensor

_META_KEY = "bigcore"
_FORMAT = 1


def _contiguous(a):
    """A C-contiguous array of ``a`` with its shape kept (``np.ascontiguousarray`` makes 0-d arrays 1-d)."""
    arr = a.numpy() if isinstance(a, Tensor) else a
    if not arr.dtype.isnative:  # a big-endian array is written as the values it holds, not its raw bytes
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return np.require(arr, requirements="C")


def _unique_name(name, tensors):
    """``name``, or ``name~1``, ``name~2``... when another tensor already has it: ``{"w/0": a, "w": [b]}`` and
    ``{1: a, "1": b}`` put two tensors at paths that read the same."""
    if name not in tensors:
        return name
    n = 1
    while f"{name}~{n}" in tensors:
        n += 1
    return f"{name}~{n}"


def _encode(obj, path, tensors):
    if isinstance(obj, (Tensor, np.ndarray)):
        name = _unique_name("/".join(path) or "tensor", tensors)
        tensors[name] = _contiguous(obj)
        return {"__tensor__": name, "numpy": isinstance(obj, np.ndarray)}
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise TypeError(f"save: dict keys must be str or int, got {type(k).__name__} at {'/'.join(path) or 'top level'}")
            items.append([k, _encode(v, path + [str(k)], tensors)])
        return {"__dict__": items}
    if isinstance(obj, (list, tuple)):
        enc = [_encode(v, path + [str(i)], tensors) for i, v in enumerate(obj)]
        return {"__tuple__": enc} if isinstance(obj, tuple) else enc
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"save: cannot store an object of type {type(obj).__name__} at {'/'.join(path) or 'top level'}")


def _decode(node, tensors):
    if isinstance(node, list):
        return [_decode(v, tensors) for v in node]
    if isinstance(node, dict):
        if "__tensor__" in node:
            arr = tensors[node["__tensor__"]]
            return arr if node.get("numpy") else tensor(arr)
        if "__tuple__" in node:
            return tuple(_decode(v, tensors) for v in node["__tuple__"])
        if "__dict__" in node:
            return {k: _decode(v, tensors) for k, v in node["__dict__"]}
        raise ValueError(f"unknown node {sorted(node)}")
    return node


def save(obj, path):
    """Write ``obj`` (a state dict, or a nested structure of tensors and plain values) to ``path`` atomically."""
    from safetensors.numpy import save as serialize

    path = os.fspath(path)
    tensors = {}
    flat = isinstance(obj, dict) and obj and all(isinstance(k, str) and isinstance(v, (Tensor, np.ndarray)) for k, v in obj.items())
    if flat:
        tensors = {k: _contiguous(v) for k, v in obj.items()}
        meta = {_META_KEY: json.dumps({"format": _FORMAT, "flat": True})}
    else:
        structure = _encode(obj, [], tensors)
        meta = {_META_KEY: json.dumps({"format": _FORMAT, "root": structure})}
    for name, arr in tensors.items():
        if arr.dtype not in (np.float32, np.float64, np.int64, np.bool_):
            raise TypeError(f"save: tensor {name!r} has unsupported dtype {arr.dtype}")

    # serialized in memory and written through our own temporary file: safetensors' save_file writes through a
    # temporary file of its own (".tmpXXXXXX"), which a killed save would leave behind under a name no one owns
    data = serialize(tensors, metadata=meta)
    _atomic.write_atomically(path, lambda fd: _atomic.write_all(fd, data))


def load(path):
    """Read a file written by :func:`save` (or any safetensors file: a ``{name: tensor}`` dict comes back).

    Raises:
        FileNotFoundError: no such file.
        OSError: the file cannot be opened (``PermissionError``, ``IsADirectoryError``...; the message names it).
        ValueError: the file is truncated, corrupted or not a safetensors file (the message names it).
    """
    from safetensors import safe_open

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(2, "no such checkpoint", path)
    with open(path, "rb"):  # a file we cannot open is the OSError that says why (permission denied, a directory)
        pass
    try:
        with safe_open(path, framework="numpy") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        info = json.loads(meta[_META_KEY]) if _META_KEY in meta else {"flat": True}
        if info.get("format", _FORMAT) > _FORMAT:
            raise ValueError(f"written by a newer bigcore (format {info['format']})")
        if info.get("flat"):
            return {k: tensor(v) for k, v in tensors.items()}
        return _decode(info["root"], tensors)
    except FileNotFoundError:
        raise
    except Exception as e:  # safetensors raises its own error type; json and our checks raise others
        raise ValueError(f"{path!r} is not a readable bigcore checkpoint: {e}") from None


def get_rng_state():
    """The library generator's state (four ints), to restore with :func:`set_rng_state`."""
    return list(_core.get_rng_state())


def set_rng_state(state):
    """Restore the library generator to a state from :func:`get_rng_state`."""
    _core.set_rng_state([int(s) for s in state])


def save_checkpoint(path, model, optimizer=None, scheduler=None, step=0, tokenizer=None, **extra):
    """Save everything needed to resume training exactly: model, optimizer and scheduler state, the step, the
    random generator's state, the tokenizer (any ``bigcore.tokenizers`` tokenizer, stored as its
    ``state_dict()``), and any extra plain values.

    Example::

        bigcore.io.save_checkpoint("ckpt.safetensors", model, optimizer, step=it, tokenizer=tok, config=asdict(cfg))
        info = bigcore.io.load_checkpoint("ckpt.safetensors", model, optimizer)  # info["tokenizer"] is a tokenizer
    """
    save({
        "model": model.state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "step": int(step),
        "rng": get_rng_state(),
        "tokenizer": None if tokenizer is None else tokenizer.state_dict(),
        "extra": extra,
    }, path)


def load_checkpoint(path, model, optimizer=None, scheduler=None, strict=True):
    """Restore a checkpoint written by :func:`save_checkpoint` into ``model`` (and ``optimizer``,
    ``scheduler``), restore the random generator, and return ``{"step": step, **extra}``, with
    ``"tokenizer"``: the tokenizer rebuilt, when one was saved.

    Raises:
        FileNotFoundError, OSError: the file cannot be opened (as :func:`load`).
        ValueError: the file is damaged or is not a training checkpoint (the message names it).
        RuntimeError: the checkpoint's model does not fit ``model`` (missing, unexpected or resized keys).
    """
    name = repr(os.fspath(path))
    ck = load(path)
    if not isinstance(ck, dict) or "model" not in ck or "rng" not in ck:
        raise ValueError(f"{name} is a bigcore file but not a training checkpoint")
    _check_checkpoint(ck, name)
    if optimizer is not None and ck.get("optimizer") is None:
        raise ValueError(f"{name} holds no optimizer state")
    if scheduler is not None and ck.get("scheduler") is None:
        raise ValueError(f"{name} holds no scheduler state")
    tok = None
    if ck.get("tokenizer") is not None:
        try:
            tok = tokenizers.from_state_dict(ck["tokenizer"])
        except ValueError as e:
            raise ValueError(f"{name} holds a damaged tokenizer: {e}") from None
    model.load_state_dict(ck["model"], strict=strict)
    for what, target in (("optimizer", optimizer), ("scheduler", scheduler)):
        if target is None:
            continue
        try:
            target.load_state_dict(ck[what])
        except (KeyError, TypeError, AttributeError, IndexError, OverflowError) as e:
            raise ValueError(f"{name} holds a damaged {what} state ({type(e).__name__}: {e})") from None
    set_rng_state(ck["rng"])
    info = {"step": ck["step"], **ck["extra"]}
    if tok is not None:
        info["tokenizer"] = tok
    return info


def _check_checkpoint(ck, name):
    """The types :func:`save_checkpoint` writes, so a damaged file is a ValueError before anything is restored."""
    problems = []
    if not isinstance(ck["model"], dict) or not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in ck["model"].items()):
        problems.append("'model' is not a state dict of tensors")
    for key in ("optimizer", "scheduler", "tokenizer"):
        if ck.get(key) is not None and not isinstance(ck[key], dict):
            problems.append(f"{key!r} is not a dict")
    if not isinstance(ck.get("step"), int) or isinstance(ck.get("step"), bool):
        problems.append("'step' is not an int")
    rng = ck["rng"]
    if not (isinstance(rng, list) and len(rng) == 4 and all(type(s) is int and 0 <= s < 2**64 for s in rng)):
        problems.append("'rng' is not four 64-bit unsigned ints")
    if not isinstance(ck.get("extra"), dict) or not all(isinstance(k, str) for k in ck["extra"]):
        problems.append("'extra' is not a dict of names")
    if problems:
        raise ValueError(f"{name} is a damaged training checkpoint: " + "; ".join(problems))
