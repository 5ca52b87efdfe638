"""The export trace: every op recorded whatever the grad mode, in eval semantics, under its real name; sizes on
dynamic axes traced; Python reading tensor values warned about with the line; initializers named by state_dict
keys, tied weights once; the library left as it was after an export; verify reporting differences."""

import io
import subprocess
import sys
import warnings

import numpy as np
import pytest

from onnx_check import Fn, export_and_check, onnx, op_types, ort, run_onnx, to_bytes

import bigcore
import bigcore.nn as nn
import bigcore.nn.functional as F
from bigcore.onnx import TracerWarning
from bigcore.onnx.symint import SymInt


def test_import_bigcore_does_not_import_onnx():
    code = "import sys, bigcore, bigcore.onnx; print('onnx' in sys.modules, 'onnxruntime' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_ops_are_recorded_whatever_the_grad_mode():
    m = nn.Sequential(nn.Linear(4, 3), nn.Tanh())
    x = bigcore.randn(2, 4, requires_grad=True)
    with_grad = op_types(onnx.load_from_string(to_bytes(m, (x,))))
    with bigcore.no_grad():
        without = op_types(onnx.load_from_string(to_bytes(m, (x.detach(),))))
    assert with_grad == without == ["Gemm", "Tanh"]


def test_ops_keep_their_real_names():
    # clone is a copy (not x * 1), mean a mean (not sum / n), a comparison and a cast are recorded too
    f = Fn(lambda x: (x.clone().mean(-1), (x > 0).float()))
    assert op_types(onnx.load_from_string(to_bytes(f, (bigcore.randn(3, 4),)))) == [
        "Identity", "ReduceMean", "Greater", "Cast"]


def test_dropout_is_the_identity_whatever_the_mode():
    # F.dropout(x) defaults to training=True; exported, it is x (eval semantics), and the model's mode is kept
    m = Fn(lambda x: F.dropout(x, 0.5) * 2 + nn.Dropout(0.5)(x))
    m.train()
    x = bigcore.randn(3, 4)
    data = to_bytes(m, (x,))
    assert m.training
    assert not {"Dropout", "RandomUniformLike", "RandomUniform"} & set(op_types(onnx.load_from_string(data)))
    np.testing.assert_allclose(run_onnx(data, (x,))[0], x.numpy() * 3, rtol=1e-6)


