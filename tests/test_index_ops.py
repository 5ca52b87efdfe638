"""topk, sort/argsort, cumsum, gather, scatter/scatter_add (and their in-place forms), put, one_hot: values and
gradients against the numpy reference at awkward sizes, PyTorch's tie rules and dtypes, and the errors."""

import numpy as np
import pytest

import bigcore
import bigcore.nn.functional as F
from check import AWKWARD, check_op, rand


def _no_ties(rng, shape):
    # distinct values (a permutation scaled), so ranks and finite differences are unambiguous
    n = int(np.prod(shape))
    return (rng.permutation(n).reshape(shape) - n / 2) / max(n, 1) * 4 + rng.uniform(-1 / n, 1 / n, shape)


@pytest.mark.parametrize("shape,dim", [((7,), 0), ((3, 5), -1), ((2, 13, 3), 1), ((5, 2, 1), 0), ((1, 17), 1)])
@pytest.mark.parametrize("largest,sorted_", [(True, True), (False, True), (True, False)])
def test_topk(shape, dim, largest, sorted_, rng):
    x = _no_ties(rng, shape)
    for k in sorted({0, 1, shape[dim] // 2, shape[dim]}):
        kw = {"k": k, "dim": dim, "largest": largest, "sorted": sorted_}
        check_op("topk", lambda t: t.topk(k, dim, largest, sorted_).values, [x], kwargs=kw)
        got = bigcore.topk(bigcore.tensor(x), k, dim=dim, largest=largest, sorted=sorted_)
        from reference import _topk_idx

        np.testing.assert_array_equal(got.indices.numpy(), _topk_idx(x, k, dim, largest, sorted_))
        assert got.indices.dtype is bigcore.int64


@pytest.mark.parametrize("shape,dim", [((1,), 0), ((13,), 0), ((3, 7), 0), ((2, 5, 3), -1), ((4, 3, 2), 1)])
@pytest.mark.parametrize("descending", [False, True])
def test_sort_and_argsort(shape, dim, descending, rng):
    x = _no_ties(rng, shape)
    check_op("sort", lambda t: t.sort(dim, descending).values, [x], kwargs={"dim": dim, "descending": descending})
    t = bigcore.tensor(x)
    want = np.argsort(-x if descending else x, axis=dim, kind="stable")
    np.testing.assert_array_equal(bigcore.argsort(t, dim, descending=descending).numpy(), want)
    np.testing.assert_array_equal(bigcore.sort(t, dim=dim, descending=descending, stable=True).indices.numpy(), want)


def test_ties_go_to_the_lower_index_and_nan_ranks_highest():
    # PyTorch's stable sort keeps equal elements in order both ways; topk breaks ties by index (one of the
    # answers PyTorch allows); NaN sorts last ascending and first descending, and is picked first by topk
    x = bigcore.tensor([2.0, float("nan"), 1.0, 2.0, -1.0, 1.0])
    assert x.sort().indices.tolist() == [4, 2, 5, 0, 3, 1]
    assert x.sort(descending=True).indices.tolist() == [1, 0, 3, 2, 5, 4]
    assert x.topk(3).indices.tolist() == [1, 0, 3]
    assert x.topk(3, largest=False).indices.tolist() == [4, 2, 5]
    assert x.topk(3, sorted=False).indices.tolist() == [0, 1, 3]
    ints = bigcore.tensor([[3, 1, 3], [0, 0, 5]])
    v, i = ints.topk(2)
    assert v.dtype is bigcore.int64 and v.tolist() == [[3, 3], [5, 0]] and i.tolist() == [[0, 2], [2, 0]]
    assert bigcore.tensor([True, False, True]).sort().values.tolist() == [False, True, True]


def test_sort_topk_of_a_0d_tensor_and_empty_dims():
    s = bigcore.tensor(3.0)
    v, i = s.sort()
    assert v.shape == () and v.item() == 3.0 and i.item() == 0
    assert s.topk(1).values.shape == () and s.topk(0).values.shape == (0,)
    e = bigcore.zeros(3, 0)
    assert e.sort(-1).values.shape == (3, 0) and e.topk(0).values.shape == (3, 0)
    assert bigcore.zeros(0, 4).topk(2).indices.shape == (0, 2)


@pytest.mark.parametrize("shape,dim", [((1,), 0), ((7,), 0), ((3, 5), 0), ((3, 5), 1), ((2, 13, 3), -2), ((0, 3), 1)])
def test_cumsum(shape, dim, rng):
    check_op("cumsum", lambda t: t.cumsum(dim), [rand(rng, shape)], kwargs={"dim": dim})
    check_op("cumsum", lambda t: bigcore.cumsum(t, dim=dim), [rand(rng, shape)], kwargs={"dim": dim})


def test_cumsum_dtypes():
    # bool and int64 sum to int64 (wrapping), as PyTorch; dtype= converts first
    assert bigcore.tensor([True, True, False]).cumsum(0).tolist() == [1, 2, 2]
    i = bigcore.tensor([1, 2, 3]).cumsum(0)
    assert i.dtype is bigcore.int64 and i.tolist() == [1, 3, 6]
    assert bigcore.tensor([1, 2]).cumsum(0, dtype=bigcore.float64).dtype is bigcore.float64
    big = bigcore.tensor([2**62, 2**62]).cumsum(0)
    assert big.tolist() == [2**62, -(2**63)]
    # float32 accumulates in float64: 2^24 + 1 rounds to 2^24 in float32, but the running sum goes on exactly,
    # so 2^24 + 1 + 1 comes out as 2^24 + 2 (a float32 accumulator would stay at 2^24)
    f = bigcore.tensor(np.array([2**24, 1, 1], np.float32)).cumsum(0)
    assert f.tolist() == [2**24, 2**24, 2**24 + 2]


def _index(rng, index_shape, size, dim, distinct=False):
    if not distinct:
        return rng.integers(0, size, index_shape)
    # distinct targets along dim within each line (scatter's gradient needs them)
    moved = list(index_shape)
    n = moved.pop(dim)
    lines = [rng.permutation(size)[:n] for _ in range(int(np.prod(moved)))]
    return np.moveaxis(np.array(lines).reshape(moved + [n]), -1, dim)


# (input shape, index shape, dim): the index smaller than the input outside dim, awkward sizes
GEOMETRY = [((7,), (3,), 0), ((5, 3), (2, 3), 0), ((3, 13), (3, 5), 1), ((2, 5, 7), (2, 3, 4), -1), ((5, 1), (1, 1), 1),
            ((5, 3), (0, 3), 0), ((2, 0), (2, 0), 1)]


@pytest.mark.parametrize("shape,ishape,dim", GEOMETRY)
def test_gather(shape, ishape, dim, rng):
    index = _index(rng, ishape, shape[dim], dim)
    check_op("gather", lambda t, i: t.gather(dim, i), [rand(rng, shape), index], kwargs={"dim": dim})
    check_op("gather", lambda t, i: bigcore.gather(t, dim, i), [rand(rng, shape), index], kwargs={"dim": dim})


@pytest.mark.parametrize("shape,ishape,dim", GEOMETRY)
@pytest.mark.parametrize("name", ["scatter", "scatter_add"])
def test_scatter_and_scatter_add(shape, ishape, dim, name, rng):
    index = _index(rng, ishape, shape[dim], dim, distinct=name == "scatter")
    src_shape = tuple(s + (k % 2) for k, s in enumerate(ishape))  # the source may be larger than the index
    inputs = [rand(rng, shape), index, rand(rng, src_shape)]
    check_op(name, lambda t, i, s: getattr(t, name)(dim, i, s), inputs, kwargs={"dim": dim})
    check_op(name, lambda t, i, s: getattr(t.clone(), name + "_")(dim, i, s), inputs, kwargs={"dim": dim})


def test_scatter_value_and_repeated_targets():
    x = bigcore.zeros(2, 3).scatter(1, bigcore.tensor([[2], [0]]), 7.0)
    assert x.tolist() == [[0, 0, 7], [7, 0, 0]]
    # repeated targets: scatter keeps the last write, scatter_add sums
    idx = bigcore.tensor([0, 2, 0])
    src = bigcore.tensor([1.0, 2.0, 3.0])
    assert bigcore.zeros(3).scatter(0, idx, src).tolist() == [3, 0, 2]
    assert bigcore.zeros(3).scatter_add(0, idx, src).tolist() == [4, 0, 2]
    i = bigcore.zeros(3, dtype=bigcore.int64).scatter_add_(0, idx, bigcore.tensor([1, 1, 1]))
    assert i.tolist() == [2, 0, 1]


def test_put():
    x = bigcore.arange(6.0).reshape(2, 3)
    assert x.put(bigcore.tensor([-1, 0]), bigcore.tensor([9.0, 8.0])).tolist() == [[8, 1, 2], [3, 4, 9]]
    assert x.put(bigcore.tensor([1, 1]), bigcore.tensor([1.0, 1.0]), accumulate=True).tolist() == [[0, 3, 2], [3, 4, 5]]
    x.put_(bigcore.tensor([[5]]), bigcore.tensor([[0.5]]))
    assert x[1, 2].item() == 0.5


def test_index_errors_name_the_op():
    x = bigcore.zeros(3, 4)
    with pytest.raises(bigcore.OutOfRangeError, match="gather: index 4 is out of bounds for dimension 1 with size 4"):
        x.gather(1, bigcore.tensor([[4]]))
    with pytest.raises(bigcore.OutOfRangeError, match="scatter: index -1"):
        x.scatter(0, bigcore.tensor([[-1]]), bigcore.ones(1, 1))
    with pytest.raises(bigcore.DTypeError, match="int64 index"):
        x.gather(0, bigcore.tensor([[0.0]]))
    with pytest.raises(bigcore.ShapeError, match="as many dimensions"):
        x.gather(0, bigcore.tensor([0]))
    with pytest.raises(bigcore.ShapeError, match="larger than the input"):
        x.gather(0, bigcore.zeros(1, 5, dtype=bigcore.int64))
    with pytest.raises(bigcore.ShapeError, match="larger than the source"):
        x.scatter(0, bigcore.zeros(2, 2, dtype=bigcore.int64), bigcore.ones(1, 2))
    with pytest.raises(bigcore.DTypeError, match="scatter: self is float32 but the source is float64"):
        x.scatter(0, bigcore.zeros(1, 1, dtype=bigcore.int64), bigcore.ones(1, 1, dtype=bigcore.float64))
    with pytest.raises(bigcore.OutOfRangeError, match="topk: selected index k = 5"):
        x.topk(5)
    with pytest.raises(bigcore.OutOfRangeError, match="topk"):
        x.topk(-1)
    with pytest.raises(bigcore.OutOfRangeError, match="sort: dimension 2"):
        x.sort(2)
    with pytest.raises(bigcore.OutOfRangeError, match="put: index 12"):
        x.put(bigcore.tensor([12]), bigcore.ones(1))
    with pytest.raises(NotImplementedError, match="reduce"):
        x.scatter(0, bigcore.zeros(1, 1, dtype=bigcore.int64), bigcore.ones(1, 1), reduce="add")


@pytest.mark.parametrize("n", AWKWARD)
def test_one_hot(n, rng):
    ids = rng.integers(0, n, (3, 5))
    got = F.one_hot(bigcore.tensor(ids), n + 2)
    assert got.dtype is bigcore.int64 and got.shape == (3, 5, n + 2)
    np.testing.assert_array_equal(got.numpy(), np.eye(n + 2, dtype=np.int64)[ids])
    np.testing.assert_array_equal(F.one_hot(bigcore.tensor(ids)).numpy(), np.eye(ids.max() + 1, dtype=np.int64)[ids])


def test_one_hot_errors():
    with pytest.raises(bigcore.OutOfRangeError, match="class value 3"):
        F.one_hot(bigcore.tensor([0, 3]), 3)
    with pytest.raises(bigcore.OutOfRangeError, match="class value -1"):
        F.one_hot(bigcore.tensor([-1]))
    with pytest.raises(ValueError, match="empty"):
        F.one_hot(bigcore.zeros(0, dtype=bigcore.int64))
    with pytest.raises(bigcore.DTypeError):
        F.one_hot(bigcore.tensor([1.0]))
    assert F.one_hot(bigcore.zeros(0, dtype=bigcore.int64), 4).shape == (0, 4)


def test_gradient_flows_to_the_picked_elements_only():
    # loss = sum(topk(x, 2)) picks the two largest: d loss / dx is 1 there, 0 elsewhere
    x = bigcore.tensor([[0.5, 3.0, -1.0, 2.0]], requires_grad=True)
    x.topk(2).values.sum().backward()
    assert x.grad.tolist() == [[0, 1, 0, 1]]
    assert x.topk(2).values.grad_fn == "topk" and x.sort().values.grad_fn == "sort"
