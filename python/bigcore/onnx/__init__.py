"""``bigcore.onnx``: export models to ONNX, as ``torch.onnx``, and check the file against the model.

::

    bigcore.onnx.export(model, (x,), "model.onnx", input_names=["x"], output_names=["y"],
                        dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    bigcore.onnx.verify(model, (x,), "model.onnx")  # {'y': 1.2e-07}: onnxruntime against bigcore

The exporter is pure Python over an export trace (``trace.py``): one forward pass recorded op by op, with traced
sizes on dynamic axes, and one emitter per op (``ops/``) writing ONNX with ``onnx.helper``. Importing this package
does not import ``onnx`` or ``onnxruntime`` (``pip install "bigcore[onnx]"``); exporting does.
"""

from .._tracing import is_exporting
from .errors import TracerWarning, UnsupportedOperatorError
from .export import export
from .gpt import export_gpt
from .verify import verify

__all__ = ["export", "export_gpt", "verify", "is_exporting", "UnsupportedOperatorError", "TracerWarning"]
