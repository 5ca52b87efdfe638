"""``Tensor.register_post_accumulate_grad_hook``: called once per backward with the leaf whose ``.grad`` has just
become final, as soon as it is final (before leaves nearer the inputs), with the accumulated value; removable;
only on leaves that require grad; an exception in a hook stops the backward and comes out of ``backward()``."""

import numpy as np
import pytest

import bigcore


def leaf(values):
    return bigcore.tensor(np.asarray(values, dtype=np.float64), requires_grad=True)


def test_hooks_fire_once_per_backward_as_each_gradient_becomes_final():
    x = bigcore.tensor(np.array([1.0, -2.0, 3.0]))
    w1, w2 = leaf([0.5, 1.5, -1.0]), leaf([2.0, -1.0, 0.25])
    seen = []
    w1.register_post_accumulate_grad_hook(lambda p: seen.append(("w1", p.grad.numpy().copy())))
    w2.register_post_accumulate_grad_hook(lambda p: seen.append(("w2", p.grad.numpy().copy())))
    loss = (w2 * (w1 * x)).sum()  # w2 is nearer the loss: its gradient is final first
    loss.backward()
    assert [name for name, _ in seen] == ["w2", "w1"]
    np.testing.assert_allclose(seen[0][1], np.array([0.5, -3.0, -3.0]))  # d/dw2 = w1 * x
    np.testing.assert_allclose(seen[1][1], np.array([2.0, 2.0, 0.75]))  # d/dw1 = w2 * x
    # a leaf used twice: the hook runs once, after both contributions are in
    y = leaf([1.0, 2.0])
    calls = []
    y.register_post_accumulate_grad_hook(lambda p: calls.append(p.grad.numpy().copy()))
    ((y * 3.0).sum() + (y * y).sum()).backward()
    assert len(calls) == 1
    np.testing.assert_allclose(calls[0], np.array([5.0, 7.0]))  # 3 + 2y


def test_hooks_see_accumulated_gradients_and_can_be_removed():
    w = leaf([1.0, 2.0])
    calls = []
    handle = w.register_post_accumulate_grad_hook(lambda p: calls.append(p.grad.numpy().copy()))
    (w * 2.0).sum().backward()
    (w * 2.0).sum().backward()
    np.testing.assert_allclose(np.stack(calls), np.array([[2.0, 2.0], [4.0, 4.0]]))
    handle.remove()
    handle.remove()  # removing twice is harmless
    (w * 2.0).sum().backward()
    assert len(calls) == 2


def test_hooks_only_on_leaves_that_require_grad():
    w = leaf([1.0])
    with pytest.raises(bigcore.AutogradError, match="leaf tensors that require grad"):
        (w * 2.0).register_post_accumulate_grad_hook(lambda p: None)
    with pytest.raises(bigcore.AutogradError, match="leaf tensors that require grad"):
        bigcore.tensor([1.0]).register_post_accumulate_grad_hook(lambda p: None)
    with pytest.raises(TypeError, match="callable"):
        w.register_post_accumulate_grad_hook(3)


def test_an_exception_in_a_hook_stops_backward_and_is_raised():
    class Boom(Exception):
        pass

    w, v = leaf([1.0, 2.0]), leaf([3.0])
    after = []

    def fail(p):
        raise Boom("from the hook")

    w.register_post_accumulate_grad_hook(fail)
    v.register_post_accumulate_grad_hook(lambda p: after.append(1))
    with pytest.raises(Boom, match="from the hook"):
        (v * (w * 2.0).sum()).backward()  # v nearer the loss: its hook ran; w's raised
    assert after == [1]
    # the failure is not left behind for the next, unrelated error
    with pytest.raises(bigcore.AutogradError, match="does not require grad"):
        bigcore.tensor([1.0]).sum().backward()


def test_a_hooked_parameter_trains_as_before():
    # modules' parameters take hooks; the gradient a hook reads is the one the optimizer then uses
    bigcore.manual_seed(0)
    lin = bigcore.nn.Linear(3, 2)
    norms = []
    for p in lin.parameters():
        p.register_post_accumulate_grad_hook(lambda p: norms.append(float((p.grad * p.grad).sum().item())))
    x = bigcore.randn(4, 3)
    lin(x).sum().backward()
    assert len(norms) == 2
    assert sorted(norms) == sorted(float((p.grad * p.grad).sum().item()) for p in lin.parameters())
