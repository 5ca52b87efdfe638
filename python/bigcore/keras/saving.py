"""Saving Keras models: ``save_model`` / ``load_model`` (a ``.keras`` archive), ``save_weights`` /
``load_weights`` (a safetensors state dict), and the (de)serialization of layers, models, losses and optimizers
with ``register_keras_serializable`` and ``custom_objects``.

A ``.keras`` archive is laid out as Keras 3's: a zip holding ``config.json`` (``{"module", "class_name",
"config", "registered_name", "build_config", "compile_config"}``), ``metadata.json``, and the weights as
``model.weights.safetensors`` (the model's state dict, a standard safetensors file) where Keras has
``model.weights.h5``. Nothing is pickled, and loading never runs code from the file: classes are looked up among
bigcore's own, the registered ones, and ``custom_objects``. A subclassed model is rebuilt as
``cls.from_config(model.get_config())``: its constructor arguments, recorded automatically when they are plain
values (Keras 3's rule), else from its own ``get_config``. The compile settings are restored when they can be
written (names, Keras optimizers and losses; not a ``bigcore.optim`` optimizer bound to parameters); the
optimizer's state (moments) is not saved.

Weights files: Keras 3 requires the suffix ``.weights.h5``; bigcore writes no HDF5, so ``save_weights`` requires
``.weights.safetensors`` and refuses ``.h5`` saying why. The file is a state dict any safetensors reader (and
``bigcore.load``) opens; its metadata records the model's input shape, so ``load_weights`` can build a model
that has not run yet. ``load_weights`` reads ``.weights.safetensors``, any ``.safetensors`` state dict (what
``ModelCheckpoint`` writes) and ``.keras`` archives.

Files are written atomically (``bigcore._atomic``). A file that is not a model archive or weights file (another
format, truncated, without ``config.json``) raises a ValueError naming it.
"""

import inspect
import io
import json
import os
import warnings
import zipfile

import numpy as np

from .. import _atomic
from .._tensor import Tensor

_GLOBAL_CUSTOM_OBJECTS = {}
_GLOBAL_CUSTOM_NAMES = {}
_SCOPES = []
_WEIGHTS = "model.weights.safetensors"
_FORMAT = "bigcore.keras/1"


# ----- registry and custom objects -----
def register_keras_serializable(package="Custom", name=None):
    """Decorator registering a class (or function) under ``"package>name"`` so ``load_model`` finds it without
    ``custom_objects``: ``@keras.saving.register_keras_serializable(package="my_models")``."""

    def decorator(obj):
        registered = f"{package}>{name or obj.__name__}"
        if inspect.isclass(obj) and not hasattr(obj, "get_config"):
            raise ValueError(f"Cannot register a class that does not have a get_config() method: {obj}")
        _GLOBAL_CUSTOM_OBJECTS[registered] = obj
        _GLOBAL_CUSTOM_NAMES[obj] = registered
        return obj

    return decorator


def get_registered_name(obj):
    """The name ``obj`` is registered under, else its ``__name__``."""
    return _GLOBAL_CUSTOM_NAMES.get(obj, getattr(obj, "__name__", type(obj).__name__))


def get_registered_object(name, custom_objects=None):
    """The class or function registered (or given in ``custom_objects`` / a scope) under ``name``, else None."""
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    return lookup_custom_object(name)


class CustomObjectScope:
    """``with keras.saving.CustomObjectScope({"DNN": DNN}): ...``: names that loading resolves to these objects."""

    def __init__(self, *custom_objects):
        self.objects = {}
        for d in custom_objects:
            self.objects.update(d or {})

    def __enter__(self):
        _SCOPES.append(self.objects)
        return self

    def __exit__(self, *exc):
        _SCOPES.pop()


custom_object_scope = CustomObjectScope


def lookup_custom_object(name):
    """``name`` among the custom objects in scope, then the registered ones; None when absent."""
    for scope in reversed(_SCOPES):
        if name in scope:
            return scope[name]
    return _GLOBAL_CUSTOM_OBJECTS.get(name)


