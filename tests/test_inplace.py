"""In-place operations and version counters: ``x[key] = value``, ``add_ sub_ mul_ div_ clamp_ fill_ zero_ copy_
masked_fill_`` and ``+= -= *= /=``, checked against numpy with gradients; autograd through them as PyTorch; and
backward refusing values written in place since they were saved (the three ways training code did that
silently before: ``nn.init``, ``load_state_dict`` and an optimizer step between forward and backward)."""

import numpy as np
import pytest

import bigcore
import bigcore.nn as nn
from bigcore.models import GPT, GPTConfig
from check import check_op, rand

MODIFIED = "one of the variables needed for gradient computation has been modified by an inplace operation"

# keys as PyTorch takes them (numpy's rules), each picking every place at most once
KEYS = [
    (1,),
    (-1, slice(None, None, 2)),
    (slice(1, 3), Ellipsis, 0),
    (slice(None, None, 3),),
    (None, 2, slice(3, None)),
    (np.array([2, 0]),),
    (slice(None), np.array([4, 1, 0])),
    (np.array([[0], [2]]), np.array([1, 3])),  # two index arrays broadcast together
    (np.array([True, False, True]),),
    (np.arange(3)[:, None, None] * 0 + np.arange(5)[None, :, None] % 2 + np.arange(2) == 1,),  # a full bool mask
    (Ellipsis,),
    (slice(5, 1),),  # nothing
]


def _indexed_shape(key):
    return np.zeros((3, 5, 2))[key].shape


@pytest.mark.parametrize("key", KEYS, ids=[repr(k)[:40] for k in KEYS])
def test_setitem_with_a_tensor_value(key, rng):
    x, v = rand(rng, (3, 5, 2)), rand(rng, _indexed_shape(key))
    check_op("setitem", lambda t, u: _set(t.clone(), key, u), [x, v], kwargs={"key": key})


@pytest.mark.parametrize("key", KEYS, ids=[repr(k)[:40] for k in KEYS])
def test_setitem_with_a_broadcast_value(key, rng):
    shape = _indexed_shape(key)
    vshape = (1,) * len(shape) if not shape else shape[-1:]  # broadcast along all but the last dim
    x, v = rand(rng, (3, 5, 2)), rand(rng, vshape)
    check_op("setitem", lambda t, u: _set(t.clone(), key, u), [x, v], kwargs={"key": key})


def _set(t, key, value):
    t[tuple(bigcore.tensor(k) if isinstance(k, np.ndarray) else k for k in key)] = value
    return t


def test_setitem_scalars_dtypes_and_masks():
    x = bigcore.zeros(2, 4)
    x[0, 1:3] = 5
    x[:, -1] = bigcore.tensor([1.5, 2.5], dtype=bigcore.float64)  # converted to float32
    x[1] = 7.0
    assert x.dtype is bigcore.float32 and x.tolist() == [[0, 5, 5, 1.5], [7, 7, 7, 7]]
    i = bigcore.arange(5)
    i[i > 2] = -1
    i[bigcore.tensor([0, 1])] = bigcore.tensor([9.9, 8.1])  # values converted to int64 (truncated), as PyTorch
    assert i.tolist() == [9, 8, 2, -1, -1]
    logits = bigcore.tensor([[1.0, 4.0, 2.0, 3.0]])
    v = logits.topk(2).values[:, -1:]
    logits[logits < v] = float("-inf")  # the top-k filter of sampling code
    assert logits.tolist() == [[-np.inf, 4.0, -np.inf, 3.0]]
    rows = bigcore.ones(3, 2)
    rows[bigcore.tensor([True, False, True])] = 0.0  # a mask over the leading dim
    assert rows.tolist() == [[0, 0], [1, 1], [0, 0]]
    rows[bigcore.tensor([False, True, False])] = bigcore.tensor([[4.0, 5.0]])
    assert rows.tolist() == [[0, 0], [4, 5], [0, 0]]
    s = bigcore.tensor(1.0)
    s[...] = 3.0
    assert s.item() == 3.0


