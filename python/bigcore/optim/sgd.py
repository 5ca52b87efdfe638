"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay (PyTorch's semantics)."""

from .. import _core
from .optimizer import Optimizer, _c


class SGD(Optimizer):
    """``SGD(params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, maximize=False)``.

    Each ``step()`` updates every parameter with a gradient in one fused engine call per group.
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False):
        if lr < 0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov, maximize=maximize))

    def step(self, closure=None):
        """One update; ``closure`` (re-evaluating the loss) is called first when given, and its loss returned."""
        loss = self._closure(closure)
        for g in self.param_groups:
            live = [p for p in g["params"] if p.grad is not None]
            fresh = [p for p in live if p not in self.state]
            for first, ps in ((True, fresh), (False, [p for p in live if p in self.state])):
                if not ps:
                    continue
                bufs = [self._state(p, ["momentum_buffer"])["momentum_buffer"] for p in ps]
                _core.sgd_step(_c(ps), _c([p.grad for p in ps]), _c(bufs), float(g["lr"]), float(g["momentum"]),
                               float(g["dampening"]), float(g["weight_decay"]), bool(g["nesterov"]),
                               bool(g["maximize"]), first)
                for p in ps:
                    self.state[p]["step"] += 1
        return loss
