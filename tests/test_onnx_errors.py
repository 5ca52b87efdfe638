"""Bad input to the exporter: an op without an emitter (UnsupportedOperatorError naming the op, the module path and
the opset), bad dynamic_axes (ValueError), a forward returning non-tensors (TypeError), a missing directory
(OSError naming it), and no file, partial or temporary, left behind by a failed export."""

import io

import pytest

from onnx_check import Fn

import bigcore
import bigcore.nn as nn
from bigcore.onnx import UnsupportedOperatorError


class Noisy(nn.Module):
    def forward(self, x):
        return x + bigcore.randn(*x.shape)  # a random draw: no emitter


def _nested():
    return nn.Sequential(nn.Linear(3, 3), nn.Sequential(nn.ReLU(), Noisy()))


def test_unsupported_op_names_the_op_the_module_path_and_the_opset():
    with pytest.raises(UnsupportedOperatorError) as info:
        bigcore.onnx.export(_nested(), (bigcore.randn(2, 3),), io.BytesIO(), opset_version=19)
    e = info.value
    assert (e.op, e.module, e.opset) == ("randn", "1.1", 19)
    assert "'randn'" in str(e) and "'1.1'" in str(e) and "opset 19" in str(e)
    assert isinstance(e, NotImplementedError) and isinstance(e, bigcore.BigcoreError)


def test_unsupported_engine_op_in_the_models_own_forward():
    # the fused GPT op, called directly, is named as the engine function; a forward of the model itself is named
    # by the model's class
    with pytest.raises(UnsupportedOperatorError, match=r"'_core.randperm'.*'Fn'"):
        bigcore.onnx.export(Fn(lambda x: x + bigcore.randperm(3).float()), (bigcore.randn(3),), io.BytesIO())


def test_failed_export_leaves_no_file(tmp_path):
    path = tmp_path / "m.onnx"
    with pytest.raises(UnsupportedOperatorError):
        bigcore.onnx.export(_nested(), (bigcore.randn(2, 3),), path)
    assert list(tmp_path.iterdir()) == []


def test_missing_directory_is_an_oserror_naming_it(tmp_path):
    missing = tmp_path / "no" / "such"
    with pytest.raises(FileNotFoundError, match="no/such"):
        bigcore.onnx.export(nn.Linear(2, 2), (bigcore.randn(1, 2),), missing / "m.onnx")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("axes,match", [
    ({"x": [0]}, r"\['x'\].*not inputs \['input'\] or outputs \['output'\]"),
    ({"input": {2: "batch"}}, "axis 2.*2 dimensions"),
    ({"output": [-3]}, "axis -3.*2 dimensions"),
])
def test_bad_dynamic_axes_are_value_errors(axes, match):
    with pytest.raises(ValueError, match=match):
        bigcore.onnx.export(nn.Linear(2, 2), (bigcore.randn(1, 2),), io.BytesIO(), dynamic_axes=axes)


def test_negative_axes_count_from_the_end():
    buf = io.BytesIO()
    bigcore.onnx.export(nn.Linear(2, 2), (bigcore.randn(1, 2),), buf, dynamic_axes={"input": [-2], "output": {-2: "n"}})
    import onnx

    dims = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in
            (onnx.load_from_string(buf.getvalue()).graph.input[0], onnx.load_from_string(buf.getvalue()).graph.output[0])]
    assert dims == [["input_dynamic_axes_-1", 2], ["n", 2]]


@pytest.mark.parametrize("result", ["text", 3, (None,), [bigcore.ones(2), 1.5], {"a": "b"}])
def test_forward_returning_non_tensors_is_a_type_error(result):
    with pytest.raises(TypeError, match="tensor"):
        bigcore.onnx.export(Fn(lambda x: result), (bigcore.randn(2),), io.BytesIO())


def test_other_bad_arguments():
    x = bigcore.randn(1, 2)
    with pytest.raises(TypeError, match="Module"):
        bigcore.onnx.export(lambda t: t, (x,), io.BytesIO())
    with pytest.raises(ValueError, match="opset_version"):
        bigcore.onnx.export(nn.Linear(2, 2), (x,), io.BytesIO(), opset_version=13)
    with pytest.raises(ValueError, match="2 input_names given for 1 input"):
        bigcore.onnx.export(nn.Linear(2, 2), (x,), io.BytesIO(), input_names=["a", "b"])
    with pytest.raises(ValueError, match="external_data"):
        bigcore.onnx.export(nn.Linear(2, 2), (x,), io.BytesIO(), external_data=True)
    with pytest.raises(TypeError, match="dynamic_axes"):
        bigcore.onnx.export(nn.Linear(2, 2), (x,), io.BytesIO(), dynamic_axes={"input": 0})
