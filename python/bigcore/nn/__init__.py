"""Neural-network building blocks. ``bigcore.nn.functional`` (imported as ``F``) holds the stateless ops."""

from . import functional

__all__ = ["functional"]
