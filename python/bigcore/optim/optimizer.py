"""``Optimizer``: parameter groups, per-parameter state, ``zero_grad`` and PyTorch-format state dicts.
Subclasses implement ``step`` as one fused engine call per group."""

import copy

import numpy as np

from .._creation import tensor, zeros_like
from .._tensor import Tensor


class Optimizer:
    """Base class: ``Optimizer(params, defaults)`` where ``params`` is an iterable of tensors or of dicts
    (parameter groups with their own hyper-parameters)."""

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = {}  # Parameter -> dict of state (tensors and the step count)
        self.param_groups = []
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group):
        """Add a group of parameters with optional hyper-parameters overriding the defaults."""
        group = dict(group)
        ps = group["params"]
        group["params"] = [ps] if isinstance(ps, Tensor) else list(ps)
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, got {type(p).__name__}")
            if not p.is_floating_point():
                raise TypeError(f"optimizer can only optimize floating point tensors, got {p.dtype!r}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        group.setdefault("initial_lr", group["lr"])
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        """Clear gradients (to None by default, or to zeros)."""
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is not None:
                    p.grad = None if set_to_none else zeros_like(p.grad)

    def _state(self, p, names):
        st = self.state.get(p)
        if st is None:
            st = {"step": 0}
            for n in names:
                st[n] = zeros_like(p)
            self.state[p] = st
        return st

    def step(self, closure=None):
        raise NotImplementedError(f"{type(self).__name__} must implement step()")

    def _closure(self, closure):
        if closure is None:
            return None
        from ..autograd import enable_grad

        with enable_grad():
            return closure()

    # ----- state dicts, in PyTorch's layout: params numbered in group order -----
    def state_dict(self):
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [index, ...]}]}``."""
        index, groups = {}, []
        for g in self.param_groups:
            ids = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            groups.append({**{k: copy.deepcopy(v) for k, v in g.items() if k != "params"}, "params": ids})
        state = {}
        for g in self.param_groups:
            for p in g["params"]:
                if p in self.state:
                    state[index[id(p)]] = {k: (v.detach().clone() if isinstance(v, Tensor) else v) for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore state saved by ``state_dict`` (tensors may be numpy arrays)."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        params = [p for g in self.param_groups for p in g["params"]]
        if sum(len(g["params"]) for g in groups) != len(params):
            raise ValueError("loaded state dict contains a parameter group that doesn't match the size of optimizer's group")
        index = {i: p for g_saved, g in zip(groups, self.param_groups) for i, p in zip(g_saved["params"], g["params"])}
        for g_saved, g in zip(groups, self.param_groups):
            g.update({k: copy.deepcopy(v) for k, v in g_saved.items() if k != "params"})
        self.state = {}
        for key, st in state_dict["state"].items():
            p = index[int(key)]
            new = {}
            for k, v in st.items():
                if isinstance(v, (Tensor, np.ndarray)):
                    arr = v.numpy() if isinstance(v, Tensor) else v
                    if tuple(arr.shape) != p.shape:
                        raise ValueError(f"optimizer state '{k}' has shape {tuple(arr.shape)}, parameter has {p.shape}")
                    new[k] = tensor(arr, dtype=p.dtype)
                else:
                    new[k] = int(v) if k == "step" else v
            self.state[p] = new

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(k for k in g if k != "params"):
                lines.append(f"    {k}: {g[k]}")
        return "\n".join(lines) + "\n)"


def _c(ts):
    """The engine handles of a list of tensors."""
    return [t._c for t in ts]
