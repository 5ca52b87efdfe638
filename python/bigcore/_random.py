"""Random generators and sampling: ``Generator`` (a seeded stream of its own, as ``torch.Generator``), the
``default_generator`` that ``manual_seed`` seeds, and ``randint``, ``randperm``, ``multinomial``. ``rand``,
``randn``, ``F.dropout`` and ``nn.init`` take ``generator=`` too."""

import numbers

import numpy as np

from . import _core
from ._dtype import int64, to_dtype
from ._tensor import Tensor, _dims, _wrap


class Generator:
    """A seeded random stream of its own: draws from it do not move the default generator, and the same seed
    gives the same draws. ``rand``, ``randn``, ``randint``, ``randperm``, ``multinomial``, ``F.dropout`` and the
    ``nn.init`` functions draw from it when given ``generator=``.

    Args:
        device: ``"cpu"``, the only device.

    Returns:
        a generator seeded with PyTorch's default seed (67280421310721) until ``manual_seed``.

    Example::

        >>> g = bigcore.Generator().manual_seed(0)
        >>> bigcore.rand(2, generator=g)  # the same two numbers after every manual_seed(0)
    """

    __slots__ = ("_g",)

    def __init__(self, device="cpu"):
        if str(device) != "cpu":
            raise ValueError(f"bigcore generators live on the cpu, not {device!r}")
        self._g = _core._Generator()

    @property
    def device(self):
        return "cpu"

    def manual_seed(self, seed):
        """Reseed: later draws are determined by ``seed`` (any int, taken modulo 2**64). Returns self."""
        if not isinstance(seed, (numbers.Integral, np.integer)) or isinstance(seed, bool):
            raise TypeError(f"manual_seed expects an int, got {type(seed).__name__}")
        self._g.manual_seed(int(seed))
        return self

    def seed(self):
        """Reseed from the clock; returns the seed chosen."""
        return self._g.seed()

    def initial_seed(self):
        """The seed given to the last ``manual_seed`` (or chosen by ``seed``)."""
        return self._g.initial_seed()

    def get_state(self):
        """The stream's state: four ints (what :func:`bigcore.get_rng_state` returns for the default one)."""
        return list(self._g.get_state())

    def set_state(self, new_state):
        """Restore a state from :meth:`get_state`; later draws repeat those made after it. Returns self."""
        self._g.set_state([int(s) for s in new_state])
        return self

    def __repr__(self):
        return f"<bigcore.Generator initial_seed={self.initial_seed()}>"


def _default():
    g = Generator.__new__(Generator)
    g._g = _core.default_generator_handle()
    return g


#: The generator that ``rand``, ``randn``, dropout, init and the samplers use without ``generator=``;
#: ``bigcore.manual_seed`` seeds it.
default_generator = _default()


def _handle(generator):
    """The engine handle of ``generator`` (None: the default generator)."""
    if generator is None:
        return None
    if not isinstance(generator, Generator):
        raise TypeError(f"generator must be a bigcore.Generator, got {type(generator).__name__}")
    return generator._g


def randint(*args, size=None, generator=None, dtype=None, requires_grad=False, **kwargs):
    """Integers drawn uniformly from ``[low, high)``: ``randint(high, size)`` or ``randint(low, high, size)``.

    Args:
        low: the smallest value (default 0).
        high: one past the largest value.
        size: the shape, a tuple of ints.
        generator: the :class:`Generator` to draw from (default: the default generator).
        dtype: the result's dtype (default int64).

    Returns:
        a tensor of ``size``.

    Example::

        >>> bigcore.manual_seed(0); bigcore.randint(3, 10, (2, 2))  # values in 3..9
    """
    if "low" in kwargs or "high" in kwargs:
        args = (kwargs.pop("low", 0), kwargs.pop("high")) + args
    if kwargs:
        raise TypeError(f"randint got unexpected keyword arguments {sorted(kwargs)}")
    if size is not None:
        args = args + (size,)
    if len(args) == 2:
        low, (high, size) = 0, args
    elif len(args) == 3:
        low, high, size = args
    else:
        raise TypeError("randint expects (high, size) or (low, high, size)")
    for name, v in (("low", low), ("high", high)):
        if not isinstance(v, (numbers.Integral, np.integer)) or isinstance(v, bool):
            raise TypeError(f"randint: {name} must be an int, got {type(v).__name__}")
    d = to_dtype(dtype) or int64
    t = _wrap(_core.randint(int(low), int(high), _dims((size,)), d.name, _handle(generator)))
    if requires_grad:
        t.requires_grad = True
    return t


def randperm(n, generator=None, dtype=None):
    """A random permutation of ``0..n-1``.

    Args:
        n: the number of elements.
        generator: the :class:`Generator` to draw from (default: the default generator).
        dtype: the result's dtype (default int64).

    Returns:
        a 1-D tensor of ``n`` distinct values.

    Example::

        >>> bigcore.manual_seed(0); bigcore.randperm(4)  # 0, 1, 2, 3 in some order
    """
    t = _wrap(_core.randperm(int(n), _handle(generator)))
    d = to_dtype(dtype)
    return t if d is None or d is int64 else t.to(d)


def multinomial(self, num_samples, replacement=False, *, generator=None):
    """Category indices sampled from the rows of ``self``: non-negative weights, normalized per row.

    Args:
        num_samples: samples per row.
        replacement: draw with replacement; without it (the default) the samples of a row are distinct, so
            at most as many as the row has positive weights.
        generator: the :class:`Generator` to draw from (default: the default generator).

    Returns:
        int64 indices.

    Shape:
        ``self`` ``(C,)`` or ``(N, C)``; result ``(num_samples,)`` or ``(N, num_samples)``.

    Example::

        >>> probs = bigcore.tensor([[0.1, 0.0, 0.9]])
        >>> probs.multinomial(2)  # (1, 2): categories 0 and 2, 2 first most often
    """
    if not isinstance(self, Tensor):
        raise TypeError(f"multinomial expects a bigcore.Tensor, got {type(self).__name__}")
    return _wrap(_core.multinomial(self._c, int(num_samples), bool(replacement), _handle(generator)))


Tensor.multinomial = multinomial

__all__ = ["Generator", "default_generator", "randint", "randperm", "multinomial"]