def test_setitem_errors():
    x = bigcore.zeros(3, 4)
    with pytest.raises(bigcore.OutOfRangeError, match="setitem"):
        x[3] = 1.0
    with pytest.raises(ValueError, match="step"):
        x[::-1] = 1.0
    with pytest.raises(bigcore.ShapeError, match="cannot be broadcast to the indexed shape"):
        x[0] = bigcore.ones(3)
    with pytest.raises(IndexError):
        x[True] = 1.0
    with pytest.raises(bigcore.OutOfRangeError):
        x[bigcore.tensor([True, False])] = 1.0


def test_augmented_assignment_is_in_place():
    x = bigcore.ones(3)
    alias = x.reshape(3)  # shares the storage
    x += 1
    x *= bigcore.tensor([1.0, 2.0, 3.0])
    x -= 0.5
    x /= 2
    assert x.tolist() == [0.75, 1.75, 2.75] and alias.tolist() == x.tolist()
    y = bigcore.zeros(2, 3)
    y[1] += 4  # __getitem__ copies, __iadd__ adds to the copy, __setitem__ writes it back
    y[:, 0] -= bigcore.tensor([1.0, 2.0])
    assert y.tolist() == [[-1, 0, 0], [2, 4, 4]]


@pytest.mark.parametrize("shape,oshape", [((1,), (1,)), ((3, 5), (5,)), ((2, 3, 7), (3, 1)), ((4, 13), ())])
def test_add_mul_with_gradients(shape, oshape, rng):
    x, o = rand(rng, shape), rand(rng, oshape)
    check_op("add_", lambda t, u: t.clone().add_(u, alpha=-1.5), [x, o], kwargs={"alpha": -1.5})
    check_op("add_", lambda t, u: _iadd(t.clone(), u), [x, o])
    check_op("mul_", lambda t, u: t.clone().mul_(u), [x, o])


def _iadd(t, u):
    t += u
    return t


@pytest.mark.parametrize("shape", [(1,), (7,), (3, 13)])
def test_clamp_masked_fill_copy_fill_with_gradients(shape, rng):
    x = rand(rng, shape)
    check_op("clamp_", lambda t: t.clone().clamp_(-0.5, 1.0), [x], kwargs={"min": -0.5, "max": 1.0})
    check_op("clamp_", lambda t: t.clone().clip_(max=0.3), [x], kwargs={"max": 0.3})
    mask = rng.random(shape) < 0.4
    check_op("masked_fill_", lambda t, v, m: t.clone().masked_fill_(m, v), [x, np.asarray(rng.normal()), mask])
    check_op("copy_", lambda t, s: t.clone().copy_(s), [x, rand(rng, shape[-1:])])
    check_op("fill_", lambda t, v: t.clone().fill_(v), [x, np.asarray(0.25)])


def test_in_place_results_keep_dtype_and_shape():
    i = bigcore.tensor([1, 2])
    with pytest.raises(bigcore.DTypeError, match="add_: result type float32 can't be cast to the desired output type int64"):
        i.add_(0.5)
    with pytest.raises(bigcore.DTypeError, match="div_"):
        i /= 2
    with pytest.raises(bigcore.ShapeError, match="output with shape \\[2\\] doesn't match the broadcast shape \\[3, 2\\]"):
        i.add_(bigcore.zeros(3, 2, dtype=bigcore.int64))
    with pytest.raises(ValueError, match="alpha"):
        i.add_(i, alpha=0.5)
    f = bigcore.zeros(2)
    f.add_(bigcore.tensor([0.25, 0.5], dtype=bigcore.float64), alpha=2)  # float64 into float32 narrows
    assert f.dtype is bigcore.float32 and f.tolist() == [0.5, 1.0]
    assert i.fill_(2.7).tolist() == [2, 2] and i.zero_().tolist() == [0, 0]
    assert i.copy_(bigcore.tensor([True, False])).tolist() == [1, 0]
    with pytest.raises(bigcore.ShapeError, match="0-dimensional"):
        f.fill_(bigcore.ones(2))


def test_a_leaf_that_requires_grad_cannot_be_written_while_recording():
    w = bigcore.ones(3, requires_grad=True)
    for write in (lambda: w.add_(1), lambda: w.zero_(), lambda: w.__setitem__(0, 2.0), lambda: w.mul_(2)):
        with pytest.raises(bigcore.AutogradError, match="a (view of a )?leaf Variable that requires grad is being used in an in-place operation"):
            write()
    with pytest.raises(bigcore.AutogradError, match="a view of a leaf Variable"):
        w.view(3, 1).fill_(0.0)
    with bigcore.no_grad():  # as optimizers and nn.init do
        w.mul_(3)
        w[1] = 0.0
    assert w.tolist() == [3, 0, 3] and w.is_leaf and w.requires_grad


