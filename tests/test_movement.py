"""Movement ops: reshape/view, permute, transpose, expand, indexing, cat, stack, split, chunk, index_select,
unsqueeze, squeeze, flatten, repeat, tril/triu. Checked against numpy with gradients."""

import numpy as np
import pytest

import bigcore
from check import check_op, rand


@pytest.mark.parametrize("src,dst", [((2, 3, 4), (6, 4)), ((2, 3, 4), (-1,)), ((5,), (1, 5, 1)), ((0, 3), (3, -1)), ((), (1, 1))])
def test_reshape_and_view(src, dst, rng):
    x = rand(rng, src)
    want = x.reshape(dst).shape
    check_op("reshape", lambda t: t.reshape(dst), [x], kwargs={"shape": want})
    check_op("reshape", lambda t: t.view(*dst), [x], kwargs={"shape": want})


@pytest.mark.parametrize("shape,dims", [((2, 3, 4), (2, 0, 1)), ((5, 1, 3), (1, 2, 0)), ((3, 7), (1, 0)), ((2, 3, 1, 5), (3, 1, 0, 2))])
def test_permute(shape, dims, rng):
    check_op("permute", lambda t: t.permute(*dims), [rand(rng, shape)], kwargs={"dims": dims})


def test_transpose_and_T(rng):
    x = rand(rng, (3, 5, 2))
    check_op("permute", lambda t: t.transpose(0, -1), [x], kwargs={"dims": (2, 1, 0)})
    check_op("permute", lambda t: t.mT, [x], kwargs={"dims": (0, 2, 1)})
    np.testing.assert_array_equal(bigcore.tensor(x[0]).T.numpy(), x[0].T)


@pytest.mark.parametrize("shape,target", [((3, 1), (3, 4)), ((1,), (2, 5)), ((2, 1, 3), (4, 2, 6, 3)), ((3,), (3,))])
def test_expand(shape, target, rng):
    check_op("expand", lambda t: t.expand(*target), [rand(rng, shape)], kwargs={"shape": target})
    assert bigcore.zeros(3, 1).expand(-1, 4).shape == (3, 4)


KEYS = [
    (slice(1, None), slice(None, None, 2)),
    (1,),
    (-1, 2),
    (Ellipsis, 0),
    (None, slice(None), None, 1),
    (slice(None, None, 3), Ellipsis, None),
    (slice(5, 1),),
    ([0, 2, 0],),
    (slice(None), [1, -1]),
    (np.array([[0], [2]]),),
]


@pytest.mark.parametrize("key", KEYS, ids=[repr(k) for k in KEYS])
def test_getitem(key, rng):
    x = rand(rng, (3, 4, 5))
    np_key = tuple(np.asarray(k) if isinstance(k, list) else k for k in key)
    check_op("getitem", lambda t: t[key], [x], kwargs={"key": np_key})


def test_getitem_with_tensor_index_and_int_tensor(rng):
    x = rand(rng, (6, 3))
    idx = bigcore.tensor([5, 0, 5])
    np.testing.assert_array_equal(bigcore.tensor(x)[idx].numpy(), x[[5, 0, 5]])
    np.testing.assert_array_equal(bigcore.tensor(x)[bigcore.tensor(2)].numpy(), x[2])


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat(dim, rng):
    shapes = [(2, 3, 4), (2, 3, 4), (2, 3, 4)]
    xs = []
    for i, s in enumerate(shapes):
        s = list(s)
        s[dim] = [1, 2, 5][i]
        xs.append(rand(rng, s))
    check_op("cat", lambda *ts: bigcore.cat(ts, dim), xs, kwargs={"dim": dim})


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_stack(dim, rng):
    xs = [rand(rng, (3, 2)) for _ in range(3)]
    check_op("stack", lambda *ts: bigcore.stack(ts, dim), xs, kwargs={"dim": dim})


def test_split_and_chunk(rng):
    x = rand(rng, (7, 3))
    t = bigcore.tensor(x, requires_grad=True)
    parts = t.split(3)
    assert [p.shape[0] for p in parts] == [3, 3, 1]
    for p, w in zip(parts, np.split(x, [3, 6])):
        np.testing.assert_array_equal(p.numpy(), w)
    assert [p.shape[1] for p in t.split([1, 2], dim=1)] == [1, 2]
    assert [p.shape[0] for p in t.chunk(3)] == [3, 3, 1]
    (parts[0].sum() * 2 + parts[2].sum()).backward()
    np.testing.assert_array_equal(t.grad.numpy(), np.array([2] * 3 + [0] * 3 + [1])[:, None] * np.ones((1, 3)))


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_index_select(dim, rng):
    x = rand(rng, (4, 5, 3))
    idx = rng.integers(0, x.shape[dim], 6)
    check_op("index_select", lambda t: t.index_select(dim, bigcore.tensor(idx)), [x], kwargs={"dim": dim % 3, "index": idx})


def test_unsqueeze_squeeze_flatten(rng):
    x = rand(rng, (3, 1, 4))
    t = bigcore.tensor(x)
    assert t.unsqueeze(0).shape == (1, 3, 1, 4) and t.unsqueeze(-1).shape == (3, 1, 4, 1)
    assert t.squeeze().shape == (3, 4) and t.squeeze(1).shape == (3, 4) and t.squeeze(0).shape == (3, 1, 4)
    assert t.flatten().shape == (12,) and t.flatten(1).shape == (3, 4) and bigcore.tensor(2.0).flatten().shape == (1,)
    check_op("reshape", lambda a: a.unsqueeze(1).squeeze(2).flatten(0, 1), [x], kwargs={"shape": (3, 4)})


@pytest.mark.parametrize("shape,reps", [((2, 3), (2, 1)), ((3,), (2, 2)), ((2, 1, 2), (1, 3, 2)), ((1,), (5,))])
def test_repeat(shape, reps, rng):
    check_op("repeat", lambda t: t.repeat(*reps), [rand(rng, shape)], kwargs={"reps": reps})


@pytest.mark.parametrize("k", [0, 1, -2])
@pytest.mark.parametrize("op", ["tril", "triu"])
def test_triangles(op, k, rng):
    check_op(op, lambda t: getattr(t, op)(k), [rand(rng, (2, 4, 5))], kwargs={"k": k})


def test_reshape_shares_storage_and_contiguous_is_self():
    t = bigcore.arange(6)
    assert t.reshape(2, 3)._c.shares_storage(t._c)
    assert t.contiguous() is t
