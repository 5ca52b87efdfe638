"""``nn.utils``: gradient clipping, in place, over many parameters in one engine call."""

import math

from .. import _core
from .._creation import tensor
from .._tensor import Tensor
from .parameter import _replace_values


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale gradients so their joint ``norm_type``-norm is at most ``max_norm``; returns the norm before
    clipping (a 0-d float tensor). Scaling uses ``max_norm / (norm + 1e-6)``, capped at 1, as PyTorch."""
    grads = _grads(parameters)
    if not grads:
        return tensor(0.0)
    norm_type = float(norm_type)
    if norm_type == 2.0:
        total = _core.total_norm([g._c for g in grads])
    elif math.isinf(norm_type):
        total = max(float(abs(g).max().item()) for g in grads)
    else:
        total = sum(float((abs(g).double() ** norm_type).sum().item()) for g in grads) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, "
                           "so it cannot be clipped. Pass error_if_nonfinite=False to clip anyway.")
    coef = float(max_norm) / (total + 1e-6)
    if coef < 1.0:
        _core.scale_([g._c for g in grads], coef)
    return tensor(total)


def clip_grad_value_(parameters, clip_value):
    """Clamp every gradient element to ``[-clip_value, clip_value]`` in place."""
    v = float(clip_value)
    for g in _grads(parameters):
        _replace_values(g, g.clamp(-v, v))
