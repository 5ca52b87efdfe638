"""Optimizers against hand-computed numpy steps (PyTorch's update rules), state dicts, and schedulers."""

import math

import numpy as np
import pytest

import bigcore
import bigcore.nn as nn
from bigcore.optim import SGD, Adam, AdamW, lr_scheduler


def run(opt_cls, grads, p0, **kw):
    p = nn.Parameter(bigcore.tensor(p0))
    opt = opt_cls([p], **kw)
    for g in grads:
        p.grad = bigcore.tensor(g)
        opt.step()
    return p.numpy(), opt


def sgd_ref(p, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False):
    buf = None
    for g in grads:
        d = (-g if maximize else g) + weight_decay * p
        if momentum:
            buf = d.copy() if buf is None else momentum * buf + (1 - dampening) * d
            d = d + momentum * buf if nesterov else buf
        p = p - lr * d
    return p


def adam_ref(p, grads, lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0, decoupled=False):
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, 1):
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - (lr / (1 - b1**t)) * m / (np.sqrt(v) / math.sqrt(1 - b2**t) + eps)
    return p


@pytest.mark.parametrize("kw", [
    dict(lr=0.1), dict(lr=0.1, momentum=0.9), dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.1, momentum=0.5, dampening=0.3, weight_decay=0.01), dict(lr=0.1, maximize=True),
])
def test_sgd_matches_hand_computed_steps(kw, rng):
    p0 = rng.standard_normal((3, 5))
    grads = [rng.standard_normal((3, 5)) for _ in range(4)]
    got, _ = run(SGD, grads, p0, **kw)
    np.testing.assert_allclose(got, sgd_ref(p0, grads, **kw), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls,kw", [
    (Adam, dict(lr=0.01)), (Adam, dict(lr=0.01, weight_decay=0.1)), (AdamW, dict(lr=0.01)),
    (AdamW, dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.3)),
])
def test_adam_and_adamw_match_hand_computed_steps(cls, kw, rng):
    p0 = rng.standard_normal(7)
    grads = [rng.standard_normal(7) for _ in range(5)]
    got, opt = run(cls, grads, p0, **kw)
    b1, b2 = kw.get("betas", (0.9, 0.999))
    wd = kw.get("weight_decay", 0.01 if cls is AdamW else 0.0)
    want = adam_ref(p0, grads, kw["lr"], b1, b2, kw.get("eps", 1e-8), wd, decoupled=cls is AdamW)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    assert opt.state[opt.param_groups[0]["params"][0]]["step"] == 5


def test_float32_parameters_update_in_float32(rng):
    p = nn.Parameter(bigcore.ones(4))
    p.grad = bigcore.ones(4)
    AdamW([p], lr=0.1).step()
    assert p.dtype is bigcore.float32
    np.testing.assert_allclose(p.numpy(), adam_ref(np.ones(4), [np.ones(4)], 0.1, weight_decay=0.01, decoupled=True), rtol=1e-6)


def test_parameters_without_grad_are_skipped_and_groups_override():
    a, b = nn.Parameter(bigcore.ones(2)), nn.Parameter(bigcore.ones(2))
    opt = SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1)
    a.grad = bigcore.ones(2)
    opt.step()
    np.testing.assert_allclose(a.numpy(), [0.9, 0.9])
    np.testing.assert_array_equal(b.numpy(), [1, 1])
    b.grad = bigcore.ones(2)
    opt.step()
    np.testing.assert_allclose(b.numpy(), [0.0, 0.0])
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_state_dict_round_trip_continues_identically(rng):
    model = nn.Linear(4, 3)
    x, y = bigcore.tensor(rng.standard_normal((8, 4))), bigcore.tensor(rng.integers(0, 3, 8))

    def steps(m, opt, n):
        for _ in range(n):
            opt.zero_grad()
            nn.functional.cross_entropy(m(x), y).backward()
            opt.step()

    opt = AdamW(model.parameters(), lr=0.05)
    steps(model, opt, 3)
    saved_model = {k: v.numpy() for k, v in model.state_dict().items()}
    saved_opt = opt.state_dict()
    steps(model, opt, 4)
    model2 = nn.Linear(4, 3)
    model2.load_state_dict(saved_model)
    opt2 = AdamW(model2.parameters(), lr=0.05)
    opt2.load_state_dict(saved_opt)
    steps(model2, opt2, 4)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(model2.state_dict()[k].numpy(), v.numpy())


def test_optimizer_argument_errors():
    p = [nn.Parameter(bigcore.ones(1))]
    for f in (lambda: SGD(p, lr=-1), lambda: Adam(p, betas=(1.0, 0.9)), lambda: SGD(p, nesterov=True),
              lambda: SGD([]), lambda: AdamW(p, eps=-1)):
        with pytest.raises(ValueError):
            f()
    with pytest.raises(TypeError):
        SGD([bigcore.tensor([1, 2])])


def _lrs(sched_fn, n, lr=1.0):
    opt = SGD([nn.Parameter(bigcore.ones(1))], lr=lr)
    s = sched_fn(opt)
    out = [s.get_last_lr()[0]]
    for _ in range(n):
        opt.step()
        s.step()
        out.append(opt.param_groups[0]["lr"])
    return out


def test_schedulers_follow_their_formulas():
    np.testing.assert_allclose(_lrs(lambda o: lr_scheduler.StepLR(o, 2, 0.5), 5), [1, 1, 0.5, 0.5, 0.25, 0.25])
    np.testing.assert_allclose(_lrs(lambda o: lr_scheduler.CosineAnnealingLR(o, 4, 0.1), 4),
                               [0.1 + 0.9 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(5)])
    np.testing.assert_allclose(_lrs(lambda o: lr_scheduler.LambdaLR(o, lambda e: 0.9**e), 3), [1, 0.9, 0.81, 0.729])
    np.testing.assert_allclose(_lrs(lambda o: lr_scheduler.LinearLR(o, 0.25, 1.0, 3), 4), [0.25, 0.5, 0.75, 1.0, 1.0])
    got = _lrs(lambda o: lr_scheduler.WarmupCosineLR(o, 2, 6, eta_min=0.1), 7, lr=2.0)
    want = [1.0, 2.0] + [0.1 + 0.5 * (1 + math.cos(math.pi * (t - 2) / 4)) * 1.9 for t in range(2, 6)] + [0.1, 0.1]
    np.testing.assert_allclose(got, want)


def test_scheduler_state_dict_round_trip():
    opt = SGD([nn.Parameter(bigcore.ones(1))], lr=1.0)
    s = lr_scheduler.StepLR(opt, 2, 0.5)
    for _ in range(3):
        s.step()
    sd = s.state_dict()
    opt2 = SGD([nn.Parameter(bigcore.ones(1))], lr=1.0)
    s2 = lr_scheduler.StepLR(opt2, 2, 0.5)
    s2.load_state_dict(sd)
    assert s2.last_epoch == 3 and opt2.param_groups[0]["lr"] == 0.5
    s.step()
    s2.step()
    assert s.get_last_lr() == s2.get_last_lr()
