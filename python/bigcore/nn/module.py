"""``Module``: the base of every layer and model. Attributes that are Parameters or Modules are registered, so
``parameters()``, ``state_dict()``, ``train()``/``eval()`` and ``to(dtype)`` walk the whole tree with the same
names PyTorch gives (``encoder.layers.0.linear1.weight``)."""

import collections

import numpy as np

from .. import _core, _tracing
from .._dtype import to_dtype
from .._tensor import Tensor, _as_c
from .parameter import Parameter

_IncompatibleKeys = collections.namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Module:
    """Base class for neural-network modules. Subclasses set layers in ``__init__`` and define ``forward``.

    Example::

        class MLP(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1 = nn.Linear(64, 128)
                self.fc2 = nn.Linear(128, 10)

            def forward(self, x):  # (B, 64) -> (B, 10)
                return self.fc2(F.relu(self.fc1(x)))
    """

    def __init__(self):
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", {})

    # ----- registration -----
    def _registry(self, name):
        reg = self.__dict__.get(name)
        if reg is None:
            raise AttributeError(f"cannot assign to {type(self).__name__} before Module.__init__() is called")
        return reg

    def _forget(self, name, *registries):
        for reg in registries:
            self.__dict__.get(reg, {}).pop(name, None)
        self.__dict__.pop(name, None)

    def __setattr__(self, name, value):
        # the same branches as PyTorch: Parameter, existing parameter slot, Module, existing child slot, buffer
        d = self.__dict__
        if isinstance(value, Parameter):
            params = self._registry("_parameters")
            self._forget(name, "_buffers", "_modules")
            params[name] = value
        elif name in d.get("_parameters", {}):
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as parameter '{name}' (a Parameter or None is expected)")
            d["_parameters"][name] = None
        elif isinstance(value, Module):
            mods = self._registry("_modules")
            self._forget(name, "_parameters", "_buffers")
            mods[name] = value
        elif name in d.get("_modules", {}):
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module '{name}' (a Module or None is expected)")
            d["_modules"][name] = None
        elif name in d.get("_buffers", {}):
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign {type(value).__name__} as buffer '{name}' (a Tensor or None is expected)")
            d["_buffers"][name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        d = self.__dict__
        for reg in ("_parameters", "_buffers", "_modules"):
            if reg in d and name in d[reg]:
                return d[reg][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for reg in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__.get(reg, {}):
                del self.__dict__[reg][name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name, param):
        """Add a parameter (or None) under ``name``."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign {type(param).__name__} as parameter '{name}'")
        self._registry("_parameters")[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """Add a non-trainable tensor (or None) that ``state_dict`` saves unless ``persistent=False``."""
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign {type(tensor).__name__} as buffer '{name}'")
        self._registry("_buffers")[name] = tensor
        (self._non_persistent.discard if persistent else self._non_persistent.add)(name)

    def add_module(self, name, module):
        """Add a child module (or None) under ``name``."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module")
        self._registry("_modules")[name] = module

    register_module = add_module

    # ----- calling -----
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')

    def __call__(self, *args, **kwargs):
        if _tracing.ACTIVE is not None:  # exporting: the tracer notes which module runs (bigcore.onnx)
            t = _tracing.tracer()
            if t is not None:
                return t.call_module(self, args, kwargs)
        return self.forward(*args, **kwargs)

    # ----- traversal -----
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        memo = set() if memo is None else memo
        if remove_duplicate and id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(memo, f"{prefix}.{name}" if prefix else name, remove_duplicate)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def _named(self, registry, prefix, recurse, remove_duplicate=True):
        seen = set()
        mods = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mp, m in mods:
            for name, t in getattr(m, registry).items():
                if t is None or (remove_duplicate and id(t) in seen):
                    continue
                seen.add(id(t))
                yield (f"{mp}.{name}" if mp else name), t

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """``(name, Parameter)`` pairs of this module and (by default) its children, each parameter once."""
        return self._named("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True):
        return self._named("_buffers", prefix, recurse)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn):
        """Call ``fn`` on every submodule (children first) and on self; returns self."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ----- modes and dtypes -----
    def train(self, mode=True):
        """Set training mode (dropout active) on this module and its children; returns self."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        """Set evaluation mode (dropout off); returns self."""
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        """Set ``requires_grad`` on every parameter of this module and its children; returns self. Freezing
        (``False``): backward then leaves their ``.grad`` None, and ``configure_optimizers`` skips them.

        Example::

            model.transformer.h[0].requires_grad_(False)  # freeze the first block
        """
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Clear the gradients of all parameters (to None by default, or to zeros)."""
        from .._creation import zeros_like

        for p in self.parameters():
            if p.grad is not None:
                p.grad = None if set_to_none else zeros_like(p.grad)

    def to(self, dtype):
        """Convert floating-point parameters and buffers to ``dtype`` in place (the Parameter objects are kept)."""
        d = to_dtype(dtype)
        if not d.is_floating_point:
            raise TypeError(f"nn.Module.to only accepts floating point dtypes, got {d!r}")
        for m in self.modules():
            for reg in (m._parameters, m._buffers):
                for name, t in reg.items():
                    if t is not None and t.is_floating_point() and t.dtype is not d:
                        rg = t.requires_grad
                        t._c = _core.to_dtype(t._c.detach(), d.name)
                        if rg:
                            t._c.set_requires_grad(True)
        return self

    def float(self):
        return self.to("float32")

    def double(self):
        return self.to("float64")

    # ----- state -----
    def state_dict(self, destination=None, prefix="", keep_vars=False):
        """An ordered dict from dotted names to parameters and persistent buffers (detached unless keep_vars)."""
        out = collections.OrderedDict() if destination is None else destination
        for mp, m in self.named_modules(prefix=prefix.rstrip(".")):
            base = f"{mp}." if mp else ""
            for name, p in m._parameters.items():
                if p is not None:
                    out[base + name] = p if keep_vars else p.detach()
            for name, b in m._buffers.items():
                if b is not None and name not in m._non_persistent:
                    out[base + name] = b if keep_vars else b.detach()
        return out

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """Copy values from ``state_dict`` (bigcore tensors, numpy arrays, or anything ``np.asarray`` takes — a
        PyTorch state dict converted to numpy loads as is) into the parameters and buffers, in place.

        Shapes must match; values are converted to each parameter's dtype. With ``strict`` (the default) missing
        or unexpected keys raise a RuntimeError listing them. Returns ``(missing_keys, unexpected_keys)``.
        """
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors = []
        if strict and (missing or unexpected):
            if missing:
                errors.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ".")
            if unexpected:
                errors.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ".")
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            shape = tuple(value.shape) if hasattr(value, "shape") else np.shape(value)
            if tuple(shape) != target.shape:
                errors.append(f"size mismatch for {key}: copying a param with shape {tuple(shape)} from checkpoint, "
                              f"the shape in current model is {target.shape}.")
                continue
            if not errors:
                src = value if isinstance(value, Tensor) else _tensor_like(value, target)
                _core.assign(target._c, _as_c(src))
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" + "\n\t".join(errors))
        return _IncompatibleKeys(missing, unexpected)

    # ----- printing -----
    def extra_repr(self):
        """The text inside this module's parentheses in its repr."""
        return ""

    def __repr__(self):
        lines = []
        for name, m in self._modules.items():
            child = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        head = f"{type(self).__name__}(" + (f"{extra}" if extra else "")
        return head + "\n  " + "\n  ".join(lines) + "\n)"

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))


def _tensor_like(value, target):
    from .._creation import tensor

    arr = np.asarray(value)
    return tensor(arr, dtype=target.dtype)