def test_sizes_on_dynamic_axes_are_traced_integers():
    seen = []

    def f(x):
        B, T, C = x.shape
        seen.append((B, T, C, x.size(1), B * T, T // 2, T - 1, -T, T % 3, 2 + B, C * 2))
        seen.append(x.view(-1, C).shape + x.flatten(0, 1).shape + bigcore.cat([x, x], 1).shape)
        return x.view(B * T, C)[: T * 2 - 1] + bigcore.arange(T * 2 - 1).float().unsqueeze(1)

    m = Fn(f)
    export_and_check(m, (bigcore.randn(2, 5, 3),), [(bigcore.randn(3, 7, 3),)], {"xs_0": {0: "B", 1: "T"}})
    traced = seen[0]
    assert [type(v) for v in traced] == [SymInt, SymInt, int] + [SymInt] * 7 + [int]
    assert [int(v) for v in traced] == [2, 5, 3, 5, 10, 2, 4, -5, 2, 4, 6]
    # a -1, merged dims and a concatenation along a dynamic axis are dynamic; the fixed width stays an int
    assert [type(v) for v in seen[1]] == [SymInt, int, SymInt, int, SymInt, SymInt, int]
    assert [int(v) for v in seen[1]] == [10, 3, 10, 3, 2, 10, 3]


def test_reshape_shape_is_computed_from_the_input():
    m = Fn(lambda x: x.view(x.size(0), x.size(1), 2, 2).sum(-1))
    proto = export_and_check(m, (bigcore.randn(2, 5, 4),), [(bigcore.randn(6, 1, 4),)], {"xs_0": {0: "B", 1: "T"}})
    reshape = next(n for n in proto.graph.node if n.op_type == "Reshape")
    assert reshape.input[1] not in {i.name for i in proto.graph.initializer}  # not the traced (2, 5, 2, 2)
    assert {"Shape", "Concat"} <= set(op_types(proto))


def test_a_traced_size_used_as_a_tensor_value_stays_in_the_graph():
    # x + T and T * x with T from a dynamic axis: the size must be read from the input, not frozen at 5
    m = Fn(lambda x: (x + x.size(1)) * (x.size(0) - 1) + (x.size(1) * x.size(0)))
    export_and_check(m, (bigcore.randn(2, 5, 3),), [(bigcore.randn(4, 7, 3),), (bigcore.randn(1, 1, 3),)],
                     {"xs_0": {0: "B", 1: "T"}})


def test_static_axes_stay_constant():
    # without dynamic axes no Shape is read: sizes are plain ints and the graph has constant shapes
    m = Fn(lambda x: x.view(x.size(0) * x.size(1), -1))
    proto = onnx.load_from_string(to_bytes(m, (bigcore.randn(2, 5, 4),)))
    assert op_types(proto) == ["Reshape"]


def test_reading_tensor_values_warns_with_the_line():
    def f(x):
        if x.sum() > 0:  # bool(): the branch taken is baked in
            x = x * 2
        n = int(x.amax() > 100) + x.mean().item() + x[0, 0].numpy()
        return x + n

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        to_bytes(Fn(f), (bigcore.randn(2, 3),))
    msgs = [w for w in caught if issubclass(w.category, TracerWarning)]
    assert {m.filename for m in msgs} == {__file__}
    line = f.__code__.co_firstlineno
    assert {m.lineno for m in msgs} == {line + 1, line + 3}
    text = " ".join(str(m.message) for m in msgs)
    for what in ("bool()", "int()", "item()", "numpy()"):
        assert what in text


def test_library_internal_reads_do_not_warn():
    from bigcore.models import GPT, GPTConfig

    m = GPT(GPTConfig(block_size=8, vocab_size=7, n_layer=1, n_head=2, n_embd=4))
    with warnings.catch_warnings():
        warnings.simplefilter("error", TracerWarning)
        bigcore.onnx.export_gpt(m, io.BytesIO())


class _Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        self.head = nn.Linear(16, 50, bias=False)
        self.head.weight = self.embed.weight
        self.register_buffer("scale", bigcore.tensor([2.0]))
        self.register_buffer("shift", bigcore.tensor([0.5]), persistent=False)

    def forward(self, ids):
        return self.head(self.embed(ids) * self.scale + self.shift)


def test_tied_weights_are_stored_once_and_buffers_named_by_their_keys():
    m = _Tied()
    ids = bigcore.tensor([[1, 2, 3]])
    proto = export_and_check(m, (ids,), [(bigcore.tensor([[4, 5], [6, 7]]),)], {"ids": {0: "B", 1: "T"}})
    inits = {i.name: i for i in proto.graph.initializer}
    assert "embed.weight" in inits and "head.weight" not in inits
    assert sum(int(np.prod(i.dims)) for i in inits.values()) < 2 * 50 * 16  # one copy of the (50, 16) table
    assert {"scale", "shift"} <= set(inits)


def test_constant_folding_transposes_weights_once():
    m = nn.Linear(4, 3)
    x = bigcore.randn(2, 5, 4)
    folded = onnx.load_from_string(to_bytes(m, (x,)))
    kept = onnx.load_from_string(to_bytes(m, (x,), do_constant_folding=False))
    assert op_types(folded) == ["MatMul", "Add"] and {i.name for i in folded.graph.initializer} == {"weight.T", "bias"}
    assert op_types(kept) == ["Transpose", "MatMul", "Add"] and {i.name for i in kept.graph.initializer} == {"weight", "bias"}


def test_export_leaves_the_library_as_it_was():
    import bigcore._core as core

    before = dict(vars(core))
    m = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.3)).train()
    to_bytes(m, (bigcore.randn(2, 3),))
    with pytest.raises(bigcore.onnx.UnsupportedOperatorError):
        to_bytes(Fn(lambda x: x + bigcore.randn(3)), (bigcore.randn(2, 3),))
    assert dict(vars(core)) == before
    assert m.training and all(c.training for c in m.children())
    assert not bigcore.onnx.is_exporting()