def _builtin_classes():
    from . import functional, layers, losses, model, optimizers, sequential

    found = {}
    for mod in (layers, losses, optimizers):
        for k in dir(mod):
            v = getattr(mod, k)
            if inspect.isclass(v) and hasattr(v, "from_config"):
                found[k] = v
    found.update(Model=model.Model, Sequential=sequential.Sequential, Functional=functional.Functional)
    return found


# ----- objects <-> configs -----
def _module_of(obj):
    mod = type(obj).__module__
    if mod.startswith("bigcore.keras.layers"):
        return "keras.layers"
    if mod.startswith("bigcore.keras."):
        return "keras." + mod.split(".")[2]
    return mod


def serialize_keras_object(obj):
    """A JSON-able config of ``obj``: plain values as they are, objects with ``get_config`` as
    ``{"module", "class_name", "config", "registered_name"}``, functions by their (registered) name."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (list, tuple)):
        return [serialize_keras_object(v) for v in obj]
    if isinstance(obj, dict):
        return {k: serialize_keras_object(v) for k, v in obj.items()}
    if hasattr(obj, "get_config") and not inspect.isclass(obj):
        registered = _GLOBAL_CUSTOM_NAMES.get(type(obj))
        if registered is None and not type(obj).__module__.startswith("bigcore.keras"):
            registered = type(obj).__name__
        return {"module": _module_of(obj), "class_name": type(obj).__name__,
                "config": serialize_keras_object(obj.get_config()), "registered_name": registered}
    if callable(obj) and hasattr(obj, "__name__"):
        return get_registered_name(obj)
    raise TypeError(f"cannot save an object of type {type(obj).__name__}: give it get_config() or pass a name")


def _find_class(config):
    class_name, registered = config.get("class_name"), config.get("registered_name")
    for name in (registered, class_name):
        if name:
            found = lookup_custom_object(name)
            if found is not None:
                return found
    found = _builtin_classes().get(class_name)
    if found is None:
        raise TypeError(f"Could not locate class {class_name!r}. Make sure custom classes are decorated with "
                        "`@keras.saving.register_keras_serializable()` or passed to load_model in "
                        f"`custom_objects={{{class_name!r}: {class_name}}}`. Full object config: {config}")
    return found


def deserialize_keras_object(config, custom_objects=None):
    """The object a config from ``serialize_keras_object`` describes (classes found in ``custom_objects``, the
    registered ones and bigcore's own)."""
    with CustomObjectScope(custom_objects or {}):
        if config is None or isinstance(config, (bool, int, float)):
            return config
        if isinstance(config, str):
            found = lookup_custom_object(config)
            return config if found is None else found
        if isinstance(config, list):
            return [deserialize_keras_object(c) for c in config]
        if not isinstance(config, dict) or "class_name" not in config:
            raise ValueError(f"not an object config: {config!r}")
        cls = _find_class(config)
        inner = config.get("config", {})
        params = inspect.signature(cls.from_config).parameters
        if "custom_objects" in params:
            return cls.from_config(inner, custom_objects=custom_objects)
        return cls.from_config(inner)


def _compile_config(model):
    """The compile settings as JSON, or None when they cannot be written (a warning says which)."""
    cfg = getattr(model, "_compile_config", None)
    if cfg is None:
        return None
    from . import optimizers

    try:
        opt = model._opt_spec  # a name was made an optimizer by compile
        if isinstance(opt, optimizers.Optimizer):
            config = opt.get_config()
            if model.optimizer is not None:
                config["learning_rate"] = float(model.optimizer.param_groups[0]["lr"])
            opt = {"class_name": type(opt).__name__, "config": config}
        elif not isinstance(opt, str):
            raise TypeError(f"a {type(opt).__name__} bound to parameters (use a name or keras.optimizers)")
        out = {k: serialize_keras_object(v) for k, v in cfg.items() if k != "optimizer"}
        out["optimizer"] = opt
        json.dumps(out)
        return out
    except (TypeError, ValueError, NotImplementedError) as e:
        warnings.warn(f"the model's compile settings are not saved ({e}); compile it again after loading", stacklevel=3)
        return None


def _compile_from_config(model, cfg):
    from . import optimizers

    def objects(v):
        if isinstance(v, dict) and "class_name" in v:
            return deserialize_keras_object(v)
        if isinstance(v, dict):
            return {k: objects(x) for k, x in v.items()}
        if isinstance(v, list):
            return [objects(x) for x in v]
        return v

    model.compile(optimizer=optimizers.get(cfg["optimizer"]), loss=objects(cfg["loss"]),
                  loss_weights=cfg.get("loss_weights"), metrics=objects(cfg.get("metrics")),
                  weighted_metrics=objects(cfg.get("weighted_metrics")))


# ----- .keras archives -----
def _state_bytes(model, metadata=None):
    from safetensors.numpy import save

    from ..io import _contiguous

    return save({k: _contiguous(v) for k, v in model.state_dict().items()}, metadata=metadata)


def _check_overwrite(path, overwrite):
    if not overwrite and os.path.exists(path):
        raise FileExistsError(17, "file exists and overwrite=False", path)


def save_model(model, filepath, overwrite=True, **kwargs):
    """Save ``model`` (architecture, weights, compile settings) to a ``.keras`` archive, atomically.

    Raises:
        ValueError: the name does not end in ``.keras`` (``.h5``: bigcore writes no HDF5).
        NotImplementedError: a subclassed model made with arguments that are not plain values and without its
            own ``get_config``.
    """
    if kwargs:
        raise TypeError(f"save_model() got unexpected keyword arguments {sorted(kwargs)}")
    path = os.fspath(filepath)
    if path.endswith((".h5", ".hdf5")):
        raise ValueError(f"{path!r}: bigcore writes no HDF5 (Keras's legacy .h5 format); save to a .keras archive")
    if not path.endswith(".keras"):
        raise ValueError("Invalid filepath extension for saving. Please add a `.keras` extension for the native "
                         f"Keras format. Received: filepath={path}")
    _check_overwrite(path, overwrite)
    from .. import __version__

    config = serialize_keras_object(model)
    config["build_config"] = model.get_build_config()
    config["compile_config"] = _compile_config(model)
    meta = {"keras_version": "3", "bigcore_version": __version__, "format": _FORMAT}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("metadata.json", json.dumps(meta))
        zf.writestr("config.json", json.dumps(config, allow_nan=False))
        zf.writestr(_WEIGHTS, _state_bytes(model))
    _atomic.write_atomically(path, lambda fd: _atomic.write_all(fd, buf.getvalue()))


def _open_existing(path):
    if not os.path.exists(path):
        raise FileNotFoundError(2, "No such file", path)
    with open(path, "rb"):  # a file we cannot open is the OSError that says why
        pass


def _read_archive(path):
    """``(config, {name: array})`` from a ``.keras`` archive, every failure a ValueError naming the file."""
    from safetensors.numpy import load

    _open_existing(path)
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            if "config.json" not in names:
                raise ValueError("it is a zip file without config.json, so not a Keras model archive")
            if _WEIGHTS not in names:
                if "model.weights.h5" in names:
                    raise ValueError("its weights are HDF5 (model.weights.h5, written by Keras), which bigcore "
                                     "does not read")
                raise ValueError(f"it has no {_WEIGHTS}")
            config = json.loads(zf.read("config.json"))
            weights = load(zf.read(_WEIGHTS))
    except zipfile.BadZipFile as e:
        raise ValueError(f"{path!r} is not a .keras model archive (not a readable zip file: {e})") from None
    except ValueError as e:
        raise ValueError(f"{path!r} is not a readable .keras model archive: {e}") from None
    except Exception as e:  # zlib, safetensors and json errors of a damaged file
        raise ValueError(f"{path!r} is a damaged .keras model archive ({type(e).__name__}: {e})") from None
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"{path!r}: config.json does not describe a model")
    return config, weights


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """A model saved by ``save_model`` / ``model.save``: rebuilt from its config, built, its weights loaded, and
    compiled as it was (with ``compile=True``, when the settings were saved).

    Args:
        filepath: the ``.keras`` archive.
        custom_objects: ``{name: class or function}`` for subclassed models, custom layers, losses, activations.
        compile: restore the compile settings.
        safe_mode: accepted for Keras's signature; bigcore never runs code from a file.

    Raises:
        FileNotFoundError, OSError: the file cannot be opened.
        ValueError: not a ``.keras`` archive (another format, truncated, no config), or the weights do not fit.
        TypeError: a class in the config is not found (pass it in ``custom_objects``).
    """
    path = os.fspath(filepath)
    if path.endswith((".h5", ".hdf5")):
        raise ValueError(f"{path!r}: bigcore reads no HDF5 (Keras's legacy .h5 format); load a .keras archive")
    config, weights = _read_archive(path)
    with CustomObjectScope(custom_objects or {}):
        model = deserialize_keras_object(config, custom_objects)
        _build_from(model, config.get("build_config"))
        _load_state(model, weights, path)
        if compile and config.get("compile_config"):
            _compile_from_config(model, config["compile_config"])
    return model


