"""RMSprop: ``bigcore.optim.RMSprop`` against a numpy float64 transcription of PyTorch's algorithm, and
``keras.optimizers.RMSprop`` against Keras 3's (epsilon inside the square root, the learning rate inside the
momentum buffer)."""

import numpy as np
import pytest

import bigcore
import bigcore.nn as nn
from bigcore import keras
from bigcore.optim import RMSprop


def torch_rmsprop(p, grads, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                  maximize=False):
    """torch.optim.RMSprop's single-tensor loop, in float64."""
    v, buf, ga = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for g in grads:
        g = -g if maximize else g
        if weight_decay:
            g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        if centered:
            ga = alpha * ga + (1 - alpha) * g
            avg = np.sqrt(v - ga * ga) + eps
        else:
            avg = np.sqrt(v) + eps
        if momentum > 0:
            buf = momentum * buf + g / avg
            p = p - lr * buf
        else:
            p = p - lr * g / avg
    return p


def keras_rmsprop(p, grads, lrs, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False):
    """keras.optimizers.RMSprop.update_step (Keras 3), in float64; ``lrs`` one learning rate per step."""
    vel, mom, avg = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for g, lr in zip(grads, lrs):
        vel = rho * vel + (1 - rho) * g * g
        if centered:
            avg = rho * avg + (1 - rho) * g
            denominator = vel - avg * avg + epsilon
        else:
            denominator = vel + epsilon
        increment = lr * g / np.sqrt(denominator)
        if momentum > 0:
            mom = momentum * mom + increment
            p = p - mom
        else:
            p = p - increment
    return p


@pytest.mark.parametrize("kw", [
    {}, dict(lr=0.05, alpha=0.9), dict(momentum=0.9), dict(centered=True, momentum=0.5),
    dict(weight_decay=0.1, eps=1e-3), dict(maximize=True, centered=True),
])
def test_rmsprop_matches_pytorchs_algorithm(kw, rng):
    p0 = rng.standard_normal((3, 7))
    grads = [rng.standard_normal((3, 7)) for _ in range(5)]
    p = nn.Parameter(bigcore.tensor(p0))
    opt = RMSprop([p], **kw)
    for g in grads:
        p.grad = bigcore.tensor(g)
        opt.step()
    np.testing.assert_allclose(p.numpy(), torch_rmsprop(p0, grads, **kw), rtol=1e-12, atol=1e-14)
    st = opt.state[p]
    assert st["step"] == 5
    assert ("momentum_buffer" in st) == (kw.get("momentum", 0) > 0) and ("grad_avg" in st) == kw.get("centered", False)


def test_rmsprop_float32_pieces_and_state_dict_round_trip(rng):
    # more than 2^18 elements: the update is cut into pieces, each the same per-element formula
    p0 = rng.standard_normal(300_007).astype(np.float32)
    g = rng.standard_normal(300_007).astype(np.float32)
    p = nn.Parameter(bigcore.tensor(p0))
    opt = RMSprop([p], lr=1e-3, momentum=0.9, centered=True)
    for _ in range(2):
        p.grad = bigcore.tensor(g)
        opt.step()
    assert p.dtype is bigcore.float32
    want = torch_rmsprop(p0.astype(np.float64), [g.astype(np.float64)] * 2, lr=1e-3, momentum=0.9, centered=True)
    np.testing.assert_allclose(p.numpy(), want, rtol=2e-5, atol=1e-6)
    q = nn.Parameter(bigcore.tensor(p.numpy()))
    opt2 = RMSprop([q], lr=1e-3, momentum=0.9, centered=True)
    opt2.load_state_dict(opt.state_dict())
    p.grad, q.grad = bigcore.tensor(g), bigcore.tensor(g)
    opt.step()
    opt2.step()
    np.testing.assert_array_equal(p.numpy(), q.numpy())


def test_rmsprop_bad_arguments():
    p = [nn.Parameter(bigcore.ones(2))]
    for kw, what in [(dict(lr=-1), "learning rate"), (dict(eps=-1), "epsilon"), (dict(momentum=-0.1), "momentum"),
                     (dict(weight_decay=-1), "weight_decay"), (dict(alpha=-0.5), "alpha")]:
        with pytest.raises(ValueError, match=what):
            RMSprop(p, **kw)
    g, v = bigcore.ones(2)._c, bigcore.zeros(2)._c
    with pytest.raises(ValueError, match="form must be 'torch' or 'keras'"):
        bigcore._core.rmsprop_step([p[0]._c], [g], [v], [], [], 0.1, 0.9, 1e-8, 0.0, 0.0, False, False, "tf")
    with pytest.raises(ValueError, match="momentum buffers"):  # momentum needs one buffer per parameter
        bigcore._core.rmsprop_step([p[0]._c], [g], [v], [], [], 0.1, 0.9, 1e-8, 0.0, 0.9, False, False, "torch")
    with pytest.raises(bigcore.ShapeError, match=r"square_avg of shape \[3\]"):
        bigcore._core.rmsprop_step([p[0]._c], [g], [bigcore.zeros(3)._c], [], [], 0.1, 0.9, 1e-8, 0.0, 0.0, False,
                                   False, "torch")
    np.testing.assert_array_equal(p[0].numpy(), [1, 1])  # nothing was updated by the failed calls


@pytest.mark.parametrize("kw", [{}, dict(momentum=0.9), dict(centered=True, rho=0.8, epsilon=1e-3)])
def test_keras_rmsprop_follows_keras_update_step(kw, rng):
    # a changing learning rate tells Keras's form (lr inside the momentum buffer) from PyTorch's
    p0 = rng.standard_normal((4, 3))
    grads = [rng.standard_normal((4, 3)) for _ in range(4)]
    lrs = [0.01, 0.005, 0.0025, 0.00125]
    spec = keras.optimizers.RMSprop(learning_rate=lrs[0], **kw)
    p = nn.Parameter(bigcore.tensor(p0))
    opt = spec.build([p])
    for g, lr in zip(grads, lrs):
        opt.param_groups[0]["lr"] = lr
        p.grad = bigcore.tensor(g)
        opt.step()
    np.testing.assert_allclose(p.numpy(), keras_rmsprop(p0, grads, lrs, **kw), rtol=1e-12, atol=1e-14)


def test_keras_rmsprop_defaults_and_compile_default():
    spec = keras.optimizers.RMSprop()
    assert (spec.learning_rate, spec.rho, spec.momentum, spec.epsilon, spec.centered) == (0.001, 0.9, 0.0, 1e-7, False)
    assert isinstance(keras.optimizers.get("rmsprop"), keras.optimizers.RMSprop)
    bigcore.manual_seed(0)
    x = np.random.default_rng(0).standard_normal((64, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy")  # optimizer="rmsprop", Keras's default
    h = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    assert isinstance(model.optimizer, RMSprop) and h.history["loss"][-1] < h.history["loss"][0]
