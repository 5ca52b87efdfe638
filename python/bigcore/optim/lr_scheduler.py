"""Learning-rate schedules (PyTorch's names and closed forms): ``StepLR``, ``CosineAnnealingLR``, ``LambdaLR``,
``LinearLR``, and ``WarmupCosineLR`` (linear warmup then cosine decay, as GPT training uses).

Call ``scheduler.step()`` after ``optimizer.step()``; ``get_last_lr()`` gives the rates now in force."""

import math


class LRScheduler:
    def __init__(self, optimizer, last_epoch=-1):
        self.optimizer = optimizer
        for g in optimizer.param_groups:
            g.setdefault("initial_lr", g["lr"])
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def get_lr(self):
        """The learning rate of each group at ``self.last_epoch``."""
        return [self.lr_at(base, self.last_epoch) for base in self.base_lrs]

    def lr_at(self, base_lr, epoch):
        raise NotImplementedError

    def step(self):
        self.last_epoch += 1
        self._last_lr = self.get_lr()
        for g, lr in zip(self.optimizer.param_groups, self._last_lr):
            g["lr"] = lr

    def get_last_lr(self):
        return list(self._last_lr)

    def state_dict(self):
        return {k: v for k, v in self.__dict__.items() if k != "optimizer" and not callable(v)}

    def load_state_dict(self, state_dict):
        self.__dict__.update(state_dict)
        for g, lr in zip(self.optimizer.param_groups, self._last_lr):
            g["lr"] = lr


class StepLR(LRScheduler):
    """``lr = base * gamma ** (epoch // step_size)``."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        if step_size <= 0:
            raise ValueError(f"step_size must be positive, got {step_size}")
        self.step_size, self.gamma = int(step_size), float(gamma)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base, t):
        return base * self.gamma ** (t // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """``lr = eta_min + (base - eta_min) * (1 + cos(pi * t / T_max)) / 2``."""

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        if T_max <= 0:
            raise ValueError(f"T_max must be positive, got {T_max}")
        self.T_max, self.eta_min = T_max, float(eta_min)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base, t):
        return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2


class LambdaLR(LRScheduler):
    """``lr = base * lr_lambda(epoch)`` (one function, or one per group)."""

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        n = len(optimizer.param_groups)
        self.lr_lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * n
        if len(self.lr_lambdas) != n:
            raise ValueError(f"expected {n} lr_lambdas, got {len(self.lr_lambdas)}")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base * f(self.last_epoch) for base, f in zip(self.base_lrs, self.lr_lambdas)]

    def state_dict(self):
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")}


class LinearLR(LRScheduler):
    """Factor moving linearly from ``start_factor`` to ``end_factor`` over ``total_iters`` steps."""

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, last_epoch=-1):
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1:
            raise ValueError("start_factor must be in (0, 1] and end_factor in [0, 1]")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base, t):
        frac = min(t, self.total_iters) / self.total_iters if self.total_iters > 0 else 1.0
        return base * (self.start_factor + (self.end_factor - self.start_factor) * frac)


class WarmupCosineLR(LRScheduler):
    """Linear warmup from 0 to the base rate over ``warmup_steps``, then cosine decay to ``eta_min`` at
    ``max_steps``, then ``eta_min`` (nanoGPT's schedule)."""

    def __init__(self, optimizer, warmup_steps, max_steps, eta_min=0.0, last_epoch=-1):
        if not 0 <= warmup_steps < max_steps:
            raise ValueError(f"need 0 <= warmup_steps < max_steps, got {warmup_steps} and {max_steps}")
        self.warmup_steps, self.max_steps, self.eta_min = warmup_steps, max_steps, float(eta_min)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base, t):
        if t < self.warmup_steps:
            return base * (t + 1) / self.warmup_steps
        if t >= self.max_steps:
            return self.eta_min
        ratio = (t - self.warmup_steps) / (self.max_steps - self.warmup_steps)
        return self.eta_min + 0.5 * (1 + math.cos(math.pi * ratio)) * (base - self.eta_min)
