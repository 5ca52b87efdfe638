"""Tensor creation, dtypes, numpy in and out (every layout), copies, conversions, repr, seeding."""

import numpy as np
import pytest

import bigcore


def test_dtype_inference_follows_the_issue():
    assert bigcore.tensor([1.0, 2.0]).dtype is bigcore.float32
    assert bigcore.tensor(np.zeros(3, np.float32)).dtype is bigcore.float32
    assert bigcore.tensor(np.zeros(3)).dtype is bigcore.float64
    assert bigcore.tensor(np.float64(1.5)).dtype is bigcore.float64
    assert bigcore.tensor(np.zeros(3, np.float16)).dtype is bigcore.float32
    assert bigcore.tensor([1, 2]).dtype is bigcore.int64
    assert bigcore.tensor(np.array([1, 2], np.int32)).dtype is bigcore.int64
    assert bigcore.tensor(np.array([1, 2], np.uint8)).dtype is bigcore.int64
    assert bigcore.tensor([True, False]).dtype is bigcore.bool
    assert bigcore.tensor(3.0).shape == () and bigcore.tensor(3).item() == 3
    assert bigcore.tensor([1, 2], dtype=bigcore.float64).dtype is bigcore.float64
    assert bigcore.tensor([1, 2], dtype="float32").dtype is bigcore.float32
    assert bigcore.tensor([1.5], dtype=np.int64).numpy()[0] == 1
    assert bigcore.float is bigcore.float32 and bigcore.long is bigcore.int64


