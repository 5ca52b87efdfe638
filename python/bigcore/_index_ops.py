"""Tensor methods that index along a dim with index tensors, sort, and sum cumulatively: ``gather``, ``scatter``,
``scatter_add``, ``put`` (and their ``_`` in-place forms), ``topk``, ``sort``, ``argsort``, ``cumsum``. Each is one
engine call (``rust/src/ops/gather.rs``, ``sort.rs``, ``scan.rs``); ``bigcore.topk(x, ...)`` and the other
functional forms come from ``_functions.py``."""

import collections
import numbers

from . import _core
from ._dtype import to_dtype
from ._tensor import Tensor, _as_c, _wrap

#: ``topk``'s result, as ``torch.return_types.topk``.
TopkResult = collections.namedtuple("topk", ["values", "indices"])
#: ``sort``'s result, as ``torch.return_types.sort``.
SortResult = collections.namedtuple("sort", ["values", "indices"])


def _index(index):
    return index._c if isinstance(index, Tensor) else _as_c(index)


def _src(self, src):
    """The engine tensor of a source: a Tensor, or array-like data (a number becomes a 0-d tensor of self's
    dtype)."""
    return src._c if isinstance(src, Tensor) else _as_c(src, self)


def topk(self, k, dim=-1, largest=True, sorted=True):
    """The ``k`` largest (or smallest) elements along ``dim`` and their indices.

    Ties go to the lower index; NaN counts as larger than any number. The values are differentiable (the
    gradient goes back to the picked elements).

    Args:
        k: how many (``0 <= k <= size(dim)``).
        dim: the dimension (default the last).
        largest: the largest (default) or the smallest.
        sorted: in rank order (default); else in the order of their positions.

    Returns:
        ``(values, indices)``; indices are int64.

    Shape:
        both as ``self`` with ``size(dim) = k``.

    Example::

        >>> bigcore.tensor([1.0, 5.0, 3.0, 5.0]).topk(2)
        topk(values=tensor([5., 5.]), indices=tensor([1, 3]))
    """
    v, i = _core.topk(self._c, int(k), int(dim), bool(largest), bool(sorted))
    return TopkResult(_wrap(v), _wrap(i))


def sort(self, dim=-1, descending=False, stable=False):
    """The elements sorted along ``dim`` and the indices they came from.

    Always stable (equal elements keep their order, in both directions); NaN sorts as the largest value.

    Args:
        dim: the dimension (default the last).
        descending: largest first.
        stable: accepted for PyTorch's signature; every sort is stable.

    Returns:
        ``(values, indices)``, both of ``self``'s shape; indices are int64.

    Example::

        >>> bigcore.tensor([3.0, 1.0, 2.0]).sort()
        sort(values=tensor([1., 2., 3.]), indices=tensor([1, 2, 0]))
    """
    v, i = _core.sort(self._c, int(dim), bool(descending), bool(stable))
    return SortResult(_wrap(v), _wrap(i))


def argsort(self, dim=-1, descending=False, stable=False):
    """The indices that sort ``self`` along ``dim`` (``sort``'s second result).

    Args:
        dim: the dimension (default the last).
        descending: largest first.
        stable: accepted for PyTorch's signature; every sort is stable.

    Returns:
        int64 indices of ``self``'s shape.

    Example::

        >>> bigcore.tensor([3.0, 1.0, 2.0]).argsort(descending=True)
        tensor([0, 2, 1])
    """
    return sort(self, dim, descending, stable).indices


def cumsum(self, dim, dtype=None):
    """Running sums along ``dim``: ``out[..., j, ...] = self[..., :j + 1, ...].sum(dim)``.

    Args:
        dim: the dimension.
        dtype: convert ``self`` to this dtype first (bool and int64 inputs give int64 otherwise).

    Returns:
        a tensor of ``self``'s shape.

    Example::

        >>> bigcore.tensor([1, 2, 3]).cumsum(0)
        tensor([1, 3, 6])
    """
    x = self if dtype is None else self.to(to_dtype(dtype))
    return _wrap(_core.cumsum(x._c, int(dim)))


def gather(self, dim, index):
    """``out[i][j][k] = self[index[i][j][k]][j][k]`` (for ``dim=0``; likewise along any dim).

    Args:
        dim: the dimension to index along.
        index: int64, as many dimensions as ``self``, no larger outside ``dim``; values in ``0..size(dim)``.

    Returns:
        a tensor of the index's shape (differentiable in ``self``).

    Example::

        >>> bigcore.tensor([[1, 2], [3, 4]]).gather(1, bigcore.tensor([[0, 0], [1, 0]]))
        tensor([[1, 1], [4, 3]])
    """
    return _wrap(_core.gather(self._c, int(dim), _index(index)))


