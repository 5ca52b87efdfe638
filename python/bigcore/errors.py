"""bigcore's exception hierarchy. Each is a subclass of the built-in exception a Python user would catch.

This module never imports the compiled core, so the core can import it to raise these.
"""


class BigcoreError(Exception):
    """Base class of the exceptions bigcore defines."""


class ShapeError(BigcoreError, ValueError):
    """Shapes that do not fit: mismatched matmul or broadcast shapes, a bad reshape, a wrong rank."""


class OutOfRangeError(BigcoreError, IndexError):
    """A dimension, index or token id outside its range."""


class DTypeError(BigcoreError, TypeError):
    """A dtype an operation does not accept."""


class AutogradError(BigcoreError, RuntimeError):
    """Misuse of autograd: backward through a freed graph, backward of a non-scalar without a gradient."""


__all__ = ["BigcoreError", "ShapeError", "OutOfRangeError", "DTypeError", "AutogradError"]
