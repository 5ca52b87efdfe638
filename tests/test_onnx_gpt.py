"""The GPT exported with ``export_gpt``: input ``input_ids`` (batch, sequence) and output ``logits`` both dynamic,
the tied embedding stored once, logits equal to the fused engine forward's at other batch and sequence sizes; and
onnxruntime's transformer optimizer fusing the exported pattern while the optimized model still matches."""

import io

import numpy as np
import pytest

from onnx_check import onnx, ort

import bigcore
from bigcore.models import GPT, GPTConfig


def _model(bias=True, **kw):
    bigcore.manual_seed(7)
    cfg = GPTConfig(block_size=16, vocab_size=11, n_layer=2, n_head=2, n_embd=8, bias=bias, **kw)
    return GPT(cfg).eval()


def _ids(B, T, V=11):
    return np.random.default_rng(B * 100 + T).integers(0, V, (B, T))


def _logits(model, ids):
    with bigcore.no_grad():
        return model(bigcore.tensor(ids))[0].numpy()  # the fused engine forward (the model's default)


@pytest.mark.parametrize("bias", [True, False])
def test_gpt_export_matches_the_fused_forward_at_other_sizes(bias):
    model = _model(bias)
    buf = io.BytesIO()
    bigcore.onnx.export_gpt(model, buf)
    proto = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(proto, full_check=True)
    (inp,), (out,) = proto.graph.input, proto.graph.output
    dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
    assert (inp.name, dims(inp), out.name, dims(out)) == ("input_ids", ["batch", "sequence"], "logits",
                                                          ["batch", "sequence", 11])
    session = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    for B, T in [(3, 7), (1, 1), (2, 16)]:  # traced at (2, 5); 16 is the block size
        ids = _ids(B, T)
        got = session.run(["logits"], {"input_ids": ids})[0]
        np.testing.assert_allclose(got, _logits(model, ids), rtol=1e-4, atol=1e-5)


def test_gpt_tied_embedding_is_stored_once():
    model = _model()
    buf = io.BytesIO()
    bigcore.onnx.export_gpt(model, buf)
    inits = {i.name: tuple(i.dims) for i in onnx.load_from_string(buf.getvalue()).graph.initializer}
    assert inits["transformer.wte.weight"] == (11, 8) and "lm_head.weight" not in inits
    assert (8, 11) not in inits.values()  # no transposed copy of the table either
    assert inits["transformer.h.0.attn.c_attn.weight.T"] == (8, 24)  # untied weights are stored transposed


def test_gpt_with_past_is_not_available_yet():
    with pytest.raises(NotImplementedError, match="issue 10"):
        bigcore.onnx.export_gpt(_model(), io.BytesIO(), with_past=True)


def test_onnxruntime_transformer_optimizer_fuses_and_still_matches(tmp_path):
    # onnxruntime.transformers fuses Add + LayerNormalization into SkipLayerNormalization (two per block) and the
    # tanh GELU with the bias Add before it into FastGelu (one per block); its GPT-2 Attention fusion matches only
    # Hugging Face's graph (Gemm projections, a sliced mask buffer) and forms none with onnxruntime 1.32.
    # opt_level=0: its level 1 imports torch.
    pytest.importorskip("sympy")  # the optimizer's symbolic shape inference
    from onnxruntime.transformers.optimizer import optimize_model

    model = _model()
    path = tmp_path / "gpt.onnx"
    bigcore.onnx.export_gpt(model, path)
    opt = optimize_model(str(path), model_type="gpt2", num_heads=2, hidden_size=8, opt_level=0)
    stats = opt.get_fused_operator_statistics()
    assert (stats["SkipLayerNormalization"], stats["FastGelu"]) == (4, 2)
    opt.save_model_to_file(str(tmp_path / "opt.onnx"))
    session = ort.InferenceSession(str(tmp_path / "opt.onnx"), providers=["CPUExecutionProvider"])
    ids = _ids(3, 9)
    np.testing.assert_allclose(session.run(["logits"], {"input_ids": ids})[0], _logits(model, ids), rtol=1e-4, atol=1e-5)