def _scatter_args(self, index, src, op):
    idx = _index(index)
    if isinstance(src, Tensor):
        return idx, src._c
    if not isinstance(src, numbers.Number):
        raise TypeError(f"{op}: src must be a Tensor or a number, got {type(src).__name__}")
    # a 0-d value expanded to the index's shape (its traced sizes while exporting)
    shape = index.shape if isinstance(index, Tensor) else tuple(idx.shape)
    fill = src if isinstance(src, int) and not isinstance(src, bool) else float(src)  # ints exact in int64
    return idx, _wrap(_core.full([], fill, self.dtype.name)).expand(*shape)._c


def scatter(self, dim, index, src=None, *, value=None, reduce=None):
    """A copy of ``self`` with ``out[index[i][j][k]][j][k] = src[i][j][k]`` (for ``dim=0``; likewise along any dim).

    Args:
        dim: the dimension to index along.
        index: int64, as many dimensions as ``self``; no larger than ``src`` anywhere, nor than ``self`` outside
            ``dim``; values in ``0..size(dim)``.
        src: a tensor of ``self``'s dtype, or a number written at every indexed place (also as ``value=``).
        reduce: not supported (use :meth:`scatter_add`).

    Returns:
        a tensor of ``self``'s shape (differentiable in ``self`` and ``src``). A place indexed twice keeps the
        last write.

    Example::

        >>> bigcore.zeros(2, 3).scatter(1, bigcore.tensor([[2], [0]]), 7.0)
        tensor([[0., 0., 7.], [7., 0., 0.]])
    """
    if reduce is not None:
        raise NotImplementedError("scatter(reduce=...) is not supported; use scatter_add for sums")
    idx, s = _scatter_args(self, index, value if src is None else src, "scatter")
    return _wrap(_core.scatter(self._c, int(dim), idx, s))


def scatter_(self, dim, index, src=None, *, value=None, reduce=None):
    """In-place :meth:`scatter`; returns self."""
    if reduce is not None:
        raise NotImplementedError("scatter_(reduce=...) is not supported; use scatter_add_ for sums")
    idx, s = _scatter_args(self, index, value if src is None else src, "scatter_")
    self._c = _core.scatter_(self._c, int(dim), idx, s)
    return self


def scatter_add(self, dim, index, src):
    """A copy of ``self`` with ``out[index[i][j][k]][j][k] += src[i][j][k]`` (repeated places add up).

    Args:
        dim: the dimension to index along.
        index: as for :meth:`scatter`.
        src: a tensor of ``self``'s dtype.

    Returns:
        a tensor of ``self``'s shape (differentiable in ``self`` and ``src``).

    Example::

        >>> bigcore.zeros(3).scatter_add(0, bigcore.tensor([0, 2, 0]), bigcore.ones(3))
        tensor([2., 0., 1.])
    """
    return _wrap(_core.scatter_add(self._c, int(dim), _index(index), _src(self, src)))


def scatter_add_(self, dim, index, src):
    """In-place :meth:`scatter_add`; returns self."""
    self._c = _core.scatter_add_(self._c, int(dim), _index(index), _src(self, src))
    return self


def put(self, index, source, accumulate=False):
    """A copy of ``self`` with ``source``'s elements at the positions ``index`` of the flattened tensor.

    Args:
        index: int64 positions into ``self.flatten()`` (negative ones count from the end).
        source: as many elements as ``index``, of ``self``'s dtype.
        accumulate: add at the positions instead of writing.

    Returns:
        a tensor of ``self``'s shape.

    Example::

        >>> bigcore.zeros(2, 2).put(bigcore.tensor([3, 0]), bigcore.tensor([1.0, 2.0]))
        tensor([[2., 0.], [0., 1.]])
    """
    return _wrap(_core.put(self._c, _index(index), _src(self, source), bool(accumulate)))


def put_(self, index, source, accumulate=False):
    """In-place :meth:`put`; returns self."""
    self._c = _core.put_(self._c, _index(index), _src(self, source), bool(accumulate))
    return self


for _f in (topk, sort, argsort, cumsum, gather, scatter, scatter_, scatter_add, scatter_add_, put, put_):
    setattr(Tensor, _f.__name__, _f)

__all__ = ["TopkResult", "SortResult"]
