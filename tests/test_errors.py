"""Bad input gets a clear error of the right class, naming the operation and the shapes; nothing crashes."""

import numpy as np
import pytest

import bigcore
import bigcore.nn.functional as F


def test_exception_hierarchy():
    assert issubclass(bigcore.ShapeError, ValueError)
    assert issubclass(bigcore.OutOfRangeError, IndexError)
    assert issubclass(bigcore.DTypeError, TypeError)
    assert issubclass(bigcore.AutogradError, RuntimeError)


def test_matmul_shape_mismatch_names_the_shapes():
    with pytest.raises(bigcore.ShapeError, match=r"matmul.*\[2, 3\].*\[4, 5\]"):
        bigcore.ones(2, 3) @ bigcore.ones(4, 5)
    with pytest.raises(bigcore.ShapeError):
        bigcore.ones(2, 2, 3) @ bigcore.ones(3, 3, 2)  # batch 2 vs 3
    with pytest.raises(bigcore.ShapeError, match="at least 1 dimension"):
        bigcore.tensor(1.0) @ bigcore.ones(1)
    with pytest.raises(bigcore.ShapeError, match="linear"):
        F.linear(bigcore.ones(2, 3), bigcore.ones(4, 5))


def test_broadcast_mismatch():
    with pytest.raises(bigcore.ShapeError, match=r"\[3\] and \[4\]"):
        bigcore.ones(3) + bigcore.ones(4)
    with pytest.raises(bigcore.ShapeError):
        bigcore.where(bigcore.tensor([True, False]), bigcore.ones(3), 0.0)


def test_bad_reshape_and_expand():
    with pytest.raises(bigcore.ShapeError, match="invalid for input of size 6"):
        bigcore.ones(2, 3).reshape(4, 2)
    with pytest.raises(bigcore.ShapeError):
        bigcore.ones(6).reshape(-1, -1)
    with pytest.raises(bigcore.ShapeError):
        bigcore.ones(2, 3).expand(4, 3)
    with pytest.raises(bigcore.ShapeError):
        bigcore.ones(2, 3).permute(0, 0)


def test_bad_dims():
    t = bigcore.ones(2, 3)
    for f in (lambda: t.sum(2), lambda: t.sum(-3), lambda: t.softmax(5), lambda: t.max(2), lambda: t.transpose(0, 2),
              lambda: bigcore.cat([t, t], 2), lambda: t.unsqueeze(4), lambda: t.size(2)):
        with pytest.raises(bigcore.OutOfRangeError, match="out of range"):
            f()
    with pytest.raises(ValueError, match="repeated"):
        t.sum((0, 0))
    with pytest.raises(IndexError):
        bigcore.zeros(0, 3).max(0)


def test_index_errors():
    t = bigcore.ones(3, 4)
    with pytest.raises(IndexError, match="out of bounds"):
        t[3]
    with pytest.raises(IndexError):
        t[-4]
    with pytest.raises(IndexError):
        t[0, 0, 0]
    with pytest.raises(IndexError):
        t[[0, 5]]
    with pytest.raises(ValueError, match="step"):
        t[::-1]
    with pytest.raises(IndexError, match="boolean"):
        t[bigcore.tensor([True, False, True])]
    with pytest.raises(IndexError):
        t[1.5]


@pytest.mark.parametrize("ids", [[0, 5], [-1], [2, 10**9]])
def test_out_of_range_token_ids_are_index_errors(ids):
    w = bigcore.ones(5, 2)
    with pytest.raises(IndexError, match="out of range"):
        F.embedding(bigcore.tensor(ids), w)
    with pytest.raises(IndexError):
        w.index_select(0, bigcore.tensor(ids))


def test_cross_entropy_errors():
    x = bigcore.ones(2, 3)
    with pytest.raises(IndexError, match="out of bounds"):
        F.cross_entropy(x, bigcore.tensor([0, 3]))
    with pytest.raises(IndexError):
        F.cross_entropy(x, bigcore.tensor([-1, 0]))
    with pytest.raises(bigcore.DTypeError):
        F.cross_entropy(x, bigcore.tensor([True, False]))
    with pytest.raises(bigcore.ShapeError):
        F.cross_entropy(x, bigcore.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(x, bigcore.tensor([0, 1]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(x, bigcore.tensor([0, 1]), reduction="avg")


@pytest.mark.parametrize("data", [np.array(["a", "b"]), np.array([object(), 1], dtype=object), ["x", "y"], np.array([1 + 2j])])
def test_unsupported_data_is_a_dtype_error(data):
    with pytest.raises(bigcore.DTypeError):
        bigcore.tensor(data)


def test_dtype_errors():
    with pytest.raises(bigcore.DTypeError):
        bigcore.tensor([1, 2]).mean()
    with pytest.raises(bigcore.DTypeError):
        bigcore.tensor([1, 2]) @ bigcore.tensor([1, 2])
    with pytest.raises(bigcore.DTypeError):
        bigcore.where(bigcore.tensor([1, 0]), 1.0, 0.0)
    with pytest.raises(bigcore.DTypeError):
        bigcore.zeros(2, dtype="complex64")
    with pytest.raises(bigcore.DTypeError):
        bigcore.randn(2, dtype=bigcore.int64)


def test_negative_sizes_and_huge_allocations():
    with pytest.raises(ValueError, match="negative dimension"):
        bigcore.zeros(2, -3)
    with pytest.raises(ValueError):
        bigcore.ones(-1)
    with pytest.raises(MemoryError):
        bigcore.zeros(10**7, 10**7)  # 4e14 bytes: refused, not an abort
    with pytest.raises(MemoryError):
        bigcore.zeros(2**40, 2**40)  # overflows the element count itself
    with pytest.raises(MemoryError, match="cannot allocate"):
        bigcore.zeros(2**20, 2**20)  # 4 TiB: more than the machine has, refused before any page is touched
    with pytest.raises(MemoryError, match="cannot allocate"):
        bigcore.tensor(np.broadcast_to(np.float32(1), (1 << 40,)))  # a 4-byte view of 4 TiB
    with pytest.raises(MemoryError, match="matmul"):
        bigcore.ones(2**20, 1) @ bigcore.ones(1, 2**20)  # a 4 TiB output from 8 MiB of inputs
    with pytest.raises(MemoryError, match="expand"):
        bigcore.ones(1).expand(2**40).contiguous()
    with pytest.raises(TypeError):
        bigcore.zeros(2.5)


def test_threads_and_dropout_arguments():
    with pytest.raises(ValueError, match="at least 1"):
        bigcore.set_num_threads(0)
    with pytest.raises(ValueError):
        bigcore.set_num_threads(-2)
    for p in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match="dropout probability"):
            F.dropout(bigcore.ones(3), p)


def test_other_argument_errors():
    with pytest.raises(ValueError, match="step"):
        bigcore.arange(0, 5, 0)
    with pytest.raises(ValueError):
        bigcore.arange(5, 0, 1)
    with pytest.raises(ValueError, match="min"):
        bigcore.ones(3).clamp(2, 1)
    with pytest.raises(ValueError):
        bigcore.ones(3).clamp()
    with pytest.raises(ValueError, match="approximate"):
        F.gelu(bigcore.ones(2), approximate="fast")
    with pytest.raises(bigcore.ShapeError):
        F.layer_norm(bigcore.ones(2, 3), (4,))
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(bigcore.ones(2))
    with pytest.raises(ValueError, match="a tensor with 2 elements"):
        bigcore.ones(2).item()
