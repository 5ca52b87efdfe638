"""Keras optimizer specs: created without parameters (``Adam(learning_rate=1e-3)``) and bound to the model's
parameters when it is built at the start of ``fit``."""

from .. import optim


class _Spec:
    cls = None

    def __init__(self, learning_rate=0.001, **kwargs):
        self.learning_rate, self.kwargs = float(learning_rate), kwargs

    def build(self, params):
        return self.cls(params, lr=self.learning_rate, **self.kwargs)


class SGD(_Spec):
    """``SGD(learning_rate=0.01, momentum=0.0, nesterov=False)``."""

    cls = optim.SGD

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False):
        super().__init__(learning_rate, momentum=momentum, nesterov=nesterov)


class Adam(_Spec):
    """``Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7)`` (Keras's defaults)."""

    cls = optim.Adam

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        super().__init__(learning_rate, betas=(beta_1, beta_2), eps=epsilon)


class AdamW(_Spec):
    """``AdamW(learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7)``."""

    cls = optim.AdamW

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        super().__init__(learning_rate, betas=(beta_1, beta_2), eps=epsilon, weight_decay=weight_decay)


_BY_NAME = {"sgd": SGD, "adam": Adam, "adamw": AdamW}


def get(optimizer):
    """A spec from a name (``"adam"``, ``"sgd"``, ``"adamw"``), a spec, or a bound ``bigcore.optim`` optimizer."""
    if isinstance(optimizer, str):
        if optimizer.lower() not in _BY_NAME:
            raise ValueError(f"unknown optimizer {optimizer!r}; use one of {sorted(_BY_NAME)}")
        return _BY_NAME[optimizer.lower()]()
    if isinstance(optimizer, (_Spec, optim.Optimizer)):
        return optimizer
    raise TypeError(f"optimizer must be a name, a keras optimizer or a bigcore.optim optimizer, got {type(optimizer).__name__}")
