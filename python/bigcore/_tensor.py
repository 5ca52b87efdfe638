"""The ``Tensor`` class: a PyTorch-shaped handle to an engine tensor. Every operation is one call into Rust
(which releases the GIL and records the op for autograd); this file only shapes arguments and results."""

import collections
import numbers
import weakref

import numpy as np

from . import _core, _tracing
from ._dtype import bool_, float32, float64, int64, to_dtype
from .errors import OutOfRangeError

_DTYPES = {"float32": float32, "float64": float64, "int64": int64, "bool": bool_}

#: Returned by ``Tensor.max(dim)`` / ``min(dim)``, as in PyTorch.
MaxResult = collections.namedtuple("MaxResult", ["values", "indices"])


def _wrap(c):
    t = Tensor.__new__(Tensor)
    t._c = c
    return t


def _scalar_dtype(value, like):
    """The dtype a Python scalar takes next to tensor ``like`` (PyTorch: a scalar never widens a tensor's float
    type; a float scalar makes an integer tensor's result float32)."""
    if isinstance(value, (bool, np.bool_)):
        return like.dtype if like is not None else bool_
    if isinstance(value, numbers.Integral):
        if like is not None and like.dtype is not bool_:
            return like.dtype
        return int64
    if like is not None and like.dtype.is_floating_point:
        return like.dtype
    return float32


def _as_c(value, like=None):
    """The engine tensor for a Tensor, a Python or numpy scalar, or array-like data."""
    if isinstance(value, Tensor):
        return value._c
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, numbers.Number):
        if isinstance(value, complex):
            raise TypeError("complex numbers are not supported")
        # ints are passed as ints: exact in int64 beyond 2**53, OverflowError beyond int64 (a traced size, an int
        # subclass while exporting, so stays in the graph)
        fill = value if isinstance(value, int) and not isinstance(value, bool) else float(value)
        return _core.full([], fill, _scalar_dtype(value, like).name)
    from ._creation import tensor

    return tensor(value)._c


