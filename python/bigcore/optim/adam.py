"""Adam and AdamW (PyTorch's semantics and defaults), each step one fused engine call per group."""

from .. import _core
from .optimizer import Optimizer, _c


class Adam(Optimizer):
    """``Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, maximize=False)``; weight decay
    is an L2 term added to the gradient."""

    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False):
        if lr < 0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if eps < 0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        for i, b in enumerate(betas):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {b}")
        if weight_decay < 0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if amsgrad:
            raise ValueError("amsgrad=True is not supported by bigcore's fused Adam; use amsgrad=False")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=False,
                                      maximize=maximize))

    def step(self, closure=None):
        """One update; ``closure`` (re-evaluating the loss) is called first when given, and its loss returned."""
        loss = self._closure(closure)
        for g in self.param_groups:
            by_step = {}
            for p in g["params"]:
                if p.grad is None:
                    continue
                st = self._state(p, ["exp_avg", "exp_avg_sq"])
                st["step"] += 1
                by_step.setdefault(st["step"], []).append(p)
            b1, b2 = g["betas"]
            for step, ps in by_step.items():
                sts = [self.state[p] for p in ps]
                _core.adam_step(_c(ps), _c([p.grad for p in ps]), _c([s["exp_avg"] for s in sts]),
                                _c([s["exp_avg_sq"] for s in sts]), float(g["lr"]), float(b1), float(b2),
                                float(g["eps"]), float(g["weight_decay"]), self._decoupled, bool(g["maximize"]), step)
        return loss


class AdamW(Adam):
    """``AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)``: Adam with decoupled weight
    decay (``p *= 1 - lr * weight_decay`` before the Adam update)."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)
