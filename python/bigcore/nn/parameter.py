"""``Parameter``: a tensor that a ``Module`` registers as trainable when assigned as an attribute."""

from .. import _core
from .._creation import zeros
from .._tensor import Tensor


class Parameter(Tensor):
    """A leaf tensor that requires a gradient and is listed by ``Module.parameters()``.

    ``Parameter(data)`` shares ``data``'s values (no copy), cut off from any graph, as in PyTorch.
    """

    __slots__ = ()

    def __new__(cls, data=None, requires_grad=True):
        if data is None:
            data = zeros(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter expects a bigcore.Tensor, got {type(data).__name__}")
        obj = Tensor.__new__(cls)
        obj._c = data._c.detach()
        if requires_grad:
            obj._c.set_requires_grad(True)
        return obj

    def __init__(self, data=None, requires_grad=True):
        pass

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo):
        out = Parameter(Tensor.__deepcopy__(self, {}), self.requires_grad)
        memo[id(self)] = out
        return out

    def __reduce__(self):
        return (_rebuild, (self.detach(), self.requires_grad))


def _rebuild(data, requires_grad):
    return Parameter(data, requires_grad)


def _replace_values(param, values):
    """Copy ``values`` (any array-like) into ``param`` in place, so every holder of ``param`` sees them."""
    from .._tensor import _as_c

    _core.assign(param._c, _as_c(values))