def _dims(args):
    """Sizes given as ``f(2, 3)`` or ``f((2, 3))``."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    out = []
    for a in args:
        if isinstance(a, Tensor):
            a = a.item()
        if not isinstance(a, (numbers.Integral, np.integer)) or isinstance(a, bool):
            raise TypeError(f"sizes must be integers, got {type(a).__name__} ({a!r})")
        out.append(a if isinstance(a, int) else int(a))  # an int subclass stays: a traced size (bigcore.onnx)
    return out


def _check_broadcasts_to(op, what, shape, target):
    """ShapeError unless ``shape`` broadcasts to ``target`` itself (numpy's rule, one way)."""
    shape, target = tuple(shape), tuple(target)
    ok = len(shape) <= len(target) and all(s in (1, t) for s, t in zip(reversed(shape), reversed(target)))
    if not ok:
        from .errors import ShapeError

        raise ShapeError(f"{op}: {what} of shape {shape} does not broadcast to the input's shape {target}")


def _dim_list(dim):
    if dim is None:
        return None
    if isinstance(dim, (tuple, list)):
        return [int(d) for d in dim]
    return [int(dim)]


class _HookHandle:
    """What ``register_post_accumulate_grad_hook`` returns: ``remove()`` unregisters the hook."""

    def __init__(self, handle):
        self._handle = handle

    def remove(self):
        _core.remove_grad_hook(self._handle)


class Tensor:
    """An n-dimensional array with autograd, stored and computed by the Rust engine.

    Create tensors with :func:`bigcore.tensor`, :func:`bigcore.zeros`, :func:`bigcore.randn` and friends.
    Operators and methods follow PyTorch: ``a @ b``, ``x.sum(dim=1, keepdim=True)``, ``x[:, 1:3]``,
    ``loss.backward()``.

    Example::

        >>> x = bigcore.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        >>> (x * x).sum().backward(); x.grad
        tensor([[2., 4.],
                [6., 8.]])
    """

    __slots__ = ("_c", "__weakref__")
    __array_priority__ = 1000  # numpy defers `ndarray + Tensor` to Tensor.__radd__

    def __init__(self, *args, **kwargs):
        raise TypeError("create tensors with bigcore.tensor(data), bigcore.zeros(...), bigcore.randn(...)")

    # ----- attributes -----
    @property
    def shape(self):
        """The size of each dimension, as a tuple."""
        if _tracing.ACTIVE is not None:  # exporting: traced sizes where axes are dynamic (bigcore.onnx)
            t = _tracing.tracer()
            if t is not None:
                return t.shape(self)
        return tuple(self._c.shape)

    @property
    def dtype(self):
        """The element type."""
        return _DTYPES[self._c.dtype]

    @property
    def ndim(self):
        """The number of dimensions."""
        return len(self._c.shape)

    @property
    def requires_grad(self):
        """Whether autograd computes a gradient for this tensor."""
        return self._c.requires_grad

    @requires_grad.setter
    def requires_grad(self, on):
        self._c.set_requires_grad(bool(on))

    @property
    def grad(self):
        """The gradient accumulated by ``backward()`` (leaves only), or None."""
        g = self._c.grad
        return None if g is None else _wrap(g)

    @grad.setter
    def grad(self, g):
        self._c.set_grad(None if g is None else _as_c(g))

    @property
    def data(self):
        """PyTorch's ``.data``: the values as a tensor outside the graph (``detach()``: same storage, so
        ``p.data.mul_(0.5)`` changes ``p``). Unlike PyTorch's, writes through it are in-place writes to autograd,
        whose checks still see them."""
        return self.detach()

    @data.setter
    def data(self, value):
        value = value if isinstance(value, Tensor) else _wrap(_as_c(value))
        if tuple(value.shape) != tuple(self.shape):
            from .errors import ShapeError

            raise ShapeError(f"data: assigning values of shape {tuple(value.shape)} to a tensor of shape "
                             f"{tuple(self.shape)}; bigcore keeps a tensor's shape (copy into a new tensor instead)")
        self.detach().copy_(value)

    @property
    def is_leaf(self):
        """True for tensors not made by a recorded operation."""
        return self._c.is_leaf

    @property
    def grad_fn(self):
        """The name of the operation that made this tensor (None for leaves)."""
        tr = self._c.trace()
        return None if tr is None else tr[0]

    @property
    def T(self):
        """The tensor with its dimensions reversed."""
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self):
        """The last two dimensions swapped."""
        return self.transpose(-2, -1)

    def dim(self):
        """The number of dimensions."""
        return self.ndim

    def size(self, dim=None):
        """The shape, or the size of one dimension."""
        if dim is None:
            return self.shape
        n = self.ndim
        if not -n <= dim < n:
            raise OutOfRangeError(f"size: dimension {dim} is out of range for a tensor with {n} dimensions")
        return self.shape[dim]

    def numel(self):
        """The number of elements."""
        return self._c.numel()

    def requires_grad_(self, requires_grad=True):
        """Set ``requires_grad`` in place and return self."""
        self.requires_grad = requires_grad
        return self

    def is_floating_point(self):
        return self.dtype.is_floating_point

    # ----- conversion -----
    def numpy(self):
        """A numpy copy of the values."""
        _tracing.value_read("numpy()")
        return self._c.numpy()

    def __array__(self, dtype=None, copy=None):
        _tracing.value_read("numpy.asarray()")
        a = self._c.numpy()
        return a if dtype is None else a.astype(dtype, copy=False)

    def tolist(self):
        """The values as (nested) Python lists, or a number for a 0-d tensor."""
        _tracing.value_read("tolist()")
        return self._c.numpy().tolist()

    def item(self):
        """The value of a one-element tensor as a Python number."""
        _tracing.value_read("item()")
        return self._c.item()

    def __float__(self):
        _tracing.value_read("float()")
        return float(self._c.item())

    def __int__(self):
        _tracing.value_read("int()")
        return int(self._c.item())

    def __index__(self):
        if self.dtype is not int64 or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        _tracing.value_read("operator.index()")
        return self._c.item()

    def __bool__(self):
        if self.numel() != 1:
            raise RuntimeError(f"Boolean value of Tensor with {self.numel()} values is ambiguous")
        _tracing.value_read("bool()")
        return bool(self._c.item())

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __repr__(self):
        body = np.array2string(self._c.numpy(), separator=", ", prefix="tensor(", precision=4)
        extra = []
        if self.dtype is float64:  # float32 and int64 are the defaults; bool shows in the values
            extra.append(f"dtype={self.dtype!r}")
        if self.grad_fn is not None:
            extra.append(f"grad_fn=<{self.grad_fn}>")
        elif self.requires_grad:
            extra.append("requires_grad=True")
        return "tensor(" + ", ".join([body] + extra) + ")"

    def __hash__(self):
        return id(self)

    def __reduce__(self):
        from ._creation import tensor

        return (tensor, (self.numpy(), self.dtype.name, self.requires_grad))

    def __deepcopy__(self, memo):
        from .autograd import no_grad

        with no_grad():
            out = self.clone()  # fresh storage
        if self.requires_grad:
            out.requires_grad = True
        memo[id(self)] = out
        return out

    def detach(self):
        """A tensor sharing this one's values, cut off from the graph."""
        return _wrap(self._c.detach())

    @_tracing.traced("clone")
    def clone(self):
        """A copy of the values (differentiable)."""
        return self * 1 if self.dtype is not bool_ else self.to(int64).to(bool_)

    def contiguous(self):
        """Self: bigcore tensors are always contiguous."""
        return self

    def to(self, dtype):
        """A copy converted to ``dtype`` (self when it already has it)."""
        d = to_dtype(dtype)
        return self if d is self.dtype else _wrap(_core.to_dtype(self._c, d.name))

    def float(self):
        return self.to(float32)

    def double(self):
        return self.to(float64)

    def long(self):
        return self.to(int64)

    def bool(self):
        return self.to(bool_)

    # ----- autograd -----
    def backward(self, gradient=None, retain_graph=False):
        """Compute the gradient of this tensor with respect to every leaf that requires one, adding into
        their ``.grad``. ``gradient`` is required unless the tensor has one element."""
        g = None if gradient is None else _as_c(gradient, self)
        self._c.backward(g, bool(retain_graph))

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(tensor)`` as soon as a backward has finished accumulating into this leaf's ``.grad``
        (PyTorch's hook of the same name), while the rest of the backward is still to run; an exception in it
        stops the backward and is raised from ``backward()``. Returns a handle whose ``remove()`` unregisters it.

        Raises:
            AutogradError: the tensor is not a leaf that requires grad.

        Example::

            handle = w.register_post_accumulate_grad_hook(lambda p: print(p.grad.norm()))
            loss.backward()                                 # prints once w.grad is final
            handle.remove()
        """
        if not callable(hook):
            raise TypeError(f"hook must be callable, got {type(hook).__name__}")
        me = weakref.ref(self)  # the engine holds the hook: a strong reference would keep the tensor alive

        def call():
            t = me()
            if t is not None:
                hook(t)

        return _HookHandle(self._c.register_post_accumulate_grad_hook(call))

    # ----- arithmetic -----
    def _bin(self, other, kind):
        return _wrap(_core.binary(self._c, _as_c(other, self), kind))

    def _rbin(self, other, kind):
        return _wrap(_core.binary(_as_c(other, self), self._c, kind))

    def __add__(self, o):
        return self._bin(o, "add")

    def __radd__(self, o):
        return self._rbin(o, "add")

    def __sub__(self, o):
        return self._bin(o, "sub")

    def __rsub__(self, o):
        return self._rbin(o, "sub")

    def __mul__(self, o):
        return self._bin(o, "mul")

    def __rmul__(self, o):
        return self._rbin(o, "mul")

    def __truediv__(self, o):
        return self._bin(o, "div")

    def __rtruediv__(self, o):
        return self._rbin(o, "div")

    def __pow__(self, o):
        return self._bin(o, "pow")

    def __rpow__(self, o):
        return self._rbin(o, "pow")

    def __matmul__(self, o):
        return _wrap(_core.matmul(self._c, _as_c(o, self)))

    def __rmatmul__(self, o):
        return _wrap(_core.matmul(_as_c(o, self), self._c))

    def __neg__(self):
        return self._un("neg")

    def __pos__(self):
        return self

    def __abs__(self):
        return self._un("abs")

    add = __add__
    sub = __sub__
    mul = __mul__
    div = __truediv__
    pow = __pow__
    neg = __neg__
    matmul = __matmul__

    # ----- comparisons and logic -----
    def _cmp(self, o, kind):
        return _wrap(_core.compare(self._c, _as_c(o, self), kind))

    def __eq__(self, o):
        return self._cmp(o, "eq")

    def __ne__(self, o):
        return self._cmp(o, "ne")

    def __lt__(self, o):
        return self._cmp(o, "lt")

    def __le__(self, o):
        return self._cmp(o, "le")

    def __gt__(self, o):
        return self._cmp(o, "gt")

    def __ge__(self, o):
        return self._cmp(o, "ge")

    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__

    def _need_bool(self, op):
        if self.dtype is not bool_:
            raise TypeError(f"{op} is defined for bool tensors, got {self.dtype!r}")

    def __invert__(self):
        self._need_bool("~")
        return self._cmp(False, "eq")

    logical_not = __invert__

    def __and__(self, o):
        self._need_bool("&")
        return _wrap(_core.where_(self._c, _as_c(o, self), _as_c(False)))

    def __or__(self, o):
        self._need_bool("|")
        return _wrap(_core.where_(self._c, _as_c(True), _as_c(o, self)))

    __rand__ = __and__
    __ror__ = __or__

    # ----- elementwise -----
    def _un(self, kind, **kw):
        return _wrap(_core.unary(self._c, kind, **kw))

    def exp(self):
        return self._un("exp")

    def log(self):
        return self._un("log")

    def sqrt(self):
        return self._un("sqrt")

    def tanh(self):
        return self._un("tanh")

    def sigmoid(self):
        return self._un("sigmoid")

    def relu(self):
        return self._un("relu")

    def abs(self):
        return self._un("abs")

    def clamp(self, min=None, max=None):
        """Limit values to ``[min, max]`` (either bound may be None)."""
        if min is None and max is None:
            raise ValueError("clamp: at least one of 'min' or 'max' must not be None")
        return self._un("clamp", min=None if min is None else float(min), max=None if max is None else float(max))

    clip = clamp

    def masked_fill(self, mask, value):
        """``value`` where ``mask`` is True, self elsewhere. The mask broadcasts to self's shape (not the other way:
        the result always has self's shape, as in PyTorch)."""
        m = _as_c(mask)
        _check_broadcasts_to("masked_fill", "mask", m.shape, self._c.shape)
        return _wrap(_core.where_(m, _as_c(value, self), self._c))

    def tril(self, diagonal=0):
        return _wrap(_core.triangle(self._c, int(diagonal), False))

    def triu(self, diagonal=0):
        return _wrap(_core.triangle(self._c, int(diagonal), True))

    def softmax(self, dim):
        return _wrap(_core.softmax(self._c, int(dim)))

    def log_softmax(self, dim):
        return _wrap(_core.log_softmax(self._c, int(dim)))

    # ----- reductions -----
    def sum(self, dim=None, keepdim=False):
        """Sum over ``dim`` (an int or a tuple; all dims when None)."""
        return _wrap(_core.sum(self._c, _dim_list(dim), keepdim))

    def mean(self, dim=None, keepdim=False):
        """Mean over ``dim`` (an int or a tuple; all dims when None)."""
        return _wrap(_core.mean(self._c, _dim_list(dim), keepdim))

    def _max(self, dim, keepdim, is_min):
        if dim is None:
            return _wrap(_core.amax(self._c, None, keepdim, is_min))
        if isinstance(dim, (tuple, list)):
            return _wrap(_core.amax(self._c, _dim_list(dim), keepdim, is_min))
        v, i = _core.max_dim(self._c, int(dim), keepdim, is_min)
        return MaxResult(_wrap(v), _wrap(i))

    def max(self, dim=None, keepdim=False):
        """The largest value; with an int ``dim``, ``(values, indices)`` along it."""
        return self._max(dim, keepdim, False)

    def min(self, dim=None, keepdim=False):
        """The smallest value; with an int ``dim``, ``(values, indices)`` along it."""
        return self._max(dim, keepdim, True)

    def amax(self, dim=None, keepdim=False):
        return _wrap(_core.amax(self._c, _dim_list(dim), keepdim, False))

    def amin(self, dim=None, keepdim=False):
        return _wrap(_core.amax(self._c, _dim_list(dim), keepdim, True))

    def argmax(self, dim=None, keepdim=False):
        return _wrap(_core.argmax(self._c, None if dim is None else int(dim), keepdim, False))

    def argmin(self, dim=None, keepdim=False):
        return _wrap(_core.argmax(self._c, None if dim is None else int(dim), keepdim, True))

    # ----- movement -----
    def reshape(self, *shape):
        """The same values in a new shape; one size may be -1."""
        return _wrap(_core.reshape(self._c, _dims(shape)))

    view = reshape

    def view_as(self, other):
        return self.reshape(other.shape)

    def transpose(self, dim0, dim1):
        return _wrap(_core.transpose(self._c, int(dim0), int(dim1)))

    def permute(self, *dims):
        return _wrap(_core.permute(self._c, _dims(dims)))

    def expand(self, *sizes):
        """Broadcast to ``sizes`` (-1 keeps a size)."""
        return _wrap(_core.expand(self._c, _dims(sizes)))

    def expand_as(self, other):
        return self.expand(other.shape)

    def unsqueeze(self, dim):
        return _wrap(_core.unsqueeze(self._c, int(dim)))

    def squeeze(self, dim=None):
        return _wrap(_core.squeeze(self._c, _dim_list(dim)))

    def flatten(self, start_dim=0, end_dim=-1):
        return _wrap(_core.flatten(self._c, int(start_dim), int(end_dim)))

    def repeat(self, *sizes):
        """Tile the tensor ``sizes[i]`` times along dimension ``i``."""
        return _wrap(_core.repeat(self._c, _dims(sizes)))

    def index_select(self, dim, index):
        return _wrap(_core.index_select(self._c, int(dim), _as_c(index)))

    @_tracing.traced("narrow")
    def narrow(self, dim, start, length):
        n = self.ndim
        if not -n <= int(dim) < n:  # not wrapped: dim 5 of a 2-d tensor is an error, as in PyTorch
            raise OutOfRangeError(f"narrow: dimension {dim} is out of range for a tensor with {n} dimensions "
                                  f"(expected {-n} to {n - 1})")
        d = int(dim) % n
        specs = [(0, 1, s) for s in self.shape]
        size = self.shape[d]
        start = int(start) + size if start < 0 else int(start)
        if not 0 <= start <= size or length < 0 or start + length > size:
            raise OutOfRangeError(f"narrow: range {start}..{start + length} leaves dimension {d} of size {size}")
        specs[d] = (start, 1, int(length))
        return _wrap(_core.slice(self._c, specs))

    @_tracing.traced("split")
    def split(self, split_size_or_sections, dim=0):
        """Pieces of ``split_size`` along ``dim`` (the last may be smaller), or pieces of the given sizes."""
        d = int(dim)
        size = self.size(d)
        if isinstance(split_size_or_sections, numbers.Integral):
            step = int(split_size_or_sections)
            if step <= 0:
                raise ValueError(f"split: split_size must be positive, got {step}")
            sizes = [min(step, size - s) for s in range(0, size, step)] or [0]
        else:
            sizes = [int(s) for s in split_size_or_sections]
            if sum(sizes) != size or any(s < 0 for s in sizes):
                raise ValueError(f"split: sizes {sizes} do not add up to {size} (dimension {d})")
        out, start = [], 0
        for s in sizes:
            out.append(self.narrow(d, start, s))
            start += s
        return tuple(out)

    def chunk(self, chunks, dim=0):
        """Split into ``chunks`` pieces of equal size (the last may be smaller), as PyTorch."""
        if int(chunks) <= 0:
            raise ValueError(f"chunk: chunks must be positive, got {chunks}")
        size = self.size(int(dim))
        return self.split(max(-(-size // int(chunks)), 1), dim)

    def __getitem__(self, key):
        from ._indexing import getitem

        return getitem(self, key)


def _tensor_from_numpy(arr, requires_grad=False):
    """Wrap a numpy array whose dtype is already one bigcore holds."""
    t = _wrap(_core.from_numpy(arr))
    if requires_grad:
        t.requires_grad = True
    return t


from . import _index_ops, _inplace  # noqa: E402,F401 - they add Tensor's indexing, sorting and in-place methods

__all__ = ["Tensor", "MaxResult"]
