"""Keras optimizers with Keras's names, arguments and defaults: ``SGD``, ``Adam``, ``AdamW``, ``RMSprop``. Each is
made without parameters (``Adam(learning_rate=1e-3)``) and bound to the model's parameters (``build(params)``,
which returns a ``bigcore.optim`` optimizer) when the model is built at the start of ``fit``.

Keras's update rules where they differ from PyTorch's: Keras's ``RMSprop`` puts epsilon inside the square root
and the learning rate inside the momentum buffer (``x = lr * g / sqrt(v + eps); buf = momentum * buf + x;
p -= buf``), and bigcore's engine runs that form for it. ``Adam`` and ``AdamW`` run PyTorch's form,
``lr * m_hat / (sqrt(v_hat) + eps)``; Keras 3 adds epsilon to ``sqrt(v)`` before the bias correction, which
differs from this only while ``v`` is of the order of ``epsilon ** 2`` (the first steps of rarely-updated weights).
"""

from .. import optim


class Optimizer:
    """Base of the Keras optimizer specs: ``learning_rate`` and the bigcore optimizer's other arguments."""

    cls = None

    def __init__(self, learning_rate=0.001, **kwargs):
        if learning_rate < 0:
            raise ValueError(f"learning_rate must be non-negative, got {learning_rate}")
        self.learning_rate, self.kwargs = float(learning_rate), kwargs

    def build(self, params):
        """The ``bigcore.optim`` optimizer over ``params``."""
        return self.cls(params, lr=self.learning_rate, **self.kwargs)

    def get_config(self):
        return {"learning_rate": self.learning_rate}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class SGD(Optimizer):
    """``SGD(learning_rate=0.01, momentum=0.0, nesterov=False)``."""

    cls = optim.SGD

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False):
        super().__init__(learning_rate, momentum=momentum, nesterov=nesterov)
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """``Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7)`` (Keras's defaults)."""

    cls = optim.Adam

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        super().__init__(learning_rate, betas=(beta_1, beta_2), eps=epsilon)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class AdamW(Optimizer):
    """``AdamW(learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7)``."""

    cls = optim.AdamW

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        super().__init__(learning_rate, betas=(beta_1, beta_2), eps=epsilon, weight_decay=weight_decay)
        self.weight_decay, self.beta_1, self.beta_2 = float(weight_decay), float(beta_1), float(beta_2)
        self.epsilon = float(epsilon)

    def get_config(self):
        return {**super().get_config(), "weight_decay": self.weight_decay, "beta_1": self.beta_1,
                "beta_2": self.beta_2, "epsilon": self.epsilon}


class _KerasRMSprop(optim.RMSprop):
    """``bigcore.optim.RMSprop`` running Keras's form of the update (see the module docstring)."""

    _form = "keras"


class RMSprop(Optimizer):
    """``RMSprop(learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False)`` with Keras's
    defaults and update (Keras's default optimizer for ``compile``)::

        v = rho * v + (1 - rho) * g**2
        a = rho * a + (1 - rho) * g                       # centered only
        x = lr * g / sqrt(v - a**2 + epsilon)             # v + epsilon when not centered
        buf = momentum * buf + x; p -= buf                # p -= x without momentum
    """

    cls = _KerasRMSprop

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False):
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"rho must be in [0, 1], got {rho}")
        super().__init__(learning_rate, alpha=rho, eps=epsilon, momentum=momentum, centered=centered)
        self.rho, self.momentum, self.epsilon = float(rho), float(momentum), float(epsilon)
        self.centered = bool(centered)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon,
                "centered": self.centered}


_BY_NAME = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop}


def get(identifier):
    """An optimizer from a name (``"rmsprop"``, ``"adam"``, ``"adamw"``, ``"sgd"``, any case), a saved config
    dict, a Keras optimizer, or a ``bigcore.optim`` optimizer already bound to the parameters."""
    if isinstance(identifier, str):
        if identifier.lower() not in _BY_NAME:
            raise ValueError(f"unknown optimizer {identifier!r}; use one of {sorted(_BY_NAME)}")
        return _BY_NAME[identifier.lower()]()
    if isinstance(identifier, dict):
        cls = {c.__name__: c for c in _BY_NAME.values()}.get(identifier.get("class_name"))
        if cls is None:
            raise ValueError(f"unknown optimizer config {identifier!r}")
        return cls.from_config(identifier.get("config", {}))
    if isinstance(identifier, (Optimizer, optim.Optimizer)):
        return identifier
    raise TypeError(f"optimizer must be a name, a keras optimizer or a bigcore.optim optimizer, got {type(identifier).__name__}")
