"""Autograd semantics: accumulation, retain_graph, freed graphs, non-scalar roots, no_grad, detach, leaves,
shared subexpressions, and the trace each op leaves for the exporter."""

import threading

import numpy as np
import pytest

import bigcore


def test_gradients_accumulate_across_backward_calls():
    # y = x^2 + 5x + 4; dy/dx = 2x + 5
    x = bigcore.tensor([1.0, -3.0], requires_grad=True)
    for _ in range(2):
        y = (x * x + 5 * x + 4).sum()
        y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), 2 * (2 * np.array([1.0, -3.0]) + 5))
    x.grad = None
    assert x.grad is None


def test_diamond_graph_sums_both_paths():
    # z = a*b + a*c with b = 2a, c = a^2: dz/da = 4a + 3a^2
    a = bigcore.tensor([0.5, 2.0], requires_grad=True)
    b, c = a * 2, a * a
    z = (a * b + a * c).sum()
    z.backward()
    np.testing.assert_allclose(a.grad.numpy(), 4 * a.numpy() + 3 * a.numpy() ** 2)


def test_second_backward_needs_retain_graph():
    x = bigcore.tensor([2.0], requires_grad=True)
    y = (x.exp() * 3).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * 3 * np.exp([2.0]), rtol=1e-6)
    with pytest.raises(bigcore.AutogradError, match="second time"):
        y.backward()
    with pytest.raises(RuntimeError):
        y.backward()


def test_non_scalar_backward_needs_gradient():
    x = bigcore.ones(3, requires_grad=True)
    y = x * 2
    with pytest.raises(bigcore.AutogradError, match="scalar"):
        y.backward()
    y.backward(bigcore.tensor([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(x.grad.numpy(), [2, 4, 6])
    with pytest.raises(bigcore.ShapeError):
        (x * 2).backward(bigcore.ones(4))


def test_backward_without_grad_raises():
    with pytest.raises(bigcore.AutogradError):
        bigcore.ones(2).sum().backward()


def test_only_leaves_keep_grad():
    x = bigcore.ones(2, requires_grad=True)
    h = x * 3
    h.sum().backward()
    assert h.grad is None and not h.is_leaf and x.is_leaf
    assert x.grad is not None


def test_no_grad_context_and_decorator():
    x = bigcore.ones(2, requires_grad=True)
    with bigcore.no_grad():
        y = x * 2
        assert not bigcore.is_grad_enabled()
        with bigcore.enable_grad():
            assert (x * 2).requires_grad
    assert bigcore.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf

    @bigcore.no_grad()
    def f(t):
        return t * 3

    assert not f(x).requires_grad
    with bigcore.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert bigcore.is_grad_enabled()


def test_grad_mode_is_per_thread():
    seen = []
    with bigcore.no_grad():
        t = threading.Thread(target=lambda: seen.append(bigcore.is_grad_enabled()))
        t.start()
        t.join()
    assert seen == [True]


def test_detach_shares_values_but_not_graph():
    x = bigcore.tensor([1.0, 2.0], requires_grad=True)
    d = (x * 2).detach()
    assert not d.requires_grad and d.is_leaf
    (x * d).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])


def test_requires_grad_rules():
    with pytest.raises(bigcore.DTypeError):
        bigcore.tensor([1, 2], requires_grad=True)
    x = bigcore.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError):
        (x * 2).requires_grad = False
    assert x.requires_grad_(False) is x and not x.requires_grad


def test_trace_records_name_attrs_and_inputs():
    x = bigcore.ones(2, 3, requires_grad=True)
    y = x.sum(1, keepdim=True)
    name, attrs, inputs = y._c.trace()
    assert name == "sum" and attrs == {"dim": [1], "keepdim": True}
    assert len(inputs) == 1 and inputs[0].id == x._c.id
    z = bigcore.nn.functional.gelu(x, approximate="tanh")
    assert z.grad_fn == "gelu" and z._c.trace()[1] == {"approximate": "tanh"}
    assert x._c.trace() is None
    ce = bigcore.nn.functional.cross_entropy(x, bigcore.tensor([0, 2]), label_smoothing=0.1)
    assert ce._c.trace()[1]["label_smoothing"] == pytest.approx(0.1)
