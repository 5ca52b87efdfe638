"""Saving and loading: ``save(obj, path)`` / ``load(path)`` and training checkpoints.

Files are safetensors. A flat ``{name: tensor}`` dict (a model's ``state_dict``) is written as a standard
safetensors file any other tool can read. Nested objects (optimizer and scheduler state, checkpoints) keep their
tensors in the same file, named by their path (``optimizer/state/0/exp_avg``), and their structure and plain
values (numbers, strings, lists, tuples, dicts with str or int keys) as JSON in the file's metadata.
Nothing is ever pickled. Writes go to a temporary file that is renamed over the target, so an interrupted save
never destroys the previous file. A truncated, corrupted or foreign file raises a ValueError naming it.
"""

import json
import os

import numpy as np

from . import _core, tokenizers
from ._creation import tensor
from ._tensor import Tensor

_META_KEY = "bigcore"
_FORMAT = 1


def _encode(obj, path, tensors):
    if isinstance(obj, (Tensor, np.ndarray)):
        name = "/".join(path) or "tensor"
        tensors[name] = np.ascontiguousarray(obj.numpy() if isinstance(obj, Tensor) else obj)
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
    from safetensors.numpy import save_file

    path = os.fspath(path)
    tensors = {}
    flat = isinstance(obj, dict) and obj and all(isinstance(k, str) and isinstance(v, (Tensor, np.ndarray)) for k, v in obj.items())
    if flat:
        tensors = {k: np.ascontiguousarray(v.numpy() if isinstance(v, Tensor) else v) for k, v in obj.items()}
        meta = {_META_KEY: json.dumps({"format": _FORMAT, "flat": True})}
    else:
        structure = _encode(obj, [], tensors)
        meta = {_META_KEY: json.dumps({"format": _FORMAT, "root": structure})}
    for name, arr in tensors.items():
        if arr.dtype not in (np.float32, np.float64, np.int64, np.bool_):
            raise TypeError(f"save: tensor {name!r} has unsupported dtype {arr.dtype}")
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        save_file(tensors, tmp, metadata=meta)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load(path):
    """Read a file written by :func:`save` (or any safetensors file: a ``{name: tensor}`` dict comes back).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is truncated, corrupted or not a safetensors file (the message names it).
    """
    from safetensors import safe_open

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such checkpoint: {path!r}")
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
    ``"tokenizer"``: the tokenizer rebuilt, when one was saved."""
    ck = load(path)
    if not isinstance(ck, dict) or "model" not in ck or "rng" not in ck:
        raise ValueError(f"{os.fspath(path)!r} is a bigcore file but not a training checkpoint")
    model.load_state_dict(ck["model"], strict=strict)
    if optimizer is not None:
        if ck["optimizer"] is None:
            raise ValueError(f"{os.fspath(path)!r} holds no optimizer state")
        optimizer.load_state_dict(ck["optimizer"])
    if scheduler is not None:
        if ck["scheduler"] is None:
            raise ValueError(f"{os.fspath(path)!r} holds no scheduler state")
        scheduler.load_state_dict(ck["scheduler"])
    set_rng_state(ck["rng"])
    info = {"step": ck["step"], **ck["extra"]}
    if ck.get("tokenizer") is not None:
        info["tokenizer"] = tokenizers.from_state_dict(ck["tokenizer"])
    return info
