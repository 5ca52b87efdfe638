"""RMSprop (PyTorch's semantics and defaults), each step one fused engine call per group."""

from .. import _core
from .._creation import zeros_like
from .optimizer import Optimizer, _c


class RMSprop(Optimizer):
    """``RMSprop(params, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False, maximize=False)``.

    Per element, with gradient ``g`` (negated with ``maximize``; ``g += weight_decay * p`` first)::

        square_avg = alpha * square_avg + (1 - alpha) * g**2
        grad_avg   = alpha * grad_avg + (1 - alpha) * g             # centered only
        s          = square_avg - grad_avg**2 if centered else square_avg
        x          = g / (sqrt(s) + eps)
        buf        = momentum * buf + x; x = buf                    # momentum > 0 only
        p         -= lr * x

    The state of each parameter is ``square_avg``, plus ``momentum_buffer`` with momentum and ``grad_avg`` when
    centered, as PyTorch keeps it (``state_dict()`` has its layout).

    Example::

        opt = bigcore.optim.RMSprop(model.parameters(), lr=1e-3, momentum=0.9)
        loss.backward(); opt.step(); opt.zero_grad()
    """

    _form = "torch"  # where eps and lr enter: keras.optimizers.RMSprop binds a subclass with "keras"

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                 maximize=False):
        if lr < 0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if eps < 0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if momentum < 0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if alpha < 0:
            raise ValueError(f"Invalid alpha value: {alpha}")
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                                      centered=centered, maximize=maximize))

    def step(self, closure=None):
        """One update; ``closure`` (re-evaluating the loss) is called first when given, and its loss returned."""
        loss = self._closure(closure)
        for g in self.param_groups:
            ps = [p for p in g["params"] if p.grad is not None]
            if not ps:
                continue
            momentum, centered = float(g["momentum"]), bool(g["centered"])
            names = ["square_avg"] + (["momentum_buffer"] if momentum > 0 else []) + (["grad_avg"] if centered else [])
            sts = [self._state(p, names) for p in ps]
            for st in sts:  # a group's momentum or centered may be switched on after the first step
                for name in names:
                    if name not in st:
                        st[name] = zeros_like(st["square_avg"])
            _core.rmsprop_step(_c(ps), _c([p.grad for p in ps]), _c([s["square_avg"] for s in sts]),
                               _c([s["momentum_buffer"] for s in sts] if momentum > 0 else []),
                               _c([s["grad_avg"] for s in sts] if centered else []), float(g["lr"]),
                               float(g["alpha"]), float(g["eps"]), float(g["weight_decay"]), momentum, centered,
                               bool(g["maximize"]), self._form)
            for st in sts:
                st["step"] += 1
        return loss
