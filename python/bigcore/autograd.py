"""Grad mode: ``no_grad``, ``enable_grad``, ``set_grad_enabled`` (context managers and decorators) and
``is_grad_enabled``. Grad mode is per thread, as in PyTorch."""

import functools

from . import _core


class _GradMode:
    _on = True

    def __init__(self):
        self._prev = []

    def __enter__(self):
        self._prev.append(_core.set_grad_enabled(self._on))
        return self

    def __exit__(self, *exc):
        _core.set_grad_enabled(self._prev.pop())
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):
    """Operations inside do not record the graph (inference, parameter updates).

    Example::

        >>> with bigcore.no_grad():
        ...     y = model(x)
    """

    _on = False


class enable_grad(_GradMode):
    """Turn recording back on inside a ``no_grad`` block."""

    _on = True


class set_grad_enabled(_GradMode):
    """Turn recording on or off: immediately when called, and back on exit when used as a context manager."""

    def __init__(self, mode):
        super().__init__()
        self._on = bool(mode)
        self._prev.append(_core.set_grad_enabled(self._on))

    def __enter__(self):
        return self

    def __call__(self, fn):
        raise TypeError("use set_grad_enabled(mode) as a context manager or a plain call")


def is_grad_enabled():
    """Whether operations on this thread record the graph."""
    return _core.is_grad_enabled()
