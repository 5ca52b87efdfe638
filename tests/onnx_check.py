"""One helper that checks an export end to end: the file passes onnx's full checker (with shape inference), and
onnxruntime's CPU provider gives the outputs bigcore gives (eval mode, no_grad) within 1e-4 relative, at input
sizes different from the traced ones, so dynamic axes are really dynamic.

The comparison is independent of ``bigcore.onnx.verify``: the inputs are fed and the outputs flattened here."""

import io

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import bigcore  # noqa: E402
import bigcore.nn as nn  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5  # float32: relative, plus a floor for values near zero


class Fn(nn.Module):
    """A module whose forward is ``fn(*inputs)``: exports one functional expression."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *xs):
        return self.fn(*xs)


def _tensors(args):
    out = []
    for a in args:
        if isinstance(a, bigcore.Tensor):
            out.append(a)
        elif isinstance(a, (tuple, list)):
            out.extend(t for t in a if isinstance(t, bigcore.Tensor))
    return out


def _outputs(result):
    if isinstance(result, bigcore.Tensor):
        return [result.numpy()]
    if isinstance(result, dict):
        result = list(result.values())
    if isinstance(result, (tuple, list)):
        return [a for r in result if r is not None for a in _outputs(r)]
    raise AssertionError(f"unexpected output {type(result).__name__}")


def run_bigcore(model, args):
    model.eval()
    with bigcore.no_grad():
        return _outputs(model(*args))


def run_onnx(data, args):
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    feeds = {i.name: t.numpy() for i, t in zip(session.get_inputs(), _tensors(args))}
    return session.run(None, feeds)


def export_and_check(model, traced, runs, dynamic_axes=None, rtol=RTOL, atol=ATOL, **kw):
    """Export ``model`` traced on ``traced`` args, check the file, and compare onnxruntime with bigcore on each
    args tuple in ``runs`` (whose shapes must differ from the traced ones when axes are dynamic).

    Returns:
        the ``onnx.ModelProto``.
    """
    buf = io.BytesIO()
    bigcore.onnx.export(model, traced, buf, dynamic_axes=dynamic_axes, **kw)
    data = buf.getvalue()
    proto = onnx.load_from_string(data)
    onnx.checker.check_model(proto, full_check=True)
    traced_shapes = [t.shape for t in _tensors(traced)]
    for args in runs:
        if dynamic_axes:
            assert [t.shape for t in _tensors(args)] != traced_shapes, "run at sizes other than the traced ones"
        got, want = run_onnx(data, args), run_bigcore(model, args)
        assert len(got) == len(want)
        for i, (g, w) in enumerate(zip(got, want)):
            assert g.shape == w.shape, f"output {i}: onnxruntime {g.shape}, bigcore {w.shape}"
            assert g.dtype == w.dtype, f"output {i}: onnxruntime {g.dtype}, bigcore {w.dtype}"
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=f"output {i}")
    return proto


def op_types(proto):
    """The op types of a model's nodes, in order."""
    return [n.op_type for n in proto.graph.node]


def to_bytes(model, args, **kw):
    buf = io.BytesIO()
    bigcore.onnx.export(model, args, buf, **kw)
    return buf.getvalue()
