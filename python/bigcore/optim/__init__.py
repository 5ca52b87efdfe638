"""Optimizers (``SGD``, ``Adam``, ``AdamW``, ``RMSprop``) whose ``step()`` is one fused engine call, and ``lr_scheduler``."""

from . import lr_scheduler
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "lr_scheduler"]
