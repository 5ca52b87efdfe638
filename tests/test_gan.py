"""The LSTM GAN: ``F.gumbel_softmax`` (forward against a numpy reference with the same noise, the Gumbel-max
distribution of its argmax, the straight-through gradient, finite differences)."""

import io

import numpy as np
import pytest

import bigcore
import bigcore.nn as nn
import bigcore.nn.functional as F


def _seeded(seed):
    return bigcore.Generator().manual_seed(seed)


def _noise(shape, seed, dtype=bigcore.float64):
    """The uniform draws ``gumbel_softmax(..., generator=_seeded(seed))`` makes for ``shape``."""
    return bigcore.rand(*shape, dtype=dtype, generator=_seeded(seed)).numpy().astype(np.float64)


def _softmax(z, dim):
    e = np.exp(z - z.max(dim, keepdims=True))
    return e / e.sum(dim, keepdims=True)


def _gumbel_softmax_ref(logits, u, tau, hard, dim, eps=1e-10):
    # g = -log(eps - log(u + eps)) ~ Gumbel(0, 1); y = softmax((logits + g) / tau); hard: one-hot of argmax y
    g = -np.log(eps - np.log(u + eps))
    y = _softmax((logits + g) / tau, dim)
    if not hard:
        return y
    return (np.arange(y.shape[dim]).reshape([-1 if d == dim % y.ndim else 1 for d in range(y.ndim)])
            == np.expand_dims(y.argmax(dim), dim)).astype(np.float64)


# ----- F.gumbel_softmax -----
@pytest.mark.parametrize("dim", [-1, 0, 1])
@pytest.mark.parametrize("tau,hard", [(1.0, False), (0.3, False), (2.5, True), (0.7, True)])
def test_gumbel_softmax_matches_the_reference_with_the_same_noise(rng, dim, tau, hard):
    logits = rng.normal(0, 2, (3, 7, 5))
    y = F.gumbel_softmax(bigcore.tensor(logits), tau=tau, hard=hard, dim=dim, generator=_seeded(11))
    want = _gumbel_softmax_ref(logits, _noise(logits.shape, 11), tau, hard, dim)
    assert y.shape == logits.shape and y.dtype is bigcore.float64
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(y.numpy().sum(dim), 1.0, rtol=1e-12)


@pytest.mark.parametrize("hard,dim", [(False, -1), (True, 0)])
def test_argmax_is_distributed_as_softmax_of_the_logits(hard, dim):
    # the Gumbel-max trick: argmax(logits + g) ~ Categorical(softmax(logits)), whatever tau. Each category's
    # frequency over N draws is within 4.5 standard deviations sqrt(p (1 - p) / N) of p: a correct sampler misses
    # that about once in 30,000 seeds per category; noise of a wrong law (normal with Gumbel's variance, or
    # Gumbel scaled by 1.1) moves some frequency by 9 to 12 standard deviations at this N.
    logits = np.array([2.0, 1.0, 0.0, -1.0, 0.5, -3.0], np.float32)
    N = 20000
    rows = np.tile(logits, (N, 1)) if dim == -1 else np.tile(logits[:, None], (1, N))
    y = F.gumbel_softmax(bigcore.tensor(rows), tau=0.4, hard=hard, dim=dim, generator=_seeded(3))
    counts = np.bincount(y.numpy().argmax(dim), minlength=len(logits))
    p = _softmax(logits.astype(np.float64), 0)
    np.testing.assert_array_less(np.abs(counts / N - p), 4.5 * np.sqrt(p * (1 - p) / N))


