"""The exporter's exception and warning: ``UnsupportedOperatorError`` and ``TracerWarning``. Never imports onnx."""

from ..errors import BigcoreError


class UnsupportedOperatorError(BigcoreError, NotImplementedError):
    """An op the traced forward ran has no ONNX emitter (or none at this opset).

    Attributes:
        op: the op's name (``"gpt"`` for ``bigcore._core.gpt``, ``"randn"``, ...).
        module: the module path where it ran (``"blocks.3.attn"``; the model's class name for its own forward).
        opset: the ``opset_version`` asked for.
    """

    def __init__(self, op, module, opset, detail=""):
        self.op, self.module, self.opset = op, module, opset
        msg = f"bigcore.onnx: op '{op}' (in module '{module}') has no ONNX emitter at opset {opset}"
        super().__init__(msg + (f": {detail}" if detail else ""))


class TracerWarning(UserWarning):
    """Python read a tensor's values while exporting (``item()``, ``bool(t)``, ``int(t)``, ``numpy()``): the value
    is baked into the graph as a constant, so the exported model may be wrong for other inputs."""


__all__ = ["UnsupportedOperatorError", "TracerWarning"]