@pytest.mark.parametrize(
    "make",
    [
        lambda a: a[:, ::2],
        lambda a: np.asfortranarray(a),
        lambda a: a[::-1, ::-3],
        lambda a: a.T,
        lambda a: a[1:4, 2],
        lambda a: np.broadcast_to(a[:1], a.shape),
    ],
    ids=["strided", "fortran", "negative", "transposed", "sliced", "broadcast"],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
def test_numpy_layouts_copy_in_logical_order(make, dtype):
    a = (np.arange(5 * 7).reshape(5, 7) % 4).astype(dtype)
    view = make(a)
    t = bigcore.tensor(view)
    np.testing.assert_array_equal(t.numpy(), view)
    assert t.numpy().flags["C_CONTIGUOUS"]


def test_tensor_copies_its_input():
    a = np.ones(4, np.float32)
    t = bigcore.tensor(a)
    a[0] = 7
    assert t.numpy()[0] == 1
    out = t.numpy()
    out[1] = 9
    assert t.numpy()[1] == 1


def test_numpy_protocols_and_python_values():
    t = bigcore.tensor([[1.5, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(np.asarray(t), t.numpy())
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    assert t.tolist() == [[1.5, 2.0], [3.0, 4.0]]
    assert isinstance(t[0, 0].item(), float) and t[0, 0].item() == 1.5
    assert isinstance(bigcore.tensor(5).item(), int) and isinstance(bigcore.tensor(True).item(), bool)
    assert float(t[1, 1]) == 4.0 and int(bigcore.tensor(3)) == 3
    assert len(t) == 2 and [r.shape for r in t] == [(2,), (2,)]
    assert t.ndim == 2 and t.dim() == 2 and t.numel() == 4 and t.size() == (2, 2) and t.size(-1) == 2
    np.testing.assert_array_equal((np.ones(2) + bigcore.tensor([1.0, 2.0])).numpy(), [2.0, 3.0])


def test_repr_shows_values_and_flags():
    assert repr(bigcore.tensor([1.0, 2.5])) == "tensor([1. , 2.5])"
    assert "requires_grad=True" in repr(bigcore.ones(2, requires_grad=True))
    assert "grad_fn=<mul>" in repr(bigcore.ones(2, requires_grad=True) * 2)
    assert "dtype=bigcore.float64" in repr(bigcore.zeros(2, dtype=bigcore.float64))
    assert repr(bigcore.tensor([1, 2])) == "tensor([1, 2])"


def test_creation_functions():
    assert bigcore.zeros(2, 3).shape == (2, 3) and bigcore.zeros((2, 3)).numpy().sum() == 0
    assert bigcore.ones(4, dtype=bigcore.int64).numpy().tolist() == [1, 1, 1, 1]
    assert bigcore.full((2,), 7).dtype is bigcore.int64 and bigcore.full((2,), 0.5).numpy().tolist() == [0.5, 0.5]
    assert bigcore.zeros(0, 5).shape == (0, 5)
    np.testing.assert_array_equal(bigcore.arange(5).numpy(), np.arange(5))
    np.testing.assert_allclose(bigcore.arange(0, 1, 0.25).numpy(), [0, 0.25, 0.5, 0.75])
    np.testing.assert_array_equal(bigcore.arange(5, 0, -2).numpy(), [5, 3, 1])
    t = bigcore.randn(3, 4)
    assert bigcore.zeros_like(t).shape == (3, 4) and bigcore.ones_like(t).numpy().sum() == 12
    assert bigcore.full_like(t, 2.0).numpy().max() == 2.0
    u = bigcore.rand(10000)
    assert 0 <= u.numpy().min() and u.numpy().max() < 1


def test_manual_seed_is_deterministic():
    bigcore.manual_seed(42)
    a = bigcore.randn(5).numpy()
    b = bigcore.rand(3).numpy()
    bigcore.manual_seed(42)
    np.testing.assert_array_equal(bigcore.randn(5).numpy(), a)
    np.testing.assert_array_equal(bigcore.rand(3).numpy(), b)
    bigcore.manual_seed(43)
    assert not np.array_equal(bigcore.randn(5).numpy(), a)


def test_randn_is_standard_normal():
    bigcore.manual_seed(0)
    x = bigcore.randn(200_000, dtype=bigcore.float64).numpy()
    # mean and std of 200k draws: standard errors 0.0022 and 0.0016
    assert abs(x.mean()) < 0.015 and abs(x.std() - 1) < 0.015


def test_to_and_detach():
    t = bigcore.tensor([1.25, -2.5])
    assert t.to(bigcore.float32) is t
    assert t.double().dtype is bigcore.float64 and t.to("float64").dtype is bigcore.float64
    np.testing.assert_array_equal(t.long().numpy(), [1, -2])
    np.testing.assert_array_equal(t.bool().numpy(), [True, True])
    assert t.detach()._c.shares_storage(t._c)
    c = t.clone()
    assert not c._c.shares_storage(t._c) and c.tolist() == t.tolist()


def test_pickle_and_deepcopy_round_trip():
    import copy
    import pickle

    import bigcore.nn as nn

    t = bigcore.tensor([[1.5, -2.0]], dtype=bigcore.float64, requires_grad=True)
    back = pickle.loads(pickle.dumps(t))
    assert back.dtype is bigcore.float64 and back.requires_grad and back.tolist() == t.tolist()
    p = nn.Parameter(bigcore.ones(2, 3))
    q = pickle.loads(pickle.dumps(p))
    assert isinstance(q, nn.Parameter) and q.requires_grad and q.shape == (2, 3)
    m = nn.Linear(3, 2)
    m2 = copy.deepcopy(m)
    assert not m2.weight._c.shares_storage(m.weight._c)
    np.testing.assert_array_equal(m2.weight.numpy(), m.weight.numpy())
    assert bigcore.tensor([True]).dtype is pickle.loads(pickle.dumps(bigcore.bool))


def test_data_shares_values_outside_the_graph():
    import bigcore.nn as nn

    lin = nn.Linear(3, 2)
    d = lin.weight.data
    assert not d.requires_grad and lin.weight.requires_grad
    d.mul_(0.0)  # the PyTorch idiom: a write through .data changes the parameter
    assert float(lin.weight.abs().sum().item()) == 0.0
    lin.weight.data = bigcore.ones(2, 3)
    np.testing.assert_array_equal(lin.weight.numpy(), np.ones((2, 3), np.float32))
    assert lin.weight.requires_grad and lin.weight.is_leaf
    lin.bias.data = np.array([1.0, 2.0])
    np.testing.assert_array_equal(lin.bias.numpy(), [1.0, 2.0])
    with pytest.raises(bigcore.ShapeError, match=r"shape \(3, 3\) to a tensor of shape \(2, 3\)"):
        lin.weight.data = bigcore.ones(3, 3)
    # the data assignment is not an operation: the parameter's gradient is the ordinary one
    x = bigcore.randn(4, 3)
    lin(x).sum().backward()
    np.testing.assert_allclose(lin.weight.grad.numpy(), np.tile(x.numpy().sum(0), (2, 1)), rtol=1e-6)