def test_hard_output_is_exactly_one_hot_with_the_soft_gradient(rng):
    # y_hard - y_soft.detach() + y_soft: forward the one-hot of the soft sample's argmax, backward y_soft's gradient
    logits = rng.normal(0, 1.5, (6, 9))
    w = bigcore.tensor(rng.normal(size=(6, 9)))
    soft_x, hard_x = bigcore.tensor(logits, requires_grad=True), bigcore.tensor(logits, requires_grad=True)
    for dtype in (bigcore.float64, bigcore.float32):
        y_soft = F.gumbel_softmax(soft_x.to(dtype), tau=0.6, generator=_seeded(8))
        y_hard = F.gumbel_softmax(hard_x.to(dtype), tau=0.6, hard=True, generator=_seeded(8))
        h = y_hard.numpy()
        assert set(np.unique(h)) == {0.0, 1.0} and np.all(h.sum(1) == 1.0)
        np.testing.assert_array_equal(h.argmax(1), y_soft.numpy().argmax(1))
    (y_soft * w).sum().backward()
    (y_hard * w).sum().backward()
    assert np.abs(soft_x.grad.numpy()).max() > 1e-3  # float32 and float64 passes both reached the logits
    np.testing.assert_allclose(hard_x.grad.numpy(), soft_x.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dim", [-1, 0])
def test_gradient_matches_finite_differences_with_the_noise_fixed(rng, dim):
    # y = softmax(z / tau), z = logits + g; d sum(w y) / d logits = y (w - sum(w y)) / tau along dim
    tau = 0.8
    logits, w = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))

    def f(x):
        return (F.gumbel_softmax(x, tau=tau, dim=dim, generator=_seeded(21)) * bigcore.tensor(w)).sum()

    x = bigcore.tensor(logits, requires_grad=True)
    f(x).backward()
    y = _gumbel_softmax_ref(logits, _noise(logits.shape, 21), tau, False, dim)
    np.testing.assert_allclose(x.grad.numpy(), y * (w - (w * y).sum(dim, keepdims=True)) / tau, rtol=1e-10,
                               atol=1e-12)
    h, num = 1e-6, np.zeros_like(logits)
    for j in np.ndindex(logits.shape):
        up, down = logits.copy(), logits.copy()
        up[j] += h
        down[j] -= h
        num[j] = (f(bigcore.tensor(up)).item() - f(bigcore.tensor(down)).item()) / (2 * h)
    np.testing.assert_allclose(x.grad.numpy(), num, rtol=1e-6, atol=1e-8)


def test_tau_sharpens_or_flattens_the_same_draw(rng):
    # same noise: y_tau = softmax(log(y_1) / tau). tau -> 0 gives one-hot rows, tau -> inf uniform ones
    logits = bigcore.tensor(rng.normal(size=(200, 8)))
    y = {tau: F.gumbel_softmax(logits, tau=tau, generator=_seeded(4)).numpy() for tau in (0.01, 0.5, 1.0, 2.0, 100.0)}
    for tau in (0.01, 0.5, 2.0, 100.0):
        np.testing.assert_allclose(y[tau], _softmax(np.log(y[1.0]) / tau, -1), rtol=1e-9, atol=1e-12)
    peaks = [y[tau].max(1).mean() for tau in (0.01, 0.5, 1.0, 2.0, 100.0)]
    assert all(a > b for a, b in zip(peaks, peaks[1:])) and peaks[0] > 0.99 and peaks[-1] < 1 / 8 + 0.01


def test_gumbel_softmax_bad_arguments():
    x = bigcore.randn(2, 3)
    for tau in (0, -1.0, float("nan"), True, "1"):
        with pytest.raises(ValueError, match="tau must be a positive number"):
            F.gumbel_softmax(x, tau=tau)
    with pytest.raises(bigcore.DTypeError, match="float32 or float64.*int64"):
        F.gumbel_softmax(bigcore.tensor([[1, 2]]))
    with pytest.raises(bigcore.ShapeError, match="0-d"):
        F.gumbel_softmax(bigcore.tensor(1.0))
    with pytest.raises(bigcore.OutOfRangeError):
        F.gumbel_softmax(x, dim=2)
    with pytest.raises(TypeError, match="bigcore.Generator"):
        F.gumbel_softmax(x, generator=np.random.default_rng(0))


def test_gumbel_softmax_generator_leaves_the_default_alone_and_repeats():
    x = bigcore.randn(3, 4)
    before = bigcore.get_rng_state()
    a = F.gumbel_softmax(x, generator=_seeded(5)).numpy()
    assert bigcore.get_rng_state() == before
    np.testing.assert_array_equal(F.gumbel_softmax(x, generator=_seeded(5)).numpy(), a)
    bigcore.manual_seed(9)
    b = F.gumbel_softmax(x).numpy()
    bigcore.manual_seed(9)
    np.testing.assert_array_equal(F.gumbel_softmax(x).numpy(), b)
    assert not np.array_equal(a, b)


def test_gumbel_softmax_has_no_onnx_form():
    class Noisy(nn.Module):
        def forward(self, x):
            return F.gumbel_softmax(x, hard=True)

    with pytest.raises(bigcore.onnx.UnsupportedOperatorError, match="'gumbel_softmax'.*'Noisy'"):
        bigcore.onnx.export(Noisy(), (bigcore.randn(2, 3),), io.BytesIO())