def _build_from(model, build_config):
    if model.built or not build_config or build_config.get("input_shape") is None:
        return
    model._build_input_dtype = build_config.get("input_dtype")
    model.build(build_config["input_shape"])


def _load_state(model, weights, path, skip_mismatch=False):
    if skip_mismatch:
        own = model.state_dict()
        weights = {k: v for k, v in weights.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
    try:
        model.load_state_dict(weights, strict=not skip_mismatch)
    except RuntimeError as e:
        raise ValueError(f"{path!r}: the weights do not fit model {model.name!r}: {e}") from None


# ----- weights files -----
def save_weights(model, filepath, overwrite=True):
    """Write the model's state dict to ``<name>.weights.safetensors``, atomically (see the module docstring)."""
    path = os.fspath(filepath)
    if path.endswith((".h5", ".hdf5")):
        raise ValueError(f"{path!r}: bigcore writes no HDF5, so no Keras .weights.h5 files; name the file "
                         "'<name>.weights.safetensors' (a safetensors state dict)")
    if not path.endswith(".weights.safetensors"):
        raise ValueError(f"The filename must end in `.weights.safetensors`. Received: filepath={path}")
    _check_overwrite(path, overwrite)
    if not model.built and not model.state_dict():
        raise ValueError(f"save_weights: model {model.name!r} is not built yet, so it has no weights: call it on "
                         "data, fit it, or build(input_shape) first")
    meta = {"format": _FORMAT, "build_config": json.dumps(model.get_build_config())}
    data = _state_bytes(model, meta)
    _atomic.write_atomically(path, lambda fd: _atomic.write_all(fd, data))


def load_weights(model, filepath, skip_mismatch=False):
    """Load weights from ``save_weights``'s file, any safetensors state dict, or a ``.keras`` archive; a model not
    built yet is built first from the input shape recorded in the file. ``skip_mismatch`` skips weights whose
    name or shape does not fit."""
    from safetensors import safe_open

    path = os.fspath(filepath)
    if path.endswith(".keras"):
        config, weights = _read_archive(path)
        build_config = config.get("build_config")
    elif path.endswith(".safetensors"):
        _open_existing(path)
        try:
            with safe_open(path, framework="numpy") as f:
                meta = f.metadata() or {}
                weights = {k: f.get_tensor(k) for k in f.keys()}
            build_config = json.loads(meta["build_config"]) if "build_config" in meta else None
        except Exception as e:  # safetensors raises its own error type; json others
            raise ValueError(f"{path!r} is not a readable weights file: {e}") from None
        if "bigcore" in meta and "build_config" not in meta:
            raise ValueError(f"{path!r} is a bigcore checkpoint of several objects, not a weights file: read it with "
                             "bigcore.load")
    elif path.endswith((".h5", ".hdf5")):
        raise ValueError(f"{path!r}: bigcore reads no HDF5 (.weights.h5); save weights as .weights.safetensors")
    else:
        raise ValueError(f"File format not supported: filepath={path}. bigcore reads .weights.safetensors, "
                         ".safetensors and .keras files")
    if not model.built and model._build_input_shape is None:
        _build_from(model, build_config)
    _load_state(model, {k: v for k, v in weights.items() if isinstance(v, (np.ndarray, Tensor))}, path, skip_mismatch)