def test_is_exporting_inside_forward_only():
    seen = []
    to_bytes(Fn(lambda x: seen.append(bigcore.onnx.is_exporting()) or x * 2), (bigcore.randn(2),))
    assert seen == [True] and not bigcore.onnx.is_exporting()


def test_verify_reports_the_largest_difference_per_output(tmp_path):
    m = nn.Sequential(nn.Linear(3, 2))
    x = bigcore.randn(4, 3)
    path = tmp_path / "m.onnx"
    bigcore.onnx.export(m, (x,), path, output_names=["y"], dynamic_axes={"input": [0], "y": [0]})
    report = bigcore.onnx.verify(m, (bigcore.randn(6, 3),), path)
    assert list(report) == ["y"] and 0 <= report["y"] < 1e-5
    with bigcore.no_grad():
        nn.parameter._replace_values(m[0].bias, m[0].bias.numpy() + 0.1)  # the model moves on, the file does not
    with pytest.raises(AssertionError, match="'y'"):
        bigcore.onnx.verify(m, (x,), path)


def test_file_object_path_and_external_data(tmp_path):
    m = nn.Linear(40, 30)
    x = bigcore.randn(2, 40)
    with open(tmp_path / "a.onnx", "wb") as f:
        bigcore.onnx.export(m, (x,), f)
    bigcore.onnx.export(m, x, str(tmp_path / "b.onnx"), external_data=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.onnx", "b.onnx", "b.onnx.data"]
    assert (tmp_path / "b.onnx").stat().st_size < 1000 < (tmp_path / "b.onnx.data").stat().st_size
    for name in ("a.onnx", "b.onnx"):
        onnx.checker.check_model(str(tmp_path / name), full_check=True)
        session = ort.InferenceSession(str(tmp_path / name), providers=["CPUExecutionProvider"])
        np.testing.assert_allclose(session.run(None, {"input": x.numpy()})[0], m(x).detach().numpy(), rtol=1e-5)


def test_a_tensor_passed_twice_gives_two_inputs():
    # self-attention traced as mha(x, x, x): query, key and value stay separate inputs of the graph
    m = nn.MultiheadAttention(4, 2, batch_first=True)
    x = bigcore.randn(2, 3, 4)
    data = to_bytes(m, (x, x, x), dynamic_axes={n: {1: "T"} for n in ("query", "key", "value")})
    q, kv = bigcore.randn(2, 5, 4), bigcore.randn(2, 7, 4)
    got = run_onnx(data, (q, kv, kv))
    with bigcore.no_grad():
        want = m(q, kv, kv)
    np.testing.assert_allclose(got[0], want[0].numpy(), rtol=1e-4, atol=1e-6)


def test_keyword_arguments_by_kwargs_or_a_trailing_dict():
    # PyTorch's conventions: kwargs=, or a dict as the last element of args; their tensors are inputs too
    m = nn.MultiheadAttention(4, 2, batch_first=True)
    q, mask = bigcore.randn(1, 3, 4), bigcore.randn(3, 3)
    a = onnx.load_from_string(to_bytes(m, (q, q, q, {"need_weights": False}), kwargs={"attn_mask": mask}))
    b = onnx.load_from_string(to_bytes(m, (q, q, q), kwargs={"need_weights": False, "attn_mask": mask}))
    assert [i.name for i in a.graph.input] == [i.name for i in b.graph.input] == ["query", "key", "value", "attn_mask"]
    assert [o.name for o in a.graph.output] == ["output"]  # the weights are None: no output
    with bigcore.no_grad():
        want = m(q, q, q, attn_mask=mask)[0].numpy()
    np.testing.assert_allclose(run_onnx(a.SerializeToString(), (q, q, q, mask))[0], want, rtol=1e-5, atol=1e-6)
