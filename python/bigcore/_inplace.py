"""In-place Tensor methods: ``add_ sub_ mul_ div_ clamp_ clip_ fill_ zero_ copy_ masked_fill_``, the augmented
operators ``+= -= *= /=`` (in place, as PyTorch), and ``x[key] = value``.

Each is one engine call (``rust/src/ops/inplace.rs``) that writes the tensor's storage, bumps its version
(``t._version``), and returns the engine tensor that stands for it afterwards: the same one, or, when autograd
records the write, a new one on the same storage carrying the op. The method stores it in ``self._c``.

Not like PyTorch: indexing and slicing copy in bigcore (only ``reshape``/``view``/``detach`` share storage), so
``x[0].add_(1)`` changes a copy; write through ``x[0] += 1`` or ``x[0] = ...`` instead.
"""

from . import _core
from ._tensor import Tensor, _as_c


def _set(self, c):
    self._c = c
    return self


def add_(self, other, *, alpha=1):
    """``self += alpha * other`` in place (``other`` broadcast to ``self``'s shape); returns self.

    Args:
        other: a tensor or a number.
        alpha: the multiplier of ``other``.

    Returns:
        self. The result's dtype must fit ``self`` (a float result into an int64 tensor raises a DTypeError).

    Example::

        >>> x = bigcore.zeros(3)
        >>> x.add_(bigcore.ones(3), alpha=2)  # tensor([2., 2., 2.])
    """
    return _set(self, _core.add_(self._c, _as_c(other, self), float(alpha)))


def sub_(self, other, *, alpha=1):
    """``self -= alpha * other`` in place; returns self (see :meth:`add_`)."""
    return _set(self, _core.sub_(self._c, _as_c(other, self), float(alpha)))


def mul_(self, other):
    """``self *= other`` in place; returns self.

    Args:
        other: a tensor (broadcast to ``self``'s shape) or a number.

    Returns:
        self.

    Example::

        >>> x = bigcore.ones(2)
        >>> x.mul_(3)  # tensor([3., 3.])
    """
    return _set(self, _core.mul_(self._c, _as_c(other, self)))


def div_(self, other):
    """``self /= other`` in place (true division: an int64 tensor cannot hold it); returns self."""
    return _set(self, _core.div_(self._c, _as_c(other, self)))


def clamp_(self, min=None, max=None):  # noqa: A002 - PyTorch's names
    """Limit the values to ``[min, max]`` in place (either bound may be None); returns self.

    Example::

        >>> bigcore.tensor([-2.0, 0.5, 3.0]).clamp_(-1, 1)  # tensor([-1., 0.5, 1.])
    """
    if min is None and max is None:
        raise ValueError("clamp_: at least one of 'min' or 'max' must not be None")
    return _set(self, _core.clamp_(self._c, None if min is None else float(min), None if max is None else float(max)))


def fill_(self, value):
    """Set every element to ``value`` (a number or a 0-d tensor, converted to ``self``'s dtype); returns self.

    Example::

        >>> bigcore.zeros(2, 2).fill_(7)  # tensor([[7., 7.], [7., 7.]])
    """
    return _set(self, _core.fill_(self._c, _as_c(value, self)))


def zero_(self):
    """Set every element to zero; returns self.

    Example::

        >>> bigcore.ones(3).zero_()  # tensor([0., 0., 0.])
    """
    return _set(self, _core.zero_(self._c))


def copy_(self, src, non_blocking=False):
    """Copy ``src``'s values into ``self`` (broadcast to its shape, converted to its dtype); returns self.

    Args:
        src: a tensor (or array-like data).
        non_blocking: ignored (there is one device).

    Returns:
        self.

    Example::

        >>> bigcore.zeros(2, 3).copy_(bigcore.tensor([1, 2, 3]))  # every row 1., 2., 3.
    """
    return _set(self, _core.copy_(self._c, _as_c(src)))


def masked_fill_(self, mask, value):
    """Set the elements where the bool ``mask`` (broadcast to ``self``'s shape) is True to ``value`` (a number
    or a 0-d tensor); returns self.

    Example::

        >>> x = bigcore.tensor([1.0, -2.0, 3.0])
        >>> x.masked_fill_(x < 0, 0.0)  # tensor([1., 0., 3.])
    """
    return _set(self, _core.masked_fill_(self._c, _as_c(mask), _as_c(value, self)))


def _version(self):
    """How many in-place writes this tensor's storage has seen (shared by tensors that share the storage)."""
    return self._c.version


def __setitem__(self, key, value):
    """``self[key] = value``: ints, slices (positive steps), ``None``, ``...``, bool masks and integer index
    tensors or arrays (several broadcast together, as in numpy); ``value`` a number or a tensor broadcast to the
    indexed shape. Differentiable in ``value`` and in the elements of ``self`` it leaves."""
    from ._indexing import setitem

    self._c = setitem(self, key, value)._c


for _f in (add_, sub_, mul_, div_, clamp_, fill_, zero_, copy_, masked_fill_, __setitem__):
    setattr(Tensor, _f.__name__, _f)
Tensor.clip_ = clamp_
Tensor.__iadd__ = add_
Tensor.__isub__ = sub_
Tensor.__imul__ = mul_
Tensor.__itruediv__ = div_
Tensor._version = property(_version)