def test_gradients_flow_through_writes_and_old_graphs_stay_valid():
    # a = 2w, b = 5a, then a *= 10 and a[0] = w[1]: b still differentiates as 10w, a as 20w with row 0 from w[1]
    w = bigcore.tensor([1.0, 2.0], requires_grad=True)
    a = w * 2
    b = a * 5
    a *= 10
    a[0] = w[1]
    assert a.tolist() == [2.0, 40.0] and not a.is_leaf
    (b.sum() + a.sum()).backward()
    assert w.grad.tolist() == [10.0, 10.0 + 20.0 + 1.0]
    # a tensor without grad written with one that has it joins the graph
    buf = bigcore.zeros(2)
    buf[1] = w[0] * 3
    assert buf.requires_grad and not buf.is_leaf
    w.grad = None
    buf.sum().backward()
    assert w.grad.tolist() == [3.0, 0.0]


def test_version_counts_every_write_and_is_shared_by_views():
    x = bigcore.zeros(2, 2)
    view, det = x.view(4), x.detach()
    assert x._version == 0
    x.add_(1)
    x[0, 0] = 3.0
    det.zero_()
    assert x._version == view._version == det._version == 3
    assert (x + 1)._version == 0


def test_backward_through_a_value_written_since_it_was_saved_raises():
    # y = sum(w * x) saves x for dw; writing x afterwards must not give dw = the new x
    w = bigcore.ones(2, requires_grad=True)
    x = bigcore.tensor([3.0, 4.0])
    y = (w * x).sum()
    x.mul_(2)
    with pytest.raises(bigcore.AutogradError, match=MODIFIED + r".*input 1 of `mul`, is at version 1; expected version 0"):
        y.backward()
    # a write that no backward reads is fine: add's backward reads nothing
    z = (w + x).sum()
    x.zero_()
    z.backward()
    assert w.grad.tolist() == [1.0, 1.0]


def _mlp(seed=0):
    bigcore.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))


def _loss(model):
    x = bigcore.tensor(np.linspace(-1, 1, 20).reshape(5, 4))
    return model(x).pow(2).mean()


def test_nn_init_between_forward_and_backward_raises():
    # the second layer's weight is read by backward for the first layer's gradients
    model = _mlp()
    loss = _loss(model)
    nn.init.constant_(model[2].weight, 0.5)
    with pytest.raises(bigcore.AutogradError, match=MODIFIED + ".*`linear`"):
        loss.backward()


def test_load_state_dict_between_forward_and_backward_raises():
    model = _mlp()
    loss = _loss(model)
    model.load_state_dict(_mlp(seed=1).state_dict())
    with pytest.raises(bigcore.AutogradError, match=MODIFIED):
        loss.backward()


def test_optimizer_step_between_forward_and_backward_raises():
    model = _mlp()
    opt = bigcore.optim.AdamW(model.parameters(), lr=0.1)
    _loss(model).backward()
    loss = _loss(model)
    opt.step()  # updates the weights the new graph saved
    with pytest.raises(bigcore.AutogradError, match=MODIFIED):
        loss.backward()
    # the usual order (backward, then step) is unaffected
    opt.zero_grad()
    loss = _loss(model)
    loss.backward()
    opt.step()


def test_fused_gpt_checks_its_parameters_versions():
    # the fused op reads its parameters again in its backward (it keeps no copy of them)
    bigcore.manual_seed(0)
    model = GPT(GPTConfig(block_size=8, vocab_size=11, n_layer=1, n_head=2, n_embd=8, dropout=0.0), fused=True)
    idx = bigcore.tensor(np.arange(12).reshape(2, 6) % 11)
    logits, loss = model(idx, idx)
    assert logits.grad_fn == "gpt"
    with bigcore.no_grad():
        model.transformer.h[0].mlp.c_fc.weight.mul_(0.5)
    with pytest.raises(bigcore.AutogradError, match=MODIFIED + ".*of `gpt`"):
        loss.backward()
    model(idx, idx)[1].backward()  # a fresh forward is fine
